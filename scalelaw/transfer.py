"""μTransfer check: does the optimal lr at a fixed batch size and token budget move with
model size?

μP's promise (Yang et al. 2022) is about one training setup at a time: with the batch
size, token budget and schedule held fixed, the best base lr should not depend on width.
So this module finds, for every (cell, batch size) row of a runs table, the best lr
along that row, and fits

    log lr*(N | D, B) = alpha * log N + c[D, B]

by ordinary least squares with one intercept per (token budget, batch size) pair. alpha
is the exponent in non-embedding params N; at fixed depth N ∝ width², so the exponent in
width is 2 alpha. μP predicts alpha = 0; under the standard parametrization with Adam
the hidden layers' best lr falls like 1/width (alpha = -0.5) once width dominates.

This is a different quantity from the exponent of the joint optimum lr*(N, D) of
:func:`scalelaw.fit`, which also moves with the optimal batch size. At small token
budgets the loss is nearly flat along lr ∝ batch size, so the joint optimum is poorly
pinned down while the optimum at fixed batch size is not.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from scalelaw.atomic import atomic_write_text
from scalelaw.exceptions import NotEnoughDataError
from scalelaw.optima import iter_cells
from scalelaw.results import (
    COLUMNS,
    FittedResults,
    Summary,
    check_alpha,
    level,
    resolve_alpha,
)
from scalelaw.runs import divergence_reason


def lr_optima_by_batch(runs: pd.DataFrame) -> pd.DataFrame:
    """The best lr of every (cell, batch size) row that sweeps 3 or more lrs.

    ``runs``: a validated runs table. Returns one row per (cell, batch size): the cell
    columns, ``batch_size`` (tokens), ``n_lrs``, ``lr_best`` and ``loss_best`` (best run),
    ``lr_opt`` (vertex of the parabola in log lr through the best run and its two grid
    neighbours; the best run's lr when a neighbour diverged) and ``bracketed`` (False when
    the best run is the row's smallest or largest lr; a diverged run above the best
    counts as a bracket).
    """
    loss = runs["loss"].where(divergence_reason(runs) == "", np.inf)
    out = []
    for cell, group in iter_cells(runs):
        for batch, row in group.groupby("batch_size", sort=True):
            row = row.assign(loss=loss.loc[row.index]).sort_values("lr")
            if row["lr"].nunique() < 3 or not np.isfinite(row["loss"]).any():
                continue
            lrs, y = row["lr"].to_numpy(float), row["loss"].to_numpy(float)
            i = int(np.argmin(y))
            bracketed = 0 < i < len(y) - 1
            lr_opt = lrs[i]
            if bracketed and np.isfinite(y[i - 1 : i + 2]).all():
                x = np.log(lrs[i - 1 : i + 2])
                a, b, _ = np.polyfit(x, y[i - 1 : i + 2], 2)
                if a > 0:
                    lr_opt = float(np.exp(np.clip(-b / (2 * a), x[0], x[2])))
            out.append(
                dict(
                    cell,
                    batch_size=int(batch),
                    n_lrs=len(row),
                    lr_best=float(lrs[i]),
                    loss_best=float(y[i]),
                    lr_opt=float(lr_opt),
                    bracketed=bracketed,
                )
            )
    return pd.DataFrame(out)


@dataclass(frozen=True)
class TransferFit(FittedResults):
    """Fitted exponent of the fixed-batch optimal lr in N (term ``exp_N``), with the
    results protocol (:mod:`scalelaw.results`): ``params``, ``bse``, ``conf_int(alpha)``.

    ``rows``: the :func:`lr_optima_by_batch` table; ``used`` marks the rows in the fit
    (bracketed, in a (D, B) group with 2 or more model sizes). ``dof``: the t
    distribution's degrees of freedom (cells - 1: errors clustered by cell). ``ci`` is
    the interval at the ``alpha`` the fit was asked for.
    """

    exponent: float  # alpha in lr* ∝ N^alpha at fixed D and batch size
    std_err: float
    ci: tuple[float, float]
    alpha: float
    rows: pd.DataFrame
    n_used: int
    dof: float = math.inf

    @property
    def default_alpha(self) -> float:
        return self.alpha

    @property
    def confidence(self) -> float:
        """1 - alpha (the level of ``ci``)."""
        return 1.0 - self.alpha

    def coefficients(self, alpha: float | None = None) -> pd.DataFrame:
        alpha = self.alpha if alpha is None else check_alpha(alpha)
        half = float(stats.t.ppf(1 - alpha / 2, self.dof)) * self.std_err
        return pd.DataFrame(
            [("exp_N", self.exponent, self.std_err, self.exponent - half, self.exponent + half)],
            columns=["term", *COLUMNS],
        )

    def summary(self, alpha: float | None = None) -> Summary:
        alpha = self.alpha if alpha is None else check_alpha(alpha)
        n = self.rows.loc[self.rows["used"], "params"]
        table = self.coefficients(alpha).set_index("term")
        lo, hi = table.loc["exp_N", ["ci_lower", "ci_upper"]]
        text = (
            f"optimal lr at fixed batch size and token budget: lr* ∝ N^{self.exponent:+.3f} "
            f"[{lo:+.3f}, {hi:+.3f}] ({level(alpha)} interval; N^{2 * self.exponent:+.3f} in "
            f"width at fixed depth), from {self.n_used} of {len(self.rows)} (cell, batch size) "
            f"rows, N {n.min():.3g} to {n.max():.3g} (μP: 0)"
        )
        return Summary(text, table, "μTransfer: lr* at fixed batch size against N")

    def to_dict(self) -> dict:
        """JSON-ready fields (``rows`` as records); :meth:`from_dict` reads them back."""
        return {
            "exponent": self.exponent,
            "std_err": self.std_err,
            "ci": list(self.ci),
            "alpha": self.alpha,
            "dof": None if math.isinf(self.dof) else self.dof,
            "n_used": self.n_used,
            "rows": json.loads(self.rows.to_json(orient="records")),
        }

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=1)
        if path is not None:
            atomic_write_text(Path(path), text)
        return text

    @classmethod
    def from_dict(cls, d: dict) -> TransferFit:
        return cls(
            exponent=float(d["exponent"]),
            std_err=float(d["std_err"]),
            ci=(float(d["ci"][0]), float(d["ci"][1])),
            alpha=float(d["alpha"]),
            rows=pd.DataFrame(d["rows"]),
            n_used=int(d["n_used"]),
            dof=math.inf if d.get("dof") is None else float(d["dof"]),
        )


def fit_transfer(
    runs: pd.DataFrame, *, alpha: float | None = None, confidence: float | None = None
) -> TransferFit:
    """Fit lr*(N | D, B) ∝ N^exp_N to a runs table: how far the optimal lr moves with
    width at a fixed token budget and batch size (see the module docstring).

    Parameters
    ----------
    runs : DataFrame
        A validated runs table with at least two model sizes sharing a (D, batch size).
    alpha : float, optional
        Intervals at (1 - alpha), default 0.2 (80%); ``confidence`` is the deprecated
        spelling of 1 - alpha.

    Returns
    -------
    TransferFit
        The exponent ``exp_N`` with its t interval, the per-group optima it was fitted
        on, and the results protocol.

    Raises
    ------
    NotEnoughDataError
        Naming what is missing when no exponent can be fitted.
    """
    alpha = resolve_alpha(alpha, confidence, "fit_transfer")
    rows = lr_optima_by_batch(runs)
    if rows.empty:
        raise NotEnoughDataError("no (cell, batch size) row sweeps 3 or more learning rates")
    rows["group"] = rows.groupby(["tokens", "batch_size"]).ngroup()
    sizes = rows[rows["bracketed"]].groupby("group")["params"].nunique()
    rows["used"] = rows["bracketed"] & rows["group"].isin(sizes[sizes >= 2].index)
    used = rows[rows["used"]]
    n_groups = used["group"].nunique()
    if len(used) < n_groups + 2:
        raise NotEnoughDataError(
            f"only {len(used)} bracketed (cell, batch size) rows share a token budget and batch "
            "size with another model size: sweep 2 or more widths on the same lr x batch grid "
            "and extend the lr grids until their optima are bracketed (scalelaw sweep --refine)"
        )
    fixed = pd.get_dummies(used["group"], prefix="g", dtype=float).to_numpy()
    design = np.column_stack([np.log(used["params"].to_numpy(float)), fixed])
    # Rows of one cell share its runs' lr grid and seed: cluster the errors by cell.
    cells = used.groupby(["params", "tokens"]).ngroup().to_numpy()
    result = sm.OLS(np.log(used["lr_opt"].to_numpy(float)), design).fit(
        cov_type="cluster", cov_kwds={"groups": cells}, use_t=True
    )
    lo, hi = result.conf_int(alpha=alpha)[0]
    return TransferFit(
        exponent=float(result.params[0]),
        std_err=float(result.bse[0]),
        ci=(float(lo), float(hi)),
        alpha=alpha,
        dof=float(getattr(result, "df_resid_inference", None) or result.df_resid),
        rows=rows.drop(columns="group"),
        n_used=len(used),
    )
