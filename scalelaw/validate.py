"""One check for every number that enters scalelaw: from a file, the command line or the API.

:func:`number` takes a value as the user gave it and returns a plain ``float`` (or ``int``
where a count is required), or raises an :class:`~scalelaw.exceptions.InputError` (or the
subclass the caller names) whose message names the field and shows the value as typed.
It accepts Python ``int`` and ``float`` and numpy integer and floating scalars
(``np.int64``, ``np.float32``), and refuses ``bool`` (``True`` is not N = 1), strings,
``None``, arrays, NaN, infinities, values outside the field's range and fractions where
a count is required (a batch of 0.4 tokens is a typo, not 0 tokens).
:func:`positive_array` is the same for the array inputs of law evaluation.

Upper bounds. Counts become int64 in tables (params 1e19 overflowed to -9.2e18), and a
number far beyond any real training run is a typo, not a question. The bounds sit about
1000x beyond the largest runs published by 2025 (dense models of ~1e12 parameters,
training sets of ~4e13 tokens, ~5e26 FLOPs), well inside int64 (9.2e18).
"""

from __future__ import annotations

import math
import numbers
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from scalelaw.exceptions import InputError, show

MAX_PARAMS = 1e15  # non-embedding parameters N: ~1000x the largest dense models (~1e12)
MAX_TOKENS = 1e17  # training tokens D: ~1000x the largest training sets (~4e13 tokens)
MAX_BATCH_TOKENS = 1e12  # tokens per optimizer step: the largest batches are ~1e8
MAX_COMPUTE = 6.0 * MAX_PARAMS * MAX_TOKENS  # FLOPs, C = 6ND at both bounds
MAX_COUNT = 2**53  # an integer option (gpus, seeds, widths): beyond this floats lose integers


def _kind(value: Any) -> str:
    return "a bool" if isinstance(value, (bool, np.bool_)) else f"a {type(value).__name__}"


def is_number(value: Any) -> bool:
    """True for a real number scalar that is not a bool: int, float, numpy int or float."""
    if isinstance(value, (bool, np.bool_)):
        return False
    return isinstance(value, (numbers.Real, np.integer, np.floating))


def number(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    integral: bool = False,
    unit: str = "",
    error: type[InputError] = InputError,
    typed: str | None = None,
) -> Any:
    """``value`` checked and converted: ``int`` when ``integral``, else ``float``.

    ``low`` / ``high``: the allowed range (``low_open``: ``low`` itself excluded, e.g.
    ``low=0, low_open=True`` for a positive number). ``unit``: words after the bounds in
    the message (" tokens"). ``error``: the :class:`InputError` subclass to raise.
    ``typed``: the value as the user typed it (command-line text), shown instead of
    ``value``. The message names ``name``, the value and the allowed range.
    """
    shown = typed if typed is not None else show(value)
    what = _requirement(low, high, low_open, integral, unit)
    if not is_number(value):
        raise error(f"{name} must be {what}, got {shown} ({_kind(value)})")
    try:
        x = float(value)
    except (OverflowError, ValueError):  # an int beyond float range
        x = math.inf if value > 0 else -math.inf
    if math.isnan(x) or math.isinf(x):
        raise error(f"{name} must be {what}, got {shown}")
    if low is not None and (x < low or (low_open and x == low)):
        raise error(f"{name} must be {what}, got {shown}")
    if high is not None and x > high:
        raise error(f"{name} must be {what}, got {shown}: above the largest accepted value (a typo?)")
    if integral:
        if not x.is_integer():
            raise error(f"{name} must be {what}, got {shown} (not a whole number)")
        return int(value) if isinstance(value, (int, np.integer)) else int(x)
    return x


def _requirement(low: float | None, high: float | None, low_open: bool, integral: bool, unit: str) -> str:
    kind = "an integer" if integral else "a finite number"
    if low == 0 and low_open:
        kind = "a positive integer" if integral else "a positive finite number"
    elif low == 1 and integral:
        kind = "a positive integer"
    elif low == 0:
        kind = "a non-negative integer" if integral else "a non-negative finite number"
    elif low is not None:
        if low > 0:
            kind = "a positive integer" if integral else "a positive finite number"
        kind += f" {'>' if low_open else '>='} {low:g}"
    if high is not None and high != MAX_COUNT:  # a count's float-safety bound goes unsaid
        kind += f" up to {_bound(high)}"
    return kind + unit


def _bound(x: float) -> str:
    """A bound as people write it: 10,000 rather than 1e+04; 1e+15 stays."""
    return f"{int(x):,}" if float(x).is_integer() and abs(x) < 1e7 else f"{x:.3g}"


def positive(value: Any, name: str, *, high: float | None = None, unit: str = "", **kw: Any) -> float:
    """A positive finite float (``high``: its upper bound)."""
    return number(value, name, low=0, low_open=True, high=high, unit=unit, **kw)


