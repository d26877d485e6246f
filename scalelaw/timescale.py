"""AdamW's timescale as a power law, from a sweep that varies weight decay.

AdamW's weights are an exponential moving average of the updates with timescale
tau = 1 / (lr * lambda) steps (Wang & Aitchison 2024, arXiv 2405.13698). Given per-cell
optima (:func:`scalelaw.optima.cell_optima`) of a table whose cells differ in
``weight_decay`` (a recipe column, so each (N, D, lambda) is its own cell):

1. for each (N, D), lambda* is the vertex of a parabola in log(lambda) through the
   cells' optimal losses (the best cell and up to two neighbours each side); where the
   parabola is not convex, its vertex lies outside the points, or fewer than 3 positive
   lambdas were swept, lambda* is the best cell's lambda instead (``lambda_method``
   says which, and why). lambda = 0 cells take no part: their timescale is infinite.
2. lr* and B* at lambda* interpolate the cells' log lr_opt and log batch_size_opt
   linearly in log(lambda).
3. tau* = 1 / (lr* lambda*) steps, as a fraction of the S = D / B* steps of training.
4. log(tau* / S) = c + a log N + b log D by least squares (statsmodels OLS, analytic
   standard errors), bootstrap over the (N, D) points for prediction intervals: a
   :class:`scalelaw.laws.PowerLaw` with quantity ``"timescale_fraction"``.

numpy, pandas and statsmodels only: no torch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.api as sm

from scalelaw.laws import TERMS, PowerLaw

QUANTITY = "timescale_fraction"
UNIT = "fraction of training steps"
NEIGHBOURS = 2  # grid points each side of the best lambda that shape the parabola


def _positive_decays(cells: pd.DataFrame) -> pd.DataFrame:
    cells = cells[np.isfinite(cells["weight_decay"].astype(float)) & (cells["weight_decay"] > 0)]
    return cells.dropna(subset=["loss_opt", "lr_opt", "batch_size_opt"]).sort_values("weight_decay")


def varies_weight_decay(optima: pd.DataFrame | None, min_cells: int = 2) -> bool:
    """Whether at least ``min_cells`` (N, D) cells were swept at 2+ positive weight decays."""
    if optima is None or "weight_decay" not in optima or not len(optima):
        return False
    counts = _positive_decays(optima).groupby(["params", "tokens"])["weight_decay"].nunique()
    return int((counts >= 2).sum()) >= min_cells


def best_decay(cells: pd.DataFrame) -> tuple[float, str]:
    """(lambda*, how it was found) for one (N, D): cells at positive lambdas, sorted."""
    x = np.log(cells["weight_decay"].to_numpy(float))
    y = np.log(cells["loss_opt"].to_numpy(float))
    best = int(np.argmin(y))
    if best in (0, len(x) - 1):
        side = "smallest" if best == 0 else "largest"
        return float(np.exp(x[best])), f"best of grid (the {side} λ swept is best: λ* not bracketed)"
    lo, hi = max(0, best - NEIGHBOURS), min(len(x), best + NEIGHBOURS + 1)
    xs, ys = x[lo:hi], y[lo:hi]
    if len(xs) < 3:
        return float(np.exp(x[best])), "best of grid (fewer than 3 positive λ)"
    c2, c1, _ = np.polyfit(xs, ys, 2)
    if not c2 > 0:
        return float(np.exp(x[best])), "best of grid (the parabola is not convex)"
    vertex = -c1 / (2 * c2)
    if not xs[0] <= vertex <= xs[-1]:
        return float(np.exp(x[best])), "best of grid (the parabola's vertex lies outside the λ swept)"
    return float(np.exp(vertex)), "parabola"


def timescale_points(optima: pd.DataFrame) -> pd.DataFrame:
    """Per (N, D) swept at 2+ positive weight decays: lambda*, how it was found, lr* and
    B* at lambda*, the steps S = D / B*, tau* = 1 / (lr* lambda*) in steps and in
    tokens, and ``timescale_fraction`` = tau* / S."""
    rows = []
    for (n, d), cells in _positive_decays(optima).groupby(["params", "tokens"], sort=True):
        if cells["weight_decay"].nunique() < 2:
            continue
        cells = cells.groupby("weight_decay", as_index=False).agg(
            loss_opt=("loss_opt", "min"),
            lr_opt=("lr_opt", "median"),
            batch_size_opt=("batch_size_opt", "median"),
        )
        decay, how = best_decay(cells)
        x = np.log(cells["weight_decay"].to_numpy(float))
        lr = float(np.exp(np.interp(np.log(decay), x, np.log(cells["lr_opt"].to_numpy(float)))))
        batch = float(np.exp(np.interp(np.log(decay), x, np.log(cells["batch_size_opt"].to_numpy(float)))))
        steps = float(d) / batch
        tau = 1.0 / (lr * decay)
        rows.append(
            {
                "params": n,
                "tokens": d,
                "weight_decays": len(cells),
                "lambda_opt": decay,
                "lambda_method": how,
                "lr_at_lambda": lr,
                "batch_size_at_lambda": batch,
                "steps": steps,
                "tau_steps": tau,
                "tau_tokens": tau * batch,
                QUANTITY: tau / steps,
            }
        )
    return pd.DataFrame(rows)


def fit_timescale(
    optima: pd.DataFrame, *, n_boot: int = 200, seed: int = 0, terms: tuple[str, ...] | None = None
) -> PowerLaw | None:
    """The timescale-fraction law tau*/S = exp(c) N^a D^b (see the module), or None
    where fewer than 2 (N, D) cells were swept in weight decay.

    ``terms``: default each of N and D that varies across the points, dropped (D first)
    until the fit has at least one residual degree of freedom where it can. A fit with
    none (2 points) is not ``determined``; one with bracketing problems says so in its
    ``caveat``.
    """
    if not varies_weight_decay(optima):
        return None
    points = timescale_points(optima)
    column = {"N": "params", "D": "tokens"}
    if terms is None:
        terms = tuple(t for t in TERMS if points[column[t]].nunique() > 1)
        while terms and len(points) < len(terms) + 2:
            terms = terms[:-1]
    X = np.column_stack([np.ones(len(points)), *[np.log(points[column[t]].to_numpy(float)) for t in terms]])
    y = np.log(points[QUANTITY].to_numpy(float))
    result = sm.OLS(y, X).fit()
    params = np.asarray(result.params)
    dof = len(y) - X.shape[1]
    resid = y - X @ params
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        s = rng.integers(0, len(y), len(y))
        if np.linalg.matrix_rank(X[s]) == X.shape[1]:
            draws.append(np.linalg.lstsq(X[s], y[s], rcond=None)[0])
    unbracketed = int(points["lambda_method"].str.contains("not bracketed").sum())
    caveats = []
    if unbracketed:
        caveats.append(
            f"{unbracketed} of {len(points)} (N, D) cells have their best λ on the edge of the λ grid; "
            "extend the weight-decay grid"
        )
    if dof < 1:
        caveats.append(f"{len(points)} points for {X.shape[1]} coefficients: no residual to judge the fit by")
    se = np.asarray(result.bse) if dof > 0 else None
    return PowerLaw(
        QUANTITY,
        UNIT,
        float(params[0]),
        {t: float(v) for t, v in zip(terms, params[1:], strict=True)},
        resid_sd=float(np.sqrt(np.sum(resid**2) / dof)) if dof > 0 else 0.0,
        draws=np.array(draws).reshape(-1, X.shape[1]) if draws else None,
        se=None if se is None else tuple(float(v) for v in se),
        determined=dof > 0,
        caveat="; ".join(caveats),
    )


def best_decay_runs(runs: pd.DataFrame, optima: pd.DataFrame | None = None) -> pd.DataFrame:
    """The runs of each (N, D)'s best weight decay on the grid (lowest fitted cell loss,
    λ = 0 included): what the lr*, B* and loss laws are fitted on when a sweep varies λ,
    so cells at a poor λ do not pull them. ``optima``: ``cell_optima(runs)`` when the
    caller already has it."""
    if optima is None:
        from scalelaw.optima import cell_optima

        optima = cell_optima(runs, n_boot=0)
    optima = optima.dropna(subset=["loss_opt"])
    best = optima.loc[
        optima.groupby(["params", "tokens"])["loss_opt"].idxmin(), ["params", "tokens", "weight_decay"]
    ]
    keep = runs.merge(best, on=["params", "tokens", "weight_decay"], how="inner")["run_id"]
    return runs[runs["run_id"].isin(set(keep))]
