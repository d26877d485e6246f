"""The outlier screen (#15): one mistyped row must not move a law, and is named.

Typo'd tables are built from the shipped ones. Tolerances: ``fit`` leaves a flagged row
out, so its law is exactly the law of the table without that row; against the clean
table's law the tightest fair tolerance is what leaving out one good run costs. On
``data/example_runs.csv`` at the target below, leaving out any one of each cell's two
best runs moves lr* by at most 8.5%, B* by 7.1% and the predicted loss by 0.17%
(measured), hence 10% and 0.5%. The CPU reference tables are far more fragile (one
run less moves their extrapolated B* up to 9x: 8 cells of single-seed runs), so there
the test is that the screened law is the law without the bad row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import scalelaw
from scalelaw.exceptions import InputError, RunsTableError
from scalelaw.laws import load_law
from scalelaw.optima import iter_cells
from scalelaw.outliers import screen_runs
from scalelaw.runs import divergence_reason, usable_runs

DATA = Path(__file__).resolve().parents[1] / "data"
SHIPPED = ["example_runs.csv", "reference_mup.parquet", "reference_sp.parquet", "recipe_b_mup.parquet"]
FAST = {"n_boot": 0, "calibrate": False}  # point predictions do not depend on either
TARGET = (1.2e9, 6e10)  # 4x the example table's largest N, 3x its largest D
LR_TOL, BATCH_TOL, LOSS_TOL = 0.10, 0.10, 0.005  # module docstring


@pytest.fixture(scope="module")
def example():
    return scalelaw.read_runs(DATA / "example_runs.csv")


@pytest.fixture(scope="module")
def mup():
    return scalelaw.read_runs(DATA / "reference_mup.parquet")


def predicted(law) -> np.ndarray:
    p = law.predict(*TARGET)
    return np.array([p.lr, p.batch_size, p.loss])


@pytest.fixture(scope="module")
def clean_prediction(example):
    return predicted(scalelaw.fit(example, **FAST))


_dropped: dict[int, np.ndarray] = {}


def without_row(table: pd.DataFrame, row: int) -> np.ndarray:
    """The prediction of the law fitted without ``row`` (cached: a fit a row)."""
    if row not in _dropped:
        _dropped[row] = predicted(scalelaw.fit(table.drop(index=row), **FAST))
    return _dropped[row]


def best_runs(table: pd.DataFrame, rank: int = 0) -> list[int]:
    """Each cell's ``rank``-th best run (0: the best), in cell order."""
    return [int(cell.sort_values("loss").index[rank]) for _, cell in iter_cells(table)]


def typo(table: pd.DataFrame, row: int, column: str, factor: float) -> pd.DataFrame:
    """``column`` of ``row`` times ``factor``; a count (batch size) stays a whole number, as
    a slip of the keyboard leaves it (2048 -> 20), since a fraction is refused on reading."""
    out = table.copy()
    out[column] = out[column].astype(float)
    value = out.loc[row, column] * factor
    out.loc[row, column] = max(1, round(value)) if column == "batch_size" else value
    return out


def move_to_other_cell(table: pd.DataFrame, row: int, column: str) -> pd.DataFrame:
    """``column`` (params or tokens) of ``row`` set to the next smaller value swept."""
    values = np.sort(table[column].unique())
    smaller = values[values < table.loc[row, column]]
    out = table.copy()
    out.loc[row, column] = smaller[-1] if len(smaller) else values[1]
    return out


def assert_close(got: np.ndarray, want: np.ndarray) -> None:
    lr, batch, loss = np.abs(np.log(got / want))
    assert lr <= LR_TOL and batch <= BATCH_TOL and loss <= LOSS_TOL, (got, want)


def named(law, table: pd.DataFrame, row: int) -> bool:
    run_id = str(table.loc[row, "run_id"])
    listed = any(o["row"] == row and o["run_id"] == run_id for o in law.settings["outliers"])
    noted = any(run_id in note and f"row {row}," in note for note in law.notes)
    return listed and noted


# -- clean tables are left alone -------------------------------------------------------


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_tables_screen_out_no_run(name):
    table = scalelaw.read_runs(DATA / name)
    assert screen_runs(table) == []
    # nor after any near-best loss is raised a little (a harmless typo next to others)
    for row in best_runs(table)[:4]:
        assert screen_runs(typo(table, row, "loss", 1.1)) == []


@pytest.mark.parametrize("factor", [1.03, 1.05, 1.1, 1.3])
def test_a_loss_typed_too_high_gets_no_neighbour_blamed(mup, factor):
    """Raising a cell's best loss makes its neighbours look low by comparison; in
    reference_mup the corner run next to one such best (row 124 beside row 123) did."""
    for row in best_runs(mup) + best_runs(mup, 1):
        assert screen_runs(typo(mup, row, "loss", factor)) == [], row


def test_steplaw_table_screens_out_no_run(steplaw_runs):
    assert screen_runs(steplaw_runs) == []


def test_a_clean_fit_names_no_outlier(example):
    law = scalelaw.fit(example, **FAST)
    assert law.settings["outliers"] == []
    assert not any("outlier" in note for note in law.notes)


