"""The runs table: one row per finished proxy run (schema in ``design.md``).

Units everywhere: ``params`` = non-embedding parameters N, ``tokens`` = training
tokens D, ``lr`` = peak learning rate, ``batch_size`` = tokens per optimizer step,
``loss`` = final loss (``loss_kind`` says which).

This module validates tables with errors that name the file, column, row and value,
reads and writes CSV / Parquet (writes are atomic), imports the Step Law table, and
marks diverged runs, which stay in the table but are left out of fits.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from scalelaw.atomic import atomic_write
from scalelaw.deprecation import keyword_only_since
from scalelaw.exceptions import RunsTableError, show
from scalelaw.record import REQUIRED_COLUMNS, stable_id
from scalelaw.validate import (
    MAX_BATCH_TOKENS,
    MAX_COUNT,
    MAX_PARAMS,
    MAX_TOKENS,
    count,
    existing_file,
    is_number,
    number,
)

INTEGER_COLUMNS = ("params", "tokens", "batch_size")
# Columns besides (params, tokens) that separate one cell from another when present.
RECIPE_COLUMNS = ("parametrization", "schedule", "warmup", "weight_decay", "seq_len")
MIN_LRS_PER_CELL = 3
# A run whose loss exceeds 1.5x its cell's best is a blow-up. In the Step Law table the
# ratios jump from 1.20 straight to 1.70 (181 runs above, all at high lr), so any factor
# in that gap separates the two; 1.5 sits in its middle.
BLOWUP_FACTOR = 1.5
STEPLAW_SEQ_LEN = 2048  # Step Law README: `bs` counts sequences of 2048 tokens
# Upper bounds of the count columns (scalelaw.validate: far beyond any real run, inside int64).
COUNT_BOUNDS = (
    ("params", MAX_PARAMS, "non-embedding parameters"),
    ("tokens", MAX_TOKENS, "tokens"),
    ("batch_size", MAX_BATCH_TOKENS, "tokens per step"),
)
# Optional numeric columns (RunRecord) and the least value each may hold; missing = unknown.
# "int" marks whole numbers >= 1; a number is the least value of a real-valued column.
OPTIONAL_NUMERIC: dict[str, float | str] = {
    "seq_len": "int",
    "width": "int",
    "depth": "int",
    "heads": "int",
    "base_width": "int",
    "base_depth": "int",
    "warmup": 0.0,
    "weight_decay": 0.0,
    "tokens_trained": 0.0,
    "wall_s": 0.0,
    "tokens_per_s": 0.0,
    "flops": 0.0,
}


def cell_columns(runs: pd.DataFrame) -> list[str]:
    """Columns whose values define a cell: (params, tokens) plus any recipe columns."""
    return ["params", "tokens", *[c for c in RECIPE_COLUMNS if c in runs.columns]]


def _row_label(runs: pd.DataFrame, pos: int, source: str) -> str:
    run_id = runs["run_id"].iloc[pos] if "run_id" in runs.columns else None
    where = f"line {pos + 2}" if source.lower().endswith(".csv") else f"row {pos}"
    return f"{where} (run_id={run_id!r})" if run_id is not None else where


@keyword_only_since("0.2")
def validate_runs(
    runs: pd.DataFrame, *, source: str = "<DataFrame>", min_lrs: int = MIN_LRS_PER_CELL
) -> pd.DataFrame:
    """Check a runs table and return a normalized copy.

    Parameters
    ----------
    runs : DataFrame
        One row per run, the schema of ``../shared/design.md``.
    source : str
        Where the table came from, named in every error.
    min_lrs : int
        Fewest distinct lr values a cell must have (1 checks the schema only).

    Returns
    -------
    DataFrame
        The normalized copy (below).

    Raises :class:`RunsTableError` for: a missing required column, a value that is not
    a number, a non-positive or non-finite ``params``/``tokens``/``lr``/``batch_size``,
    a loss <= 0, duplicate ``run_id`` values, and a cell with fewer than 3 distinct lr
    values (``min_lrs``; 1 checks the schema only, e.g. for a sweep still running).
    A NaN or infinite loss is not an error: that run is marked diverged.
    The copy has integer N, D, batch size, float lr and loss, and a bool ``diverged``.
    """
    source = str(source)
    if not isinstance(runs, pd.DataFrame):
        raise RunsTableError(f"{source}: expected a pandas DataFrame, got {type(runs).__name__}")
    min_lrs = count(min_lrs, "validate_runs: min_lrs", high=MAX_COUNT)
    doubled = runs.columns[runs.columns.duplicated()].unique()
    if len(doubled):
        raise RunsTableError(f"{source}: column(s) {list(doubled)} appear more than once; keep one of each")
    missing = [c for c in REQUIRED_COLUMNS if c not in runs.columns]
    if missing:
        raise RunsTableError(
            f"{source}: missing required column(s) {missing}; columns present: {list(runs.columns)}"
        )
    if runs.empty:
        raise RunsTableError(f"{source}: the runs table has no rows")
    out = runs.reset_index(drop=True).copy()
    out["run_id"] = out["run_id"].astype(str)

    typed = {col: out[col] for col in ("params", "tokens", "lr", "batch_size", "loss")}  # as given
    for col in typed:
        out[col] = _numeric_column(out, col, source)

    for col in ("params", "tokens", "lr", "batch_size"):
        v = out[col].to_numpy()
        bad = ~np.isfinite(v) | (v <= 0)
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            raise RunsTableError(
                f"{source}: column {col!r}, {_row_label(out, pos, source)}: value "
                f"{show(typed[col].iloc[pos])} must be a positive finite number "
                f"({int(bad.sum())} such row(s))"
            )
    for col, high, unit in COUNT_BOUNDS:
        v = out[col].to_numpy()
        for bad, what in (
            (v > high, f"is beyond {high:.3g} {unit}, scalelaw's bound (a typo?)"),
            (
                ~np.isclose(v, np.round(v), rtol=1e-12, atol=1e-6) | (np.round(v) < 1),
                f"must be a whole number >= 1 of {unit}",
            ),
        ):
            if bad.any():
                pos = int(np.flatnonzero(bad)[0])
                raise RunsTableError(
                    f"{source}: column {col!r}, {_row_label(out, pos, source)}: value "
                    f"{show(typed[col].iloc[pos])} {what} ({int(bad.sum())} such row(s))"
                )
    loss = out["loss"].to_numpy()
    bad = np.isfinite(loss) & (loss <= 0)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise RunsTableError(
            f"{source}: column 'loss', {_row_label(out, pos, source)}: value {show(typed['loss'].iloc[pos])} "
            "must be > 0 (a diverged run may have NaN or inf loss, not zero or negative)"
        )
    for col in INTEGER_COLUMNS:
        out[col] = np.round(out[col]).astype("int64")
    over = out["batch_size"].to_numpy() > out["tokens"].to_numpy()
    if over.any():
        pos = int(np.flatnonzero(over)[0])
        raise RunsTableError(
            f"{source}: column 'batch_size', {_row_label(out, pos, source)}: value "
            f"{show(out['batch_size'].iloc[pos])} tokens per step exceeds the run's column 'tokens', "
            f"{show(out['tokens'].iloc[pos])}: less than one optimizer step (is batch_size in tokens?)"
        )
    for col, low in OPTIONAL_NUMERIC.items():
        if col in out.columns:
            out[col] = _optional_column(out, col, low, source)

    dup = out["run_id"].duplicated(keep=False)
    if dup.any():
        ids = out.loc[dup, "run_id"].unique()[:3]
        rows = [_row_label(out, int(p), source) for p in np.flatnonzero(dup.to_numpy())[:4]]
        raise RunsTableError(
            f"{source}: column 'run_id' has duplicate values {list(ids)} at {rows}; "
            "every run needs a unique id (the hash of its spec)"
        )

    if "diverged" in out.columns:
        flag = out["diverged"]
        if flag.dtype != bool:
            mapped = flag.map(_parse_bool)
            if mapped.isna().any():
                pos = int(np.flatnonzero(mapped.isna().to_numpy())[0])
                raise RunsTableError(
                    f"{source}: column 'diverged', {_row_label(out, pos, source)}: "
                    f"value {show(flag.iloc[pos])} is not true/false"
                )
            flag = mapped.astype(bool)
        out["diverged"] = flag.astype(bool)
    else:
        out["diverged"] = False

    keys = cell_columns(out)
    n_lr = out.groupby(keys, dropna=False)["lr"].nunique()
    thin = n_lr[n_lr < min_lrs]
    if len(thin):
        index = thin.index[0]
        cell = dict(zip(keys, index if isinstance(index, tuple) else (index,), strict=True))
        rows = np.flatnonzero(np.logical_and.reduce([out[k].to_numpy() == v for k, v in cell.items()]))
        raise RunsTableError(
            f"{source}: column 'lr': cell {_fmt_cell(cell)} has only {int(thin.iloc[0])} "
            f"distinct lr value(s) (rows {[_row_label(out, int(r), source) for r in rows[:4]]}); "
            f"a cell needs at least {min_lrs} to locate its optimum "
            f"({len(thin)} such cell(s))"
        )
    return out


def _numeric_column(out: pd.DataFrame, col: str, source: str) -> pd.Series:
    """A required column as floats; a value that is not a number (text, a bool) is an error
    naming the row. Missing values stay NaN (the callers decide what NaN means)."""
    column = out[col]
    if pd.api.types.is_bool_dtype(column.dtype):
        raise RunsTableError(
            f"{source}: column {col!r} holds true/false values ({_row_label(out, 0, source)}: "
            f"{show(column.iloc[0])}), not numbers"
        )
    values = pd.to_numeric(column, errors="coerce") if column.dtype.kind in "iuf" else None
    if values is None:
        values = pd.Series(
            [_to_float(v) for v in column.to_numpy(dtype=object)], index=column.index, dtype=float
        )
    bad = values.isna() & column.notna()
    if bad.any():
        pos = int(np.flatnonzero(bad.to_numpy())[0])
        raise RunsTableError(
            f"{source}: column {col!r}, {_row_label(out, pos, source)}: "
            f"value {show(column.iloc[pos])} is not a number"
        )
    return values.astype(float)


def _to_float(v: object) -> float:
    """One cell as a float: NaN for a value that is not a number (text that does not read
    as one, a bool, an object); missing values (None, NaN) are NaN too."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return math.nan
    if isinstance(v, str):
        try:
            return float(v.strip())
        except ValueError:
            return math.nan
    if not is_number(v):
        return math.nan
    try:
        return float(v)
    except (OverflowError, ValueError):
        return math.inf


