"""Sweeps on a real SLURM cluster and a real Ray instance (issue #16).

The SLURM cluster is one node on localhost (tests/slurm_cluster.py), started once per
session: munged, slurmctld and slurmd from Debian's packages, no accounting. Ray is a
local ``ray.init`` in a fresh temporary directory. Both skip with a message when the
software is absent; CI installs both, so there they run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SMALL_SPEC, wait_for
from slurm_cluster import LocalSlurm, missing_binaries

from scalelaw.backends.slurm import JOBS_FILE, queue_states
from scalelaw.store import RunStore
from scalelaw.sweep import run_sweep
from scalelaw.sweepspec import parse_spec

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
REQUIRED = os.environ.get("SCALELAW_CLUSTER_TESTS") == "required"  # .ci/run: fail, never skip


def unavailable(why: str) -> None:
    (pytest.fail if REQUIRED else pytest.skip)(why)


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    missing = missing_binaries()
    if missing:
        unavailable(
            f"SLURM test cluster: {', '.join(missing)} not installed "
            "(apt-get install slurmctld slurmd slurm-client munge; .ci/run does)"
        )
    cluster = LocalSlurm(tmp_path_factory.mktemp("slurm")).start()
    print(f"test SLURM cluster idle {cluster.started_in_s:.2f} s after start")
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)
    yield cluster
    cluster.stop()
    if old is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = old


def spec_file(tmp_path: Path, budget: int = 4096) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(SMALL_SPEC.replace("budgets = [4096]", f"budgets = [{budget}]"))
    return path


def launcher(spec: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "scalelaw.cli", "sweep", str(spec), "--out", str(out), *extra]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def slurm_sweep(spec: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = launcher(spec, out, "--backend", "slurm", *extra)
    return subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=300)


def start_slurm_sweep(spec: Path, out: Path, output: int) -> subprocess.Popen:
    cmd = launcher(spec, out, "--backend", "slurm")
    return subprocess.Popen(cmd, env=env(), stdout=output, stderr=output, text=True)


def losses(out: Path) -> pd.Series:
    table = pd.read_parquet(out / "runs.parquet")
    return table.set_index("run_id")["loss"].sort_index()


@pytest.fixture(scope="module")
def local_losses(tmp_path_factory):
    """The small spec's runs on the local backend, in this process (the reference)."""
    out = tmp_path_factory.mktemp("local")
    run_sweep(parse_spec(SMALL_SPEC), out)
    return losses(out)


def finished(out: Path) -> set[str]:
    store = RunStore(out)
    return {e["run_id"] for e in store.events() if e["event"] == "finish"}


def test_slurm_sweep_with_default_options_equals_the_local_backend(slurm, tmp_path, local_losses):
    """Defaults fit the 2-CPU, GPU-less node (no 8 CPUs, no GPU asked), and the runs
    trained as SLURM tasks give the local backend's losses."""
    out = tmp_path / "sweep"
    done = slurm_sweep(spec_file(tmp_path), out)
    assert done.returncode == 0, done.stderr[-3000:]
    got = losses(out)
    assert list(got.index) == list(local_losses.index)
    np.testing.assert_allclose(got.to_numpy(), local_losses.to_numpy(), rtol=1e-5)


def test_a_request_the_node_cannot_serve_is_refused_before_submitting(slurm, tmp_path):
    out = tmp_path / "sweep"
    done = slurm_sweep(spec_file(tmp_path), out, "--gpus-per-task", "1")
    assert done.returncode == 2
    assert "--gpus-per-task 1: partition 'debug' has no GPUs" in done.stderr
    assert "Traceback" not in done.stderr
    assert queue_states(["1"]) is not None  # the cluster still answers
    assert not (out / JOBS_FILE).exists(), "nothing was submitted"


