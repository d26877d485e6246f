"""Importing runs from W&B (API and runs-table CSV export) and MLflow into a runs table.

MLflow is tested on real stores (SQLite and a file store) the tests write with MLflow's
own client; the W&B export on a CSV fixture in W&B's layout (tests/data/
make_wandb_export.py); the W&B API through a stand-in for ``wandb.Api`` with the same
attributes as the real client's runs (checked against wandb itself), since the real one
needs the network.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scalelaw
from scalelaw.cli import main
from scalelaw.exceptions import InputError
from scalelaw.importers import (
    GUESSED,
    SEQ_LEN_NAMES,
    Column,
    SourceRuns,
    convert,
    import_runs,
    parse_mapping,
    read_wandb_csv,
)

EXPORT = Path(__file__).resolve().parent / "data" / "wandb_export.csv"
SEQ = 128  # the export's block_size


def _source(rows: list[dict], origins: dict[str, str] | None = None, states=None) -> SourceRuns:
    """A source of runs named r0, r1, ...; every column of origin 'any' unless told."""
    origins = origins or {}
    names = [f"r{i}" for i in range(len(rows))]
    keys = list(dict.fromkeys(k for row in rows for k in row))
    columns = {k: Column(k, origins.get(k, "any"), k.split(".", 1)[1] if k in origins else k) for k in keys}
    return SourceRuns("test source", names, names, states or ["finished"] * len(rows), columns, rows)


def _sweep_rows(**extra) -> list[dict]:
    """One cell of 3 lrs with tokens-named batch and a validation loss."""
    return [
        {
            "lr": lr,
            "tokens_per_batch": 4096,
            "non_embedding_params": 1e6,
            "tokens": 1e8,
            "val_loss": 3 + i,
            **extra,
        }
        for i, lr in enumerate((1e-3, 2e-3, 4e-3))
    ]


# --- the W&B runs-table export -----------------------------------------------------------


@pytest.fixture(scope="module")
def export_rows():
    with EXPORT.open() as f:
        return list(csv.DictReader(f))


def test_export_with_two_lr_columns_and_a_batch_in_sequences_is_refused_with_the_fix():
    with pytest.raises(InputError) as info:
        import_runs("wandb", EXPORT, log=None)
    message = str(info.value)
    assert "lr: several candidates ['learning_rate', 'lr']" in message
    assert "--map lr=NAME" in message
    assert "'batch_size' counts sequences" in message and "--seq-len N" in message
    assert "--map seq_len=block_size" in message  # suggested, not taken unasked
    assert "no column found" not in message  # an ambiguous column is not also reported missing


def test_export_imports_every_finished_run_with_its_values_in_tokens(export_rows):
    lines: list[str] = []
    table = import_runs("wandb", EXPORT, mapping={"lr": "learning_rate"}, seq_len=SEQ, log=lines.append)
    kept = [r for r in export_rows if r["State"] == "finished" and r["val/loss"] != ""]
    assert len(table) == len(kept) == 61
    by_name = table.set_index("run_name")
    for row in kept:
        got = by_name.loc[row["Name"]]
        batch_tokens = int(row["batch_size"]) * SEQ
        assert got["batch_size"] == batch_tokens
        assert got["tokens"] == int(row["max_iters"]) * batch_tokens
        assert got["lr"] == float(row["learning_rate"])  # the peak, not the last scheduled lr
        assert got["params"] == int(row["non_embedding_params"])
        assert got["width"] == int(row["n_embd"]) and got["depth"] == int(row["n_layer"])
        assert got["weight_decay"] == float(row["weight_decay"]) and got["seq_len"] == SEQ
        assert (got["loss"] == float(row["val/loss"])) or (
            math.isnan(got["loss"]) and row["val/loss"] == "NaN"
        )
    assert set(table["tokens"]) == {2**21, 2**22}
    assert by_name.loc["w128-diverged", "diverged"] and by_name["diverged"].sum() == 1
    assert set(table["loss_kind"]) == {"validation"}
    text = "\n".join(lines)
    for line in (
        "params       <- non_embedding_params  (guessed",
        "steps        <- max_iters  (guessed",
        "loss         <- val/loss  (guessed",
        "lr           <- learning_rate  (given)",
        "seq_len      <- 128 (--seq-len)  (given)",
        "left out 2 of 63 runs:",
        "state crashed (keep with --state crashed): w128-crashed",
        "loss (val/loss) not logged: w128-no-eval",
        "1 run(s) with NaN/inf loss kept, marked diverged",
    ):
        assert line in text, line


def test_sequence_length_from_a_mapped_column_gives_the_same_table():
    a = import_runs("wandb", EXPORT, mapping={"lr": "learning_rate"}, seq_len=SEQ, log=None)
    b = import_runs("wandb", EXPORT, mapping=["lr=learning_rate", "seq_len=block_size"], log=None)
    pd.testing.assert_frame_equal(a, b)


def test_batch_unit_tokens_takes_the_column_as_it_is(export_rows):
    table = import_runs("wandb", EXPORT, mapping={"lr": "learning_rate"}, batch_unit="tokens", log=None)
    assert sorted(set(table["batch_size"])) == [8, 16, 32]
    assert "seq_len" not in table  # not needed, not asked for


def test_fit_on_the_imported_export_finds_the_bowl_it_was_made_from():
    """The export's losses are a bowl around lr 4e-3 and 16 sequences of 128 tokens."""
    table = import_runs("wandb", EXPORT, mapping={"lr": "learning_rate"}, seq_len=SEQ, log=None)
    law = scalelaw.fit(table, n_boot=20, seed=0)
    p = law.predict(2e5, 3e6, seq_len=SEQ)
    assert p.lr == pytest.approx(4e-3, rel=0.05)
    assert p.batch_size == pytest.approx(16 * SEQ, rel=0.05)


