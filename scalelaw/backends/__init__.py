"""Where a sweep's run groups execute, behind one small interface.

A backend is shaped like submitit's ``Executor`` and Ray's task API, cut down to what a
sweep needs: :meth:`Backend.submit` a batch of run groups, then iterate
:meth:`Backend.updates`, which reports each group's state as it changes (``pending``,
``running``, then one terminal state: ``done``, ``failed`` or ``lost``) and ends when
every group is terminal; :meth:`Backend.cancel` stops what is still queued or running.
Backends are registered by name (:func:`register`) and built with :func:`make_backend`:

- ``local``: this process, or a pool of worker processes (one per GPU, or ``workers``
  CPU processes) that die with the launcher (:mod:`scalelaw.backends.local`);
- ``slurm``: a SLURM job array through submitit, watched with ``squeue`` so that it
  works without SLURM accounting (:mod:`scalelaw.backends.slurm`);
- ``ray``: one Ray task per group on a local or remote Ray cluster
  (:mod:`scalelaw.backends.ray`).

Whatever the backend, the work itself is :func:`scalelaw.executors.execute_group`, which
claims its runs and writes each result atomically, so resume and the guarantee that no
finished run is redone do not depend on the backend.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from scalelaw.exceptions import InputError
from scalelaw.executors import Job

STATES = ("pending", "running", "done", "failed", "lost")
TERMINAL = frozenset({"done", "failed", "lost"})


@dataclass(frozen=True)
class Update:
    """Group ``group`` (its index in the submitted batch) is now in ``state``.
    ``error``: why, for ``failed`` and ``lost``."""

    group: int
    state: str
    error: str | None = None


class Backend(abc.ABC):
    """One way to execute run groups. Subclasses set ``name`` and take their options as
    keyword arguments in ``__init__``."""

    name: ClassVar[str]

    #: how many groups run at once, so that the planner balances the groups over them
    parallelism: int = 1

    def check(self, n_groups: int) -> None:  # noqa: B027 - optional hook
        """Refuse, before anything is submitted, a request this backend cannot serve
        (raise :class:`scalelaw.exceptions.InputError` naming the option to change)."""

    @abc.abstractmethod
    def submit(self, root: Path, groups: Sequence[Sequence[Job]], fuse: bool) -> None:
        """Start ``groups`` (each trained by ``execute_group(root, group, fuse)``)."""

    @abc.abstractmethod
    def updates(self) -> Iterator[Update]:
        """Each group's state changes, until every submitted group is terminal."""

    def cancel(self) -> None:  # noqa: B027 - nothing to cancel by default
        """Stop what is still queued or running (on an interrupt)."""


def describe(error: BaseException) -> str:
    """An exception as one line of a sweep's summary."""
    return f"{type(error).__name__}: {error}"


BACKENDS: dict[str, Callable[..., Backend]] = {}


def register(cls: type[Backend]) -> type[Backend]:
    """Class decorator: make a backend available by its ``name``."""
    BACKENDS[cls.name] = cls
    return cls


def make_backend(name: str, **options: Any) -> Backend:
    """The backend registered as ``name``, built with its options."""
    _load_builtin()
    if name not in BACKENDS:
        raise InputError(f"--backend: unknown backend {name!r}; choose one of {', '.join(sorted(BACKENDS))}")
    return BACKENDS[name](**options)


def _load_builtin() -> None:
    from scalelaw.backends import local, ray, slurm  # noqa: F401 - registers them


def run_jobs(
    backend: Backend,
    root: Path,
    jobs: Sequence[Job],
    fuse: bool,
    on_done: Callable[[str, str | None], None],
    on_counts: Callable[[dict[str, int]], None] = lambda counts: None,
) -> None:
    """Group ``jobs``, submit the groups to ``backend`` and follow them to the end.

    ``on_done(run_id, error)`` is called once per run when its group ends (``error``
    None when it finished); ``on_counts`` gets the runs per state (pending / running /
    done / failed / lost) at every change, for a progress display. An interrupt
    cancels what is still queued or running.
    """
    from scalelaw.executors import make_groups

    groups = make_groups(jobs, fuse, backend.parallelism)
    if not groups:
        return
    backend.check(len(groups))
    state = ["pending"] * len(groups)

    def counts() -> dict[str, int]:
        tally = dict.fromkeys(STATES, 0)
        for group, s in zip(groups, state, strict=True):
            tally[s] += len(group)
        return tally

    backend.submit(root, groups, fuse)
    on_counts(counts())
    try:
        for update in backend.updates():
            if state[update.group] in TERMINAL:
                continue
            state[update.group] = update.state
            if update.state in TERMINAL:
                error = None if update.state == "done" else f"{update.state}: {update.error}"
                for job in groups[update.group]:
                    on_done(job.run_id, error)
            on_counts(counts())
    except BaseException:
        backend.cancel()
        raise
