"""The planner: compute-optimal (N*, D*) for a FLOP budget, then lr*, B* and loss there."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import optimize

import scalelaw
from scalelaw import synthetic
from scalelaw.cli import main
from scalelaw.laws import HyperparameterLaw, LossLaw, PowerLaw
from scalelaw.plan import Plan, best_tokens, cheapest_compute, frontier, plan

E, A, B, ALPHA, BETA = synthetic.LOSS
COMPUTES = np.geomspace(1e18, 1e26, 9)


def known_law(spread: float = 0.02, seed: int = 0) -> HyperparameterLaw:
    """synthetic.LOSS as a loss law, with bootstrap draws scattered around it, and the
    synthetic lr* and B* laws."""
    rng = np.random.default_rng(seed)
    truth = np.array(synthetic.LOSS)
    draws = truth * np.exp(spread * rng.standard_normal((200, 5)))
    lr_params = [math.log(synthetic.LR_COEF), synthetic.LR_EXP_N, synthetic.LR_EXP_D]
    b_params = [math.log(synthetic.B_COEF), synthetic.B_EXP_D]
    lr = PowerLaw(
        "lr",
        "peak learning rate",
        lr_params[0],
        {"N": lr_params[1], "D": lr_params[2]},
        resid_sd=0.1,
        draws=lr_params + 0.01 * rng.standard_normal((200, 3)),
    )
    batch = PowerLaw(
        "batch_size",
        "tokens per step",
        b_params[0],
        {"D": b_params[1]},
        resid_sd=0.1,
        draws=b_params + 0.01 * rng.standard_normal((200, 2)),
    )
    loss = LossLaw(*synthetic.LOSS, resid_sd=0.003, n_points=12, draws=draws)
    return HyperparameterLaw(
        name="known",
        source="synthetic.LOSS",
        lr=lr,
        batch_size=batch,
        loss=loss,
        fit_range={"N": (2e7, 3e8), "D": (2e9, 2e10)},
    )


@pytest.fixture(scope="module")
def law() -> HyperparameterLaw:
    return known_law()


def numeric_optimum(compute: float) -> float:
    """N minimising E + A/N^alpha + B/D^beta on D = C / (6N), by a 1-D search in log N."""

    def loss(log_n: float) -> float:
        n = math.exp(log_n)
        return E + A / n**ALPHA + B / (compute / (6 * n)) ** BETA

    found = optimize.minimize_scalar(loss, bounds=(0, 80), method="bounded", options={"xatol": 1e-10})
    return math.exp(found.x)


def test_the_planner_recovers_the_closed_form_optimum(law):
    plans = [plan(c, law) for c in COMPUTES]
    n = np.array([p.model_size for p in plans])
    # N* ∝ C^(beta / (alpha + beta)): the slope across budgets
    slopes = np.diff(np.log(n)) / np.diff(np.log(COMPUTES))
    np.testing.assert_allclose(slopes, BETA / (ALPHA + BETA), rtol=0.01)
    assert plans[0].exponents["N"] == pytest.approx(BETA / (ALPHA + BETA), rel=1e-12)
    # ... and the values: the closed form, and an independent 1-D minimisation
    g = (ALPHA * A / (BETA * B)) ** (1 / (ALPHA + BETA))
    np.testing.assert_allclose(n, g * (COMPUTES / 6) ** (BETA / (ALPHA + BETA)), rtol=1e-9)
    np.testing.assert_allclose(n, [numeric_optimum(c) for c in COMPUTES], rtol=0.01)
    # and no other split of the same compute has a lower loss
    p = plans[4]
    for factor in (0.5, 0.9, 1.1, 2.0):
        n_other = p.model_size * factor
        assert law.loss(n_other, p.compute / (6 * n_other)) > p.loss


def test_a_law_fitted_on_synthetic_runs_recovers_the_true_exponent(synthetic_law):
    truth = BETA / (ALPHA + BETA)
    plans = [plan(c, synthetic_law) for c in (1e19, 1e21, 1e23)]
    slope = np.polyfit(np.log([p.compute for p in plans]), np.log([p.model_size for p in plans]), 1)[0]
    assert slope == pytest.approx(truth, rel=0.01)
    assert plans[0].exponents["N"] == pytest.approx(truth, rel=0.01)


@pytest.mark.parametrize("tokens_per_param", [None, 20.0])
def test_six_n_d_is_the_compute(law, tokens_per_param):
    for c in COMPUTES:
        p = plan(c, law, tokens_per_param=tokens_per_param)
        assert 6 * p.model_size * p.tokens == pytest.approx(c, rel=1e-12)
        assert p.ratio == pytest.approx(p.tokens / p.model_size)
    fixed = plan(1e22, law, tokens_per_param=20)
    assert fixed.ratio == pytest.approx(20) and fixed.model_size == pytest.approx(math.sqrt(1e22 / 120))
    assert fixed.model_size_interval is None and fixed.exponents is None
    assert "fixed by tokens_per_param" in fixed.table()


def test_intervals_come_from_the_bootstrap_and_contain_the_plan(law):
    p = plan(1e22, law)
    (n_lo, n_hi), (d_lo, d_hi) = p.model_size_interval, p.tokens_interval
    assert n_lo < p.model_size < n_hi and d_lo < p.tokens < d_hi
    assert 6 * n_lo * d_hi == pytest.approx(1e22) and 6 * n_hi * d_lo == pytest.approx(1e22)
    for value, (lo, hi) in ((p.lr, p.lr_interval), (p.batch_size, p.batch_size_interval)):
        assert lo < value < hi
    assert p.loss_interval[0] < p.loss < p.loss_interval[1]
    # the interval is the draws' own spread of N*: a wider bootstrap gives a wider interval
    wide = plan(1e22, known_law(spread=0.1))
    assert wide.model_size == pytest.approx(p.model_size)
    assert wide.model_size_interval[1] / wide.model_size_interval[0] > n_hi / n_lo
    # lr*, B* and loss are scalelaw.predict's at (N*, D*)
    same = scalelaw.predict(p.model_size, p.tokens, law=law)
    assert (p.lr, p.lr_interval, p.batch_size, p.loss_interval) == (
        same.lr,
        same.lr_interval,
        same.batch_size,
        same.loss_interval,
    )


def test_an_undetermined_split_says_so(law):
    shaky = plan(1e24, known_law(spread=0.6))
    assert not shaky.model_size_determined and not shaky.tokens_determined
    assert any("split of C = 1e+24 FLOPs between N and D is not determined" in w for w in shaky.warnings)
    assert "not determined" in shaky.table().splitlines()[3]


def test_the_inverse_questions_round_trip(law):
    for n in (1e8, 7e9, 1e12):
        d = best_tokens(n, law)
        assert plan(6 * n * d, law).model_size == pytest.approx(n, rel=1e-9)
        assert best_tokens(n, law.loss) == d  # a bare loss law works too
    for c in COMPUTES:
        assert cheapest_compute(plan(c, law).loss, law) == pytest.approx(c, rel=1e-9)
        fixed = plan(c, law, tokens_per_param=20)
        assert cheapest_compute(fixed.loss, law, tokens_per_param=20) == pytest.approx(c, rel=1e-8)
    # the loss-optimal split reaches a loss with less compute than a fixed ratio does
    assert cheapest_compute(2.2, law) < cheapest_compute(2.2, law, tokens_per_param=1000)
    for unreachable in (E, E - 0.1):
        with pytest.raises(scalelaw.InputError, match=r"at or below the law's irreducible loss E = 1\.8"):
            cheapest_compute(unreachable, law)


def test_the_frontier_table_is_the_plan_at_each_budget(law):
    table = frontier(law, COMPUTES)
    for row in table.itertuples():
        p = plan(row.compute, law)
        assert row.params == pytest.approx(p.model_size) and row.tokens == pytest.approx(p.tokens)
        assert (row.params_lower, row.params_upper) == pytest.approx(p.model_size_interval)
        assert row.loss == pytest.approx(p.loss)
        assert row.loss_lower < row.loss < row.loss_upper
    assert (np.diff(table["loss"]) < 0).all()


def test_the_default_law_plans_without_being_named():
    p = scalelaw.plan(compute=1e23)
    assert isinstance(p, Plan) and p.law == scalelaw.get_law("default").name
    assert any("no law given: using the project's default law" in w for w in p.warnings)
    assert 6 * p.model_size * p.tokens == pytest.approx(1e23)
    lo, hi = p.model_size_interval
    assert lo < p.model_size < hi and p.model_size_determined


def test_a_plan_follows_the_results_protocol(law):
    import pandas as pd

    p = plan(1e22, law, seq_len=4096)
    assert list(p.params.index) == ["params", "tokens", "lr", "batch_size", "loss"]
    assert p.params["params"] == p.model_size and p.params["batch_size"] == p.batch_size
    assert (p.bse > 0).all()
    for alpha in (0.2, 0.05):
        ci = p.conf_int(alpha)
        assert (ci["lower"] < p.params).all() and (p.params < ci["upper"]).all()
        summary = p.summary(alpha)
        assert f"{100 * (1 - alpha):g}% interval" in summary
        np.testing.assert_allclose(summary.frame["ci_lower"], ci["lower"])
    assert (p.conf_int(0.05)["lower"] < p.conf_int()["lower"]).all()
    again = Plan.from_dict(json.loads(p.to_json()))
    pd.testing.assert_series_equal(again.params, p.params)
    pd.testing.assert_frame_equal(again.conf_int(), p.conf_int())
    assert again.batch_size_seqs == p.batch_size_seqs and again.warnings == p.warnings
    with pytest.raises(scalelaw.InputError, match="carries no law"):
        again.conf_int(0.05)


def test_bad_input_is_an_input_error_that_says_what_to_do(law):
    for bad in (-1e23, 0, math.inf, math.nan, "1e23", True):
        with pytest.raises(scalelaw.InputError, match="compute must be a positive finite number"):
            plan(bad, law)
    with pytest.raises(scalelaw.InputError, match="tokens_per_param must be a positive"):
        plan(1e23, law, tokens_per_param=-20)
    with pytest.raises(scalelaw.InputError, match="alpha must be in"):
        plan(1e23, law, alpha=80)
    with pytest.raises(
        scalelaw.InputError, match="the law 'steplaw' has no loss law: the planner needs a loss law"
    ):
        plan(1e23, "steplaw")
    for inverse in (lambda: best_tokens(7e9, "deepseek"), lambda: cheapest_compute(2.0, "deepseek")):
        with pytest.raises(scalelaw.InputError, match="the law 'deepseek' has no loss law"):
            inverse()
    # with a fixed ratio the split needs no loss law: N from C and r directly
    fixed = plan(1e23, "steplaw", tokens_per_param=20)
    assert fixed.model_size == pytest.approx(math.sqrt(1e23 / 120)) and fixed.loss is None
    flat = HyperparameterLaw(
        name="flat",
        source="",
        lr=law.lr,
        batch_size=law.batch_size,
        loss=LossLaw(1.8, 400.0, 0.0, 0.34, 0.28),
    )
    with pytest.raises(scalelaw.FitError, match="no compute-optimal split"):
        plan(1e23, flat)


def test_cli_plan_prints_the_numbers(capsys):
    p = scalelaw.plan(compute=1e23)
    assert main(["plan", "--compute", "1e23"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("scalelaw plan for C = 1e+23 FLOPs (C = 6ND)")
    rows = {line[:28].strip(): line[28:] for line in out.splitlines() if line.startswith("  ")}
    assert f"{p.model_size:.3g}" in rows["params N (non-embedding)"]
    lo, hi = p.model_size_interval
    assert f"80% [{lo:.3g}, {hi:.3g}]" in rows["params N (non-embedding)"]
    assert f"{p.tokens:.3g}" in rows["tokens D"]
    assert f"{p.lr:.3g}" in rows["peak learning rate"] and "80% [" in rows["peak learning rate"]
    assert f"{p.batch_size:.3g}" in rows["batch size (tokens)"]
    assert (
        f"{p.batch_size_seqs}" in rows["batch size (seqs)"] and "of 2048 tokens" in rows["batch size (seqs)"]
    )
    assert f"{p.loss:.4f}" in rows["loss"] and "80% [" in rows["loss"]
    assert main(["plan", "--compute", "1e23", "--seq-len", "4096"]) == 0
    assert "of 4096 tokens" in capsys.readouterr().out


def test_cli_plan_json_has_the_keys_with_intervals(capsys):
    assert main(["plan", "--compute", "1e23", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["compute"] == 1e23 and 6 * d["params"] * d["tokens"] == pytest.approx(1e23)
    for key, interval in (
        ("params", "params_interval"),
        ("tokens", "tokens_interval"),
        ("lr", "lr_interval"),
        ("batch_size_tokens", "batch_size_interval"),
        ("loss", "loss_interval"),
    ):
        value, (lo, hi) = d[key], d[interval]
        assert all(math.isfinite(x) for x in (value, lo, hi)), key
        assert lo < value < hi, key
    assert d["batch_size"] == d["batch_size_tokens"] and d["batch_size_seqs"] == round(d["batch_size"] / 2048)
    assert d["prediction"]["model_size"] == d["params"]
    assert Plan.from_dict(d).model_size == d["params"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["plan", "--compute=-1e23"], "size '-1e23' must be positive and finite"),
        (["plan", "--compute", "0"], "size '0' must be positive and finite"),
        (["plan", "--compute", "lots"], "cannot read 'lots' as a size"),
        (["plan", "--compute", "1e23", "--preset", "steplaw"], "the law 'steplaw' has no loss law"),
        (["plan", "--compute", "1e23", "--tokens-per-param", "-20"], "must be positive"),
        (["plan", "--compute", "1e23", "--law", "nope.json"], "nope.json: no such file"),
    ],
)
def test_cli_plan_errors_are_one_error_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("scalelaw plan: error: ") and message in err


def test_cli_plan_with_a_fixed_ratio_needs_no_loss_law(capsys):
    assert (
        main(["plan", "--compute", "1e23", "--preset", "steplaw", "--tokens-per-param", "20", "--json"]) == 0
    )
    d = json.loads(capsys.readouterr().out)
    assert d["tokens_per_param"] == pytest.approx(20) and d["params_interval"] is None and d["loss"] is None


def test_planning_imports_neither_torch_nor_matplotlib():
    code = (
        "import sys, scalelaw; scalelaw.plan(compute=1e23); scalelaw.cheapest_compute(2.0); "
        "print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
