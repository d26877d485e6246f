"""Per-cell optima: the best (lr, batch size) and loss of each cell, with uncertainty.

A cell is the set of runs sharing (N, D) and recipe (:func:`scalelaw.runs.cell_columns`).
In each cell the runs whose loss is within ``window`` of the cell's best (at least
``min_points`` of them) are fitted with a quadratic bowl in (log lr, log batch size)
on log loss; its minimum is the cell's optimum. A bootstrap over those runs gives the
uncertainty. Where the bowl is not convex or its minimum falls outside the runs it was
fitted on, the best run is used instead (``estimator = "best_run"``).

An optimum is *bracketed* when the best run is not on the edge of the cell's lr or
batch grid (diverged runs count as grid points: a blow-up above the best lr brackets it).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scalelaw.atomic import atomic_write_text
from scalelaw.deprecation import keyword_only_since
from scalelaw.exceptions import InputError
from scalelaw.laws import robust_sd
from scalelaw.results import DEFAULT_ALPHA, FittedResults, Summary, check_alpha, coefficient_lines, level
from scalelaw.runs import cell_columns, divergence_reason

# Runs within 0.75% of a cell's best loss shape its bowl. Chosen by leave-one-cell-out
# regret on the 12 Step Law cells with N <= 4.3e8 (benchmarks/heldout_steplaw.py prints
# the comparison of windows 0.5%..4%); never tuned on held-out cells.
WINDOW = 0.0075
MIN_POINTS = 8

# The bowl's normalised lr x batch-size term k_uv / (2 sqrt(k_uu k_vv)) in log loss over
# (log lr, log batch size), measured on the 1911 Step Law runs by the joint surface fit
# (scalelaw.surface; tests/test_prior.py re-measures it). Negative: at a larger batch
# the best lr is larger. Used only where a cell's runs cannot determine the term.
DEFAULT_INTERACTION = -0.34


def iter_cells(runs: pd.DataFrame) -> Iterator[tuple[dict, pd.DataFrame]]:
    """Yield ({cell column: value}, runs of that cell), in sorted cell order."""
    keys = cell_columns(runs)
    for values, group in runs.groupby(keys, sort=True, dropna=False):
        yield dict(zip(keys, values, strict=True)), group


def near_optimum(
    cell_runs: pd.DataFrame, window: float = WINDOW, min_points: int = MIN_POINTS
) -> pd.DataFrame:
    """Runs within ``window`` (relative) of the best loss, or the ``min_points`` best."""
    ranked = cell_runs.sort_values("loss", kind="stable")
    best = ranked["loss"].iloc[0]
    inside = ranked[ranked["loss"] <= best * (1 + window)]
    return inside if len(inside) >= min_points else ranked.head(min_points)


# A cross of one-axis sweeps has few runs near its optimum, and those on one line: its
# bowl takes at least this many (synthetic crosses, tests/test_prior.py: lr* error RMS
# 0.107 in ln with 8 runs, 0.087 with 12, 0.047 with 16).
MIN_POINTS_CROSS = 16


def is_cross(cell_runs: pd.DataFrame) -> bool:
    """Whether a cell's runs sweep lr and batch size one at a time (its bowl's lr x
    batch-size term cannot be fitted), rather than on a grid."""
    x = np.log(cell_runs["lr"].to_numpy(float))
    y = np.log(cell_runs["batch_size"].to_numpy(float))
    if len(np.unique(x)) < 3 or len(np.unique(y)) < 3:
        return False
    return _interaction_alias(_bowl_design(x - x.mean(), y - y.mean(), False)) is not None


MIN_POINTS_CUBIC = 12  # below this, the bowl is a plain quadratic (6 or 3 coefficients)
NEWTON_STEPS = 12


def _bowl_design(x: np.ndarray, y: np.ndarray | None, cubic: bool) -> np.ndarray:
    """Columns 1, x, y, x^2, y^2, xy, x^3, y^3 (y and cubic columns when asked)."""
    one, zero = np.ones_like(x), np.zeros_like(x)
    y = zero if y is None else y
    cols = [one, x, y, x * x, y * y, x * y]
    if cubic:
        cols += [x**3, y**3]
    return np.stack(cols, axis=-1)


def _bowl_minimum(coef: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local minimum near the origin (the best run) of fitted bowls, batched.

    ``coef`` (fits, 8): coefficients of :func:`_bowl_design` with cubic columns (zero
    when not fitted). Newton's method from the origin; returns locations (fits, 2),
    values (fits,) and a mask of fits that converged to a convex minimum.
    """
    c = coef
    w = np.zeros((len(c), 2))
    for _ in range(NEWTON_STEPS):
        x, y = w[:, 0], w[:, 1]
        grad = np.stack(
            [
                c[:, 1] + 2 * c[:, 3] * x + c[:, 5] * y + 3 * c[:, 6] * x * x,
                c[:, 2] + 2 * c[:, 4] * y + c[:, 5] * x + 3 * c[:, 7] * y * y,
            ],
            -1,
        )
        hxx, hyy, hxy = 2 * c[:, 3] + 6 * c[:, 6] * x, 2 * c[:, 4] + 6 * c[:, 7] * y, c[:, 5]
        det = hxx * hyy - hxy * hxy
        safe = np.where(np.abs(det) > 1e-300, det, 1.0)
        step = np.stack(
            [
                (hyy * grad[:, 0] - hxy * grad[:, 1]) / safe,
                (hxx * grad[:, 1] - hxy * grad[:, 0]) / safe,
            ],
            -1,
        )
        w = np.clip(w - step, -10, 10)
    x, y = w[:, 0], w[:, 1]
    hxx, hyy, hxy = 2 * c[:, 3] + 6 * c[:, 6] * x, 2 * c[:, 4] + 6 * c[:, 7] * y, c[:, 5]
    grad = np.stack(
        [
            c[:, 1] + 2 * c[:, 3] * x + c[:, 5] * y + 3 * c[:, 6] * x * x,
            c[:, 2] + 2 * c[:, 4] * y + c[:, 5] * x + 3 * c[:, 7] * y * y,
        ],
        -1,
    )
    ok = (hxx > 0) & (hxx * hyy - hxy * hxy > 0) & (np.abs(grad).max(axis=1) < 1e-8)
    value = np.einsum("fi,fi->f", _bowl_design(x, y, True), c)
    return w, value, ok