def _optional_column(out: pd.DataFrame, col: str, low: float | str, source: str) -> pd.Series:
    """An optional numeric column checked: numbers where present, >= ``low`` (or whole
    numbers >= 1 for "int"); missing values (None, NaN) mean unknown and stay."""
    column = out[col]
    if column.isna().all():
        return column
    values = _numeric_column(out, col, source)
    v = values.to_numpy()
    present = ~np.isnan(v)
    if low == "int":
        with np.errstate(invalid="ignore"):  # inf - inf: refused as not finite anyway
            fractional = np.abs(v - np.round(v)) > 1e-9
        bad = present & (~np.isfinite(v) | (v < 1) | fractional | (v > MAX_TOKENS))
        what = f"must be a whole number >= 1 up to {MAX_TOKENS:.3g}"
    else:
        bad = present & (~np.isfinite(v) | (v < low))
        what = f"must be a finite number >= {low:g}"
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise RunsTableError(
            f"{source}: column {col!r}, {_row_label(out, pos, source)}: value {show(column.iloc[pos])} "
            f"{what} (or missing)"
        )
    return values if column.dtype.kind not in "iuf" else column


def _check_validated(runs: object, where: str) -> None:
    """A runs table with the columns divergence needs (cheap: not a full validation)."""
    if not isinstance(runs, pd.DataFrame) or any(c not in runs.columns for c in ("params", "tokens", "loss")):
        raise RunsTableError(
            f"{where}: expected a validated runs table (scalelaw.validate_runs), got "
            + (f"columns {list(runs.columns)}" if isinstance(runs, pd.DataFrame) else type(runs).__name__)
        )


