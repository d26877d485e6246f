"""Run a sweep: plan -> skip finished runs -> execute -> runs table -> refine -> summary.

``run_sweep`` is resumable: a run's id is the hash of its full spec, finished runs
(a complete ``result.json``) are skipped, interrupted or corrupt ones are rerun and
reported as such. With ``refine_rounds > 0``, cells whose optimum sits on the edge of
the lr or batch grid get one more grid point beyond that edge (the spec's step factor),
round after round, until every optimum is bracketed or the rounds run out.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from scalelaw.exceptions import InputError
from scalelaw.executors import Job, SlurmOptions, run_local, run_slurm
from scalelaw.optima import cell_optima
from scalelaw.runs import validate_runs
from scalelaw.runspec import RunSpec
from scalelaw.store import RunStore, holds_sweep_lock
from scalelaw.sweepspec import SweepSpec


def run_id(spec: dict[str, Any]) -> str:
    """The run's id, :func:`scalelaw.record.run_id_of` its full RunSpec (defaults filled in)."""
    return RunSpec(**spec).run_id


@dataclass
class SweepReport:
    """What a sweep did. ``table``: the runs table of every finished run of the sweep."""

    root: Path
    planned: int = 0
    skipped: int = 0
    ran: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    redone: list[str] = field(default_factory=list)
    refine_added: int = 0
    table: pd.DataFrame | None = None
    optima: pd.DataFrame | None = None

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
        if self.optima is not None:
            lines.append(f"  {'N':>10} {'D':>10} {'best loss':>10} {'best lr':>9} {'best B':>8}  bracketed")
            for r in self.optima.itertuples():
                lines.append(
                    f"  {r.params:10.3g} {r.tokens:10.3g} {r.loss_best:10.4f} {r.lr_best:9.3g} "
                    f"{r.batch_size_best:8.3g}  {'yes' if r.bracketed else 'NO: ' + r.warning}"
                )
        return "\n".join(lines)


def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="run", file=sys.stderr, disable=total == 0)


def execute(
    store: RunStore,
    runs: list[dict[str, Any]],
    report: SweepReport,
    backend: str,
    workers: int | None,
    slurm: SlurmOptions | None,
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

    def on_done(rid: str, error: BaseException | None) -> None:
        if error is None:
            report.ran += 1
        else:
            report.failed.append((rid, f"{type(error).__name__}: {error}"))
        bar.update(1)
        bar.set_postfix(failed=len(report.failed))

    try:
        if backend == "local":
            run_local(store.root, todo, workers, on_done, fuse=fuse)
        elif backend == "slurm":
            run_slurm(store.root, todo, slurm or SlurmOptions(), on_done, fuse=fuse)
        else:
            raise InputError(f"backend must be 'local' or 'slurm', got {backend!r}")
    finally:
        bar.close()


def refinement(spec: SweepSpec, table: pd.DataFrame) -> list[dict[str, Any]]:
    """New runs one grid step beyond the edge, for every unbracketed cell."""
    optima = cell_optima(validate_runs(table, min_lrs=1), n_boot=0)
    new = []
    for cell in optima[~optima["bracketed"]].itertuples():
        runs = table[(table["params"] == cell.params) & (table["tokens"] == cell.tokens)]
        decay = getattr(cell, "weight_decay", None)  # a [weight_decay] axis: one cell per value
        if decay is not None and "weight_decay" in runs:
            runs = runs[runs["weight_decay"] == decay]
        shape = runs.iloc[0]
        lrs, batches = sorted(runs["lr"].unique()), sorted(runs["batch_size"].unique())
        if not cell.lr_bracketed:
            lrs = [lrs[-1] * spec.lr_step] if cell.lr_best >= lrs[-1] else [lrs[0] / spec.lr_step]
            grid = [(lr, b) for lr in lrs for b in batches]
        else:
            up = cell.batch_size_best >= batches[-1]
            b = batches[-1] * spec.batch_step if up else batches[0] / spec.batch_step
            b = max(spec.recipe.seq_len, round(b / spec.recipe.seq_len) * spec.recipe.seq_len)
            grid = [(lr, int(b)) for lr in runs["lr"].unique()]
        for lr, b in grid:
            new.append(
                spec.kwargs_for(
                    int(shape["width"]),
                    int(shape["depth"]),
                    float(lr),
                    int(b),
                    int(cell.tokens),
                    int(shape["seed"]),
                    weight_decay=None if decay is None else float(decay),
                )
            )
    return new


@holds_sweep_lock  # one launcher per directory: a second is refused, naming the holder
def run_sweep(
    spec: SweepSpec,
    root: str | Path,
    backend: str = "local",
    workers: int | None = None,
    slurm: SlurmOptions | None = None,
    refine_rounds: int = 0,
    log: Callable[[str], None] = print,
    fuse: bool = True,
    max_runs: int | None = None,
) -> SweepReport:
    """Run (or resume) a sweep into ``root`` and assemble its runs table.

    ``max_runs``: the run budget refinement stays within (default: the spec's
    ``limits.max_runs``). ``fuse``: train runs that differ only in lr, weight decay, init std, token budget
    or schedule as one stacked model (scalelaw.proxy.fused); False: each on its own.
    """
    store = RunStore(root)
    runs = spec.run_kwargs()
    ids = [run_id(r) for r in runs]
    report = SweepReport(Path(root), planned=len(runs))
    execute(store, runs, report, backend, workers, slurm, fuse=fuse)
    limit = max_runs or spec.max_runs
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
        execute(store, extra, report, backend, workers, slurm, desc=f"refine {round_}", fuse=fuse)
    if store.assemble(ids) is not None:
        report.table = store.table(ids)
        report.optima = cell_optima(validate_runs(report.table, min_lrs=1), n_boot=0)
    return report
