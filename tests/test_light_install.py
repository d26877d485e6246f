"""``pip install scalelaw`` without torch: fitting, predicting, planning, exporting,
reporting and importing work; training says which extra to install.

The fast tests run scalelaw in a child process where torch, tqdm, wandb, mlflow and
submitit cannot be imported (an import hook refuses them, as a venv without them
would). The slow test installs the package into a fresh venv for real and checks that
torch is not among what pip installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from scalelaw.extras import EXTRAS

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
BLOCKED = ("torch", "tqdm", "wandb", "mlflow", "submitit")

CHILD = textwrap.dedent(
    """
    import contextlib, importlib.abc, io, json, sys, tempfile
    from pathlib import Path

    BLOCKED = set(sys.argv[1].split(","))

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)

    sys.meta_path.insert(0, Block())
    results = {}

    def cli(key, *argv):
        from scalelaw.cli import main
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(argv))
            except SystemExit as exit:
                code = exit.code
        results[key] = {"code": code, "out": out.getvalue(), "err": err.getvalue()}

    import scalelaw
    tmp = Path(tempfile.mkdtemp())
    runs = scalelaw.read_runs("data/example_runs.csv")
    law = scalelaw.fit(runs, n_boot=10, seed=0)
    law.to_json(tmp / "law.json")
    p = scalelaw.predict(7e9, 1.4e12, law=law, seq_len=2048)
    results["api_predict"] = [p.lr, p.batch_size]
    results["api_plan"] = scalelaw.plan(compute=1e23).model_size
    results["api_emit"] = str(p.to_config("torchtitan"))
    imported = scalelaw.import_runs(
        "wandb", "tests/data/wandb_export.csv", mapping={"lr": "learning_rate"}, seq_len=128, log=None
    )
    results["imported_rows"] = len(imported)
    for key, call in (
        ("api_verify", lambda: scalelaw.verify(law, None, width=64, depth=2, tokens=4096, out=tmp / "v")),
        ("api_demo", lambda: __import__("scalelaw.demo").demo.run_demo(tmp / "demo")),
    ):
        try:
            call()
            results[key] = "no error"
        except scalelaw.MissingExtraError as err:
            results[key] = f"MissingExtraError: {err}"

    cli("help", "--help")
    for command in ("fit", "predict", "plan", "report", "sweep", "verify", "demo", "coordcheck", "import"):
        cli(f"help_{command}", command, "--help")
    cli("fit", "fit", "data/example_runs.csv", "--n-boot", "10", "--out", str(tmp / "cli_law.json"))
    cli("predict", "predict", "7e9", "1.4e12", "--law", str(tmp / "cli_law.json"), "--json")
    cli("emit", "predict", "7e9", "1.4e12", "--emit", "hf")
    cli("plan", "plan", "--compute", "1e23", "--json")
    cli("report", "report", "data/example_runs.csv", "--n-boot", "10", "--out", str(tmp / "r.html"))
    cli("dry_run", "sweep", "sweeps/tiny_mup.toml", "--dry-run")
    cli("sweep", "sweep", "sweeps/tiny_mup.toml", "--out", str(tmp / "sweep"))
    cli("demo", "demo", "--out", str(tmp / "demo"))
    cli("verify", "verify", str(tmp / "law.json"), "--spec", "sweeps/tiny_mup.toml", "--width", "64",
        "--depth", "2", "--tokens", "4096", "--out", str(tmp / "verify"))
    cli("coordcheck", "coordcheck", "--widths", "32,64")
    cli("import_csv", "import", "wandb", "tests/data/wandb_export.csv", "-o", str(tmp / "w.parquet"),
        "--map", "lr=learning_rate", "--seq-len", "128")
    cli("import_wandb_api", "import", "wandb", "entity/project", "-o", str(tmp / "w2.parquet"))
    cli("import_mlflow", "import", "mlflow", str(tmp), "-o", str(tmp / "m.parquet"))
    results["loaded"] = sorted({m.split(".")[0] for m in sys.modules} & BLOCKED)
    results["report_written"] = (tmp / "r.html").is_file()
    print("RESULTS " + json.dumps(results))
    """
)


@pytest.fixture(scope="module")
def light():
    """Every check's outcome from one child process that cannot import the extras."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, ",".join(BLOCKED)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULTS "))
    return json.loads(line.removeprefix("RESULTS "))