def test_other_states_are_kept_only_when_asked():
    kept = import_runs(
        "wandb",
        EXPORT,
        mapping={"lr": "learning_rate"},
        seq_len=SEQ,
        states=["finished", "crashed"],
        log=None,
    )
    assert "w128-crashed" in set(kept["run_name"]) and len(kept) == 62
    assert kept.set_index("run_name").loc["w128-crashed", "state"] == "crashed"
    every = import_runs("wandb", EXPORT, mapping={"lr": "learning_rate"}, seq_len=SEQ, states=None, log=None)
    assert len(every) == 62  # w128-no-eval still has no loss
    with pytest.raises(InputError, match=r"--state \['done'\]: use states among"):
        import_runs("wandb", EXPORT, mapping={"lr": "learning_rate"}, seq_len=SEQ, states=["done"], log=None)


def test_cli_import_then_fit(tmp_path, capsys):
    out = tmp_path / "runs.parquet"
    code = main(
        ["import", "wandb", str(EXPORT), "-o", str(out), "--map", "lr=learning_rate", "--seq-len", "128"]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "kept 61 runs" in captured.out and f"wrote {out}" in captured.out
    assert len(scalelaw.read_runs(out)) == 61
    assert main(["fit", str(out), "--n-boot", "10"]) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "lr: several candidates"),
        (["--map", "lr"], "--map 'lr': use COLUMN=NAME"),
        (["--map", "learning=learning_rate"], "'learning' is not a runs-table column to fill"),
        (["--map", "lr=optimizer.lr"], "has no column 'optimizer.lr'"),
        (
            ["--map", "lr=learning_rate", "--seq-len", "0"],
            "--seq-len must be a positive integer up to 1e+17, got 0",
        ),
        (
            ["--map", "lr=learning_rate", "--seq-len", "128", "--map", "seq_len=block_size"],
            "give the sequence length once",
        ),
        (
            ["--map", "lr=learning_rate", "--experiment", "x", "--seq-len", "128"],
            "selects MLflow experiments",
        ),
    ],
)
def test_cli_import_errors_name_the_option(tmp_path, capsys, argv, message):
    out = tmp_path / "runs.parquet"
    assert main(["import", "wandb", str(EXPORT), "-o", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("scalelaw import: error: ") and message in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("location", "out", "message"),
    [
        ("missing.csv", "runs.parquet", "missing.csv: no such file"),
        (str(EXPORT), "runs.txt", "write the runs table as .parquet or .csv"),
    ],
)
def test_cli_import_file_errors(tmp_path, capsys, location, out, message):
    assert main(["import", "wandb", location, "-o", str(tmp_path / out), "--seq-len", "128"]) == 2
    assert message in capsys.readouterr().err


def test_export_without_ids_gives_repeated_names_distinct_stable_ids(tmp_path):
    path = tmp_path / "export.csv"
    rows = [
        {
            "Name": "same",
            "State": "finished",
            "lr": lr,
            "tokens_per_batch": 4096,
            "params": 1e6,
            "tokens": 1e8,
            "loss": 3,
        }
        for lr in (1e-3, 2e-3, 4e-3)
    ]
    pd.DataFrame(rows).to_csv(path, index=False)
    first, second = read_wandb_csv(path), read_wandb_csv(path)
    assert len(set(first.ids)) == 3 and first.ids == second.ids
    assert all(i.startswith("same-") for i in first.ids)


def test_empty_and_headless_exports_are_refused(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text('"Name","State","lr"\n')
    with pytest.raises(InputError, match="the CSV has no runs"):
        read_wandb_csv(empty)
    blank = tmp_path / "blank.csv"
    blank.write_text("")
    with pytest.raises(InputError, match="not a readable CSV file"):
        read_wandb_csv(blank)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(1e-6, 1.0),
            st.integers(1, 4096),
            st.integers(1, 10**12),
            st.integers(1, 10**4),  # optimizer steps: a run trains at least one batch
            st.floats(0.1, 20.0),
        ),
        min_size=1,
        max_size=12,
    ),
    st.sampled_from([64, 1024, 4096]),
)
def test_export_round_trip_is_exact(tmp_path_factory, runs, seq_len):
    """Any runs written as a W&B export come back unchanged, batch x seq_len in tokens."""
    path = tmp_path_factory.mktemp("rt") / "export.csv"
    rows = [
        {
            "Name": f"run{i}",
            "State": "finished",
            "ID": f"id{i}",
            "learning_rate": repr(lr),
            "global_batch_size": b,
            "non_embedding_params": n,
            "total_tokens": steps * b * seq_len,
            "eval/loss": repr(loss),
        }
        for i, (lr, b, n, steps, loss) in enumerate(runs)
    ]
    pd.DataFrame(rows).to_csv(path, index=False)
    table = import_runs("wandb", path, seq_len=seq_len, log=None)
    assert list(table["run_id"]) == [f"id{i}" for i in range(len(runs))]
    assert list(table["lr"]) == [r[0] for r in runs]
    assert list(table["batch_size"]) == [r[1] * seq_len for r in runs]
    assert list(table["params"]) == [r[2] for r in runs]
    assert list(table["tokens"]) == [r[3] * r[1] * seq_len for r in runs]
    assert list(table["loss"]) == [r[4] for r in runs]


