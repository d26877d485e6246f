"""The results store: one directory per run, named by the hash of its spec.

    ROOT/sweep.lock                    held by the one launcher working in ROOT
    ROOT/sweep.lock.json               who holds it: pid, host, start time, command
    ROOT/runs/<run_id>/spec.json       the RunSpec fields (written before training)
    ROOT/runs/<run_id>/run.lock        held by the process training the run
    ROOT/runs/<run_id>/metrics.jsonl   the loss curve, one line per step
    ROOT/runs/<run_id>/result.json     written atomically, only when the run finished
    ROOT/events.jsonl                  start / finish events, one line each (audit trail)
    ROOT/runs.parquet                  the assembled runs table

A run is finished when its result.json holds a valid runs-table row
(:func:`scalelaw.record.check_result`) whose run_id is its directory's; anything else (no
result, a truncated one, one that parses but holds a bad value) is run again. Diverged
runs are finished results too, never retried. Nothing here imports torch.

Locks are ``flock`` locks (through ``filelock``): the kernel releases them when their
process exits, however it exits, so a killed launcher never leaves a stale lock. Only on
a file system without ``flock`` does filelock fall back to a plain lock file, which a
killed process leaves behind; the error message then says so.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from filelock import FileLock, Timeout

from scalelaw.atomic import atomic_write_text
from scalelaw.exceptions import InputError
from scalelaw.record import BadResult, check_result
from scalelaw.runs import write_runs

LOCK_FILE = "sweep.lock"
OWNER_FILE = "sweep.lock.json"
RUN_LOCK_FILE = "run.lock"
CLAIM_WAIT_S = 30.0  # how long a worker waits for a run another process is training


class SweepBusyError(InputError):
    """The sweep directory is held by another launcher; the message names it and the lock."""


class RunBusyError(RuntimeError):
    """Runs another process is training (their run.lock is held); the message names them."""


@dataclass(frozen=True)
class RunStatus:
    run_id: str
    state: str  # "finished", "missing", "unfinished", "corrupt"
    detail: str = ""


class RunStore:
    """Run directories under ``root``; see the module docstring for the layout."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def run_dir(self, run_id: str) -> Path:
        return self.root / "runs" / run_id

    # -- one launcher per directory -------------------------------------------------

    @property
    def lock_path(self) -> Path:
        return self.root / LOCK_FILE

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the sweep directory for this process, or raise :class:`SweepBusyError`.

        Refuses at once (never waits) when another process holds it, naming the lock
        file and its holder's pid, host, start time and command. While held, run
        directories of older scalelaw versions (ids hashed from ``repr``) are renamed to
        today's ids, so their finished runs are not trained again.
        """
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(self.lock_path))
            lock.acquire(timeout=0)
        except Timeout:
            raise SweepBusyError(self._busy_message()) from None
        except OSError as err:
            raise InputError(
                f"sweep directory {str(self.root)!r}: cannot create its lock file {LOCK_FILE}: "
                f"{err.strerror or err}; choose another --out"
            ) from None
        owner = self.root / OWNER_FILE
        try:
            atomic_write_text(owner, json.dumps(_owner_info(), indent=1))
            self._migrate_legacy_ids()
            yield
        finally:
            try:
                if _read_json(owner).get("pid") == os.getpid():
                    owner.unlink(missing_ok=True)
            finally:
                lock.release()

    def _busy_message(self) -> str:
        owner, info = self.root / OWNER_FILE, {}
        for _ in range(20):  # a holder that has just taken the lock writes its owner file next
            info = _read_json(owner)
            if info.get("pid"):
                break
            time.sleep(0.05)
        head = (
            f"sweep directory {str(self.root)!r} is in use by another launcher: "
            f"{str(self.lock_path)!r} is held"
        )
        if not info.get("pid"):
            return f"{head} (its holder has not written {OWNER_FILE}); wait for it to finish and run again"
        pid, host = info.get("pid"), info.get("host", "?")
        who = (
            f"by pid {pid} on host {host}, running since {info.get('started', '?')} "
            f"(command: {info.get('command', '?')})"
        )
        if host == socket.gethostname() and isinstance(pid, int) and not _alive(pid):
            return (
                f"{head} {who}, but pid {pid} no longer runs: this file system has no flock, so the "
                f"lock file outlived its launcher; delete {str(self.lock_path)!r} and run again"
            )
        return (
            f"{head} {who}. Wait for it to finish or stop it (kill {pid}), then run again; "
            "the lock is released when that process exits, even by kill -9"
        )

    @contextmanager
    def claimed(self, run_ids: Iterable[str], wait_s: float = CLAIM_WAIT_S) -> Iterator[None]:
        """Hold the run.lock of each run while training them, waiting up to ``wait_s`` seconds.

        A run another process is training (an earlier launcher's worker or SLURM task
        still running) is never trained alongside it: after the wait, raises
        :class:`RunBusyError` naming the run and its last start (pid, host). Locks are
        taken in sorted order, so two processes claiming overlapping runs cannot deadlock.
        """
        held: list[FileLock] = []
        deadline = time.monotonic() + wait_s
        try:
            for run_id in sorted(set(run_ids)):
                folder = self.run_dir(run_id)
                folder.mkdir(parents=True, exist_ok=True)
                lock = FileLock(str(folder / RUN_LOCK_FILE))
                try:
                    lock.acquire(timeout=max(0.0, deadline - time.monotonic()))
                except Timeout:
                    raise RunBusyError(self._run_busy_message(run_id, wait_s)) from None
                held.append(lock)
            yield
        finally:
            for lock in reversed(held):
                lock.release()

    def _run_busy_message(self, run_id: str, wait_s: float) -> str:
        starts = [e for e in self.events() if e.get("event") == "start" and e.get("run_id") == run_id]
        last = starts[-1] if starts else {}
        by = f" (last started by pid {last.get('pid')} on host {last.get('host', '?')})" if last else ""
        return (
            f"run {run_id}: another process is training it{by}: "
            f"{str(self.run_dir(run_id) / RUN_LOCK_FILE)!r} stayed held for {wait_s:g} s; "
            "run the sweep again once that process has ended"
        )

    def _migrate_legacy_ids(self) -> None:
        """Rename finished run directories named by the run id of scalelaw <= 0.2.0 to today's id."""
        runs = self.root / "runs"
        if not runs.is_dir():
            return
        for folder in sorted(runs.iterdir()):
            ids = _ids_from_spec(folder / "spec.json")
            if ids is None or folder.name != ids[1] or folder.name == ids[0]:
                continue
            new, legacy = ids
            row, _ = _read_result(folder / "result.json", (legacy, new))
            target = self.run_dir(new)
            if row is None or target.exists():
                continue  # unfinished: the run is redone under its new id
            try:
                self.write_result(legacy, {**row, "run_id": new}, check_id=False)
                folder.rename(target)
            except OSError:
                continue
            self.event("renamed", new, old=legacy)

    # -- run directories --------------------------------------------------------------

    def status(self, run_id: str) -> RunStatus:
        folder = self.run_dir(run_id)
        result = folder / "result.json"
        if result.is_file():
            row, why = _read_result(result, (run_id,))
            if row is None:
                return RunStatus(run_id, "corrupt", f"{result} {why}")
            return RunStatus(run_id, "finished")
        if folder.is_dir():
            return RunStatus(run_id, "unfinished", f"{folder} has no result.json (interrupted run)")
        return RunStatus(run_id, "missing")

    def prepare(self, run_id: str, spec: dict[str, Any]) -> Path:
        """Fresh run directory holding spec.json (stale metrics, results and temp files removed).

        Call it only while holding the run's claim (:meth:`claimed`) and after checking
        the run is not finished: it deletes any result.json.
        """
        folder = self.run_dir(run_id)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in ("metrics.jsonl", "result.json"):
            (folder / stale).unlink(missing_ok=True)
        for temp in folder.glob(".*.tmp"):  # left by a process killed mid atomic write
            temp.unlink(missing_ok=True)
        atomic_write_text(folder / "spec.json", json.dumps(spec, indent=1, sort_keys=True))
        return folder

    def write_result(self, run_id: str, row: dict[str, Any], check_id: bool = True) -> None:
        """Write the run's result.json atomically, after checking it is a valid row for ``run_id``.

        A row that would read back as corrupt is a bug in its producer: ValueError.
        """
        text = json.dumps(row, indent=1, default=_plain)
        try:
            checked = check_result(json.loads(text))
        except BadResult as err:
            raise ValueError(f"run {run_id}: refusing to write a result that {err}") from None
        if check_id and checked["run_id"] != run_id:
            raise ValueError(f"run {run_id}: refusing to write a result whose run_id is {checked['run_id']}")
        atomic_write_text(self.run_dir(run_id) / "result.json", text)

    def event(self, kind: str, run_id: str, **extra: Any) -> None:
        """Append one event line (O_APPEND writes of one line do not interleave)."""
        self.root.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"event": kind, "run_id": run_id, "time": time.time(), **extra}) + "\n"
        with open(self.root / "events.jsonl", "a", encoding="utf-8") as f:
            f.write(line)

    def events(self) -> list[dict[str, Any]]:
        """The event lines that parse as JSON objects (a line cut by a crash is skipped)."""
        path = self.root / "events.jsonl"
        if not path.is_file():
            return []
        out = []
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict):
                out.append(event)
        return out

    def table(self, run_ids: list[str] | None = None) -> pd.DataFrame:
        """Runs-table rows of the finished runs (all, or those in ``run_ids``).

        A result.json that is not a valid row is left out with a warning naming it.
        """
        if run_ids is not None:
            folders: Iterable[Path] = (self.run_dir(r) for r in run_ids)
        else:
            runs = self.root / "runs"
            folders = sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []
        rows = []
        for folder in folders:
            path = folder / "result.json"
            if not path.is_file():
                continue
            row, why = _read_result(path, (folder.name,))
            if row is None:
                warnings.warn(f"{path} {why}; left out of the runs table", stacklevel=2)
                continue
            rows.append(row)
        return pd.DataFrame(rows)

    def assemble(self, run_ids: list[str] | None = None) -> Path | None:
        """Write ROOT/runs.parquet from the finished runs; None when there are none."""
        table = self.table(run_ids)
        if table.empty:
            return None
        return write_runs(table, self.root / "runs.parquet")




def _read_result(path: Path, run_ids: tuple[str, ...]) -> tuple[dict[str, Any] | None, str]:
    """The checked row of a result.json whose run_id is one of ``run_ids``, else (None, why)."""
    try:
        row = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None, "is truncated or not valid JSON"
    except OSError as err:
        return None, f"cannot be read: {err.strerror or err}"
    try:
        row = check_result(row)
    except BadResult as err:
        return None, f"is corrupt: {err}"
    if row["run_id"] not in run_ids:
        return None, f"is corrupt: its run_id {row['run_id']!r} is not its directory's {run_ids[0]!r}"
    return row, ""


def _ids_from_spec(path: Path) -> tuple[str, str] | None:
    """(today's id, the id of scalelaw <= 0.2.0) of the RunSpec in a spec.json; None if it holds none."""
    from scalelaw.runspec import RunSpec  # torch-free

    try:
        spec = RunSpec(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):  # missing, not JSON, or not a RunSpec
        return None
    from dataclasses import asdict

    from scalelaw.record import legacy_run_id_of

    return spec.run_id, legacy_run_id_of(asdict(spec))


def _owner_info() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
    }


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in result.json")
