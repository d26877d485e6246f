"""The results protocol (scalelaw.results) on every fitted object: params, bse,
conf_int(alpha) agreeing with summary(alpha), HTML and DataFrame views, JSON round trips."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import scalelaw
from scalelaw import synthetic
from scalelaw.laws import HyperparameterLaw, LossLaw
from scalelaw.optima import CellOptima, fit_optima
from scalelaw.results import Summary
from scalelaw.transfer import TransferFit
from scalelaw.verify import Verification

PROTOCOL = ["law", "loss law", "transfer fit", "cell optima", "verification"]


@pytest.fixture(scope="module")
def shared_grid_runs():
    return scalelaw.validate_runs(synthetic.make_runs(seed=2, shared_batch_grid=True))


@pytest.fixture(scope="module")
def fitted(synthetic_law, shared_grid_runs, synthetic_verification):
    runs = shared_grid_runs
    return {
        "law": (synthetic_law, lambda o: HyperparameterLaw.from_dict(json.loads(o.to_json()))),
        "loss law": (synthetic_law.loss, lambda o: LossLaw.from_dict(json.loads(json.dumps(o.to_dict())))),
        "transfer fit": (
            scalelaw.fit_transfer(runs),
            lambda o: TransferFit.from_dict(json.loads(o.to_json())),
        ),
        "cell optima": (fit_optima(runs, n_boot=40), lambda o: CellOptima.from_dict(json.loads(o.to_json()))),
        "verification": (
            synthetic_verification,
            lambda o: Verification.from_dict(json.loads(o.to_json())),
        ),
    }


@pytest.mark.parametrize("name", PROTOCOL)
@pytest.mark.parametrize("alpha", [0.2, 0.05])
def test_every_fitted_object_follows_the_protocol(fitted, name, alpha):
    obj, reload = fitted[name]
    params, bse, ci = obj.params, obj.bse, obj.conf_int(alpha)
    assert isinstance(params, pd.Series) and isinstance(bse, pd.Series)
    assert list(params.index) == list(bse.index) == list(ci.index) and len(params) >= 1
    assert list(ci.columns) == ["lower", "upper"]
    finite = bse.notna()
    assert finite.any() and (bse[finite] > 0).all()
    assert (ci.loc[finite, "lower"] <= params[finite]).all() and (
        params[finite] <= ci.loc[finite, "upper"]
    ).all()
    summary = obj.summary(alpha)
    assert isinstance(summary, Summary) and isinstance(summary, str)
    assert f"{100 * (1 - alpha):g}% interval" in summary  # the level is printed with the interval
    np.testing.assert_allclose(summary.frame["ci_lower"], ci["lower"])
    np.testing.assert_allclose(summary.frame["ci_upper"], ci["upper"])
    np.testing.assert_allclose(summary.frame["estimate"], params)
    assert "<table" in summary._repr_html_() and summary.title in summary._repr_html_()
    again = reload(obj)
    np.testing.assert_allclose(again.params, params, rtol=1e-12)
    if name == "verification" and alpha != obj.default_alpha:
        # verify.json holds the intervals it was scored at; another level needs the law
        with pytest.raises(scalelaw.InputError, match="carries no law"):
            again.conf_int(alpha)
        return
    np.testing.assert_allclose(again.conf_int(alpha), ci, rtol=1e-9)


def test_the_default_interval_is_the_80_percent_the_product_reports(fitted):
    for obj, _ in fitted.values():
        pd.testing.assert_frame_equal(obj.conf_int(), obj.conf_int(alpha=0.2))
    wider, narrower = (fitted["law"][0].conf_int(a) for a in (0.05, 0.2))
    finite = wider["lower"].notna()
    assert (wider.loc[finite, "lower"] <= narrower.loc[finite, "lower"]).all()
    with pytest.raises(scalelaw.InputError, match="alpha must be in"):
        fitted["law"][0].conf_int(alpha=80)


def test_the_transfer_fit_interval_is_the_t_interval_statsmodels_gives(fitted, shared_grid_runs):
    fit = fitted["transfer fit"][0]
    assert fit.alpha == 0.2 and fit.ci == pytest.approx(tuple(fit.conf_int().loc["exp_N"]))
    with pytest.warns(DeprecationWarning, match="use alpha=1 - c"):
        old = scalelaw.fit_transfer(shared_grid_runs, confidence=0.95)
    assert old.alpha == pytest.approx(0.05) and old.ci == pytest.approx(
        tuple(fit.conf_int(0.05).loc["exp_N"])
    )


def test_hyperparameter_law_is_the_statsmodels_shape(fitted):
    law: HyperparameterLaw = fitted["law"][0]
    assert law.params.index.names == ["law", "term"]
    assert {"lr", "batch_size", "loss"} == set(law.params.index.get_level_values("law"))
    assert law.params[("loss", "alpha")] == pytest.approx(law.loss.alpha)


def test_a_prediction_is_a_results_object_with_a_summary_frame(synthetic_law):
    p = synthetic_law.get_prediction(1e9, 5e10, seq_len=1024)
    frame = p.summary_frame()
    assert list(frame.index) == ["lr", "batch_size", "loss"] and p.alpha == pytest.approx(0.2)
    assert (
        frame.loc["lr", "estimate"] == p.lr
        and (frame.loc["lr", "ci_lower"], frame.loc["lr", "ci_upper"]) == p.lr_interval
    )
    wide = p.summary_frame(alpha=0.05)
    assert wide.loc["lr", "estimate"] == p.lr
    assert (
        wide.loc["lr", "ci_lower"]
        < frame.loc["lr", "ci_lower"]
        < frame.loc["lr", "ci_upper"]
        < wide.loc["lr", "ci_upper"]
    )
    with pytest.warns(DeprecationWarning, match="use alpha=1 - c"):
        old = synthetic_law.predict(1e9, 5e10, seq_len=1024, confidence=0.95)
    assert old.lr_interval == pytest.approx(tuple(wide.loc["lr", ["ci_lower", "ci_upper"]]))


def test_the_cli_takes_alpha_and_still_reads_the_deprecated_confidence(capsys):
    from scalelaw.cli import main

    assert main(["predict", "7e9", "1.4e12", "--preset", "default", "--alpha", "0.05", "--json"]) == 0
    new = json.loads(capsys.readouterr().out)
    assert main(["predict", "7e9", "1.4e12", "--preset", "default", "--confidence", "0.95", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["lr_interval"] == pytest.approx(new["lr_interval"])
    assert new["confidence"] == pytest.approx(0.95) and "--confidence is deprecated" in captured.err


def test_deprecation_warnings_point_at_the_users_line(synthetic_law):
    """Shown under Python's default filters only when attributed to the caller's file."""
    import warnings

    for call in (
        lambda: synthetic_law.predict(1e9, 5e10, confidence=0.9),
        lambda: scalelaw.predict(1e9, 5e10, law=synthetic_law, confidence=0.9),
        lambda: synthetic_law.lr.interval(1e9, 5e10, confidence=0.9),
    ):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            call()
        assert [w.filename for w in caught if w.category is DeprecationWarning] == [__file__]


def test_an_object_fitted_at_another_level_reports_that_level_throughout(shared_grid_runs):
    fit = scalelaw.fit_transfer(shared_grid_runs, alpha=0.05)
    ci = fit.conf_int().loc["exp_N"]
    assert tuple(ci) == pytest.approx(fit.ci)
    assert tuple(fit.summary().frame.loc["exp_N", ["ci_lower", "ci_upper"]]) == pytest.approx(fit.ci)
    assert "95% interval" in fit.summary()
    with pytest.raises(TypeError):  # the old positional confidence cannot be read as alpha
        scalelaw.fit_transfer(shared_grid_runs, 0.95)
    with pytest.raises(TypeError):
        fitted_law = scalelaw.fit(shared_grid_runs, n_boot=5, loss_law=False)
        fitted_law.lr.interval(1e9, 5e10, 0.8)


def test_the_loss_law_answers_a_prediction_table_the_statsmodels_way(synthetic_law):
    loss = synthetic_law.loss
    frame = loss.get_prediction([1e8, 1e9], [1e10, 5e10])
    assert list(frame.columns) == [
        "params",
        "tokens",
        "mean",
        "mean_ci_lower",
        "mean_ci_upper",
        "obs_ci_lower",
        "obs_ci_upper",
    ]
    assert frame["mean"].tolist() == pytest.approx([loss(1e8, 1e10), loss(1e9, 5e10)])
    assert (frame["obs_ci_lower"] <= frame["mean_ci_lower"]).all() and (
        frame["mean_ci_lower"] < frame["mean"]
    ).all()
    assert (frame["mean"] < frame["mean_ci_upper"]).all() and (
        frame["mean_ci_upper"] <= frame["obs_ci_upper"]
    ).all()
    wide = loss.get_prediction(1e9, 5e10, alpha=0.05)
    assert wide["obs_ci_upper"].iloc[0] > frame["obs_ci_upper"].iloc[1]


def test_cell_optima_intervals_are_the_bootstrap_percentiles_of_their_draws(fitted):
    optima: CellOptima = fitted["cell optima"][0]
    assert optima.params.index.names == ["params", "tokens", "quantity"]
    first = optima.table.iloc[0]
    key = (first["params"], first["tokens"])
    assert optima.params[(*key, "lr")] == first["lr_opt"]
    assert optima.params[(*key, "batch_size")] == first["batch_size_opt"]
    ci = optima.conf_int().loc[(*key, "lr")]
    assert (ci["lower"], ci["upper"]) == pytest.approx((first["lr_opt_lo"], first["lr_opt_hi"]))
    lows = np.quantile(optima.draws[0, :, 0], [0.025, 0.975])
    assert tuple(optima.conf_int(0.05).loc[(*key, "lr")]) == pytest.approx(tuple(lows))
    assert f"{len(optima.table)} cells" in optima.summary()


def test_a_verification_reads_the_prediction_it_scored_and_what_was_measured(fitted):
    v: Verification = fitted["verification"][0]
    table = v.coefficients()
    assert table["quantity"].tolist() == ["lr", "batch_size", "loss"]
    assert table["estimate"].tolist()[:2] == [v.prediction.lr, v.prediction.batch_size]
    assert table["measured"].tolist() == [v.best_lr, v.best_batch_size, v.measured_best_loss]
    assert v.summary().startswith(v.verdict()) and "measured best" in v.summary()
    again = Verification.from_dict(json.loads(v.to_json()))
    assert again.verdict() == v.verdict() and again.model_size == v.model_size
    assert again.prediction.to_dict() == v.prediction.to_dict()
    with pytest.raises(scalelaw.InputError, match="not a verification"):
        Verification.from_dict({"width": 3})


def test_arguments_after_the_data_are_keyword_only_and_old_positional_calls_still_work(shared_grid_runs):
    runs = shared_grid_runs
    with pytest.warns(DeprecationWarning, match="pass window, min_points, n_boot by keyword"):
        old = scalelaw.cell_optima(runs, 0.01, 8, 0)
    pd.testing.assert_frame_equal(old, scalelaw.cell_optima(runs, window=0.01, min_points=8, n_boot=0))
    with pytest.raises(TypeError, match="multiple values for argument 'window'"):
        scalelaw.cell_optima(runs, 0.01, window=0.02)
    with pytest.raises(TypeError, match="takes 1 positional"):
        scalelaw.validate_runs(runs, "a", 1, "too many")