def _interaction_alias(design: np.ndarray) -> np.ndarray | None:
    """How the bowl's lr x batch-size column (5 of the design) aliases onto the others,
    ``beta`` with ``xy = others @ beta``, when the runs cannot tell it from them (a
    one-axis-at-a-time sweep: an lr line at one batch size crossed with a batch line at
    one lr); ``None`` when the runs determine it."""
    others = np.delete(design, 5, axis=1)
    xy = design[:, 5]
    beta, *_ = np.linalg.lstsq(others, xy, rcond=None)
    if float(np.linalg.norm(xy - others @ beta)) > 1e-8 * max(1.0, float(np.linalg.norm(xy))):
        return None
    return beta


def _bowl_fits(x, y, z, weights, interaction: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Weighted bowl fits for each row of ``weights`` (fits, points); see _bowl_minimum.

    ``y`` is ``None`` for a cell with one batch size (a bowl in lr only). The cubic
    terms let the bowl be steeper on the high-lr side, as real landscapes are; a
    plain quadratic would put the minimum too low in lr. Where the runs cannot
    determine the lr x batch-size term (a cross of one-axis sweeps), it is set from
    ``interaction``, the bowl's normalised cross term k_uv / (2 sqrt(k_uu k_vv)), and
    the coefficients it aliases onto are corrected for it, rather than the term being
    left at zero; the last value returned says whether the runs determined it.
    """
    cubic = len(z) >= MIN_POINTS_CUBIC
    design = _bowl_design(x, y, cubic)
    keep = [0, 1, 3] if y is None else list(range(design.shape[1]))
    alias = None if y is None else _interaction_alias(design)
    if alias is not None:
        keep.remove(5)
    design = design[:, keep]
    gram = np.einsum("bm,mi,mj->bij", weights, design, design)
    rhs = np.einsum("bm,mi,m->bi", weights, design, z)
    coef = np.zeros((len(weights), 8))
    coef[:, keep] = np.einsum("bij,bj->bi", np.linalg.pinv(gram), rhs)
    if y is None:
        coef[:, 4] = 1.0  # a dummy convex y direction, so the minimum stays at y = 0
    elif alias is not None:
        # the fit without the xy column absorbed k_uv * alias into the others: take it
        # back out, with k_uv set from the curvatures it corrects (a fixed point, reached
        # in a few steps: the alias rarely touches the curvature columns)
        aliased = np.zeros(8)
        aliased[keep] = alias
        fitted, k_uv = coef.copy(), np.zeros(len(coef))
        for _ in range(4):
            corrected = fitted - k_uv[:, None] * aliased
            k_uv = (
                2
                * interaction
                * np.sqrt(np.clip(corrected[:, 3], 0, None) * np.clip(corrected[:, 4], 0, None))
            )
        coef = fitted - k_uv[:, None] * aliased
        coef[:, 5] = k_uv
    loc, value, ok = _bowl_minimum(coef)
    yy = np.zeros_like(x) if y is None else y
    lo, hi = np.array([x.min(), yy.min()]), np.array([x.max(), yy.max()])
    inside = np.all((loc >= lo - 1e-9) & (loc <= hi + 1e-9), axis=-1)
    return loc, value, ok & inside, alias is None


def _cell_optimum(
    window_runs: pd.DataFrame,
    n_boot: int,
    rng: np.random.Generator,
    alpha: float = DEFAULT_ALPHA,
    interaction: float = 0.0,
) -> dict:
    # Centre on the best run so the quadratic is well conditioned.
    best = window_runs.iloc[0]
    x = np.log(window_runs["lr"].to_numpy(float) / best["lr"])
    y = np.log(window_runs["batch_size"].to_numpy(float) / best["batch_size"])
    z = np.log(window_runs["loss"].to_numpy(float))
    two_d = len(np.unique(y)) >= 3
    enough = len(np.unique(x)) >= 3 and len(z) >= (6 if two_d else 3)
    weights = np.vstack([np.ones(len(z)), rng.multinomial(len(z), np.full(len(z), 1 / len(z)), n_boot)])
    identified = True
    if enough:
        loc, value, ok, identified = _bowl_fits(
            x, y if two_d else None, z, weights.astype(float), interaction
        )
    else:
        loc, value, ok = (
            np.zeros((len(weights), 2)),
            np.zeros(len(weights)),
            np.zeros(len(weights), bool),
        )
    # Where a bowl fails, fall back to that sample's best run.
    masked = np.where(weights > 0, z, np.inf)
    pick = masked.argmin(axis=1)
    loc = np.where(ok[:, None], loc, np.stack([x[pick], y[pick]], -1))
    value = np.where(ok, value, z[pick])
    lr = best["lr"] * np.exp(loc[:, 0])
    bs = best["batch_size"] * np.exp(loc[:, 1])
    loss = np.exp(value)
    out = {
        "lr_opt": lr[0],
        "batch_size_opt": bs[0],
        "loss_opt": loss[0],
        "estimator": "bowl" if ok[0] else "best_run",
        # where the lr x batch-size term came from: the runs, or ``interaction`` (a cross)
        "interaction": ("fitted" if identified else "assumed") if enough and two_d else "",
    }
    for name, draws in (("lr_opt", lr[1:]), ("batch_size_opt", bs[1:]), ("loss_opt", loss[1:])):
        lo, hi = np.quantile(draws, [alpha / 2, 1 - alpha / 2]) if len(draws) else (np.nan, np.nan)
        out[f"{name}_lo"], out[f"{name}_hi"] = lo, hi
    # robust_sd: a few resamples whose bowl failed must not swamp a cell's spread
    out["lr_opt_log_sd"] = float(robust_sd(np.log(lr[1:]))) if n_boot > 1 else np.nan
    out["batch_size_opt_log_sd"] = float(robust_sd(np.log(bs[1:]))) if n_boot > 1 else np.nan
    return out, np.stack([lr[1:], bs[1:], loss[1:]], axis=1)


def _log_step(values: pd.Series) -> float:
    """Median log ratio between adjacent distinct values swept (NaN for one value)."""
    logs = np.log(np.unique(values.to_numpy(float)))
    return float(np.median(np.diff(logs))) if len(logs) > 1 else np.nan


EDGES = ("low", "high")  # values of the ``lr_edge`` / ``batch_edge`` columns besides ""


def _bracketing(cell: dict, all_runs: pd.DataFrame, best: pd.Series) -> tuple[str, str, str]:
    """Which grid edge ("low", "high" or "") the best run sits on, in lr and in batch
    size, and the warning that says how to fix it (empty when bracketed)."""
    where = f"cell N={cell['params']:.3g}, D={cell['tokens']:.3g}"
    problems = []
    edges = {"lr": "", "batch_size": ""}
    for col, name, unit in (("lr", "lr", ""), ("batch_size", "batch-size", " tokens")):
        grid = all_runs[col]
        if grid.nunique() < 2:
            continue
        if best[col] >= grid.max():
            edges[col] = "high"
            problems.append(
                (
                    col,
                    f"optimum not bracketed in {where}: the best run is at the largest "
                    f"{name} swept ({best[col]:.3g}{unit}); extend the {name} grid upward",
                )
            )
        elif best[col] <= grid.min():
            edges[col] = "low"
            problems.append(
                (
                    col,
                    f"optimum not bracketed in {where}: the best run is at the smallest "
                    f"{name} swept ({best[col]:.3g}{unit}); extend the {name} grid downward",
                )
            )
    return edges["lr"], edges["batch_size"], "; ".join(m for _, m in problems)


@keyword_only_since("0.2")
def cell_optima(
    runs: pd.DataFrame,
    *,
    window: float = WINDOW,
    min_points: int = MIN_POINTS,
    n_boot: int = 200,
    seed: int = 0,
    alpha: float = DEFAULT_ALPHA,
    interaction: float = DEFAULT_INTERACTION,
) -> pd.DataFrame:
    """The table of :func:`fit_optima` (``fit_optima(runs, ...).table``); see there."""
    return fit_optima(
        runs,
        window=window,
        min_points=min_points,
        n_boot=n_boot,
        seed=seed,
        alpha=alpha,
        interaction=interaction,
    ).table


def fit_optima(
    runs: pd.DataFrame,
    *,
    window: float = WINDOW,
    min_points: int = MIN_POINTS,
    n_boot: int = 200,
    seed: int = 0,
    alpha: float = DEFAULT_ALPHA,
    interaction: float = DEFAULT_INTERACTION,
) -> CellOptima:
    """Each cell's optimum: its best run, fitted optimum and bootstrap interval.

    Parameters
    ----------
    runs : DataFrame
        A validated runs table (:func:`scalelaw.runs.validate_runs`); diverged runs are
        counted and left out.
    window, min_points : float, int
        The runs within ``window`` (fraction) of a cell's best loss, at least
        ``min_points`` of them, shape its bowl.
    n_boot, seed : int
        Bootstrap resamples of those runs (0: no intervals) and their seed.
    alpha : float
        Intervals at (1 - alpha), default 0.2 (80%).
    interaction : float
        The bowl's normalised lr x batch-size term, k_uv / (2 sqrt(k_uu k_vv)) in
        (-1, 1), for cells whose runs cannot determine it: a one-axis-at-a-time sweep
        (lr varied at one batch size, batch size varied at one lr). Where the two lines
        cross off the optimum, the best lr at the best batch size depends on it. Default:
        :data:`DEFAULT_INTERACTION`, measured on the Step Law runs; a calibration passes
        its prior law's.

    Returns
    -------
    CellOptima
        The results protocol by (cell, quantity) and ``.table``, one row per cell with
        columns: the cell columns, ``n_runs``, ``n_used``, ``n_diverged``, ``n_window``,
        ``lr_best``, ``batch_size_best``, ``loss_best`` (best run), ``lr_opt``,
        ``batch_size_opt`` (tokens), ``loss_opt`` (fitted optimum), their bootstrap
        percentile intervals ``*_lo``/``*_hi``, ``lr_opt_log_sd``,
        ``batch_size_opt_log_sd`` (the bootstrap's normal-equivalent spread of the log,
        its central 68%), ``lr_step``, ``batch_size_step`` (the median log spacing of
        the cell's grid), ``estimator`` (``bowl`` or
        ``best_run``), ``interaction`` (``"fitted"`` when the runs determined the bowl's
        lr x batch-size term, ``"assumed"`` when it was set from ``interaction``, ``""``
        for a bowl in lr alone), ``lr_bracketed``, ``batch_bracketed``, ``bracketed``, ``lr_edge``
        / ``batch_edge`` (``"low"`` when the best run is at the smallest value swept, so
        the true optimum is at most that: censored from above; ``"high"`` at the
        largest; ``""`` when bracketed) and
    ``warning`` (empty when bracketed).
    """
    alpha = check_alpha(alpha)
    if not -1 < interaction < 1:
        raise InputError(f"interaction must lie in (-1, 1) (a convex bowl), got {interaction!r}")
    rng = np.random.default_rng(seed)
    draws: list[np.ndarray] = []
    excluded = divergence_reason(runs)
    rows = []
    for cell, group in iter_cells(runs):
        usable = group[excluded.loc[group.index] == ""]
        row = dict(cell, n_runs=len(group), n_used=len(usable), n_diverged=len(group) - len(usable))
        if usable.empty:
            row.update(
                warning=f"cell N={cell['params']:.3g}, D={cell['tokens']:.3g}: every run diverged",
                bracketed=False,
                lr_bracketed=False,
                batch_bracketed=False,
                lr_edge="",
                batch_edge="",
            )
            rows.append(row)
            draws.append(np.full((n_boot, 3), np.nan))
            continue
        cross = is_cross(usable)
        win = near_optimum(usable, window, max(min_points, MIN_POINTS_CROSS) if cross else min_points)
        best = win.iloc[0]
        row.update(
            n_window=len(win),
            lr_best=best["lr"],
            batch_size_best=best["batch_size"],
            loss_best=best["loss"],
            lr_step=_log_step(usable["lr"]),
            batch_size_step=_log_step(usable["batch_size"]),
        )
        optimum, cell_draws = _cell_optimum(win, n_boot, rng, alpha, interaction)
        row.update(optimum)
        draws.append(cell_draws)
        lr_edge, batch_edge, warning = _bracketing(cell, group, best)
        lr_ok, bs_ok = lr_edge == "", batch_edge == ""
        row.update(
            lr_bracketed=lr_ok,
            batch_bracketed=bs_ok,
            bracketed=lr_ok and bs_ok,
            lr_edge=lr_edge,
            batch_edge=batch_edge,
            warning=warning,
        )
        rows.append(row)
    table = pd.DataFrame(rows).reset_index(drop=True)
    empty = np.empty((0, n_boot, 3))
    return CellOptima(table=table, draws=np.stack(draws) if draws else empty, alpha=alpha)


QUANTITIES = ("lr", "batch_size", "loss")  # the rows of a cell in CellOptima.params


@dataclass(frozen=True)
class CellOptima(FittedResults):
    """Per-cell optima as a fitted object (:mod:`scalelaw.results` protocol).

    ``table``: one row per cell (columns in :func:`fit_optima`). ``params``: the fitted
    optimum of each cell, indexed by (cell columns..., ``quantity``) with quantity
    ``lr`` (peak lr), ``batch_size`` (tokens) and ``loss``; ``bse`` the bootstrap's
    normal-equivalent spread (central 68%), ``conf_int(alpha)`` its percentile band at
    (1 - alpha). ``draws``: the bootstrap optima, shape (cells, n_boot, 3) in the order
    of QUANTITIES (empty second axis without a bootstrap).
    """

    table: pd.DataFrame
    draws: np.ndarray = field(repr=False)
    alpha: float = DEFAULT_ALPHA

    @property
    def default_alpha(self) -> float:
        return self.alpha

    @property
    def _index(self) -> tuple[str, ...]:
        return (*cell_columns(self.table), "quantity")

    def coefficients(self, alpha: float | None = None) -> pd.DataFrame:
        alpha = self.alpha if alpha is None else check_alpha(alpha)
        cells = self.table[list(cell_columns(self.table))]
        rows = []
        for i, cell in enumerate(cells.to_dict("records")):
            for q, quantity in enumerate(QUANTITIES):
                estimate = self.table.at[i, f"{quantity}_opt"] if f"{quantity}_opt" in self.table else np.nan
                sample = self.draws[i, :, q] if self.draws.shape[1] else np.empty(0)
                sample = sample[np.isfinite(sample)]
                if len(sample) > 1:
                    low, high = np.quantile(sample, [alpha / 2, 1 - alpha / 2])
                    std_err = float(robust_sd(sample))
                else:
                    low = high = std_err = math.nan
                rows.append(
                    {
                        **cell,
                        "quantity": quantity,
                        "estimate": float(estimate),
                        "std_err": std_err,
                        "ci_lower": float(low),
                        "ci_upper": float(high),
                    }
                )
        columns = [*cells.columns, "quantity", "estimate", "std_err", "ci_lower", "ci_upper"]
        return pd.DataFrame(rows, columns=columns)

    def summary(self, alpha: float | None = None) -> Summary:
        """Per cell: the fitted optima with their intervals, and whether the grid brackets them."""
        alpha = self.alpha if alpha is None else check_alpha(alpha)
        frame = self._indexed(alpha)
        bracketed = int(self.table["bracketed"].sum()) if len(self.table) else 0
        lines = [
            f"Per-cell optima: {len(self.table)} cells, {bracketed} bracketed by their grids; "
            f"{level(alpha)} bootstrap intervals",
        ]
        for i, row in self.table.iterrows():
            lines.append("")
            lines.append(
                f"cell N={row['params']:.4g}, D={row['tokens']:.4g}: {row.get('estimator', 'n/a')}, "
                f"{row['n_used']} runs" + (f"; {row['warning']}" if row["warning"] else "")
            )
            cell_frame = frame.iloc[3 * i : 3 * i + 3]
            cell_frame.index = list(QUANTITIES)
            lines.extend(coefficient_lines(cell_frame, alpha, label="quantity")[1 if i else 0 :])
        return Summary("\n".join(lines), frame, "Per-cell optima")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the table's records and the bootstrap draws (NaN as null)."""
        table = self.table.astype(object).where(self.table.notna(), None)
        draws = self.draws.astype(object)
        draws[~np.isfinite(self.draws)] = None
        return {"alpha": self.alpha, "table": table.to_dict("records"), "draws": draws.tolist()}

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        text = json.dumps(self.to_dict(), allow_nan=False)
        if path is not None:
            atomic_write_text(Path(path), text)
        return text

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "<dict>") -> CellOptima:
        try:
            table = pd.DataFrame.from_records(d["table"]).fillna(value=np.nan)
            draws = np.array(d["draws"], dtype=float).reshape(len(table), -1, 3)
            return cls(table=table, draws=draws, alpha=check_alpha(d["alpha"]))
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(f"{source}: not cell optima written by CellOptima.to_json ({err!r})") from None


