"""Bring your own runs: import runs logged to MLflow or W&B as a runs table.

    scalelaw import wandb ENTITY/PROJECT -o runs.parquet --seq-len 2048
    scalelaw import wandb wandb_export.csv -o runs.parquet --map lr=learning_rate
    scalelaw import mlflow sqlite:///mlflow.db --experiment sweep -o runs.parquet

    runs = scalelaw.import_runs("mlflow", "sqlite:///mlflow.db", mapping={"lr": "optimizer.lr"})

Sources, each read into one row per run of its hyperparameters and final metrics:

- MLflow: a tracking URI (``sqlite:///mlflow.db``, ``http://host:5000``, ``file:./mlruns``)
  or a local path (a ``.db`` file, an ``mlruns`` folder), read through MLflow's own client
  (``MlflowClient.search_runs``, the call under ``mlflow.search_runs``; the client is
  given the URI, so the process's tracking URI is left alone). Params (strings in
  MLflow) are hyperparameters, metrics (their last value) the results.
- W&B: ``wandb.Api().runs("entity/project")``: ``run.config`` (nested keys joined by
  dots) are hyperparameters, ``run.summary`` the results.
- W&B's runs-table CSV export (the table's download button): columns ``Name``,
  ``State``, ..., then config and summary keys side by side, told apart by nothing.

The mapping from the tracker's names to the runs table's columns is guessed from common
names (``lr``, ``learning_rate``, ``optimizer.lr``, ``global_batch_size``,
``val/loss``, ...), every guess printed; ``mapping`` (CLI ``--map lr=NAME``) overrides.
Rules:

- A guess must be unique: two candidates for a required column (say ``learning_rate``
  and ``lr``, where the second is the last *scheduled* lr W&B logs as a metric) stop the
  import with both named and the ``--map`` that settles it. lr and batch size are read
  only from hyperparameters, never from metrics.
- Batch size: the runs table counts tokens per optimizer step. A batch column whose
  name says ``token`` counts tokens; any other counts sequences and needs the sequence
  length, given (``seq_len=`` / ``--seq-len``) or mapped (``--map seq_len=block_size``),
  never guessed. ``batch_unit`` overrides the name.
- Params are non-embedding parameters; a generic name (``n_params``) is taken as such
  with a printed note to check it. Tokens come from a tokens column, else from a steps
  column times the batch in tokens.
- Loss: a validation loss first (``val/loss``, ``eval_loss``), then a plain ``loss``,
  then a training loss; ``loss_kind`` records which. NaN or infinite losses are kept and
  marked diverged, as in every runs table.
- Runs not in a kept state (default: finished; failed, crashed, killed and running runs
  have no final loss) and runs missing a required value are left out, each listed by
  name with why, never silently.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from scalelaw.exceptions import InputError, RunsTableError, show
from scalelaw.extras import import_extra, install_hint
from scalelaw.record import COLUMNS, stable_id
from scalelaw.runs import validate_runs, write_runs

SOURCES = ("wandb", "mlflow")
BATCH_UNITS = ("tokens", "sequences")
# Run states as the trackers name them (lower case): W&B finished / failed / crashed /
# killed / running / pending; MLflow FINISHED / FAILED / KILLED / RUNNING / SCHEDULED.
STATES = ("finished", "failed", "crashed", "killed", "running", "pending", "scheduled")
DEFAULT_STATES = ("finished",)

# Where a column came from: a hyperparameter (W&B config, MLflow param), a result (W&B
# summary, MLflow metric), or unknown (a W&B CSV export mixes both under plain names).
CONFIG, METRIC, ANY = "config", "metric", "any"


@dataclass(frozen=True)
class Target:
    """A runs-table column the importer fills: its names (normalised, best tier first)
    and which origins it may be read from (preferred first)."""

    column: str
    tiers: tuple[tuple[str, ...], ...]
    origins: tuple[str, ...]
    required: bool = True
    numeric: bool = True


LR = Target(
    "lr",
    (
        (
            "lr",
            "learning_rate",
            "peak_lr",
            "max_lr",
            "lr_max",
            "lr_peak",
            "base_lr",
            "peak_learning_rate",
            "max_learning_rate",
            "optimizer_lr",
        ),
    ),
    (CONFIG,),
)
BATCH = Target(
    "batch_size",
    (
        (
            # counting tokens (the name says so)
            "tokens_per_batch",
            "batch_tokens",
            "batch_size_tokens",
            "global_batch_tokens",
            "tokens_per_step",
            "train_batch_tokens",
            "batch_size_in_tokens",
            "global_batch_size_tokens",
            "tokens_per_iter",
            # counting sequences
            "batch_size",
            "global_batch_size",
            "train_batch_size",
            "total_batch_size",
            "effective_batch_size",
            "global_train_batch_size",
            "bs",
            "batch",
        ),
    ),
    (CONFIG,),
)
PARAMS = Target(
    "params",
    (
        (
            "non_embedding_params",
            "params_non_embedding",
            "n_params_non_embedding",
            "num_params_non_embedding",
            "non_embedding_parameters",
            "nonembedding_params",
            "n_params_nonembed",
            "non_emb_params",
            "n_non_embedding_params",
            "num_non_embedding_params",
        ),
        (
            "params",
            "n_params",
            "num_params",
            "num_parameters",
            "n_parameters",
            "model_params",
            "parameters",
            "param_count",
            "total_params",
            "model_size",
            "nparams",
        ),
    ),
    (CONFIG, METRIC),
)
TOKENS = Target(
    "tokens",
    (
        (
            "tokens",
            "total_tokens",
            "train_tokens",
            "training_tokens",
            "num_tokens",
            "n_tokens",
            "max_tokens",
            "token_budget",
            "tokens_budget",
            "num_train_tokens",
            "total_train_tokens",
        ),
        ("tokens_seen", "num_tokens_seen", "consumed_tokens", "tokens_trained", "total_tokens_seen"),
    ),
    (CONFIG, METRIC),
)
STEPS = Target(
    "steps",
    (
        (
            "max_steps",
            "total_steps",
            "train_steps",
            "num_steps",
            "max_iters",
            "num_train_steps",
            "training_steps",
            "num_training_steps",
            "num_iterations",
            "total_iters",
            "train_iters",
            "max_iter",
            "n_steps",
        ),
    ),
    (CONFIG, METRIC),
    required=False,
)
LOSS_KINDS = ("validation", "unspecified", "train")
LOSS = Target(
    "loss",
    (
        (
            "val_loss",
            "valid_loss",
            "validation_loss",
            "eval_loss",
            "val_lm_loss",
            "eval_lm_loss",
            "validation_lm_loss",
            "val_ce_loss",
            "eval_ce_loss",
            "loss_val",
            "loss_valid",
            "loss_validation",
            "loss_eval",
            "final_val_loss",
        ),
        ("loss", "final_loss", "lm_loss", "ce_loss"),
        (
            "train_loss",
            "training_loss",
            "train_lm_loss",
            "train_ce_loss",
            "loss_train",
            "smoothed_train_loss",
            "final_train_loss",
        ),
    ),
    (METRIC,),
)
# Guessed when unique, skipped with a note when not: a recipe column that varies across
# runs splits cells, so it is worth carrying when the runs have it.
OPTIONAL = (
    Target("weight_decay", (("weight_decay", "wd", "optimizer_weight_decay"),), (CONFIG,), False),
    Target(
        "width",
        (("d_model", "hidden_size", "n_embd", "n_embed", "width", "model_dim", "dim", "hidden_dim"),),
        (CONFIG,),
        False,
    ),
    Target("depth", (("n_layer", "n_layers", "num_layers", "num_hidden_layers", "depth"),), (CONFIG,), False),
    Target("heads", (("n_head", "n_heads", "num_heads", "num_attention_heads"),), (CONFIG,), False),
    Target("seed", (("seed", "random_seed"),), (CONFIG,), False),
    Target(
        "schedule",
        (("lr_schedule", "schedule", "scheduler", "lr_scheduler", "lr_scheduler_type", "lr_decay_style"),),
        (CONFIG,),
        False,
        numeric=False,
    ),
    Target("parametrization", (("parametrization", "parameterization"),), (CONFIG,), False, numeric=False),
)
GUESSED = (LR, BATCH, PARAMS, TOKENS, STEPS, LOSS, *OPTIONAL)
# Named as candidates in messages, never taken unasked (a wrong one scales every batch).
SEQ_LEN_NAMES = (
    "seq_len",
    "seq_length",
    "sequence_length",
    "block_size",
    "max_seq_len",
    "max_seq_length",
    "context_length",
    "ctx_len",
    "n_ctx",
    "seqlen",
)
# Columns that say a batch may count one device or one micro-step, not the optimizer step.
PER_DEVICE_HINTS = (
    "gradient_accumulation_steps",
    "grad_accum_steps",
    "grad_accumulation_steps",
    "accumulate_grad_batches",
    "per_device_train_batch_size",
    "micro_batch_size",
    "world_size",
)
# What --map may name besides the runs table's own columns.
MAP_EXTRA = ("steps",)
# W&B CSV export: columns about the run, not its config or results.
WANDB_META = (
    "name",
    "state",
    "notes",
    "user",
    "tags",
    "created",
    "runtime",
    "sweep",
    "id",
    "end time",
    "updated",
    "group",
    "job type",
    "hostname",
    "description",
    "commit",
    "github",
)


def normalise(name: str) -> str:
    """Compare names as ``optimizer_lr``: lower case, separators (``. / - space``) as ``_``."""
    return re.sub(r"[\s./\-]+", "_", name.strip().lower()).strip("_")


def _leaf(key: str) -> str:
    return normalise(re.split(r"[./]", key.strip())[-1])


@dataclass(frozen=True)
class Column:
    """One column of a source: the name shown to the user, its origin and its key."""

    name: str
    origin: str
    key: str


@dataclass
class SourceRuns:
    """Runs as a tracker holds them, one entry per run.

    ``values[i]`` maps column names to raw values (strings from CSV and MLflow params,
    numbers, or None where a run did not log that key). ``states[i]`` is None where the
    source says nothing about state.
    """

    label: str
    ids: list[str]
    names: list[str]
    states: list[str | None]
    columns: dict[str, Column]
    values: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Mapped:
    """Where a runs-table column comes from: the source column, given or guessed, and a note."""

    target: str
    column: str
    how: str  # "given" | "guessed"
    note: str = ""
    kind: str = ""  # the loss's: validation | unspecified | train


@dataclass
class ImportResult:
    """A converted runs table and the account of how it was made."""

    table: pd.DataFrame
    source: str
    mapped: list[Mapped]
    left_out: list[tuple[str, str, str]]  # (run name, run id, why)
    notes: list[str]
    n_runs: int

    def lines(self) -> list[str]:
        """The account, one line each: source, every mapping, every run left out, notes."""
        out = [f"scalelaw import: {self.n_runs} runs in {self.source}"]
        width = max(len(m.target) for m in self.mapped)
        for m in self.mapped:
            how = "(given)" if m.how == "given" else f"(guessed; --map {m.target}=NAME to change)"
            out.append(f"  {m.target:<{width}} <- {m.column}  {how}" + (f"; {m.note}" if m.note else ""))
        if self.left_out:
            out.append(f"left out {len(self.left_out)} of {self.n_runs} runs:")
            by_reason: dict[str, list[str]] = {}
            for name, run_id, why in self.left_out:
                label = name if name == run_id else f"{name} ({run_id})"
                by_reason.setdefault(why, []).append(label)
            for why, names in by_reason.items():
                out.append(f"  {why}: {', '.join(names)}")
        out.extend(f"note: {n}" for n in self.notes)
        out.append(f"kept {len(self.table)} runs")
        return out


# ---------------------------------------------------------------------------------------
# Sources


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Nested dicts as dot-joined keys; keys starting with '_' (W&B internals) and W&B
    media objects (dicts with a '_type') left out."""
    if isinstance(value, Mapping):
        if "_type" in value:
            return
        for k, v in value.items():
            k = str(k)
            if k.startswith("_"):
                continue
            yield from _flatten(v, f"{prefix}{k}.")
    elif prefix:
        yield prefix[:-1], value


