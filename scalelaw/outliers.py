"""Screen a runs table for rows no landscape can explain, before a law is fitted to it.

One mistyped row (a loss of 0.41 for 4.11, an lr or batch size off by 10x, a run filed
under the wrong N) must not move a law: a run whose loss is far below what its
neighbours allow becomes its cell's best, moves the cell's optimum and optimal loss,
and made good runs look diverged (they are "1.5x the best"). :func:`screen_runs` finds
such rows; :func:`scalelaw.fit` leaves them out and names them (``outliers=``).

Two kinds of evidence:

1. **A column that disagrees with the rest of its row** (:func:`_mislabelled`):
   ``params`` unlike every other run of the same shape (``width``, ``depth``,
   ``heads``: N is a function of the shape); ``tokens`` unlike ``tokens_trained`` (more
   than 2x off, while every other run agrees); a ``batch_size`` that is not whole
   sequences of ``seq_len`` while every other run's is. At most ``MAX_PER_CELL`` runs
   of a shape may disagree: so few cannot be a cell (a cell needs 3 lrs), more is a
   column the table does not hold.
2. **A loss its cell's other runs cannot explain** (:func:`_screen_cell`). Each run
   that could shape the fit (the ``min_points + 1`` best of its cell and those within
   ``window`` of the best: the runs :func:`scalelaw.optima.near_optimum` takes) is
   compared with a deletion fit (Cook 1977) of the cell's *other* runs: a quadratic in
   (log lr, log batch size) on log loss over the runs that have not blown up (loss <=
   ``BLOWUP_FACTOR`` x the cell's *second*-best loss, which one bad row cannot move),
   each weighted by exp(-(its log loss above that reference) / ``TAU``) so the bowl's
   bottom is fitted closely and the rim, which no quadratic follows, counts little.
   The run's residual r (log loss minus the fit's prediction at its lr and batch size)
   is divided by the spread of the fit's residuals (1.4826 x the median absolute
   residual of the heavier half of the runs; never below the table's median spread
   over cells, ``POOLED_FLOOR``, nor ``SCALE_FLOOR``) times sqrt(1 + leverage), the
   leverage capped at ``LEVERAGE_CAP`` so a run far off the grid (an lr 10x too large)
   is still judged against the bowl's curvature. It is an outlier when that score and
   r pass one of ``THRESHOLDS`` below zero, unless a neighbour that is itself far too
   high (a loss typed too large next to it) explains the dip (:func:`_spike_nearby`).
   Only too-good runs are left out: worse-than-expected runs are what real sweeps
   produce (spikes, instabilities) and a worse run does not pull a fit.

   The worst outlier of a cell is left out and the cell tested again, at most
   ``MAX_PER_CELL`` times. Measured on the clean tables (every near-best run of
   ``data/*.parquet``, ``data/example_runs.csv`` and the 1911-run Step Law table), the
   most extreme score is -3.9 (a 3.7% dip in ``recipe_b_mup.parquet``, a CPU run's
   noise) and no run dips more than 3.7%, so none is flagged, nor after any one of
   their rows is deleted or any near-best loss raised 3-30%; a loss 10% too low, or
   the best run's lr or batch size 10x or 100x off, is flagged in 90-100% of cases.

Blow-ups (loss > ``BLOWUP_FACTOR`` x the reference) where the cell's other runs put the
loss within ``LONE_BLOWUP`` (2%) of the best are named too (``reason="blowup"``): a
loss typed 10x too large, or a lone instability. Fits leave them out as diverged either
way (:func:`scalelaw.runs.divergence_reason`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from scalelaw.optima import MIN_POINTS, MIN_POINTS_CROSS, WINDOW, is_cross, iter_cells
from scalelaw.runs import BLOWUP_FACTOR

# (score, log-loss drop) pairs, any of which marks an outlier: the further below its
# prediction a run is, the less beyond the noise it needs to be. No near-best run of a
# clean table (module docstring) scores below -6 nor dips more than 4.1%.
THRESHOLDS = ((6.0, 0.015), (4.5, 0.06), (4.0, 0.08))
# The deletion fit weights a run by exp(-(its log loss above the cell's reference) / TAU):
# the bowl's bottom, where the runs that shape a fit lie, is fitted closely; the rim,
# which a quadratic cannot follow out to the blow-ups, counts little.
TAU = 0.03
SPIKE = 2.0  # robust units above its prediction: a run that is itself too high
SPIKE_NEIGHBOURS = 4
POOLED_FLOOR = 1.0  # no cell's deletion fit is trusted beyond this x the table's typical spread
SCALE_FLOOR = 1e-3  # log loss: no cell is trusted to predict a run better than 0.1%
LEVERAGE_CAP = 2.0
MAX_PER_CELL = 2  # a cell with more bad rows than this is not a typo: leave it to the user
LONE_BLOWUP = 0.02  # a blow-up where the others predict a loss within 2% of the best
MODES = ("leave_out", "refuse", "keep")


@dataclass(frozen=True)
class Outlier:
    """One run the screen found; ``row`` is its 0-based position in the table screened.

    ``reason``: ``"low"``, a loss far below the ``expected`` loss the cell's other runs
    give at its lr and batch size (left out); ``"blowup"``, a loss far above it where
    the others are near their best (left out as diverged anyway, only named);
    ``"params"`` / ``"tokens"`` / ``"batch_size"``, a ``column`` whose ``value``
    disagrees with the rest of its row or with every run like it (``context`` says how;
    ``expected`` the value that would agree; left out).
    """

    row: int
    run_id: str
    reason: str
    column: str
    value: float
    expected: float
    loss: float
    lr: float
    batch_size: int
    context: str = ""

    @property
    def left_out(self) -> bool:
        """Whether the screen leaves the run out (a blow-up is left out as diverged)."""
        return self.reason != "blowup"

    def describe(self) -> str:
        """One line naming the run, its values and what was expected of it."""
        where = f"run {self.run_id!r} (row {self.row}, 0-based)"
        if self.reason in ("params", "tokens", "batch_size"):
            return f"{where}: {self.column} {self.value:.6g} {self.context}: a typo in {self.column}?"
        values = f"loss {self.loss:.4g} at lr {self.lr:.4g}, batch size {self.batch_size}"
        if self.reason == "blowup":
            return (
                f"{where}: {values} is {self.loss / self.expected:.3g}x the {self.expected:.4g} its "
                "cell's other runs give there; left out as diverged (a typo, or a lone blow-up)"
            )
        ratio = self.expected / self.loss
        below = (
            f"{1 - 1 / ratio:.0%} below"
            if ratio < 2
            else f"{ratio:.3g}x below"
            if ratio < 1e6
            else "far below"
        )
        expected = f"the {self.expected:.4g}" if np.isfinite(self.expected) else "the loss"
        return (
            f"{where}: {values} is {below} {expected} its cell's other runs give there, beyond their "
            "noise: a typo in loss, lr, batch_size, params or tokens?"
        )

    def to_dict(self) -> dict:
        """JSON-ready (a non-finite number as None)."""
        return {
            k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in asdict(self).items()
        }


# Non-embedding params is a function of the shape: runs of one shape share one N.
SHAPE_COLUMNS = ("width", "depth", "heads")
TOKENS_RATIO = 2.0  # tokens_trained / tokens this far from every other run's: a typo


def _usable(runs: pd.DataFrame) -> np.ndarray:
    loss = runs["loss"].to_numpy(float)
    flagged = runs["diverged"].to_numpy(bool) if "diverged" in runs else np.zeros(len(runs), bool)
    stopped = (
        runs["stopped_early"].eq(True).to_numpy() if "stopped_early" in runs else np.zeros(len(runs), bool)
    )
    return np.isfinite(loss) & ~flagged & ~stopped


def _mislabelled(runs: pd.DataFrame) -> list[Outlier]:
    """Runs whose params disagrees with every other run of their shape, or whose tokens
    disagrees with the tokens they trained on (``tokens_trained``) unlike every other run.

    At most ``MAX_PER_CELL`` runs of a shape may disagree with at least 3 that agree:
    so few runs could not form a cell of their own (a cell needs 3 lrs), and more is a
    shape column the table does not hold (an FFN width), not a typo.
    """
    found = []
    shape = [c for c in SHAPE_COLUMNS if c in runs.columns]
    if "width" in shape or "depth" in shape:
        for key, group in runs.groupby(shape, dropna=True):
            counts = group["params"].value_counts()
            if len(counts) < 2 or counts.iloc[0] < 3 or counts.iloc[1:].sum() > MAX_PER_CELL:
                continue
            major = counts.index[0]
            values = key if isinstance(key, tuple) else (key,)
            what = ", ".join(f"{c} {v}" for c, v in zip(shape, values, strict=True))
            context = f"differs from the {major:.6g} of the other {int(counts.iloc[0])} runs of {what}"
            for pos in group.index[group["params"] != major]:
                found.append(_outlier(runs, int(pos), "params", float(major), context))
    if "seq_len" in runs.columns:
        seq_len = pd.to_numeric(runs["seq_len"], errors="coerce").to_numpy(float)
        batch = runs["batch_size"].to_numpy(float)
        known = np.isfinite(seq_len) & (seq_len > 0)
        ragged = known & (np.mod(batch, np.where(known, seq_len, 1.0)) != 0)
        if 0 < ragged.sum() <= MAX_PER_CELL and known.sum() - ragged.sum() >= 3:
            for pos in np.flatnonzero(ragged):
                expected = float(max(1.0, np.round(batch[pos] / seq_len[pos])) * seq_len[pos])
                context = (
                    f"is not whole sequences of its seq_len {int(seq_len[pos])}, as every other run's is"
                )
                found.append(_outlier(runs, int(runs.index[pos]), "batch_size", expected, context))
    if "tokens_trained" in runs.columns:
        trained = pd.to_numeric(runs["tokens_trained"], errors="coerce").to_numpy(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_ratio = np.log(trained / runs["tokens"].to_numpy(float))
        ok = _usable(runs) & np.isfinite(log_ratio)
        if ok.sum() >= 4:
            typical = float(np.median(log_ratio[ok]))
            off = ok & (np.abs(log_ratio - typical) > np.log(TOKENS_RATIO))
            if 0 < off.sum() <= max(MAX_PER_CELL, 0.02 * ok.sum()):
                for pos in np.flatnonzero(off):
                    context = (
                        f"disagrees with its tokens_trained {trained[pos]:.6g}, unlike every other run's"
                    )
                    expected = float(trained[pos] / np.exp(typical))
                    found.append(_outlier(runs, int(runs.index[pos]), "tokens", expected, context))
    return found


def _design(x: np.ndarray, y: np.ndarray, terms: tuple[str, ...]) -> np.ndarray:
    cols = {"1": np.ones_like(x), "x": x, "xx": x * x, "y": y, "yy": y * y, "xy": x * y}
    return np.stack([cols[t] for t in terms], axis=-1)


def _terms(x: np.ndarray, y: np.ndarray) -> tuple[str, ...]:
    """The quadratic's terms the runs can determine: curvature along an axis needs 3
    distinct values on it, the lr x batch-size term 2 of each."""
    nx, ny = len(np.unique(x)), len(np.unique(y))
    terms = ["1"]
    terms += ["x"] if nx >= 2 else []
    terms += ["xx"] if nx >= 3 else []
    terms += ["y"] if ny >= 2 else []
    terms += ["yy"] if ny >= 3 else []
    terms += ["xy"] if nx >= 2 and ny >= 2 else []
    return tuple(terms)


def _deletion_score(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, weight: np.ndarray, i: int, floor: float = SCALE_FLOOR
) -> tuple[float, float] | None:
    """(score, predicted log loss) of run ``i`` against the weighted fit of the others;
    None when they cannot judge it (too few, or it lies off their grid along an axis
    whose curvature they do not determine)."""
    keep = np.arange(len(z)) != i
    xo, yo, zo, wo = x[keep], y[keep], z[keep], weight[keep]
    terms = _terms(xo, yo)
    for axis, others, value in (("xx", xo, x[i]), ("yy", yo, y[i])):
        outside = value < others.min() - 1e-9 or value > others.max() + 1e-9
        if outside and axis not in terms:
            return None
    if len(zo) < len(terms) + 3:
        return None
    cx, cy = float(np.median(xo)), float(np.median(yo))
    design = _design(xo - cx, yo - cy, terms)
    root = np.sqrt(wo)
    coef, *_ = np.linalg.lstsq(design * root[:, None], zo * root, rcond=None)
    resid = zo - design @ coef
    heavy = wo >= np.median(wo)  # the spread of the runs the fit leans on
    scale = max(1.4826 * float(np.median(np.abs(resid[heavy]))), floor)
    point = _design(np.array([x[i] - cx]), np.array([y[i] - cy]), terms)[0]
    gram = (design * wo[:, None]).T @ design
    leverage = float(point @ np.linalg.pinv(gram) @ point) * float(np.median(wo))
    prediction = float(point @ coef)
    return (z[i] - prediction) / (scale * np.sqrt(1.0 + min(leverage, LEVERAGE_CAP))), prediction


def _beyond(score: float, drop: float) -> bool:
    """Whether a run ``score`` robust units and ``drop`` in log loss below its
    prediction is an outlier (:data:`THRESHOLDS`)."""
    return any(score < -t and drop > d for t, d in THRESHOLDS)


def _spike_nearby(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, weight: np.ndarray, i: int, floor: float
) -> bool:
    """Whether a run near ``i`` that is itself far *above* its neighbours explains why
    ``i`` looks too good: without it ``i`` passes. A loss typed too high next to a
    cell's corner makes the corner look low; leaving the corner out would be wrong."""
    near = np.argsort((x - x[i]) ** 2 + (y - y[i]) ** 2)[1 : 1 + SPIKE_NEIGHBOURS]
    for j in near:
        keep = np.arange(len(z)) != j
        k = int(np.flatnonzero(np.flatnonzero(keep) == i)[0])
        scored = _deletion_score(x[keep], y[keep], z[keep], weight[keep], k, floor)
        if scored is None or _beyond(scored[0], scored[1] - z[i]):
            continue
        keep_i = np.arange(len(z)) != i
        m = int(np.flatnonzero(np.flatnonzero(keep_i) == j)[0])
        spike = _deletion_score(x[keep_i], y[keep_i], z[keep_i], weight[keep_i], m, floor)
        if spike is not None and spike[0] > SPIKE:
            return True
    return False


