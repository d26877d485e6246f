"""Property tests (Hypothesis) of the entry points that take user values (issue #15): the
runs-table reader and validator, the law-file loader, ``predict`` / ``law.predict``,
``plan``, ``to_config`` and the command line.

Each is fed generated bad values (NaN, inf, huge, negative, zero, wrong types, numpy
scalars, bools, text) mixed with good ones, and must either return a finite, validated
result or raise scalelaw's own error (the ``ScalelawError`` family) naming the field.
Any other exception fails the property.
"""

from __future__ import annotations

import copy
import json
import math
import string
from importlib import resources

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import scalelaw
from scalelaw.cli import main
from scalelaw.exceptions import InputError, LawFileError, RunsTableError, ScalelawError
from scalelaw.validate import MAX_PARAMS, MAX_TOKENS

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# ---------------------------------------------------------------------------------------
# Hostile values


def _numpy_scalars() -> st.SearchStrategy:
    floats = st.builds(
        lambda kind, x: kind(x),
        st.sampled_from([np.float16, np.float32, np.float64]),
        st.floats(allow_nan=True, allow_infinity=True, width=16),
    )
    ints = st.builds(
        lambda kind, x: kind(x),
        st.sampled_from([np.int8, np.int32, np.int64]),
        st.integers(min_value=-100, max_value=100),
    )
    return st.one_of(floats, ints, st.builds(np.uint64, st.integers(0, 2**64 - 1)))


HOSTILE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 0.4, 1e19, -1e19, 10**30, 2**63, 1e308, 5e-324, -0.0]),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.none(),
    st.text(max_size=8),
    st.sampled_from(["7e9", "nan", "inf", "1e19", "", " ", "7B", "-3"]),
    _numpy_scalars(),
    st.just(np.bool_(True)),
    st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=3),
    st.dictionaries(st.sampled_from(["N", "D", "x"]), st.floats(), max_size=2),
)


def _is_finite_positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


# ---------------------------------------------------------------------------------------
# The runs table: validator and reader


def _small_table() -> pd.DataFrame:
    """Two cells of 3 lrs x 2 batch sizes: a valid table for validate_runs."""
    rows = []
    for n, d in ((20_000_000, 2_000_000_000), (50_000_000, 6_000_000_000)):
        for lr in (1e-3, 2e-3, 4e-3):
            for b in (65_536, 131_072):
                rows.append(
                    {
                        "run_id": f"{n}-{lr}-{b}",
                        "params": n,
                        "tokens": d,
                        "lr": lr,
                        "batch_size": b,
                        "loss": 3.0 + lr,
                        "seq_len": 2048,
                        "width": 256,
                        "weight_decay": 0.1,
                        "diverged": False,
                    }
                )
    return pd.DataFrame(rows)


COLUMNS = ["params", "tokens", "lr", "batch_size", "loss", "seq_len", "width", "weight_decay", "diverged"]


def _check_validated(table: pd.DataFrame) -> None:
    """What a validated table promises: integer counts within the bounds, finite positive lr."""
    for col, high in (("params", MAX_PARAMS), ("tokens", MAX_TOKENS)):
        assert table[col].dtype == np.int64 and (table[col] >= 1).all() and (table[col] <= high).all()
    assert table["batch_size"].dtype == np.int64 and (table["batch_size"] >= 1).all()
    assert np.isfinite(table["lr"]).all() and (table["lr"] > 0).all()
    assert (table["loss"].isna() | ~np.isfinite(table["loss"]) | (table["loss"] > 0)).all()
    assert table["diverged"].dtype == bool


@FAST
@given(column=st.sampled_from(COLUMNS), row=st.integers(0, 11), value=HOSTILE)
def test_validate_runs_returns_a_valid_table_or_names_the_column(column, row, value):
    table = _small_table().astype({column: object})
    table.at[row, column] = value
    try:
        out = scalelaw.validate_runs(table, min_lrs=1)
    except RunsTableError as err:
        assert repr(column) in str(err), str(err)
        return
    _check_validated(out)


