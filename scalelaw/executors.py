"""What runs where the work runs, whatever the backend (scalelaw.backends: this process,
a local pool, a SLURM job array or Ray tasks). Every backend calls :func:`execute_group`, which
trains a group of runs (stacked into one model when they differ only in per-run
scalars; see scalelaw.groups) and writes each run's result atomically when the group
ends; the launcher only reads results back. A group killed mid-way leaves no result,
so resume redoes it whole, and finished runs are never redone.

Process hygiene: local pool workers die with their launcher, even when it is killed
with SIGKILL (:func:`die_with_parent`), and every group first claims its runs' locks
(:meth:`RunStore.claimed`), so a resumed sweep never trains a run alongside a process
still training it (an orphaned SLURM task of a killed launcher, say: SLURM tasks are
separate jobs and outlive it).
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from scalelaw.groups import balance_groups, default_memory_budget, plan_groups
from scalelaw.store import RunStore


@dataclass(frozen=True)
class Job:
    run_id: str
    spec: dict[str, Any]


def execute_group(root: str, jobs: Sequence[Job], fuse: bool = True) -> list[str]:
    """Train ``jobs`` into their directories under ``root``; returns their run ids.

    ``fuse``: train the group as one stacked model (``scalelaw.proxy.fused``); else one
    run after another with ``train()``. Importable by name, so process pools and
    SLURM jobs can call it. The runs are claimed first (:meth:`RunStore.claimed`): a
    run another process is still training is never trained alongside it, and a run
    that process finished meanwhile is not trained again.
    """
    from scalelaw.proxy.fused import train_group  # torch is imported only here
    from scalelaw.runspec import RunSpec

    store = RunStore(root)
    with store.claimed([j.run_id for j in jobs]):
        todo = [j for j in jobs if store.status(j.run_id).state != "finished"]
        for run_id in sorted({j.run_id for j in jobs} - {j.run_id for j in todo}):
            store.event("skip", run_id, pid=os.getpid(), why="finished by another process")
        if not todo:
            return [j.run_id for j in jobs]
        folders = [store.prepare(j.run_id, j.spec) for j in todo]
        host = socket.gethostname()
        for j in todo:
            store.event("start", j.run_id, pid=os.getpid(), host=host, group=todo[0].run_id, runs=len(todo))
        specs = [RunSpec(**j.spec) for j in todo]
        results = train_group(specs, [f / "metrics.jsonl" for f in folders], stacked=None if fuse else False)
        for j, result in zip(todo, results, strict=True):
            row = result.to_row()
            if row["run_id"] != j.run_id:  # one identity: the hash of the spec the job carries
                raise RuntimeError(f"run {j.run_id}: trained a spec whose id is {row['run_id']}")
            store.write_result(j.run_id, row)
            store.event("finish", j.run_id, pid=os.getpid(), diverged=bool(result.diverged))
    return [j.run_id for j in jobs]


def execute_run(root: str, run_id: str, spec: dict[str, Any]) -> str:
    """Train one run on its own (the path of ``--no-fuse``); returns the run id."""
    return execute_group(root, [Job(run_id, spec)], fuse=False)[0]


def make_groups(jobs: Iterable[Job], fuse: bool, workers: int = 1) -> list[list[Job]]:
    """Runs that train together: stackable groups within a worker's memory budget, or singletons."""
    jobs = list(jobs)
    if not fuse:
        return [[j] for j in jobs]
    groups = plan_groups(jobs, lambda j: j.spec, default_memory_budget(workers))
    return balance_groups(groups, lambda j: j.spec, workers)


def visible_gpus() -> list[str]:
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g for g in env.split(",") if g.strip()]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        return []


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent_pid: int) -> None:
    """End this process when ``parent_pid``, its parent, ends, even by SIGKILL.

    Linux: the kernel sends SIGKILL at the parent's death (``prctl(PR_SET_PDEATHSIG)``).
    Elsewhere, or where prctl fails: a daemon thread checks every 0.5 s whether the
    process has been re-parented and exits it at once. Either way a worker never goes
    on training into a sweep directory whose launcher is gone.
    """
    armed = False
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)
    if not armed:

        def watch() -> None:
            while os.getppid() == parent_pid:
                time.sleep(0.5)
            os._exit(1)

        threading.Thread(target=watch, name="scalelaw-parent-watch", daemon=True).start()


def _init_worker(queue, threads: int, parent_pid: int) -> None:
    die_with_parent(parent_pid)
    gpu = queue.get()
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    import torch

    torch.set_num_threads(threads)
