"""Cross-validation, interval calibration and model averaging on synthetic tables whose
true laws are known (scalelaw.synthetic)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import scalelaw
from scalelaw import synthetic
from scalelaw.averaging import choose_weight, combine
from scalelaw.calibration import conformal_factor, fit_factors
from scalelaw.crossval import crossvalidate, folds, summarize
from scalelaw.laws import PowerLaw, robust_sd

TRUE_LR = PowerLaw(
    "lr",
    "peak learning rate",
    math.log(synthetic.LR_COEF),
    {"N": synthetic.LR_EXP_N, "D": synthetic.LR_EXP_D},
)
TRUE_BATCH = PowerLaw(
    "batch_size", "tokens per step", math.log(synthetic.B_COEF), {"N": 0.0, "D": synthetic.B_EXP_D}
)


@pytest.fixture(scope="module")
def runs():
    return scalelaw.validate_runs(synthetic.make_runs(seed=3))


def test_folds_hold_out_whole_cells_and_keep_two_sizes_and_budgets_to_fit(runs):
    made = folds(runs, ["leave-one-N-out", "leave-largest-N-out", "leave-one-D-out", "leave-largest-D-out"])
    names = [f.name for f in made]
    assert names[:4] == [f"N={n:.3g}" for n in synthetic.SIZES]
    assert [f.name for f in made if f.scheme == "leave-largest-N-out"] == ["largest 1 N", "largest 2 N"]
    assert [f.name for f in made if f.scheme == "leave-largest-D-out"] == ["largest 1 D"]
    for f in made:
        assert set(f.train.index).isdisjoint(f.test.index) and len(f.train) + len(f.test) == len(runs)
        assert f.train["params"].nunique() >= 2 and f.train["tokens"].nunique() >= 2
    largest2 = next(f for f in made if f.name == "largest 2 N")
    assert sorted(largest2.test["params"].unique()) == list(synthetic.SIZES[-2:])
    with pytest.raises(scalelaw.InputError, match="unknown cross-validation scheme"):
        folds(runs, ["leave-one-out"])


def test_the_protocol_scores_the_true_law_perfectly_and_a_fitted_law_close_to_it(runs):
    truth = scalelaw.HyperparameterLaw(
        "truth", "synthetic", TRUE_LR, TRUE_BATCH, fit_range={"N": (2e7, 3e8), "D": (2e9, 2e10)}
    )
    estimators = {
        "truth": lambda train: truth,
        "surface": lambda train: scalelaw.fit(train, n_boot=30, loss_law=False, calibrate=False),
    }
    scores = crossvalidate(runs, estimators, schemes=["leave-largest-N-out"])
    table = summarize(scores).set_index("estimator")
    # Regret is measured against each cell's best noisy run, so even the truth pays the
    # luck of the best of ~135 runs with 0.05% noise (about 2.5 sd): ~0.1%.
    assert table.loc["truth", "max_regret_pct"] < 0.15
    assert table.loc["surface", "mean_regret_pct"] < table.loc["truth", "mean_regret_pct"] + 0.02
    fitted = scores[scores["estimator"] == "surface"]
    np.testing.assert_allclose(
        fitted["lr_pred"], synthetic.true_lr(fitted["params"], fitted["tokens"]), rtol=0.05
    )
    assert table.loc["surface", "cells"] == 3 + 6 and table.loc[
        "surface", "max_extrapolation_N"
    ] == pytest.approx(3e8 / 5e7)
    assert np.isnan(table.loc["truth", "lr_coverage"])  # no draws, no interval, no coverage


def test_the_conformal_factor_makes_an_overconfident_interval_cover_80_percent():
    rng = np.random.default_rng(0)
    ratios = np.abs(rng.normal(0, 2.0, 400)) / 1.2816  # errors twice what the interval expects
    factor = conformal_factor(ratios)
    assert factor == pytest.approx(2.0, rel=0.15)
    assert np.mean(ratios <= factor) == pytest.approx(0.80, abs=0.01)
    narrow = conformal_factor(np.abs(rng.normal(0, 0.5, 400)) / 1.2816)
    assert narrow == pytest.approx(0.5, rel=0.15)  # too wide intervals are narrowed too
    assert conformal_factor([5.0, 6.0, 7.0]) == 1.0  # too few held-out optima: left as is


def test_two_factors_calibrate_extrapolation_and_interpolation_each_to_80_percent():
    """Far out the bootstrap spread s dominates and overstates the error 3x; near the
    data the scatter r dominates and understates it 2x: one factor cannot fit both."""
    rng = np.random.default_rng(1)
    n = 300
    far = pd.DataFrame({"s": rng.uniform(0.5, 1.0, n), "r": 0.05, "group": "extrapolation"})
    near = pd.DataFrame({"s": rng.uniform(0.01, 0.02, n), "r": 0.05, "group": "interpolation"})
    far["e"] = np.abs(rng.normal(0, far["s"] / 3))
    near["e"] = np.abs(rng.normal(0, 2 * near["r"]))
    a, b = fit_factors(pd.concat([far, near], ignore_index=True))
    assert a == pytest.approx(1 / 3, rel=0.2) and b == pytest.approx(2.0, rel=0.2)
    for group in (far, near):
        covered = group["e"] <= 1.2816 * np.hypot(a * group["s"], b * group["r"])
        assert covered.mean() == pytest.approx(0.8, abs=0.05)


def test_calibration_scales_the_prediction_interval_and_is_recorded(runs):
    law = scalelaw.fit(runs, n_boot=30, loss_law=False)
    raw = scalelaw.fit(runs, n_boot=30, loss_law=False, calibrate=False)
    cal = law.settings["calibration"]
    assert cal["folds"] == 2 + 4 + 1 and cal["lr_points"] >= 4  # largest 1-2 N, each N, largest D
    lo, hi = law.lr.interval(1e9, 5e10)
    spread = robust_sd(raw.lr._log_draws(1e9, 5e10), 0.2)  # the same bootstrap draws, uncalibrated
    expected = 1.2816 * math.hypot(cal["lr"] * spread, cal["lr_resid"] * raw.lr.resid_sd)
    assert 0.5 * math.log(hi / lo) == pytest.approx(expected, rel=1e-3)
    assert f"lr spread x{cal['lr']:.2f}, scatter x{cal['lr_resid']:.2f}" in law.summary()
    again = scalelaw.HyperparameterLaw.from_dict(law.to_dict())
    assert again.lr.interval(1e9, 5e10) == pytest.approx((lo, hi))


def test_averaging_two_power_laws_is_their_weighted_geometric_mean():
    a = PowerLaw(
        "lr", "u", -1.0, {"N": -0.5, "D": 0.2}, draws=np.array([[-1.0, -0.5, 0.2], [-1.1, -0.4, 0.2]])
    )
    b = PowerLaw("lr", "u", 2.0, {"N": -0.7, "D": 0.1}, draws=np.array([[2.0, -0.7, 0.1], [2.2, -0.8, 0.1]]))
    mix = combine(a, b, 2 / 3)
    assert mix(1e9, 1e11) == pytest.approx(a(1e9, 1e11) ** (2 / 3) * b(1e9, 1e11) ** (1 / 3), rel=1e-12)
    np.testing.assert_allclose(mix.draws, (2 * a.draws + b.draws) / 3, atol=1e-12)
    assert combine(a, b, 1.0) is a and combine(a, b, 0.0) is b
    errors = pd.DataFrame({"weight": [1.0, 1.0, 0.5, 0.5], "error": [0.05, 0.30, 0.10, 0.12]})
    assert choose_weight(errors) == 0.5  # mean + max: 0.525 against 0.33


def test_the_average_estimator_is_reproducible_and_close_to_the_truth(runs):
    one = scalelaw.fit(runs, method="average", n_boot=0, loss_law=False, seed=4)
    two = scalelaw.fit(runs, method="average", n_boot=0, loss_law=False, seed=4)
    assert one.settings["average_weight"] == two.settings["average_weight"]
    assert one.lr.params == pytest.approx(two.lr.params, rel=1e-12)
    assert one.lr(1e9, 5e10) == pytest.approx(float(synthetic.true_lr(1e9, 5e10)), rel=0.05)
    assert one.method == "average" and "weights: surface" in one.summary()


def test_noisy_cells_count_less_in_the_two_stage_fit():
    """Four of twelve cells trained with 16x the noise (single seeds, say): the optima
    fit weights each cell by its bootstrap's spread and stays near the truth, where an
    unweighted fit through the same optima is pulled off by 0.1 in both exponents."""
    import statsmodels.api as sm

    base, noisy = synthetic.make_runs(seed=0, noise=5e-4), synthetic.make_runs(seed=100, noise=8e-3)

    def pick(t):
        return (t["params"] == 5e7) | ((t["params"] == 1.2e8) & (t["tokens"] == 6e9))

    runs = scalelaw.validate_runs(pd.concat([base[~pick(base)], noisy[pick(noisy)]], ignore_index=True))
    law = scalelaw.fit(runs, method="optima", loss_law=False, calibrate=False, n_boot=100)
    o = law.optima
    assert (o.loc[pick(o), "lr_opt_log_sd"] > 5 * o.loc[~pick(o), "lr_opt_log_sd"].max()).all()
    design = np.column_stack([np.ones(len(o)), np.log(o["params"]), np.log(o["tokens"])])
    unweighted = sm.OLS(np.log(o["lr_opt"]), design).fit().params.to_numpy()
    truth = np.array([synthetic.LR_EXP_N, synthetic.LR_EXP_D])
    weighted = np.array([law.lr.exponents["N"], law.lr.exponents["D"]])
    assert np.abs(weighted - truth).max() < 0.02
    assert np.abs(unweighted[1:] - truth).min() > 0.09


def test_a_grid_point_optimum_with_zero_bootstrap_spread_does_not_outweigh_the_rest():
    """On a coarse grid every bootstrap draw can land on the same point (spread 0); the
    grid's resolution bounds how well that cell knows its optimum, and a censored cell
    (optimum on the grid's edge) never outweighs the median cell."""
    from scalelaw.fit import optimum_weights

    optima = pd.DataFrame(
        {
            "batch_size_opt_log_sd": [0.0, 0.0, 0.35, 0.35, 0.0],
            "batch_size_step": [np.log(2)] * 5,
            "batch_edge": ["", "", "", "", "low"],
        }
    )
    w = optimum_weights(optima, "batch_size_opt")
    assert w[0] == w[1] == pytest.approx(12 / np.log(2) ** 2)  # sd = step / sqrt(12), not 0
    assert w[0] / w[2] == pytest.approx(0.35**2 * 12 / np.log(2) ** 2)  # about 3x, not 50x
    assert w[4] <= np.median(w) + 1e-9
