"""The results store: one directory per run, named by the hash of its spec.

    ROOT/runs/<run_id>/spec.json       the RunSpec fields (written before training)
    ROOT/runs/<run_id>/metrics.jsonl   the loss curve, one line per step
    ROOT/runs/<run_id>/result.json     written atomically, only when the run finished
    ROOT/events.jsonl                  start / finish events, one line each (audit trail)
    ROOT/runs.parquet                  the assembled runs table

A run is finished when its result.json parses and carries a complete runs-table row;
anything else (no result, a truncated or corrupt one) is run again. Diverged runs are
finished results too, never retried. Nothing here imports torch.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from scalelaw.atomic import atomic_write_text
from scalelaw.record import RESULT_KEYS
from scalelaw.runs import write_runs


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

    def status(self, run_id: str) -> RunStatus:
        folder = self.run_dir(run_id)
        result = folder / "result.json"
        if result.is_file():
            row = self._read_result(result)
            if row is None:
                return RunStatus(run_id, "corrupt", f"{result} is truncated or not a complete result")
            return RunStatus(run_id, "finished")
        if folder.is_dir():
            return RunStatus(run_id, "unfinished", f"{folder} has no result.json (interrupted run)")
        return RunStatus(run_id, "missing")

    @staticmethod
    def _read_result(path: Path) -> dict[str, Any] | None:
        try:
            row = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError, OSError):
            return None
        if not isinstance(row, dict) or any(k not in row for k in RESULT_KEYS):
            return None
        return row

    def prepare(self, run_id: str, spec: dict[str, Any]) -> Path:
        """Fresh run directory holding spec.json (stale metrics or results removed)."""
        folder = self.run_dir(run_id)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in ("metrics.jsonl", "result.json"):
            (folder / stale).unlink(missing_ok=True)
        atomic_write_text(folder / "spec.json", json.dumps(spec, indent=1, sort_keys=True))
        return folder

    def write_result(self, run_id: str, row: dict[str, Any]) -> None:
        atomic_write_text(self.run_dir(run_id) / "result.json", json.dumps(row, indent=1, default=_plain))

    def event(self, kind: str, run_id: str, **extra: Any) -> None:
        """Append one event line (O_APPEND writes of one line do not interleave)."""
        self.root.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"event": kind, "run_id": run_id, "time": time.time(), **extra}) + "\n"
        with open(self.root / "events.jsonl", "a", encoding="utf-8") as f:
            f.write(line)

    def events(self) -> list[dict[str, Any]]:
        path = self.root / "events.jsonl"
        if not path.is_file():
            return []
        out = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a crash
        return out

    def table(self, run_ids: list[str] | None = None) -> pd.DataFrame:
        """Runs-table rows of the finished runs (all, or those in ``run_ids``)."""
        folders = (
            (self.run_dir(r) for r in run_ids)
            if run_ids is not None
            else (sorted((self.root / "runs").glob("*")) if (self.root / "runs").is_dir() else [])
        )
        rows = [row for f in folders if (row := self._read_result(f / "result.json")) is not None]
        return pd.DataFrame(rows)

    def assemble(self, run_ids: list[str] | None = None) -> Path | None:
        """Write ROOT/runs.parquet from the finished runs; None when there are none."""
        table = self.table(run_ids)
        if table.empty:
            return None
        return write_runs(table, self.root / "runs.parquet")


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in result.json")
