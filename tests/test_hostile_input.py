"""Hostile input (issue #15): numbers that pass a check and break later (class 2), and
tracebacks where a message belongs (class 3).

Every case goes through the real entry point: the command line in-process (``main``, one
``error:`` line, exit 2, no traceback, the message naming the field) or the Python API
(the project's own error, naming the field and the value as given).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import scalelaw
from scalelaw.cli import apply_where, main
from scalelaw.exceptions import InputError, LawFileError, RunsTableError
from scalelaw.synthetic import make_runs

TINY_SPEC = Path(__file__).resolve().parents[1] / "sweeps" / "tiny_mup.toml"


def _default_law_dict() -> dict:
    with resources.as_file(resources.files("scalelaw") / "presets" / "default.json") as p:
        return json.loads(p.read_text())


def _edited(root: Path, name: str, edit) -> Path:
    """The default law file with one edit (``edit(d)`` changes the dict in place)."""
    d = _default_law_dict()
    edit(d)
    path = root / f"{name}.json"
    path.write_text(json.dumps(d, allow_nan=True))
    return path


def _set(*keys_and_value):
    *keys, value = keys_and_value

    def edit(d):
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value

    return edit


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hostile")
    runs = make_runs(seed=4)
    out = {"root": root, "runs": root / "runs.csv"}
    runs.to_csv(out["runs"], index=False)
    # one cell: a fit of it fails, so a command that reports its --out first shows the order
    thin = runs[(runs["params"] == runs["params"].min()) & (runs["tokens"] == runs["tokens"].min())]
    out["thin"] = root / "thin.csv"
    thin.to_csv(out["thin"], index=False)
    for name, col, row, value in (
        ("huge_params", "params", 3, 1e19),
        ("fractional_batch", "batch_size", 5, 0.4),
        ("text_lr", "lr", 2, "fast"),
        ("bool_tokens", "tokens", 0, True),
        ("negative_seq", "seq_len", 1, -2048),
    ):
        table = (
            runs.astype({col: object}) if col in runs else runs.assign(**{col: 2048}).astype({col: object})
        )
        table.loc[row, col] = value
        out[name] = root / f"{name}.csv"
        table.to_csv(out[name], index=False)
    with_text = runs.assign(parametrization="mup")
    out["with_text"] = root / "with_text.csv"
    with_text.to_csv(out["with_text"], index=False)
    out["binary"] = root / "binary.csv"
    out["binary"].write_bytes(bytes(range(256)) * 8)
    out["a_dir_json"] = root / "a_dir.json"
    out["a_dir_json"].mkdir()
    out["a_file"] = root / "a_file.txt"
    out["a_file"].write_text("not a folder")
    laws = {
        "nan_coef": _set("lr", "log_coef", float("nan")),
        "inf_exponent": _set("lr", "exponents", "N", float("inf")),
        "huge_exponent": _set("lr", "exponents", "N", 400.0),
        "negative_loss_exponent": _set("loss", "alpha", -0.3),
        "text_coef": _set("batch_size", "log_coef", "1.5"),
        "bool_resid": _set("lr", "resid_sd", True),
        "list_exponents": _set("lr", "exponents", [-0.7, 0.3]),
        "short_fit_range": _set("fit_range", "N", [2e8]),
        "list_fit_range": _set("fit_range", [[2e8, 1e9], [4e9, 1e11]]),
        "reversed_fit_range": _set("fit_range", "D", [1e11, 4e9]),
        "ragged_draws": _set("lr", "draws", [[0.1, 0.2], [0.1, 0.2, 0.3]]),
        "nan_draw": _set("lr", "draws", [[0.1, float("nan"), 0.3]] * 3),
        "negative_loss_draw": _set("loss", "draws", [[1.0, 1.0, 1.0, -0.1, 0.3]] * 3),
        "text_card": _set("card", "beta2", "very"),
        "card_range_text": _set("card", "n_range", "12"),
        "lr_as_list": _set("lr", [1, 2, 3]),
        "notes_as_text": _set("notes", "one note"),
        "optima_nan": _set("optima", 0, "lr_opt", float("nan")),
        "settings_text": _set("settings", "average_weight", "heavy"),
        "unknown_key": _set("lr", "log_coeff", 0.1),
        "version_true": _set("version", True),
    }
    for name, edit in laws.items():
        out[name] = _edited(root, name, edit)
    return out


def _run(argv: list[str], files: dict[str, Path], capsys) -> tuple[int, str]:
    args = [a.format(**{k: str(v) for k, v in files.items()}) for a in argv]
    code = main(args)
    return code, capsys.readouterr().err


def _assert_one_error_line(code: int, err: str, command: str, *names: str) -> None:
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if "is deprecated; use" not in line]
    assert len(lines) == 1 and lines[0].startswith(f"scalelaw {command}: error: "), lines
    assert "Traceback" not in err
    for name in names:
        assert name in lines[0], (name, lines[0])


# ---------------------------------------------------------------------------------------
# Class 2: numbers that pass validation and then break (command line)

CLASS2_CLI = {
    "N beyond the bound": (["predict", "1e19", "1e12"], "MODEL_SIZE", "'1e19'", "1e+15"),
    "N as a huge suffix": (["predict", "1e7T", "1e12"], "MODEL_SIZE", "'1e7T'"),
    "D beyond the bound": (["predict", "7e9", "1e30"], "TOKENS", "'1e30'"),
    "N below one parameter": (["predict", "0.5", "1e12"], "MODEL_SIZE", "'0.5'"),
    "seq_len longer than the run": (["predict", "7e9", "1e6", "--seq-len", "2e6"], "seq_len", "2000000"),
    "seq_len beyond the bound": (["predict", "7e9", "1e12", "--seq-len", "1e18"], "--seq-len", "1e18"),
    "a width whose N is beyond the bound": (
        ["predict", "auto", "1e12", "--width", "10000000", "--depth", "1000"],
        "width 10000000",
        "1e+15",
    ),
    "law: NaN log_coef": (["predict", "7e9", "1e12", "--law", "{nan_coef}"], "nan_coef.json", "lr.log_coef"),
    "law: infinite exponent": (
        ["predict", "7e9", "1e12", "--law", "{inf_exponent}"],
        "inf_exponent.json",
        "lr.exponents.N",
        "inf",
    ),
    "law: exponent that overflows at the target": (
        ["predict", "7e9", "1e12", "--law", "{huge_exponent}"],
        "lr of inf",
        "N = 7e+09",
    ),
    "law: negative loss exponent": (
        ["predict", "7e9", "1e12", "--law", "{negative_loss_exponent}"],
        "loss.alpha",
        "-0.3",
    ),
    "law: a coefficient as text": (
        ["predict", "7e9", "1e12", "--law", "{text_coef}"],
        "batch_size.log_coef",
        "'1.5'",
    ),
    "law: a bool where a number belongs": (
        ["plan", "--compute", "1e23", "--law", "{bool_resid}"],
        "lr.resid_sd",
        "True",
    ),
    "plan: compute beyond the bound": (["plan", "--compute", "1e40"], "compute", "1e+40"),
    "plan: a ratio that puts D beyond the bound": (
        ["plan", "--compute", "1e23", "--tokens-per-param", "1e16"],
        "tokens_per_param 1e+16",
        "D = ",
    ),
    "fit: params 1e19 in a runs table": (["fit", "{huge_params}"], "huge_params.csv", "'params'", "1e+19"),
    "fit: a batch of 0.4 tokens": (["fit", "{fractional_batch}"], "'batch_size'", "0.4", "whole number"),
    "fit: true where tokens belong": (["fit", "{bool_tokens}"], "'tokens'", "True"),
    "fit: a negative seq_len": (["fit", "{negative_seq}"], "'seq_len'", "-2048"),
    "report: a target beyond the bound": (
        ["report", "{runs}", "--target", "1e19,1e12", "--out", "{root}/r.html"],
        "--target",
        "'1e19'",
    ),
    "verify: tokens beyond the bound": (
        [
            "verify",
            "{nan_coef}",
            "--spec",
            str(TINY_SPEC),
            "--width",
            "64",
            "--depth",
            "2",
            "--tokens",
            "1e30",
        ],
        "nan_coef.json",
    ),
}


@pytest.mark.parametrize("case", list(CLASS2_CLI))
def test_numbers_that_used_to_break_later_are_refused_where_they_enter(case, files, capsys):
    argv, *names = CLASS2_CLI[case]
    code, err = _run(argv, files, capsys)
    _assert_one_error_line(code, err, argv[0], *names)


def test_a_seq_len_longer_than_the_batch_gets_a_word_not_silence(capsys):
    assert main(["predict", "7e9", "1e12", "--preset", "steplaw", "--seq-len", "100000000"]) == 0
    out = capsys.readouterr().out
    assert "under half a sequence of 100000000 tokens" in out and "rounds it up to 1 sequence" in out


@pytest.mark.parametrize(
    "law", ["steplaw", "deepseek", "default", "{nan_coef}"], ids=["steplaw", "deepseek", "default", "nan"]
)
def test_predict_json_is_strict_json(law, files, capsys):
    """--json writes JSON that a strict parser reads: no NaN, no Infinity (open interval
    ends and absent values are null); a law file with NaN never gets as far as printing."""
    code = main(
        ["predict", "7e9", "1.4e12", "--json", "--law" if "{" in law else "--preset", law.format(**files)]
    )
    captured = capsys.readouterr()
    if "{" in law:
        assert code == 2 and captured.out == ""
        return

    def refuse(name):
        raise AssertionError(f"non-strict JSON constant {name}")

    d = json.loads(captured.out, parse_constant=refuse)
    assert np.isfinite([d["lr"], d["batch_size"]]).all() and d["batch_size_seqs"] >= 1


# ---------------------------------------------------------------------------------------
# Class 2: the same through the API


def test_a_bool_is_not_a_model_size_and_numpy_scalars_are():
    with pytest.raises(InputError, match=r"model_size .* got True"):
        scalelaw.predict(True, 1e12, law="steplaw")
    p = scalelaw.predict(np.int64(7_000_000_000), np.float32(1.4e12), law="steplaw", seq_len=np.int64(4096))
    q = scalelaw.predict(7e9, float(np.float32(1.4e12)), law="steplaw", seq_len=4096)
    assert p.lr == q.lr and p.batch_size == q.batch_size and p.seq_len == 4096
    assert isinstance(p.model_size, float) and isinstance(p.seq_len, int)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"model_size": 1e19}, "model_size"),
        ({"model_size": "7e9"}, "model_size"),
        ({"tokens": float("inf")}, "tokens"),
        ({"tokens": np.float64("nan")}, "tokens"),
        ({"seq_len": 0.5}, "seq_len"),
        ({"seq_len": True}, "seq_len"),
        ({"seq_len": 10**13}, "seq_len"),
        ({"alpha": np.float32(1.5)}, "alpha"),
        ({"alpha": False}, "alpha"),
    ],
)
def test_predict_names_the_argument_it_refuses(kwargs, field):
    args = {"model_size": 7e9, "tokens": 1.4e12, **kwargs}
    with pytest.raises(InputError, match=field):
        scalelaw.predict(args.pop("model_size"), args.pop("tokens"), law="steplaw", **args)


def test_law_evaluation_refuses_what_is_not_a_positive_number():
    law = scalelaw.get_law("steplaw")
    with pytest.raises(InputError, match="model_size"):
        law.lr("abc", 1e12)
    with pytest.raises(InputError, match="tokens"):
        law.lr(np.array([7e9, 8e9]), np.array([1e12, -1.0]))
    assert law.lr(np.array([7e9, 8e9]), 1e12).shape == (2,)


def test_runs_table_params_beyond_int64_are_named_not_wrapped():
    runs = make_runs(seed=4).astype({"params": float})
    runs.loc[0, "params"] = 1e19
    with pytest.raises(RunsTableError) as info:
        scalelaw.validate_runs(runs)
    message = str(info.value)
    assert "'params'" in message and "1e+19" in message and "-9.2" not in message


@pytest.mark.parametrize(
    ("column", "value", "shown"),
    [
        ("batch_size", 0.4, "0.4"),
        ("params", True, "True"),
        ("lr", "fast", "'fast'"),
        ("tokens", None, "None"),
    ],
)
def test_runs_table_values_are_named_with_their_column(column, value, shown):
    runs = make_runs(seed=4).astype({column: object})
    runs.loc[7, column] = value
    with pytest.raises(RunsTableError, match=rf"column '{column}', row 7 .*{shown}"):
        scalelaw.validate_runs(runs)


def test_a_loss_law_with_a_negative_exponent_cannot_be_built():
    with pytest.raises(InputError, match=r"loss\.beta"):
        scalelaw.LossLaw(E=1.7, A=400.0, B=410.0, alpha=0.34, beta=-0.28)


def test_a_law_with_nan_standard_errors_round_trips_through_strict_json(tmp_path):
    law = scalelaw.get_law("default")
    lr = scalelaw.PowerLaw(
        "lr", "peak learning rate", law.lr.log_coef, dict(law.lr.exponents), se=(0.1, float("nan"), 0.2)
    )
    edited = scalelaw.HyperparameterLaw(law.name, law.source, lr, law.batch_size, law.loss, law.fit_range)
    path = tmp_path / "law.json"
    text = edited.to_json(path)
    assert "NaN" not in text and "Infinity" not in text
    back = scalelaw.load_law(path)
    assert back.lr.se[0] == 0.1 and np.isnan(back.lr.se[1])


def test_target_shape_and_config_take_numpy_integers_and_refuse_bools():
    shape = scalelaw.TargetShape(np.int64(4096), np.int64(32), head_dim=np.int32(128))
    assert shape.width == 4096 and type(shape.width) is int
    with pytest.raises(InputError, match=r"TargetShape\.depth"):
        scalelaw.TargetShape(4096, True)
    p = scalelaw.predict(7e9, 1.4e12, law="steplaw")
    assert p.to_config("nanogpt", gpus=np.int64(8)).split.gpus == 8
    with pytest.raises(InputError, match="gpus"):
        p.to_config("nanogpt", gpus=2.5)


def test_plan_takes_numpy_budgets_and_refuses_bools():
    assert scalelaw.plan(np.float32(1e23)).compute == pytest.approx(1e23, rel=1e-6)
    with pytest.raises(InputError, match="compute"):
        scalelaw.plan(True)
    with pytest.raises(InputError, match="tokens_per_param"):
        scalelaw.plan(1e23, "steplaw", tokens_per_param=float("nan"))


# ---------------------------------------------------------------------------------------
# Class 3: tracebacks instead of messages (command line)

CLASS3_CLI = {
    "--where: a number column against a word": (
        ["fit", "{runs}", "--where", "params <= abc"],
        "--where 'params <= abc'",
        "'params'",
    ),
    "--where: an ordering on a text column": (
        ["fit", "{with_text}", "--where", "parametrization > 3"],
        "'parametrization'",
        "== or !=",
    ),
    "--where: NaN as a bound": (["fit", "{runs}", "--where", "lr < nan"], "'lr < nan'"),
    "--where: true/false compared with a word": (
        ["fit", "{runs}", "--where", "diverged == maybe"],
        "'diverged'",
    ),
    "--where: an empty clause": (["fit", "{runs}", "--where", "params > 1,"], "--where"),
    "--n-boot -1": (["fit", "{runs}", "--n-boot", "-1"], "--n-boot", "-1"),
    "--n-boot not a number": (["fit", "{runs}", "--n-boot", "many"], "--n-boot", "many"),
    "--n-boot absurdly large": (["report", "{runs}", "--n-boot", "1e9"], "--n-boot", "10,000"),
    "--seed -1": (["fit", "{runs}", "--seed", "-1"], "--seed"),
    "--seq-len 0": (["predict", "7e9", "1e12", "--seq-len", "0"], "--seq-len"),
    "--alpha nan": (["predict", "7e9", "1e12", "--alpha", "nan"], "--alpha", "nan"),
    "--alpha 1": (["plan", "--compute", "1e23", "--alpha", "1"], "--alpha"),
    "--confidence 2": (["predict", "7e9", "1e12", "--confidence", "2"], "--confidence"),
    "--micro-batch 0.5": (
        ["predict", "7e9", "1e12", "--emit", "hf", "--micro-batch", "0.5"],
        "--micro-batch",
    ),
    "--width -64": (["predict", "auto", "1e12", "--width", "-64", "--depth", "2"], "--width"),
    "--mfu 0": (["sweep", str(TINY_SPEC), "--dry-run", "--mfu", "0"], "--mfu"),
    "--workers 0": (["sweep", str(TINY_SPEC), "--dry-run", "--workers", "0"], "--workers"),
    "--refine -1": (["sweep", str(TINY_SPEC), "--dry-run", "--refine", "-1"], "--refine"),
    "--seeds 0": (
        [
            "verify",
            "{runs}",
            "--spec",
            str(TINY_SPEC),
            "--width",
            "64",
            "--depth",
            "2",
            "--tokens",
            "1e5",
            "--seeds",
            "0",
        ],
        "--seeds",
    ),
    "--steps 0": (["coordcheck", "--steps", "0"], "--steps"),
    "--lr -1": (["coordcheck", "--lr", "-1"], "--lr"),
    "--widths with a zero": (["coordcheck", "--widths", "0,64"], "--widths"),
    "an unknown option": (["plan", "--compute", "1e23", "--budget", "3"], "unrecognized arguments"),
    "a missing required option": (["plan"], "--compute"),
    "report --out under a file": (
        ["report", "{thin}", "--out", "{a_file}/r.html"],
        "--out",
        "a_file.txt",
    ),
    "report --out is a directory": (["report", "{thin}", "--out", "{root}"], "--out", "is a directory"),
    "report -o under a file (deprecated spelling)": (
        ["report", "{thin}", "-o", "{a_file}/r.html"],
        "--out",
        "a_file.txt",
    ),
    "fit --out under a file": (["fit", "{thin}", "--out", "{a_file}/law.json"], "--out", "a_file.txt"),
    "demo --out under a file": (["demo", "--out", "{a_file}/demo"], "--out"),
    "verify --out under a file": (
        [
            "verify",
            "{default_law}",
            "--spec",
            str(TINY_SPEC),
            "--width",
            "64",
            "--depth",
            "2",
            "--tokens",
            "1e5",
            "--out",
            "{a_file}/v",
        ],
        "--out",
    ),
    "law file: exponents as a list": (
        ["predict", "7e9", "1e12", "--law", "{list_exponents}"],
        "list_exponents.json",
        "lr.exponents",
    ),
    "law file: fit_range of one number": (
        ["predict", "7e9", "1e12", "--law", "{short_fit_range}"],
        "fit_range.N",
    ),
    "law file: fit_range as a list": (["predict", "7e9", "1e12", "--law", "{list_fit_range}"], "fit_range"),
    "law file: fit_range reversed": (
        ["predict", "7e9", "1e12", "--law", "{reversed_fit_range}"],
        "fit_range.D",
    ),
    "law file: ragged draws": (["predict", "7e9", "1e12", "--law", "{ragged_draws}"], "lr.draws"),
    "law file: a NaN draw": (["predict", "7e9", "1e12", "--law", "{nan_draw}"], "lr.draws"),
    "law file: a loss draw with a negative exponent": (
        ["plan", "--compute", "1e23", "--law", "{negative_loss_draw}"],
        "loss.draws",
    ),
    "law file: a card beta as a word": (["predict", "7e9", "1e12", "--law", "{text_card}"], "card", "beta2"),
    "law file: a card range as text": (["predict", "7e9", "1e12", "--law", "{card_range_text}"], "n_range"),
    "law file: lr as a list": (["predict", "7e9", "1e12", "--law", "{lr_as_list}"], "lr must be"),
    "law file: notes as text": (["predict", "7e9", "1e12", "--law", "{notes_as_text}"], "notes"),
    "law file: a NaN cell optimum reaching the report": (
        ["report", "{runs}", "--law", "{optima_nan}", "--out", "{root}/r.html"],
        "optima[0].lr_opt",
    ),
    "law file: a NaN coefficient reaching the report": (
        ["report", "{runs}", "--law", "{nan_coef}", "--out", "{root}/r.html"],
        "lr.log_coef",
    ),
    "law file: settings a summary formats": (
        ["predict", "7e9", "1e12", "--law", "{settings_text}"],
        "settings.average_weight",
    ),
    "law file: a misspelt key": (["predict", "7e9", "1e12", "--law", "{unknown_key}"], "log_coeff"),
    "law file: version true": (["predict", "7e9", "1e12", "--law", "{version_true}"], "version"),
    "law file: a directory": (["predict", "7e9", "1e12", "--law", "{a_dir_json}"], "is a directory"),
    "runs file: a directory": (["fit", "{root}", "--format", "csv"], "is a directory"),
    "runs file: binary bytes": (["fit", "{binary}"], "binary.csv"),
    "runs file: text where lr belongs": (["fit", "{text_lr}"], "'lr'", "'fast'"),
}


@pytest.mark.parametrize("case", list(CLASS3_CLI))
def test_user_mistakes_are_one_error_line_not_a_traceback(case, files, capsys):
    argv, *names = CLASS3_CLI[case]
    files = {**files, "default_law": _edited(files["root"], "default_copy", lambda d: None)}
    code, err = _run(argv, files, capsys)
    _assert_one_error_line(code, err, argv[0], *names)


def test_an_unwritable_report_path_is_refused_before_the_fit(files, capsys):
    """The thin table cannot be fitted (one cell): the error being about --out shows the
    path was checked first, not after minutes of fitting."""
    code, err = _run(["report", "{thin}", "--out", "{a_file}/r.html", "--n-boot", "5"], files, capsys)
    _assert_one_error_line(code, err, "report", "--out")
    code, err = _run(["report", "{thin}", "--out", "{root}/ok.html", "--n-boot", "5"], files, capsys)
    _assert_one_error_line(code, err, "report")
    assert "--out" not in err  # with a good path, the same table fails on its data


def test_where_compares_numbers_including_zero_and_text_by_equality(files):
    runs = pd.read_csv(files["with_text"])
    assert len(apply_where(runs, "lr > 0")) == len(runs)
    assert len(apply_where(runs, "parametrization == mup")) == len(runs)
    assert len(apply_where(runs, "parametrization == 'mup' and params <= 5e7")) == int(
        (runs["params"] <= 5e7).sum()
    )
    with pytest.raises(InputError, match="parametrization == sp"):
        apply_where(runs, "parametrization == sp")  # keeps no runs: named


def test_an_oserror_on_a_users_file_is_an_error_line(files, capsys, monkeypatch):
    """A file the system refuses to read (here: a name longer than the system allows) is
    the user's path, reported as one line, not a traceback."""
    long_name = str(files["root"] / ("x" * 300 + ".csv"))
    code, err = _run(["fit", long_name], files, capsys)
    _assert_one_error_line(code, err, "fit", "x" * 20)