# -- the example -----------------------------------------------------------------


def test_a_loss_typed_0_41_for_4_11_is_left_out_and_named(example, clean_prediction):
    row = int((example["loss"] - 4.11).abs().idxmin())  # 4.10997: its cell's best run
    bad = example.copy()
    bad.loc[row, "loss"] = 0.41
    law = scalelaw.fit(bad, **FAST)
    assert named(law, bad, row)
    [outlier] = law.settings["outliers"]
    assert outlier["reason"] == "low" and outlier["loss"] == 0.41 and outlier["expected"] > 4.0
    assert not any("diverged" in note for note in law.notes)  # 29 good runs were "diverged"
    np.testing.assert_allclose(predicted(law), without_row(example, row), rtol=1e-9)
    assert_close(predicted(law), clean_prediction)
    assert law.loss.alpha > 0.2 and law.loss.beta > 0.2  # was 1e-10 / N^0.000


def test_one_low_loss_no_longer_makes_good_runs_diverged(example):
    row = best_runs(example)[0]
    bad = example.copy()
    bad.loc[row, "loss"] = 0.41
    reason = divergence_reason(scalelaw.validate_runs(bad))
    assert (reason == "").all()
    assert usable_runs(bad)[1] == ""


def test_kept_the_loss_law_still_shrugs_off_the_bad_cell(example, clean_prediction):
    row = best_runs(example)[0]
    bad = example.copy()
    bad.loc[row, "loss"] = 0.41
    law = scalelaw.fit(bad, outliers="keep", **FAST)
    assert law.settings.get("outliers") is None
    assert abs(np.log(predicted(law)[2] / clean_prediction[2])) < 0.01  # was 31% off


def test_refuse_names_run_row_and_value(example):
    row = best_runs(example)[3]
    with pytest.raises(RunsTableError) as err:
        scalelaw.fit(typo(example, row, "lr", 100.0), outliers="refuse", **FAST)
    message = str(err.value)
    assert str(example.loc[row, "run_id"]) in message and f"row {row}," in message
    assert f"lr {example.loc[row, 'lr'] * 100:.4g}" in message


