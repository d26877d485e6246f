"""Command line, end to end: fit a CSV, save the law, predict from it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from scalelaw.cli import apply_where, main, parse_size
from scalelaw.synthetic import make_runs


@pytest.fixture(scope="module")
def runs_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "runs.csv"
    make_runs(seed=4).to_csv(path, index=False)
    return path


def test_fit_then_predict_end_to_end(runs_csv, tmp_path, capsys):
    out = tmp_path / "law.json"
    assert (
        main(
            [
                "fit",
                str(runs_csv),
                "--where",
                "params <= 1.2e8",
                "--n-boot",
                "20",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "fitted on N in [2e+07, 1.2e+08]" in text and f"wrote {out}" in text
    assert main(["predict", "7B", "1.4T", "--law", str(out), "--seq-len", "4096", "--json"]) == 0
    pred = json.loads(capsys.readouterr().out)
    assert pred["model_size"] == 7e9 and pred["tokens"] == 1.4e12 and pred["seq_len"] == 4096
    assert pred["lr_interval"][0] < pred["lr"] < pred["lr_interval"][1]
    assert pred["batch_size_seqs"] == round(pred["batch_size"] / 4096)
    assert any("outside the range" in w for w in pred["warnings"])


def test_installed_entry_point_prints_a_table():
    done = subprocess.run(
        [sys.executable, "-m", "scalelaw.cli", "predict", "7e9", "1.4e12", "--preset", "steplaw"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "law: steplaw" in done.stdout and "peak learning rate" in done.stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fit", "missing.csv"], "missing.csv: no such file"),
        (["predict", "7 billion", "1e12"], "cannot read '7 billion' as a size"),
        (["predict", "7e9", "1e12", "--law", "a.json", "--preset", "steplaw"], "not both"),
    ],
)
def test_errors_are_one_line_messages(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_where_parser(runs_csv):
    import pandas as pd

    runs = pd.read_csv(runs_csv)
    kept = apply_where(runs, "params <= 5e7 and tokens > 2e9")
    assert set(kept["params"]) == {int(2e7), int(5e7)} and set(kept["tokens"]) == {
        int(6e9),
        int(2e10),
    }
    with pytest.raises(ValueError, match="no column 'size'"):
        apply_where(runs, "size < 3")
    with pytest.raises(ValueError, match="cannot read"):
        apply_where(runs, "__import__('os')")
    assert parse_size("1.4T") == 1.4e12 and parse_size("350M") == 3.5e8