# --- guessing rules, on sources built in the test ---------------------------------------


def test_name_lists_do_not_overlap():
    """A name guessed for two columns would make every such import ambiguous."""
    seen: dict[str, str] = {}
    for target in GUESSED:
        for names in target.tiers:
            for name in names:
                assert name not in seen, (name, seen.get(name), target.column)
                seen[name] = target.column
    assert not set(SEQ_LEN_NAMES) & set(seen)


@pytest.mark.parametrize(
    ("losses", "column", "kind"),
    [
        ({"train/loss": 3.1, "loss": 3.05, "val/loss": 3.0}, "val/loss", "validation"),
        ({"train/loss": 3.1, "loss": 3.05}, "loss", "unspecified"),
        ({"train/loss": 3.1, "eval/accuracy": 0.5}, "train/loss", "train"),
        ({"metrics/eval_loss": 3.0, "train_loss": 3.1}, "metrics/eval_loss", "validation"),
    ],
)
def test_loss_prefers_validation_then_plain_then_train(losses, column, kind):
    rows = [{**r, **losses} for r in _sweep_rows()]
    for r in rows:
        del r["val_loss"]
    result = convert(_source(rows))
    assert {m.target: m.column for m in result.mapped}["loss"] == column
    assert set(result.table["loss_kind"]) == {kind}
    assert list(result.table["loss"]) == [losses[column]] * 3


def test_a_mapped_loss_records_its_kind_from_its_name():
    rows = [{**r, "train/loss": 3.1} for r in _sweep_rows()]
    result = convert(_source(rows), mapping={"loss": "train/loss"})
    assert set(result.table["loss_kind"]) == {"train"} and list(result.table["loss"]) == [3.1] * 3


