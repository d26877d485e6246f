"""The runs table: one row per finished proxy run (schema in ``design.md``).

Units everywhere: ``params`` = non-embedding parameters N, ``tokens`` = training
tokens D, ``lr`` = peak learning rate, ``batch_size`` = tokens per optimizer step,
``loss`` = final loss (``loss_kind`` says which).

This module validates tables with errors that name the file, column, row and value,
reads and writes CSV / Parquet (writes are atomic), imports the Step Law table, and
marks diverged runs, which stay in the table but are left out of fits.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from scalelaw.atomic import atomic_write
from scalelaw.deprecation import keyword_only_since
from scalelaw.exceptions import RunsTableError, show
from scalelaw.record import REQUIRED_COLUMNS, stable_id

INTEGER_COLUMNS = ("params", "tokens", "batch_size")
# Columns besides (params, tokens) that separate one cell from another when present.
RECIPE_COLUMNS = ("parametrization", "schedule", "warmup", "weight_decay", "seq_len")
MIN_LRS_PER_CELL = 3
# A run whose loss exceeds 1.5x its cell's best is a blow-up. In the Step Law table the
# ratios jump from 1.20 straight to 1.70 (181 runs above, all at high lr), so any factor
# in that gap separates the two; 1.5 sits in its middle.
BLOWUP_FACTOR = 1.5
STEPLAW_SEQ_LEN = 2048  # Step Law README: `bs` counts sequences of 2048 tokens


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
    if not isinstance(runs, pd.DataFrame):
        raise RunsTableError(f"{source}: expected a pandas DataFrame, got {type(runs).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in runs.columns]
    if missing:
        raise RunsTableError(
            f"{source}: missing required column(s) {missing}; columns present: {list(runs.columns)}"
        )
    if runs.empty:
        raise RunsTableError(f"{source}: the runs table has no rows")
    out = runs.reset_index(drop=True).copy()
    out["run_id"] = out["run_id"].astype(str)

    for col in ("params", "tokens", "lr", "batch_size", "loss"):
        values = pd.to_numeric(out[col], errors="coerce")
        bad = values.isna() & out[col].notna()
        if bad.any():
            pos = int(np.flatnonzero(bad.to_numpy())[0])
            raise RunsTableError(
                f"{source}: column {col!r}, {_row_label(out, pos, source)}: "
                f"value {show(out[col].iloc[pos])} is not a number"
            )
        out[col] = values.astype(float)

    for col in ("params", "tokens", "lr", "batch_size"):
        v = out[col].to_numpy()
        bad = ~np.isfinite(v) | (v <= 0)
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            raise RunsTableError(
                f"{source}: column {col!r}, {_row_label(out, pos, source)}: value {show(v[pos])} "
                f"must be a positive finite number ({int(bad.sum())} such row(s))"
            )
    loss = out["loss"].to_numpy()
    bad = np.isfinite(loss) & (loss <= 0)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise RunsTableError(
            f"{source}: column 'loss', {_row_label(out, pos, source)}: value {show(loss[pos])} "
            "must be > 0 (a diverged run may have NaN or inf loss, not zero or negative)"
        )
    for col in INTEGER_COLUMNS:
        out[col] = np.round(out[col]).astype("int64")

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
    path = Path(path)
    if not path.is_file():
        raise RunsTableError(f"{path}: no such file")
    fmt = (table_format or _format_from_suffix(path)).lower()
    if fmt == "steplaw":
        return import_steplaw(path)
    if fmt == "csv":
        try:
            table = pd.read_csv(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise RunsTableError(f"{path}: not a readable CSV file ({err})") from None
    elif fmt == "parquet":
        try:
            table = pd.read_parquet(path)
        except Exception as err:  # pyarrow raises several unrelated types
            raise RunsTableError(f"{path}: not a readable Parquet file ({err})") from None
    else:
        raise RunsTableError(f"{path}: unknown format {fmt!r}; use csv, parquet or steplaw")
    return validate_runs(table, source=str(path))


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
    path = Path(path)
    fmt = _format_from_suffix(path)
    table = validate_runs(runs, source=str(path), min_lrs=1)
    if fmt == "csv":
        atomic_write(path, lambda tmp: table.to_csv(tmp, index=False))
    else:
        atomic_write(path, lambda tmp: table.to_parquet(tmp, index=False))
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
    path = Path(path)
    try:
        raw = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise RunsTableError(f"{path}: not a readable CSV file ({err})") from None
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
