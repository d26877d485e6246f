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
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Significant digits a float keeps in an id: values that agree to 12 digits are one run
# (an lr computed two ways differs in its last bits), values that differ are never that close.
ID_DIGITS = 12


def canonical(value: Any) -> Any:
    """``value`` as plain JSON data, the same however it was spelled.

    numpy scalars and arrays become Python numbers and lists, tuples become lists,
    mapping keys become strings; an integral float becomes the int it equals, any other
    float is rounded to ``ID_DIGITS`` significant digits (and becomes an int if that
    makes it whole), so ``1``, ``np.int64(1)``, ``1.0`` and ``np.float64(1.0)`` are one
    value. NaN and infinities stay floats. Anything else
    (an object whose only spelling is its ``repr``) is a TypeError: repr is what drifts
    between numpy versions.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if hasattr(value, "item") and hasattr(value, "dtype"):  # numpy scalar or array
        value = value.tolist() if getattr(value, "ndim", 0) else value.item()
        return canonical(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return float(value)
        if value.is_integer():  # exactly, as the int it equals, however large
            return int(value)
        rounded = float(f"{value:.{ID_DIGITS}g}")
        return int(rounded) if rounded.is_integer() else rounded
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    raise TypeError(f"cannot hash a {type(value).__name__} into an id: {value!r}")


def canonical_json(value: Any) -> str:
    """:func:`canonical` ``value`` as compact JSON with sorted keys: the text ids hash."""
    return json.dumps(canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _hash(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def stable_id(values: Sequence[object]) -> str:
    """A short stable hash (16 hex digits) of a sequence of values, by :func:`canonical_json`."""
    return _hash(canonical_json(list(values)))


def run_id_of(fields: Mapping[str, Any]) -> str:
    """The run id: the stable hash of every field of the run's spec (defaults included)."""
    return _hash(canonical_json(dict(fields)))


def legacy_run_id_of(fields: Mapping[str, Any]) -> str:
    """The run id of scalelaw 0.2.0 and earlier: a hash of the ``repr`` of the sorted fields.

    With numpy scalars as plain numbers (numpy 1 printed them so, and sweeps build
    plain Python values), and lists as tuples, as RunSpec held them. Only for
    recognising run directories of sweeps begun by older versions
    (:meth:`scalelaw.store.RunStore.locked` renames them).
    """

    def plain(v: Any) -> Any:
        if hasattr(v, "item") and hasattr(v, "dtype") and not getattr(v, "ndim", 0):
            return v.item()
        return tuple(plain(x) for x in v) if isinstance(v, list) else v

    return _hash(repr(tuple(sorted((k, plain(v)) for k, v in fields.items()))))


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

# How a result.json spells each column: the kind of value, and whether it is a count (> 0).
_POSITIVE_INTS = ("params", "tokens", "batch_size", "tokens_trained", "seq_len", "width", "depth", "heads")
_POSITIVE_INTS += ("base_width", "base_depth")
_INTS = ("warmup", "seed")
_FLOATS = ("lr", "loss", "train_loss", "weight_decay", "wall_s", "tokens_per_s", "flops")
_STRINGS = ("run_id", "loss_kind", "parametrization", "schedule")
_BOOLS = ("diverged",)
COLUMN_KINDS = {
    **dict.fromkeys(_POSITIVE_INTS + _INTS, int),
    **dict.fromkeys(_FLOATS, float),
    **dict.fromkeys(_STRINGS, str),
    **dict.fromkeys(_BOOLS, bool),
}


class BadResult(ValueError):
    """A result row that is not a valid runs-table row; the message says which key and why."""


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadResult(f"{key!r} is {_shown(value)}, not a number")
    return float(value)


def _shown(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (str, list, dict)) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _checked(key: str, value: Any, diverged: bool) -> Any:
    kind = COLUMN_KINDS[key]
    if kind is str:
        if not isinstance(value, str) or not value:
            raise BadResult(f"{key!r} is {_shown(value)}, not a non-empty string")
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise BadResult(f"{key!r} is {_shown(value)}, not true or false")
        return value
    x = _number(key, value)
    if kind is int:
        if not (math.isfinite(x) and x.is_integer()):
            raise BadResult(f"{key!r} is {_shown(value)}, not a whole number")
        if key in _POSITIVE_INTS and x <= 0:
            raise BadResult(f"{key!r} is {_shown(value)}, not positive")
        return int(value)
    if key == "lr" and not (math.isfinite(x) and x > 0):
        raise BadResult(f"'lr' is {_shown(value)}, not a positive finite number")
    if key == "loss" and not diverged and not (math.isfinite(x) and x > 0):
        raise BadResult(f"'loss' is {_shown(value)} in a run that did not diverge (must be finite and > 0)")
    if key == "weight_decay" and not (math.isfinite(x) and x >= 0):
        raise BadResult(f"'weight_decay' is {_shown(value)}, not a finite number >= 0")
    if key in ("wall_s", "tokens_per_s", "flops") and x < 0:  # NaN passes: unmeasured
        raise BadResult(f"{key!r} is {_shown(value)}, negative")
    return x


def check_result(row: Any) -> dict[str, Any]:
    """A result row checked key by key: every column the right kind of value.

    Returns the row with the RunRecord columns only, ints as ``int`` and floats as
    ``float``; an optional column may be absent or null. Raises :class:`BadResult`
    naming the first bad key. Rules: the ``RESULT_KEYS`` are present; counts
    (``params``, ``tokens``, ``batch_size``, the shape) are positive whole numbers;
    ``lr`` is positive and finite; ``loss`` is finite and positive unless the run
    diverged (then any number or null: NaN is how a diverged loss is written);
    ``diverged`` is true or false; text columns are non-empty strings.
    """
    if not isinstance(row, dict):
        raise BadResult(f"holds a JSON {type(row).__name__}, not an object of columns")
    missing = [k for k in RESULT_KEYS if k not in row]
    if missing:
        raise BadResult(f"has no {', '.join(repr(k) for k in missing)}")
    diverged = _checked("diverged", row["diverged"], False)
    out: dict[str, Any] = {}
    for key in COLUMNS:
        value = row.get(key)
        if value is None:
            if key in RESULT_KEYS and not (key == "loss" and diverged):
                raise BadResult(f"{key!r} is null")
            out[key] = math.nan if key == "loss" else None
            continue
        out[key] = _checked(key, value, diverged)
    return out