def _state(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip().lower()
    return text or None


def read_wandb_csv(path: str | os.PathLike) -> SourceRuns:
    """The CSV W&B's runs table exports: ``Name``, ``State``, ..., then config and
    summary columns under their plain names (origin unknown)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file (a CSV exported from the W&B runs table)")
    try:  # as text: '' is a value not logged, 'NaN' a logged NaN (a diverged loss)
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not a readable CSV file ({err})") from None
    if raw.empty:
        raise InputError(f"{path}: the CSV has no runs (no rows below the header)")
    by_lower = {c.strip().lower(): c for c in raw.columns}
    notes = []
    name_col, state_col, id_col = (by_lower.get(k) for k in ("name", "state", "id"))
    if name_col is None:
        notes.append(f"{path.name} has no 'Name' column: runs are named by their CSV line")
        names = [f"line {i + 2}" for i in range(len(raw))]
    else:
        names = [str(v) for v in raw[name_col]]
    if state_col is None:
        notes.append(f"{path.name} has no 'State' column: every run is taken as finished")
        states: list[str | None] = [None] * len(raw)
    else:
        states = [_state(v) for v in raw[state_col]]
    data_cols = [c for c in raw.columns if c.strip().lower() not in WANDB_META]
    rows = raw[data_cols].to_dict("records")
    values = [{k: (v if v.strip() != "" else None) for k, v in row.items()} for row in rows]
    ids = _csv_ids(raw, id_col, names)
    columns = {c: Column(c, ANY, c) for c in data_cols}
    return SourceRuns(f"W&B export {path}", ids, names, states, columns, values, notes)


def _csv_ids(raw: pd.DataFrame, id_col: str | None, names: list[str]) -> list[str]:
    """W&B's run ids when exported, else the run name when unique, else the name plus a
    hash of the row (a W&B name can repeat: seeds of one config share it)."""
    if id_col is not None and raw[id_col].str.strip().ne("").all() and raw[id_col].is_unique:
        return [str(v) for v in raw[id_col]]
    if len(set(names)) == len(names):
        return names
    return [
        f"{name}-{stable_id(tuple(row))}" for name, row in zip(names, raw.to_numpy().tolist(), strict=True)
    ]


def _wandb_summary(run: Any) -> Mapping[str, Any]:
    """A run's summary as a plain dict, across wandb versions (and a plain-dict stand-in)."""
    metrics = getattr(run, "summary_metrics", None)
    if isinstance(metrics, Mapping):
        return metrics
    summary = getattr(run, "summary", None) or {}
    json_dict = getattr(summary, "_json_dict", None)
    if isinstance(json_dict, Mapping):
        return json_dict
    return dict(summary)


def read_wandb_api(project: str, *, api: Any = None, filters: Mapping[str, Any] | None = None) -> SourceRuns:
    """Runs of a W&B project, ``entity/project``, through ``wandb.Api().runs(project)``.

    ``api``: a ``wandb.Api`` (e.g. with a timeout or another host); default
    ``wandb.Api()``. ``filters``: W&B's MongoDB-style run filters.
    """
    if api is None:
        wandb = import_extra("wandb", "wandb", "scalelaw import wandb ENTITY/PROJECT")
        try:
            api = wandb.Api()
        except wandb.errors.Error as err:
            raise InputError(
                f"W&B: cannot open the API ({err}); log in with `wandb login` or set WANDB_API_KEY, "
                "or import the CSV exported from the W&B runs table instead"
            ) from None
    ids, names, states, values = [], [], [], []
    columns: dict[str, Column] = {}
    kwargs: dict[str, Any] = {"filters": dict(filters) if filters else None}
    with contextlib.suppress(TypeError, ValueError):  # lazy runs fetch config and summary one run at a time
        if "lazy" in inspect.signature(api.runs).parameters:
            kwargs["lazy"] = False
    try:
        for run in api.runs(project, **kwargs):
            row = {}
            for origin, prefix, items in (
                (CONFIG, "config.", _flatten(dict(run.config or {}))),
                (METRIC, "summary.", _flatten(dict(_wandb_summary(run)))),
            ):
                for key, value in items:
                    name = prefix + key
                    columns.setdefault(name, Column(name, origin, key))
                    row[name] = value
            ids.append(str(run.id))
            names.append(str(run.name) if run.name else str(run.id))
            states.append(_state(run.state))
            values.append(row)
    except Exception as err:  # the W&B client raises many types (CommError, ValueError, HTTP errors)
        if not _is_wandb_error(err):
            raise
        raise InputError(f"W&B project {project!r}: {err}") from None
    if not ids:
        raise InputError(
            f"W&B project {project!r}: no runs" + (f" match filters {filters}" if filters else "")
        )
    return SourceRuns(f"W&B project {project}", ids, names, states, columns, values)


def _is_wandb_error(err: Exception) -> bool:
    module = type(err).__module__ or ""
    return module.startswith(("wandb", "requests", "urllib3")) or isinstance(err, ValueError)


@contextlib.contextmanager
def _env_defaults(values: Mapping[str, str]) -> Iterator[None]:
    """Set the environment variables the user has not set, for the duration only."""
    added = [name for name in values if name not in os.environ]
    os.environ.update({name: values[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


# MLflow retries an unreachable server for about 4 minutes by default (7 retries, backoff
# factor 2, measured against a closed port); an import fails in seconds instead. The
# user's own settings of these variables win.
MLFLOW_HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
}


DB_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


def mlflow_uri(location: str | os.PathLike) -> str:
    """A tracking URI from what the user gave: a URI as is (a local store must exist: a
    read never creates one), a ``.db`` file as ``sqlite:///``, a folder as a file store."""
    text = str(location)
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.\-]*):", text)
    if scheme and len(scheme.group(1)) > 1:  # 'C:' is a drive, not a scheme
        kind = scheme.group(1).lower().split("+")[0]
        local = None
        if kind == "sqlite":
            local = text.split(":///", 1)[1] if ":///" in text else None
        elif kind == "file":
            local = re.sub(r"^file:(//)?", "", text)
        if local is not None and local not in ("", ":memory:") and not Path(local).exists():
            raise InputError(f"MLflow store {text!r}: {local} does not exist")
        return text
    path = Path(text)
    if not path.exists():
        raise InputError(
            f"MLflow store {text!r}: no such file or folder (give a tracking URI such as "
            "sqlite:///mlflow.db or http://host:5000, an mlflow.db file or an mlruns folder)"
        )
    if path.is_dir():
        return path.resolve().as_uri()
    return f"sqlite:///{path.resolve()}"


def read_mlflow(
    location: str | os.PathLike | None = None,
    *,
    experiments: Sequence[str] | None = None,
    filter_string: str = "",
) -> SourceRuns:
    """Runs of an MLflow tracking store: params as hyperparameters, metrics as results.

    ``location``: a tracking URI or a local path (see :func:`mlflow_uri`); None reads
    ``MLFLOW_TRACKING_URI``. ``experiments``: names (default: every
    active experiment). ``filter_string``: MLflow's run filter, e.g.
    ``"params.optimizer = 'adamw'"``.
    """
    import_extra("mlflow", "mlflow", "scalelaw import mlflow")
    from mlflow.entities import ViewType
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    location = location if location is not None else os.environ.get("MLFLOW_TRACKING_URI")
    if not location:  # MLflow's own default would create an empty store here
        raise InputError(
            "MLflow: give the tracking store, e.g. sqlite:///mlflow.db, http://host:5000 or an "
            "mlruns folder (or set MLFLOW_TRACKING_URI)"
        )
    shown = mlflow_uri(location)
    kind = re.split(r"[:+]", shown, maxsplit=1)[0].lower()
    if kind in DB_SCHEMES:
        for module in ("sqlalchemy", "alembic"):
            import_extra(module, "mlflow", f"reading the MLflow database store {shown!r}")
    # MLflow 3 refuses to open a file store unless told to; reading one is what this is for.
    allow = {"MLFLOW_ALLOW_FILE_STORE": "true"} if kind == "file" else {}
    with _env_defaults({**MLFLOW_HTTP_DEFAULTS, **allow}):
        try:
            client = MlflowClient(tracking_uri=shown)
            ids = _mlflow_experiments(client, ViewType, experiments, shown)
            runs = _mlflow_runs(client, ids, filter_string, ViewType)
        except MlflowException as err:
            raise InputError(f"MLflow store {shown!r}: {err.message}") from None
    if not runs:
        raise InputError(
            f"MLflow store {shown!r}: no runs"
            + (f" in experiment(s) {list(experiments)}" if experiments else "")
            + (f" matching {filter_string!r}" if filter_string else "")
        )
    columns: dict[str, Column] = {}
    values = []
    for run in runs:
        row = {}
        for origin, prefix, items in (
            (CONFIG, "params.", run.data.params),
            (METRIC, "metrics.", run.data.metrics),
        ):
            for key, value in items.items():
                columns.setdefault(prefix + key, Column(prefix + key, origin, key))
                row[prefix + key] = value
        values.append(row)
    return SourceRuns(
        f"MLflow store {shown}",
        [r.info.run_id for r in runs],
        [r.info.run_name or r.data.tags.get("mlflow.runName") or r.info.run_id for r in runs],
        [_state(r.info.status) for r in runs],
        columns,
        values,
    )


def _mlflow_experiments(client: Any, view_type: Any, names: Sequence[str] | None, shown: str) -> list[str]:
    if not names:
        return [e.experiment_id for e in client.search_experiments(view_type=view_type.ACTIVE_ONLY)]
    ids = []
    for name in names:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            known = [e.name for e in client.search_experiments(view_type=view_type.ALL)]
            raise InputError(f"MLflow store {shown!r}: no experiment {name!r}; experiments: {known}")
        ids.append(experiment.experiment_id)
    return ids


def _mlflow_runs(client: Any, experiment_ids: list[str], filter_string: str, view_type: Any) -> list[Any]:
    if not experiment_ids:
        return []
    runs, token = [], None
    while True:
        page = client.search_runs(
            experiment_ids,
            filter_string=filter_string,
            run_view_type=view_type.ACTIVE_ONLY,
            max_results=1000,
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


# ---------------------------------------------------------------------------------------
# Mapping and conversion


def parse_mapping(items: Iterable[str] | Mapping[str, str] | None) -> dict[str, str]:
    """``["lr=optimizer.lr", ...]`` (CLI ``--map``) or a dict -> {runs-table column: source column}."""
    if items is None:
        return {}
    pairs: list[tuple[str, str]] = []
    if isinstance(items, Mapping):
        pairs = [(str(k), str(v)) for k, v in items.items()]
    else:
        for item in items:
            target, sep, column = str(item).partition("=")
            if not sep or not target.strip() or not column.strip():
                raise InputError(
                    f"--map {item!r}: use COLUMN=NAME, e.g. --map lr=optimizer.lr "
                    "(a runs-table column = the name in your tracker)"
                )
            pairs.append((target, column))
    allowed = (*COLUMNS, *MAP_EXTRA)
    out: dict[str, str] = {}
    for target, column in pairs:
        target = target.strip()
        if target not in allowed or target in ("run_id", "diverged", "loss_kind"):
            raise InputError(
                f"--map {target}={column}: {target!r} is not a runs-table column to fill; use one of "
                f"{[c for c in allowed if c not in ('run_id', 'diverged', 'loss_kind')]}"
            )
        if target in out:
            raise InputError(f"--map {target}=...: given twice ({out[target]!r} and {column!r})")
        out[target] = column.strip()
    return out


def _number(value: Any) -> float | None:
    """A raw value as a float; None for a value not logged or not a number (bools included)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    try:  # numpy scalars
        return float(value)
    except (TypeError, ValueError):
        return None


def _tier(column: Column, target: Target) -> int | None:
    full, leaf = normalise(column.key), _leaf(column.key)
    for probe in (full, leaf):
        for i, names in enumerate(target.tiers):
            if probe in names:
                return i
    return None


def _has_values(source: SourceRuns, name: str, numeric: bool) -> bool:
    logged = (row.get(name) for row in source.values)
    if numeric:
        return any(_number(v) is not None for v in logged)
    return any(v is not None for v in logged)


def _candidates(source: SourceRuns, target: Target, taken: set[str]) -> tuple[int, list[str]]:
    """The best tier's candidate columns for ``target`` (origins preferred in order)."""
    found: dict[int, list[Column]] = {}
    for col in source.columns.values():
        if col.name in taken or (col.origin != ANY and col.origin not in target.origins):
            continue
        tier = _tier(col, target)
        if tier is not None and _has_values(source, col.name, target.numeric):
            found.setdefault(tier, []).append(col)
    if not found:
        return -1, []
    tier = min(found)
    for origin in target.origins:
        pick = [c.name for c in found[tier] if c.origin in (origin, ANY)]
        if pick:
            return tier, pick
    return tier, [c.name for c in found[tier]]


def _resolve_given(source: SourceRuns, target: str, given: str) -> str:
    """The source column a ``--map`` names: its full name, or its key when unique."""
    if given in source.columns:
        return given
    by_key = [
        c.name for c in source.columns.values() if c.key == given or normalise(c.key) == normalise(given)
    ]
    origins = {"lr": (CONFIG,), "batch_size": (CONFIG,), "loss": (METRIC,)}.get(target)
    if len(by_key) > 1 and origins:
        preferred = [n for n in by_key if source.columns[n].origin in origins]
        by_key = preferred or by_key
    if len(by_key) == 1:
        return by_key[0]
    if by_key:
        raise InputError(f"--map {target}={given}: several columns match {by_key}; give the full name")
    close = [c for c in source.columns if normalise(given) in normalise(c)][:8]
    raise InputError(
        f"--map {target}={given}: {source.label} has no column {given!r}"
        + (f"; similar: {close}" if close else f"; columns: {_list(source.columns)}")
    )


def _list(names: Iterable[str], limit: int = 40) -> str:
    names = list(names)
    shown = ", ".join(repr(n) for n in names[:limit])
    return f"[{shown}{f', ... ({len(names) - limit} more)' if len(names) > limit else ''}]"


def _choose(
    source: SourceRuns, mapping: dict[str, str], problems: list[str]
) -> tuple[dict[str, Mapped], list[str]]:
    """The source column behind each runs-table column: given, else guessed when unique."""
    chosen: dict[str, Mapped] = {}
    notes: list[str] = []
    for target, given in mapping.items():
        try:
            chosen[target] = Mapped(target, _resolve_given(source, target, given), "given")
        except InputError as err:
            problems.append(str(err))
    taken = {m.column for m in chosen.values()}
    for target in GUESSED:
        if target.column in chosen:
            continue
        if (target is STEPS and "tokens" in chosen) or (target is TOKENS and "steps" in mapping):
            continue
        tier, names = _candidates(source, target, taken)
        if len(names) == 1:
            note = _guess_note(target, tier)
            kind = LOSS_KINDS[tier] if target is LOSS else ""
            chosen[target.column] = Mapped(target.column, names[0], "guessed", note, kind)
            taken.add(names[0])
        elif len(names) > 1:
            message = (
                f"{target.column}: several candidates {names}; choose one with "
                f"--map {target.column}=NAME (Python: mapping={{{target.column!r}: NAME}})"
            )
            (problems if target.required else notes).append(
                message if target.required else f"{message}; not imported"
            )
    return chosen, notes


def _guess_note(target: Target, tier: int) -> str:
    if target is PARAMS and tier == 1:
        return (
            "taken as non-embedding parameters N, as the runs table counts them; if it counts the "
            "embedding and readout too, map a non-embedding count"
        )
    if target is TOKENS and tier == 1:
        return "tokens trained, taken as the run's token budget"
    if target is LOSS:
        return f"{LOSS_KINDS[tier]} loss"
    return ""


def _loss_kind(mapped: Mapped) -> str:
    if mapped.kind:
        return mapped.kind
    name = normalise(mapped.column)
    if re.search(r"(^|_)(val|valid|validation|eval|test)(_|$)", name):
        return "validation"
    return "train" if re.search(r"(^|_)train", name) else "unspecified"


def _batch_unit(batch: Mapped, source: SourceRuns, batch_unit: str | None) -> str:
    if batch_unit is not None:
        return batch_unit
    return "tokens" if "token" in normalise(source.columns[batch.column].key) else "sequences"


def _missing_required(chosen: dict[str, Mapped], problems: list[str]) -> None:
    settled = {p.split(":", 1)[0] for p in problems}  # ambiguous ones are reported already
    for target in (LR, BATCH, PARAMS, LOSS):
        if target.column not in chosen and target.column not in settled:
            problems.append(
                f"{target.column}: no column found (looked for names such as "
                f"{list(target.tiers[0][:4])}); name it with --map {target.column}=NAME"
            )
    if "tokens" not in chosen and "steps" not in chosen and not settled & {"tokens", "steps"}:
        problems.append(
            "tokens: no tokens column and no steps column to compute it from (looked for "
            f"{list(TOKENS.tiers[0][:3])}, {list(STEPS.tiers[0][:3])}); name one with --map tokens=NAME "
            "or --map steps=NAME"
        )


def _seq_len_problem(source: SourceRuns, batch: Mapped) -> str:
    seen = [
        c.name
        for c in source.columns.values()
        if normalise(c.key) in SEQ_LEN_NAMES or _leaf(c.key) in SEQ_LEN_NAMES
    ]
    hint = f"; the runs log {seen}: if one is the sequence length, --map seq_len={seen[0]}" if seen else ""
    return (
        f"batch_size: {batch.column!r} counts sequences (its name does not say tokens), and the runs "
        "table counts tokens per optimizer step: give the tokens per sequence with --seq-len N "
        f"(Python: seq_len=N) or --map seq_len=COLUMN{hint}; if {batch.column!r} already counts "
        "tokens, give --batch-unit tokens"
    )


def convert(
    source: SourceRuns,
    *,
    mapping: Mapping[str, str] | Iterable[str] | None = None,
    seq_len: int | None = None,
    batch_unit: str | None = None,
    states: Sequence[str] | None = DEFAULT_STATES,
) -> ImportResult:
    """Turn a source's runs into a validated runs table (see the module docstring's rules).

    Raises :class:`InputError` listing every column it cannot settle (missing,
    ambiguous, a batch in sequences without a sequence length) at once.
    """
    mapping = parse_mapping(mapping)
    states = _check_states(states)
    if batch_unit is not None and batch_unit not in BATCH_UNITS:
        raise InputError(f"batch_unit {batch_unit!r}: use one of {list(BATCH_UNITS)} (CLI --batch-unit)")
    if seq_len is not None and (isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1):
        raise InputError(
            f"seq_len {show(seq_len)}: give the tokens per sequence, a positive integer (--seq-len)"
        )
    if seq_len is not None and "seq_len" in mapping:
        raise InputError(
            f"give the sequence length once: --seq-len {seq_len} or --map seq_len={mapping['seq_len']}"
        )
    problems: list[str] = []
    chosen, notes = _choose(source, mapping, problems)
    _missing_required(chosen, problems)
    unit = None
    if "batch_size" in chosen:
        unit = _batch_unit(chosen["batch_size"], source, batch_unit)
        if unit == "sequences" and seq_len is None and "seq_len" not in chosen:
            problems.append(_seq_len_problem(source, chosen["batch_size"]))
    if problems:
        raise InputError(
            f"{source.label}: cannot map the runs to the runs table:\n  - "
            + "\n  - ".join(problems)
            + f"\ncolumns: {_list(source.columns)}"
        )
    batch = chosen["batch_size"]
    note = "tokens per step" if unit == "tokens" else "sequences per step x seq_len -> tokens"
    chosen["batch_size"] = Mapped("batch_size", batch.column, batch.how, _join(batch.note, note))
    if "tokens" not in chosen:
        steps = chosen["steps"]
        chosen["steps"] = Mapped(
            "steps", steps.column, steps.how, _join(steps.note, "tokens = steps x batch in tokens")
        )
    notes.extend(_per_device_notes(source, chosen))
    rows, left_out = _rows(source, chosen, seq_len, unit, states)
    if not rows:
        raise InputError(
            f"{source.label}: no run left to import ({len(left_out)} left out):\n  "
            + "\n  ".join(f"{name}: {why}" for name, _, why in left_out[:20])
        )
    table = _integers(pd.DataFrame(rows))
    table["diverged"] = ~table["loss"].map(math.isfinite)
    n_diverged = int(table["diverged"].sum())
    if n_diverged:
        notes.append(f"{n_diverged} run(s) with NaN/inf loss kept, marked diverged (left out of fits)")
    table = validate_runs(table, source=source.label, min_lrs=1)
    notes.extend(_fit_readiness(table, source.label))
    if seq_len is not None:
        chosen["seq_len"] = Mapped("seq_len", f"{seq_len} (--seq-len)", "given")
    order = ["params", "tokens", "steps", "lr", "batch_size", "seq_len", "loss", *COLUMNS]
    mapped = sorted(chosen.values(), key=lambda m: order.index(m.target) if m.target in order else len(order))
    return ImportResult(table, source.label, mapped, left_out, [*source.notes, *notes], len(source.ids))


def _integers(table: pd.DataFrame) -> pd.DataFrame:
    """Counts (shape, seed, sequence length) as integers where every run has a whole number."""
    for col in ("seq_len", "width", "depth", "heads", "seed", "warmup", "tokens_trained"):
        if col in table and table[col].dtype.kind == "f":
            v = table[col]
            if v.notna().all() and (v == v.round()).all():
                table[col] = v.astype("int64")
    return table


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _check_states(states: Sequence[str] | None) -> tuple[str, ...] | None:
    if states is None:
        return None
    if isinstance(states, str):
        states = (states,)
    out = tuple(str(s).strip().lower() for s in states)
    bad = [s for s in out if s not in STATES]
    if bad or not out:
        raise InputError(f"--state {bad or list(out)}: use states among {list(STATES)}")
    return out


def _per_device_notes(source: SourceRuns, chosen: dict[str, Mapped]) -> list[str]:
    hints = [
        c.name
        for c in source.columns.values()
        if normalise(c.key) in PER_DEVICE_HINTS or _leaf(c.key) in PER_DEVICE_HINTS
    ]
    if not hints:
        return []
    return [
        f"the runs log {hints}: batch_size must count the whole optimizer step (every device, every "
        f"accumulation step); if {chosen['batch_size'].column!r} counts one device or one micro-step, "
        "map a global batch"
    ]


def _fit_readiness(table: pd.DataFrame, label: str) -> list[str]:
    try:
        validate_runs(table, source=label)
    except RunsTableError as err:
        return [f"scalelaw fit will refuse this table as it stands: {err}"]
    return []


def _required(chosen: dict[str, Mapped], unit: str | None) -> tuple[str, ...]:
    """The columns every kept run must have a value in."""
    needed = ["params", "tokens" if "tokens" in chosen else "steps", "lr", "batch_size", "loss"]
    if unit == "sequences" and "seq_len" in chosen:
        needed.append("seq_len")
    return tuple(needed)


def _rows(
    source: SourceRuns,
    chosen: dict[str, Mapped],
    seq_len: int | None,
    unit: str | None,
    states: tuple[str, ...] | None,
) -> tuple[list[dict[str, Any]], list[tuple[str, str, str]]]:
    rows, left_out = [], []
    loss_kind = _loss_kind(chosen["loss"])
    required = _required(chosen, unit)
    for i, run_id in enumerate(source.ids):
        name, state, raw = source.names[i], source.states[i], source.values[i]
        if states is not None and state is not None and state not in states:
            left_out.append((name, run_id, f"state {state} (keep with --state {state})"))
            continue
        values: dict[str, float] = {}
        why = []
        for target in required:
            mapped = chosen[target]
            value, problem = _value(target, raw.get(mapped.column), mapped.column)
            if problem:
                why.append(problem)
            else:
                values[target] = value
        if why:
            left_out.append((name, run_id, "; ".join(why)))
            continue
        row_seq_len = values["seq_len"] if "seq_len" in values else seq_len
        batch = values["batch_size"] * (row_seq_len if unit == "sequences" else 1)
        row = {
            "run_id": run_id,
            "run_name": name,
            "params": values["params"],
            "tokens": values["tokens"] if "tokens" in values else values["steps"] * batch,
            "lr": values["lr"],
            "batch_size": batch,
            "loss": values["loss"],
            "loss_kind": loss_kind,
        }
        if row_seq_len is not None:
            row["seq_len"] = int(row_seq_len)
        if state is not None:
            row["state"] = state
        for target, mapped in chosen.items():
            if target not in row and target not in required:
                row[target] = _optional(raw.get(mapped.column), target)
        rows.append(row)
    return rows, left_out


def _value(target: str, raw: Any, column: str) -> tuple[float, str]:
    """A required value and '' , or NaN and why the run is left out."""
    if raw is None:
        return math.nan, f"{target} ({column}) not logged"
    number = _number(raw)
    if number is None:
        return math.nan, f"{target} ({column}) = {show(raw)} is not a number"
    if target == "loss":
        if math.isfinite(number) and number <= 0:
            return math.nan, f"loss ({column}) = {show(raw)} is not positive"
        return number, ""
    if not math.isfinite(number) or number <= 0:
        return math.nan, f"{target} ({column}) = {show(raw)} is not a positive finite number"
    return number, ""


def _optional(raw: Any, target: str) -> Any:
    spec = next((t for t in OPTIONAL if t.column == target), None)
    if spec is not None and not spec.numeric:
        return None if raw is None else str(raw)
    number = _number(raw)
    if number is None and raw is not None and spec is None:
        return str(raw)  # a mapped column the runs table keeps as text
    return math.nan if number is None else number


# ---------------------------------------------------------------------------------------
# Entry point


def import_runs(
    source: str,
    location: str | os.PathLike | None = None,
    *,
    mapping: Mapping[str, str] | Iterable[str] | None = None,
    seq_len: int | None = None,
    batch_unit: str | None = None,
    states: Sequence[str] | None = DEFAULT_STATES,
    experiments: Sequence[str] | None = None,
    filters: str | Mapping[str, Any] | None = None,
    api: Any = None,
    out: str | os.PathLike | None = None,
    log: Callable[[str], None] | None = print,
) -> pd.DataFrame:
    """Import runs logged to W&B or MLflow as a runs table, valid for :func:`scalelaw.fit`.

    Parameters
    ----------
    source : {"wandb", "mlflow"}
    location : str or path
        W&B: ``"entity/project"`` (through the API) or the ``.csv`` exported from the W&B
        runs table. MLflow: a tracking URI or a local ``mlflow.db`` / ``mlruns`` (None:
        MLflow's default).
    mapping : dict or list of "COLUMN=NAME"
        Runs-table column -> the tracker's name (``{"lr": "optimizer.lr"}``); the rest
        is guessed, each guess logged.
    seq_len : int
        Tokens per sequence, when the batch size counts sequences.
    batch_unit : {"tokens", "sequences"}
        What the batch column counts, when its name says otherwise.
    states : sequence of str or None
        Run states kept (default finished); None keeps every run.
    experiments : sequence of str
        MLflow experiment names (default: all).
    filters : str or dict
        MLflow filter string, or W&B filters dict.
    api : object
        W&B: a ``wandb.Api`` to use instead of ``wandb.Api()``.
    out : path
        Also write the table here (.parquet or .csv), atomically.
    log : callable or None
        Receives the account: every mapping (given or guessed), every run left out and
        why, notes. None: silent.

    Returns
    -------
    DataFrame
        The runs table (units: params non-embedding, tokens, batch_size in tokens), with
        ``run_name`` and ``state`` columns besides the schema's.
    """
    if out is not None and Path(out).suffix.lower() not in (".parquet", ".pq", ".csv"):
        raise InputError(f"-o {out}: write the runs table as .parquet or .csv")
    read = _reader(source, location, experiments=experiments, filters=filters, api=api)
    result = convert(read(), mapping=mapping, seq_len=seq_len, batch_unit=batch_unit, states=states)
    if out is not None:
        write_runs(result.table, out)
        result.notes.append(f"wrote {out}; next: scalelaw fit {out}")
    if log is not None:
        for line in result.lines():
            log(line)
    return result.table


def _reader(
    source: str,
    location: str | os.PathLike | None,
    *,
    experiments: Sequence[str] | None,
    filters: str | Mapping[str, Any] | None,
    api: Any,
) -> Callable[[], SourceRuns]:
    if source == "wandb":
        if experiments:
            raise InputError("experiments= (--experiment) selects MLflow experiments; W&B reads one project")
        if location is None:
            raise InputError(
                "W&B: give the project as ENTITY/PROJECT, or the CSV exported from its runs table"
            )
        if str(location).lower().endswith(".csv") or Path(location).is_file():
            if filters or api is not None:
                raise InputError(f"{location}: a W&B CSV export takes no filters or api")
            return lambda: read_wandb_csv(location)
        if filters is not None and not isinstance(filters, Mapping):
            raise InputError(f"W&B filters {filters!r}: give a dict of W&B run filters (MongoDB style)")
        return lambda: read_wandb_api(str(location), api=api, filters=filters)
    if source == "mlflow":
        if api is not None:
            raise InputError("api= is W&B's client; MLflow is read from its tracking URI")
        if filters is not None and not isinstance(filters, str):
            raise InputError(f"MLflow filters {filters!r}: give an MLflow filter string")
        return lambda: read_mlflow(location, experiments=experiments, filter_string=filters or "")
    raise InputError(f"source {source!r}: use one of {list(SOURCES)}")


__all__ = [
    "ImportResult",
    "SourceRuns",
    "convert",
    "import_runs",
    "install_hint",
    "read_mlflow",
    "read_wandb_api",
    "read_wandb_csv",
]
