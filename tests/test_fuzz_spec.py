"""Property tests of the sweep-spec parser (#15): fed generated bad values in every key
of every table, it either returns a spec whose every run can train or raises SpecError
naming the key; no other exception escapes, and no name leads a write out of runs/."""

from __future__ import annotations

import copy
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import SMALL_SPEC
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scalelaw.exceptions import InputError, SpecError
from scalelaw.proxy.model import ModelConfig
from scalelaw.runspec import LR_RANGE, MAX_SEQ_LEN, MAX_TOKENS, SEED_MAX, RunSpec
from scalelaw.sweep import output_dir
from scalelaw.sweepspec import MAX_SWEEP_RUNS, SPEC_FIELDS, parse_spec, spec_from_dict

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

BASE = tomllib.loads(SMALL_SPEC)
# every (table, key) a spec may hold; "" is the top level
FIELDS = [
    (table, key)
    for table, keys in SPEC_FIELDS.items()
    for key in keys
    if not (table == "" and key in SPEC_FIELDS)
]
# SCALELAW_FUZZ_EXAMPLES=20000 for a long hunt; 300 keeps the file near 10 s
FUZZ = settings(
    max_examples=int(os.environ.get("SCALELAW_FUZZ_EXAMPLES", "300")),
    deadline=None,
    database=None,  # a failure prints its example; nothing is written to the worktree
    suppress_health_check=[HealthCheck.too_slow],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, -1, 2, 3, 15, 16, 64, 512, 4096, 2**31, 2**32, 2**63 - 1, 10**9, 10**13]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1e-300, 1e300, 0.5, 1.0, 1.5, 8e-3, 1e9]),
    st.text(max_size=12),
    st.sampled_from(["", "..", "../x", "/tmp", "gcide", "wsd", "mup", "nan", "1e-3"]),
    st.dates(),
    st.builds(np.float64, st.floats(allow_nan=True, allow_infinity=True)),
    st.builds(np.int64, st.integers(min_value=-(2**63), max_value=2**63 - 1)),
    st.builds(np.float32, st.floats(width=32)),
    st.just(np.bool_(True)),
)
hostile = st.one_of(
    scalars,
    st.lists(scalars, max_size=4),
    st.lists(st.lists(scalars, max_size=3), max_size=3),
    st.dictionaries(st.text(max_size=6), scalars, max_size=2),
    st.builds(np.array, st.lists(st.integers(-(2**20), 2**20), max_size=3)),
    st.builds(np.array, st.lists(st.floats(allow_nan=True), max_size=3)),
    st.tuples(scalars, scalars),
)


def mutate(data: dict, table: str, key: str, value) -> dict:
    data = copy.deepcopy(data)
    if table == "":
        data[key] = value
    else:
        section = data.setdefault(table, {})
        if isinstance(section, dict):
            section[key] = value
    if table == "lr" and key == "values":  # values and center exclude each other
        for other in ("center", "count"):
            data["lr"].pop(other, None)
    if table == "model" and key == "shapes":
        data["model"].pop("widths", None)
        data["model"].pop("depths", None)
    if table == "weight_decay" and key == "values":
        data.get("recipe", {}).pop("weight_decay", None)
    return data


def assert_trainable(spec) -> None:
    """Every run of an accepted spec can be trained: the ranges the trainer, numpy and
    torch accept, a budget of at least one batch, shapes whose models build."""
    assert 1 <= spec.n_runs <= MAX_SWEEP_RUNS
    assert all(math.isfinite(lr) and LR_RANGE[0] <= lr <= LR_RANGE[1] for lr in spec.lrs)
    assert all(isinstance(s, int) and 0 <= s <= SEED_MAX for s in spec.recipe.seeds)
    assert 1 <= spec.recipe.seq_len <= MAX_SEQ_LEN
    assert all(b % spec.recipe.seq_len == 0 for b in spec.batch_sizes)
    assert math.isfinite(spec.recipe.warmup) and spec.recipe.warmup >= 0
    for width, depth in spec.model.shapes:
        ModelConfig(width=width, depth=depth, head_dim=spec.model.head_dim, seq_len=spec.recipe.seq_len)
        for tokens in spec.token_budgets(width, depth):
            assert max(spec.batch_sizes) <= tokens <= MAX_TOKENS
    if spec.n_runs <= 64:
        runs = spec.run_kwargs()
        assert len(runs) == spec.n_runs
        ids = {RunSpec(**kw).run_id for kw in runs}  # each builds, and each is its own run
        assert len(ids) == len(runs)
        assert all(kw["warmup"] <= kw["tokens"] and kw["tokens"] >= kw["batch_size"] for kw in runs)


