"""Run a sweep: plan -> skip finished runs -> execute -> runs table -> refine -> summary.

``run_sweep`` is resumable: a run's id is the hash of its full spec, finished runs
(a complete ``result.json``) are skipped, interrupted or corrupt ones are rerun and
reported as such. With ``refine_rounds > 0``, cells whose optimum sits on the edge of
the lr or batch grid get one more grid point beyond that edge (the spec's step factor),
round after round, until every optimum is bracketed or the rounds run out; a cell where
every run diverged gets one lr step below its grid.

Before anything runs, :func:`plan_sweep` checks what a spec cannot show by itself: the
run count against the run limit (``limits.max_runs``, or ``max_runs`` / ``--max-runs``,
a positive integer; 0 is refused, ``--dry-run`` is the way to plan without running),
counted arithmetically so an oversized grid is never built; and the output directory:
``runs/<name>`` (the name is one safe path component, and the resolved directory must sit
directly in ``runs/``) or the one given, which must be a directory this process can write.

Divergence is a result, not a failure: the summary names every cell where all runs
diverged and says how to move the lr grid. :meth:`SweepReport.check` raises
:class:`~scalelaw.exceptions.NotEnoughDataError` only when every run of the sweep
diverged (``scalelaw sweep`` then exits 2, after printing the summary); a sweep where
some cells diverged entirely and others did not exits 0 with the summary's warning.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from scalelaw.backends import BACKENDS, Backend, make_backend, run_jobs
from scalelaw.backends.ray import RayOptions
from scalelaw.backends.slurm import SlurmOptions
from scalelaw.exceptions import InputError, NotEnoughDataError
from scalelaw.executors import Job
from scalelaw.optima import cell_optima
from scalelaw.runs import validate_runs
from scalelaw.runspec import LR_RANGE, MAX_BATCH, RunSpec, is_int
from scalelaw.store import RunStore
from scalelaw.sweepspec import MAX_SWEEP_RUNS, NAME_RULE, SweepSpec, valid_name

RUNS_DIR = Path("runs")  # default home of sweeps: runs/<name>


def run_id(spec: dict[str, Any]) -> str:
    """The run's id, :func:`scalelaw.record.run_id_of` its full RunSpec (defaults filled in)."""
    return RunSpec(**spec).run_id