def _parse_bool(v: object) -> bool | None:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer, float)) and v in (0, 1):
        return bool(v)
    s = str(v).strip().lower()
    return {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}.get(s)


def _fmt_cell(cell: dict) -> str:
    parts = []
    for k, v in cell.items():
        parts.append(f"{k}={v:.4g}" if isinstance(v, (float, np.floating, int, np.integer)) else f"{k}={v}")
    return "(" + ", ".join(parts) + ")"


def divergence_reason(runs: pd.DataFrame, blowup: float = BLOWUP_FACTOR) -> pd.Series:
    """Why each run is left out of fits: '' (kept), 'nonfinite', 'flagged' or 'blowup'.

    ``blowup``: a finite loss more than ``blowup`` times its cell's best finite loss,
    the second best where the cell has 3 or more: one mistyped loss far below the rest
    must not make the cell's good runs look blown up.
    """
    _check_validated(runs, "divergence_reason")
    blowup = number(blowup, "blowup (loss / cell best)", low=1.0)
    loss = runs["loss"].to_numpy(dtype=float)
    finite = np.isfinite(loss)
    flagged = runs["diverged"].to_numpy(dtype=bool) if "diverged" in runs else np.zeros(len(runs), bool)
    best = (
        runs.assign(_l=np.where(finite & ~flagged, loss, np.inf))
        .groupby(cell_columns(runs), dropna=False)["_l"]
        .transform(lambda cell: cell.nsmallest(2).max() if np.isfinite(cell).sum() >= 3 else cell.min())
        .to_numpy()
    )
    reason = np.full(len(runs), "", dtype=object)
    reason[finite & ~flagged & (loss > blowup * best)] = "blowup"
    reason[flagged] = "flagged"
    reason[~finite] = "nonfinite"
    return pd.Series(reason, index=runs.index, name="excluded")


