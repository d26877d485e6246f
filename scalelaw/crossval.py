"""Cross-validation of hyperparameter-law estimators: how well a law fitted on some cells
predicts the optima of cells it never saw.

One split is not a validation protocol: an estimator tuned on it wins there and loses
elsewhere. Three schemes, each a list of folds that hold out whole cells:

- ``leave-one-N-out``: each model size in turn (interpolation and mild extrapolation);
- ``leave-largest-N-out``: the k largest model sizes, k = 1..``max_k`` (extrapolation
  in N, the case users live in);
- ``leave-one-D-out``: each token budget in turn;
- ``leave-largest-D-out``: the k largest token budgets (extrapolation in D; what
  :func:`scalelaw.fit` calibrates on when a table has few model sizes).

Every held-out cell is scored on its own runs: the regret of the predicted (lr, B)
(:func:`scalelaw.optima.regret`, in percent), whether the cell's fitted optimum
(:func:`scalelaw.optima.cell_optima`, the bowl through its near-optimal runs) lies
inside the prediction's (1 - alpha) intervals, and how far the cell lies outside the
range the law was fitted on (N / max fitted N, D / max fitted D; 1 inside).

    estimators = {"surface": lambda t: scalelaw.fit(t), "band": lambda t: scalelaw.fit(t, method="band")}
    scores = crossvalidate(runs, estimators)      # one row per estimator, fold and cell
    summarize(scores)                             # one row per estimator and scheme
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from scalelaw.exceptions import InputError, NotEnoughDataError
from scalelaw.laws import HyperparameterLaw
from scalelaw.optima import cell_optima, iter_cells, regret
from scalelaw.predict import predict
from scalelaw.results import DEFAULT_ALPHA
from scalelaw.runs import cell_columns

SCHEMES = ("leave-one-N-out", "leave-largest-N-out", "leave-one-D-out", "leave-largest-D-out")
DEFAULT_SCHEMES = SCHEMES[:3]
Estimator = Callable[[pd.DataFrame], HyperparameterLaw]


@dataclass(frozen=True)
class Fold:
    """One split: fit on ``train``, score on the cells of ``test`` (runs tables)."""

    scheme: str
    name: str
    train: pd.DataFrame
    test: pd.DataFrame


def folds(runs: pd.DataFrame, schemes: Iterable[str] = DEFAULT_SCHEMES, max_k: int = 3) -> list[Fold]:
    """The folds of each scheme over a validated runs table (see the module docstring).

    A fold is kept only when its training cells still span two model sizes and two
    token budgets, so every estimator can fit both exponents.
    """
    schemes = tuple(schemes)
    unknown = [s for s in schemes if s not in SCHEMES]
    if unknown:
        raise InputError(f"unknown cross-validation scheme(s) {unknown}; choose from {SCHEMES}")
    sizes, budgets = np.sort(runs["params"].unique()), np.sort(runs["tokens"].unique())
    out: list[Fold] = []

    def add(scheme: str, name: str, held: pd.Series) -> None:
        train = runs[~held]
        if train["params"].nunique() >= 2 and train["tokens"].nunique() >= 2 and held.any():
            out.append(Fold(scheme, name, train, runs[held]))

    for scheme in schemes:
        if scheme == "leave-one-N-out":
            for n in sizes:
                add(scheme, f"N={n:.3g}", runs["params"] == n)
        elif scheme == "leave-largest-N-out":
            for k in range(1, min(max_k, len(sizes) - 2) + 1):
                add(scheme, f"largest {k} N", runs["params"] >= sizes[-k])
        elif scheme == "leave-one-D-out":
            for d in budgets:
                add(scheme, f"D={d:.3g}", runs["tokens"] == d)
        else:
            for k in range(1, min(max_k, len(budgets) - 2) + 1):
                add(scheme, f"largest {k} D", runs["tokens"] >= budgets[-k])
    if not out:
        raise NotEnoughDataError(
            "no cross-validation fold leaves two model sizes and two token budgets to fit on"
        )
    return out


def score_cells(
    law: HyperparameterLaw,
    test: pd.DataFrame,
    *,
    alpha: float = DEFAULT_ALPHA,
    optima: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per cell of ``test``: the law's prediction there and how it scored.

    Columns: ``params``, ``tokens``, ``lr_pred``, ``batch_size_pred`` (tokens),
    ``lr_opt``, ``batch_size_opt`` (the cell's fitted optimum), ``regret_pct``,
    ``lr_covered``, ``batch_covered`` (optimum inside the (1 - alpha) interval; NaN when
    the law gives none), ``lr_ratio``, ``batch_ratio`` (log distance of the optimum from
    the prediction over the interval's log half-width: a coverage at any wider or
    narrower interval can be read off), ``extrapolation_N``, ``extrapolation_D`` (cell
    / fitted maximum). ``optima``: ``cell_optima(test, n_boot=0)`` when the caller
    already has it (it depends on the test runs only, not on the law).
    """
    keys = cell_columns(test)  # (params, tokens) and any recipe columns
    optima = (cell_optima(test, n_boot=0) if optima is None else optima).set_index(keys)
    rows = []
    for cell, runs in iter_cells(test):
        n, d = cell["params"], cell["tokens"]
        p = predict(n, d, law=law, alpha=alpha)
        found = optima.loc[tuple(cell[k] for k in keys) if len(keys) > 1 else cell[keys[0]]]
        lr_opt, b_opt = float(found["lr_opt"]), float(found["batch_size_opt"])
        rows.append(
            {
                "params": n,
                "tokens": d,
                "lr_pred": p.lr,
                "batch_size_pred": p.batch_size,
                "lr_opt": lr_opt,
                "batch_size_opt": b_opt,
                "regret_pct": 100 * regret(runs, p.lr, p.batch_size),
                "lr_covered": _inside(p.lr_interval, lr_opt),
                "batch_covered": _inside(p.batch_size_interval, b_opt),
                "lr_ratio": _ratio(p.lr_interval, p.lr, lr_opt),
                "batch_ratio": _ratio(p.batch_size_interval, p.batch_size, b_opt),
                "extrapolation_N": n / law.fit_range["N"][1] if law.fit_range else math.nan,
                "extrapolation_D": d / law.fit_range["D"][1] if law.fit_range else math.nan,
            }
        )
    return pd.DataFrame(rows)


