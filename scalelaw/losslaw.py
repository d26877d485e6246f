"""Loss law L(N, D) = E + A / N^alpha + B / D^beta, fitted robustly, for extrapolation.

Objective: Huber loss on log L (Hoffmann et al. 2022, approach 3; Besiroglu et al.
2024), with delta = 1e-2 (about 2.5 residual standard deviations on Chinchilla's runs)
instead of their 1e-3. The 5-parameter problem is badly conditioned (E, A, B trade off
against the exponents), so it is solved by variable projection: for fixed (alpha, beta)
the model is linear in (E, A, B) >= 0, which iteratively reweighted non-negative least
squares solves on relative residuals; only (alpha, beta) are searched, on a grid that
zooms in three times (no starting point to guess). A final L-BFGS step on all five
parameters polishes the exact objective.

Compute-optimal frontier: with enough points (FRONTIER_MIN_POINTS), the law is fitted
only to the points within ``frontier`` (2%) of the compute-optimal loss at their own
compute C = 6 N D, as judged by a first fit on all points. Runs far from the optimum at
their compute (tiny N with huge D, or the reverse) pull the data exponent up at small
scale and spoil the extrapolation along the frontier, which is where the law is used.
Chosen on Chinchilla's runs by an extrapolation fold inside the training range (fit on
C <= 1e20, score 1e20 < C <= 1e21; :func:`select_loss_fit`, see
``benchmarks/heldout_chinchilla.py``): among Huber delta 1e-4 / 1e-3 / 1e-2 times
frontier none / 1% / 2% / 5%, plus the benchmark's other candidates (Kaplan's joint
form, dropping small runs, ...), it extrapolated best. Every frontier variant beat
every all-points fit there; which tolerance is best is not well resolved by that fold.
Tables too small for a frontier (the ~10-30 cell optima of a sweep) are fitted on all
their points.

Bootstrap over points (the frontier re-selected in each resample) gives the intervals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from scalelaw.deprecation import keyword_only_since
from scalelaw.exceptions import InputError, RunsTableError, show
from scalelaw.laws import LossLaw

HUBER_DELTA = 1e-2  # chosen by the inner extrapolation fold (module docstring)
PUBLISHED_HUBER_DELTA = 1e-3  # Hoffmann et al. 2022, Besiroglu et al. 2024
FRONTIER = 0.02  # keep points whose fitted loss is within 2% of the compute-optimal one
FRONTIER_MIN_POINTS = 30  # fewer kept points (or < 3 sizes / token counts): fit all
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
    relative residuals (prediction / L - 1 ~ log prediction - log L near the fit). The
    design columns are scaled to unit root mean square first: D^-beta is ~1e-6 at
    beta = 0.6, so unscaled its Gram entry (~1e-12) drowned in the solver's ridge and
    B was forced to 0 there.
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
    scale = np.sqrt(np.mean(design * design, axis=1))  # (pairs, 3)
    design = design / scale[:, None, :]
    weights = np.ones((len(a), len(n)))
    for _ in range(IRLS_STEPS):
        weighted = design * weights[..., None]
        gram = np.matmul(weighted.transpose(0, 2, 1), design)  # batched BLAS, not einsum
        coef = _nnls3(gram, weighted.sum(axis=1))
        ratio = np.maximum(np.matmul(design, coef[..., None])[..., 0], 1e-12)  # prediction / L
        r = np.log(ratio)
        # Beyond delta, the weight that makes a fixed point of sum w e^2 (e = ratio - 1, the
        # residual solved for) one of the Huber loss of log(ratio): delta / (|e| ratio).
        # delta / |log ratio| let a loss far *below* the law (e of 9 for a tenth of the
        # predicted loss, log ratio 2.3) outweigh every other point: one mistyped loss
        # of 0.41 turned a law into a constant (issue #15).
        e = ratio - 1.0
        weights = np.where(np.abs(r) < delta, 1.0, delta / np.maximum(np.abs(e) * ratio, 1e-300))
    return coef / scale, _huber(r, delta).sum(axis=1)


def _fit_once(
    n: np.ndarray,
    d: np.ndarray,
    loss: np.ndarray,
    delta: float,
    grid_points: int = GRID_POINTS,
    polish: bool = True,
) -> np.ndarray:
    """Variable projection: grid over (alpha, beta), zoom in, then polish all five
    (unless ``polish`` is False: the zoomed grid alone is within ~1e-3 in the exponents)."""
    lo, hi = EXPONENT_RANGE
    center, half = np.array([(lo + hi) / 2] * 2), (hi - lo) / 2
    for _ in range(1 + ZOOM_STEPS):
        axis = np.linspace(-half, half, grid_points)
        a, b = (g.ravel() for g in np.meshgrid(center[0] + axis, center[1] + axis, indexing="ij"))
        ok = (a > 0) & (b > 0)
        coef, score = _profile(a[ok], b[ok], n, d, loss, delta)
        i = int(np.argmin(score))
        center, half = np.array([a[ok][i], b[ok][i]]), 2 * half / (grid_points - 1)
    if not polish:
        return np.r_[coef[i], center]
    log_loss, log_n, log_d = np.log(loss), np.log(n), np.log(d)

    def objective(q: np.ndarray) -> float:  # q = alpha, beta, log E, log A, log B
        pred = np.logaddexp(np.logaddexp(q[2], q[3] - q[0] * log_n), q[4] - q[1] * log_d)
        return float(_huber(pred - log_loss, delta).sum())

    start = np.r_[center, np.log(np.maximum(coef[i], 1e-10))]
    polished = minimize(objective, start, method="L-BFGS-B")
    q = polished.x if polished.fun <= objective(start) else start
    return np.array([np.exp(q[2]), np.exp(q[3]), np.exp(q[4]), q[0], q[1]])


def optimal_model_size(params: np.ndarray, compute: Any) -> np.ndarray:
    """N* minimising the law ``params`` (..., 5: E, A, B, alpha, beta) at compute C = 6 N D.

    On the line D = C / (6 N), dL/dN = 0 gives alpha A N^-alpha = beta B D^-beta, so
    N* = G (C / 6)^(beta / (alpha + beta)) with G = (alpha A / (beta B))^(1 / (alpha + beta))
    (Hoffmann et al. 2022, eq. 4) and D* = C / (6 N*). Computed in logs, broadcast over
    rows of ``params`` and ``compute``: 0 where A = 0 (no parameter term: the smallest
    model wins), inf where B = 0, NaN where an exponent is not positive (no optimum).
    """
    p = np.asarray(params, float)
    a, b, alpha, beta = p[..., 1], p[..., 2], p[..., 3], p[..., 4]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_g = (np.log(alpha * a) - np.log(beta * b)) / (alpha + beta)
        log_n = log_g + beta / (alpha + beta) * np.log(np.asarray(compute, float) / 6.0)
        log_n = np.where((alpha > 0) & (beta > 0), log_n, np.nan)
        return np.exp(log_n)


def compute_optimal_excess(params: np.ndarray, model_size: Any, tokens: Any) -> np.ndarray | None:
    """How far above the compute-optimal loss each (N, D) is under the law ``params``.

    ``law(N, D) / law(N*, D*) - 1`` with (N*, D*) the law's optimum at the same compute
    C = 6 N D (:func:`optimal_model_size`). ``None`` when the law has no interior
    optimum (A or B is zero).
    """
    _, a, b, alpha, beta = (float(x) for x in params)
    if min(a, b, alpha, beta) <= 0:
        return None
    n, d = np.asarray(model_size, float), np.asarray(tokens, float)
    n_opt = optimal_model_size(params, 6 * n * d)
    best = LossLaw.evaluate(params, n_opt, n * d / n_opt)
    return LossLaw.evaluate(params, n, d) / best - 1


def _fit_points(
    n: np.ndarray,
    d: np.ndarray,
    loss: np.ndarray,
    delta: float,
    frontier: float | None,
    grid_points: int = GRID_POINTS,
) -> tuple[np.ndarray, np.ndarray]:
    """The law and the mask of points it was fitted to: all of them, or, with a
    ``frontier``, those a first fit on all points puts within ``frontier`` of the
    compute-optimal loss, when there are enough of them (else all points)."""
    everything = np.ones(len(n), bool)
    if frontier is None or len(n) < FRONTIER_MIN_POINTS:
        return _fit_once(n, d, loss, delta, grid_points), everything
    first = _fit_once(n, d, loss, delta, grid_points, polish=False)  # only picks points
    excess = compute_optimal_excess(first, n, d)
    if excess is None:
        return _fit_once(n, d, loss, delta, grid_points), everything
    near = excess <= frontier
    if near.sum() < FRONTIER_MIN_POINTS or len(np.unique(n[near])) < 3 or len(np.unique(d[near])) < 3:
        return _fit_once(n, d, loss, delta, grid_points), everything
    return _fit_once(n[near], d[near], loss[near], delta, grid_points), near


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


def _method(delta: float, frontier: float | None, kept: int, total: int) -> str:
    objective = f"Huber (delta {delta:g}) on log loss"
    if frontier is None:
        return f"{objective}, all {total} points"
    if kept == total:
        return f"{objective}, all {total} points (too few near the compute-optimal frontier to fit it alone)"
    return f"{objective}, the {kept} of {total} points within {frontier:.0%} of the compute-optimal loss"


@keyword_only_since("0.2")
def fit_loss_law(
    table: pd.DataFrame,
    *,
    n_boot: int = 200,
    seed: int = 0,
    huber_delta: float = HUBER_DELTA,
    frontier: float | None = FRONTIER,
    source: str = "<table>",
) -> LossLaw:
    """Fit L(N, D) = E + A / N^alpha + B / D^beta (Hoffmann et al. 2022) by Huber loss,
    to the points near the compute-optimal frontier when there are enough of them.

    Parameters
    ----------
    table : DataFrame
        Columns ``params`` (N, non-embedding parameters), ``tokens`` (D) and ``loss``
        (nats per token); every row is one point (one final loss per run, or one
        optimum per cell).
    n_boot, seed : int
        Bootstrap refits over the rows (each searched on a coarser grid, to stay fast,
        and each choosing its own frontier points) and their seed; 0 gives no intervals.
    huber_delta : float
        Huber threshold on log-loss residuals (default 1e-2; the published fits used 1e-3).
    frontier : float or None
        Fit only the points whose loss under a first fit on all points is within this
        fraction of the compute-optimal loss at their compute 6 N D (default 0.02). Used
        only when at least ``FRONTIER_MIN_POINTS`` (30) points spanning 3+ sizes and 3+
        token counts qualify; otherwise, and with ``None``, every point is fitted.
    source : str
        What the table is, for error messages.

    Returns
    -------
    LossLaw
        The fitted law; its ``draws`` hold the bootstrap refits, ``n_points`` the number
        of points fitted and ``method`` how; it follows the results protocol (``params``
        by term E, A, B, alpha, beta).
    """
    n, d, loss = _check_table(table, source)
    if not (isinstance(huber_delta, int | float) and huber_delta > 0):
        raise InputError(f"huber_delta must be a positive number, got {huber_delta!r}")
    if frontier is not None and not (isinstance(frontier, int | float) and frontier > 0):
        raise InputError(f"frontier must be a positive fraction or None, got {frontier!r}")
    params, kept = _fit_points(n, d, loss, huber_delta, frontier)
    resid = np.log(loss[kept]) - np.log(LossLaw.evaluate(params, n[kept], d[kept]))
    robust_sd = 1.4826 * float(np.median(np.abs(resid - np.median(resid))))
    rng = np.random.default_rng(seed)
    draws = [
        _fit_points(n[s], d[s], loss[s], huber_delta, frontier, grid_points=8)[0]
        for s in (rng.integers(0, len(loss), len(loss)) for _ in range(n_boot))
    ]
    return LossLaw(
        *params,
        resid_sd=robust_sd,
        n_points=int(kept.sum()),
        draws=np.array(draws).reshape(-1, 5) if draws else None,
        method=_method(huber_delta, frontier, int(kept.sum()), len(loss)),
    )


def candidate_name(huber_delta: float, frontier: float | None) -> str:
    """The name :func:`select_loss_fit` gives to ``fit_loss_law`` with these options."""
    where = "all points" if frontier is None else f"frontier {frontier:.0%}"
    return f"Huber {huber_delta:g}, {where}"


#: The options :func:`select_loss_fit` compares by default: Huber threshold x frontier.
CANDIDATES: dict[str, dict[str, Any]] = {
    candidate_name(delta, frontier): {"huber_delta": delta, "frontier": frontier}
    for frontier in (None, 0.01, 0.02, 0.05)
    for delta in (1e-4, 1e-3, 1e-2)
}
DEFAULT_CANDIDATE = candidate_name(HUBER_DELTA, FRONTIER)


def select_loss_fit(
    table: pd.DataFrame,
    *,
    split_compute: float,
    candidates: Mapping[str, Mapping[str, Any] | Callable[[pd.DataFrame], Any]] | None = None,
    source: str = "<table>",
) -> pd.DataFrame:
    """Score ways of fitting the loss law by extrapolation inside ``table``.

    Each candidate is fitted to the rows with compute C = 6 N D <= ``split_compute``
    and scored on the rows above it by the absolute relative error of the predicted
    loss; the one with the lowest mean error is chosen. Pass only the data you may
    choose with (the training runs): nothing else is read.

    Parameters
    ----------
    table : DataFrame
        Columns ``params``, ``tokens``, ``loss``.
    split_compute : float
        Compute that separates the inner fit (C <= split) from the inner score rows.
    candidates : mapping, optional
        Name -> ``fit_loss_law`` keyword options (a dict), or name -> a function of the
        fit rows returning an object with ``predict(N, D)``. Default :data:`CANDIDATES`.
    source : str
        What the table is, for error messages.

    Returns
    -------
    DataFrame
        One row per candidate: ``candidate``, ``mean_error``, ``max_error`` (fractions),
        ``n_fit``, ``n_scored``, ``chosen`` (True for the lowest mean error).
    """
    n, d, _ = _check_table(table, source)
    inner = n * d * 6 <= split_compute
    if inner.sum() < 6 or inner.all():
        raise RunsTableError(
            f"{source}: split_compute {split_compute:g} leaves {int(inner.sum())} rows to fit and "
            f"{int((~inner).sum())} to score; it needs at least 6 and 1"
        )
    fit_rows, score_rows = table[inner].reset_index(drop=True), table[~inner]
    rows = []
    for name, how in (CANDIDATES if candidates is None else candidates).items():
        if callable(how):
            law = how(fit_rows)
        else:
            law = fit_loss_law(fit_rows, n_boot=0, source=source, **dict(how))
        pred = np.asarray(
            law.predict(score_rows["params"].to_numpy(float), score_rows["tokens"].to_numpy(float))
        )
        err = np.abs(pred / score_rows["loss"].to_numpy(float) - 1)
        rows.append((name, float(err.mean()), float(err.max()), len(fit_rows), len(score_rows)))
    frame = pd.DataFrame(rows, columns=["candidate", "mean_error", "max_error", "n_fit", "n_scored"])
    frame["chosen"] = frame.index == frame["mean_error"].idxmin()
    return frame