@keyword_only_since("0.2")
def usable_runs(runs: pd.DataFrame, *, blowup: float = BLOWUP_FACTOR) -> tuple[pd.DataFrame, str]:
    """Runs that enter fits, and a note counting those left out (empty if none).

    Parameters
    ----------
    runs : DataFrame
        A validated runs table.
    blowup : float
        A run whose loss exceeds ``blowup`` times its cell's best counts as diverged,
        as do NaN/inf losses and runs flagged ``diverged``.

    Returns
    -------
    (DataFrame, str)
        The kept runs and a one-line note of what was left out and why.
    """
    reason = divergence_reason(runs, blowup)
    kept = runs[reason == ""]
    counts = reason[reason != ""].value_counts()
    if counts.empty:
        return kept, ""
    what = {
        "nonfinite": "NaN/inf loss",
        "flagged": "flagged diverged",
        "blowup": f"loss > {blowup:g}x cell best",
    }
    detail = ", ".join(f"{int(n)} {what[k]}" for k, n in counts.items())
    return kept, f"left out {int(counts.sum())} of {len(runs)} runs as diverged ({detail})"


def read_runs(
    path: str | os.PathLike, table_format: str | None = None, *, format: str | None = None
) -> pd.DataFrame:
    """Read and validate a runs table.

    Parameters
    ----------
    path : path
        A CSV or Parquet runs table (design.md schema), or the Step Law dense CSV.
    table_format : {"csv", "parquet", "steplaw"}, optional
        None infers csv / parquet from the extension. (``format=`` is the deprecated
        spelling: it shadowed the builtin.)

    Returns
    -------
    DataFrame
        The validated table (integer params, tokens and batch_size in tokens; finite lr).

    Raises
    ------
    RunsTableError
        Naming the file, column, row and value of what is wrong.
    """
    if format is not None:
        warnings.warn(
            "read_runs(format=...) is deprecated; use table_format=...", DeprecationWarning, stacklevel=2
        )
        if table_format is not None:
            raise RunsTableError("read_runs: give table_format, not both table_format and format")
        table_format = format
    if table_format is not None and not isinstance(table_format, str):
        raise RunsTableError(
            f"read_runs: table_format must be csv, parquet or steplaw, got {show(table_format)}"
        )
    path = existing_file(path, "read_runs: path", RunsTableError)
    fmt = (table_format or _format_from_suffix(path)).lower()
    if fmt == "steplaw":
        return import_steplaw(path)
    if fmt == "csv":
        table = _read_csv(path)
    elif fmt == "parquet":
        try:
            table = pd.read_parquet(path)
        except Exception as err:  # pyarrow raises several unrelated types
            raise RunsTableError(f"{path}: not a readable Parquet file ({err})") from None
    else:
        raise RunsTableError(f"{path}: unknown format {fmt!r}; use csv, parquet or steplaw")
    return validate_runs(table, source=str(path))


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise RunsTableError(f"{path}: not a readable CSV file ({' '.join(str(err).split())})") from None
    except OSError as err:
        raise RunsTableError(f"{path}: cannot read the file ({err.strerror or err})") from None