def test_a_cancelled_task_is_reported_and_redone_on_resume(slurm, tmp_path, local_losses):
    """scancel of a running task: the launcher reports its runs as lost (never waits
    forever), and a resume trains exactly those runs."""
    out = tmp_path / "sweep"
    spec = spec_file(tmp_path)
    proc = start_slurm_sweep(spec, out, subprocess.PIPE)

    def a_task_runs() -> bool:
        states = queue_states(_recorded_arrays(out)) or {}
        return any(s == "RUNNING" for s in states.values())

    wait_for(lambda: (out / JOBS_FILE).exists(), 120, "the array to be submitted")
    wait_for(a_task_runs, 120, "a task to start")
    states = queue_states(_recorded_arrays(out))
    victim = next(t for t, s in states.items() if s == "RUNNING")
    subprocess.run(["scancel", victim], check=True)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 1, stderr[-3000:]
    assert "lost" in stdout + stderr and victim in stdout + stderr
    lost = set(RunStore(out).table().run_id) ^ set(local_losses.index)
    assert lost, "the cancelled task's runs have no result"
    before = finished(out)

    resumed = subprocess.run(
        launcher(spec, out, "--backend", "slurm"), env=env(), capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    starts = [e["run_id"] for e in RunStore(out).events() if e["event"] == "start"]
    assert not before & set(starts[len(starts) - len(lost) :]), "a finished run was trained again"
    np.testing.assert_allclose(losses(out).to_numpy(), local_losses.to_numpy(), rtol=1e-5)


def test_a_sweep_killed_while_its_array_is_queued_resumes_without_duplicates(slurm, tmp_path):
    """kill -9 of the launcher with tasks still pending: the resume cancels the dead
    launcher's tasks, trains only what is unfinished, and no run finishes twice."""
    out = tmp_path / "sweep"
    spec = spec_file(tmp_path)
    proc = start_slurm_sweep(spec, out, subprocess.DEVNULL)
    wait_for(lambda: len(finished(out)) >= 1, 180, "a first group to finish")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    orphans = _recorded_arrays(out)  # the killed launcher's array
    left = queue_states(orphans) or {}
    assert any(s in ("PENDING", "RUNNING") for s in left.values()), "the kill should leave tasks queued"
    before = finished(out)

    resumed = subprocess.run(
        launcher(spec, out, "--backend", "slurm"), env=env(), capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    finishes = [e["run_id"] for e in RunStore(out).events() if e["event"] == "finish"]
    assert len(finishes) == len(set(finishes)) == 8, "every run finished exactly once"
    assert before <= set(finishes)
    assert _recorded_arrays(out) != orphans, "the resume submitted its own array"
    orphan_states = (queue_states(orphans) or {}).values()
    assert not any(s in ("PENDING", "RUNNING") for s in orphan_states), (
        "the dead launcher's tasks were cancelled"
    )


def _recorded_arrays(out: Path) -> list[str]:
    import json

    try:
        return [str(j) for j in json.loads((out / JOBS_FILE).read_text())["jobs"]]
    except (OSError, ValueError, KeyError):
        return []


@pytest.fixture
def ray_instance(tmp_path):
    try:
        import ray
    except ImportError:
        unavailable("Ray is not installed (pip install 'scalelaw[ray]'; CI does)")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    temp = Path("/tmp") / f"ray-{os.getpid()}-{tmp_path.name[-8:]}"  # short: Ray's socket paths are limited
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=str(temp))
    yield ray
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


def test_ray_sweep_equals_the_local_backend(ray_instance, tmp_path, local_losses):
    from scalelaw.backends.ray import RayOptions

    out = tmp_path / "sweep"
    report = run_sweep(parse_spec(SMALL_SPEC), out, backend="ray", ray=RayOptions(cpus_per_task=2))
    assert report.ran == 8 and not report.failed
    np.testing.assert_allclose(losses(out).to_numpy(), local_losses.to_numpy(), rtol=1e-5)
    again = run_sweep(parse_spec(SMALL_SPEC), out, backend="ray", ray=RayOptions(cpus_per_task=2))
    assert again.skipped == 8 and again.ran == 0


def test_ray_retries_a_task_whose_worker_died(ray_instance, tmp_path, local_losses):
    """SIGKILL of the Ray worker training a group: Ray runs the task again and the
    sweep finishes with every run once."""
    import threading

    from scalelaw.backends.ray import RayOptions

    out = tmp_path / "sweep"
    spec = spec_file(tmp_path, budget=4096 * 4)
    killed: list[int] = []

    def kill_first_worker() -> None:
        wait_for(lambda: any(e["event"] == "start" for e in RunStore(out).events()), 120, "a task to start")
        pid = next(e["pid"] for e in RunStore(out).events() if e["event"] == "start")
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    killer = threading.Thread(target=kill_first_worker)
    killer.start()
    report = run_sweep(parse_spec(spec.read_text()), out, backend="ray", ray=RayOptions(cpus_per_task=1))
    killer.join()
    assert killed, "a worker was killed"
    assert report.ran == 8 and not report.failed, report.summary()
    finishes = [e["run_id"] for e in RunStore(out).events() if e["event"] == "finish"]
    assert len(finishes) == len(set(finishes)) == 8