def test_no_extra_module_is_imported_on_the_fit_path(light):
    assert light["loaded"] == []


def test_fit_predict_plan_export_report_and_csv_import_work_without_torch(light):
    lr, batch = light["api_predict"]
    assert 1e-5 < lr < 1e-1 and batch > 1e4
    assert light["api_plan"] > 1e9
    assert "[optimizer]" in light["api_emit"] and "peak lr" in light["api_emit"]
    assert light["imported_rows"] == 61  # the export's 63 runs less the crashed and the unevaluated
    for key in ("fit", "predict", "emit", "report", "dry_run", "import_csv", "plan"):
        assert light[key]["code"] == 0, (key, light[key]["err"])
    assert json.loads(light["predict"]["out"])["lr"] > 0
    assert light["report_written"]
    assert "runs" in light["dry_run"]["out"] and "FLOPs" in light["dry_run"]["out"]


@pytest.mark.parametrize(
    "key",
    [
        "help",
        *[
            f"help_{c}"
            for c in ("fit", "predict", "plan", "report", "sweep", "verify", "demo", "coordcheck", "import")
        ],
    ],
)
def test_help_works_without_torch(light, key):
    assert light[key]["code"] == 0 and "usage: scalelaw" in light[key]["out"]


@pytest.mark.parametrize("key", ["sweep", "demo", "verify", "coordcheck"])
def test_training_commands_name_the_train_extra(light, key):
    result = light[key]
    assert result["code"] == 2
    assert result["err"].startswith(f"scalelaw {key}: error: ")
    assert "pip install 'scalelaw[train]'" in result["err"] and "missing: torch" in result["err"]
    assert "Traceback" not in result["err"]


@pytest.mark.parametrize("key", ["api_verify", "api_demo"])
def test_training_functions_raise_missing_extra_error(light, key):
    assert light[key].startswith("MissingExtraError: ") and "scalelaw[train]" in light[key]


@pytest.mark.parametrize(("key", "extra"), [("import_wandb_api", "wandb"), ("import_mlflow", "mlflow")])
def test_importers_name_their_extra(light, key, extra):
    result = light[key]
    assert result["code"] == 2 and f"pip install 'scalelaw[{extra}]'" in result["err"]
    assert "Traceback" not in result["err"]


def test_extras_table_matches_pyproject():
    """scalelaw.extras checks the packages pyproject's extras install; core has none of them."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    optional = project["optional-dependencies"]

    def names(requirements):
        return {
            r.split(";")[0].split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip()
            for r in requirements
        }

    core = names(project["dependencies"])
    for extra, packages in EXTRAS.items():
        dists = {dist for dist, _ in packages}
        assert dists <= names(optional[extra]), extra
        assert not dists & core, extra
    assert "torch" not in core
    assert any(
        r.startswith("scalelaw[") and {"train", "mlflow", "wandb"} <= set(r[9:-1].split(","))
        for r in optional["dev"]
    )


@pytest.mark.slow
def test_a_real_install_has_no_torch_and_fits(tmp_path):
    """pip install the package into a fresh venv (core only): no torch comes along; the
    command line fits a table and points the demo at scalelaw[train]."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    pip = subprocess.run(
        [
            str(bin_dir / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "-c",
            str(ROOT / "constraints.txt"),
            "-e",
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert pip.returncode == 0, pip.stderr[-3000:]
    shown = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "show", "torch"], capture_output=True, text=True
    )
    assert shown.returncode != 0  # not installed
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    fit = subprocess.run(
        [str(bin_dir / "scalelaw"), "fit", "data/example_runs.csv", "--n-boot", "10"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert fit.returncode == 0, fit.stderr[-3000:]
    assert "lr =" in fit.stdout
    demo = subprocess.run(
        [str(bin_dir / "scalelaw"), "demo", "--out", str(tmp_path / "demo")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert demo.returncode == 2
    assert "pip install 'scalelaw[train]'" in demo.stderr and "torch" in demo.stderr
