"""One run's row of the runs table, and the run's identity: the one definition of both.

:class:`RunRecord` owns the columns (which are required, their order and units), the
conversion to a row, and :func:`run_id_of`, the canonical hash of a run's full spec by
which a resumed sweep recognises its finished runs. The runs-table reader
(:mod:`scalelaw.runs`), the result store (:mod:`scalelaw.store`) and the trainers
(:mod:`scalelaw.proxy`) all read their columns from here. No torch.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


def stable_id(values: Sequence[object]) -> str:
    """A short stable hash (16 hex digits) of a sequence of values."""
    return hashlib.sha1(repr(tuple(values)).encode()).hexdigest()[:16]


def run_id_of(fields: Mapping[str, Any]) -> str:
    """The run id: the stable hash of every field of the run's spec (defaults included)."""
    return stable_id(sorted(fields.items()))


@dataclass(frozen=True)
class RunRecord:
    """A finished (or diverged) run as the runs table holds it.

    Units: ``params`` non-embedding parameters; ``tokens`` the run's token budget (runs
    of one cell share it even when one stops early), ``tokens_trained`` what it trained;
    ``lr`` peak learning rate; ``batch_size`` tokens per optimizer step; ``loss``
    validation loss in nats per token (NaN when diverged); ``warmup`` tokens;
    ``wall_s`` seconds; ``flops`` training FLOPs; ``base_width`` / ``base_depth`` the
    shape the parametrization's multipliers are relative to (μP, CompleteP), so a law
    can say which shape its lr belongs to.
    """

    run_id: str
    params: int
    tokens: int
    lr: float
    batch_size: int
    loss: float
    diverged: bool = False
    loss_kind: str = "validation"
    train_loss: float | None = None
    tokens_trained: int | None = None
    seq_len: int | None = None
    width: int | None = None
    depth: int | None = None
    heads: int | None = None
    parametrization: str | None = None
    base_width: int | None = None
    base_depth: int | None = None
    schedule: str | None = None
    warmup: int | None = None
    weight_decay: float | None = None
    seed: int | None = None
    wall_s: float | None = None
    tokens_per_s: float | None = None
    flops: float | None = None

    def to_row(self) -> dict[str, Any]:
        """The runs-table row: every column, in COLUMNS order."""
        return dataclasses.asdict(self)


COLUMNS = tuple(f.name for f in dataclasses.fields(RunRecord))
# A runs table must have these; the rest are optional (design.md schema).
REQUIRED_COLUMNS = ("run_id", "params", "tokens", "lr", "batch_size", "loss")
# A result.json must have these to count as a finished run.
RESULT_KEYS = (*REQUIRED_COLUMNS, "diverged")
