"""The local backend: groups run in this process, or in a pool of worker processes.

One worker per visible GPU; without GPUs, ``workers`` CPU processes (default 1, which
trains in this process with every core). Pool workers are spawned fresh (CUDA reads
``CUDA_VISIBLE_DEVICES`` when it starts) and die with the launcher even when it is
killed with SIGKILL (:func:`scalelaw.executors.die_with_parent`).

submitit's ``LocalExecutor`` would start every group at once as its own process, with
no cap on how many run together, so the pool is ``concurrent.futures``'.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path

from scalelaw.backends import Backend, Update, describe, register
from scalelaw.executors import Job, _init_worker, execute_group, visible_gpus


@register
class LocalBackend(Backend):
    name = "local"

    def __init__(self, workers: int | None = None, poll_s: float = 1.0):
        self.gpus = visible_gpus()
        self.parallelism = len(self.gpus) if self.gpus else max(1, workers or 1)
        self.poll_s = poll_s
        self._root: Path | None = None
        self._groups: list[Sequence[Job]] = []
        self._fuse = True
        self._pool: ProcessPoolExecutor | None = None
        self._futures: dict[Future, int] = {}

    @property
    def in_process(self) -> bool:
        return self.parallelism == 1 and not self.gpus

    def submit(self, root: Path, groups: Sequence[Sequence[Job]], fuse: bool) -> None:
        self._root, self._groups, self._fuse = Path(root), list(groups), fuse
        if self.in_process or not self._groups:
            return
        ctx = get_context("spawn")
        queue = ctx.Queue()
        for i in range(self.parallelism):
            queue.put(self.gpus[i] if self.gpus else None)
        threads = max(1, (os.cpu_count() or 1) // self.parallelism)
        self._pool = ProcessPoolExecutor(
            self.parallelism, mp_context=ctx, initializer=_init_worker, initargs=(queue, threads, os.getpid())
        )
        self._futures = {
            self._pool.submit(execute_group, str(root), group, fuse): i
            for i, group in enumerate(self._groups)
        }

    def updates(self) -> Iterator[Update]:
        if self.in_process:
            yield from self._run_here()
            return
        running: set[int] = set()
        try:
            while self._futures:
                done, _ = wait(self._futures, timeout=self.poll_s, return_when=FIRST_COMPLETED)
                for future, i in list(self._futures.items()):
                    if future not in done and future.running() and i not in running:
                        running.add(i)
                        yield Update(i, "running")
                for future in done:
                    i = self._futures.pop(future)
                    error = future.exception()
                    yield Update(i, "done") if error is None else Update(i, "failed", describe(error))
        finally:
            self._shutdown()

    def _run_here(self) -> Iterator[Update]:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)  # one process: all cores
        for i, group in enumerate(self._groups):
            yield Update(i, "running")
            try:
                execute_group(str(self._root), group, self._fuse)
            except Exception as err:  # a crashing group must not stop the sweep
                yield Update(i, "failed", describe(err))
            else:
                yield Update(i, "done")

    def cancel(self) -> None:
        for future in self._futures:
            future.cancel()
        self._shutdown()

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
