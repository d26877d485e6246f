"""One error family: every subcommand answers broken input with exit 2 and one
``error:`` line; a bug inside scalelaw is not dressed up as the user's mistake."""

from __future__ import annotations

import json

import pytest

import scalelaw
from scalelaw import exceptions
from scalelaw.cli import main
from scalelaw.synthetic import make_runs


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("broken")
    good = root / "runs.csv"
    make_runs(seed=4).to_csv(good, index=False)
    no_loss = root / "no_loss.csv"
    make_runs(seed=4).drop(columns=["loss"]).to_csv(no_loss, index=False)
    law = root / "law.json"
    law.write_text(json.dumps({"format": "scalelaw.law", "version": 1, "lr": "nonsense"}))
    spec = root / "spec.toml"
    spec.write_text('name = "x"\n[model]\nwidthz = [32]\n')
    return {"good": good, "no_loss": no_loss, "law": law, "spec": spec, "root": root}


CASES = {
    "fit: a runs table without a loss column": ("fit", "{no_loss}"),
    "fit: a filter on a column that does not exist": ("fit", "{good}", "--where", "size < 3"),
    "fit: too few bootstrap replicates": ("fit", "{good}", "--n-boot", "-3"),
    "predict: an unreadable size": ("predict", "7 billion", "1e12"),
    "predict: an interval alpha above 1": ("predict", "7e9", "1e12", "--alpha", "2"),
    "predict: a law file with bad values": ("predict", "7e9", "1e12", "--law", "{law}"),
    "sweep: a spec with a misspelt key": ("sweep", "{spec}", "--dry-run"),
    "verify: a law file with bad values": (
        "verify",
        "{law}",
        "--spec",
        "sweeps/tiny_mup.toml",
        "--width",
        "64",
        "--depth",
        "2",
        "--tokens",
        "65536",
    ),
    "report: a runs table that does not exist": ("report", "{root}/missing.csv", "--out", "{root}/r.html"),
    "demo: a target that is not two sizes": ("demo", "--target", "7e9", "--out", "{root}/demo"),
    "coordcheck: widths that are not numbers": ("coordcheck", "--widths", "64,wide"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_subcommand_answers_broken_input_with_one_error_line(case, inputs, capsys):
    argv = [a.format(**inputs) for a in CASES[case]]
    assert main(argv) == 2, case
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"scalelaw {argv[0]}: error: "), err
    assert "Traceback" not in err[0]


def test_an_internal_bug_is_not_reported_as_a_user_error(inputs, monkeypatch, capsys):
    """A ValueError from a bug inside scalelaw (here: forced in the fit) must surface as the
    bug it is, with its traceback, not as 'error: ...' and exit 2."""

    def broken(*args, **kwargs):
        raise ValueError("operands could not be broadcast together")  # numpy's words, not ours

    monkeypatch.setattr("scalelaw.cli.fit", broken)
    with pytest.raises(ValueError, match="broadcast"):
        main(["fit", str(inputs["good"]), "--n-boot", "5"])
    assert "error:" not in capsys.readouterr().err


def test_the_family_is_one_tree_that_old_except_clauses_still_catch():
    for name in ("InputError", "RunsTableError", "LawFileError", "SpecError", "DataError"):
        assert issubclass(getattr(exceptions, name), exceptions.InputError)
    for name in ("InputError", "NotEnoughDataError", "FitError"):
        cls = getattr(exceptions, name)
        assert issubclass(cls, exceptions.ScalelawError) and issubclass(cls, ValueError)
    assert scalelaw.ScalelawError is exceptions.ScalelawError
    with pytest.raises(exceptions.InputError, match="alpha must be in"):
        scalelaw.predict(7e9, 1.4e12, alpha=1.5)
    with pytest.raises(exceptions.RunsTableError):
        scalelaw.fit(make_runs(seed=4).drop(columns=["loss"]))


def test_report_still_takes_o_for_a_release_and_refuses_both_spellings(inputs, capsys):
    out = inputs["root"] / "old.html"
    assert main(["report", str(inputs["good"]), "--n-boot", "5", "-o", str(out)]) == 0
    assert out.is_file() and "-o/--output is deprecated; use --out" in capsys.readouterr().err
    both = ["report", str(inputs["good"]), "--n-boot", "5", "-o", str(out), "--out", str(out)]
    assert main(both) == 2 and "not both --out and -o/--output" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "old_dest", "new_dest", "value"),
    [
        (["report", "runs.csv", "-o", "r.html"], "out_old", "out", "r.html"),
        (
            [
                "verify",
                "law.json",
                "--spec",
                "s.toml",
                "--width",
                "8",
                "--depth",
                "2",
                "--tokens",
                "1M",
                "--sweep-out",
                "v",
            ],
            "out_old",
            "out",
            "v",
        ),
        (["coordcheck", "--param", "sp"], "param_old", "parametrization", "sp"),
    ],
)
def test_renamed_options_still_work_for_a_release_with_a_note(argv, old_dest, new_dest, value, capsys):
    """-o/--output (report), --sweep-out (verify) and --param (coordcheck) are now --out,
    --out and --parametrization; the old spellings parse to the same value, with a note."""
    from scalelaw.cli import _renamed, build_parser

    args = build_parser().parse_args(argv)
    assert _renamed(args, old_dest, new_dest, "OLD", "NEW") == value
    assert "OLD is deprecated; use NEW" in capsys.readouterr().err