def interpolated_loss(cell_runs: pd.DataFrame, lr: float, batch_size: float) -> float:
    """Loss at (lr, batch size) read off one cell's runs.

    Linear interpolation in (log lr, log batch size) over the runs' Delaunay
    triangulation; outside the hull of the grid, the nearest run's loss. Runs with a
    non-finite loss are ignored.
    """
    from scipy.interpolate import LinearNDInterpolator, NearestNDInterpolator

    finite = cell_runs[np.isfinite(cell_runs["loss"].to_numpy(float))]
    points = np.column_stack(
        [np.log(finite["lr"].to_numpy(float)), np.log(finite["batch_size"].to_numpy(float))]
    )
    values = finite["loss"].to_numpy(float)
    query = (np.log(lr), np.log(batch_size))
    value = float(LinearNDInterpolator(points, values)(*query))
    if not np.isfinite(value):
        value = float(NearestNDInterpolator(points, values)(*query))
    return value


def regret(cell_runs: pd.DataFrame, lr: float, batch_size: float) -> float:
    """Relative excess loss of choosing (lr, batch size) in a cell over its best run.

    ``interpolated_loss / best loss - 1``; 0.001 means 0.1% worse than the best run.
    """
    best = float(np.nanmin(np.where(np.isfinite(cell_runs["loss"]), cell_runs["loss"], np.nan)))
    return interpolated_loss(cell_runs, lr, batch_size) / best - 1.0
