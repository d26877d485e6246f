"""Joint loss-landscape fit: every cell's bowl at once, centred on power laws.

For run i in cell c, near the cell's optimum (the :func:`scalelaw.optima.near_optimum`
window), with x = log lr, y = log batch size (tokens):

    log L_i = mu_c + q(u_i, v_i)
    u_i = x_i - [p0 + p_N (log N_c - n0) + p_D (log D_c - d0)]     (lr law, log space)
    v_i = y_i - [b0 + b_N (log N_c - n0) + b_D (log D_c - d0)]     (batch law)
    q(u, v) = k_uu u^2 + k_vv v^2 + k_uv u v + k_uuu u^3 + k_vvv v^3

mu_c is each cell's optimal log loss; the bowl shape q is shared by all cells. q has no
linear term, so (u, v) = (0, 0) is the optimum whenever q is convex there; the law
terms are selectable (Step Law uses B*(D) only). The cubic terms let the bowl be
steeper on the high-lr side (divergence) than on the low side, which a plain quadratic
fitted to per-cell optima cannot do. Fitting all runs together, instead of regressing
noisy per-cell minima, is what makes the extrapolation good: on the Step Law table it
halves the held-out regret of the two-stage fit (benchmarks/heldout_steplaw.py).

Solver: for fixed shared parameters theta = (lr law, batch law, shape) the best mu_c is
the cell's mean of z - q, so mu is profiled out (variable projection, Golub & Pereyra
1973): the least-squares problem is solved over the ~11 shared parameters only, on
residuals demeaned within each cell. It has the same minimum as the problem in
(mu, theta) written out in full (``_Problem.full_residuals``, kept as the reference),
but each step costs O(runs) instead of O(runs x cells^2), so the fit and its bootstrap
grow linearly with the number of cells (``benchmarks/fit_scaling.py``).

Uncertainty: bootstrap over cells (resampling whole cells keeps the within-cell
correlation), each replicate warm-started from the full fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import least_squares
from scipy.sparse import csr_matrix

from scalelaw.exceptions import FitError, NotEnoughDataError
from scalelaw.optima import MIN_POINTS, WINDOW, iter_cells, near_optimum

N_SHAPE = 5  # k_uu, k_vv, k_uv, k_uuu, k_vvv


def _cell_order(cell: np.ndarray, n_cells: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run indices sorted by cell (each cell's runs in table order), cell starts, counts."""
    counts = np.bincount(cell, minlength=n_cells)
    return np.argsort(cell, kind="stable"), np.cumsum(counts) - counts, counts


@dataclass(frozen=True)
class SurfaceData:
    """Runs near each cell's optimum, as arrays (one entry per run unless noted)."""

    cell: np.ndarray  # (m,) cell index
    x: np.ndarray  # (m,) log lr
    y: np.ndarray  # (m,) log batch size
    z: np.ndarray  # (m,) log loss
    logn: np.ndarray  # (n_cells,) log N per cell
    logd: np.ndarray  # (n_cells,) log D per cell
    n_batch: np.ndarray  # (n_cells,) distinct batch sizes among the cell's usable runs

    @property
    def n_cells(self) -> int:
        return len(self.logn)

    def take(self, cells: np.ndarray) -> SurfaceData:
        """Data for a resample of cells (repeats become separate cells)."""
        cells = np.asarray(cells, dtype=int)
        order, starts, counts = _cell_order(self.cell, self.n_cells)
        sizes = counts[cells]
        new_cell = np.repeat(np.arange(len(cells)), sizes)
        within = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        idx = order[np.repeat(starts[cells], sizes) + within]
        return SurfaceData(
            new_cell,
            self.x[idx],
            self.y[idx],
            self.z[idx],
            self.logn[cells],
            self.logd[cells],
            self.n_batch[cells],
        )


