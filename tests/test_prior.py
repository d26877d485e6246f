"""Calibrating a published law on a few cells of another recipe (scalelaw.prior), the
spread between recipes on published laws, and optima from one-axis-at-a-time sweeps."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import scalelaw
from scalelaw.cli import main
from scalelaw.exceptions import InputError, NotEnoughDataError
from scalelaw.laws import CROSS_RECIPE_SD, load_law
from scalelaw.optima import DEFAULT_INTERACTION, fit_optima
from scalelaw.predict import get_law
from scalelaw.runs import usable_runs
from scalelaw.surface import fit_surface, surface_data
from scalelaw.synthetic import SHAPE, make_runs, true_batch, true_lr

STEPLAW = Path(__file__).resolve().parents[2] / "shared" / "data" / "steplaw" / "dense_lr_bs_loss.csv"
Z80 = float(stats.norm.ppf(0.9))


@pytest.fixture(scope="module")
def prior_a() -> scalelaw.HyperparameterLaw:
    """Recipe A's law: a full synthetic grid, 12 cells."""
    return scalelaw.fit(make_runs(seed=1), n_boot=60, calibrate=False, loss_law=False)


@pytest.mark.parametrize("factor", [2.0, 0.5])
def test_two_cells_of_a_shifted_recipe_recover_the_shift(prior_a, factor):
    cells_b = make_runs(seed=2, lr_factor=factor, sizes=(2e7,), tokens=(2e9, 6e9))
    law = scalelaw.fit(cells_b, prior=prior_a)
    assert law.method == "prior"
    shift = law.settings["calibrated"]["lr"]
    assert shift["cells"] == 2
    # the recovered shift (ln of calibrated / prior) holds the true one in its 80% interval
    prior_ratio = math.log(prior_a.lr(2e7, 4e9) / true_lr(2e7, 4e9))  # the prior's own error there
    truth = math.log(factor) - prior_ratio
    assert abs(shift["shift"] - truth) < Z80 * shift["shift_sd"]
    assert abs(shift["shift"] - math.log(factor)) < 0.15
    # recipe B's optimum at a model 15x larger lies inside the calibrated 80% interval,
    # and the prediction is within 20% of it (the prior alone is off by the factor)
    n, d = 3e8, 2e10
    p = law.predict(n, d)
    assert p.lr_interval[0] < true_lr(n, d, factor) < p.lr_interval[1]
    assert abs(math.log(p.lr / true_lr(n, d, factor))) < math.log(1.2)
    assert abs(math.log(prior_a.lr(n, d) / true_lr(n, d, factor))) > 0.6
    # the batch size did not move with the recipe: its shift is within noise of zero
    b = law.settings["calibrated"]["batch_size"]
    assert abs(b["shift"]) < 0.2 and p.batch_size_interval[0] < true_batch(n, d) < p.batch_size_interval[1]
    assert law.loss is None and law.lr.recipe_sd == 0.0


def test_one_cell_moves_only_the_coefficient(prior_a):
    law = scalelaw.fit(make_runs(seed=3, lr_factor=2.0, sizes=(5e7,), tokens=(6e9,)), prior=prior_a)
    # one cell cannot tell exponents apart: they stay the prior's (to its tiny covariance)
    for term, value in prior_a.lr.exponents.items():
        assert law.lr.exponents[term] == pytest.approx(value, abs=1e-3)
    assert math.exp(law.settings["calibrated"]["lr"]["shift"]) == pytest.approx(2.0, rel=0.15)
    # intervals widen with distance from the calibrated cell (the exponents' uncertainty)
    near, far = law.lr.interval(5e7, 6e9), law.lr.interval(1e10, 1e12)
    assert far[1] / far[0] > near[1] / near[0]


def test_cross_gives_the_grid_optimum_within_the_bootstrap():
    """A one-axis-at-a-time sweep (lr at one batch size off the optimum, batch size at one
    lr) places the same optimum as the full grid, using the bowl's interaction."""
    kw = dict(seed=4, sizes=(5e7,), tokens=(6e9,), noise=5e-4)
    grid = fit_optima(make_runs(**kw), n_boot=100).table.iloc[0]
    k_uu, k_vv, k_uv = SHAPE[:3]
    rho = k_uv / (2 * math.sqrt(k_uu * k_vv))
    for cross in [(0, 2), (1, -2), (-1, 3)]:  # batch line at lr step i0, lr line at batch step j0
        got = fit_optima(make_runs(**kw, cross=cross), n_boot=100, interaction=rho).table.iloc[0]
        assert got["interaction"] == "assumed"
        for q in ("lr", "batch_size"):
            sd = math.hypot(grid[f"{q}_opt_log_sd"], got[f"{q}_opt_log_sd"])
            gap = abs(math.log(got[f"{q}_opt"] / grid[f"{q}_opt"]))
            assert gap < 2.5 * sd + 0.03, (cross, q, gap, sd)
    assert grid["interaction"] == "fitted"


def test_an_invented_interaction_misplaces_an_off_optimum_cross():
    """The interaction matters where the lr line runs at a batch size far off the
    optimum: assuming none moves the lr optimum by more than the bootstrap allows."""
    runs = make_runs(seed=5, sizes=(5e7,), tokens=(6e9,), cross=(0, 4), noise=2e-4)
    k_uu, k_vv, k_uv = SHAPE[:3]
    rho = k_uv / (2 * math.sqrt(k_uu * k_vv))
    right = fit_optima(runs, n_boot=100, interaction=rho).table.iloc[0]
    none = fit_optima(runs, n_boot=100, interaction=0.0).table.iloc[0]
    truth = true_lr(5e7, 6e9)
    assert abs(math.log(right["lr_opt"] / truth)) < abs(math.log(none["lr_opt"] / truth))
    assert abs(math.log(none["lr_opt"] / right["lr_opt"])) > 3 * right["lr_opt_log_sd"]