@dataclass
class SweepReport:
    """What a sweep did. ``table``: the runs table of every finished run of the sweep.
    ``lr_step``, ``lr_count``: the spec's lr grid, for the advice on diverged cells."""

    root: Path
    planned: int = 0
    skipped: int = 0
    ran: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    redone: list[str] = field(default_factory=list)
    refine_added: int = 0
    table: pd.DataFrame | None = None
    optima: pd.DataFrame | None = None
    lr_step: float = 2**0.5
    lr_count: int = 5

    def diverged_cells(self) -> pd.DataFrame:
        """The optima rows of the cells where every run diverged (none usable)."""
        if self.optima is None or self.optima.empty:
            return pd.DataFrame()
        return self.optima[self.optima["n_used"] == 0]

    @property
    def all_diverged(self) -> bool:
        """Every run that finished diverged (and at least one finished)."""
        return (
            self.optima is not None
            and not self.optima.empty
            and len(self.diverged_cells()) == len(self.optima)
        )

    def _diverged_lrs(self) -> tuple[float, float, float]:
        """(lowest, highest lr of the cells that diverged everywhere, a grid center for
        the same step and count whose top is one step below the lowest)."""
        cells = self.diverged_cells()
        keys = set(zip(cells["params"], cells["tokens"], strict=True))
        runs = self.table[[k in keys for k in zip(self.table["params"], self.table["tokens"], strict=True)]]
        low, high = float(runs["lr"].min()), float(runs["lr"].max())
        return low, high, low / self.lr_step ** ((self.lr_count + 1) / 2)

    def lr_advice(self) -> str:
        """How to move the lr grid below the cells that diverged everywhere."""
        if self.diverged_cells().empty or self.table is None:
            return ""
        low, high, center = self._diverged_lrs()
        if center / self.lr_step ** ((self.lr_count - 1) / 2) < LR_RANGE[0]:
            return (
                f"every lr from {low:.3g} to {high:.3g} diverged there, down to the floor of the lr "
                f"range ({LR_RANGE[0]:g}): not the lr's doing; lengthen recipe.warmup, keep "
                "recipe.grad_clip > 0, or check the data"
            )
        return (
            f"every lr from {low:.3g} to {high:.3g} diverged there: the optimum lies below the grid. "
            f"Lower it, e.g. lr.center = {center:.3g} (same step and count: its top is one step "
            f"below {low:.3g}), or add lr.values below {low:.3g}; --refine N also steps such cells "
            "down. If small lrs diverge too, lengthen recipe.warmup or keep recipe.grad_clip > 0"
        )

    def summary(self) -> str:
        lines = [
            f"sweep in {self.root}: {self.planned} runs planned, {self.skipped} already finished, "
            f"{self.ran} run now, {len(self.failed)} failed"
            + (f", {self.refine_added} added by refinement" if self.refine_added else "")
        ]
        lines += [f"  redone: {r}" for r in self.redone]
        lines += [f"  failed: {r}: {e}" for r, e in self.failed]
        if self.table is not None and not self.table.empty:
            diverged = int(self.table["diverged"].sum())
            lines.append(
                f"  runs table: {self.root / 'runs.parquet'} ({len(self.table)} runs, {diverged} diverged)"
            )
        if self.optima is not None and not self.optima.empty:
            lines.append(f"  {'N':>10} {'D':>10} {'best loss':>10} {'best lr':>9} {'best B':>8}  bracketed")
            for r in self.optima.to_dict("records"):
                if r["n_used"] == 0:
                    lines.append(
                        f"  {r['params']:10.3g} {r['tokens']:10.3g}  "
                        f"every one of its {r['n_runs']} runs diverged"
                    )
                    continue
                lines.append(
                    f"  {r['params']:10.3g} {r['tokens']:10.3g} {r['loss_best']:10.4f} {r['lr_best']:9.3g} "
                    f"{r['batch_size_best']:8.3g}  {'yes' if r['bracketed'] else 'NO: ' + r['warning']}"
                )
            cells = self.diverged_cells()
            if not cells.empty:
                which = "every cell" if self.all_diverged else f"{len(cells)} of {len(self.optima)} cells"
                lines.append(f"  WARNING: every run diverged in {which}; {self.lr_advice()}")
        return "\n".join(lines)

    def check(self) -> None:
        """Raise :class:`NotEnoughDataError` when every run of the sweep diverged: the
        runs are recorded, but there is nothing to fit; the message says what to change."""
        if self.all_diverged:
            low, _, center = self._diverged_lrs()
            floor = center / self.lr_step ** ((self.lr_count - 1) / 2) < LR_RANGE[0]
            fix = (
                "the lr grid already reaches the floor of the lr range: lengthen recipe.warmup or keep "
                "recipe.grad_clip > 0"
                if floor
                else f"lower the lr grid below {low:.3g}, e.g. lr.center = {center:.3g}"
            )
            raise NotEnoughDataError(
                f"every one of the {len(self.table)} runs in {self.root} diverged ({len(self.optima)} "
                f"cells): nothing to fit; {fix} (see the summary above)"
            )


def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="run", file=sys.stderr, disable=total == 0)


