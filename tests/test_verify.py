"""verify: the grid around a prediction, and its score against runs with a known optimum."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest

from scalelaw.synthetic import landscape, true_batch, true_loss, true_lr
from scalelaw.verify import score, verification_grid

TARGET = (1.2e9, 6e10)  # beyond the synthetic table's largest N (3e8) and D (2e10)


def verification_runs(lrs, batches, n=TARGET[0], d=TARGET[1]) -> pd.DataFrame:
    rows = [
        {"run_id": f"{i}-{j}", "params": int(n), "tokens": int(d), "lr": lr, "batch_size": b}
        for i, lr in enumerate(lrs)
        for j, b in enumerate(batches)
    ]
    table = pd.DataFrame(rows)
    table["loss"] = landscape(n, d, table["lr"], table["batch_size"])
    table["diverged"] = False
    return table


def at_truth(prediction):
    n, d = TARGET
    return dataclasses.replace(
        prediction,
        lr=float(true_lr(n, d)),
        batch_size=float(true_batch(n, d)),
        lr_interval=(float(true_lr(n, d)) / 1.5, float(true_lr(n, d)) * 1.5),
        batch_size_interval=(float(true_batch(n, d)) / 1.5, float(true_batch(n, d)) * 1.5),
        loss=float(true_loss(n, d)),
    )


@pytest.fixture(scope="module")
def prediction(synthetic_law):
    return synthetic_law.predict(*TARGET, seq_len=1024)


def test_grid_is_lr_times_root2_and_batch_times_2_in_whole_sequences(prediction):
    lrs, batches = verification_grid(prediction, seq_len=1024)
    assert lrs == pytest.approx([prediction.lr / 2**0.5, prediction.lr, prediction.lr * 2**0.5])
    centre = batches[1]
    assert batches == (centre // 2, centre, 2 * centre) and centre % 1024 == 0
    assert math.log2(centre // 1024).is_integer()  # a power-of-two number of sequences ...
    assert abs(math.log2(centre / prediction.batch_size)) <= 0.5  # ... the nearest to B*
    tiny = dataclasses.replace(prediction, batch_size=700.0)
    assert verification_grid(tiny, seq_len=1024)[1] == (1024, 2048, 4096)  # one sequence at least
    with pytest.raises(ValueError, match="lr_factors must be positive"):
        verification_grid(prediction, 1024, lr_factors=(0.5, -1.0))


def grid_around(p) -> tuple[list[float], list[int]]:
    """The default grid centred exactly on (p.lr, p.batch_size), for scoring tests."""
    return [p.lr / 2**0.5, p.lr, p.lr * 2**0.5], [round(p.batch_size * f) for f in (0.5, 1, 2)]


def test_a_prediction_at_the_optimum_scores_zero_regret_and_inside(prediction):
    p = at_truth(prediction)
    lrs, batches = grid_around(p)
    v = score(verification_runs(lrs, batches), p, width=4096, depth=6)
    assert v.regret_pct == pytest.approx(0.0, abs=1e-5)
    assert (v.best_lr, v.best_batch_size) == (pytest.approx(p.lr), round(p.batch_size))
    assert v.lr_inside_interval and v.batch_inside_interval
    assert v.measured_best_loss == pytest.approx(true_loss(*TARGET)) and v.loss_error_pct == pytest.approx(
        0, abs=1e-6
    )
    assert "within 0.00% of the best of 9 runs; best run inside the 80% intervals" in v.verdict()
    d = json.loads(v.to_json())
    for key in (
        "regret_pct",
        "lr_inside_interval",
        "batch_inside_interval",
        "predicted_loss",
        "measured_best_loss",
    ):
        assert key in d


def test_a_prediction_2x_too_high_scores_the_bowl_it_missed(prediction):
    truth = at_truth(prediction)
    off = dataclasses.replace(truth, lr=truth.lr * 2, lr_interval=(truth.lr * 1.6, truth.lr * 2.5))
    lrs, batches = grid_around(off)
    runs = verification_runs(lrs, batches)
    v = score(runs, off, width=4096, depth=6)
    centre = float(landscape(*TARGET, off.lr, round(off.batch_size)))
    expected = 100 * (centre / runs["loss"].min() - 1)
    assert expected > 0.05 and v.regret_pct == pytest.approx(expected, rel=1e-4)
    assert v.best_lr == pytest.approx(min(lrs)) and not v.lr_inside_interval and v.batch_inside_interval
    assert "best run's B inside its 80% interval, its lr outside" in v.verdict()


def test_a_diverged_prediction_has_infinite_regret_and_says_so(prediction):
    p = at_truth(prediction)
    lrs, batches = grid_around(p)
    runs = verification_runs(lrs, batches)
    centre = (runs["lr"] == sorted(set(runs["lr"]))[1]) & (
        runs["batch_size"] == sorted(set(runs["batch_size"]))[1]
    )
    runs.loc[centre, ["loss", "diverged"]] = [np.nan, True]
    v = score(runs, p, width=4096, depth=6)
    assert math.isinf(v.regret_pct) and v.runs_diverged == 1 and "diverged" in v.verdict()
    assert json.loads(v.to_json())["regret_pct"] is None
    runs["loss"], runs["diverged"] = np.nan, True
    with pytest.raises(ValueError, match="all 9 verification runs diverged"):
        score(runs, p, width=4096, depth=6)


def test_seeds_are_averaged_before_the_best_setting_is_picked(prediction):
    """A lucky seed must not make a setting the best: each setting scores its seeds' mean,
    and a setting with one diverged seed counts as diverged."""
    p = at_truth(prediction)
    lrs, batches = grid_around(p)
    one, two = verification_runs(lrs, batches), verification_runs(lrs, batches)
    one["seed"], two["seed"] = 0, 1
    corner = (one["lr"] == min(lrs)) & (one["batch_size"] == min(batches))
    lucky = one["loss"].min() * 0.99  # seed 0 of the corner 1% under the true optimum ...
    one.loc[corner, "loss"] = lucky
    two.loc[corner, "loss"] = lucky * 1.05  # ... seed 1 of it 5% over
    runs = pd.concat([one, two], ignore_index=True)
    v = score(runs, p, width=4096, depth=6)
    assert v.seeds == 2 and v.runs_total == 18 and v.settings_total == 9
    assert (v.best_lr, v.best_batch_size) == (pytest.approx(p.lr), round(p.batch_size))
    assert v.regret_pct == pytest.approx(0.0, abs=1e-5)
    settings = v.settings
    corner_mean = settings[(settings["lr"] == min(lrs)) & (settings["batch_size"] == min(batches))]
    assert float(corner_mean["loss"].iloc[0]) == pytest.approx(lucky * 1.025)
    assert "best of 9 settings (2 seeds each); best setting inside the 80% intervals" in v.verdict()
    centre = (runs["lr"] == p.lr) & (runs["batch_size"] == round(p.batch_size)) & (runs["seed"] == 1)
    runs.loc[centre, ["loss", "diverged"]] = [np.nan, True]
    assert math.isinf(score(runs, p, width=4096, depth=6).regret_pct)  # one diverged seed: diverged