@FAST
@given(column=st.sampled_from(COLUMNS), row=st.integers(0, 11), value=HOSTILE)
def test_read_runs_from_a_csv_returns_a_valid_table_or_names_file_and_column(column, row, value, tmp_path):
    table = _small_table().astype({column: object})
    table.at[row, column] = value
    path = tmp_path / "runs.csv"
    table.to_csv(path, index=False)
    try:
        out = scalelaw.read_runs(path)
    except RunsTableError as err:
        assert str(path) in str(err), str(err)
        # a value with a line break or a comma reshapes the CSV itself: another column may be named
        assert repr(column) in str(err) or "column" in str(err) or "CSV" in str(err), str(err)
        return
    _check_validated(out)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=string.printable + "éß\x00", max_size=200))
def test_read_runs_of_arbitrary_text_is_a_table_or_a_runs_table_error(text, tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        out = scalelaw.read_runs(path)
    except RunsTableError as err:
        assert str(path) in str(err)
        return
    _check_validated(out)


# ---------------------------------------------------------------------------------------
# The law-file loader


def _default_law_dict() -> dict:
    with resources.as_file(resources.files("scalelaw") / "presets" / "default.json") as p:
        return json.loads(p.read_text())


BASE_LAW = _default_law_dict()
# Paths into a law file; the first key is what an error must name.
LAW_PATHS = [
    ("name",),
    ("version",),
    ("lr",),
    ("lr", "log_coef"),
    ("lr", "exponents"),
    ("lr", "exponents", "N"),
    ("lr", "resid_sd"),
    ("lr", "se"),
    ("lr", "draws"),
    ("lr", "draws", 0),
    ("lr", "draws", 0, 1),
    ("lr", "bound"),
    ("lr", "determined"),
    ("lr", "calibration"),
    ("batch_size", "exponents", "D"),
    ("batch_size", "recipe_sd"),
    ("loss",),
    ("loss", "E"),
    ("loss", "alpha"),
    ("loss", "beta"),
    ("loss", "n_points"),
    ("loss", "draws", 1, 3),
    ("fit_range",),
    ("fit_range", "N"),
    ("fit_range", "D", 1),
    ("notes",),
    ("settings",),
    ("settings", "average_weight"),
    ("settings", "calibration", "lr"),
    ("optima",),
    ("optima", 0),
    ("optima", 0, "lr_opt"),
    ("optima", 2, "params"),
    ("optima", 1, "bracketed"),
    ("card",),
    ("card", "beta1"),
    ("card", "seq_len"),
    ("card", "n_range"),
    ("card", "notes"),
]


def _put(d: dict, path: tuple, value) -> dict:
    d = copy.deepcopy(d)
    target = d
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return d


def _check_prediction(p) -> None:
    """A prediction's answers are finite positive numbers and its JSON is strict."""
    assert _is_finite_positive(p.lr) and _is_finite_positive(p.batch_size) and p.batch_size_seqs >= 1
    assert p.loss is None or _is_finite_positive(p.loss)
    json.dumps(p.to_dict(), allow_nan=False)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(LAW_PATHS), value=HOSTILE)
def test_load_law_gives_a_usable_law_or_names_file_and_key(path, value, tmp_path):
    file = tmp_path / "law.json"
    d = _put(BASE_LAW, path, value)
    file.write_text(json.dumps(d, allow_nan=True, default=_plain))
    try:
        law = scalelaw.load_law(file)
    except LawFileError as err:
        assert str(file) in str(err), str(err)
        assert str(path[0]) in str(err), (path, str(err))
        return
    try:
        p = law.predict(7e9, 1.4e12)
    except ScalelawError as err:  # a valid law may still be refused at a target it overflows at
        assert "beyond the range of floating-point numbers" in str(err), str(err)
        return
    _check_prediction(p)
    str(law.summary())


def _plain(value):
    """JSON for the numpy scalars HOSTILE makes (a hand-edited file holds plain numbers)."""
    return value.item() if isinstance(value, np.generic) else str(value)


# ---------------------------------------------------------------------------------------
# predict, law.predict, plan, to_config