def _cell_scale(cell_runs: pd.DataFrame) -> float:
    """The spread of a cell's log losses about the weighted bowl through all of them (NaN
    when it has too few runs): the cell's noise, as the screen's fits see it."""
    loss = cell_runs["loss"].to_numpy(float)
    usable = _usable(cell_runs)
    if usable.sum() < 3:
        return float("nan")
    reference = float(np.sort(loss[usable])[1])
    base = usable & (loss <= BLOWUP_FACTOR * reference)
    x, y = (
        np.log(cell_runs["lr"].to_numpy(float))[base],
        np.log(cell_runs["batch_size"].to_numpy(float))[base],
    )
    z = np.log(loss[base])
    terms = _terms(x, y)
    if len(z) < len(terms) + 3:
        return float("nan")
    weight = np.exp(-np.maximum(z - np.log(reference), 0.0) / TAU)
    design = _design(x - np.median(x), y - np.median(y), terms)
    root = np.sqrt(weight)
    coef, *_ = np.linalg.lstsq(design * root[:, None], z * root, rcond=None)
    resid = z - design @ coef
    return 1.4826 * float(np.median(np.abs(resid[weight >= np.median(weight)])))


def _screen_cell(cell_runs: pd.DataFrame, n_candidates: int, window: float, floor: float) -> list[Outlier]:
    """Outliers among one cell's runs (rows: positions in the table, its index)."""
    loss = cell_runs["loss"].to_numpy(float)
    usable = _usable(cell_runs)
    x = np.log(cell_runs["lr"].to_numpy(float))
    y = np.log(cell_runs["batch_size"].to_numpy(float))
    found: list[Outlier] = []
    for _ in range(MAX_PER_CELL):
        if usable.sum() < 3:
            break
        reference = float(np.sort(loss[usable])[1])  # second best: one bad row cannot move it
        base = np.flatnonzero(usable & (loss <= BLOWUP_FACTOR * reference))
        ranked = base[np.argsort(loss[base], kind="stable")]
        near = ranked[: n_candidates + 1]
        candidates = np.union1d(near, base[loss[base] <= reference * (1 + window)])
        z = np.log(loss[base])
        weight = np.exp(-np.maximum(z - np.log(reference), 0.0) / TAU)
        worst: tuple[float, int, float] | None = None
        for c in candidates:
            i = int(np.flatnonzero(base == c)[0])
            scored = _deletion_score(x[base], y[base], z, weight, i, floor)
            if scored is None:
                continue
            score, prediction = scored
            if _beyond(score, prediction - z[i]) and not _spike_nearby(x[base], y[base], z, weight, i, floor):
                if worst is None or score < worst[0]:
                    worst = (score, int(c), prediction)
        if worst is None:
            break
        found.append(
            _outlier(cell_runs, int(cell_runs.index[worst[1]]), "low", float(np.exp(min(worst[2], 700.0))))
        )
        usable[worst[1]] = False
    found += _lone_blowups(cell_runs, usable, x, y, loss)
    return found


