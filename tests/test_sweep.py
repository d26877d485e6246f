"""Sweep launcher: specs, cost, resumable store, crash recovery, submitit, refinement."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import SMALL_SPEC

from scalelaw.backends.slurm import SlurmOptions
from scalelaw.proxy.model import ModelConfig
from scalelaw.store import RunStore
from scalelaw.sweep import run_id, run_sweep
from scalelaw.sweepspec import SpecError, cost, parse_spec

SPEC = SMALL_SPEC


def spec_file(tmp_path: Path, text: str = SPEC) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


def test_spec_expands_to_the_full_grid():
    spec = parse_spec(SPEC)
    runs = spec.run_kwargs()
    assert len(runs) == 2 * 2 * 2  # shapes x lr x batch
    assert sorted({r["lr"] for r in runs}) == pytest.approx([8e-3 / 2**0.5, 8e-3 * 2**0.5])
    assert {r["tokens"] for r in runs} == {4096} and {r["warmup"] for r in runs} == {205}
    assert len({run_id(r) for r in runs}) == 8


def test_tokens_per_param_budgets():
    spec = parse_spec(SPEC.replace("budgets = [4096]", "per_param = [0.5]"))
    runs = spec.run_kwargs()
    n32 = ModelConfig(width=32, depth=1, head_dim=16).non_embedding_params
    assert min(r["tokens"] for r in runs if r["width"] == 32) == pytest.approx(0.5 * n32, abs=1024)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("widths = [32, 64]", "widths = [32, -64]", r"field model\.widths\[1\]: must be positive"),
        (
            "widths = [32, 64]",
            "widths = [30]",
            r"field model\.widths: width 30 is not a multiple of head_dim 16",
        ),
        ("center = 8e-3", 'center = "fast"', r"field lr\.center: must be float"),
        ("step = 2.0", "step = 0.5", r"field lr\.step: must be > 1"),
        (
            "sizes = [512, 1024]",
            "sizes = [500]",
            r"field batch\.sizes\[0\]: 500 tokens is not a multiple of recipe\.seq_len 64",
        ),
        ("budgets = [4096]", "", r"field tokens\.budgets: give budgets"),
        (
            "seq_len = 64",
            'seq_len = 64\nschedule = "step"',
            r"field recipe\.schedule: must be one of",
        ),
        (
            "seq_len = 64",
            "seq_len = 64\nwarmpu = 0.1",
            r"field recipe\.warmpu: is not a known field",
        ),
        (
            "[model]",
            '[model]\nparametrization = "ntk"',
            r"field model\.parametrization: must be one of",
        ),
        ("max_runs = 50", "max_runs = 0", r"field limits\.max_runs: must be positive"),
    ],
)
def test_malformed_fields_are_named(old, new, message):
    with pytest.raises(SpecError, match=message):
        parse_spec(SPEC.replace(old, new), source="spec.toml")


def test_dry_run_flops_match_6nd_plus_attention():
    spec = parse_spec(
        SPEC.replace("widths = [32, 64]", "widths = [256]").replace("head_dim = 16", "head_dim = 32")
    )
    price = cost(spec.run_kwargs(), "H100", 0.4)
    cfg = ModelConfig(width=256, depth=1, head_dim=32, seq_len=64)
    six_nd = 6 * cfg.non_embedding_params * 4096 * len(spec.run_kwargs())
    attention = 6 * 1 * 64 * 256 * 4096 * len(spec.run_kwargs())
    readout = 6 * 256 * 256 * 4096 * len(spec.run_kwargs())
    assert price.flops == pytest.approx(six_nd + attention + readout, rel=1e-12)
    assert price.flops == pytest.approx(cfg.flops_per_token() * 4096 * len(spec.run_kwargs()), rel=0.01)
    assert price.device_hours == pytest.approx(price.flops / (989e12 * 0.4) / 3600)


def test_planning_never_imports_torch(tmp_path):
    code = (
        "import sys; from scalelaw.cli import main; "
        f"main(['sweep', {str(spec_file(tmp_path))!r}, '--dry-run']); "
        "from scalelaw.store import RunStore; RunStore('x').status('y'); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"
    assert "8 runs" in out.stdout and "FLOPs" in out.stdout


def test_sweep_refuses_above_the_limit(tmp_path, capsys):
    from scalelaw.cli import main

    assert (
        main(
            [
                "sweep",
                str(spec_file(tmp_path, SPEC.replace("max_runs = 50", "max_runs = 4"))),
                "--out",
                str(tmp_path / "out"),
            ]
        )
        == 2
    )
    assert "8 runs exceed the limit of 4" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_sweep_completes_skips_finished_and_redoes_truncated_results(tmp_path):
    spec = parse_spec(SPEC)
    report = run_sweep(spec, tmp_path / "out", log=lambda s: None)
    assert report.ran == 8 and not report.failed
    table = report.table
    assert len(table) == 8 and table["run_id"].is_unique
    assert (tmp_path / "out" / "runs.parquet").is_file()
    store = RunStore(tmp_path / "out")
    victim = table["run_id"].iloc[3]
    result = store.run_dir(victim) / "result.json"
    result.write_text(result.read_text()[:40])  # truncated by a crash mid-write
    again = run_sweep(spec, tmp_path / "out", log=lambda s: None)
    assert again.skipped == 7 and again.ran == 1
    assert len(again.redone) == 1 and victim in again.redone[0] and "truncated" in again.redone[0]
    starts = [e["run_id"] for e in store.events() if e["event"] == "start"]
    assert starts.count(victim) == 2 and len(starts) == 9


@pytest.mark.slow
def test_sigkill_mid_sweep_loses_nothing_and_runs_nothing_twice(tmp_path):
    spec = spec_file(tmp_path, SPEC.replace("budgets = [4096]", "budgets = [16384]"))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "scalelaw.cli", "sweep", str(spec), "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    store = RunStore(out)
    deadline = time.time() + 120
    while time.time() < deadline and sum(e["event"] == "finish" for e in store.events()) < 3:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished_before = {e["run_id"] for e in store.events() if e["event"] == "finish"}
    assert 3 <= len(finished_before) < 8, "the kill should land mid-sweep"
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    events = store.events()
    finishes = [e["run_id"] for e in events if e["event"] == "finish"]
    assert sorted(set(finishes)) == sorted(finishes) and len(finishes) == 8  # each finished once
    restarted = [e["run_id"] for e in events[len(finishes) :] if e["event"] == "start"]
    assert not finished_before & set(restarted)  # no finished run was started again
    results = list((out / "runs").glob("*/result.json"))
    assert len(results) == 8 and all(json.loads(p.read_text())["run_id"] == p.parent.name for p in results)


def test_submitit_path_runs_through_its_debug_executor(tmp_path):
    spec = parse_spec(SPEC.replace("widths = [32, 64]", "widths = [32]"))
    report = run_sweep(
        spec,
        tmp_path / "out",
        backend="slurm",
        slurm=SlurmOptions(cluster="debug"),
        log=lambda s: None,
    )
    assert report.ran == 4 and not report.failed and len(report.table) == 4
    assert (tmp_path / "out" / "submitit").is_dir()


@pytest.mark.slow
def test_refine_brackets_an_off_centre_lr_grid(tmp_path):
    # Grid far below the optimum (~6e-3 for these shapes): the best run sits on the top edge.
    text = SPEC.replace("widths = [32, 64]", "widths = [32]").replace("center = 8e-3", "center = 7e-4")
    text = text.replace("sizes = [512, 1024]", "sizes = [512]").replace(
        "budgets = [4096]", "budgets = [16384]"
    )
    spec = parse_spec(text)
    first = run_sweep(spec, tmp_path / "a", log=lambda s: None)
    assert not first.optima["lr_bracketed"].any()
    refined = run_sweep(spec, tmp_path / "b", refine_rounds=6, log=lambda s: None)
    assert refined.refine_added >= 1 and refined.optima["lr_bracketed"].all()
    assert refined.table["lr"].max() > max(spec.lrs)


@pytest.mark.slow
def test_demo_runs_end_to_end_verifies_and_reuses_its_runs(tmp_path):
    from scalelaw.demo import run_demo

    lines: list[str] = []
    path = run_demo(tmp_path / "demo", size="tiny", log=lines.append)
    text = path.read_text()
    assert "scalelaw demo (tiny)" in text and text.count("<img ") == 6  # the verification grid first
    assert text.index("id='verification'") < text.index("id='prediction'") < text.index("id='warnings'")
    verdict = json.loads((tmp_path / "demo" / "verify.json").read_text())
    for key in ("regret_pct", "lr_inside_interval", "batch_inside_interval", "predicted_loss"):
        assert key in verdict
    assert verdict["measured_best_loss"] > 0 and verdict["cells_total"] == 4 and verdict["wall_s"] > 0
    assert verdict["extrapolation"]["N"] >= 4 and verdict["extrapolation"]["D"] > 1
    verify_runs = pd.read_parquet(tmp_path / "demo" / "verify" / "runs.parquet")
    assert len(verify_runs) == 9 and set(verify_runs["width"]) == {128}
    best = verify_runs["loss"].min()  # the score is recomputable from the raw losses
    assert verdict["measured_best_loss"] == pytest.approx(best)
    assert any(line.startswith("predicted lr") for line in lines)  # the verdict is printed
    assert (tmp_path / "demo" / "law.json").is_file()
    again: list[str] = []
    run_demo(tmp_path / "demo", size="tiny", log=again.append)
    starts = RunStore(tmp_path / "demo").events() + RunStore(tmp_path / "demo" / "verify").events()
    assert sum(e["event"] == "start" for e in starts) == 36 + 9  # the rerun trained nothing
