"""Optima on a grid edge are censored data: one-sided or undetermined, never false certainty."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

import scalelaw
from scalelaw import synthetic
from scalelaw.fit import _censoring, _degenerate

TARGET = (7e9, 1.4e12)


@pytest.fixture(scope="module")
def censored_runs() -> pd.DataFrame:
    """Every run below its cell's true optimal batch size dropped: each cell's best run
    sits on the smallest batch it swept, a different value in each cell."""
    runs = synthetic.make_runs(seed=3)
    keep = runs["batch_size"] >= synthetic.true_batch(runs["params"], runs["tokens"])
    return scalelaw.validate_runs(runs[keep].reset_index(drop=True))


@pytest.fixture(scope="module")
def one_edge_runs() -> pd.DataFrame:
    """A shared batch grid cut so that every cell's best run is at 741455 tokens, the
    smallest batch swept (as in a demo sweep whose best runs all sat at 128 tokens)."""
    runs = synthetic.make_runs(seed=3, shared_batch_grid=True, batch_steps=range(-4, 9))
    return scalelaw.validate_runs(runs[runs["batch_size"].isin([741455, 1048576, 1482910])])


@pytest.mark.parametrize("method", ["optima", "surface"])
def test_censored_batch_law_is_an_upper_bound(censored_runs, method):
    law = scalelaw.fit(censored_runs, method=method, n_boot=20, loss_law=False)
    assert (law.optima["batch_edge"] == "low").all() and (law.optima["lr_edge"] == "").all()
    assert law.batch_size.bound == "upper" and law.lr.bound is None and law.lr.determined
    assert "12 of 12 cells have their best run at the smallest batch size swept" in law.batch_size.caveat
    p = law.predict(*TARGET)
    low, high = p.batch_size_interval
    assert low == 0.0 and high >= p.batch_size > 0  # one-sided, open at 0: never zero width
    assert high > 1.1 * p.batch_size  # the bound carries the law's spread, not the point value
    assert high >= synthetic.true_batch(*TARGET)  # and the truth lies under it
    assert p.batch_size_bound == "upper" and not p.batch_size_determined
    assert p.lr_bound is None and p.lr_determined
    table = p.table()
    assert re.search(rf"batch size \(tokens\)\s+≤ {re.escape(f'{high:.3g}')}\s+80% one-sided", table)
    assert re.search(rf"batch size \(seqs\)\s+≤ {int(high // 2048)}\b", table)
    assert any(w.startswith("the batch size is only bounded: the optimum is at most") for w in p.warnings)
    assert "[UPPER BOUND]" in law.summary()


def test_a_degenerate_fit_is_not_reported_as_certain(one_edge_runs):
    law = scalelaw.fit(one_edge_runs, method="optima", n_boot=20, loss_law=False)
    assert (law.optima["batch_size_opt"] == 741455).all()
    # statsmodels' own standard errors are ~1e-14: the false certainty of the issue.
    assert max(law.batch_size.se) < 1e-10
    assert not law.batch_size.determined and law.batch_size.bound == "upper"
    assert "every cell's optimum is 7.415e+05 tokens" in law.batch_size.caveat
    coef = law.coefficients().query("law == 'batch_size'")
    assert coef[["std_err", "ci_lower", "ci_upper"]].isna().all().all()
    assert law.coefficients().query("law == 'lr'")["std_err"].gt(0).all()  # lr law unaffected
    summary = law.summary()
    assert re.search(r"batch_size exp_D .*n/a\s+not determined", summary)
    assert "6e-14" not in summary and "e-14" not in summary
    p = law.predict(*TARGET)
    assert p.batch_size_interval == (0.0, pytest.approx(741455, rel=1e-9))
    assert "≤ 7.41e+05" in p.table() and "[7.41e+05, 7.41e+05]" not in p.table()
    d = p.to_dict()
    json.dumps(d, allow_nan=False)  # valid JSON
    assert d["batch_size_bound"] == "upper" and d["batch_size_determined"] is False
    assert d["batch_size_interval"] == [0.0, pytest.approx(741455, rel=1e-9)]


def test_the_bound_survives_a_json_round_trip(one_edge_runs, tmp_path):
    law = scalelaw.fit(one_edge_runs, method="optima", n_boot=10, loss_law=False)
    law.to_json(tmp_path / "law.json")
    back = scalelaw.load_law(tmp_path / "law.json")
    assert (back.batch_size.bound, back.batch_size.determined) == ("upper", False)
    assert back.batch_size.caveat == law.batch_size.caveat
    assert back.predict(*TARGET) == law.predict(*TARGET)


def test_optima_censored_on_both_edges_are_not_determined():
    optima = pd.DataFrame({"batch_edge": ["low"] * 5 + ["high"] * 3 + [""] * 2, "batch_size_opt": 1.0})
    bound, determined, caveat = _censoring(optima, "batch_edge", 3, False, "batch_size_opt")
    assert bound is None and not determined
    assert "5 of 10 cells" in caveat and "3 at the largest, 2 bracketed" in caveat
    # Few censored cells among many bracketed ones: still a two-sided law.
    optima = pd.DataFrame({"batch_edge": ["low"] * 2 + [""] * 8, "batch_size_opt": 1.0})
    assert _censoring(optima, "batch_edge", 3, False, "batch_size_opt") == (None, True, "")
    # Half the cells at the top of the lr grid: a lower bound.
    optima = pd.DataFrame({"lr_edge": ["high"] * 4 + [""] * 4, "lr_opt": 1.0})
    bound, determined, caveat = _censoring(optima, "lr_edge", 3, False, "lr_opt")
    assert (bound, determined) == ("lower", True) and "extend the lr grid upward" in caveat


def test_degenerate_detection():
    params = np.array([11.5, 0.03])
    assert _degenerate(np.full(6, 2.0), params, None, np.zeros((0, 2)))
    assert _degenerate(np.arange(6.0), params, np.array([3e-14, 1e-15]), np.zeros((0, 2)))
    assert _degenerate(None, params, None, np.tile(params, (20, 1)))
    assert not _degenerate(np.arange(6.0), params, np.array([0.8, 0.03]), np.zeros((0, 2)))


def test_an_undetermined_law_without_a_bound_reports_an_open_interval(synthetic_law):
    import dataclasses

    law = dataclasses.replace(
        synthetic_law, lr=dataclasses.replace(synthetic_law.lr, determined=False, caveat="test")
    )
    p = law.predict(*TARGET)
    assert p.lr_interval == (0.0, float("inf")) and not p.lr_determined
    assert re.search(r"peak learning rate\s+not determined\s+80% unbounded", p.table())
    d = p.to_dict()
    assert d["lr_interval"] == [0.0, None] and d["lr"] == pytest.approx(p.lr)
    json.dumps(d, allow_nan=False)


def test_an_interval_wider_than_100x_leads_with_not_determined(synthetic_law):
    import dataclasses

    wild = dataclasses.replace(synthetic_law.lr, draws=np.asarray(synthetic_law.lr.draws) * [1, 50, 50])
    far = scalelaw.predict(*TARGET, law=dataclasses.replace(synthetic_law, lr=wild))
    low, high = far.lr_interval
    assert high / low > 100 and not far.lr_determined and far.lr_bound is None
    row = next(line for line in far.table().splitlines() if "peak learning rate" in line)
    assert re.match(r"\s+peak learning rate\s+not determined\s+80% \[", row)
    assert f"spans {high / low:.3g}x" in row
    d = far.to_dict()
    assert d["lr_determined"] is False and d["lr"] == pytest.approx(far.lr)  # the number is kept
    near = synthetic_law.predict(1e8, 6e9)
    assert near.lr_determined and near.batch_size_determined and near.loss_determined
    row = next(line for line in near.table().splitlines() if "peak learning rate" in line)
    assert re.match(rf"\s+peak learning rate\s+{re.escape(f'{near.lr:.3g}')}\s+80% \[", row)
