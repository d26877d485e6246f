"""Fit the laws: runs table -> per-cell optima -> lr*(N, D), B*(N, D), L(N, D).

Four estimators for the hyperparameter laws (``method``), compared on the same folds by
:mod:`scalelaw.crossval` (``benchmarks/crossval_steplaw.py``):

- ``"surface"``: one loss landscape fitted to every near-optimum run at once
  (:mod:`scalelaw.surface`), bootstrap over cells for intervals.
- ``"optima"``: the classic two-stage fit: per-cell optima (:mod:`scalelaw.optima`),
  then least squares of log optimum on log N, log D with statsmodels, each cell
  weighted by the inverse variance of its optimum (its own bootstrap's spread, so noisy
  or coarse cells count less; analytic standard errors), bootstrap over cells for
  prediction intervals.
- ``"average"`` (default): the surface and band laws averaged (a weighted geometric
  mean of their predictions), the weight chosen on the table's own extrapolation folds
  (:mod:`scalelaw.averaging`). The default because it wins the extrapolation folds on
  mean and max regret.
- ``"band"``: the plain method of the Step Law and DeepSeek papers, the baseline the
  others must beat: every run within ``window`` of its cell's best loss is a
  near-optimal point, and OLS of their log lr (log batch size) on log N, log D gives
  the law; standard errors clustered by cell, bootstrap over cells for intervals.

Every method's lr and batch-size prediction intervals are calibrated on the table's own
held-out folds (:mod:`scalelaw.calibration`). The loss law is fitted to the cells'
optimal losses.

Censored cells: a cell whose best run sits on the edge of its lr or batch grid says only
that its optimum is at most (low edge) or at least (high edge) that value. When too many
cells are censored to identify a law, it becomes one-sided (``PowerLaw.bound``) or not
determined, and a degenerate fit (nothing varied, zero standard errors) is never
reported as certain; see :func:`_censoring` and :func:`_degenerate`.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm

from scalelaw.averaging import choose_weight, combine_laws, fold_errors
from scalelaw.calibration import calibrate as calibrate_intervals
from scalelaw.calibration import calibrate_on, calibration_folds, fit_folds
from scalelaw.exceptions import InputError, NotEnoughDataError, RunsTableError, ScalelawError
from scalelaw.lawcard import card_from_runs
from scalelaw.laws import TERMS, HyperparameterLaw, LossLaw, PowerLaw
from scalelaw.losslaw import fit_loss_law
from scalelaw.optima import MIN_POINTS, WINDOW, cell_optima, iter_cells
from scalelaw.outliers import MODES as OUTLIER_MODES
from scalelaw.outliers import Outlier, screen_runs
from scalelaw.runs import usable_runs, validate_runs
from scalelaw.surface import FitError, fit_surface, surface_data
from scalelaw.timescale import best_decay_runs, fit_timescale

METHODS = ("surface", "optima", "band", "average", "auto")
CALIBRATION_MIN_BOOT = 20  # fewer bootstrap draws give no spread worth calibrating
CALIBRATION_BOOT = 100  # bootstrap draws of each calibration refit


def _varying_terms(optima: pd.DataFrame) -> tuple[tuple[str, ...], str | None]:
    """The default law terms: N and D where the cells span more than one value of each.

    Returns the terms and a note naming what was left out (None if nothing was).
    """
    column = {"N": "params", "D": "tokens"}
    terms = tuple(t for t in TERMS if optima[column[t]].nunique() > 1)
    fixed = [t for t in TERMS if t not in terms]
    if not fixed:
        return terms, None
    what = " and ".join(f"{t} = {optima[column[t]].iloc[0]:.4g}" for t in fixed)
    return terms, (
        f"every cell has {what}: the lr and batch-size laws are fitted in "
        f"{', '.join(terms)} only and cannot say how the optima move with {', '.join(fixed)}"
    )


def _check_terms(terms: tuple[str, ...], what: str) -> tuple[str, ...]:
    terms = tuple(terms)
    bad = [t for t in terms if t not in TERMS] + (["repeated term"] if len(set(terms)) < len(terms) else [])
    if bad or not terms:
        raise InputError(f"{what}: terms must be a non-empty subset of {TERMS}, got {terms!r}")
    return tuple(t for t in TERMS if t in terms)


def _features(table: pd.DataFrame, terms: tuple[str, ...]) -> np.ndarray:
    cols = {
        "N": np.log(table["params"].to_numpy(float)),
        "D": np.log(table["tokens"].to_numpy(float)),
    }
    return np.column_stack([np.ones(len(table)), *[cols[t] for t in terms]])


def _resid_sd(optima: pd.DataFrame, column: str, terms: tuple[str, ...], params: np.ndarray) -> float:
    """Scatter (log space, dof-corrected) of each cell's best run around the law.

    The best run, not the fitted optimum, so the prediction interval says where the best
    run of a new sweep at the target will land (grid quantization and noise included).
    """
    resid = np.log(optima[column].to_numpy(float)) - _features(optima, terms) @ params
    dof = len(resid) - len(params)
    return float(np.sqrt(np.sum(resid**2) / dof)) if dof > 0 else 0.0


SD_FLOOR = 0.05  # log units: no cell's optimum counts as known better than 5%


def optimum_weights(optima: pd.DataFrame, column: str) -> np.ndarray:
    """Inverse-variance weights of the cells' log optima, 1 / sd^2, so a noisy
    single-seed cell counts for less; equal weights without a bootstrap.

    ``sd`` is the cell bootstrap's spread of the log optimum (``<column>_log_sd``), but
    never below SD_FLOOR nor below the grid's resolution (its log step / sqrt(12): the
    bootstrap of a coarse grid often lands every draw on the same grid point, a spread
    of 0 that says nothing of where the optimum lies between the points), and a cell
    whose optimum sits on the grid's edge is never weighted above the median cell.
    """
    sd = optima.get(f"{column}_log_sd")
    if sd is None or not np.isfinite(sd.to_numpy(float)).all():
        return np.ones(len(optima))
    quantity = column.removesuffix("_opt")
    step = optima.get(f"{quantity}_step", pd.Series(np.nan, index=optima.index)).to_numpy(float)
    sd = np.fmax(np.fmax(sd.to_numpy(float), np.nan_to_num(step / np.sqrt(12.0))), SD_FLOOR)
    edge = optima.get("lr_edge" if quantity == "lr" else "batch_edge")
    if edge is not None:
        censored = edge.to_numpy() != ""
        sd = np.where(censored, np.maximum(sd, np.median(sd)), sd)
    return 1.0 / sd**2


def _ols_law(
    optima: pd.DataFrame, column: str, terms: tuple[str, ...], n_boot: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """statsmodels weighted least squares of log optimum on log N, log D
    (:func:`optimum_weights`): params, std errors, bootstrap draws over cells."""
    X, y = _features(optima, terms), np.log(optima[column].to_numpy(float))
    w = optimum_weights(optima, column)
    result = sm.WLS(y, X, weights=w).fit()
    root = np.sqrt(w)
    draws = []
    for _ in range(n_boot):
        s = rng.integers(0, len(y), len(y))
        if np.linalg.matrix_rank(X[s]) == X.shape[1]:
            draws.append(np.linalg.lstsq(X[s] * root[s, None], y[s] * root[s], rcond=None)[0])
    return (
        np.asarray(result.params),
        np.asarray(result.bse),
        np.array(draws).reshape(-1, X.shape[1]),
    )


def band_points(usable: pd.DataFrame, window: float) -> pd.DataFrame:
    """Every run within ``window`` (relative) of its cell's best loss, with a ``cell`` index."""
    parts = []
    for i, (_, runs) in enumerate(iter_cells(usable)):
        near = runs[runs["loss"] <= runs["loss"].min() * (1 + window)]
        parts.append(near.assign(cell=i))
    return pd.concat(parts, ignore_index=True)


