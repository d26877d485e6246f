"""Loss law L(N, D) = E + A / N^alpha + B / D^beta, fitted robustly.

Objective (Hoffmann et al. 2022, approach 3; Besiroglu et al. 2024): Huber loss with
delta = 1e-3 on log L. The 5-parameter problem is badly conditioned (E, A, B trade off
against the exponents), so it is solved by variable projection: for fixed (alpha, beta)
the model is linear in (E, A, B) >= 0, which iteratively reweighted non-negative least
squares solves on relative residuals; only (alpha, beta) are searched, on a grid
that zooms in three times (no starting point to guess). A final L-BFGS step on all
five parameters polishes the exact objective. Bootstrap over points gives the intervals.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from scalelaw.deprecation import keyword_only_since
from scalelaw.exceptions import RunsTableError, show
from scalelaw.laws import LossLaw

HUBER_DELTA = 1e-3  # Hoffmann et al. 2022, Besiroglu et al. 2024
EXPONENT_RANGE = (0.02, 1.5)  # covers every published alpha, beta (about 0.07..0.7)
GRID_POINTS = 16
ZOOM_STEPS = 3
IRLS_STEPS = 6
_SUBSETS = [np.array(s) for s in ([0], [1], [2], [0, 1], [0, 2], [1, 2], [0, 1, 2])]


def _huber(r: np.ndarray, delta: float) -> np.ndarray:
    a = np.abs(r)
    return np.where(a < delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def _nnls3(gram: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Exact non-negative least squares with 3 unknowns, batched over leading axes.

    A convex QP's optimum is the unconstrained solution on its support, so trying the
    7 supports and keeping the best feasible one is exact (and vectorizes, unlike
    scipy.optimize.nnls).
    """
    best = np.zeros(rhs.shape)
    best_value = np.zeros(rhs.shape[:-1])
    eye = 1e-12 * np.eye(3)
    for s in _SUBSETS:
        g = gram[..., s[:, None], s[None, :]] + eye[: len(s), : len(s)]
        coef = np.linalg.solve(g, rhs[..., s, None])[..., 0]
        value = -np.einsum("...i,...i->...", rhs[..., s], coef)
        take = np.all(coef >= 0, axis=-1) & (value < best_value)
        best_value = np.where(take, value, best_value)
        full = np.zeros(rhs.shape)
        full[..., s] = coef
        best = np.where(take[..., None], full, best)
    return best


def _profile(
    a: np.ndarray, b: np.ndarray, n: np.ndarray, d: np.ndarray, loss: np.ndarray, delta: float
) -> tuple[np.ndarray, np.ndarray]:
    """For each exponent pair (a[i], b[i]): best (E, A, B) >= 0 and its Huber objective.

    The Huber loss on log L is approximated by iteratively reweighted least squares on
    relative residuals (prediction / L - 1 ~ log prediction - log L near the fit).
    """
    design = (
        np.stack(
            np.broadcast_arrays(
                np.ones((len(a), len(n))), n[None, :] ** -a[:, None], d[None, :] ** -b[:, None]
            ),
            -1,
        )
        / loss[None, :, None]
    )  # (pairs, points, 3)
    weights = np.ones((len(a), len(n)))
    for _ in range(IRLS_STEPS):
        gram = np.einsum("gm,gmi,gmj->gij", weights, design, design)
        coef = _nnls3(gram, np.einsum("gm,gmi->gi", weights, design))
        r = np.log(np.maximum(np.einsum("gmi,gi->gm", design, coef), 1e-12))
        weights = np.where(np.abs(r) < delta, 1.0, delta / np.maximum(np.abs(r), 1e-300))
    return coef, _huber(r, delta).sum(axis=1)


