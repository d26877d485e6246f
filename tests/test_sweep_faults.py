"""Fault injection on real sweeps: two launchers on one directory, a launcher killed with
SIGKILL mid-sweep with two workers, a corrupt result. Real processes, real training
(tiny runs on CPU). Issue #15, classes 6 and 8.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SMALL_SPEC, wait_for

from scalelaw.store import LOCK_FILE, RunStore
from scalelaw.sweep import run_sweep
from scalelaw.sweepspec import parse_spec

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def launcher(spec: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "scalelaw.cli", "sweep", str(spec), "--out", str(out), *extra]


def spec_file(tmp_path: Path, budget: int) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(SMALL_SPEC.replace("budgets = [4096]", f"budgets = [{budget}]"))
    return path


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie has ended: it only waits to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid``, from /proc."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(entry.joinpath("stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
    return out


def open_files(pid: int) -> set[str]:
    folder = Path(f"/proc/{pid}/fd")
    found = set()
    for fd in folder.iterdir() if folder.is_dir() else []:
        try:
            found.add(os.readlink(fd))
        except OSError:
            continue
    return found


def kinds(store: RunStore, kind: str) -> list[dict]:
    return [e for e in store.events() if e["event"] == kind]


def check_metrics_not_interleaved(out: Path) -> None:
    """Each run's loss curve is one writer's: steps 0, 1, 2, ... with no repeat."""
    for path in (out / "runs").glob("*/metrics.jsonl"):
        steps = [json.loads(line)["step"] for line in path.read_text().splitlines()]
        assert steps == list(range(len(steps))), f"{path}: steps {steps[:12]}..."


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_sigkill_of_a_two_worker_launcher_leaves_no_orphan_and_resume_trains_each_run_once(tmp_path):
    spec, out = spec_file(tmp_path, 32768), tmp_path / "out"
    store = RunStore(out)
    cmd = launcher(spec, out, "--workers", "2")
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV, start_new_session=True
    )
    try:

        def mid_sweep() -> bool:  # a group finished, another still training
            started = {e["run_id"] for e in kinds(store, "start")}
            finished = {e["run_id"] for e in kinds(store, "finish")}
            return bool(finished) and bool(started - finished)

        wait_for(mid_sweep, 600, "a finished group and one still training")
        workers = children(proc.pid)
        trainers = {e["pid"] for e in kinds(store, "start")}
        assert trainers and trainers <= set(workers), "training runs in the pool's workers"
        lock = str((out / LOCK_FILE).resolve())
        assert lock in open_files(proc.pid)  # the launcher holds the sweep lock ...
        assert all(lock not in open_files(w) for w in workers)  # ... its workers do not inherit it
        os.kill(proc.pid, signal.SIGKILL)  # the launcher only, as `kill -9 <pid>` does
        proc.wait()
        killed_at = time.time()
        wait_for(lambda: not any(alive(w) for w in workers), 10, "the workers to die with their launcher")
        finished_before = {e["run_id"] for e in kinds(store, "finish")}
        time.sleep(1.0)  # an orphan that survived would write its next event now
        late = [e for e in store.events() if e["time"] > killed_at]
        assert not late, f"events written after the launcher died: {late}"

        done = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=900)
        assert done.returncode == 0, done.stderr
        assert "8 runs planned" in done.stdout and f"{len(finished_before)} already finished" in done.stdout
    finally:  # whatever failed, leave no process of that sweep behind
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    finishes = [e["run_id"] for e in kinds(store, "finish")]
    assert len(finishes) == 8 and len(set(finishes)) == 8  # each run finished exactly once
    restarted = {e["run_id"] for e in kinds(store, "start") if e["time"] > killed_at}
    assert not restarted & finished_before  # nothing finished was trained again
    assert len(restarted) == 8 - len(finished_before)
    check_metrics_not_interleaved(out)
    for path in (out / "runs").glob("*/result.json"):
        assert json.loads(path.read_text())["run_id"] == path.parent.name
    assert not (out / "sweep.lock.json").exists()  # the resumed launcher released it cleanly


@pytest.mark.slow
def test_a_second_launcher_on_the_same_directory_is_refused_and_nothing_trains_twice(tmp_path):
    spec, out = spec_file(tmp_path, 16384), tmp_path / "out"
    store = RunStore(out)
    first = subprocess.Popen(
        launcher(spec, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
    )
    try:
        wait_for(lambda: bool(kinds(store, "start")), 600, "the first launcher to start training")
        second = subprocess.run(launcher(spec, out), capture_output=True, text=True, env=ENV, timeout=300)
        assert first.poll() is None, "the first launcher should still be training"
        assert second.returncode == 2
        assert "scalelaw sweep: error: sweep directory" in second.stderr
        assert str(out / LOCK_FILE) in second.stderr and f"pid {first.pid}" in second.stderr
        assert "Traceback" not in second.stderr
        _, stderr = first.communicate(timeout=900)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, stderr
    starts = [e["run_id"] for e in kinds(store, "start")]
    assert len(starts) == 8 and len(set(starts)) == 8  # the refused launcher trained nothing
    check_metrics_not_interleaved(out)
    again = subprocess.run(launcher(spec, out), capture_output=True, text=True, env=ENV, timeout=300)
    assert again.returncode == 0 and "8 already finished, 0 run now" in again.stdout
    assert len(kinds(store, "start")) == 8


def test_a_result_holding_a_bad_loss_is_named_and_redone(tmp_path):
    text = SMALL_SPEC.replace("widths = [32, 64]", "widths = [32]").replace(
        "sizes = [512, 1024]", "sizes = [512]"
    )
    spec = parse_spec(text)
    out = tmp_path / "out"
    first = run_sweep(spec, out, log=lambda s: None)
    assert first.ran == 2 and not first.failed
    store = RunStore(out)
    victim = first.table["run_id"].iloc[0]
    result = store.run_dir(victim) / "result.json"
    result.write_text(json.dumps({**json.loads(result.read_text()), "loss": "abc"}))
    again = run_sweep(spec, out, log=lambda s: None)
    assert again.skipped == 1 and again.ran == 1 and not again.failed
    (redone,) = again.redone
    assert victim in redone and str(result) in redone and "'loss' is \"abc\", not a number" in redone
    assert f"redone: {redone}" in again.summary()
    assert again.table["loss"].dtype == float and (again.table["loss"] > 0).all()
    starts = [e["run_id"] for e in kinds(store, "start")]
    assert starts.count(victim) == 2 and len(starts) == 3