def _format_from_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise RunsTableError(
        f"{path}: cannot tell the format from the extension {suffix!r}; pass table_format= (CLI: --format)"
    )


def write_runs(runs: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Validate the schema and write a runs table atomically (temp file + rename).

    Parameters
    ----------
    runs : DataFrame
        A runs table; cells may hold any number of lr values here (a sweep in
        progress); :func:`read_runs` for fitting asks for 3.
    path : path
        Destination, CSV or Parquet by its extension.

    Returns
    -------
    Path
        The path written.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise RunsTableError(f"write_runs: path must be a file path, got {type(path).__name__}")
    path = Path(path)
    fmt = _format_from_suffix(path)
    table = validate_runs(runs, source=str(path), min_lrs=1)
    try:
        if fmt == "csv":
            atomic_write(path, lambda tmp: table.to_csv(tmp, index=False))
        else:
            atomic_write(path, lambda tmp: table.to_parquet(tmp, index=False))
    except OSError as err:
        raise RunsTableError(f"{path}: cannot write the runs table ({err.strerror or err})") from None
    return path


STEPLAW_COLUMNS = ("h", "ffnh", "numh", "numl", "lr", "bs", "smooth loss", "N", "D")


@keyword_only_since("0.2")
def import_steplaw(path: str | os.PathLike, *, seq_len: int = STEPLAW_SEQ_LEN) -> pd.DataFrame:
    """Convert the Step Law dense table (Li et al. 2025) to the runs-table schema.

    Parameters
    ----------
    path : path
        The published CSV (columns ``N``, ``D``, ``lr``, ``bs``, ``smooth loss``).
    seq_len : int
        Tokens per sequence: ``bs`` counts sequences of this many tokens.

    Returns
    -------
    DataFrame
        A validated runs table: ``smooth loss`` (smoothed final training loss) becomes
        ``loss``; ``N`` is already non-embedding.
    """
    seq_len = count(seq_len, "import_steplaw: seq_len", high=MAX_TOKENS, error=RunsTableError)
    path = existing_file(path, "import_steplaw: path", RunsTableError)
    raw = _read_csv(path)
    missing = [c for c in STEPLAW_COLUMNS if c not in raw.columns]
    if missing:
        raise RunsTableError(
            f"{path}: not a Step Law table: missing column(s) {missing}; columns present: {list(raw.columns)}"
        )
    bs = pd.to_numeric(raw["bs"], errors="coerce")
    if "exp_name" in raw.columns and raw["exp_name"].is_unique:
        run_id = raw["exp_name"].astype(str)
    else:
        run_id = pd.Series([stable_id(r) for r in raw[list(STEPLAW_COLUMNS)].to_numpy()])
    table = pd.DataFrame(
        {
            "run_id": run_id,
            "params": raw["N"],
            "tokens": raw["D"],
            "lr": raw["lr"],
            "batch_size": bs * seq_len,
            "loss": raw["smooth loss"],
            "loss_kind": "smoothed_train",
            "seq_len": seq_len,
            "width": raw["h"],
            "depth": raw["numl"],
            "heads": raw["numh"],
            "parametrization": "sp",
        }
    )
    return validate_runs(table, source=str(path))