def test_two_validation_losses_are_refused():
    rows = [{**r, "eval/loss": 3.0} for r in _sweep_rows()]
    with pytest.raises(InputError, match=r"loss: several candidates \['val_loss', 'eval/loss'\]"):
        convert(_source(rows))


def test_lr_and_batch_are_never_read_from_metrics():
    """A W&B summary's lr is the last scheduled one; only the config's is the peak lr."""
    rows = [
        {
            "config.optimizer.lr": lr,
            "summary.lr": lr / 100,
            "config.tokens_per_batch": 4096,
            "config.non_embedding_params": 1e6,
            "config.tokens": 1e8,
            "summary.val_loss": 3.0,
        }
        for lr in (1e-3, 2e-3, 4e-3)
    ]
    origins = {k: ("config" if k.startswith("config.") else "metric") for k in rows[0]}
    result = convert(_source(rows, origins))
    assert list(result.table["lr"]) == [1e-3, 2e-3, 4e-3]
    only_metric = [{k: v for k, v in r.items() if k != "config.optimizer.lr"} for r in rows]
    with pytest.raises(InputError, match="lr: no column found"):
        convert(_source(only_metric, origins))


def test_a_map_by_key_finds_the_prefixed_column():
    rows = [
        {
            "params.optimizer.lr": str(lr),
            "metrics.optimizer.lr": lr / 100,
            "params.tokens_per_batch": "4096",
            "params.non_embedding_params": "1e6",
            "params.tokens": "1e8",
            "metrics.val_loss": 3.0,
        }
        for lr in (1e-3, 2e-3, 4e-3)
    ]
    origins = {k: ("config" if k.startswith("params.") else "metric") for k in rows[0]}
    result = convert(_source(rows, origins), mapping={"lr": "optimizer.lr"})
    assert {m.target: m.column for m in result.mapped}["lr"] == "params.optimizer.lr"
    assert list(result.table["lr"]) == [1e-3, 2e-3, 4e-3]


def test_generic_params_are_taken_with_a_note_to_check():
    rows = [
        {**{k: v for k, v in r.items() if k != "non_embedding_params"}, "n_params": 2e6}
        for r in _sweep_rows()
    ]
    result = convert(_source(rows))
    params = next(m for m in result.mapped if m.target == "params")
    assert params.column == "n_params" and "non-embedding" in params.note
    assert list(result.table["params"]) == [2_000_000] * 3
    quiet = next(m for m in convert(_source(_sweep_rows())).mapped if m.target == "params")
    assert quiet.note == ""


def test_tokens_come_from_steps_times_the_batch_when_no_tokens_column():
    rows = [{**{k: v for k, v in r.items() if k != "tokens"}, "max_steps": 1000} for r in _sweep_rows()]
    assert list(convert(_source(rows)).table["tokens"]) == [4096 * 1000] * 3
    both = [{**r, "max_steps": 1000} for r in _sweep_rows()]
    assert list(convert(_source(both)).table["tokens"]) == [10**8] * 3  # a tokens column wins
    assert list(convert(_source(both), mapping={"steps": "max_steps"}).table["tokens"]) == [4096 * 1000] * 3


def test_runs_with_missing_or_bad_values_are_left_out_by_name():
    rows = [
        *_sweep_rows(),
        {"lr": "abc", "tokens_per_batch": 4096, "non_embedding_params": 1e6, "tokens": 1e8, "val_loss": 3},
        {"lr": 0, "tokens_per_batch": 4096, "non_embedding_params": 1e6, "tokens": 1e8, "val_loss": 3},
        {"lr": 1e-3, "tokens_per_batch": 4096, "tokens": 1e8, "val_loss": 3},
        {"lr": 1e-3, "tokens_per_batch": 4096, "non_embedding_params": 1e6, "tokens": 1e8, "val_loss": -1.0},
        {"lr": 1e-3, "tokens_per_batch": True, "non_embedding_params": 1e6, "tokens": 1e8, "val_loss": 3},
    ]
    result = convert(_source(rows))
    assert len(result.table) == 3 and result.n_runs == 8
    assert {(name, why) for name, _, why in result.left_out} == {
        ("r3", "lr (lr) = 'abc' is not a number"),
        ("r4", "lr (lr) = 0 is not a positive finite number"),
        ("r5", "params (non_embedding_params) not logged"),
        ("r6", "loss (val_loss) = -1.0 is not positive"),
        ("r7", "batch_size (tokens_per_batch) = True is not a number"),
    }
    text = "\n".join(result.lines())
    for name in ("r3", "r4", "r5", "r6", "r7"):
        assert name in text


