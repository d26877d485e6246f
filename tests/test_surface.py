"""The surface fit's profiled solver against the problem written out in full.

``fit_surface`` profiles the per-cell mu out (variable projection); these check that it
finds the minimum of the original least-squares problem over (mu, theta), computed here
independently with a dense, finite-difference least_squares, and that the data handling
vectorized with it (resampling cells, the bracketing check) is unchanged.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.optimize import least_squares

from scalelaw.exceptions import FitError
from scalelaw.runs import usable_runs
from scalelaw.surface import OUTSIDE, SurfaceData, _check_inside, _Problem, fit_surface, surface_data

TERMS = (("N", "D"), ("N", "D"))


@pytest.fixture(scope="module")
def data(synthetic_runs):
    return surface_data(usable_runs(synthetic_runs)[0])


def _canonical(params, center):
    return np.r_[params[0] - params[1] * center[0] - params[2] * center[1], params[1:]]


def _reference_fit(data: SurfaceData, start: np.ndarray):
    """The model straight from the module docstring, all of (mu, theta) solved at once."""
    n_cells = data.n_cells
    center = (data.logn.mean(), data.logd.mean())
    ln, ld = (data.logn - center[0])[data.cell], (data.logd - center[1])[data.cell]

    def residuals(p):
        mu, pl, pb, k = p[:n_cells], p[n_cells : n_cells + 3], p[n_cells + 3 : n_cells + 6], p[n_cells + 6 :]
        u = data.x - (pl[0] + pl[1] * ln + pl[2] * ld)
        v = data.y - (pb[0] + pb[1] * ln + pb[2] * ld)
        q = k[0] * u**2 + k[1] * v**2 + k[2] * u * v + k[3] * u**3 + k[4] * v**3
        return mu[data.cell] + q - data.z

    p = least_squares(residuals, start, method="trf", jac="3-point", xtol=1e-14, ftol=1e-15, gtol=1e-15).x
    pl, pb = p[n_cells : n_cells + 3], p[n_cells + 3 : n_cells + 6]
    return _canonical(pl, center), _canonical(pb, center), p[n_cells + 6 :], p[:n_cells]


def test_profiled_fit_matches_the_full_least_squares(data):
    fit, _, _ = fit_surface(data, *TERMS, n_boot=0)
    # Start the reference away from the answer: the best run per cell and zero shape.
    center = (data.logn.mean(), data.logd.mean())
    problem = _Problem(data, *TERMS, center)
    theta0 = problem.start()
    theta0[-5:] = 0.0
    start = np.r_[problem.mu(theta0), theta0]
    lr, batch, shape, mu = _reference_fit(data, start)
    np.testing.assert_allclose(fit.lr_params, lr, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(fit.batch_params, batch, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(fit.shape, shape, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(fit.cell_log_loss, mu, rtol=0, atol=1e-9)


def test_profiled_and_dense_solvers_agree_replicate_by_replicate(data):
    fit, lr_draws, b_draws = fit_surface(data, *TERMS, n_boot=12, seed=3)
    ref, lr_ref, b_ref = fit_surface(data, *TERMS, n_boot=12, seed=3, _full=True)
    np.testing.assert_allclose(fit.lr_params, ref.lr_params, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(fit.batch_params, ref.batch_params, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(fit.cell_log_loss, ref.cell_log_loss, atol=1e-10)
    assert fit.rms == pytest.approx(ref.rms, rel=1e-8)
    assert lr_draws.shape == lr_ref.shape and len(lr_draws) > 0
    np.testing.assert_allclose(lr_draws, lr_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b_draws, b_ref, rtol=1e-5, atol=1e-6)


def test_profiled_residuals_and_jacobian(data):
    problem = _Problem(data, ("N", "D"), ("D",), (data.logn.mean(), data.logd.mean()))
    theta = problem.start() + 0.05
    mu = problem.mu(theta)
    np.testing.assert_allclose(problem.residuals(theta), problem.full_residuals(np.r_[mu, theta]), atol=1e-12)
    # mu(theta) zeroes the gradient in mu: every cell's residuals sum to zero.
    assert np.abs(np.bincount(data.cell, problem.residuals(theta))).max() < 1e-10
    step = 1e-6
    numeric = np.stack(
        [
            (problem.residuals(theta + step * e) - problem.residuals(theta - step * e)) / (2 * step)
            for e in np.eye(len(theta))
        ],
        -1,
    )
    np.testing.assert_allclose(problem.jacobian(theta), numeric, rtol=1e-5, atol=1e-8)


def test_take_resamples_whole_cells_in_order(data):
    # Cells interleaved on purpose: take must not rely on each cell's runs being contiguous.
    order = np.random.default_rng(0).permutation(len(data.z))
    columns = {name: getattr(data, name)[order] for name in ("cell", "x", "y", "z")}
    shuffled = dataclasses.replace(data, **columns)
    cells = np.array([3, 0, 3, 11, 5])
    got = shuffled.take(cells)
    parts = [np.flatnonzero(shuffled.cell == c) for c in cells]
    idx = np.concatenate(parts)
    np.testing.assert_array_equal(got.cell, np.concatenate([np.full(len(p), i) for i, p in enumerate(parts)]))
    np.testing.assert_array_equal(got.x, shuffled.x[idx])
    np.testing.assert_array_equal(got.z, shuffled.z[idx])
    np.testing.assert_array_equal(got.logn, shuffled.logn[cells])


def test_check_inside_names_the_first_unbracketed_cell(data):
    center = (data.logn.mean(), data.logd.mean())
    problem = _Problem(data, *TERMS, center)
    theta = problem.start()
    _check_inside(data, problem, theta)  # the synthetic cells are all bracketed
    far = data.x + np.where(np.isin(data.cell, [7, 9]), 3 * OUTSIDE + 10.0, 0.0)  # runs far above lr*
    moved = dataclasses.replace(data, x=far)
    with pytest.raises(FitError, match="optimal lr of cell") as err:
        _check_inside(moved, _Problem(moved, *TERMS, center), theta)
    assert f"N={np.exp(data.logn[7]):.3g}, D={np.exp(data.logd[7]):.3g}" in str(err.value)
