"""The weight-decay sweep axis and AdamW's timescale law (issue #11, part 4)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import SMALL_SPEC

import scalelaw
from scalelaw import fit, synthetic
from scalelaw.groups import group_key
from scalelaw.laws import HyperparameterLaw
from scalelaw.optima import cell_optima
from scalelaw.runspec import RunSpec
from scalelaw.sweep import run_id
from scalelaw.sweepspec import SpecError, parse_spec
from scalelaw.timescale import QUANTITY, fit_timescale, timescale_points, varies_weight_decay

SPEC = SMALL_SPEC
AXIS = "[weight_decay]\nvalues = [0.0, 0.05, 0.1, 0.2]\n"
FACTORS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)  # λ grid around each cell's λ*, and a λ = 0 cell
# Exponents of the timescale fraction recovered within this (absolute) on the noisy
# synthetic table; the bootstrap's standard error is about 0.005 on each.
EXP_TOL = 0.03


def test_spec_axis_multiplies_the_runs_and_fused_groups_stack_it():
    plain = parse_spec(SPEC)
    swept = parse_spec(SPEC.replace("[limits]", AXIS + "[limits]"))
    assert plain.weight_decays == () and swept.weight_decays == (0.0, 0.05, 0.1, 0.2)
    runs = swept.run_kwargs()
    assert len(runs) == 4 * len(plain.run_kwargs()) == 32
    assert sorted({r["weight_decay"] for r in runs}) == [0.0, 0.05, 0.1, 0.2]
    assert len({run_id(r) for r in runs}) == 32
    assert {r["weight_decay"] for r in plain.run_kwargs()} == {
        RunSpec.__dataclass_fields__["weight_decay"].default
    }
    # runs that differ only in λ (and lr) share a fused group: the axis costs no extra groups
    groups = {group_key(RunSpec(**r)) for r in runs}
    assert len(groups) == len({group_key(RunSpec(**r)) for r in plain.run_kwargs()})


def test_dry_run_shows_the_axis(tmp_path, capsys):
    from scalelaw.cli import main

    path = tmp_path / "spec.toml"
    path.write_text(SPEC.replace("[limits]", AXIS + "[limits]"))
    assert main(["sweep", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "32 runs: 2 shapes x 2 lr x 2 batch sizes x 1 token budgets x 1 seeds x 4 weight decays" in out
    assert out.splitlines()[3].split()[-1] == "wd"


@pytest.mark.parametrize(
    "axis, message",
    [
        (
            "[weight_decay]\nvalues = [0.1, -0.05]\n",
            r"field weight_decay\.values\[1\]: must be a non-negative",
        ),
        ('[weight_decay]\nvalues = [0.1, "big"]\n', r"field weight_decay\.values\[1\]: must be float"),
        ("[weight_decay]\nvalues = []\n", r"field weight_decay\.values: must be a non-empty list"),
        ("[weight_decay]\nvalues = [0.1, 0.1]\n", r"field weight_decay\.values: repeats a value"),
        ("[weight_decay]\nvalues = [nan]\n", r"field weight_decay\.values\[0\]: must be a non-negative"),
        ("[weight_decay]\nvalus = [0.1]\n", r"field weight_decay\.valus: is not a known field"),
        ("[weight_decay]\n", r"field weight_decay\.values: is required"),
        ("[weight_decay]\nvalues = [0.1]\nstep = 2\n", r"field weight_decay\.step: is not a known field"),
    ],
)
def test_bad_axis_values_are_named(axis, message):
    with pytest.raises(SpecError, match=message):
        parse_spec(SPEC.replace("[limits]", axis + "[limits]"), source="spec.toml")


def test_axis_and_recipe_weight_decay_together_are_refused():
    text = SPEC.replace("seq_len = 64", "seq_len = 64\nweight_decay = 0.1").replace(
        "[limits]", AXIS + "[limits]"
    )
    with pytest.raises(SpecError, match=r"weight_decay\.values: give the weight decay either here"):
        parse_spec(text)


@pytest.fixture(scope="module")
def wd_runs():
    return synthetic.make_runs(seed=3, weight_decays=FACTORS)


@pytest.fixture(scope="module")
def wd_optima(wd_runs):
    return cell_optima(wd_runs, n_boot=0)


def test_points_find_each_cells_best_decay_and_timescale(wd_optima):
    points = timescale_points(wd_optima)
    assert len(points) == len(synthetic.SIZES) * len(synthetic.TOKENS)
    assert (points["weight_decays"] == len(FACTORS) - 1).all()  # λ = 0 takes no part
    assert (points["lambda_method"] == "parabola").all()
    truth = synthetic.true_weight_decay(points["params"], points["tokens"])
    assert np.abs(np.log(points["lambda_opt"] / truth)).max() < 0.15
    tau = synthetic.true_timescale(points["params"], points["tokens"])
    assert np.abs(np.log(points[QUANTITY] / tau)).max() < 0.08
    np.testing.assert_allclose(points["tau_steps"], 1 / (points["lr_at_lambda"] * points["lambda_opt"]))


def test_timescale_law_recovers_the_true_exponents(wd_optima):
    law = fit_timescale(wd_optima, n_boot=100, seed=0)
    assert law is not None and law.quantity == "timescale_fraction" and law.determined
    assert law.exponents["N"] == pytest.approx(synthetic.TAU_EXP_N, abs=EXP_TOL)
    assert law.exponents["D"] == pytest.approx(synthetic.TAU_EXP_D, abs=EXP_TOL)
    assert law.coef * 1e8 ** law.exponents["N"] * 6e9 ** law.exponents["D"] == pytest.approx(
        float(synthetic.true_timescale(1e8, 6e9)), rel=0.05
    )
    assert law.se is not None and len(law.draws) == 100 and law.caveat == ""


def test_best_of_grid_fallback_says_why(wd_optima):
    # keep only λ below each cell's optimum: the best λ is the grid's largest, not bracketed
    low = wd_optima[wd_optima["weight_decay"] > 0]
    low = low[low["weight_decay"] < synthetic.true_weight_decay(low["params"], low["tokens"]) * 0.6]
    points = timescale_points(low)
    assert points["lambda_method"].str.startswith("best of grid (the largest λ swept is best").all()
    law = fit_timescale(low, n_boot=0)
    assert "have their best λ on the edge of the λ grid" in law.caveat


def test_no_law_without_a_weight_decay_sweep(wd_optima):
    one = wd_optima[(wd_optima["params"] == wd_optima["params"].min()) & (wd_optima["tokens"] == 2e9)]
    assert not varies_weight_decay(one) and fit_timescale(one) is None
    plain = cell_optima(synthetic.make_runs(seed=0, sizes=(2e7, 5e7), tokens=(2e9,)), n_boot=0)
    assert fit_timescale(plain) is None


def test_fit_stores_the_law_and_the_prediction_uses_it(wd_runs, tmp_path):
    law = fit(wd_runs, method="optima", n_boot=30, calibrate=False)
    ts = law.timescale
    assert ts is not None
    assert ts.exponents["N"] == pytest.approx(synthetic.TAU_EXP_N, abs=EXP_TOL)
    assert ts.exponents["D"] == pytest.approx(synthetic.TAU_EXP_D, abs=EXP_TOL)
    assert "timescale_fraction = " in str(law.summary())

    again = HyperparameterLaw.from_dict(json.loads(law.to_json(tmp_path / "law.json")))
    assert again.timescale == ts
    np.testing.assert_allclose(again.timescale.draws, ts.draws)

    n, d = 1e9, 1e11
    pred = again.predict(n, d)
    assert any("fitted timescale law" in rule for rule in pred.rules)
    steps = d / pred.batch_size
    # the timescale the prediction's λ implies is the law's fraction at (N, D)
    assert 1 / (pred.lr * pred.weight_decay) / steps == pytest.approx(ts(n, d), rel=1e-9)
    # and close to the truth, extrapolated 3x in N and 5x in D
    assert 1 / (pred.lr * pred.weight_decay) / steps == pytest.approx(
        float(synthetic.true_timescale(n, d)), rel=0.1
    )


def test_without_a_timescale_law_the_old_rule_stays(wd_runs):
    from scalelaw.target import weight_decay_for

    plain = fit(
        synthetic.make_runs(seed=0).assign(weight_decay=0.1), method="optima", n_boot=0, calibrate=False
    )
    assert plain.timescale is None
    decay, rule = weight_decay_for(plain, 1e-3, 1e6, 1e11, model_size=1e9)
    assert decay is not None and "proxies' largest cell" in rule


def test_lr_law_is_fitted_on_each_cells_best_decay(wd_runs):
    """Cells at a poor λ do not pull the lr* law: it is the law of the best-λ runs."""
    from scalelaw.timescale import best_decay_runs

    law = scalelaw.fit(wd_runs, n_boot=0, loss_law=False, calibrate=False, method="optima")
    best = best_decay_runs(scalelaw.validate_runs(wd_runs))
    assert best["params"].nunique() * best["tokens"].nunique() == best.groupby(["params", "tokens"]).ngroups
    assert best.groupby(["params", "tokens"])["weight_decay"].nunique().max() == 1
    alone = scalelaw.fit(best, n_boot=0, loss_law=False, calibrate=False, method="optima")
    assert law.lr.exponents == pytest.approx(alone.lr.exponents, rel=1e-12)
    assert law.timescale is not None and alone.timescale is None
    assert any("best λ on the grid" in n for n in law.notes)


def test_a_zero_and_one_positive_decay_still_fit_on_the_best():
    """λ in {0, x}: no timescale law can be fitted, but the laws still use each cell's best λ."""
    runs = synthetic.make_runs(seed=5, weight_decays=[0, 1])
    law = scalelaw.fit(runs, n_boot=0, loss_law=False, calibrate=False, method="optima")
    assert law.timescale is None and any("best λ on the grid" in n for n in law.notes)
    assert len(law.optima) == law.optima.groupby(["params", "tokens"]).ngroups