def execute(
    store: RunStore,
    runs: list[dict[str, Any]],
    report: SweepReport,
    backend: Backend,
    desc: str = "runs",
    fuse: bool = True,
) -> None:
    """Run what is not finished yet; record skips, redos and failures in ``report``."""
    todo = []
    for spec in runs:
        rid = run_id(spec)
        status = store.status(rid)
        if status.state == "finished":
            report.skipped += 1
            continue
        if status.state in ("unfinished", "corrupt"):
            report.redone.append(f"{rid} ({status.detail})")
        todo.append(Job(rid, spec))
    bar = _progress(len(todo), desc)

    def on_done(rid: str, error: str | None) -> None:
        if error is None:
            report.ran += 1
        else:
            report.failed.append((rid, error))
        bar.update(1)

    def on_counts(counts: dict[str, int]) -> None:
        bar.set_postfix({k: v for k, v in counts.items() if v}, refresh=True)

    try:
        run_jobs(backend, store.root, todo, fuse, on_done, on_counts)
    finally:
        bar.close()


def build_backend(
    backend: str | Backend,
    workers: int | None = None,
    slurm: SlurmOptions | None = None,
    ray: RayOptions | None = None,
) -> Backend:
    """The backend a sweep runs on: one given as an object, or built by name with its options."""
    if isinstance(backend, Backend):
        return backend
    if backend == "local":
        return make_backend("local", workers=workers)
    if backend == "slurm":
        return make_backend("slurm", options=slurm or SlurmOptions())
    if backend == "ray":
        return make_backend("ray", options=ray or RayOptions())
    return make_backend(backend)


def refinement(spec: SweepSpec, table: pd.DataFrame) -> list[dict[str, Any]]:
    """New runs one grid step beyond the edge, for every unbracketed cell; one lr step
    below the grid for a cell where every run diverged. Steps that would leave what a
    run can train (the lr range, a batch above the cell's tokens) are not taken."""
    optima = cell_optima(validate_runs(table, min_lrs=1), n_boot=0)
    new = []
    for cell in optima[~optima["bracketed"]].to_dict("records"):
        runs = table[(table["params"] == cell["params"]) & (table["tokens"] == cell["tokens"])]
        decay = cell.get("weight_decay")  # a [weight_decay] axis: one cell per value
        if decay is not None and "weight_decay" in runs:
            runs = runs[runs["weight_decay"] == decay]
        shape = runs.iloc[0]
        lrs, batches = sorted(runs["lr"].unique()), sorted(runs["batch_size"].unique())
        if cell["n_used"] == 0 or not cell["lr_bracketed"]:
            up = cell["n_used"] > 0 and cell["lr_best"] >= lrs[-1]
            lr = lrs[-1] * spec.lr_step if up else lrs[0] / spec.lr_step
            grid = [(lr, b) for b in batches] if LR_RANGE[0] <= lr <= LR_RANGE[1] else []
        else:
            up = cell["batch_size_best"] >= batches[-1]
            b = batches[-1] * spec.batch_step if up else batches[0] / spec.batch_step
            b = max(spec.recipe.seq_len, round(b / spec.recipe.seq_len) * spec.recipe.seq_len)
            fits = b <= min(MAX_BATCH, int(cell["tokens"]))
            grid = [(lr, int(b)) for lr in runs["lr"].unique()] if fits else []
        for lr, b in grid:
            new.append(
                spec.kwargs_for(
                    int(shape["width"]),
                    int(shape["depth"]),
                    float(lr),
                    int(b),
                    int(cell["tokens"]),
                    int(shape["seed"]),
                    weight_decay=None if decay is None else float(decay),
                )
            )
    return new


def _limit(spec: SweepSpec, max_runs: int | None) -> int:
    """The run limit: ``max_runs`` (``--max-runs``) when given, else ``limits.max_runs``."""
    if max_runs is None:
        return spec.max_runs
    if not is_int(max_runs) or max_runs < 1:
        raise InputError(
            f"--max-runs {max_runs!r}: must be a positive integer, the most runs the sweep may plan "
            "(to plan without running, use --dry-run)"
        )
    return int(max_runs)