def named(err: SpecError, *words: str) -> bool:
    text = str(err)
    return text.startswith("spec.toml: ") and any(w and w in text for w in words)


@FUZZ
@given(field=st.sampled_from(FIELDS), value=hostile)
def test_one_bad_value_in_any_key_is_trained_or_refused_by_name(field, value):
    table, key = field
    try:
        spec = spec_from_dict(mutate(BASE, table, key, value), "spec.toml")
    except SpecError as err:
        # the field itself, or the other field of the combination it broke
        assert named(err, key, f"{table}." if table else ""), err
        if re.search(
            rf"field {re.escape(table + '.' if table else '')}{re.escape(key)}: must be (int|float|str)",
            str(err),
        ):
            assert "got " in str(err)
        return
    assert_trainable(spec)


@FUZZ
@given(changes=st.lists(st.tuples(st.sampled_from(FIELDS), hostile), min_size=2, max_size=4))
def test_several_bad_values_together_are_trained_or_refused(changes):
    data = BASE
    for (table, key), value in changes:
        data = mutate(data, table, key, value)
    try:
        spec = spec_from_dict(data, "spec.toml")
    except SpecError as err:
        assert str(err).startswith("spec.toml: ")
        return
    assert_trainable(spec)


@FUZZ
@given(
    table=st.sampled_from(sorted(SPEC_FIELDS)),
    key=st.one_of(st.text(max_size=10), st.integers(), st.none()),
    value=scalars,
)
def test_an_unknown_key_is_refused_by_name(table, key, value):
    known = SPEC_FIELDS[table]
    if key in known or (table == "" and key in SPEC_FIELDS):
        return
    data = copy.deepcopy(BASE)
    (data if table == "" else data.setdefault(table, {}))[key] = value
    with pytest.raises(SpecError, match="is not a known field") as err:
        spec_from_dict(data, "spec.toml")
    assert f"field {table + '.' if table else ''}{key}" in str(err.value)


@FUZZ
@given(table=st.sampled_from([t for t in SPEC_FIELDS if t]), value=hostile)
def test_a_section_replaced_by_anything_is_trained_or_refused(table, value):
    data = copy.deepcopy(BASE)
    data[table] = value
    try:
        spec = spec_from_dict(data, "spec.toml")
    except SpecError as err:
        assert str(err).startswith("spec.toml: ")
        return
    assert_trainable(spec)


@FUZZ
@given(data=hostile)
def test_a_spec_that_is_not_a_mapping_is_refused(data):
    with pytest.raises(SpecError, match=r"spec\.toml: "):
        spec_from_dict(data, "spec.toml")


@FUZZ
@given(text=st.one_of(st.text(max_size=200), st.binary(max_size=50)))
def test_any_text_is_parsed_or_refused(text):
    try:
        spec = parse_spec(text, source="spec.toml")
    except SpecError:
        return
    assert_trainable(spec)


lines = st.sampled_from(SMALL_SPEC.strip().splitlines())


@FUZZ
@given(
    kept=st.lists(lines, max_size=25),
    extra=st.lists(
        st.sampled_from(
            [
                "count = 99999",
                "center = 1e-9",
                "seeds = [-3]",
                "warmup = 1e6",
                "[weight_decay]",
                "values = [0.5, 0.5]",
                'dataset = "../nowhere"',
            ]
        ),
        max_size=3,
    ),
)
def test_specs_built_from_shuffled_lines_are_parsed_or_refused(kept, extra):
    try:
        spec = parse_spec("\n".join(kept + extra), source="spec.toml")
    except SpecError:
        return
    assert_trainable(spec)


@FUZZ
@given(
    name=st.one_of(
        st.text(max_size=120), st.sampled_from(["..", ".", "../..", "a/../..", "/etc", "~", "a\\..", "CON"])
    )
)
def test_no_name_writes_outside_runs(name, tmp_path_factory):
    data = copy.deepcopy(BASE)
    data["name"] = name
    try:
        spec = spec_from_dict(data, "spec.toml")
    except SpecError as err:
        assert "field name: must be one path component" in str(err)
        return
    runs = tmp_path_factory.getbasetemp() / "runs"
    try:
        root = output_dir(spec, runs_dir=runs)
    except InputError:
        return
    assert root.resolve().parent == runs.resolve() and Path(root).name == name