def test_an_internal_oserror_without_a_path_still_surfaces(files, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("device not ready")  # no filename: not about a user's path

    monkeypatch.setattr("scalelaw.cli.read_runs", broken)
    with pytest.raises(OSError, match="device not ready"):
        main(["fit", str(files["runs"])])


# ---------------------------------------------------------------------------------------
# Class 3: the same through the API


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (_set("lr", "exponents", [1, 2]), "lr.exponents"),
        (_set("fit_range", "N", [1.0, 2.0, 3.0]), "fit_range.N"),
        (_set("loss", "beta", None), "loss.beta"),
        (
            _set("timescale", {"quantity": "t", "unit": "", "log_coef": 0.0, "exponents": {"T": 1}}),
            "timescale",
        ),
        (_set("optima", [{"params": 1}]), "optima"),
        (_set("card", "varied", "schedule"), "varied"),
        (_set("settings", "calibration", {"lr": 1.0}), "settings.calibration"),
    ],
)
def test_load_law_names_the_file_and_key(edit, key, tmp_path):
    path = _edited(tmp_path, "law", edit)
    with pytest.raises(LawFileError) as info:
        scalelaw.load_law(path)
    assert str(path) in str(info.value) and key in str(info.value)


@pytest.mark.parametrize("path", [5, None, ["law.json"]])
def test_load_law_and_read_runs_refuse_what_is_not_a_path(path):
    with pytest.raises(LawFileError, match="path"):
        scalelaw.load_law(path)
    with pytest.raises(RunsTableError, match="path"):
        scalelaw.read_runs(path)