def output_dir(
    spec: SweepSpec, out: str | os.PathLike | None = None, runs_dir: str | os.PathLike = RUNS_DIR
) -> Path:
    """Where the sweep writes: ``out`` when given, else ``runs_dir/<name>``, which must
    resolve to a directory directly inside ``runs_dir`` (no escape through the name or a link)."""
    if out is not None:
        text = os.fspath(out) if isinstance(out, (str, os.PathLike)) else None
        if not isinstance(text, str) or not text.strip() or "\0" in text:
            raise InputError(f"--out {out!r}: must be a directory path")
        return Path(text)
    if not valid_name(spec.name):
        raise InputError(
            f"sweep name {spec.name!r}: must be {NAME_RULE} (the sweep writes to {runs_dir}/<name>)"
        )
    base = Path(runs_dir)
    root = base / spec.name
    try:
        inside = root.resolve().parent == base.resolve()
    except (OSError, RuntimeError) as err:  # a symlink loop
        raise InputError(f"output directory {root}: cannot be resolved ({err})") from None
    if not inside:
        raise InputError(
            f"output directory {root} resolves to {root.resolve()}, outside {base.resolve()}: "
            "it is a link elsewhere; remove it or pass --out"
        )
    return root


def check_writable(root: str | os.PathLike, create: bool = True) -> Path:
    """Refuse an output directory this process cannot write, before any run starts.

    ``create``: make the directory; either way, write (and at once remove) an unnamed
    probe file in it, or without ``create`` in its nearest existing parent, so that
    planning creates nothing.
    """
    root = Path(root)
    why = ""
    try:
        if root.exists() and not root.is_dir():
            why = "it exists and is not a directory"
        else:
            if create:
                root.mkdir(parents=True, exist_ok=True)
            probe = root.absolute()
            while not probe.exists() and probe != probe.parent:
                probe = probe.parent
            if not probe.is_dir():
                why = f"{probe} is not a directory"
            else:
                with tempfile.TemporaryFile(dir=probe):
                    pass
    except OSError as err:
        why = err.strerror or str(err)
    if why:
        raise InputError(
            f"output directory {root}: cannot write there ({why}); pass --out a writable directory"
        )
    return root


def plan_sweep(
    spec: SweepSpec,
    out: str | os.PathLike | None = None,
    max_runs: int | None = None,
    yes: bool = False,
    runs_dir: str | os.PathLike = RUNS_DIR,
    backend: str = "local",
    workers: int | None = None,
    refine_rounds: int = 0,
    slurm: SlurmOptions | None = None,
    ray: RayOptions | None = None,
) -> Path:
    """Check a sweep before anything is built or trained; returns its output directory.

    The run count (``spec.n_runs``, the product of the axis sizes) must stay within the
    limit (``max_runs`` or the spec's ``limits.max_runs``) unless ``yes``; the output
    directory (:func:`output_dir`) must be writable (:func:`check_writable`, which
    creates nothing here); the options :func:`run_sweep` will get must be usable. Raises
    :class:`InputError` naming the limit, the option or the path.
    """
    _check_options(backend, workers, refine_rounds, slurm, ray)
    limit = _limit(spec, max_runs)
    if spec.n_runs > limit and not yes:
        raise InputError(
            f"{spec.n_runs} runs exceed the limit of {limit} "
            f"({'--max-runs' if max_runs is not None else 'limits.max_runs'}); "
            "raise the limit, or pass --yes to plan and run them (with --dry-run: to price them first)"
        )
    return check_writable(output_dir(spec, out, runs_dir), create=False)