def test_no_run_left_is_an_error_that_lists_why():
    rows = [{**r, "val_loss": None} for r in _sweep_rows()]
    rows[0]["val_loss"] = 3.0  # one run logs it, so the column is found
    with pytest.raises(InputError, match="no run left to import") as info:
        convert(_source(rows), states=["crashed"])
    assert "r0: state finished" in str(info.value)


def test_an_ambiguous_optional_column_is_skipped_with_a_note():
    rows = [{**r, "weight_decay": 0.1, "wd": 0.1} for r in _sweep_rows()]
    result = convert(_source(rows))
    assert "weight_decay" not in result.table
    assert any("weight_decay: several candidates" in n and "not imported" in n for n in result.notes)


def test_per_device_batch_hints_and_thin_cells_are_noted():
    rows = [{**r, "gradient_accumulation_steps": 4} for r in _sweep_rows()][:2]
    notes = "\n".join(convert(_source(rows)).notes)
    assert "['gradient_accumulation_steps']: batch_size must count the whole optimizer step" in notes
    assert "scalelaw fit will refuse this table as it stands" in notes and "2 distinct lr" in notes


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        (["lr"], "use COLUMN=NAME"),
        (["lr=a", "lr=b"], "given twice"),
        (["run_id=name"], "not a runs-table column to fill"),
        (["=x"], "use COLUMN=NAME"),
    ],
)
def test_parse_mapping_errors(mapping, message):
    with pytest.raises(InputError, match=message):
        parse_mapping(mapping)


def test_parse_mapping_accepts_a_dict_and_runs_table_columns():
    assert parse_mapping({"lr": "optimizer.lr", "wall_s": "Runtime"}) == {
        "lr": "optimizer.lr",
        "wall_s": "Runtime",
    }
    assert parse_mapping(["steps = max_iters"]) == {"steps": "max_iters"}


# --- the W&B API, through a stand-in for wandb.Api ----------------------------------------


class StubRun:
    """What the importer reads of a ``wandb.apis.public.Run``."""

    def __init__(self, run_id, name, state, config, summary):
        self.id, self.name, self.state, self.config, self.summary = run_id, name, state, config, summary


class StubApi:
    """``wandb.Api`` as the importer uses it: ``runs(path, filters=...)`` -> runs."""

    def __init__(self, runs, error=None):
        self._runs, self._error, self.calls = runs, error, []

    def runs(self, path, filters=None, order="+created_at", per_page=50):
        self.calls.append((path, filters))
        if self._error is not None:
            raise self._error
        return iter(self._runs)


def _stub_runs():
    runs = []
    for i, lr in enumerate((1e-3, 2e-3, 4e-3, 8e-3)):
        config = {
            "optimizer": {"lr": lr, "weight_decay": 0.1},
            "data": {"seq_len": 2048, "total_tokens": 2e9},
            "model": {"d_model": 256, "n_layers": 4},
            "global_batch_size": 64,
            "n_params": 3.1e6,
            "_wandb": {"cli_version": "0.31.0"},
        }
        summary = {
            "train/loss": 3.5 + i / 10,
            "eval/loss": 3.4 + i / 10,
            "lr": lr / 10,
            "_step": 1000,
            "attention": {"_type": "histogram", "values": [1, 2]},
        }
        runs.append(StubRun(f"id{i}", f"sweep-{i}", "finished", config, summary))
    runs.append(StubRun("id9", "sweep-9", "running", runs[0].config, {"train/loss": 5.0}))
    return runs


