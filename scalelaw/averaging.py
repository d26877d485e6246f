"""Model averaging of two hyperparameter-law estimators, weighted by how each
extrapolates on the table it is fitted to.

The joint surface (:mod:`scalelaw.surface`) is the most accurate estimator near its
data; the band method (OLS through every near-optimal run) is cruder but steadier far
from it: on the Step Law table's leave-largest-N-out folds the surface's worst cell is
0.32% regret, the band's 0.20%. Both laws are log-linear in (log N, log D), so a
weighted geometric mean of their predictions is again a power law, with the weighted
mean of their coefficients (and of their paired bootstrap draws).

The weight is chosen per table, not tuned once: each candidate weight in ``WEIGHTS``
is scored by how far its predictions land from the held-out optima on the table's own
extrapolation folds (:func:`scalelaw.calibration.calibration_folds`: the largest model
sizes and budgets held out), mean plus max over the held-out cells (:func:`fold_errors`),
and the best wins (ties go to the surface).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from scalelaw.crossval import Fold
from scalelaw.laws import HyperparameterLaw, PowerLaw

WEIGHTS = (1.0, 2 / 3, 1 / 2, 1 / 3, 0.0)  # weight of the surface law; the band gets the rest


def combine(a: PowerLaw, b: PowerLaw, weight: float) -> PowerLaw:
    """The power law ``a^weight * b^(1 - weight)``: coefficients and paired draws averaged.

    Both laws must have the same terms. The result keeps ``a``'s bound, determined flag
    and caveat when ``weight >= 0.5``, else ``b``'s; no analytic standard errors.
    """
    if a.terms != b.terms:
        raise ValueError(f"cannot average laws in {a.terms} and {b.terms}")
    if weight == 1.0:
        return a
    if weight == 0.0:
        return b
    params = weight * a.params + (1 - weight) * b.params
    draws = None
    if a.draws is not None and b.draws is not None:
        m = min(len(a.draws), len(b.draws))
        draws = weight * np.asarray(a.draws)[:m] + (1 - weight) * np.asarray(b.draws)[:m]
    lead = a if weight >= 0.5 else b
    return dataclasses.replace(
        lead,
        log_coef=float(params[0]),
        exponents={t: float(v) for t, v in zip(a.terms, params[1:], strict=True)},
        resid_sd=float(np.hypot(weight * a.resid_sd, (1 - weight) * b.resid_sd)),
        draws=draws,
        se=None,
    )


def combine_laws(a: HyperparameterLaw, b: HyperparameterLaw, weight: float) -> HyperparameterLaw:
    """Both hyperparameter laws averaged with ``weight`` on ``a`` (the loss law is ``a``'s)."""
    return dataclasses.replace(
        a, lr=combine(a.lr, b.lr, weight), batch_size=combine(a.batch_size, b.batch_size, weight)
    )


def fold_errors(
    pairs: list[tuple[Fold, HyperparameterLaw, HyperparameterLaw]], optima: pd.DataFrame, weights=WEIGHTS
) -> pd.DataFrame:
    """How far each weight's averaged prediction lands from each held-out cell's optimum.

    ``pairs``: (fold, surface law, band law) fitted on the fold's training runs;
    ``optima``: the whole table's cell optima (:func:`scalelaw.optima.cell_optima`), of
    which the cells bracketed in both lr and batch size are scored. ``error`` is
    ``|log(lr / lr_opt)| + |log(B / B_opt)|``: a distance to the fitted bowl's minimum,
    not the regret against the cell's best run, whose noise (the luck of the best of
    many noisy runs) is as large as the differences being chosen between.
    Columns: ``weight``, ``fold``, ``params``, ``tokens``, ``error``.
    """
    table = optima[optima["bracketed"]].drop_duplicates(["params", "tokens"]).set_index(["params", "tokens"])
    rows = []
    for fold, a, b in pairs:
        for (n, d), _ in fold.test.groupby(["params", "tokens"]):
            if (n, d) not in table.index:
                continue
            lr_opt, b_opt = table.loc[(n, d), ["lr_opt", "batch_size_opt"]]
            for w in weights:
                lr = combine(a.lr, b.lr, w)(n, d)
                batch = combine(a.batch_size, b.batch_size, w)(n, d)
                error = abs(np.log(lr / lr_opt)) + abs(np.log(batch / b_opt))
                rows.append({"weight": w, "fold": fold.name, "params": n, "tokens": d, "error": error})
    return pd.DataFrame(rows, columns=["weight", "fold", "params", "tokens", "error"])


def choose_weight(errors: pd.DataFrame) -> float:
    """The weight with the least mean + max held-out error (1.0, the surface, without folds)."""
    if errors.empty:
        return 1.0
    score = errors.groupby("weight", sort=False)["error"].agg(lambda r: r.mean() + r.max())
    best = score.min()
    return float(max(w for w, s in score.items() if s <= best + 1e-12))
