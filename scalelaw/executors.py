"""Where runs execute: this process, a local pool (one worker per GPU or N CPU workers),
or a SLURM job array through submitit. Every backend calls :func:`execute_group`, which
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
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from scalelaw.exceptions import InputError
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


def _visible_gpus() -> list[str]:
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


def run_local(
    root: Path,
    jobs: Iterable[Job],
    workers: int | None = None,
    on_done: Callable[[str, BaseException | None], None] = lambda r, e: None,
    fuse: bool = True,
) -> None:
    """One worker per visible GPU, else ``workers`` CPU processes (default 1, in-process)."""
    gpus = _visible_gpus()
    n = len(gpus) if gpus else max(1, workers or 1)
    groups = make_groups(jobs, fuse, n)
    if n == 1 and not gpus:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)  # one process: all cores
        for group in groups:
            try:
                execute_group(str(root), group, fuse)
                error = None
            except Exception as err:  # a crashing group must not stop the sweep
                error = err
            for job in group:
                on_done(job.run_id, error)
        return
    ctx = get_context("spawn")  # fresh processes: CUDA_VISIBLE_DEVICES is read at CUDA init
    queue = ctx.Queue()
    for i in range(n):
        queue.put(gpus[i] if gpus else None)
    threads = max(1, (os.cpu_count() or 1) // n)
    with ProcessPoolExecutor(
        n, mp_context=ctx, initializer=_init_worker, initargs=(queue, threads, os.getpid())
    ) as pool:
        pending = {pool.submit(execute_group, str(root), g, fuse): g for g in groups}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                for job in pending.pop(future):
                    on_done(job.run_id, future.exception())


@dataclass(frozen=True)
class SlurmOptions:
    partition: str | None = None
    time_min: int = 60
    gpus_per_task: int = 1
    cpus_per_task: int = 8
    array_parallelism: int = 64
    cluster: str | None = None  # None: SLURM when available; "local" / "debug" for tests


def run_slurm(
    root: Path,
    jobs: Iterable[Job],
    options: SlurmOptions,
    on_done: Callable[[str, BaseException | None], None] = lambda r, e: None,
    fuse: bool = True,
) -> None:
    """Submit the run groups as one submitit job array (a task per group) and wait for them."""
    try:
        import submitit
    except ImportError:
        raise InputError("the slurm backend needs submitit: pip install 'scalelaw[slurm]'") from None
    groups = make_groups(jobs, fuse)
    executor = submitit.AutoExecutor(folder=root / "submitit", cluster=options.cluster)
    params: dict[str, Any] = {
        "timeout_min": options.time_min,
        "slurm_array_parallelism": options.array_parallelism,
    }
    if executor.cluster == "slurm":
        params.update(
            gpus_per_node=options.gpus_per_task,
            cpus_per_task=options.cpus_per_task,
            tasks_per_node=1,
            nodes=1,
        )
        if options.partition:
            params["slurm_partition"] = options.partition
    executor.update_parameters(**params)
    submitted = executor.map_array(execute_group, [str(root)] * len(groups), groups, [fuse] * len(groups))
    for group, handle in zip(groups, submitted, strict=True):
        try:
            handle.result()
            error = None
        except Exception as err:
            error = err
        for job in group:
            on_done(job.run_id, error)
