"""Fitting laws: recovery of known exponents, intervals, summaries, JSON round trips."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys

import numpy as np
import pytest

import scalelaw
from scalelaw import FitError, LawFileError, synthetic

EXPONENT_TOL = 0.03  # synthetic noise 0.05% of loss; observed errors are below 0.01


@pytest.mark.parametrize("method", ["surface", "optima"])
def test_recovers_known_exponents(synthetic_runs, method):
    law = synthetic_law = scalelaw.fit(synthetic_runs, method=method, n_boot=30)
    assert synthetic_law.lr.exponents["N"] == pytest.approx(synthetic.LR_EXP_N, abs=EXPONENT_TOL)
    assert law.lr.exponents["D"] == pytest.approx(synthetic.LR_EXP_D, abs=EXPONENT_TOL)
    assert law.batch_size.exponents["N"] == pytest.approx(0.0, abs=EXPONENT_TOL)
    assert law.batch_size.exponents["D"] == pytest.approx(synthetic.B_EXP_D, abs=EXPONENT_TOL)
    # Extrapolate 10x beyond the largest model: within 10% of the true optimum.
    n, d = 3e9, 2e10
    assert law.lr(n, d) == pytest.approx(synthetic.true_lr(n, d), rel=0.1)
    assert law.batch_size(n, d) == pytest.approx(synthetic.true_batch(n, d), rel=0.1)


def test_selectable_terms_follow_step_law_form(synthetic_runs):
    law = scalelaw.fit(synthetic_runs, batch_terms=("D",), n_boot=0, loss_law=False)
    assert set(law.batch_size.exponents) == {"D"}
    assert law.batch_size.exponents["D"] == pytest.approx(synthetic.B_EXP_D, abs=EXPONENT_TOL)
    with pytest.raises(ValueError, match="terms must be a non-empty subset"):
        scalelaw.fit(synthetic_runs, lr_terms=("C",))


def test_one_token_budget_gives_laws_in_n_only_with_a_note(synthetic_runs):
    budget = synthetic_runs["tokens"].min()
    law = scalelaw.fit(synthetic_runs[synthetic_runs["tokens"] == budget], n_boot=0, loss_law=False)
    assert set(law.lr.exponents) == set(law.batch_size.exponents) == {"N"}
    assert law.lr.exponents["N"] == pytest.approx(synthetic.LR_EXP_N, abs=EXPONENT_TOL)
    assert law.lr(1e8, budget) == pytest.approx(synthetic.true_lr(1e8, budget), rel=0.1)
    assert any("every cell has D = 2e+09" in note and "N only" in note for note in law.notes)


def test_confidence_intervals_cover_the_truth(synthetic_law):
    ci = synthetic_law.conf_int(alpha=0.05)
    for (law, term), truth in {
        ("lr", "exp_N"): synthetic.LR_EXP_N,
        ("lr", "exp_D"): synthetic.LR_EXP_D,
        ("batch_size", "exp_D"): synthetic.B_EXP_D,
    }.items():
        lower, upper = ci.loc[(law, term)]
        assert lower <= truth <= upper
        assert upper - lower < 0.05  # and they are informative


def test_summary_reports_formulas_errors_and_notes(synthetic_law):
    text = synthetic_law.summary()
    assert re.search(r"lr = [\d.]+ \* N\^-0\.(59|60|61)\d \* D\^\+0\.(24|25|26)\d", text)
    assert re.search(r"batch_size = [\d.]+ \* N\^[+-]0\.0\d\d \* D\^\+0\.5[4-6]\d", text)
    assert "std err" in text and "80% interval" in text
    assert "left out" in text and "diverged" in text
    table = synthetic_law.coefficients()
    assert list(table.columns) == ["law", "term", "estimate", "std_err", "ci_lower", "ci_upper"]
    assert table["std_err"].notna().all() and (table["std_err"] > 0).all()


def test_optima_method_uses_statsmodels_standard_errors(synthetic_runs):
    """Weighted least squares, each cell by the inverse variance of its bootstrap optimum
    (floored at 5% and at the grid's resolution; no cell here is censored)."""
    import statsmodels.api as sm

    law = scalelaw.fit(synthetic_runs, method="optima", n_boot=20, loss_law=False)
    opt = law.optima
    X = sm.add_constant(np.log(opt[["params", "tokens"]].to_numpy(float)))
    sd = np.maximum.reduce(
        [opt["lr_opt_log_sd"].to_numpy(), opt["lr_step"].to_numpy() / 12**0.5, np.full(len(opt), 0.05)]
    )
    ols = sm.WLS(np.log(opt["lr_opt"].to_numpy()), X, weights=1 / sd**2).fit()
    np.testing.assert_allclose(law.lr.params, ols.params, rtol=1e-10)
    np.testing.assert_allclose(law.coefficients().query("law == 'lr'")["std_err"], ols.bse, rtol=1e-10)


def test_prediction_intervals_widen_with_distance(synthetic_law):
    widths, mean_widths = [], []
    for factor in (1, 3, 10, 100):
        n, d = 3e8 * factor, 2e10 * factor
        p = synthetic_law.predict(n, d)
        widths.append(np.log(p.lr_interval[1] / p.lr_interval[0]))
        low, high = synthetic_law.lr.interval(n, d, kind="mean")
        mean_widths.append(np.log(high / low))
        assert p.lr_interval[0] < p.lr < p.lr_interval[1]
        assert p.batch_size_interval[0] < p.batch_size < p.batch_size_interval[1]
        assert p.loss_interval[0] < p.loss < p.loss_interval[1]
    assert all(b > a for a, b in itertools.pairwise(widths))
    # The interval of the mean law grows with log distance; the one for a new run adds
    # the scatter of cell optima around the law, which does not.
    assert all(b > a for a, b in itertools.pairwise(mean_widths))
    assert mean_widths[-1] > 3 * mean_widths[0]


def test_json_round_trip_gives_identical_predictions(synthetic_law, tmp_path):
    path = tmp_path / "law.json"
    synthetic_law.to_json(path)
    back = scalelaw.load_law(path)
    for n, d in [(1e8, 1e10), (7e9, 1.4e12)]:
        a, b = synthetic_law.predict(n, d), back.predict(n, d)
        assert a == b
    assert back.optima.shape[0] == synthetic_law.optima.shape[0]
    assert back.summary() == synthetic_law.summary()


def test_bad_law_files_get_clear_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(LawFileError, match=r"bad\.json: not valid JSON"):
        scalelaw.load_law(bad)
    bad.write_text(json.dumps({"hello": 1}))
    with pytest.raises(LawFileError, match="not a scalelaw law file"):
        scalelaw.load_law(bad)
    bad.write_text(json.dumps({"format": "scalelaw.law", "version": 1, "name": "x"}))
    with pytest.raises(LawFileError, match="missing key 'source'"):
        scalelaw.load_law(bad)


def test_too_few_cells_or_unswept_batch_size_is_explained(synthetic_runs):
    one_size = synthetic_runs[synthetic_runs["params"] == synthetic_runs["params"].min()]
    with pytest.raises(FitError, match="every cell has the same N"):
        scalelaw.fit(one_size, lr_terms=("N", "D"), n_boot=0, loss_law=False)
    assert set(scalelaw.fit(one_size, n_boot=0, loss_law=False).lr.exponents) == {"D"}
    median = synthetic_runs.groupby(["params", "tokens"])["batch_size"].transform("median")
    one_batch = synthetic_runs[synthetic_runs["batch_size"] == median]
    with pytest.raises(scalelaw.NotEnoughDataError, match="sweep the batch size"):
        scalelaw.fit(one_batch, n_boot=0, loss_law=False)


def test_fitting_never_imports_torch_or_matplotlib():
    code = (
        "import sys, scalelaw, numpy as np; from scalelaw import synthetic; "
        "scalelaw.fit(synthetic.make_runs(), n_boot=2).predict(1e9, 1e11); "
        "print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_method_auto_falls_back_to_two_stages_and_says_why(synthetic_runs):
    """Where the surface fit is refused (one batch size per cell cannot fit B* jointly
    with a bowl), method="auto" fits in two stages and keeps the refusal as a note; the
    old fit_or_two_stage is the same, with a deprecation warning."""
    median = synthetic_runs.groupby(["params", "tokens"])["batch_size"].transform("median")
    thin = synthetic_runs[(synthetic_runs["batch_size"] == median) | (synthetic_runs["params"] < 3e7)]
    with pytest.raises(scalelaw.NotEnoughDataError):
        scalelaw.fit(thin, method="surface", n_boot=0, loss_law=False)
    law = scalelaw.fit(thin, method="auto", n_boot=0, loss_law=False)
    assert law.method == "optima" and law.notes[0].startswith("joint surface fit refused (only")
    full = scalelaw.fit(synthetic_runs, method="auto", n_boot=0, loss_law=False)
    assert full.method == "surface" and not any("refused" in n for n in full.notes)
    with pytest.warns(DeprecationWarning, match='method="auto"'):
        old = scalelaw.fit_or_two_stage(thin, n_boot=0, loss_law=False)
    assert old.lr.params == pytest.approx(law.lr.params)