def surface_data(usable: pd.DataFrame, window: float = WINDOW, min_points: int = MIN_POINTS) -> SurfaceData:
    """Collect the near-optimum runs of every cell of a table of usable runs."""
    cell, x, y, z, logn, logd, n_batch = [], [], [], [], [], [], []
    for i, (key, group) in enumerate(iter_cells(usable)):
        win = near_optimum(group, window, min_points)
        cell.append(np.full(len(win), i))
        x.append(np.log(win["lr"].to_numpy(float)))
        y.append(np.log(win["batch_size"].to_numpy(float)))
        z.append(np.log(win["loss"].to_numpy(float)))
        logn.append(np.log(float(key["params"])))
        logd.append(np.log(float(key["tokens"])))
        n_batch.append(group["batch_size"].nunique())
    if not cell:
        raise NotEnoughDataError("no usable runs to fit")
    return SurfaceData(
        *(np.concatenate(a) for a in (cell, x, y, z)),
        np.array(logn),
        np.array(logd),
        np.array(n_batch),
    )


@dataclass(frozen=True)
class SurfaceFit:
    """Result in canonical form: log lr* = lr_params @ [1, log N?, log D?], same for B*."""

    lr_params: np.ndarray
    batch_params: np.ndarray
    shape: np.ndarray  # (5,) q coefficients
    cell_log_loss: np.ndarray  # (n_cells,) mu_c
    rms: float  # residual rms of log loss