GOOD_SIZE = st.one_of(
    st.floats(min_value=1e6, max_value=1e13),
    st.integers(min_value=10**6, max_value=10**13),
    st.builds(np.float32, st.floats(min_value=1e6, max_value=999999995904.0, width=32)),
    st.builds(np.int64, st.integers(min_value=10**6, max_value=10**13)),
)
SIZE = st.one_of(GOOD_SIZE, HOSTILE)
SEQ = st.one_of(st.sampled_from([2048, np.int64(4096), 1, 10**8]), HOSTILE)
ALPHA = st.one_of(st.sampled_from([0.2, np.float32(0.1), 0.5]), HOSTILE)


@settings(max_examples=150, deadline=None)
@given(
    law=st.sampled_from(["steplaw", "deepseek", "default"]),
    model_size=SIZE,
    tokens=SIZE,
    seq_len=SEQ,
    alpha=ALPHA,
)
def test_predict_is_finite_or_names_the_argument(law, model_size, tokens, seq_len, alpha):
    try:
        p = scalelaw.predict(model_size, tokens, law=law, seq_len=seq_len, alpha=alpha)
    except InputError as err:
        assert any(name in str(err) for name in ("model_size", "tokens", "seq_len", "alpha")), str(err)
        return
    _check_prediction(p)
    assert "nan" not in p.table().lower().replace("nans/token", "") and "inf " not in p.table()


@FAST
@given(model_size=SIZE, tokens=SIZE)
def test_law_predict_agrees_with_predict_or_refuses_alike(model_size, tokens):
    law = scalelaw.get_law("steplaw")
    outcomes = []
    for call in (
        lambda: law.predict(model_size, tokens),
        lambda: scalelaw.predict(model_size, tokens, law=law),
    ):
        try:
            outcomes.append(call().lr)
        except InputError as err:
            outcomes.append(type(err))
    assert outcomes[0] == outcomes[1]


@FAST
@given(
    compute=st.one_of(st.floats(min_value=1e15, max_value=1e30), HOSTILE), ratio=st.one_of(st.none(), HOSTILE)
)
def test_plan_is_finite_or_names_the_argument(compute, ratio):
    try:
        result = scalelaw.plan(compute, "default", tokens_per_param=ratio)
    except InputError as err:
        assert "compute" in str(err) or "tokens_per_param" in str(err), str(err)
        return
    assert _is_finite_positive(result.model_size) and _is_finite_positive(result.tokens)
    _check_prediction(result.prediction)
    json.loads(result.to_json())


@FAST
@given(gpus=st.one_of(st.integers(1, 64), HOSTILE), micro=st.one_of(st.none(), st.integers(1, 16), HOSTILE))
def test_to_config_writes_a_config_or_names_the_argument(gpus, micro):
    p = scalelaw.predict(7e9, 1.4e12, law="steplaw")
    try:
        config = p.to_config("nanogpt", gpus=gpus, micro_batch=micro)
    except InputError as err:
        assert "gpus" in str(err) or "micro_batch" in str(err), str(err)
        return
    assert config.split.tokens >= 1 and "nan" not in config.lower().replace("nanogpt", "")


# ---------------------------------------------------------------------------------------
# The command line: never a traceback

WORD = st.one_of(
    st.sampled_from(["7e9", "1.4T", "0", "-1", "nan", "inf", "1e19", "7B", "abc", "1e400", "0.5", ""]),
    st.text(alphabet=string.ascii_letters + string.digits + ".,_+e ", max_size=6),
)


@pytest.mark.parametrize("command", ["predict", "plan"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    words=st.lists(WORD, min_size=1, max_size=3), option=st.sampled_from(["--seq-len", "--alpha", "--preset"])
)
def test_the_command_line_answers_with_exit_0_or_one_error_line(command, words, option, capsys):
    if command == "predict":
        argv = ["predict", *words[:2], option, words[-1]]
    else:
        argv = ["plan", "--compute", words[0], option, words[-1]]
    code = main(argv)
    captured = capsys.readouterr()
    assert code in (0, 2), argv
    if code == 2:
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("scalelaw"), lines
    else:
        assert "nan" not in captured.out.lower().split("warning")[0]
