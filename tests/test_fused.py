"""The stacked trainer against the reference: each run of a group trains as it would alone."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scalelaw.executors import Job
from scalelaw.groups import balance_groups, group_memory_bytes, group_work, plan_groups
from scalelaw.proxy.fused import train_group
from scalelaw.proxy.train import train
from scalelaw.runspec import RunSpec
from scalelaw.store import RunStore

STEPS = 50
BASE = {
    "depth": 2,
    "batch_size": 128,
    "seq_len": 64,
    "head_dim": 16,
    "tokens": 128 * STEPS,
    "val_tokens": 4096,
}
# μP and CompleteP at width x2 and depth x2 of their base shape, so every multiplier is live.
SHAPES = {
    "sp": {"width": 64, "base_width": 32, "base_depth": 1},
    "mup": {"width": 64, "base_width": 32, "base_depth": 1},
    "completep": {"width": 64, "base_width": 32, "base_depth": 1},
}
# Learning rates below the edge of stability: above it the reference disagrees with itself
# by more than 1e-4 when only the rounding changes (see test_chaotic_lr_is_as_close_as_rounding_allows).
STABLE_LRS = (5e-4, 1e-3, 2e-3)


def curve(path: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in path.read_text().splitlines()]


def solo_and_fused(specs: list[RunSpec], tmp_path: Path):
    solo_paths = [tmp_path / f"solo{i}.jsonl" for i in range(len(specs))]
    fused_paths = [tmp_path / f"fused{i}.jsonl" for i in range(len(specs))]
    solo = [train(s, metrics_path=p) for s, p in zip(specs, solo_paths, strict=True)]
    fused = train_group(specs, fused_paths)
    return solo, fused, solo_paths, fused_paths


def max_rel_gap(a: list[float], b: list[float]) -> float:
    assert len(a) == len(b)
    return max(abs(x - y) / abs(x) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("parametrization", ["sp", "mup", "completep"])
def test_each_run_of_a_group_matches_its_solo_run(parametrization, tmp_path):
    specs = [
        RunSpec(lr=lr, parametrization=parametrization, **SHAPES[parametrization], **BASE)
        for lr in STABLE_LRS
    ]
    solo, fused, solo_paths, fused_paths = solo_and_fused(specs, tmp_path)
    for s, f, sp, fp in zip(solo, fused, solo_paths, fused_paths, strict=True):
        assert len(curve(fp)) == STEPS
        assert max_rel_gap(curve(sp), curve(fp)) < 1e-4
        assert f.loss == pytest.approx(s.loss, rel=1e-3) and f.diverged == s.diverged is False
        assert (f.params, f.tokens, f.tokens_trained, f.steps, f.flops) == (
            s.params,
            s.tokens,
            s.tokens_trained,
            s.steps,
            s.flops,
        )
        assert f.to_row()["run_id"] == s.to_row()["run_id"]
    # the runs really differ: the group did not train one lr K times
    assert len({round(f.loss, 6) for f in fused}) == len(STABLE_LRS)


def test_per_run_weight_decay_and_init_std_match_solo_runs(tmp_path):
    shape = {**SHAPES["mup"], **BASE, "lr": 1e-3}
    specs = [
        RunSpec(weight_decay=0.0, **shape),
        RunSpec(weight_decay=0.3, **shape),
        RunSpec(weight_decay=0.1, init_std=0.05, **shape),
    ]
    solo, fused, solo_paths, fused_paths = solo_and_fused(specs, tmp_path)
    for s, f, sp, fp in zip(solo, fused, solo_paths, fused_paths, strict=True):
        assert max_rel_gap(curve(sp), curve(fp)) < 1e-4
        assert f.loss == pytest.approx(s.loss, rel=1e-3)
    assert abs(fused[0].loss - fused[2].loss) > 1e-3  # init std and decay changed the run


def test_seed_replicates_stack_each_fed_its_own_batches(tmp_path):
    """Runs of different seeds start from their own weights and see their own batches
    (over two micro-batches here), as each would alone."""
    shape = {**SHAPES["mup"], **BASE, "micro_batch_size": 64}
    specs = [
        RunSpec(lr=1e-3, seed=0, **shape),
        RunSpec(lr=1e-3, seed=1, **shape),
        RunSpec(lr=2e-3, seed=0, **shape),
    ]
    solo, fused, solo_paths, fused_paths = solo_and_fused(specs, tmp_path)
    for s, f, sp, fp in zip(solo, fused, solo_paths, fused_paths, strict=True):
        assert max_rel_gap(curve(sp), curve(fp)) < 1e-4
        assert f.loss == pytest.approx(s.loss, rel=1e-3)
    assert abs(fused[0].loss - fused[1].loss) > 1e-3  # the seeds really differ


def test_budgets_and_schedules_differ_within_a_group(tmp_path):
    """A shorter budget sees the first batches of a longer one, so they stack; each keeps its
    own warmup and decay and leaves the stack, validated, when its budget ends."""
    shape = {**SHAPES["mup"], **BASE}
    specs = [
        RunSpec(**{**shape, "lr": 1e-3, "tokens": 128 * 20}),
        RunSpec(**{**shape, "lr": 2e-3, "tokens": 128 * 50, "schedule": "cosine"}),
        RunSpec(**{**shape, "lr": 1e-3, "tokens": 128 * 35, "warmup": 128 * 10, "schedule": "linear"}),
    ]
    solo, fused, solo_paths, fused_paths = solo_and_fused(specs, tmp_path)
    assert [f.steps for f in fused] == [20, 50, 35]
    for s, f, sp, fp in zip(solo, fused, solo_paths, fused_paths, strict=True):
        assert [json.loads(line)["lr"] for line in fp.read_text().splitlines()] == pytest.approx(
            [json.loads(line)["lr"] for line in sp.read_text().splitlines()], rel=1e-12
        )
        assert max_rel_gap(curve(sp), curve(fp)) < 1e-4
        assert f.loss == pytest.approx(s.loss, rel=1e-3) and f.tokens_trained == s.tokens_trained
    assert sum(f.wall_s for f in fused) > 0 and fused[1].wall_s > fused[0].wall_s  # shared by steps


def test_a_diverging_run_leaves_the_others_as_if_alone(tmp_path):
    specs = [RunSpec(lr=lr, **SHAPES["mup"], **BASE) for lr in (1e-3, 30.0, 2e-3)]
    solo, fused, solo_paths, fused_paths = solo_and_fused(specs, tmp_path)
    assert [r.diverged for r in fused] == [r.diverged for r in solo] == [False, True, False]
    assert math.isnan(fused[1].loss) and fused[1].steps == solo[1].steps < STEPS
    assert fused[1].tokens_trained == solo[1].tokens_trained and fused[1].to_row()["tokens"] == BASE["tokens"]
    for i in (0, 2):
        assert max_rel_gap(curve(solo_paths[i]), curve(fused_paths[i])) < 1e-4
        assert fused[i].loss == pytest.approx(solo[i].loss, rel=1e-3)
    assert len(curve(fused_paths[1])) == solo[1].steps


def test_chaotic_lr_is_as_close_as_rounding_allows(tmp_path):
    """At the edge of stability the reference run disagrees with itself once the rounding
    changes (here: gradient accumulation over two micro-batches); the stacked run may differ
    from it by as much, and no more than a few times that."""
    spec = RunSpec(lr=3e-2, **SHAPES["mup"], **{**BASE, "batch_size": 256, "tokens": 256 * STEPS})
    solo = train(spec, metrics_path=tmp_path / "solo.jsonl")
    rounded = train(
        RunSpec(**{**spec.__dict__, "micro_batch_size": 128}), metrics_path=tmp_path / "rounded.jsonl"
    )
    fused = train_group([spec, RunSpec(**{**spec.__dict__, "lr": 1e-2})], [tmp_path / "fused.jsonl", None])[0]
    self_gap = abs(rounded.loss - solo.loss) / solo.loss
    assert fused.loss == pytest.approx(solo.loss, rel=max(1e-3, 3 * self_gap))
    first_steps = slice(0, 15)  # before the chaos amplifies rounding, the curves agree to float precision
    assert (
        max_rel_gap(curve(tmp_path / "solo.jsonl")[first_steps], curve(tmp_path / "fused.jsonl")[first_steps])
        < 1e-5
    )


def test_a_group_of_one_is_train_itself_and_stacking_one_agrees():
    spec = RunSpec(lr=3e-3, **SHAPES["mup"], **{**BASE, "tokens": 128 * 20})
    alone = train(spec)
    assert train_group([spec])[0].loss == alone.loss  # exactly: the same code path
    stacked = train_group([spec], stacked=True)[0]
    assert stacked.loss == pytest.approx(alone.loss, rel=1e-5) and stacked.train_loss == pytest.approx(
        alone.train_loss, rel=1e-5
    )


def test_runs_that_differ_beyond_per_run_scalars_are_refused():
    a = RunSpec(lr=1e-3, **SHAPES["mup"], **BASE)
    b = RunSpec(lr=1e-3, **{**SHAPES["mup"], "width": 32}, **BASE)
    with pytest.raises(ValueError, match=r"run 1 differs from run 0 in \['width'\]"):
        train_group([a, b])


def test_groups_are_lr_columns_capped_by_memory():
    specs = [
        {**SHAPES["mup"], **BASE, "lr": lr, "batch_size": batch}
        for batch in (128, 256)
        for lr in (1e-3, 2e-3, 4e-3)
    ]
    groups = plan_groups(specs, lambda s: s, memory_budget=10**12)
    assert [[s["batch_size"] for s in g] for g in groups] == [[128] * 3, [256] * 3]
    one_run = group_memory_bytes(specs[0])
    assert group_memory_bytes(specs[0], runs=3) == 3 * one_run
    capped = plan_groups(specs, lambda s: s, memory_budget=2 * one_run)
    assert group_memory_bytes(specs[3]) > one_run  # twice the batch: more activations per run
    assert [len(g) for g in capped] == [2, 1, 1, 1, 1]
    assert plan_groups(specs, lambda s: s, memory_budget=1) == [[s] for s in specs]  # at least one run


def makespan(groups, workers: int) -> float:
    """Finish time of groups handed in order to whichever worker is free first."""
    finish = [0.0] * workers
    for g in groups:
        finish[finish.index(min(finish))] += group_work(g)
    return max(finish)


def test_few_groups_are_halved_for_the_workers_and_run_largest_first():
    """Three lr columns on two workers would leave one idle for a third of the time. The
    column halved is the largest batch's: fewest steps, so its halves repeat the least
    per-step overhead; the smallest batch's column runs first, being the longest."""
    columns = [
        [{**SHAPES["mup"], **BASE, "lr": lr, "batch_size": batch} for lr in (1e-3, 2e-3, 4e-3, 8e-3)]
        for batch in (128, 256, 512)
    ]
    balanced = balance_groups(columns, lambda s: s, workers=2)
    assert sorted((g[0]["batch_size"], len(g)) for g in balanced) == [(128, 4), (256, 4), (512, 2), (512, 2)]
    assert balanced[0][0]["batch_size"] == 128  # most steps: the longest group first
    assert makespan(balanced, 2) < 0.9 * makespan(columns, 2)
    assert sorted(repr(s) for g in balanced for s in g) == sorted(repr(s) for c in columns for s in c)
    assert balance_groups(columns, lambda s: s, workers=1) == columns  # one worker: nothing to balance
    singles = [[s] for s in columns[0]]
    assert balance_groups(singles, lambda s: s, workers=8) == singles  # nothing left to split