def count(value: Any, name: str, *, low: int = 1, high: float = MAX_COUNT, **kw: Any) -> int:
    """An integer >= ``low`` (default: a positive integer), at most ``high``."""
    return number(value, name, low=low, high=high, integral=True, **kw)


def model_size(value: Any, name: str = "model_size", **kw: Any) -> float:
    """N, non-embedding parameters: a number in [1, MAX_PARAMS]."""
    return number(value, name, low=1, high=MAX_PARAMS, unit=" non-embedding parameters", **kw)


def tokens(value: Any, name: str = "tokens", **kw: Any) -> float:
    """D, training tokens: a number in [1, MAX_TOKENS]."""
    return number(value, name, low=1, high=MAX_TOKENS, unit=" tokens", **kw)


def seq_len(value: Any, name: str = "seq_len", **kw: Any) -> int:
    """Tokens per sequence: an integer in [1, MAX_TOKENS]."""
    return number(value, name, low=1, high=MAX_TOKENS, integral=True, unit=" tokens", **kw)


def positive_array(value: Any, name: str, *, high: float | None = None, error: type[InputError] = InputError):
    """``value`` (a number or an array of numbers) as a float array, every entry positive
    and finite (at most ``high``); refuses bools, strings and objects that are not numbers."""
    if is_number(value):
        return np.asarray(positive(value, name, high=high, error=error))
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        raise error(f"{name} must be a positive number or an array of them, got {_kind(value)}") from None
    if array.dtype.kind not in "iuf":
        if array.dtype.kind == "O":
            flat = array.ravel()
            if all(is_number(v) for v in flat):
                array = np.asarray([float(v) for v in flat], float).reshape(array.shape)
        if array.dtype.kind not in "iuf":
            raise error(
                f"{name} must be a positive number or an array of them, got {show(value)} "
                f"(an array of {array.dtype})"
            )
    array = array.astype(float)
    bad = ~np.isfinite(array) | (array <= 0)
    if high is not None:
        bad |= array > high
    if bad.any():
        first = array.ravel()[int(np.flatnonzero(bad.ravel())[0])]
        limit = "" if high is None else f" up to {high:.3g}"
        raise error(f"{name} must be positive and finite{limit}, got {show(first)} ({int(bad.sum())} such)")
    return array


def writable_file(path: str | os.PathLike, option: str) -> Path:
    """``path`` checked as a place to write a file, before any expensive work: not a
    directory, and the nearest existing folder on its way takes a new file there
    (a probe file is created and removed). Raises :class:`InputError` naming ``option``."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{option} {str(path)!r} is a directory: give a file name")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise InputError(f"{option} {str(path)!r}: {folder} is not a directory")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".scalelaw-probe-")
    except OSError as err:
        raise InputError(f"{option} {str(path)!r}: cannot write in {folder} ({err.strerror})") from None
    os.close(fd)
    os.unlink(probe)
    return path


def writable_dir(path: str | os.PathLike, option: str) -> Path:
    """``path`` checked as a directory to write into (existing or to be created)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{option} {str(path)!r} is a file, not a directory")
    writable_file(path / ".scalelaw-probe", option)
    return path


def existing_file(path: Any, what: str, error: type[InputError] = InputError) -> Path:
    """``path`` as a :class:`Path` to an existing file, or ``error`` naming it: not a path
    (``what`` says which argument), no such file, a directory, or a name the system refuses
    (too long, a NUL byte)."""
    if not isinstance(path, (str, os.PathLike)):
        raise error(f"{what} must be a file path, got {_kind(path)}")
    p = Path(path)
    try:
        if p.is_file():
            return p
        reason = "is a directory, not a file" if p.is_dir() else "no such file"
    except (OSError, ValueError) as err:  # ENAMETOOLONG, an embedded NUL byte
        reason = f"not a usable path ({err})"
    raise error(f"{p}: {reason}")


def strict_json(value: Any) -> Any:
    """``value`` with every NaN and infinity (nested in dicts, lists, tuples) replaced by
    None, so ``json.dumps(..., allow_nan=False)`` writes strict JSON (null), which every
    JSON reader accepts; numpy scalars become plain numbers."""
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    if isinstance(value, (np.bool_, np.integer, np.floating)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_text(path: str | os.PathLike, text: str, what: str) -> Path:
    """Write ``text`` to ``path`` atomically; a path that cannot be written is an
    :class:`InputError` naming it and ``what`` was being written."""
    from scalelaw.atomic import atomic_write_text

    try:
        return atomic_write_text(Path(path), text)
    except OSError as err:
        raise InputError(f"cannot write {what} to {str(path)!r}: {err.strerror or err}") from None