def _ratio(interval: tuple[float, float] | None, center: float, value: float) -> float:
    """|log(value / center)| over the interval's log half-width (<= 1: inside, if symmetric)."""
    if interval is None or not (0 < interval[0] < interval[1] < math.inf):
        return math.nan
    return abs(math.log(value / center)) / (0.5 * math.log(interval[1] / interval[0]))


def _inside(interval: tuple[float, float] | None, value: float) -> float:
    if interval is None:
        return math.nan
    return float(interval[0] <= value <= interval[1])


def crossvalidate(
    runs: pd.DataFrame,
    estimators: Mapping[str, Estimator],
    *,
    schemes: Iterable[str] = DEFAULT_SCHEMES,
    max_k: int = 3,
    alpha: float = DEFAULT_ALPHA,
    log: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Score every estimator on every fold: one row per (estimator, fold, held-out cell).

    ``estimators`` maps a name to a function from a training runs table to a fitted
    :class:`HyperparameterLaw` (a published preset ignores its argument). Columns: those
    of :func:`score_cells` plus ``estimator``, ``scheme``, ``fold``.
    """
    parts = []
    for fold in folds(runs, schemes, max_k):
        held_out = cell_optima(fold.test, n_boot=0)  # the same for every estimator
        for name, estimator in estimators.items():
            law = estimator(fold.train)
            scored = score_cells(law, fold.test, alpha=alpha, optima=held_out)
            parts.append(scored.assign(estimator=name, scheme=fold.scheme, fold=fold.name))
            if log is not None:
                mean = scored["regret_pct"].mean()
                log(f"{fold.scheme:<20} {fold.name:<14} {name:<12} mean regret {mean:.3f}%")
    return pd.concat(parts, ignore_index=True)


def summarize(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per (estimator, scheme): ``folds``, ``cells``, ``mean_regret_pct``,
    ``max_regret_pct``, ``lr_coverage``, ``batch_coverage`` (fractions of held-out
    optima inside the intervals) and ``max_extrapolation_N`` / ``_D``."""
    grouped = scores.groupby(["estimator", "scheme"], sort=False)
    return grouped.agg(
        folds=("fold", "nunique"),
        cells=("regret_pct", "size"),
        mean_regret_pct=("regret_pct", "mean"),
        max_regret_pct=("regret_pct", "max"),
        lr_coverage=("lr_covered", "mean"),
        batch_coverage=("batch_covered", "mean"),
        max_extrapolation_N=("extrapolation_N", "max"),
        max_extrapolation_D=("extrapolation_D", "max"),
    ).reset_index()
