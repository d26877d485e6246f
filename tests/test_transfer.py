"""The fixed-batch optimal-lr exponent (scalelaw.transfer) on tables with known truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import scalelaw
from scalelaw import synthetic
from scalelaw.transfer import fit_transfer, lr_optima_by_batch


@pytest.fixture(scope="module")
def shared_grid_runs():
    return scalelaw.validate_runs(synthetic.make_runs(seed=2, shared_batch_grid=True))


def test_recovers_the_true_exponent_at_fixed_batch_size(shared_grid_runs):
    # The synthetic optimum at fixed (D, B) moves as N^LR_EXP_N (the bowl's lr-batch
    # coupling shifts it by a factor that depends on D and B only).
    result = fit_transfer(shared_grid_runs)
    assert result.exponent == pytest.approx(synthetic.LR_EXP_N, abs=0.03)
    assert result.ci[0] < synthetic.LR_EXP_N < result.ci[1]
    assert result.ci[1] - result.ci[0] < 0.1
    assert result.n_used == len(result.rows) == 12 * 9


def test_scaling_each_cell_lr_by_a_power_of_n_shifts_the_exponent_exactly(shared_grid_runs):
    # Multiplying every lr of a cell by N^k moves each row's optimum by the same factor,
    # so a μP-like table (k = -LR_EXP_N) has exponent 0 and the shift is exact.
    k = -synthetic.LR_EXP_N
    moved = shared_grid_runs.assign(lr=shared_grid_runs["lr"] * shared_grid_runs["params"] ** k)
    before, after = fit_transfer(shared_grid_runs), fit_transfer(moved)
    assert after.exponent - before.exponent == pytest.approx(k, abs=1e-9)
    assert after.ci[0] < 0 < after.ci[1]


def test_unbracketed_rows_are_flagged_and_left_out(shared_grid_runs):
    # Cut every lr above the true optimum of the largest model: its rows end at their best.
    n_max = shared_grid_runs["params"].max()
    big = shared_grid_runs["params"] == n_max
    cut = shared_grid_runs[
        ~big | (shared_grid_runs["lr"] < synthetic.true_lr(n_max, shared_grid_runs["tokens"]))
    ]
    rows = lr_optima_by_batch(cut)
    edge = rows[rows["params"] == n_max]
    assert (~edge["bracketed"]).mean() > 0.5
    result = fit_transfer(cut)
    assert not result.rows.loc[~result.rows["bracketed"], "used"].any()
    assert result.n_used == int(rows["bracketed"].sum())


def test_a_diverged_run_above_the_best_brackets_the_row():
    runs = scalelaw.validate_runs(
        pd.DataFrame(
            {
                "run_id": ["a", "b", "c"],
                "params": [1e6] * 3,
                "tokens": [1e8] * 3,
                "batch_size": [256] * 3,
                "lr": [1e-3, 2e-3, 4e-3],
                "loss": [3.1, 3.0, np.nan],
            }
        )
    )
    (row,) = lr_optima_by_batch(runs).itertuples()
    assert row.bracketed and row.lr_opt == row.lr_best == 2e-3


def test_one_model_size_cannot_give_an_exponent(shared_grid_runs):
    one = shared_grid_runs[shared_grid_runs["params"] == shared_grid_runs["params"].min()]
    with pytest.raises(ValueError, match="sweep 2 or more widths"):
        fit_transfer(one)