@pytest.mark.slow
def test_a_group_killed_mid_way_leaves_no_result_and_is_redone(tmp_path):
    root = tmp_path / "sweep"
    runs = [{**SHAPES["mup"], **{**BASE, "tokens": 128 * 400}, "lr": lr} for lr in (1e-3, 3e-3, 1e-2)]
    jobs = [Job(RunSpec(**r).run_id, r) for r in runs]
    code = (
        "import json, sys; from scalelaw.executors import Job, execute_group; "
        "jobs = [Job(**j) for j in json.loads(sys.argv[2])]; execute_group(sys.argv[1], jobs)"
    )
    payload = json.dumps([{"run_id": j.run_id, "spec": j.spec} for j in jobs])
    proc = subprocess.Popen([sys.executable, "-c", code, str(root), payload], start_new_session=True)
    store = RunStore(root)
    metrics = [store.run_dir(j.run_id) / "metrics.jsonl" for j in jobs]
    deadline = time.time() + 120
    while time.time() < deadline and not all(
        m.is_file() and len(m.read_text().splitlines()) > 20 for m in metrics
    ):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert all(len(m.read_text().splitlines()) < 400 for m in metrics), "the kill should land mid-group"
    assert [store.status(j.run_id).state for j in jobs] == ["unfinished"] * 3  # no partial result.json

    from scalelaw.sweep import SweepReport, build_backend, execute

    report = SweepReport(root)
    execute(store, runs, report, build_backend("local"))
    assert report.ran == 3 and len(report.redone) == 3 and not report.failed
    assert all(store.status(j.run_id).state == "finished" for j in jobs)
    assert all(len(m.read_text().splitlines()) == 400 for m in metrics)  # redone from scratch, not appended
    starts = [e["run_id"] for e in store.events() if e["event"] == "start"]
    assert sorted(starts) == sorted([j.run_id for j in jobs] * 2)
