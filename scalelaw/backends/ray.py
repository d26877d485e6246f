"""The Ray backend: one Ray task per run group, on a local or remote Ray cluster.

``address=None`` starts a Ray instance for this sweep on this machine and stops it at
the end; ``"auto"`` joins the cluster already running here; ``"ray://host:10001"``
connects to a remote one (its nodes need scalelaw installed, as for SLURM). Each task
asks for its CPUs and GPUs as Ray resources; a task whose worker or node dies is retried
``max_retries`` times by Ray, and one that still fails is reported as lost and left for
the next resume. Results go through the same atomic store as every backend.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scalelaw.backends import Backend, Update, describe, register
from scalelaw.exceptions import InputError
from scalelaw.executors import Job, execute_group


@dataclass(frozen=True)
class RayOptions:
    """``address``: see the module. ``cpus_per_task`` / ``gpus_per_task``: each task's
    Ray resources (GPUs: None is 1 where the cluster has GPUs, else 0). ``num_cpus``: the
    CPUs of a Ray instance this backend starts itself (None: all). ``max_retries``: how
    often Ray reruns a task whose worker died."""

    address: str | None = None
    cpus_per_task: int = 1
    gpus_per_task: float | None = None
    num_cpus: int | None = None
    max_retries: int = 2
    poll_s: float = 1.0


def _execute(root: str, group: Sequence[Job], fuse: bool, threads: int) -> list[str]:
    """A Ray task: train ``group`` with ``threads`` CPU threads (its Ray CPU share)."""
    import torch

    torch.set_num_threads(max(1, threads))
    return execute_group(root, group, fuse)


@register
class RayBackend(Backend):
    name = "ray"

    def __init__(self, options: RayOptions | None = None, **fields: Any):
        self.options = options or RayOptions(**fields)
        self._started_here = False
        self._refs: dict[Any, int] = {}
        self._gpus: float | None = None  # set by check()

    def _ray(self):
        try:
            import ray
        except ImportError:
            raise InputError("--backend ray needs Ray: pip install 'scalelaw[ray]'") from None
        if not ray.is_initialized():
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a sweep's own local instance
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if self.options.address is None:
                kwargs["num_cpus"] = self.options.num_cpus
            try:
                ray.init(address=self.options.address, **kwargs)
            except ConnectionError as err:
                raise InputError(
                    f"--address {self.options.address!r}: cannot reach a Ray cluster: {err}"
                ) from None
            self._started_here = True
        return ray

    def check(self, n_groups: int) -> None:
        ray = self._ray()
        nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
        max_cpus = max((r.get("CPU", 0) for r in nodes), default=0)
        max_gpus = max((r.get("GPU", 0) for r in nodes), default=0)
        if self.options.cpus_per_task > max_cpus:
            raise InputError(
                f"--cpus-per-task {self.options.cpus_per_task}: the Ray cluster's largest node has "
                f"{max_cpus:g} CPUs; the tasks would never be scheduled"
            )
        gpus = self.options.gpus_per_task
        self._gpus = (1.0 if max_gpus else 0.0) if gpus is None else float(gpus)
        if self._gpus > max_gpus:
            raise InputError(
                f"--gpus-per-task {self._gpus:g}: the Ray cluster's largest node has {max_gpus:g} GPUs"
            )

    def submit(self, root: Path, groups: Sequence[Sequence[Job]], fuse: bool) -> None:
        ray = self._ray()
        if self._gpus is None:
            self.check(len(groups))
        task = ray.remote(_execute).options(
            num_cpus=self.options.cpus_per_task,
            num_gpus=self._gpus,
            max_retries=self.options.max_retries,
            retry_exceptions=False,  # a run that raises fails the same way again
        )
        threads = self.options.cpus_per_task
        self._refs = {task.remote(str(root), list(g), fuse, threads): i for i, g in enumerate(groups)}

    def updates(self) -> Iterator[Update]:
        ray = self._ray()
        from ray.exceptions import RayTaskError

        try:
            pending = list(self._refs)
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=self.options.poll_s)
                for ref in done:
                    i = self._refs[ref]
                    try:
                        ray.get(ref)
                    except RayTaskError as err:  # the run itself raised
                        cause = err.cause if isinstance(err.cause, BaseException) else err
                        yield Update(i, "failed", describe(cause))
                    except Exception as err:  # worker or node lost, even after retries
                        yield Update(i, "lost", describe(err))
                    else:
                        yield Update(i, "done")
        finally:
            self._shutdown()

    def cancel(self) -> None:
        try:
            import ray
        except ImportError:
            return
        if ray.is_initialized():
            for ref in self._refs:
                ray.cancel(ref, force=True)
        self._shutdown()

    def _shutdown(self) -> None:
        if self._started_here:
            import ray

            ray.shutdown()
            self._started_here = False