def _band_law(
    points: pd.DataFrame, column: str, terms: tuple[str, ...], n_boot: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OLS of log ``column`` of the near-optimal points on log N, log D: params, standard
    errors clustered by cell, and bootstrap draws over cells."""
    X, y = _features(points, terms), np.log(points[column].to_numpy(float))
    cells = points["cell"].to_numpy()
    result = sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": cells})
    members = [np.flatnonzero(cells == c) for c in np.unique(cells)]
    draws = []
    for _ in range(n_boot):
        rows = np.concatenate([members[c] for c in rng.integers(0, len(members), len(members))])
        if np.linalg.matrix_rank(X[rows]) == X.shape[1]:
            draws.append(np.linalg.lstsq(X[rows], y[rows], rcond=None)[0])
    return np.asarray(result.params), np.asarray(result.bse), np.array(draws).reshape(-1, X.shape[1])


DEGENERATE_REL = 1e-10  # standard errors below this fraction of a coefficient: degenerate fit

_EDGE_WORDS = {
    "lr_edge": ("lr", "learning rate", ""),
    "batch_edge": ("batch-size", "batch size", " tokens"),
}


def _degenerate(y: np.ndarray | None, params: np.ndarray, se: np.ndarray | None, draws: np.ndarray) -> bool:
    """A fit that looks certain only because nothing varied.

    True when the response ``y`` (log optima, one per cell) has zero variance, when
    every analytic standard error is below ``DEGENERATE_REL`` of its coefficient
    (at least 1), or when every bootstrap replicate returned the same coefficients.
    """
    scale = DEGENERATE_REL * np.maximum(1.0, np.abs(params))
    if y is not None and np.ptp(y) < 1e-12:
        return True
    if se is not None and np.all(np.isfinite(se)) and np.all(np.asarray(se) < scale):
        return True
    return len(draws) >= 2 and bool(np.all(np.ptp(draws, axis=0) < scale))


def _censoring(
    optima: pd.DataFrame, edge_column: str, n_coef: int, degenerate: bool, column: str
) -> tuple[str | None, bool, str]:
    """(bound, determined, caveat) of a law fitted to cells whose optima may sit on a grid edge.

    A cell whose best run is at the smallest value swept (edge ``"low"``) says only that
    its optimum is at most that value. The law keeps two-sided intervals while enough
    cells are bracketed to identify it (at least ``n_coef + 1``) and fewer than half are
    censored; otherwise it is an upper bound (cells censored on the low edge only), a
    lower bound (high edge only), or not determined (both edges). A degenerate fit
    (:func:`_degenerate`) is never determined.
    """
    short, words, unit = _EDGE_WORDS[edge_column]
    edges = optima[edge_column].fillna("") if edge_column in optima else pd.Series("", index=optima.index)
    n, low, high = len(optima), int((edges == "low").sum()), int((edges == "high").sum())
    inside = n - low - high
    identifiable = inside >= n_coef + 1 and 2 * (low + high) < n
    bound: str | None = None
    determined = not degenerate
    parts = []
    if low + high and not identifiable:
        if high == 0:
            bound = "upper"
            parts.append(
                f"{low} of {n} cells have their best run at the smallest {words} swept, so "
                f"their optima are at most that: the law is an upper bound on the optimal "
                f"{words}; extend the {short} grid downward"
            )
        elif low == 0:
            bound = "lower"
            parts.append(
                f"{high} of {n} cells have their best run at the largest {words} swept, so "
                f"their optima are at least that: the law is a lower bound on the optimal "
                f"{words}; extend the {short} grid upward"
            )
        else:
            determined = False
            parts.append(
                f"{low} of {n} cells have their best run at the smallest {words} swept and "
                f"{high} at the largest, {inside} bracketed: the optimal {words} is not "
                f"determined; extend the {short} grids both ways"
            )
    if degenerate:
        values = optima[column].to_numpy(float)
        same = (
            f"every cell's optimum is {values[0]:.4g}{unit}"
            if np.ptp(np.log(values)) < 1e-12
            else "the fit has zero spread"
        )
        parts.append(
            f"degenerate fit ({same}): its standard errors are zero only because nothing "
            "varied, so how the optimum scales with N and D is not determined"
        )
    return bound, determined, "; ".join(parts)


def fit(
    runs: pd.DataFrame,
    *,
    method: str = "average",
    lr_terms: tuple[str, ...] | None = None,
    batch_terms: tuple[str, ...] | None = None,
    window: float = WINDOW,
    min_points: int = MIN_POINTS,
    n_boot: int = 200,
    seed: int = 0,
    loss_law: bool = True,
    name: str | None = None,
    calibrate: bool = True,
    prior: str | HyperparameterLaw | None = None,
    outliers: str = "leave_out",
) -> HyperparameterLaw:
    """Fit optimal-lr, optimal-batch-size and loss laws to a runs table.

    Parameters
    ----------
    runs : DataFrame
        A runs table (design.md schema: params, tokens, lr, batch_size in tokens, loss).
        Diverged runs are left out with a note.
    method : {"surface", "optima", "band", "average", "auto"}
        "surface": the joint fit of every cell's bowl; "optima": two stages, each cell's
        optimum, then power laws through them; "band": OLS through every near-optimal
        run (the Step Law paper's method); "average": surface and band averaged with
        a weight chosen on the table's extrapolation folds; "auto": the surface where the table
        supports it, else the two-stage fit, the surface's refusal kept in the notes.
    lr_terms, batch_terms : tuple of {"N", "D"}, optional
        What each power law depends on (default: each of N and D that varies across the
        cells; a table with one token budget gives laws in N only, with a note).
    window : float
        Runs within this relative distance of each cell's best loss shape the fit.
    min_points : int
        At least this many runs per cell shape it, however far from the best.
    n_boot : int
        Bootstrap replicates for the intervals (0: none).
    seed : int
        Seed of the bootstrap.
    loss_law : bool
        Also fit L(N, D) = E + A/N^alpha + B/D^beta to the cells' best losses.
    name : str, optional
        The law's name in summaries and reports.
    calibrate : bool
        Widen the lr and batch-size prediction intervals by factors learned from the
        table's own extrapolation folds (:mod:`scalelaw.calibration`), so that 80% of
        held-out optima fall inside the 80% intervals; costs a few refits.
    prior : law, preset name or law .json path, optional
        Calibrate this published law on the runs instead of fitting a new one: keep its
        exponents, move its coefficients to the runs' recipe; works from one cell, a
        grid or a one-axis-at-a-time cross (:func:`scalelaw.prior.calibrate`; ``method``,
        the terms, ``window``, ``min_points``, ``loss_law`` and ``calibrate`` do not apply).
    outliers : {"leave_out", "refuse", "keep"}
        What to do with runs whose loss their cell's other runs cannot explain (far
        below the bowl through them: a mistyped loss, lr, batch size, params or tokens;
        :mod:`scalelaw.outliers`): leave them out, each named in the notes and listed
        in ``settings["outliers"]`` (default); raise a :class:`RunsTableError` naming
        them; or keep them, unscreened.

    Returns
    -------
    HyperparameterLaw
        lr*(N, D), B*(N, D) in tokens and L(N, D), with bootstrap draws for intervals,
        the fitted range, the per-cell optima (see :mod:`scalelaw.results`) and its
        card (:class:`scalelaw.lawcard.LawCard`): the recipe columns that hold one value
        across the runs, and the domain of the fitted cells. ``settings["outliers"]``
        lists the runs the screen named (run_id, row: 0-based position in ``runs``,
        loss, lr, batch_size, the loss expected there, reason).

    Raises
    ------
    InputError, NotEnoughDataError, FitError
        Bad arguments or table; too few cells or swept batch sizes; a landscape the
        surface cannot fit (``method="auto"`` falls back instead).
    """
    if outliers not in OUTLIER_MODES:
        raise InputError(f"outliers must be one of {OUTLIER_MODES}, got {outliers!r}")
    # the settings every inner fit shares; the screen runs once, at the outermost call
    common = dict(
        lr_terms=lr_terms,
        batch_terms=batch_terms,
        window=window,
        min_points=min_points,
        seed=seed,
        outliers="keep",
    )
    inner = dict(common, n_boot=n_boot, loss_law=loss_law, name=name, calibrate=calibrate)
    if outliers != "keep":
        return _fit_screened(
            runs,
            outliers,
            window if isinstance(window, (int, float)) and 0 < window < float("inf") else WINDOW,
            min_points if isinstance(min_points, (int, np.integer)) and min_points > 0 else MIN_POINTS,
            lambda table: fit(table, method=method, prior=prior, **inner),
        )
    if prior is not None:
        from scalelaw.prior import calibrate as calibrate_prior  # it builds on this module

        return calibrate_prior(prior, runs, n_boot=n_boot, seed=seed, name=name)
    if method not in METHODS:
        raise InputError(f"method must be one of {METHODS}, got {method!r}")
    if method == "auto":
        try:
            return fit(runs, method="surface", **inner)
        except (FitError, NotEnoughDataError) as err:
            law = fit(runs, method="optima", **inner)
            return dataclasses.replace(
                law, notes=(f"joint surface fit refused ({err}); two-stage fit", *law.notes)
            )
    if "weight_decay" in runs.columns and runs["weight_decay"].nunique() > 1:
        table = validate_runs(runs)
        if (table.groupby(["params", "tokens"])["weight_decay"].nunique() > 1).any():
            optima = cell_optima(table, window=window, min_points=min_points, n_boot=n_boot, seed=seed)
            best = best_decay_runs(table, optima)
            law = fit(best, method=method, **inner)
            note = (
                f"weight decay varied: lr*, B* and loss laws fitted on each (N, D)'s best λ on the grid "
                f"({len(best)} of {len(table)} runs); the timescale law on all of them"
            )
            return dataclasses.replace(
                law,
                timescale=fit_timescale(optima, n_boot=n_boot, seed=seed),
                notes=(note, *law.notes),
            )
    if method == "average":
        return _fit_average(
            runs,
            common,
            n_boot=n_boot,
            loss_law=loss_law,
            name=name,
            calibrate=calibrate,
        )
    for label, value in (("n_boot", n_boot), ("min_points", min_points), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise InputError(f"{label} must be a non-negative integer, got {value!r}")
    if not (isinstance(window, (int, float)) and 0 < window < float("inf")):
        raise InputError(f"window must be a positive fraction of the best loss, got {window!r}")
    runs = validate_runs(runs)
    usable, note = usable_runs(runs)
    notes = [note] if note else []
    optima = cell_optima(runs, window=window, min_points=min_points, n_boot=n_boot, seed=seed)
    notes += [w for w in optima["warning"] if w]
    optima = optima[optima["n_used"] > 0].reset_index(drop=True)
    if len(optima) < 2:
        raise NotEnoughDataError(
            f"only {len(optima)} cell(s) with usable runs: a law needs several (N, D) cells"
        )
    if lr_terms is None or batch_terms is None:
        varying, note = _varying_terms(optima)
        lr_terms = varying if lr_terms is None else lr_terms
        batch_terms = varying if batch_terms is None else batch_terms
        notes += [note] if note else []
    lr_terms, batch_terms = (
        _check_terms(lr_terms, "lr_terms"),
        _check_terms(batch_terms, "batch_terms"),
    )
    for term, column in (("N", "params"), ("D", "tokens")):
        if term in (*lr_terms, *batch_terms) and optima[column].nunique() < 2:
            raise FitError(
                f"every cell has the same {term}: a law in {term} cannot be fitted; "
                f"drop {term} from the law's terms or sweep more than one {term}"
            )
    rng = np.random.default_rng(seed)
    settings: dict[str, Any] = {"window": window, "min_points": min_points, "n_boot": n_boot, "seed": seed}

    if method == "surface":
        data = surface_data(usable, window, min_points)
        surface, lr_draws, b_draws = fit_surface(data, lr_terms, batch_terms, n_boot, seed)
        lr_params, b_params, lr_se, b_se = surface.lr_params, surface.batch_params, None, None
        if n_boot and len(lr_draws) < 0.9 * n_boot:
            notes.append(f"only {len(lr_draws)} of {n_boot} bootstrap refits were usable")
        k = surface.shape  # its normalised lr x batch term, for calibrations that use this law as a prior
        settings["interaction"] = float(k[2] / (2 * np.sqrt(k[0] * k[1])))
    elif method == "band":
        points = band_points(usable, window)
        lr_params, lr_se, lr_draws = _band_law(points, "lr", lr_terms, n_boot, rng)
        b_params, b_se, b_draws = _band_law(points, "batch_size", batch_terms, n_boot, rng)
    else:
        lr_params, lr_se, lr_draws = _ols_law(optima, "lr_opt", lr_terms, n_boot, rng)
        b_params, b_se, b_draws = _ols_law(optima, "batch_size_opt", batch_terms, n_boot, rng)

    def power_law(quantity, unit, terms, params, se, draws, best_column, opt_column, edge_column):
        y = np.log(optima[opt_column].to_numpy(float)) if method == "optima" else None
        degenerate = _degenerate(y, np.asarray(params), se, np.asarray(draws))
        bound, determined, caveat = _censoring(optima, edge_column, len(params), degenerate, opt_column)
        return PowerLaw(
            quantity,
            unit,
            float(params[0]),
            {t: float(v) for t, v in zip(terms, params[1:], strict=True)},
            resid_sd=_resid_sd(optima, best_column, terms, params),
            draws=draws if len(draws) else None,
            se=None if se is None else tuple(float(s) for s in se),
            bound=bound,
            determined=determined,
            caveat=caveat,
        )

    lr_law = power_law(
        "lr", "peak learning rate", lr_terms, lr_params, lr_se, lr_draws, "lr_best", "lr_opt", "lr_edge"
    )
    b_law = power_law(
        "batch_size",
        "tokens per step",
        batch_terms,
        b_params,
        b_se,
        b_draws,
        "batch_size_best",
        "batch_size_opt",
        "batch_edge",
    )

    if calibrate and n_boot >= CALIBRATION_MIN_BOOT:

        def refit(train: pd.DataFrame) -> HyperparameterLaw:
            return fit(
                train,
                method=method,
                lr_terms=lr_terms,
                batch_terms=batch_terms,
                window=window,
                min_points=min_points,
                n_boot=min(n_boot, CALIBRATION_BOOT),
                seed=seed,
                loss_law=False,
                calibrate=False,
                outliers="keep",
            )

        calibration = calibrate_intervals(runs, optima, refit)
        lr_law = dataclasses.replace(
            lr_law, calibration=calibration.lr, resid_calibration=calibration.lr_resid
        )
        b_law = dataclasses.replace(
            b_law, calibration=calibration.batch_size, resid_calibration=calibration.batch_resid
        )
        settings["calibration"] = calibration.to_dict()

    loss: LossLaw | None = None
    if loss_law:
        points = optima[["params", "tokens", "loss_opt"]].rename(columns={"loss_opt": "loss"})
        if len(points) >= 6 and points["params"].nunique() >= 2 and points["tokens"].nunique() >= 2:
            loss = fit_loss_law(points, n_boot=n_boot, seed=seed, source="cell optima")
        else:
            notes.append("no loss law: it needs at least 6 cells spanning 2+ sizes and 2+ token counts")

    fit_range = {
        "N": (float(optima["params"].min()), float(optima["params"].max())),
        "D": (float(optima["tokens"].min()), float(optima["tokens"].max())),
    }
    return HyperparameterLaw(
        name=name or f"fitted ({method}, {len(optima)} cells)",
        source=f"scalelaw.fit of {len(runs)} runs in {len(optima)} cells",
        lr=lr_law,
        batch_size=b_law,
        loss=loss,
        fit_range=fit_range,
        method=method,
        notes=tuple(notes),
        settings=settings,
        optima=optima,
        card=card_from_runs(runs, optima),
        timescale=fit_timescale(optima, n_boot=n_boot, seed=seed),  # None unless λ was swept
    )


def _fit_screened(
    runs: pd.DataFrame,
    mode: str,
    window: float,
    min_points: int,
    fit_table,
) -> HyperparameterLaw:
    """Screen ``runs`` for outliers (:mod:`scalelaw.outliers`), then ``fit_table`` the rest.

    ``mode`` "leave_out" drops the too-good runs and names every run found in the
    law's notes and ``settings["outliers"]``; "refuse" raises instead.
    """
    table = validate_runs(runs, min_lrs=1)
    found = screen_runs(table, window=window, min_points=min_points)
    low = [o for o in found if o.left_out]
    if low and mode == "refuse":
        raise RunsTableError(
            f"{len(low)} run(s) that look mistyped: "
            + "; ".join(o.describe() for o in low)
            + '; fix or remove the row(s), or fit with outliers="leave_out" (or "keep")'
        )
    kept = table.drop(index=[o.row for o in low]) if low else runs
    law = fit_table(kept)
    if not found:
        return dataclasses.replace(law, settings=dict(law.settings, outliers=[]))
    return dataclasses.replace(
        law,
        notes=(*_outlier_notes(found, len(table)), *law.notes),
        settings=dict(law.settings, outliers=[o.to_dict() for o in found]),
    )


def _outlier_notes(found: list[Outlier], n_runs: int) -> list[str]:
    low = [o for o in found if o.left_out]
    notes = []
    if low:
        notes.append(
            f"left out {len(low)} of {n_runs} runs as outliers (rows 0-based; "
            'fit(..., outliers="keep") keeps them): ' + "; ".join(o.describe() for o in low)
        )
    notes += [o.describe() for o in found if not o.left_out]
    return notes


def _fit_average(
    runs: pd.DataFrame, common: dict, *, n_boot: int, loss_law: bool, name: str | None, calibrate: bool
) -> HyperparameterLaw:
    """``method="average"``: see :mod:`scalelaw.averaging`."""
    band = fit(runs, method="band", n_boot=n_boot, loss_law=False, calibrate=False, **common)
    try:
        surface = fit(runs, method="surface", n_boot=n_boot, loss_law=loss_law, calibrate=False, **common)
    except FitError as err:  # a landscape the surface cannot fit; missing data is the user's to add
        law = fit(runs, method="band", n_boot=n_boot, loss_law=loss_law, calibrate=calibrate, **common)
        return dataclasses.replace(
            law, notes=(f"joint surface fit refused ({err}); band law alone", *law.notes)
        )
    fold_boot = min(n_boot, CALIBRATION_BOOT) if calibrate else 0
    pairs = []
    for fold, s_law in fit_folds(
        calibration_folds(validate_runs(runs)),
        lambda train: fit(
            train, method="surface", n_boot=fold_boot, loss_law=False, calibrate=False, **common
        ),
    ):
        try:
            b_law = fit(
                fold.train, method="band", n_boot=fold_boot, loss_law=False, calibrate=False, **common
            )
        except ScalelawError:
            continue
        pairs.append((fold, s_law, b_law))
    extrapolation = [pair for pair in pairs if pair[0].scheme.startswith("leave-largest")]
    weight = choose_weight(fold_errors(extrapolation, surface.optima))
    folds_used = len(extrapolation)
    law = combine_laws(surface, band, weight)
    settings = dict(surface.settings, average_weight=weight, average_folds=folds_used)
    if calibrate and n_boot >= CALIBRATION_MIN_BOOT:
        calibration = calibrate_on([(f, combine_laws(a, b, weight)) for f, a, b in pairs], surface.optima)
        law = dataclasses.replace(
            law,
            lr=dataclasses.replace(
                law.lr, calibration=calibration.lr, resid_calibration=calibration.lr_resid
            ),
            batch_size=dataclasses.replace(
                law.batch_size, calibration=calibration.batch_size, resid_calibration=calibration.batch_resid
            ),
        )
        settings["calibration"] = calibration.to_dict()
    return dataclasses.replace(
        law,
        name=name or f"fitted (average, {len(surface.optima)} cells)",
        method="average",
        settings=settings,
        card=surface.card,
        timescale=surface.timescale,
    )


def fit_or_two_stage(runs: pd.DataFrame, **kwargs) -> HyperparameterLaw:
    """Deprecated: ``fit(runs, method="auto", ...)``. Removed in the release after 0.2."""
    warnings.warn(
        'scalelaw.fit_or_two_stage is deprecated; use scalelaw.fit(runs, method="auto")',
        DeprecationWarning,
        stacklevel=2,
    )
    return fit(runs, method="auto", **kwargs)
