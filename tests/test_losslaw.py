"""Loss law: recovery on synthetic data, clear errors, held-out error on Chinchilla's runs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import scalelaw
from scalelaw.losslaw import _nnls3
from scalelaw.synthetic import LOSS as SYNTHETIC_LOSS


def synthetic_points(seed=0, noise=2e-3):
    rng = np.random.default_rng(seed)
    n = np.exp(rng.uniform(np.log(5e7), np.log(5e9), 120))
    d = np.exp(rng.uniform(np.log(1e9), np.log(2e11), 120))
    e, a, b, alpha, beta = 1.8, 450.0, 1500.0, 0.35, 0.33
    loss = (e + a / n**alpha + b / d**beta) * np.exp(noise * rng.standard_normal(120))
    return pd.DataFrame({"params": n, "tokens": d, "loss": loss}), (e, a, b, alpha, beta)


def test_recovers_exponents_and_extrapolates():
    table, truth = synthetic_points()
    law = scalelaw.fit_loss_law(table, n_boot=30)
    assert law.alpha == pytest.approx(truth[3], abs=0.05)
    assert law.beta == pytest.approx(truth[4], abs=0.05)
    n, d = 7e10, 2e12  # 14x and 10x beyond the data
    true = scalelaw.LossLaw(*truth).predict(n, d)
    assert law.predict(n, d) == pytest.approx(true, rel=0.01)
    low, high = law.interval(n, d, alpha=0.05)
    assert low < true < high
    preds = law.predict(table["params"].to_numpy(), table["tokens"].to_numpy())
    assert preds.shape == (120,)
    assert np.abs(preds / table["loss"] - 1).mean() < 3e-3


def test_nnls3_matches_scipy():
    from scipy.optimize import nnls

    rng = np.random.default_rng(3)
    for _ in range(50):
        X, y = rng.normal(size=(20, 3)), rng.normal(size=20)
        expected, _ = nnls(X, y)
        got = _nnls3((X.T @ X)[None], (X.T @ y)[None])[0]
        np.testing.assert_allclose(got, expected, atol=1e-8)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("loss", np.nan, r"column 'loss', row 4: value nan must be a positive finite number"),
        ("params", -1.0, r"column 'params', row 4: value -1.0 must be a positive finite number"),
    ],
)
def test_bad_points_are_named(column, value, message):
    table, _ = synthetic_points()
    table.loc[4, column] = value
    with pytest.raises(scalelaw.RunsTableError, match=message):
        scalelaw.fit_loss_law(table, n_boot=0)


def test_too_little_data_is_explained():
    table, _ = synthetic_points()
    with pytest.raises(scalelaw.RunsTableError, match="needs at least 6 points spanning 2\\+ model sizes"):
        scalelaw.fit_loss_law(table.assign(params=1e8), n_boot=0)
    with pytest.raises(scalelaw.RunsTableError, match=r"missing column\(s\) \['tokens'\]"):
        scalelaw.fit_loss_law(table.drop(columns="tokens"), n_boot=0)


@pytest.mark.science
def test_chinchilla_fit_reaches_a_lower_objective_than_the_published_one():
    from conftest import CHINCHILLA

    from scalelaw.losslaw import PUBLISHED_HUBER_DELTA, _huber

    if not CHINCHILLA.is_file():
        pytest.skip(f"Chinchilla table not found at {CHINCHILLA} (../shared is absent)")
    raw = pd.read_csv(CHINCHILLA)
    n = raw["Model Size"].to_numpy(float)
    table = pd.DataFrame({"params": n, "tokens": raw["Training FLOP"] / (6 * n), "loss": raw["loss"]})
    # the published objective: every run, Huber delta 1e-3 (not the default frontier fit)
    law = scalelaw.fit_loss_law(table, n_boot=0, frontier=None, huber_delta=PUBLISHED_HUBER_DELTA)

    def objective(params):
        pred = scalelaw.LossLaw.evaluate(np.asarray(params), table["params"], table["tokens"])
        return _huber(np.log(pred) - np.log(table["loss"]), PUBLISHED_HUBER_DELTA).sum()

    besiroglu = (1.817, 482.0, 2085.0, 0.348, 0.366)  # Besiroglu et al. 2024, same objective
    assert objective(law.vector) < objective(besiroglu)
    assert law.alpha == pytest.approx(0.348, abs=0.03)


def isoflop_points(truth, seed=0, noise=2e-3):
    """IsoFLOP profiles of a known law: 8 compute levels, 15 sizes around each optimum."""
    _, a, b, alpha, beta = truth
    rng = np.random.default_rng(seed)
    rows = []
    for c in np.geomspace(1e17, 1e20, 8):
        n_opt = (alpha * a / (beta * b)) ** (1 / (alpha + beta)) * (c / 6) ** (beta / (alpha + beta))
        for n in n_opt * np.geomspace(0.1, 10, 15) * np.exp(rng.uniform(-0.1, 0.1)):
            rows.append((n, c / (6 * n)))
    n, d = np.array(rows).T
    loss = scalelaw.LossLaw.evaluate(np.array(truth), n, d) * np.exp(noise * rng.standard_normal(len(n)))
    return pd.DataFrame({"params": n, "tokens": d, "loss": loss})


def test_frontier_fit_recovers_the_law_and_extrapolates_along_the_frontier():
    from scalelaw.losslaw import compute_optimal_excess

    truth = scalelaw.LossLaw(*SYNTHETIC_LOSS)
    table = isoflop_points(SYNTHETIC_LOSS)
    law = scalelaw.fit_loss_law(table, n_boot=20)
    assert 30 <= law.n_points < len(table)  # the frontier was used
    assert "within 2% of the compute-optimal loss" in law.method
    assert law.alpha == pytest.approx(truth.alpha, abs=0.05)
    assert law.beta == pytest.approx(truth.beta, abs=0.05)
    # the compute-optimal point at 100x the largest compute, under the true law
    c = 1e22
    grid = np.geomspace(1e8, 1e12, 2001)
    n_opt = grid[np.argmin(truth.predict(grid, c / (6 * grid)))]
    assert law.predict(n_opt, c / (6 * n_opt)) == pytest.approx(
        truth.predict(n_opt, c / (6 * n_opt)), rel=0.01
    )
    excess = compute_optimal_excess(truth.vector, np.r_[n_opt, 10 * n_opt], c / 6 / np.r_[n_opt, 10 * n_opt])
    assert abs(excess[0]) < 1e-5 and excess[1] > 0.01


def test_small_tables_fit_every_point():
    table = isoflop_points(SYNTHETIC_LOSS).iloc[::5].reset_index(drop=True)  # 24 points
    law = scalelaw.fit_loss_law(table, n_boot=0)
    assert law.n_points == len(table)
    assert law.method == (
        "Huber (delta 0.01) on log loss, all 24 points "
        "(too few near the compute-optimal frontier to fit it alone)"
    )
    assert law.alpha == pytest.approx(SYNTHETIC_LOSS[3], abs=0.05)
    everything = scalelaw.fit_loss_law(table, n_boot=0, frontier=None)
    assert everything.method.endswith("all 24 points")


def test_options_are_checked():
    table, _ = synthetic_points()
    with pytest.raises(scalelaw.InputError, match="frontier must be a positive fraction or None"):
        scalelaw.fit_loss_law(table, n_boot=0, frontier=0)
    with pytest.raises(scalelaw.InputError, match="huber_delta must be a positive number"):
        scalelaw.fit_loss_law(table, n_boot=0, huber_delta=-1.0)


def test_loss_law_json_round_trip_keeps_method_and_draws():
    table, _ = synthetic_points()
    law = scalelaw.fit_loss_law(table, n_boot=5)
    again = scalelaw.LossLaw.from_dict(json.loads(json.dumps(law.to_dict())))
    assert again == law and again.method == law.method
    np.testing.assert_allclose(again.draws, law.draws)
    old = {k: v for k, v in law.to_dict().items() if k != "method"}  # a file from before
    assert scalelaw.LossLaw.from_dict(old).method == ""
    assert "fitted by Huber" in str(law.summary())


def chinchilla_runs():
    from conftest import CHINCHILLA

    if not CHINCHILLA.is_file():
        pytest.skip(f"Chinchilla table not found at {CHINCHILLA} (../shared is absent)")
    raw = pd.read_csv(CHINCHILLA)
    n, c = raw["Model Size"].to_numpy(float), raw["Training FLOP"].to_numpy(float)
    return pd.DataFrame({"params": n, "tokens": c / (6 * n), "loss": raw["loss"], "compute": c})


@pytest.mark.science
def test_chinchilla_default_fit_extrapolates_past_1e21():
    runs = chinchilla_runs()
    train, test = runs[runs["compute"] <= 1e21], runs[runs["compute"] > 1e21]
    assert len(test) == 23
    law = scalelaw.fit_loss_law(train.drop(columns="compute"), n_boot=0)
    err = np.abs(law.predict(test["params"].to_numpy(), test["tokens"].to_numpy()) / test["loss"] - 1)
    # achieved 0.80% mean, 2.14% max (benchmarks/heldout_chinchilla.py); was 1.47% / 4.28%
    assert err.mean() <= 0.0082
    assert err.max() <= 0.022


@pytest.mark.science
def test_chinchilla_default_was_chosen_on_the_inner_fold_only():
    import inspect

    from scalelaw.losslaw import CANDIDATES, DEFAULT_CANDIDATE, select_loss_fit

    defaults = inspect.signature(scalelaw.fit_loss_law).parameters
    assert CANDIDATES[DEFAULT_CANDIDATE] == {
        "huber_delta": defaults["huber_delta"].default,
        "frontier": defaults["frontier"].default,
    }
    runs = chinchilla_runs()
    train = runs[runs["compute"] <= 1e21].drop(columns="compute")
    seen = []

    def recording(options):
        def fit(rows):
            seen.append(6 * rows["params"] * rows["tokens"])
            return scalelaw.fit_loss_law(rows, n_boot=0, **options)

        return fit

    scores = select_loss_fit(
        train, split_compute=1e20, candidates={k: recording(v) for k, v in CANDIDATES.items()}
    )
    assert len(seen) == len(CANDIDATES)
    assert max(s.max() for s in seen) <= 1e20 * (1 + 1e-9)  # fitted below the split
    assert scores["n_fit"].iloc[0] + scores["n_scored"].iloc[0] == len(train)  # scored on C <= 1e21
    assert scores.loc[scores["chosen"], "candidate"].item() == DEFAULT_CANDIDATE
    assert scores["mean_error"].min() == scores.loc[scores["chosen"], "mean_error"].item()