def test_writing_to_an_unwritable_path_is_an_input_error(files):
    law = scalelaw.get_law("steplaw")
    with pytest.raises(InputError, match=r"a_file\.txt"):
        law.to_json(files["a_file"] / "law.json")
    with pytest.raises(RunsTableError, match=r"a_file\.txt"):
        scalelaw.write_runs(make_runs(seed=4).head(30), files["a_file"] / "runs.csv")


def test_an_alpha_whose_interval_leaves_the_float_range_is_refused():
    """alpha 5e-324 made z infinite, and z x 0 spread a NaN interval."""
    with pytest.raises(InputError, match="alpha"):
        scalelaw.predict(1e6, 1e6, law="steplaw", alpha=5e-324)
    assert scalelaw.predict(1e6, 1e6, law="steplaw", alpha=1e-6).confidence == pytest.approx(1 - 1e-6)


def test_plan_refuses_a_budget_with_less_than_one_sequence():
    with pytest.raises(InputError, match=r"compute 2\.15e\+03 FLOPs gives D = .* less than one sequence"):
        scalelaw.plan(2148)


def test_law_coefficients_that_would_overflow_the_arithmetic_are_refused():
    with pytest.raises(InputError, match=r"lr\.log_coef"):
        scalelaw.PowerLaw("lr", "peak learning rate", 1e7, {"N": -0.7})
    with pytest.raises(InputError, match=r"batch_size\.draws"):
        scalelaw.PowerLaw("batch_size", "tokens", 0.0, {"D": 0.5}, draws=np.array([[0.0, 6e306]] * 3))


def test_group_settings_and_divergence_check_their_numbers(synthetic_runs):
    shape = scalelaw.TargetShape(4096, 32, parametrization="sp")
    assert scalelaw.group_settings(shape, np.float32(1e-3))["lr"].iloc[0] == pytest.approx(1e-3)
    with pytest.raises(InputError, match="lr"):
        scalelaw.group_settings(shape, True)
    with pytest.raises(InputError, match="blowup"):
        scalelaw.usable_runs(synthetic_runs, blowup=0.5)
    with pytest.raises(RunsTableError, match="validated runs table"):
        scalelaw.usable_runs(synthetic_runs.drop(columns=["loss"]))


def test_api_paths_and_names_of_the_wrong_type_are_input_errors(synthetic_runs):
    from scalelaw.lawcard import parse_recipe

    with pytest.raises(RunsTableError, match="path"):
        scalelaw.write_runs(synthetic_runs, 5)
    with pytest.raises(InputError, match="KEY=VALUE"):
        parse_recipe([5])
    with pytest.raises(InputError, match="seed"):
        scalelaw.fit(synthetic_runs, prior="default", seed=-1)
    assert len(scalelaw.validate_runs(synthetic_runs, source=5)) == len(synthetic_runs)
