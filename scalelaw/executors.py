"""Where runs execute: this process, a local pool (one worker per GPU or N CPU workers),
or a SLURM job array through submitit. Every backend calls :func:`execute_run`, which
writes the run's result atomically; the launcher only reads results back.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from scalelaw.store import RunStore


def execute_run(root: str, run_id: str, spec: dict[str, Any]) -> str:
    """Train one run into its directory under ``root``; returns the run id.

    Importable by name, so process pools and SLURM jobs can call it.
    """
    from scalelaw.proxy.train import train  # torch is imported only here
    from scalelaw.runspec import RunSpec

    store = RunStore(root)
    folder = store.prepare(run_id, spec)
    store.event("start", run_id, pid=os.getpid())
    result = train(RunSpec(**spec), metrics_path=folder / "metrics.jsonl")
    row = result.to_row()
    row["run_id"] = run_id
    store.write_result(run_id, row)
    store.event("finish", run_id, diverged=bool(result.diverged))
    return run_id


@dataclass(frozen=True)
class Job:
    run_id: str
    spec: dict[str, Any]


def _visible_gpus() -> list[str]:
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g for g in env.split(",") if g.strip()]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        return []


def _init_worker(queue, threads: int) -> None:
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
) -> None:
    """One worker per visible GPU, else ``workers`` CPU processes (default 1, in-process)."""
    jobs = list(jobs)
    gpus = _visible_gpus()
    n = len(gpus) if gpus else max(1, workers or 1)
    if n == 1 and not gpus:
        for job in jobs:
            try:
                execute_run(str(root), job.run_id, job.spec)
                on_done(job.run_id, None)
            except Exception as err:  # a crashing run must not stop the sweep
                on_done(job.run_id, err)
        return
    ctx = get_context("spawn")  # fresh processes: CUDA_VISIBLE_DEVICES is read at CUDA init
    queue = ctx.Queue()
    for i in range(n):
        queue.put(gpus[i] if gpus else None)
    threads = max(1, (os.cpu_count() or 1) // n)
    with ProcessPoolExecutor(n, mp_context=ctx, initializer=_init_worker, initargs=(queue, threads)) as pool:
        pending = {pool.submit(execute_run, str(root), j.run_id, j.spec): j.run_id for j in jobs}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                on_done(pending.pop(future), future.exception())


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
) -> None:
    """Submit the runs as one submitit job array and wait for them."""
    try:
        import submitit
    except ImportError:
        raise RuntimeError("the slurm backend needs submitit: pip install 'scalelaw[slurm]'") from None
    jobs = list(jobs)
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
    submitted = executor.map_array(
        execute_run, [str(root)] * len(jobs), [j.run_id for j in jobs], [j.spec for j in jobs]
    )
    for job, handle in zip(jobs, submitted, strict=True):
        try:
            handle.result()
            on_done(job.run_id, None)
        except Exception as err:
            on_done(job.run_id, err)
