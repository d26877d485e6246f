"""Per-cell optima, bracketing warnings and the interpolated regret."""

from __future__ import annotations

import numpy as np
import pytest

import scalelaw
from scalelaw import synthetic
from scalelaw.optima import cell_optima, interpolated_loss, regret


def test_cell_optima_recover_the_true_optimum(synthetic_runs):
    table = cell_optima(synthetic_runs, n_boot=100)
    assert len(table) == len(synthetic.SIZES) * len(synthetic.TOKENS)
    lr_err = np.log(table["lr_opt"] / synthetic.true_lr(table["params"], table["tokens"]))
    b_err = np.log(table["batch_size_opt"] / synthetic.true_batch(table["params"], table["tokens"]))
    # The grids step by sqrt(2) (0.35 in log); the bowl must beat half a step everywhere.
    assert np.abs(lr_err).max() < 0.17 and np.abs(b_err).max() < 0.17
    assert (table["estimator"] == "bowl").all() and table["bracketed"].all()
    # 95% bootstrap intervals: most cells cover the truth; the default 80% ones lie inside them.
    wide = cell_optima(synthetic_runs, n_boot=100, alpha=0.05)  # the same draws, a wider band
    truth = synthetic.true_lr(wide["params"], wide["tokens"])
    covered = (wide["lr_opt_lo"] <= truth) & (truth <= wide["lr_opt_hi"])
    assert covered.mean() >= 0.75
    assert (wide["lr_opt_lo"] <= table["lr_opt_lo"]).all() and (table["lr_opt_hi"] <= wide["lr_opt_hi"]).all()
    assert (table["lr_opt_lo"] < table["lr_opt_hi"]).all()
    loss_err = table["loss_opt"] / synthetic.true_loss(table["params"], table["tokens"]) - 1
    assert np.abs(loss_err).max() < 2e-3


def test_diverged_runs_are_counted(synthetic_runs):
    table = cell_optima(synthetic_runs, n_boot=0)
    # lr steps +8 and +7 lie beyond e^2.5 of the optimum for at least some cells: blow-ups.
    assert (table["n_diverged"] > 0).all()
    assert (table["n_used"] + table["n_diverged"] == table["n_runs"]).all()


def test_optimum_on_the_grid_edge_is_flagged_with_the_fix():
    runs = scalelaw.validate_runs(synthetic.make_runs(seed=2, lr_steps=range(-8, -1)))
    table = cell_optima(runs, n_boot=0)
    assert not table["lr_bracketed"].any() and table["batch_bracketed"].all()
    assert (table["lr_edge"] == "high").all() and (table["batch_edge"] == "").all()
    assert table["warning"].str.contains("optimum not bracketed in cell N=").all()
    assert table["warning"].str.contains("extend the lr grid upward").all()
    law = scalelaw.fit(runs, n_boot=0, loss_law=False)
    assert sum("extend the lr grid upward" in n for n in law.notes) == len(table)


def test_interpolated_loss_and_regret(synthetic_runs):
    cell = synthetic_runs[(synthetic_runs["params"] == int(5e7)) & (synthetic_runs["tokens"] == int(6e9))]
    best = cell.loc[cell["loss"].idxmin()]
    assert interpolated_loss(cell, best["lr"], best["batch_size"]) == pytest.approx(best["loss"], rel=1e-12)
    assert regret(cell, best["lr"], best["batch_size"]) == pytest.approx(0.0, abs=1e-12)
    # Halfway (in log lr) between two neighbouring runs: the mean of their losses.
    a = cell[(cell["batch_size"] == best["batch_size"])].sort_values("lr").iloc[3:5]
    mid = np.sqrt(a["lr"].iloc[0] * a["lr"].iloc[1])
    assert interpolated_loss(cell, mid, best["batch_size"]) == pytest.approx(a["loss"].mean(), rel=1e-9)
    # Far outside the grid: the nearest run.
    far = interpolated_loss(cell, cell["lr"].min() / 100, cell["batch_size"].min() / 100)
    corner = cell[(cell["lr"] == cell["lr"].min()) & (cell["batch_size"] == cell["batch_size"].min())]
    assert far == pytest.approx(corner["loss"].iloc[0])


def test_edge_columns_say_which_side_is_censored(synthetic_runs):
    table = cell_optima(synthetic_runs, n_boot=0)
    assert (table["lr_edge"] == "").all() and (table["batch_edge"] == "").all()
    # Drop every run below its cell's true optimal batch: each best run moves to the new
    # low edge, so each cell says only "B* <= this".
    truth = synthetic.true_batch(synthetic_runs["params"], synthetic_runs["tokens"])
    table = cell_optima(synthetic_runs[synthetic_runs["batch_size"] >= truth], n_boot=0)
    assert (table["batch_edge"] == "low").all() and (table["lr_edge"] == "").all()
    assert not table["batch_bracketed"].any() and table["lr_bracketed"].all()
    smallest = synthetic_runs[synthetic_runs["batch_size"] >= truth].groupby(["params", "tokens"])[
        "batch_size"
    ]
    np.testing.assert_array_equal(table["batch_size_best"], smallest.min().to_numpy())
