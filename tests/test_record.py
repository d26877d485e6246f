"""One run record: the runs table, the result store and the trainers share its columns
and its identity, and the identity does not drift (resumed sweeps depend on it)."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest

from scalelaw.record import COLUMNS, REQUIRED_COLUMNS, RESULT_KEYS, RunRecord, legacy_run_id_of, run_id_of
from scalelaw.runs import validate_runs
from scalelaw.runspec import RunSpec
from scalelaw.store import RunStore


def test_the_run_id_is_the_hash_of_the_full_spec_and_has_not_changed():
    spec = RunSpec(width=64, depth=2, lr=1e-3, batch_size=128, tokens=8192)
    assert spec.run_id == run_id_of(dataclasses.asdict(spec))
    # Pinned: a different hash would make every resumed sweep retrain its finished runs.
    assert spec.run_id == "b8e932d36de6d5f1"
    # The id of scalelaw <= 0.2.0 (a hash of repr()), by which RunStore recognises older run directories.
    assert legacy_run_id_of(dataclasses.asdict(spec)) == "2726191720f357cf"
    assert RunSpec(**{**spec.__dict__, "lr": 2e-3}).run_id != spec.run_id


def test_the_record_owns_the_columns_every_stage_uses():
    assert set(REQUIRED_COLUMNS) <= set(COLUMNS) and set(RESULT_KEYS) <= set(COLUMNS)
    row = RunRecord("a", 1000, 8192, 1e-3, 128, 2.5).to_row()
    assert tuple(row) == COLUMNS and row["diverged"] is False
    table = validate_runs(
        pd.DataFrame(
            [
                RunRecord(f"r{i}", 1000, 8192, lr, 128, 2.5 + lr).to_row()
                for i, lr in enumerate((1e-3, 2e-3, 4e-3))
            ]
        )
    )
    assert list(table.columns[: len(COLUMNS)]) == list(COLUMNS)


def test_a_result_missing_a_record_key_is_not_a_finished_run(tmp_path):
    store = RunStore(tmp_path)
    row = RunRecord("x", 1000, 8192, 1e-3, 128, 2.5).to_row()
    store.prepare("x", {"width": 8})
    partial = {k: v for k, v in row.items() if k != "diverged"}
    (store.run_dir("x") / "result.json").write_text(json.dumps(partial))  # as an older writer left it
    assert store.status("x").state == "corrupt"
    with pytest.raises(ValueError, match="refusing to write a result that has no 'diverged'"):
        store.write_result("x", partial)  # nor does the store write one
    store.write_result("x", row)
    assert store.status("x").state == "finished"


def test_a_sweep_spec_that_says_nothing_trains_runspec_defaults():
    """Sweep defaults are RunSpec's, defined once: a spec naming only the grid gives runs
    equal to RunSpec built from the same grid point alone."""
    from scalelaw.sweepspec import parse_spec

    spec = parse_spec(
        "[model]\nwidths = [64]\nbase_width = 128\n[lr]\ncenter = 1e-3\ncount = 1\n"
        "[batch]\nsizes = [256]\n[tokens]\nbudgets = [8192]\n",
        source="minimal",
    )
    (run,) = spec.run_specs()
    alone = RunSpec(width=64, depth=2, lr=1e-3, batch_size=256, tokens=8192)
    assert run.warmup == alone.warmup_tokens  # the spec writes the default warmup out in tokens
    assert run == dataclasses.replace(alone, warmup=alone.warmup_tokens)