def _fit_once(
    n: np.ndarray, d: np.ndarray, loss: np.ndarray, delta: float, grid_points: int = GRID_POINTS
) -> np.ndarray:
    """Variable projection: grid over (alpha, beta), zoom in, then polish all five."""
    lo, hi = EXPONENT_RANGE
    center, half = np.array([(lo + hi) / 2] * 2), (hi - lo) / 2
    for _ in range(1 + ZOOM_STEPS):
        axis = np.linspace(-half, half, grid_points)
        a, b = (g.ravel() for g in np.meshgrid(center[0] + axis, center[1] + axis, indexing="ij"))
        ok = (a > 0) & (b > 0)
        coef, score = _profile(a[ok], b[ok], n, d, loss, delta)
        i = int(np.argmin(score))
        center, half = np.array([a[ok][i], b[ok][i]]), 2 * half / (grid_points - 1)
    log_loss, log_n, log_d = np.log(loss), np.log(n), np.log(d)

    def objective(q: np.ndarray) -> float:  # q = alpha, beta, log E, log A, log B
        pred = np.logaddexp(np.logaddexp(q[2], q[3] - q[0] * log_n), q[4] - q[1] * log_d)
        return float(_huber(pred - log_loss, delta).sum())

    start = np.r_[center, np.log(np.maximum(coef[i], 1e-10))]
    polished = minimize(objective, start, method="L-BFGS-B")
    q = polished.x if polished.fun <= objective(start) else start
    return np.array([np.exp(q[2]), np.exp(q[3]), np.exp(q[4]), q[0], q[1]])


def _check_table(table: pd.DataFrame, source: str) -> tuple[np.ndarray, ...]:
    missing = [c for c in ("params", "tokens", "loss") if c not in table.columns]
    if missing:
        raise RunsTableError(
            f"{source}: missing column(s) {missing} for a loss law; columns present: {list(table.columns)}"
        )
    arrays = []
    for col in ("params", "tokens", "loss"):
        values = pd.to_numeric(table[col], errors="coerce").to_numpy(float)
        bad = ~np.isfinite(values) | (values <= 0)
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            raise RunsTableError(
                f"{source}: column {col!r}, row {pos}: value "
                f"{show(table[col].iloc[pos])} must be a positive finite number "
                f"({int(bad.sum())} such row(s); drop diverged runs first)"
            )
        arrays.append(values)
    n, d, _ = arrays
    if len(np.unique(n)) < 2 or len(np.unique(d)) < 2 or len(table) < 6:
        raise RunsTableError(
            f"{source}: a loss law needs at least 6 points spanning 2+ model "
            f"sizes and 2+ token counts (got {len(table)} points, "
            f"{len(np.unique(n))} sizes, {len(np.unique(d))} token counts)"
        )
    return tuple(arrays)


@keyword_only_since("0.2")
def fit_loss_law(
    table: pd.DataFrame,
    *,
    n_boot: int = 200,
    seed: int = 0,
    huber_delta: float = HUBER_DELTA,
    source: str = "<table>",
) -> LossLaw:
    """Fit L(N, D) = E + A / N^alpha + B / D^beta (Hoffmann et al. 2022) by Huber loss.

    Parameters
    ----------
    table : DataFrame
        Columns ``params`` (N, non-embedding parameters), ``tokens`` (D) and ``loss``
        (nats per token); every row is one point (one final loss per run, or one
        optimum per cell).
    n_boot, seed : int
        Bootstrap refits over the rows (each searched on a coarser grid, to stay fast)
        and their seed; 0 gives no intervals.
    huber_delta : float
        Huber threshold on log-loss residuals.
    source : str
        What the table is, for error messages.

    Returns
    -------
    LossLaw
        The fitted law; its ``draws`` hold the bootstrap refits, and it follows the
        results protocol (``params`` by term E, A, B, alpha, beta).
    """
    n, d, loss = _check_table(table, source)
    params = _fit_once(n, d, loss, huber_delta)
    resid = np.log(loss) - np.log(LossLaw.evaluate(params, n, d))
    robust_sd = 1.4826 * float(np.median(np.abs(resid - np.median(resid))))
    rng = np.random.default_rng(seed)
    draws = [
        _fit_once(n[s], d[s], loss[s], huber_delta, grid_points=8)
        for s in (rng.integers(0, len(loss), len(loss)) for _ in range(n_boot))
    ]
    return LossLaw(
        *params,
        resid_sd=robust_sd,
        n_points=len(loss),
        draws=np.array(draws).reshape(-1, 5) if draws else None,
    )