def _lone_blowups(
    cell_runs: pd.DataFrame, usable: np.ndarray, x: np.ndarray, y: np.ndarray, loss: np.ndarray
) -> list[Outlier]:
    """Blown-up runs inside the cell's grid where the other runs predict a near-best loss."""
    if usable.sum() < 3:
        return []
    reference = float(np.sort(loss[usable])[1])
    base = usable & (loss <= BLOWUP_FACTOR * reference)
    blown = np.flatnonzero(usable & ~base)
    if not len(blown) or base.sum() < 4:
        return []
    xb, yb, zb = x[base], y[base], np.log(loss[base])
    terms = _terms(xb, yb)
    if base.sum() < len(terms) + 3:
        return []
    cx, cy = float(np.median(xb)), float(np.median(yb))
    coef, *_ = np.linalg.lstsq(_design(xb - cx, yb - cy, terms), zb, rcond=None)
    out = []
    for b in blown:
        inside = xb.min() <= x[b] <= xb.max() and yb.min() <= y[b] <= yb.max()
        prediction = float(_design(np.array([x[b] - cx]), np.array([y[b] - cy]), terms)[0] @ coef)
        if inside and prediction <= np.log(reference * (1 + LONE_BLOWUP)):
            out.append(_outlier(cell_runs, int(cell_runs.index[b]), "blowup", float(np.exp(prediction))))
    return out