def test_the_command_line_leaves_out_refuses_or_keeps(example, tmp_path, capsys):
    """``scalelaw fit --outliers``: the default names the run in its output; refuse exits
    2 naming it; keep fits the table as it is."""
    from scalelaw.cli import main

    row = best_runs(example)[3]
    path = tmp_path / "runs.csv"
    typo(example, row, "lr", 100.0).to_csv(path, index=False)
    run_id = str(example.loc[row, "run_id"])
    base = ["fit", str(path), "--n-boot", "0"]
    assert main(base) == 0
    assert run_id in capsys.readouterr().out
    assert main([*base, "--outliers", "refuse"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("scalelaw fit: error: ") and run_id in err and f"row {row}," in err
    assert main([*base, "--outliers", "keep"]) == 0
    assert run_id not in capsys.readouterr().out
    assert main([*base, "--outliers", "drop"]) == 2


def test_outliers_option_is_checked(example):
    with pytest.raises(InputError, match="outliers must be one of"):
        scalelaw.fit(example, outliers="drop", **FAST)


# -- single typos on a shipped table: end to end ----------------------------------------

TYPOS = [
    ("loss", 0.1),
    ("loss", 0.5),
    ("loss", 0.9),
    ("loss", 1e-300 / 4.1),
    ("lr", 10.0),
    ("lr", 0.1),
    ("lr", 100.0),
    ("lr", 0.01),
    ("lr", 1e300),
    ("batch_size", 100.0),
    ("batch_size", 0.01),
    ("params", None),
    ("tokens", None),
]


@pytest.mark.slow
@pytest.mark.parametrize(("column", "factor"), TYPOS)
def test_a_typo_in_a_best_run_leaves_the_law_where_it_was(example, clean_prediction, column, factor):
    row = best_runs(example)[5]
    bad = move_to_other_cell(example, row, column) if factor is None else typo(example, row, column, factor)
    try:
        law = scalelaw.fit(bad, **FAST)
    except InputError as err:  # refused at entry is fine, if it names the row
        assert str(example.loc[row, "run_id"]) in str(err) or f"row {row}" in str(err)
        return
    assert named(law, bad, row)
    np.testing.assert_allclose(predicted(law), without_row(example, row), rtol=1e-9)
    assert_close(predicted(law), clean_prediction)


def test_a_loss_typed_10x_too_large_is_named_as_a_lone_blowup(example, clean_prediction):
    row = best_runs(example)[2]
    law = scalelaw.fit(typo(example, row, "loss", 10.0), **FAST)
    [outlier] = law.settings["outliers"]
    assert outlier["row"] == row and outlier["reason"] == "blowup"
    assert any(str(example.loc[row, "run_id"]) in note for note in law.notes)
    assert_close(predicted(law), clean_prediction)


# -- single typos: the screen, over many rows and tables (fast) -----------------------

SCREEN_TYPOS = [
    ("loss", 0.1),
    ("loss", 0.5),
    ("loss", 0.9),
    ("lr", 0.01),
    ("lr", 100.0),
    ("batch_size", 100.0),
    ("batch_size", 0.01),
]


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize(("column", "factor"), SCREEN_TYPOS)
def test_the_screen_finds_typos_in_near_best_runs(name, column, factor):
    """Every cell's best and second-best run, corrupted one at a time, is the one named."""
    table = scalelaw.read_runs(DATA / name)
    rows = best_runs(table, 0) + best_runs(table, 1)
    for row in rows:
        found = screen_runs(scalelaw.validate_runs(typo(table, row, column, factor), min_lrs=1))
        assert [o.row for o in found] == [row], (row, found)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("column", "factor"), [("lr", 10.0), ("lr", 0.1), ("batch_size", 10.0), ("batch_size", 0.1)]
)
def test_the_screen_finds_most_10x_slips_and_blames_no_other_run(column, factor):
    """A 10x slip in lr or batch size can land where the bowl is flat (an unbracketed
    cell, a landscape that barely rises along batch size): the screen names at least 90%
    of them on the shipped tables (measured: 94% to 97%), and never another run."""
    hits = total = 0
    for name in SHIPPED:
        table = scalelaw.read_runs(DATA / name)
        for row in best_runs(table, 0) + best_runs(table, 1):
            found = screen_runs(scalelaw.validate_runs(typo(table, row, column, factor), min_lrs=1))
            assert {o.row for o in found} <= {row}
            hits, total = hits + bool(found), total + 1
    assert hits >= 0.9 * total, (hits, total)


@pytest.mark.parametrize(("column", "factor"), [("loss", 0.9), ("lr", 100.0), ("batch_size", 0.01)])
def test_the_screen_finds_typos_in_the_steplaw_table(steplaw_runs, column, factor):
    for row in best_runs(steplaw_runs):
        found = screen_runs(scalelaw.validate_runs(typo(steplaw_runs, row, column, factor), min_lrs=1))
        assert [o.row for o in found] == [row], (row, found)


def test_a_params_typo_into_another_cell_is_caught_by_the_shape(mup):
    row = best_runs(mup)[1]
    bad = move_to_other_cell(mup, row, "params")
    [outlier] = screen_runs(scalelaw.validate_runs(bad, min_lrs=1))
    assert (outlier.row, outlier.reason, outlier.column) == (row, "params", "params")
    assert outlier.expected == mup.loc[row, "params"]
    law = scalelaw.fit(bad, **FAST)
    assert named(law, bad, row)
    np.testing.assert_allclose(predicted(law), predicted(scalelaw.fit(mup.drop(index=row), **FAST)))


def test_a_batch_size_that_is_not_whole_sequences_is_named(mup):
    row = best_runs(mup)[2]
    bad = mup.copy()
    bad.loc[row, "batch_size"] = 13  # 128 typed 12.8, rounded
    [outlier] = screen_runs(scalelaw.validate_runs(bad, min_lrs=1))
    assert (outlier.row, outlier.column, outlier.value) == (row, "batch_size", 13)
    assert "seq_len 64" in outlier.describe()


def test_tokens_unlike_tokens_trained_is_named(mup):
    row = best_runs(mup)[3]
    bad = mup.copy()
    bad.loc[row, "tokens"] = bad.loc[row, "tokens"] * 10
    [outlier] = screen_runs(scalelaw.validate_runs(bad, min_lrs=1))
    assert (outlier.row, outlier.column) == (row, "tokens")
    assert outlier.expected == pytest.approx(mup.loc[row, "tokens"])


def test_outliers_are_saved_with_the_law(example, tmp_path):
    row = best_runs(example)[4]
    law = scalelaw.fit(typo(example, row, "lr", 0.01), **FAST)
    path = tmp_path / "law.json"
    law.to_json(path)
    again = load_law(path)
    assert again.settings["outliers"] == law.settings["outliers"]
    assert again.settings["outliers"][0]["row"] == row


# -- property: any one corrupted row -----------------------------------------------------

FACTORS = {
    "loss": [1e-3, 0.1, 0.5, 0.9, 10.0],
    "lr": [0.01, 0.1, 10.0, 100.0],
    "batch_size": [0.01, 100.0],
}


@st.composite
def corruptions(draw):
    near_best = best_runs(scalelaw.read_runs(DATA / "example_runs.csv"), 0)
    row = draw(st.one_of(st.sampled_from(near_best), st.integers(0, 359)))
    column = draw(st.sampled_from(sorted(FACTORS)))
    return row, column, draw(st.sampled_from(FACTORS[column]))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(corruption=corruptions())
def test_one_corrupted_row_is_refused_named_or_harmless(example, clean_prediction, corruption):
    row, column, factor = corruption
    bad = typo(example, row, column, factor)
    try:
        law = scalelaw.fit(bad, **FAST)
    except InputError as err:
        assert str(example.loc[row, "run_id"]) in str(err) or f"row {row}" in str(err)
        return
    assert_close(predicted(law), clean_prediction)
    others = [o for o in law.settings["outliers"] if o["row"] != row]
    assert others == []  # no good run is blamed
