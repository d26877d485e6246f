"""Faults in the results store, without training: corrupt results, run identity, locks.

Issue #15, classes 6 (concurrency and process hygiene), 8 (corrupt but valid-looking
results) and 10 (run identity that drifts). Processes here are real (subprocesses
holding locks, killed with SIGKILL); nothing is mocked. The sweeps that train are in
test_sweep_faults.py.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SMALL_SPEC
from hypothesis import given, settings
from hypothesis import strategies as st

from scalelaw.exceptions import InputError
from scalelaw.groups import group_key, plan_groups
from scalelaw.record import (
    COLUMN_KINDS,
    COLUMNS,
    RESULT_KEYS,
    RunRecord,
    canonical,
    check_result,
    legacy_run_id_of,
    run_id_of,
    stable_id,
)
from scalelaw.runs import read_runs, validate_runs
from scalelaw.runspec import RunSpec
from scalelaw.store import LOCK_FILE, OWNER_FILE, RunBusyError, RunStore, SweepBusyError
from scalelaw.sweep import run_sweep
from scalelaw.sweepspec import parse_spec

REPO = Path(__file__).resolve().parents[1]


def valid_row(run_id: str = "r1", **changes) -> dict:
    row = RunRecord(
        run_id, 1000, 8192, 1e-3, 128, 2.5, train_loss=2.6, width=64, depth=2, wall_s=1.5, flops=1e9
    ).to_row()
    return {**row, **changes}


def put_result(store: RunStore, run_id: str, content: object) -> Path:
    """A result.json as a crash, a disk fault or a hand edit could leave it."""
    path = store.run_dir(run_id) / "result.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


# -- class 8: corrupt but valid-looking results --------------------------------------------

CORRUPT = [
    ({"loss": "abc"}, r"'loss' is \"abc\", not a number"),
    ({"loss": None}, r"'loss' is null"),
    ({"loss": -1.0}, r"'loss' is -1.0 in a run that did not diverge"),
    ({"loss": math.inf}, r"'loss' is inf in a run that did not diverge"),
    ({"loss": math.nan}, r"'loss' is nan in a run that did not diverge"),
    ({"loss": True}, r"'loss' is True, not a number"),
    ({"lr": 0}, r"'lr' is 0, not a positive finite number"),
    ({"lr": "1e-3"}, r"'lr' is \"1e-3\", not a number"),
    ({"params": 1000.5}, r"'params' is 1000.5, not a whole number"),
    ({"params": True}, r"'params' is True, not a number"),
    ({"batch_size": -128}, r"'batch_size' is -128, not positive"),
    ({"tokens": [8192]}, r"'tokens' is \[8192\], not a number"),
    ({"width": "64"}, r"'width' is \"64\", not a number"),
    ({"diverged": "no"}, r"'diverged' is \"no\", not true or false"),
    ({"diverged": 0}, r"'diverged' is 0, not true or false"),
    ({"weight_decay": -0.1}, r"'weight_decay' is -0.1, not a finite number >= 0"),
    ({"wall_s": -3.0}, r"'wall_s' is -3.0, negative"),
    ({"parametrization": 7}, r"'parametrization' is 7, not a non-empty string"),
    ({"run_id": "someone-else"}, r"its run_id 'someone-else' is not its directory's 'r1'"),
]


@pytest.mark.parametrize(("change", "why"), CORRUPT)
def test_a_result_that_parses_but_holds_a_bad_value_is_corrupt_and_named(tmp_path, change, why):
    store = RunStore(tmp_path)
    path = put_result(store, "r1", valid_row(**change))
    status = store.status("r1")
    assert status.state == "corrupt"
    assert str(path) in status.detail and re.search(why, status.detail)
    with pytest.warns(UserWarning, match=re.escape(str(path))):
        assert store.table().empty  # never a runs-table row
    with pytest.warns(UserWarning):
        assert store.assemble() is None


@pytest.mark.parametrize("content", ["", '{"run_id": "r1", "loss"', "[1, 2]", "null", '"r1"', "\udcff"])
def test_a_result_that_is_not_an_object_of_columns_is_corrupt(tmp_path, content):
    store = RunStore(tmp_path)
    path = store.run_dir("r1") / "result.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(content.encode("utf-8", "surrogateescape"))
    status = store.status("r1")
    assert status.state == "corrupt" and str(path) in status.detail


@pytest.mark.parametrize(
    ("change", "column", "expected"),
    [
        ({"loss": math.nan, "diverged": True}, "loss", "nan"),  # how a diverged run is written
        ({"loss": None, "diverged": True}, "loss", "nan"),
        ({"lr": 1}, "lr", 1.0),  # JSON has one number type: an int lr is the float 1.0
        ({"params": 1000.0}, "params", 1000),
        ({"train_loss": None, "width": None}, "width", None),  # optional columns may be null
    ],
)
def test_valid_spellings_of_a_result_are_finished_and_normalised(tmp_path, change, column, expected):
    store = RunStore(tmp_path)
    put_result(store, "r1", valid_row(**change))
    assert store.status("r1").state == "finished"
    (row,) = store.table().to_dict("records")
    value = row[column]
    if expected == "nan":
        assert math.isnan(value)
    elif expected is None:
        assert value is None or (isinstance(value, float) and math.isnan(value))
    else:
        assert value == expected and type(value) is type(expected)


def test_every_column_has_a_declared_kind():
    assert set(COLUMN_KINDS) == set(COLUMNS)  # a new column must say how result.json spells it
    assert check_result(valid_row()) == valid_row()


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner, max_size=2),
    max_leaves=4,
)


@settings(max_examples=150, deadline=None)
@given(
    changes=st.dictionaries(st.sampled_from(COLUMNS), json_values, min_size=1, max_size=3),
    dropped=st.sets(st.sampled_from(RESULT_KEYS), max_size=1),
)
def test_a_result_is_finished_only_if_every_value_is_sound(tmp_path_factory, changes, dropped):
    """Any result.json: either the store calls it corrupt, or its row is a sound runs-table row."""
    store = RunStore(tmp_path_factory.mktemp("store"))
    row = {k: v for k, v in {**valid_row(), **changes}.items() if k not in dropped}
    put_result(store, "r1", json.dumps(row))  # NaN and inf written as JSON's NaN / Infinity
    status = store.status("r1")
    if status.state == "corrupt":
        assert "result.json" in status.detail
        return
    assert status.state == "finished" and not dropped and row.get("run_id") == "r1"
    table = store.table()
    (clean,) = table.to_dict("records")
    for key, kind in COLUMN_KINDS.items():
        value = clean[key]
        if value is None or (kind is not str and isinstance(value, float) and math.isnan(value)):
            continue
        assert isinstance(value, kind) and not (kind is not bool and isinstance(value, bool)), key
    validated = validate_runs(table, min_lrs=1)  # the runs table accepts it as is
    assert validated["loss"].iloc[0] > 0 or validated["diverged"].iloc[0]


def test_assembled_runs_table_carries_only_sound_rows(tmp_path):
    store = RunStore(tmp_path)
    for i, lr in enumerate((1e-3, 2e-3, 4e-3)):
        put_result(store, f"ok{i}", valid_row(f"ok{i}", lr=lr, loss=2.5 + lr))
    put_result(store, "bad", valid_row("bad", loss="abc"))
    with pytest.warns(UserWarning, match="'loss' is \"abc\""):
        path = store.assemble()
    table = read_runs(path)
    assert sorted(table["run_id"]) == ["ok0", "ok1", "ok2"] and table["loss"].dtype == float


def test_the_store_refuses_to_write_a_result_it_would_read_as_corrupt(tmp_path):
    store = RunStore(tmp_path)
    store.prepare("r1", {"width": 64})
    with pytest.raises(ValueError, match=r"run r1: refusing to write a result that 'loss' is \"abc\""):
        store.write_result("r1", valid_row(loss="abc"))
    with pytest.raises(ValueError, match="whose run_id is r2"):
        store.write_result("r1", valid_row("r2"))
    store.write_result("r1", {**valid_row(), "params": np.int64(1000), "lr": np.float64(1e-3)})
    assert store.status("r1").state == "finished"


def test_events_that_are_not_objects_are_skipped(tmp_path):
    store = RunStore(tmp_path)
    store.event("start", "a")
    with open(tmp_path / "events.jsonl", "a") as f:
        f.write('[1]\n"x"\n{"event": "fin')  # foreign lines and a line cut by a crash
    assert [e["run_id"] for e in store.events()] == ["a"]


# -- class 10: run identity -------------------------------------------------------------------

BASE = dict(width=64, depth=2, lr=1e-3, batch_size=128, tokens=8192)


@pytest.mark.parametrize(
    ("field", "spellings"),
    [
        ("weight_decay", [0, np.int64(0), 0.0, np.float64(0.0), -0.0]),
        ("grad_clip", [1, np.int64(1), 1.0, np.float64(1.0)]),
        ("decay_fraction", [0.2, np.float64(0.2), 0.7 - 0.5]),  # 0.7 - 0.5 = 0.19999999999999996
        ("width", [64, np.int64(64), np.int32(64)]),
        ("tokens", [8192, np.int64(8192), np.uint32(8192)]),
        ("lr", [1e-3, np.float64(1e-3), 0.1 * 0.01]),  # 0.1 * 0.01 = 0.0010000000000000002
        ("betas", [(0.9, 0.95), [0.9, 0.95], np.array([0.9, 0.95])]),
    ],
)
def test_one_run_spelled_many_ways_has_one_id(field, spellings):
    ids = {RunSpec(**{**BASE, field: value}).run_id for value in spellings}
    assert len(ids) == 1


def test_distinct_runs_keep_distinct_ids():
    ids = [
        RunSpec(**{**BASE, **change}).run_id
        for change in (
            {},
            {"lr": 1.001e-3},
            {"lr": 2e-3},
            {"weight_decay": 1e-9},
            {"seed": 1},
            {"compile": True},
        )
    ]
    assert len(set(ids)) == len(ids)


numbers = st.one_of(
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
)


def spellings(value):
    """Ways a program could hold the same number: Python and numpy types, int or float."""
    out = [value]
    if isinstance(value, int):
        out += [np.int64(value), float(value) if abs(value) < 2**53 else value]
    else:
        out += [np.float64(value)]
        if value.is_integer() and abs(value) < 2**53:
            out += [int(value), np.int64(int(value))]
    return out


@settings(max_examples=200, deadline=None)
@given(
    values=st.dictionaries(st.text(min_size=1, max_size=4), numbers, min_size=1, max_size=5), data=st.data()
)
def test_stable_id_does_not_depend_on_how_numbers_are_spelled(values, data):
    respelled = {k: data.draw(st.sampled_from(spellings(v))) for k, v in values.items()}
    assert run_id_of(respelled) == run_id_of(values)
    assert stable_id(list(respelled.values())) == stable_id(list(values.values()))
    assert json.loads(json.dumps(canonical(respelled))) == canonical(values)  # plain JSON data


def test_the_id_is_the_same_under_numpy_1_and_2_reprs():
    # numpy 2 prints np.float64(0.001) where numpy 1 printed 0.001; ids must not see that.
    assert stable_id([np.float64(1e-3), np.int64(3), np.bool_(True)]) == stable_id([1e-3, 3, True])
    assert stable_id([True]) != stable_id([1])  # a flag is not a count


def test_an_object_without_a_canonical_form_is_refused():
    with pytest.raises(TypeError, match="cannot hash a object into an id"):
        stable_id([object()])


def test_groups_do_not_split_on_numpy_spellings():
    a = {**BASE, "width": np.int64(64), "grad_clip": np.float64(1.0)}
    b = {**BASE, "lr": 2e-3, "grad_clip": 1}
    assert group_key(a) == group_key(b)
    assert len(plan_groups([a, b], lambda s: s, 1 << 40)) == 1


def fabricated_results(store: RunStore, runs: list[dict], id_of) -> list[str]:
    """Finished results for ``runs`` (a bowl in lr and batch, no training), named by ``id_of``."""
    ids = []
    for kwargs in runs:
        spec = RunSpec(**kwargs)
        rid = id_of(spec)
        store.prepare(rid, kwargs)
        loss = 3.0 + math.log(spec.lr / 8e-3) ** 2 + 0.1 * math.log2(spec.batch_size / 512) ** 2
        store.write_result(
            rid,
            RunRecord(
                rid, spec.width * 100, spec.tokens, spec.lr, spec.batch_size, loss, width=spec.width
            ).to_row(),
        )
        ids.append(rid)
    return ids


def test_a_sweep_begun_by_an_older_version_resumes_without_training_again(tmp_path):
    spec = parse_spec(SMALL_SPEC)
    runs = spec.run_kwargs()
    store = RunStore(tmp_path / "out")
    legacy = fabricated_results(store, runs, lambda s: legacy_run_id_of(dataclasses.asdict(s)))
    unfinished = store.prepare("0123456789abcdef", runs[0])  # an interrupted run of some older spec
    report = run_sweep(spec, tmp_path / "out", log=lambda s: None)
    assert report.skipped == 8 and report.ran == 0 and not report.redone
    assert not [e for e in store.events() if e["event"] == "start"]
    renamed = {e["old"]: e["run_id"] for e in store.events() if e["event"] == "renamed"}
    assert sorted(renamed) == sorted(legacy)
    assert sorted(report.table["run_id"]) == sorted(RunSpec(**r).run_id for r in runs)
    assert all(not store.run_dir(old).exists() for old in legacy) and unfinished.is_dir()


# -- class 6: one launcher per directory, runs claimed while training ---------------------------

HOLD = """
import sys, time
from scalelaw.store import RunStore
store = RunStore(sys.argv[1])
with (store.locked() if sys.argv[2] == 'sweep' else store.claimed([sys.argv[2]])):
    print('held', flush=True)
    time.sleep(float(sys.argv[3]))
    if len(sys.argv) > 4:
        store.write_result(sys.argv[2], __import__('json').loads(sys.argv[4]))