def _outlier(runs: pd.DataFrame, row: int, reason: str, expected: float, context: str = "") -> Outlier:
    """The Outlier of the run at index ``row`` of ``runs``."""
    run = runs.loc[row]
    column = reason if reason in ("params", "tokens", "batch_size") else "loss"
    return Outlier(
        row=int(row),
        run_id=str(run["run_id"]),
        reason=reason,
        column=column,
        value=float(run[column]),
        expected=float(expected),
        loss=float(run["loss"]),
        lr=float(run["lr"]),
        batch_size=int(run["batch_size"]),
        context=context,
    )


def screen_runs(runs: pd.DataFrame, *, window: float = WINDOW, min_points: int = MIN_POINTS) -> list[Outlier]:
    """Runs whose loss their cell's other runs cannot explain (module docstring).

    Parameters
    ----------
    runs : DataFrame
        A validated runs table (:func:`scalelaw.runs.validate_runs`: index 0..n-1, the
        row numbers the outliers carry).
    window, min_points : float, int
        The fit's window: the runs within ``window`` of a cell's best loss, and at
        least its ``min_points`` best, are the ones tested (they shape the fit).

    Returns
    -------
    list of Outlier
        In table order; ``reason == "low"`` for rows to leave out (too good to be true),
        ``"blowup"`` for blow-ups in the middle of a cell's best runs (already left out
        of fits as diverged).
    """
    found = list({o.row: o for o in reversed(_mislabelled(runs))}.values())  # one per row
    if found:
        runs = runs.drop(index=[o.row for o in found])
    cells = [cell_runs for _, cell_runs in iter_cells(runs)]
    scales = np.array([_cell_scale(cell_runs) for cell_runs in cells])
    floor = SCALE_FLOOR
    if np.isfinite(scales).sum() >= 3:
        floor = max(SCALE_FLOOR, POOLED_FLOOR * float(np.nanmedian(scales)))
    for cell_runs in cells:
        ok = cell_runs[np.isfinite(cell_runs["loss"].to_numpy(float))]
        n_candidates = max(min_points, MIN_POINTS_CROSS) if len(ok) and is_cross(ok) else max(min_points, 1)
        found += _screen_cell(cell_runs, n_candidates, window, floor)
    return sorted(found, key=lambda o: o.row)