def test_wandb_api_reads_config_and_summary(capsys):
    api = StubApi(_stub_runs())
    table = import_runs(
        "wandb",
        "team/scaling",
        api=api,
        mapping={"seq_len": "data.seq_len"},
        filters={"config.sweep": "a"},
    )
    out = capsys.readouterr().out
    assert api.calls == [("team/scaling", {"config.sweep": "a"})]
    assert list(table["run_id"]) == ["id0", "id1", "id2", "id3"]
    assert list(table["run_name"]) == ["sweep-0", "sweep-1", "sweep-2", "sweep-3"]
    assert list(table["lr"]) == [1e-3, 2e-3, 4e-3, 8e-3]  # config.optimizer.lr, not summary.lr
    assert set(table["batch_size"]) == {64 * 2048} and set(table["tokens"]) == {2_000_000_000}
    assert list(table["loss"]) == pytest.approx([3.4, 3.5, 3.6, 3.7])
    assert set(table["width"]) == {256} and set(table["depth"]) == {4} and set(table["weight_decay"]) == {0.1}
    assert "lr           <- config.optimizer.lr  (guessed" in out
    assert "loss         <- summary.eval/loss  (guessed" in out
    assert "state running (keep with --state running): sweep-9 (id9)" in out


def test_wandb_api_errors_become_input_errors():
    api = StubApi([], error=ValueError("Could not find project scaling"))
    with pytest.raises(InputError, match=r"W&B project 'team/scaling': Could not find project scaling"):
        import_runs("wandb", "team/scaling", api=api, log=None)
    with pytest.raises(InputError, match="W&B project 'team/empty': no runs"):
        import_runs("wandb", "team/empty", api=StubApi([]), log=None)


def test_the_stub_has_the_real_clients_shape():
    """The stand-in reads what the real wandb client offers: same names, same call."""
    import inspect

    import wandb
    from wandb.apis.public import Run

    for attribute in ("id", "name", "state", "config", "summary"):
        assert isinstance(inspect.getattr_static(Run, attribute), property), attribute
    parameters = inspect.signature(wandb.Api.runs).parameters
    assert {"path", "filters"} <= set(parameters) and list(parameters)[1] == "path"


def test_the_real_wandb_client_without_a_key_is_an_input_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb"))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("NETRC", raising=False)
    with pytest.raises(InputError, match="wandb login"):
        import_runs("wandb", "team/scaling", log=None)


# --- MLflow, on stores written with MLflow's client ---------------------------------------


