"""Predictions: presets, units, extrapolation warnings, the default law."""

from __future__ import annotations

import math

import pytest

import scalelaw
from scalelaw.laws import CROSS_RECIPE_SD
from scalelaw.predict import get_law


def test_steplaw_preset_matches_the_published_formula():
    n, d = 7e9, 1.4e12
    p = scalelaw.predict(n, d, law="steplaw", seq_len=4096)
    assert p.lr == pytest.approx(1.79 * n**-0.713 * d**0.307, rel=1e-12)
    assert p.batch_size == pytest.approx(0.58 * d**0.571, rel=1e-12)
    assert p.batch_size_seqs == round(p.batch_size / 4096)
    assert p.law == "steplaw" and p.loss is None
    # the formula publishes no uncertainty of its own: its 80% interval is the spread
    # between labs' recipes alone, exp(+-1.2816 * 0.51) about the formula's value
    factor = math.exp(1.2815516 * CROSS_RECIPE_SD)
    assert p.lr_interval == pytest.approx((p.lr / factor, p.lr * factor), rel=1e-6)
    assert p.batch_size_interval == pytest.approx((p.batch_size / factor, p.batch_size * factor), rel=1e-6)
    assert any("--prior steplaw" in w for w in p.warnings)


def test_deepseek_preset_uses_compute_6nd():
    n, d = 7e9, 1.4e12
    p = scalelaw.predict(n, d, law="deepseek")
    c = 6 * n * d
    assert p.lr == pytest.approx(0.3118 * c**-0.125, rel=1e-12)
    assert p.batch_size == pytest.approx(0.2920 * c**0.3271, rel=1e-12)
    assert p.compute == pytest.approx(c)


def test_default_law_is_named_and_has_intervals():
    p = scalelaw.predict(1e9, 2e10)
    assert p.law.startswith("default")
    assert p.warnings[0].startswith("no law given: using the project's default law")
    assert p.lr_interval[0] < p.lr < p.lr_interval[1]
    assert p.loss_interval[0] < p.loss < p.loss_interval[1]
    assert p.extrapolation == {"N": 1.0, "D": 1.0}


def test_extrapolation_is_measured_and_warned_beyond_10x(synthetic_law):
    inside = synthetic_law.predict(1e8, 6e9)
    assert inside.extrapolation == {"N": 1.0, "D": 1.0}
    assert not any("outside the range" in w for w in inside.warnings)
    near = synthetic_law.predict(3e9, 2e10)  # 10x the largest N: at the limit, no warning
    assert near.extrapolation["N"] == pytest.approx(10.0)
    assert not any("outside the range" in w for w in near.warnings)
    far = synthetic_law.predict(7e9, 1.4e12)
    assert far.extrapolation["N"] == pytest.approx(7e9 / 3e8)
    assert far.extrapolation["D"] == pytest.approx(1.4e12 / 2e10)
    assert sum("outside the range" in w for w in far.warnings) == 2


@pytest.mark.parametrize("bad", [0, -1e9, float("nan"), float("inf")])
def test_bad_queries_are_rejected(bad, synthetic_law):
    with pytest.raises(ValueError, match="model_size must be a positive finite number"):
        scalelaw.predict(bad, 1e10, law=synthetic_law)


def test_unknown_law_names_the_choices():
    with pytest.raises(ValueError, match=r"unknown law 'chinchilla'.*steplaw, deepseek, default"):
        get_law("chinchilla")


def test_prediction_round_trips_to_json_dict(synthetic_law):
    d = synthetic_law.predict(1e9, 1e11).to_dict()
    assert d["batch_size_tokens"] > 0 and d["lr_interval"][0] < d["lr"] < d["lr_interval"][1]
    assert set(d) >= {"lr", "batch_size_seqs", "loss", "law", "warnings", "extrapolation"}


def test_an_undetermined_law_says_so(synthetic_law):
    import dataclasses

    import numpy as np

    wild = dataclasses.replace(synthetic_law.lr, draws=np.asarray(synthetic_law.lr.draws) * [1, 50, 50])
    law = dataclasses.replace(synthetic_law, lr=wild)
    far = scalelaw.predict(7e9, 1.4e12, law=law)
    assert any(w.startswith("the lr is not determined at this target") for w in far.warnings)
    assert np.isfinite(far.lr_interval).all()  # clipped, not overflowing
    near = scalelaw.predict(1e8, 6e9, law=synthetic_law)
    assert not any("not determined" in w for w in near.warnings)


def test_the_stages_import_one_way():
    """laws -> prediction, predict -> laws: no law module imports predict.py, and
    prediction.py imports laws only for type checking (issue #11, part 5)."""
    import ast
    from pathlib import Path

    package = Path(scalelaw.__file__).parent

    def runtime_imports(name: str) -> set[str]:
        tree = ast.parse((package / name).read_text())
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                node.body = []  # type-only imports do not run
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        return found

    assert "scalelaw.predict" not in runtime_imports("laws.py")
    assert not {"scalelaw.laws", "scalelaw.predict"} & runtime_imports("prediction.py")
    assert "scalelaw.laws" in runtime_imports("predict.py")