class _Problem:
    """Residuals and Jacobian of the surface model for one data set.

    ``theta`` = (lr law, batch law, shape) are the shared parameters; ``p`` = (mu,
    theta) the full parameter vector. :meth:`residuals` and :meth:`jacobian` are those
    of the profiled problem (mu at its optimum for theta), :meth:`full_residuals` and
    :meth:`full_jacobian` those of the problem in p written out in full.
    """

    def __init__(
        self,
        data: SurfaceData,
        lr_terms: tuple[str, ...],
        batch_terms: tuple[str, ...],
        center: tuple[float, float],
    ):
        self.data = data
        cov = {"N": data.logn - center[0], "D": data.logd - center[1]}
        ones = np.ones(data.n_cells)
        self.f_lr = np.stack([ones, *[cov[t] for t in lr_terms]], -1)[data.cell]
        self.f_b = np.stack([ones, *[cov[t] for t in batch_terms]], -1)[data.cell]
        self.sizes = (data.n_cells, self.f_lr.shape[1], self.f_b.shape[1], N_SHAPE)
        counts = np.bincount(data.cell, minlength=data.n_cells).astype(float)
        m = len(data.cell)  # (cells, runs) averaging matrix: one sparse product per cell mean
        self._mean = csr_matrix((1 / counts[data.cell], (data.cell, np.arange(m))), shape=(data.n_cells, m))

    def split(self, p: np.ndarray) -> list[np.ndarray]:
        """Full p -> [mu, lr law, batch law, shape]."""
        return np.split(p, np.cumsum(self.sizes)[:-1])

    def split_shared(self, theta: np.ndarray) -> list[np.ndarray]:
        """theta -> [lr law, batch law, shape]."""
        return np.split(theta, np.cumsum(self.sizes[1:])[:-1])

    def uv(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pl, pb, _ = self.split_shared(theta)
        return self.data.x - self.f_lr @ pl, self.data.y - self.f_b @ pb

    def _q(self, theta: np.ndarray) -> np.ndarray:
        k = self.split_shared(theta)[2]
        u, v = self.uv(theta)
        uu, vv = u * u, v * v
        return k[0] * uu + k[1] * vv + k[2] * u * v + k[3] * uu * u + k[4] * vv * v

    def _dq(self, theta: np.ndarray) -> np.ndarray:
        """d q / d theta, (runs, len(theta))."""
        k = self.split_shared(theta)[2]
        u, v = self.uv(theta)
        uu, vv = u * u, v * v
        dq_du = 2 * k[0] * u + k[2] * v + 3 * k[3] * uu
        dq_dv = 2 * k[1] * v + k[2] * u + 3 * k[4] * vv
        d_k = np.stack([uu, vv, u * v, uu * u, vv * v], -1)
        return np.hstack([-dq_du[:, None] * self.f_lr, -dq_dv[:, None] * self.f_b, d_k])

    def cell_mean(self, a: np.ndarray) -> np.ndarray:
        """Mean of ``a`` (runs,) or of each column of ``a`` (runs, k) over each cell's runs."""
        return self._mean @ a

    def mu(self, theta: np.ndarray) -> np.ndarray:
        """The best mu for theta: each cell's mean of z - q."""
        return self.cell_mean(self.data.z - self._q(theta))

    def residuals(self, theta: np.ndarray) -> np.ndarray:
        """Residuals at theta and its best mu: q - z demeaned within each cell."""
        r = self._q(theta) - self.data.z
        return r - self.cell_mean(r)[self.data.cell]

    def jacobian(self, theta: np.ndarray) -> np.ndarray:
        """d residuals / d theta: mu(theta) is linear in q, so the demeaned d q / d theta."""
        dq = self._dq(theta)
        return dq - self.cell_mean(dq)[self.data.cell]

    def full_residuals(self, p: np.ndarray) -> np.ndarray:
        theta = p[self.sizes[0] :]
        return self.split(p)[0][self.data.cell] + self._q(theta) - self.data.z

    def full_jacobian(self, p: np.ndarray) -> np.ndarray:
        m = len(self.data.z)
        d_mu = np.zeros((m, self.sizes[0]))
        d_mu[np.arange(m), self.data.cell] = 1.0
        return np.hstack([d_mu, self._dq(p[self.sizes[0] :])])

    def start(self) -> np.ndarray:
        """theta: centres from the best run per cell, then the shape by linear least squares.

        At zero shape the model is linear in (mu, shape); mu is profiled out by
        demeaning the shape columns and z within cells.
        """
        d = self.data
        order, starts, _ = _cell_order(d.cell, d.n_cells)
        by_loss = order[np.lexsort((d.z[order], d.cell[order]))]  # by cell, then z (stable)
        best = by_loss[starts]
        pl = np.linalg.lstsq(self.f_lr[best], d.x[best], rcond=None)[0]
        pb = np.linalg.lstsq(self.f_b[best], d.y[best], rcond=None)[0]
        theta = np.concatenate([pl, pb, np.zeros(N_SHAPE)])
        design = self._dq(theta)[:, -N_SHAPE:]  # at zero shape: u^2, v^2, uv, u^3, v^3
        design = design - self.cell_mean(design)[d.cell]
        z = d.z - self.cell_mean(d.z)[d.cell]
        theta[-N_SHAPE:] = np.linalg.lstsq(design, z, rcond=None)[0]
        return theta


_LM = {"method": "lm", "xtol": 1e-10, "ftol": 1e-12}  # MINPACK Levenberg-Marquardt


def _solve(problem: _Problem, theta0: np.ndarray) -> np.ndarray:
    """Least squares over the shared parameters, mu profiled out."""
    return least_squares(problem.residuals, theta0, jac=problem.jacobian, **_LM).x


def _solve_full(problem: _Problem, theta0: np.ndarray) -> np.ndarray:
    """Reference: the same fit over (mu, theta) with the dense Jacobian (O(runs x cells^2))."""
    p0 = np.concatenate([problem.mu(theta0), theta0])
    return least_squares(problem.full_residuals, p0, jac=problem.full_jacobian, **_LM).x[problem.sizes[0] :]


def _canonical(params: np.ndarray, terms: tuple[str, ...], center: tuple[float, float]) -> np.ndarray:
    """Centred [c0, c_N?, c_D?] -> [log coef, exponents] in raw log N, log D."""
    shift = {"N": center[0], "D": center[1]}
    out = params.copy()
    out[0] = params[0] - sum(c * shift[t] for c, t in zip(params[1:], terms, strict=True))
    return out


def _check_convex(k: np.ndarray) -> None:
    if not (k[0] > 0 and k[1] > 0 and 4 * k[0] * k[1] > k[2] ** 2):
        raise FitError(
            "the fitted loss landscape is not bowl-shaped around the optima (shape "
            f"k_uu={k[0]:.3g}, k_vv={k[1]:.3g}, k_uv={k[2]:.3g}); the sweeps most likely do "
            "not bracket the optimum in lr and batch size: widen the grids, or use "
            "method='optima'"
        )


OUTSIDE = np.log(4.0)  # how far (log) a fitted optimum may sit beyond a cell's swept runs


def _check_inside(data: SurfaceData, problem: _Problem, theta: np.ndarray) -> None:
    """Refuse a fit whose optima run off the swept grids (unbracketed cells)."""
    u, v = problem.uv(theta)  # distance of each run from its cell's fitted optimum
    order, starts, _ = _cell_order(data.cell, data.n_cells)
    for name, dist in (("lr", u), ("batch size", v)):
        d = dist[order]
        outside = (np.maximum.reduceat(d, starts) < -OUTSIDE) | (np.minimum.reduceat(d, starts) > OUTSIDE)
        if outside.any():
            c = int(np.argmax(outside))
            raise FitError(
                f"the fitted optimal {name} of cell N={np.exp(data.logn[c]):.3g}, "
                f"D={np.exp(data.logd[c]):.3g} lies more than 4x outside the runs near its "
                f"optimum: the {name} optima are not bracketed; extend the grids "
                "(scalelaw sweep --refine) or use method='optima'"
            )


def fit_surface(
    data: SurfaceData,
    lr_terms: tuple[str, ...] = ("N", "D"),
    batch_terms: tuple[str, ...] = ("N", "D"),
    n_boot: int = 200,
    seed: int = 0,
    *,
    _full: bool = False,
) -> tuple[SurfaceFit, np.ndarray, np.ndarray]:
    """Fit the joint surface; return it and bootstrap draws of the lr and batch laws.

    Draws have shape (n_boot, 1 + len(terms)) in canonical form. Replicates whose
    landscape is not convex are dropped (they are rare; their count is not hidden:
    fewer rows come back). ``_full`` solves for (mu, theta) with the dense Jacobian
    instead of profiling mu out: the same answers, O(runs x cells^2) a step; kept as
    the reference for tests and ``benchmarks/fit_scaling.py``.
    """
    solve = _solve_full if _full else _solve
    for term, values in (("N", data.logn), ("D", data.logd)):
        if term in (*lr_terms, *batch_terms) and np.ptp(values) < 1e-9:
            raise FitError(
                f"every cell has the same {term}: a law in {term} cannot be fitted; "
                f"drop {term} from the law's terms or sweep more than one {term}"
            )
    n_params = 1 + max(len(lr_terms), len(batch_terms))
    if data.n_cells < n_params + 1:
        raise NotEnoughDataError(
            f"{data.n_cells} cell(s) cannot determine a law with {n_params} "
            f"coefficients; sweep at least {n_params + 1} (N, D) cells"
        )
    swept = int((data.n_batch >= 3).sum())
    if 2 * swept < data.n_cells:
        raise NotEnoughDataError(
            f"only {swept} of {data.n_cells} cells sweep 3 or more batch sizes: sweep "
            "the batch size too (3 or more values per cell) to fit B*"
        )
    center = (float(data.logn.mean()), float(data.logd.mean()))
    problem = _Problem(data, lr_terms, batch_terms, center)
    theta = solve(problem, problem.start())
    pl, pb, k = problem.split_shared(theta)
    _check_convex(k)
    _check_inside(data, problem, theta)
    fit = SurfaceFit(
        _canonical(pl, lr_terms, center),
        _canonical(pb, batch_terms, center),
        k,
        problem.mu(theta),
        float(np.sqrt(np.mean(problem.residuals(theta) ** 2))),
    )

    rng = np.random.default_rng(seed)
    lr_draws, b_draws = [], []
    for _ in range(n_boot):
        cells = rng.integers(0, data.n_cells, data.n_cells)
        if np.ptp(data.logn[cells]) < 1e-9 or np.ptp(data.logd[cells]) < 1e-9:
            continue  # a resample with one N or one D cannot identify the exponents
        boot = _Problem(data.take(cells), lr_terms, batch_terms, center)
        bl, bb, bk = boot.split_shared(solve(boot, theta))
        if bk[0] > 0 and bk[1] > 0 and 4 * bk[0] * bk[1] > bk[2] ** 2:
            lr_draws.append(_canonical(bl, lr_terms, center))
            b_draws.append(_canonical(bb, batch_terms, center))
    width = (1 + len(lr_terms), 1 + len(batch_terms))
    return (fit, np.array(lr_draws).reshape(-1, width[0]), np.array(b_draws).reshape(-1, width[1]))