def test_lr_only_cells_keep_the_priors_batch_law_with_the_recipe_spread(prior_a):
    runs = make_runs(seed=6, lr_factor=2.0, sizes=(2e7,), tokens=(2e9,), batch_steps=[0])
    law = scalelaw.fit(runs, prior=prior_a)
    assert law.settings["calibrated"]["batch_size"] is None
    assert law.batch_size.log_coef == prior_a.batch_size.log_coef
    assert law.batch_size.recipe_sd == CROSS_RECIPE_SD
    assert any("batch_size: no cell sweeps 3+ values" in n for n in law.notes)


def test_calibrated_law_round_trips_through_json(prior_a, tmp_path):
    law = scalelaw.fit(make_runs(seed=7, lr_factor=2.0, sizes=(2e7,), tokens=(2e9,)), prior=prior_a)
    path = tmp_path / "cal.json"
    law.to_json(path)
    back = load_law(path)
    assert (
        back.method == "prior"
        and back.settings["calibrated"] == json.loads(json.dumps(law.settings))["calibrated"]
    )
    assert back.lr.interval(3e8, 2e10) == pytest.approx(law.lr.interval(3e8, 2e10), rel=1e-12)


def test_bad_priors_and_tables_are_refused(prior_a):
    runs = make_runs(seed=8, sizes=(2e7,), tokens=(2e9,))
    with pytest.raises(InputError, match="unknown law 'nope'"):
        scalelaw.fit(runs, prior="nope")
    with pytest.raises(InputError, match="prior must be"):
        scalelaw.fit(runs, prior=3.0)
    one_lr = runs[runs["lr"] == runs["lr"].iloc[0]]  # a batch line at one lr: no lr optimum
    one_lr = one_lr[one_lr["batch_size"] <= one_lr["batch_size"].min() * 2]  # and on its edge
    with pytest.raises(NotEnoughDataError, match="no cell of the runs places an optimum"):
        scalelaw.fit(one_lr, prior=prior_a)


def test_cli_fit_with_prior(tmp_path, capsys):
    table = tmp_path / "cross.csv"
    make_runs(seed=9, lr_factor=2.0, sizes=(2e7,), tokens=(2e9,), cross=(1, 2)).to_csv(table, index=False)
    out = tmp_path / "cal.json"
    assert main(["fit", str(table), "--prior", "default", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "method: prior" in text and "one axis at a time" in text
    law = load_law(out)
    assert law.settings["prior"].startswith("default")
    assert law.settings["interaction"] == pytest.approx(get_law("default").settings["interaction"])
    assert main(["fit", str(table), "--prior", "default", "--method", "surface"]) == 2
    assert "takes no --method" in capsys.readouterr().err


def test_published_laws_carry_the_spread_between_recipes():
    """CROSS_RECIPE_SD is what the Step Law and DeepSeek formulas say of each other over
    the default law's domain: RMS of ln(ratio) / sqrt(2), for lr and for B."""
    steplaw, deepseek = get_law("steplaw"), get_law("deepseek")
    n, d = np.meshgrid(np.geomspace(2.1e8, 1.07e9, 9), np.geomspace(4e9, 1e11, 9))
    for q in ("lr", "batch_size"):
        ratio = np.log(getattr(steplaw, q)(n, d) / getattr(deepseek, q)(n, d))
        assert math.sqrt(np.mean(ratio**2)) / math.sqrt(2) == pytest.approx(CROSS_RECIPE_SD, abs=0.01)
    default = get_law("default")
    assert default.lr.recipe_sd == CROSS_RECIPE_SD and default.batch_size.recipe_sd == CROSS_RECIPE_SD
    with_spread = default.lr.interval(5e8, 2e10)
    without = dataclasses.replace(default.lr, recipe_sd=0.0).interval(5e8, 2e10)
    floor = math.exp(2 * Z80 * CROSS_RECIPE_SD)  # the spread alone: 3.7x from end to end
    assert with_spread[1] / with_spread[0] >= floor > without[1] / without[0]


@pytest.mark.science
def test_default_interaction_is_the_steplaw_surfaces():
    if not STEPLAW.exists():
        pytest.skip(f"{STEPLAW} not found: ../shared is absent")
    runs, _ = usable_runs(scalelaw.read_runs(STEPLAW, table_format="steplaw"))
    surface, _, _ = fit_surface(surface_data(runs), ("N", "D"), ("N", "D"), n_boot=0)
    k_uu, k_vv, k_uv = surface.shape[:3]
    assert k_uv / (2 * math.sqrt(k_uu * k_vv)) == pytest.approx(DEFAULT_INTERACTION, abs=0.01)
    assert get_law("default").settings["interaction"] == pytest.approx(DEFAULT_INTERACTION, abs=0.01)


def test_calibrated_coefficients_use_the_posteriors_normal_quantile(prior_a):
    runs = make_runs(seed=10, lr_factor=2.0, sizes=(2e7,), tokens=(2e9,))
    law = scalelaw.fit(runs, prior=prior_a, n_boot=np.int64(50))
    table = law.coefficients(alpha=0.2)
    half = (table["ci_upper"] - table["ci_lower"]) / 2
    assert half.to_numpy() == pytest.approx(Z80 * table["std_err"].to_numpy(), rel=1e-9)
    assert json.loads(json.dumps(law.to_dict()))["settings"]["n_boot"] == 50  # np.int64 given
