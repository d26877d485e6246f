"""Calibrated prediction intervals: learn, from a table's own held-out folds, how much
wider (or narrower) than the bootstrap says the lr* and B* intervals must be.

A bootstrap over cells measures how much the fitted law moves when the cells are
resampled; it does not see how wrong the law's form is away from the data, which is
what a user extrapolating to a big run meets. So, in the spirit of split conformal
prediction: refit the law with the largest model sizes (and, separately, the largest
token budgets) held out, k = 1..``MAX_K``, and with each model size held out in turn;
for every held-out cell whose optimum its grid brackets, take the ratio of the law's
log error there to its 80% interval's log half-width; the factor is the 80% quantile of
those ratios (:func:`conformal_factor`). It narrows intervals as readily as it widens
them: on the Step Law table the bootstrap's 80% intervals held 94-100% of held-out
optima, too wide to be informative. The interval's log spread is multiplied by it
(``PowerLaw.calibration``); the bootstrap part of that spread already grows with the
distance from the fitted range.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from scalelaw.crossval import Fold, folds
from scalelaw.exceptions import ScalelawError
from scalelaw.laws import CALIBRATION_MIN_RATIOS, HyperparameterLaw, PowerLaw, describe_calibration, robust_sd

CALIBRATION_ALPHA = 0.2  # the level the factor is learned at: the product's 80% intervals
MIN_RATIOS = CALIBRATION_MIN_RATIOS
MIN_FACTOR = 0.25  # never shrink an interval's spread below a quarter of the bootstrap's
MAX_K = 2  # hold out the 1 and the 2 largest values of N (and of D)
MAX_ONE_OUT = 4  # leave-one-N-out folds at most (evenly spread sizes), so fit cost stays linear


@dataclass(frozen=True)
class Calibration:
    """Interval factors for the lr and batch-size laws and what they were learned from:
    ``lr`` / ``batch_size`` multiply the bootstrap spread, ``lr_resid`` /
    ``batch_resid`` the residual scatter (see :func:`fit_factors`)."""

    lr: float
    batch_size: float
    lr_points: int
    batch_points: int
    folds: int
    lr_resid: float = 1.0
    batch_resid: float = 1.0

    def describe(self) -> str:
        return describe_calibration(self.to_dict())

    def to_dict(self) -> dict:
        keys = ("lr", "batch_size", "lr_resid", "batch_resid", "lr_points", "batch_points", "folds")
        return {k: getattr(self, k) for k in keys}


def conformal_factor(ratios: np.ndarray, alpha: float = CALIBRATION_ALPHA) -> float:
    """The (1 - alpha) quantile of |error| / half-width ratios, at least MIN_FACTOR
    (1.0, no calibration, when there are fewer than MIN_RATIOS ratios).

    The plain empirical quantile, not split conformal's finite-sample rank
    ceil((n + 1)(1 - alpha)): with the 5-15 held-out optima a table gives, that rank is
    the largest ratio or next to it, and the Step Law folds' 80% intervals then held
    100% of held-out optima.
    """
    ratios = np.sort(np.asarray(ratios, float)[np.isfinite(ratios)])
    if len(ratios) < MIN_RATIOS:
        return 1.0
    return max(MIN_FACTOR, float(np.quantile(ratios, 1 - alpha)))


FACTORS = np.geomspace(MIN_FACTOR, 8.0, 46)  # the grid fit_factors searches, ~8% apart


def fit_factors(points: pd.DataFrame, alpha: float = CALIBRATION_ALPHA) -> tuple[float, float]:
    """Factors (a, b) on the bootstrap spread ``s`` and the residual scatter ``r`` such
    that the interval half-width ``z * hypot(a s, b r)`` holds a (1 - alpha) share of
    the held-out log errors ``e`` in each ``group`` (extrapolation, interpolation).

    Two factors because one cannot serve both: far from the data the bootstrap spread
    dominates and grows faster than the errors do (on the Step Law's leave-largest-N-out
    folds the bootstrap's intervals held every optimum), near it the scatter dominates.
    With one group, or no scatter, a single factor on both (:func:`conformal_factor`).
    Columns of ``points``: ``e``, ``s``, ``r``, ``group``; rows with NaN are ignored.
    """
    points = points.dropna()
    z = float(stats.norm.ppf(1 - alpha / 2))
    groups = [g for _, g in points.groupby("group") if len(g) >= MIN_RATIOS]
    if len(points) < MIN_RATIOS:
        return 1.0, 1.0
    if len(groups) < 2 or not (points["r"] > 0).any():
        c = conformal_factor(points["e"] / (z * np.hypot(points["s"], points["r"])), alpha)
        return c, c
    best, best_loss = (1.0, 1.0), math.inf
    for a in FACTORS:
        for b in FACTORS:
            loss = 0.0
            for g in groups:
                q = np.quantile(g["e"] / (z * np.hypot(a * g["s"], b * g["r"])), 1 - alpha)
                loss += math.log(max(q, 1e-12)) ** 2
            if loss < best_loss - 1e-12:
                best, best_loss = (float(a), float(b)), loss
    return best


def _point(law: PowerLaw, n: float, d: float, optimum: float, group: str) -> dict | None:
    """Log error, bootstrap spread and scatter of an uncalibrated law at a held-out cell."""
    logs = law._log_draws(n, d)
    if logs is None or not law.determined or law.bound is not None:
        return None
    return {
        "e": abs(math.log(optimum / law(n, d))),
        "s": float(robust_sd(logs, CALIBRATION_ALPHA)),
        "r": law.resid_sd,
        "group": group,
    }


def calibration_folds(runs: pd.DataFrame) -> list[Fold]:
    """Leave-largest-k folds (k = 1..MAX_K) along N and along D, and leave-one-N-out,
    each where 3+ values vary: extrapolation, what users do, and interpolation, so one
    factor serves both (from extrapolation folds alone, the Step Law's leave-one-N-out
    lr intervals held 59% of held-out optima)."""
    schemes = [
        scheme
        for scheme, column in (
            ("leave-largest-N-out", "params"),
            ("leave-one-N-out", "params"),
            ("leave-largest-D-out", "tokens"),
        )
        if runs[column].nunique() >= 3
    ]
    try:
        made = folds(runs, schemes, max_k=MAX_K) if schemes else []
    except ScalelawError:
        return []
    one_out = [f for f in made if f.scheme == "leave-one-N-out"]
    if len(one_out) > MAX_ONE_OUT:  # a few sizes spread over the range keep the cost flat
        keep = {id(one_out[i]) for i in np.linspace(0, len(one_out) - 1, MAX_ONE_OUT).round().astype(int)}
        made = [f for f in made if f.scheme != "leave-one-N-out" or id(f) in keep]
    return made


def calibrate_on(fitted: list[tuple[Fold, HyperparameterLaw]], optima: pd.DataFrame) -> Calibration:
    """The interval factors from laws already fitted on calibration folds.

    ``optima``: the cell optima of the whole table (:func:`scalelaw.optima.cell_optima`);
    a held-out cell counts for lr (batch size) when its lr (batch) optimum is bracketed.
    """
    table = optima.drop_duplicates(["params", "tokens"]).set_index(["params", "tokens"])
    lr_points, b_points = [], []
    for fold, law in fitted:
        group = "extrapolation" if fold.scheme.startswith("leave-largest") else "interpolation"
        for (n, d), _ in fold.test.groupby(["params", "tokens"]):
            if (n, d) not in table.index:
                continue
            row = table.loc[(n, d)]
            if row["lr_bracketed"]:
                lr_points.append(_point(law.lr, n, d, row["lr_opt"], group))
            if row["batch_bracketed"]:
                b_points.append(_point(law.batch_size, n, d, row["batch_size_opt"], group))
    columns = ["e", "s", "r", "group"]
    lr_table = pd.DataFrame([x for x in lr_points if x], columns=columns)
    b_table = pd.DataFrame([x for x in b_points if x], columns=columns)
    (lr_a, lr_b), (b_a, b_b) = fit_factors(lr_table), fit_factors(b_table)
    return Calibration(
        lr=lr_a,
        batch_size=b_a,
        lr_resid=lr_b,
        batch_resid=b_b,
        lr_points=len(lr_table),
        batch_points=len(b_table),
        folds=len(fitted),
    )


def fit_folds(
    splits: list[Fold], refit: Callable[[pd.DataFrame], HyperparameterLaw]
) -> list[tuple[Fold, HyperparameterLaw]]:
    """``refit`` on each fold's training runs; a fold whose refit fails (too few cells
    left, a landscape it cannot fit) is skipped."""
    out = []
    for fold in splits:
        try:
            out.append((fold, refit(fold.train)))
        except ScalelawError:
            continue
    return out


def calibrate(
    runs: pd.DataFrame, optima: pd.DataFrame, refit: Callable[[pd.DataFrame], HyperparameterLaw]
) -> Calibration:
    """Learn the interval factors (module docstring) for laws ``refit`` fits to ``runs``."""
    return calibrate_on(fit_folds(calibration_folds(runs), refit), optima)
