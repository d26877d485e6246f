"""Runs table: schema validation errors, I/O round trips, divergence handling."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

import scalelaw
from scalelaw.runs import RunsTableError, divergence_reason, usable_runs


def small_table() -> pd.DataFrame:
    rows = []
    for i, lr in enumerate([1e-3, 2e-3, 4e-3]):
        for j, bs in enumerate([65536, 131072]):
            rows.append(
                {
                    "run_id": f"r{i}{j}",
                    "params": 10_000_000,
                    "tokens": 1_000_000_000,
                    "lr": lr,
                    "batch_size": bs,
                    "loss": 3.0 + 0.1 * i + 0.01 * j,
                }
            )
    return pd.DataFrame(rows)


def write_csv(tmp_path, table: pd.DataFrame, name="runs.csv"):
    path = tmp_path / name
    table.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_round_trip_keeps_every_value(tmp_path, fmt):
    table = small_table()
    path = scalelaw.write_runs(table, tmp_path / f"runs.{fmt}")
    back = scalelaw.read_runs(path)
    pd.testing.assert_frame_equal(back[table.columns], scalelaw.validate_runs(table)[table.columns])
    assert back["diverged"].dtype == bool and not back["diverged"].any()
    assert [p.name for p in tmp_path.iterdir()] == [f"runs.{fmt}"]  # no temp file left behind
    assert os.stat(path).st_mode & 0o044  # readable by others, not mkstemp's 0600


def test_missing_column_is_named(tmp_path):
    path = write_csv(tmp_path, small_table().drop(columns="lr"))
    with pytest.raises(RunsTableError, match=r"runs\.csv: missing required column\(s\) \['lr'\]"):
        scalelaw.read_runs(path)


def test_non_numeric_value_names_column_line_and_value(tmp_path):
    table = small_table().astype({"lr": object})
    table.loc[2, "lr"] = "fast"
    with pytest.raises(
        RunsTableError,
        match=r"runs\.csv: column 'lr', line 4 \(run_id='r10'\): value 'fast' is not a number",
    ):
        scalelaw.read_runs(write_csv(tmp_path, table))


@pytest.mark.parametrize(
    ("column", "value"), [("params", 0), ("tokens", -5), ("lr", np.inf), ("batch_size", np.nan)]
)
def test_non_positive_or_non_finite_values_are_rejected(column, value):
    table = small_table()
    table.loc[3, column] = value
    with pytest.raises(RunsTableError, match=rf"column '{column}', row 3 \(run_id='r11'\).*positive finite"):
        scalelaw.validate_runs(table)


def test_zero_loss_is_an_error_but_nan_loss_is_a_diverged_run():
    table = small_table()
    table.loc[1, "loss"] = 0.0
    with pytest.raises(RunsTableError, match=r"column 'loss', row 1 .*must be > 0"):
        scalelaw.validate_runs(table)
    table.loc[1, "loss"] = np.nan
    table.loc[2, "loss"] = np.inf
    kept, note = usable_runs(scalelaw.validate_runs(table))
    assert len(kept) == 4
    assert note == "left out 2 of 6 runs as diverged (2 NaN/inf loss)"


def test_duplicate_run_ids_are_named():
    table = small_table()
    table.loc[4, "run_id"] = "r00"
    with pytest.raises(RunsTableError, match=r"column 'run_id' has duplicate values \['r00'\]"):
        scalelaw.validate_runs(table)


def test_cell_with_too_few_learning_rates_is_named():
    table = small_table()
    table = table[table["lr"] < 3e-3]
    with pytest.raises(RunsTableError, match=r"cell \(params=1e\+07, tokens=1e\+09\) has only 2 distinct lr"):
        scalelaw.validate_runs(table)


def test_diverged_flag_must_be_boolean():
    table = small_table().assign(diverged=["no", "yes", "no", "maybe", "no", "no"])
    with pytest.raises(RunsTableError, match=r"column 'diverged', row 3 .*'maybe' is not true/false"):
        scalelaw.validate_runs(table)


def test_blowups_and_flags_are_kept_in_the_table_but_left_out_of_fits():
    table = small_table().assign(diverged=[False, False, False, True, False, False])
    table.loc[5, "loss"] = 9.0  # 3x the cell's best: a blow-up
    runs = scalelaw.validate_runs(table)
    assert list(divergence_reason(runs)) == ["", "", "", "flagged", "", "blowup"]
    kept, note = usable_runs(runs)
    assert len(runs) == 6 and len(kept) == 4
    assert "1 flagged diverged" in note and "1 loss > 1.5x cell best" in note


def test_unknown_format_missing_file_and_garbage(tmp_path):
    with pytest.raises(RunsTableError, match="no such file"):
        scalelaw.read_runs(tmp_path / "absent.csv")
    odd = tmp_path / "runs.txt"
    odd.write_text("x")
    with pytest.raises(RunsTableError, match="cannot tell the format"):
        scalelaw.read_runs(odd)
    bad = tmp_path / "runs.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(RunsTableError, match="not a readable Parquet file"):
        scalelaw.read_runs(bad)


def test_steplaw_importer_converts_units(steplaw_runs):
    runs = steplaw_runs
    assert len(runs) == 1911
    assert runs["batch_size"].min() == 16 * 2048 and runs["batch_size"].max() == 2048 * 2048
    assert runs.groupby(["params", "tokens"]).ngroups == 17
    reason = divergence_reason(runs)
    assert (reason == "blowup").sum() == 181  # all runs with loss > 4 blew up at high lr
    assert runs.loc[reason == "blowup", "loss"].min() > 4.0


def test_steplaw_importer_rejects_other_tables(tmp_path):
    with pytest.raises(RunsTableError, match=r"not a Step Law table: missing column\(s\)"):
        scalelaw.read_runs(write_csv(tmp_path, small_table()), table_format="steplaw")


def test_format_keyword_still_reads_with_a_deprecation_warning(tmp_path):
    path = write_csv(tmp_path, small_table())
    with pytest.warns(DeprecationWarning, match="table_format"):
        old = scalelaw.read_runs(path, format="csv")
    pd.testing.assert_frame_equal(old, scalelaw.read_runs(path, table_format="csv"))
