"""The SLURM backend: one job array through submitit, a task per run group.

It never waits forever. Before submitting, the request is checked against the
partition's nodes (``sinfo``): CPUs, GPUs and time limit, with defaults that fit the
node (a node with 2 CPUs and no GPU gets 2 CPUs and no GPU per task). While the array
runs, task states come from ``squeue`` and from the results submitit writes, not from
``sacct``, which many small clusters run without (no slurmdbd). A task that leaves the
queue without a result, or outlives its time limit plus a margin, is reported as lost
and left for the next resume. The array's job ids are recorded in the sweep directory,
and a later launcher cancels the tasks a killed one left queued or running, so a resumed
sweep never races an orphan.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scalelaw.atomic import atomic_write_text
from scalelaw.backends import Backend, Update, describe, register
from scalelaw.exceptions import InputError
from scalelaw.executors import Job, execute_group

#: squeue states of a task that has not started, or is running
QUEUED = frozenset({"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"})
RUNNING = frozenset({"RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING", "RESIZING", "SUSPENDED", "STOPPED"})
#: how long a task may be missing from squeue with no result before it counts as lost
#: (results land on a shared file system, which may show them late)
GRACE_S = 30.0


@dataclass(frozen=True)
class SlurmOptions:
    """What each task asks for. ``None`` for CPUs or GPUs: what fits the partition's
    nodes (CPUs: 8 or the node's count if fewer; GPUs: 1 where the nodes have any, else 0).
    ``time_min``: each task's time limit, minutes; a task still unaccounted for
    ``deadline_margin_min`` after it is reported lost. ``cluster``: submitit's cluster
    (None: SLURM when ``sbatch`` is present; ``"debug"`` runs tasks in this process)."""

    partition: str | None = None
    time_min: int = 60
    gpus_per_task: int | None = None
    cpus_per_task: int | None = None
    array_parallelism: int = 64
    cluster: str | None = None
    deadline_margin_min: float = 10.0
    poll_s: float = 2.0


@dataclass(frozen=True)
class Node:
    """One node of a partition as ``sinfo`` lists it."""

    partition: str
    cpus: int
    gpus: int
    time_limit_min: float  # inf when the partition has none
    available: bool
    default: bool


def parse_sinfo(text: str) -> list[Node]:
    """Nodes from ``sinfo -h -N -o '%R|%c|%G|%l|%a|%P'`` output."""
    nodes = []
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 6:
            continue
        name, cpus, gres, limit, avail, shown = parts
        nodes.append(
            Node(
                partition=name,
                cpus=int(re.match(r"\d+", cpus).group()) if re.match(r"\d+", cpus) else 0,
                gpus=gpu_count(gres),
                time_limit_min=parse_time_limit(limit),
                available=avail.strip() == "up",
                default=shown.endswith("*"),
            )
        )
    return nodes


def gpu_count(gres: str) -> int:
    """GPUs per node in a GRES string such as ``gpu:4``, ``gpu:a100:8(S:0-1)`` or ``(null)``."""
    total = 0
    for item in gres.split(","):
        fields = re.sub(r"\(.*?\)", "", item).split(":")
        if fields[0] == "gpu" and len(fields) >= 2 and fields[-1].isdigit():
            total += int(fields[-1])
    return total


def parse_time_limit(text: str) -> float:
    """Minutes in a SLURM time limit (``infinite``, ``30:00``, ``2:00:00``, ``1-12:00:00``)."""
    text = text.strip()
    if text.lower() in ("infinite", "unlimited", "n/a", ""):
        return float("inf")
    days, _, clock = text.rpartition("-")
    parts = [int(p) for p in clock.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0)  # mm:ss or ss
    hours, minutes, seconds = parts
    return (int(days or 0) * 24 + hours) * 60 + minutes + seconds / 60


def resolve_request(options: SlurmOptions, nodes: Sequence[Node]) -> tuple[str, int, int]:
    """(partition, CPUs, GPUs) per task that ``nodes`` can serve, or an InputError that
    names the option to change."""
    partitions = sorted({n.partition for n in nodes})
    if not nodes:
        raise InputError("the slurm backend: sinfo lists no partitions; is the cluster up?")
    if options.partition is None:
        defaults = [n for n in nodes if n.default]
        if not defaults:
            raise InputError(f"--partition: the cluster has no default partition; choose one of {partitions}")
        partition = defaults[0].partition
    else:
        partition = options.partition
    mine = [n for n in nodes if n.partition == partition]
    if not mine:
        raise InputError(f"--partition {partition!r}: no such partition; choose one of {partitions}")
    up = [n for n in mine if n.available] or mine
    max_cpus = max(n.cpus for n in up)
    max_gpus = max(n.gpus for n in up)
    cpus = min(8, max_cpus) if options.cpus_per_task is None else options.cpus_per_task
    if cpus > max_cpus:
        raise InputError(
            f"--cpus-per-task {cpus}: partition {partition!r} has at most {max_cpus} CPUs per node; "
            f"ask for {max_cpus} or fewer (the task would stay pending forever)"
        )
    gpus = (1 if max_gpus else 0) if options.gpus_per_task is None else options.gpus_per_task
    if gpus > max_gpus:
        raise InputError(
            f"--gpus-per-task {gpus}: partition {partition!r} has "
            + (f"at most {max_gpus} GPUs per node" if max_gpus else "no GPUs")
            + f"; ask for {max_gpus} or fewer"
        )
    limit = min(n.time_limit_min for n in up)
    if options.time_min > limit:
        raise InputError(
            f"--time-min {options.time_min}: partition {partition!r} allows at most {limit:g} minutes per job"
        )
    return partition, cpus, gpus


def cluster_nodes() -> list[Node]:
    """The cluster's nodes, from ``sinfo``."""
    if shutil.which("sinfo") is None:
        raise InputError("the slurm backend needs SLURM's client commands (sinfo, sbatch, squeue) on PATH")
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%R|%c|%G|%l|%a|%P"], capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired:
        raise InputError("the slurm backend: sinfo did not answer in 60 s; is slurmctld up?") from None
    if out.returncode != 0:
        raise InputError(f"the slurm backend: sinfo failed: {out.stderr.strip() or out.stdout.strip()}")
    return parse_sinfo(out.stdout)


def queue_states(job_ids: Sequence[str]) -> dict[str, str] | None:
    """``{task id: squeue state}`` for the tasks of ``job_ids`` still known to SLURM; None
    when squeue could not be asked (the caller keeps its last view)."""
    if not job_ids:
        return {}
    try:
        out = subprocess.run(
            ["squeue", "-h", "-r", "-t", "all", "-j", ",".join(sorted(set(job_ids))), "-o", "%i|%T"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        # squeue refuses a list in which every job has left slurmctld's memory
        return {} if "Invalid job id" in out.stderr else None
    states = {}
    for line in out.stdout.splitlines():
        task, _, state = line.strip().partition("|")
        if task:
            states[task] = state.split()[0] if state else ""
    return states


@register
class SlurmBackend(Backend):
    name = "slurm"

    def __init__(self, options: SlurmOptions | None = None, **fields: Any):
        self.options = options or SlurmOptions(**fields)
        self.parallelism = 1  # each task has a node's memory to itself
        self._jobs: list[Any] = []
        self._request: tuple[str, int, int] | None = None

    @property
    def real_slurm(self) -> bool:
        return self.options.cluster in (None, "slurm") and shutil.which("sbatch") is not None

    def check(self, n_groups: int) -> None:
        if self.options.cluster in (None, "slurm") and shutil.which("sbatch") is None:
            if self.options.cluster == "slurm":
                raise InputError("--cluster slurm: sbatch is not on PATH")
            raise InputError(
                "--backend slurm: SLURM's sbatch is not on PATH; run on a login node "
                "(or --cluster debug to try the path in this process)"
            )
        if self.real_slurm:
            self._request = resolve_request(self.options, cluster_nodes())

    def submit(self, root: Path, groups: Sequence[Sequence[Job]], fuse: bool) -> None:
        try:
            import submitit
        except ImportError:
            raise InputError("the slurm backend needs submitit: pip install 'scalelaw[slurm]'") from None
        root = Path(root)
        if self.real_slurm:
            if self._request is None:
                self.check(len(groups))
            cancel_orphans(root)
        executor = submitit.AutoExecutor(folder=root / "submitit", cluster=self.options.cluster)
        params: dict[str, Any] = {
            "timeout_min": self.options.time_min,
            "slurm_array_parallelism": self.options.array_parallelism,
        }
        if executor.cluster == "slurm" and self._request is not None:
            partition, cpus, gpus = self._request
            params.update(
                slurm_partition=partition, cpus_per_task=cpus, tasks_per_node=1, nodes=1, gpus_per_node=gpus
            )
            if not gpus:
                params["gpus_per_node"] = None  # no --gpus-per-node at all: a GPU-less node refuses even 0
        executor.update_parameters(**params)
        n = len(groups)
        self._jobs = executor.map_array(execute_group, [str(root)] * n, list(groups), [fuse] * n) if n else []
        self._submitted_at = time.monotonic()
        if executor.cluster == "slurm":
            record_jobs(root, [j.job_id for j in self._jobs])

    def updates(self) -> Iterator[Update]:
        if not self.real_slurm:
            yield from self._wait_in_process()
            return
        deadline_s = (self.options.time_min + self.options.deadline_margin_min) * 60
        state = dict.fromkeys(range(len(self._jobs)), "pending")
        started: dict[int, float] = {}
        missing_since: dict[int, float] = {}
        while any(s not in ("done", "failed", "lost") for s in state.values()):
            queue = queue_states([j.job_id.split("_")[0] for j in self._jobs])
            now = time.monotonic()
            for i, job in enumerate(self._jobs):
                if state[i] in ("done", "failed", "lost"):
                    continue
                if job.paths.result_pickle.exists():
                    update = _outcome(i, job)
                elif queue is None:
                    continue  # squeue did not answer: keep the last view
                elif job.job_id in queue and queue[job.job_id] in QUEUED:
                    update = Update(i, "pending")
                elif job.job_id in queue and queue[job.job_id] in RUNNING:
                    started.setdefault(i, now)
                    update = Update(i, "running")
                    if now - started[i] > deadline_s:
                        update = Update(
                            i, "lost", f"task {job.job_id} still runs past its time limit plus margin"
                        )
                        job.cancel(check=False)
                else:  # gone from the queue, or ended, without a result (yet)
                    since = missing_since.setdefault(i, now)
                    if now - since < GRACE_S:
                        continue
                    ended = queue.get(job.job_id) if queue else None
                    update = Update(
                        i,
                        "lost",
                        f"task {job.job_id} ended "
                        + (f"as {ended} " if ended else "")
                        + "without a result (cancelled, killed, out of memory or timed out); "
                        + f"see {job.paths.stderr}",
                    )
                if update.state != state[i]:
                    state[i] = update.state
                    yield update
            if any(s not in ("done", "failed", "lost") for s in state.values()):
                time.sleep(self.options.poll_s)

    def _wait_in_process(self) -> Iterator[Update]:
        for i, job in enumerate(self._jobs):
            yield _outcome(i, job)

    def cancel(self) -> None:
        for job in self._jobs:
            try:
                job.cancel(check=False)
            except Exception:
                pass


def _outcome(i: int, job: Any) -> Update:
    try:
        job.result()
    except Exception as err:
        return Update(i, "failed", describe(err))
    return Update(i, "done")


JOBS_FILE = "slurm_jobs.json"


def record_jobs(root: Path, job_ids: Sequence[str]) -> None:
    """Write the array's job ids into the sweep directory, for :func:`cancel_orphans`."""
    arrays = sorted({j.split("_")[0] for j in job_ids})
    atomic_write_text(root / JOBS_FILE, json.dumps({"jobs": arrays}))


def cancel_orphans(root: Path) -> list[str]:
    """Cancel the SLURM tasks a previous launcher of this sweep left queued or running
    (it is gone: this launcher holds the sweep's lock). Returns the job ids cancelled."""
    path = root / JOBS_FILE
    try:
        arrays = [str(j) for j in json.loads(path.read_text())["jobs"] if str(j).isdigit()]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    live = queue_states(arrays) or {}
    alive = sorted({t.split("_")[0] for t, s in live.items() if s in QUEUED | RUNNING})
    if alive:
        subprocess.run(["scancel", *alive], capture_output=True, timeout=60)
    path.unlink(missing_ok=True)
    return alive