def _write_mlflow(uri: str) -> dict[str, str]:
    """Experiment 'sweep': 3 finished runs of one cell, a failed run, a run that never
    logged its loss; experiment 'other': one finished run. Returns run name -> id."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    ids = {}
    for experiment, runs in (
        (
            "sweep",
            [
                ("a", 1e-3, 3.2, "FINISHED"),
                ("b", 2e-3, 3.1, "FINISHED"),
                ("c", 4e-3, 3.3, "FINISHED"),
                ("d", 8e-3, 3.9, "FAILED"),
                ("e", 8e-3, None, "FINISHED"),
            ],
        ),
        ("other", [("f", 1e-3, 2.5, "FINISHED")]),
    ):
        experiment_id = client.create_experiment(experiment)
        for name, lr, loss, status in runs:
            run = client.create_run(experiment_id, run_name=name)
            run_id = run.info.run_id
            for key, value in (
                ("optimizer.lr", lr),
                ("global_batch_size", 32),
                ("seq_len", 1024),
                ("non_embedding_params", 5e6),
                ("total_tokens", 1e9),
            ):
                client.log_param(run_id, key, value)
            for step in range(3):  # the lr schedule's decay, logged as a metric
                client.log_metric(run_id, "lr", lr / (step + 1), step=step)
            if loss is not None:
                client.log_metric(run_id, "val_loss", loss + 0.5, step=0)
                client.log_metric(run_id, "val_loss", loss, step=1)  # the last value is the result
            client.set_terminated(run_id, status)
            ids[name] = run_id
    return ids


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    ids = _write_mlflow(f"sqlite:///{path}")
    return path, ids


def test_mlflow_sqlite_store_reads_back(sqlite_store):
    path, ids = sqlite_store
    lines: list[str] = []
    table = import_runs("mlflow", path, experiments=["sweep"], mapping=["seq_len=seq_len"], log=lines.append)
    assert sorted(table["run_name"]) == ["a", "b", "c"]
    by_name = table.set_index("run_name")
    assert [by_name.loc[n, "run_id"] for n in "abc"] == [ids[n] for n in "abc"]
    assert [by_name.loc[n, "lr"] for n in "abc"] == [1e-3, 2e-3, 4e-3]  # params (strings), not the metric
    assert [by_name.loc[n, "loss"] for n in "abc"] == [3.2, 3.1, 3.3]  # each metric's last value
    assert set(table["batch_size"]) == {32 * 1024} and set(table["seq_len"]) == {1024}
    assert set(table["params"]) == {5_000_000} and set(table["tokens"]) == {1_000_000_000}
    text = "\n".join(lines)
    assert "lr         <- params.optimizer.lr  (guessed" in text
    assert f"state failed (keep with --state failed): d ({ids['d']})" in text
    assert f"loss (metrics.val_loss) not logged: e ({ids['e']})" in text
    assert scalelaw.validate_runs(table) is not None  # 3 lrs in its cell: fit takes it


def test_mlflow_reads_every_experiment_by_default_and_takes_a_filter(sqlite_store):
    path, _ = sqlite_store
    every = import_runs("mlflow", f"sqlite:///{path}", seq_len=1024, log=None)
    assert sorted(every["run_name"]) == ["a", "b", "c", "f"]
    filtered = import_runs("mlflow", path, seq_len=1024, filters="params.`optimizer.lr` = '0.001'", log=None)
    assert sorted(filtered["run_name"]) == ["a", "f"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"experiments": ["nope"]}, "no experiment 'nope'; experiments: "),
        ({"filters": "params.x ==="}, "Invalid clause"),
        ({"filters": {"a": 1}}, "give an MLflow filter string"),
    ],
)
def test_mlflow_errors_name_the_store(sqlite_store, kwargs, message):
    path, _ = sqlite_store
    with pytest.raises(InputError, match=f"MLflow.*{message}"):
        import_runs("mlflow", path, seq_len=1024, log=None, **kwargs)


def test_mlflow_never_creates_a_store(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for location, message in (
        (tmp_path / "none.db", "no such file or folder"),
        (f"sqlite:///{tmp_path / 'none.db'}", "does not exist"),
        (None, "give the tracking store"),
    ):
        with pytest.raises(InputError, match=message):
            import_runs("mlflow", location, log=None)
    assert list(tmp_path.iterdir()) == []


def test_mlflow_file_store_reads_back_without_changing_the_environment(tmp_path, monkeypatch):
    store = tmp_path / "mlruns"
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 writes one only when told
    ids = _write_mlflow(store.as_uri())
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")
    table = import_runs("mlflow", store, experiments=["sweep", "other"], seq_len=1024, states=None, log=None)
    assert sorted(table["run_name"]) == ["a", "b", "c", "d", "f"]
    assert table.set_index("run_name").loc["d", "state"] == "failed"
    assert set(table["run_id"]) == {ids[n] for n in "abcdf"}
    assert "MLFLOW_ALLOW_FILE_STORE" not in os.environ


def test_cli_import_mlflow(sqlite_store, tmp_path, capsys):
    path, _ = sqlite_store
    out = tmp_path / "runs.csv"
    argv = ["import", "mlflow", str(path), "--experiment", "sweep", "--seq-len", "1024", "-o", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    runs = scalelaw.read_runs(out)
    assert sorted(runs["run_name"]) == ["a", "b", "c"]
    assert np.array_equal(np.sort(runs["lr"].to_numpy()), [1e-3, 2e-3, 4e-3])
    argv_all = ["import", "mlflow", str(path), "--seq-len", "1024", "--state", "all", "-o", str(out)]
    assert main(argv_all) == 0
    assert sorted(scalelaw.read_runs(out)["run_name"]) == list("abcdf")


def test_an_unreachable_mlflow_server_is_an_input_error_without_minutes_of_retries(monkeypatch):
    """MLflow alone retries a refused connection for about 4 minutes; the import sets
    shorter retries for its own read only, and leaves the user's own settings alone."""
    import socket

    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for name in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    with pytest.raises(InputError, match=rf"MLflow store 'http://127.0.0.1:{port}': .*failed"):
        import_runs("mlflow", f"http://127.0.0.1:{port}", log=None)
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "5"