print('released', flush=True)
"""


def holder(root: Path, what: str, seconds: float, result: dict | None = None) -> subprocess.Popen:
    """Another process holding the sweep lock (``what='sweep'``) or one run's claim."""
    args = [sys.executable, "-c", HOLD, str(root), what, str(seconds)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        args + ([json.dumps(result)] if result else []), stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_launcher_is_refused_with_the_holder_named(tmp_path):
    other = holder(tmp_path, "sweep", 60)
    try:
        with pytest.raises(SweepBusyError) as caught:
            with RunStore(tmp_path).locked():
                pass
        message = str(caught.value)
        assert str(tmp_path / LOCK_FILE) in message
        assert f"pid {other.pid} on host {os.uname().nodename}" in message and f"kill {other.pid}" in message
        assert "-c" in message  # its command line
        assert isinstance(caught.value, InputError)  # the CLI prints it as an error, exit 2
    finally:
        other.kill()
        other.wait()


def test_a_killed_launcher_leaves_no_stale_lock(tmp_path):
    other = holder(tmp_path, "sweep", 60)
    os.kill(other.pid, signal.SIGKILL)  # no chance to clean up
    other.wait()
    assert (tmp_path / OWNER_FILE).is_file()  # its owner file stays behind ...
    with RunStore(tmp_path).locked():  # ... but the kernel released its flock
        assert json.loads((tmp_path / OWNER_FILE).read_text())["pid"] == os.getpid()
    assert not (tmp_path / OWNER_FILE).exists()  # a clean release removes it


def test_an_owner_file_naming_a_dead_process_is_called_stale(tmp_path):
    other = holder(tmp_path, "sweep", 60)
    try:
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
        info = json.loads((tmp_path / OWNER_FILE).read_text())
        (tmp_path / OWNER_FILE).write_text(json.dumps({**info, "pid": int(dead.stdout)}))
        with pytest.raises(SweepBusyError, match=rf"pid {int(dead.stdout)} no longer runs.*delete"):
            with RunStore(tmp_path).locked():
                pass
    finally:
        other.kill()
        other.wait()


def test_run_sweep_refuses_a_held_directory_before_touching_it(tmp_path):
    other = holder(tmp_path, "sweep", 60)
    try:
        with pytest.raises(SweepBusyError, match=re.escape(str(tmp_path / LOCK_FILE))):
            run_sweep(parse_spec(SMALL_SPEC), tmp_path, log=lambda s: None)
        assert not (tmp_path / "runs").exists() and not RunStore(tmp_path).events()
    finally:
        other.kill()
        other.wait()


def test_a_sweep_directory_that_cannot_hold_a_lock_is_named(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match=r"sweep directory '.*file': cannot create its lock file"):
        with RunStore(tmp_path / "file").locked():
            pass


def test_a_claimed_run_is_not_trained_alongside_its_holder(tmp_path):
    store = RunStore(tmp_path)
    other = holder(tmp_path, "r1", 60)
    try:
        start = time.monotonic()
        with pytest.raises(RunBusyError, match=r"run r1: another process is training it.*run\.lock"):
            with store.claimed(["r0", "r1", "r2"], wait_s=0.5):
                pass
        assert time.monotonic() - start < 30
        with store.claimed(["r0", "r2"], wait_s=0):  # the claims it took were let go
            pass
    finally:
        other.kill()
        other.wait()
    with store.claimed(["r1"], wait_s=0):  # a killed holder's claim is gone
        pass


def test_a_worker_waits_for_a_run_held_elsewhere_and_keeps_its_result(tmp_path):
    from scalelaw.executors import Job, execute_group

    spec = {**BASE, "width": 32, "head_dim": 16, "base_width": 32, "seq_len": 64, "tokens": 4096}
    rid = RunSpec(**spec).run_id
    theirs = valid_row(rid, wall_s=123.0)
    other = holder(tmp_path, rid, 1.0, result=theirs)  # finishes the run a second from now
    try:
        assert execute_group(str(tmp_path), [Job(rid, spec)]) == [rid]
    finally:
        other.wait()
    store = RunStore(tmp_path)
    assert store.status(rid).state == "finished"
    assert json.loads((store.run_dir(rid) / "result.json").read_text())["wall_s"] == 123.0
    assert [e["event"] for e in store.events()] == ["skip"]  # nothing trained here


CHILD = """
import sys, time
from scalelaw.executors import die_with_parent
platform = sys.platform
if sys.argv[2] == 'watchdog':
    sys.platform = 'darwin'  # take the portable path: a thread watching getppid()
die_with_parent(int(sys.argv[1]))
sys.platform = platform
print('armed', flush=True)
time.sleep(120)
"""
PARENT = """
import subprocess, sys, os, time
args = [sys.executable, '-c', sys.argv[1], str(os.getpid()), sys.argv[2]]
child = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
assert child.stdout.readline().strip() == 'armed'
print(child.pid, flush=True)
time.sleep(120)
"""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
@pytest.mark.parametrize("mode", ["prctl", "watchdog"])
def test_a_worker_dies_when_its_parent_is_killed(mode):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, CHILD, mode], stdout=subprocess.PIPE, text=True, env=env
    )
    child = int(parent.stdout.readline())
    try:
        assert alive(child)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 20
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(child), f"{mode}: the child outlived its parent"
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)


def test_die_with_parent_exits_at_once_when_the_parent_is_already_gone():
    code = "from scalelaw.executors import die_with_parent; die_with_parent(1 << 22); print('survived')"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 1 and "survived" not in out.stdout


def test_table_is_empty_for_an_empty_store(tmp_path):
    assert RunStore(tmp_path / "none").table().empty and RunStore(tmp_path).assemble() is None
    assert isinstance(RunStore(tmp_path).table(), pd.DataFrame)