def _check_options(
    backend: str | Backend,
    workers: int | None,
    refine_rounds: int,
    slurm: SlurmOptions | None = None,
    ray: RayOptions | None = None,
) -> None:
    from scalelaw.backends import _load_builtin

    _load_builtin()
    if not isinstance(backend, Backend) and backend not in BACKENDS:
        raise InputError(f"--backend {backend!r}: choose one of {', '.join(sorted(BACKENDS))}")
    if workers is not None and (not is_int(workers) or workers < 1):
        raise InputError(f"--workers {workers!r}: must be a positive integer (worker processes)")
    if not is_int(refine_rounds) or refine_rounds < 0:
        raise InputError(f"--refine {refine_rounds!r}: must be an integer >= 0 (refinement rounds)")
    if backend == "slurm" and slurm is not None:
        for name, low in (
            ("time_min", 1),
            ("gpus_per_task", 0),
            ("cpus_per_task", 1),
            ("array_parallelism", 1),
        ):
            value = getattr(slurm, name)
            if value is None and name.endswith("per_task"):
                continue  # None: what fits the partition's nodes
            if not is_int(value) or value < low:
                flag = "--" + name.replace("_", "-")
                raise InputError(f"{flag} {value!r}: must be an integer >= {low}")
    if backend == "ray" and ray is not None:
        if not is_int(ray.cpus_per_task) or ray.cpus_per_task < 1:
            raise InputError(f"--cpus-per-task {ray.cpus_per_task!r}: must be an integer >= 1")
        if ray.gpus_per_task is not None and not (0 <= ray.gpus_per_task < 1e3):
            raise InputError(f"--gpus-per-task {ray.gpus_per_task!r}: must be a number >= 0")
        if not is_int(ray.max_retries) or ray.max_retries < 0:
            raise InputError(f"max_retries {ray.max_retries!r}: must be an integer >= 0")


def run_sweep(
    spec: SweepSpec,
    root: str | Path,
    backend: str | Backend = "local",
    workers: int | None = None,
    slurm: SlurmOptions | None = None,
    refine_rounds: int = 0,
    log: Callable[[str], None] = print,
    fuse: bool = True,
    max_runs: int | None = None,
    ray: RayOptions | None = None,
) -> SweepReport:
    """Run (or resume) a sweep into ``root`` and assemble its runs table.

    ``max_runs``: the run budget refinement stays within (default: the spec's
    ``limits.max_runs``). ``fuse``: train runs that differ only in lr, weight decay, init std, token budget
    or schedule as one stacked model (scalelaw.proxy.fused); False: each on its own.
    ``backend``: ``"local"`` (``workers``), ``"slurm"`` (``slurm``), ``"ray"`` (``ray``) or
    any :class:`scalelaw.backends.Backend`. Every option, every run's spec and the output
    directory are checked before the first run starts (:class:`InputError`); runs that
    diverge are results (see :class:`SweepReport`).
    """
    _check_options(backend, workers, refine_rounds, slurm, ray)
    limit = _limit(spec, max_runs)
    if spec.n_runs > MAX_SWEEP_RUNS:
        raise InputError(f"{spec.n_runs:,} runs: more than one sweep may plan ({MAX_SWEEP_RUNS:,})")
    runs = spec.run_kwargs()
    ids = [run_id(r) for r in runs]  # builds every RunSpec: a run that cannot train stops us here
    root = check_writable(root, create=True)
    store = RunStore(root)
    with store.locked():  # one launcher per directory: a second is refused, naming the holder
        report = SweepReport(Path(root), planned=len(runs), lr_step=spec.lr_step, lr_count=len(spec.lrs))
        executor = build_backend(backend, workers, slurm, ray)
        execute(store, runs, report, executor, fuse=fuse)
        for round_ in range(1, refine_rounds + 1):
            known = set(ids)
            extra = [r for r in refinement(spec, store.table(ids)) if run_id(r) not in known]
            if not extra:
                break
            if report.planned + len(extra) > limit:
                log(
                    f"refine round {round_}: {len(extra)} more runs would exceed the run budget of {limit} "
                    "(limits.max_runs or --max-runs); stopping with the cells below unbracketed"
                )
                break
            log(f"refine round {round_}: {len(extra)} new runs beyond the edges of unbracketed cells")
            ids += [run_id(r) for r in extra]
            report.refine_added += len(extra)
            report.planned += len(extra)
            execute(store, extra, report, executor, desc=f"refine {round_}", fuse=fuse)
        if store.assemble(ids) is not None:
            report.table = store.table(ids)
            report.optima = cell_optima(validate_runs(report.table, min_lrs=1), n_boot=0)
        return report
