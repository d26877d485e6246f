"""Command line: ``scalelaw fit | predict | plan | sweep | verify | report | demo | coordcheck``.

    scalelaw fit RUNS [--format steplaw|csv|parquet] [--where "params <= 4.3e8"] --out law.json
    scalelaw predict MODEL_SIZE TOKENS [--law law.json | --preset steplaw] [--seq-len 2048] [--json]
        [--recipe weight_decay=0.1 ...]
    scalelaw plan --compute 1e23 [--law law.json | --preset NAME] [--tokens-per-param 20] [--json]
    scalelaw verify LAW --spec SPEC --width W --depth L --tokens D [--out DIR]
    scalelaw coordcheck --parametrization mup --widths 64,128,256,512 [--steps 4]

Sizes accept plain numbers (7e9) and suffixes K, M, B/G, T (7B, 1.4T).
"""

from __future__ import annotations

import argparse
import json
import math
import operator
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from scalelaw import validate
from scalelaw.exceptions import InputError, ScalelawError
from scalelaw.extras import MissingExtraError, require_extra
from scalelaw.fit import METHODS, fit
from scalelaw.lawcard import parse_recipe
from scalelaw.outliers import MODES as OUTLIER_MODES
from scalelaw.predict import DEFAULT_LAW, PRESETS, get_law, predict
from scalelaw.runs import read_runs
from scalelaw.target import TargetShape

_SUFFIX = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}
_OPS = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_CONDITION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*$")


class UsageError(InputError):
    """A command-line value that cannot be used."""


class _ParseError(Exception):
    """argparse's complaint about the command line (raised by :class:`_Parser`)."""

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad command line is reported by :func:`main` as every other user
    mistake is: one ``scalelaw <command>: error: ...`` line and exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        # "argument --gpus: must be ..." -> "--gpus must be ...", as the other errors read
        raise _ParseError(self.prog, re.sub(r"^argument ([^:]+): (must )", r"\1 \2", message))


def _number_text(text: str) -> float:
    """'7e9', '7B', '-3', '0' -> float (suffixes K, M, B/G, T); ValueError if unreadable."""
    s = text.strip().lower().replace("_", "")
    scale = 1.0
    if s and s[-1] in _SUFFIX:
        scale, s = _SUFFIX[s[-1]], s[:-1]
    return float(s) * scale


def parse_size(text: str, name: str = "size") -> float:
    """'7e9', '7B', '1.4T', '350M' -> float; ``name`` (the argument) is named in errors."""
    try:
        value = _number_text(text)
    except ValueError:
        raise UsageError(f"{name}: cannot read {text!r} as a size (use e.g. 7e9, 7B, 1.4T)") from None
    if not value > 0 or value == float("inf"):
        raise UsageError(f"{name}: size {text!r} must be positive and finite")
    return value


def _sized(text: str, name: str, check=validate.positive) -> float:
    """A size argument read (:func:`parse_size`) and checked by ``check`` (e.g.
    :func:`scalelaw.validate.model_size`), the message showing the text as typed."""
    return check(parse_size(text, name), name, typed=repr(text))


def apply_where(runs: pd.DataFrame, where: str) -> pd.DataFrame:
    """Keep rows matching ``COLUMN OP VALUE [and ...]`` (no eval: a tiny parser).

    A numeric column is compared with a number (suffixes K, M, B, T allowed); a text
    column with ``==`` / ``!=`` and a word (quotes optional); a true/false column with
    ``==`` / ``!=`` and true or false. Anything else is a :class:`UsageError` naming the
    clause.
    """
    mask = pd.Series(True, index=runs.index)
    for clause in re.split(r"\s+and\s+|,", where):
        match = _CONDITION.match(clause)
        if not match:
            raise UsageError(
                f"--where: cannot read {clause.strip()!r}; "
                'use COLUMN OP NUMBER, e.g. "params <= 4.3e8 and tokens > 1e10"'
            )
        column, op, value = match.groups()
        if column not in runs.columns:
            raise UsageError(f"--where: no column {column!r}; columns: {list(runs.columns)}")
        mask &= _condition(runs[column], op, value, clause.strip())
    kept = runs[mask]
    if kept.empty:
        raise UsageError(f"--where {where!r} keeps no runs")
    return kept


def _condition(column: pd.Series, op: str, value: str, clause: str) -> pd.Series:
    """The rows of ``column`` that satisfy ``column OP value``."""
    text = value.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    if pd.api.types.is_bool_dtype(column.dtype):
        flag = {"true": True, "1": True, "false": False, "0": False}.get(text.lower())
        if flag is None or op not in ("==", "!="):
            raise UsageError(
                f"--where {clause!r}: column {column.name!r} is true/false; use == true or != true"
            )
        return _OPS[op](column, flag)
    if pd.api.types.is_numeric_dtype(column.dtype):
        try:
            number = _number_text(text)
        except ValueError:
            number = float("nan")
        if not math.isfinite(number):
            raise UsageError(
                f"--where {clause!r}: column {column.name!r} holds numbers; {value!r} is not a finite "
                "number (use e.g. 4.3e8 or 430M)"
            )
        return _OPS[op](column, number)
    if op not in ("==", "!="):
        raise UsageError(
            f"--where {clause!r}: column {column.name!r} holds text; compare it with == or !=, "
            f"e.g. {column.name} == {text}"
        )
    return _OPS[op](column.astype(str), text)


def _cmd_fit(args: argparse.Namespace) -> int:
    args.method_given = args.method is not None
    args.method = args.method or "average"
    if args.prior and args.method_given:
        raise UsageError("--prior calibrates a published law; it takes no --method")
    if args.out:  # before the fit: a path that cannot be written fails now, not after minutes
        validate.writable_file(args.out, "--out")
    runs = read_runs(args.runs, table_format=args.format)
    if args.where:
        runs = apply_where(runs, args.where)
    law = fit(
        runs, method=args.method, n_boot=args.n_boot, seed=args.seed, prior=args.prior, outliers=args.outliers
    )
    print(law.summary())
    if args.out:
        law.to_json(args.out)
        print(f"\nwrote {args.out}")
    return 0


def _renamed(args: argparse.Namespace, old_dest: str, new_dest: str, old: str, new: str, default=None):
    """The value of an option renamed from ``old`` to ``new`` (both parsed with default
    None), else ``default``: the deprecated spelling still works for one release, with a
    note on stderr; giving both is an error."""
    value, current = getattr(args, old_dest), getattr(args, new_dest)
    if value is None:
        return default if current is None else current
    if current is not None:
        raise UsageError(f"give {new}, not both {new} and {old}")
    print(f"scalelaw {args.command}: {old} is deprecated; use {new}", file=sys.stderr)
    return value


def _alpha(args: argparse.Namespace) -> float | None:
    """--alpha, or the deprecated --confidence (1 - alpha) with a note on stderr."""
    if args.confidence is None:
        return args.alpha
    confidence = _renamed(args, "confidence", "alpha", "--confidence", "--alpha")
    return 1.0 - confidence


def _cmd_predict(args: argparse.Namespace) -> int:
    if args.law and args.preset:
        raise UsageError("give either --law FILE or --preset NAME, not both")
    if args.emit and args.json:
        raise UsageError("--emit prints a training config, --json the prediction: give one of them")
    for option, value in (("--gpus", args.gpus), ("--micro-batch", args.micro_batch)):
        if value is not None and not args.emit:
            raise UsageError(f"{option} splits the batch of an emitted config: give --emit too")
    model_size = (
        None if args.model_size == "auto" else _sized(args.model_size, "MODEL_SIZE", validate.model_size)
    )
    tokens = _sized(args.tokens, "TOKENS", validate.tokens)
    law = get_law(args.law or args.preset) if (args.law or args.preset) else None
    shape = None
    if (args.width is None) != (args.depth is None):
        raise UsageError("a target shape needs both --width and --depth")
    if args.width is not None:
        shape = TargetShape(
            args.width,
            args.depth,
            head_dim=args.head_dim,
            seq_len=args.seq_len,
            parametrization=args.parametrization,
            base_width=args.base_width,
            base_depth=args.base_depth,
            translate=args.translate,
        )
    elif args.model_size == "auto":
        raise UsageError("model_size 'auto' takes N from the target shape: give --width and --depth")
    p = predict(
        model_size,
        tokens,
        law=law,
        seq_len=args.seq_len,
        alpha=_alpha(args),
        recipe=parse_recipe(args.recipe) if args.recipe else None,
        shape=shape,
    )
    if args.emit:
        config = p.to_config(args.emit, gpus=args.gpus or 1, micro_batch=args.micro_batch)
        if args.emit == "hf":  # JSON holds no comments: the notes go to stderr, the JSON to stdout
            print(config.comments(), file=sys.stderr)
        print(config, end="")
        return 0
    print(
        json.dumps(validate.strict_json(p.to_dict()), indent=2, allow_nan=False) if args.json else p.table()
    )
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    from scalelaw.plan import plan

    if args.law and args.preset:
        raise UsageError("give either --law FILE or --preset NAME, not both")
    law = get_law(args.law or args.preset) if (args.law or args.preset) else None
    result = plan(
        _sized(args.compute, "--compute"),
        law,
        tokens_per_param=None
        if args.tokens_per_param is None
        else _sized(args.tokens_per_param, "--tokens-per-param"),
        alpha=0.2 if args.alpha is None else args.alpha,
        seq_len=args.seq_len,
    )
    print(result.to_json() if args.json else result.table())
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    if not args.dry_run:  # planning and pricing a sweep need no torch
        require_extra("train", "scalelaw sweep")
    from scalelaw.shapes import non_embedding_params
    from scalelaw.sweep import plan_sweep, run_sweep
    from scalelaw.sweepspec import cost, load_spec

    spec = load_spec(args.spec)
    # the run limit (counted, not built), the options and the output directory, before any grid or run
    root = plan_sweep(
        spec,
        args.out,
        args.max_runs,
        args.yes,
        refine_rounds=args.refine,
        **_backend_kwargs(args),
    )
    runs = spec.run_kwargs()
    price = cost(runs, args.device, args.mfu)
    print(f"sweep {spec.name!r} ({args.spec}) -> {root}")
    print(
        f"  {len(runs)} runs: {len(spec.model.shapes)} shapes x {len(spec.lrs)} lr x "
        f"{len(spec.batch_sizes)} batch sizes x {len(spec.budgets) + len(spec.tokens_per_param)} "
        f"token budgets x {len(spec.recipe.seeds)} seeds"
        + (f" x {len(spec.weight_decays)} weight decays" if spec.weight_decays else "")
    )
    print(
        f"  training compute {price.flops:.3g} FLOPs = {price.device_hours:.3g} {price.device}-hours "
        f"at {price.mfu:.0%} MFU"
    )
    if args.dry_run:
        wd = spec.weight_decays  # a [weight_decay] axis: show each run's λ
        print(
            f"  {'width':>6} {'depth':>5} {'N':>10} {'tokens':>10} {'lr':>9} {'batch':>7} {'seed':>4}"
            + (f" {'wd':>7}" if wd else "")
        )
        for r in runs:
            print(
                f"  {r['width']:6d} {r['depth']:5d} {non_embedding_params(r['width'], r['depth']):10,d} "
                f"{r['tokens']:10,d} {r['lr']:9.3g} {r['batch_size']:7d} {r['seed']:4d}"
                + (f" {r['weight_decay']:7.3g}" if wd else "")
            )
        return 0
    report = run_sweep(
        spec,
        root,
        **_backend_kwargs(args),
        refine_rounds=args.refine,
        fuse=not args.no_fuse,
        max_runs=args.max_runs,
    )
    print(report.summary())
    report.check()  # every run diverged: exit 2 with what to change
    return 1 if report.failed else 0


def _add_backend_options(p: argparse.ArgumentParser) -> None:
    """Where runs train: the backend and its options (scalelaw.backends)."""
    p.add_argument("--backend", choices=["local", "slurm", "ray"], default="local")
    p.add_argument(
        "--workers", type=_int_option(1, 4096), help="local: CPU worker processes (GPUs: one per GPU)"
    )
    p.add_argument("--partition", help="slurm: partition (default: the cluster's default)")
    p.add_argument("--time-min", type=_COUNT, default=60, help="slurm: time limit per task, minutes")
    p.add_argument(
        "--cpus-per-task",
        type=_COUNT,
        help="slurm, ray: CPUs per task (default: up to 8 that the nodes have; ray: 1)",
    )
    p.add_argument(
        "--gpus-per-task",
        type=_int_option(0, 1024),
        help="slurm, ray: GPUs per task (default: 1 where the nodes have GPUs, else 0)",
    )
    p.add_argument(
        "--array-parallelism", type=_COUNT, default=64, help="slurm: tasks of the array running at once"
    )
    p.add_argument(
        "--cluster", choices=["slurm", "local", "debug"], help="slurm: submitit cluster (tests: debug)"
    )
    p.add_argument(
        "--address", help="ray: 'auto' (the running cluster) or ray://HOST:PORT (default: a local one)"
    )


def _backend_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``backend``, ``workers``, ``slurm`` and ``ray`` for run_sweep / verify from the options."""
    from scalelaw.backends.ray import RayOptions
    from scalelaw.backends.slurm import SlurmOptions

    kwargs: dict[str, Any] = {"backend": args.backend, "workers": args.workers}
    if args.backend == "slurm":
        kwargs["slurm"] = SlurmOptions(
            partition=args.partition,
            time_min=args.time_min,
            cpus_per_task=args.cpus_per_task,
            gpus_per_task=args.gpus_per_task,
            array_parallelism=args.array_parallelism,
            cluster=args.cluster,
        )
    elif args.backend == "ray":
        kwargs["ray"] = RayOptions(
            address=args.address,
            cpus_per_task=1 if args.cpus_per_task is None else args.cpus_per_task,
            gpus_per_task=args.gpus_per_task,
        )
    return kwargs


def _parse_target(text: str) -> tuple[float, float]:
    parts = text.split(",")
    if len(parts) != 2:
        raise UsageError(f"--target {text!r}: use MODEL_SIZE,TOKENS, e.g. 7e9,1.4e12")
    return (
        _sized(parts[0], f"--target {text!r}: MODEL_SIZE", validate.model_size),
        _sized(parts[1], f"--target {text!r}: TOKENS", validate.tokens),
    )


def _cmd_report(args: argparse.Namespace) -> int:
    from scalelaw.report import report_inputs, write_report

    # every cheap check before the fit: the targets, the law, the output path
    targets = [_parse_target(t) for t in args.target or []]
    out = _renamed(args, "out_old", "out", "-o/--output", "--out", default="report.html")
    validate.writable_file(out, "--out")
    given = get_law(args.law) if args.law else None
    if given is not None and given.optima is None:
        raise UsageError(f"--law {args.law}: a preset has no cell optima to draw; pass a fitted law")
    runs = read_runs(args.runs, table_format=args.format)
    law = given if given is not None else fit(runs, method="auto", n_boot=args.n_boot)
    path = write_report(runs, law, out, **report_inputs(runs, law, targets, args.seq_len))
    print(f"wrote {path}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from scalelaw.demo import run_demo

    target = _parse_target(args.target)
    validate.writable_dir(args.out, "--out")
    run_demo(
        args.out,
        size=args.size,
        workers=args.workers,
        target=target,
        seq_len=args.seq_len,
    )
    return 0


def _factors(text: str, option: str) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise UsageError(f"{option} {text!r}: use comma-separated numbers, e.g. 0.5,1,2") from None
    if not values or not all(0 < v < float("inf") for v in values):
        raise UsageError(f"{option} {text!r}: factors must be positive and finite")
    if len(set(values)) != len(values) or len(values) > MAX_FACTORS:
        raise UsageError(f"{option} {text!r}: give up to {MAX_FACTORS} distinct factors")
    return values


def _cmd_verify(args: argparse.Namespace) -> int:
    from scalelaw.sweepspec import load_spec
    from scalelaw.verify import verify

    law = get_law(args.law)
    spec = load_spec(args.spec)
    out = Path(
        _renamed(args, "out_old", "out", "--sweep-out", "--out") or Path("runs") / f"{spec.name}-verify"
    )
    tokens = _sized(args.tokens, "--tokens", validate.tokens)
    if not tokens.is_integer():
        raise UsageError(f"--tokens {args.tokens!r} must be a whole number of tokens")
    lr_factors = _factors(args.lr_factors, "--lr-factors")
    batch_factors = _factors(args.batch_factors, "--batch-factors")
    validate.writable_dir(out, "--out")
    result = verify(
        law,
        spec,
        width=args.width,
        depth=args.depth,
        tokens=int(tokens),
        out=out,
        lr_factors=lr_factors,
        batch_factors=batch_factors,
        alpha=_alpha(args),
        **_backend_kwargs(args),
        fuse=not args.no_fuse,
        seeds=args.seeds,
    )
    print(result.summary())
    print(f"\nverification runs: {out / 'runs.parquet'}\nscore: {out / 'verify.json'}")
    return 0


def _cmd_coordcheck(args: argparse.Namespace) -> int:
    require_extra("train", "scalelaw coordcheck")
    from scalelaw.proxy.coordcheck import coord_check, coord_slopes  # imports torch

    try:
        widths = tuple(int(w) for w in args.widths.split(","))
    except ValueError:
        raise UsageError(f"--widths: cannot read {args.widths!r}; use e.g. 64,128,256,512") from None
    if len(widths) < 2 or len(set(widths)) != len(widths) or not all(1 <= w <= MAX_WIDTH for w in widths):
        raise UsageError(
            f"--widths {args.widths!r}: give two or more distinct widths from 1 to {MAX_WIDTH}, "
            "e.g. 64,128,256,512"
        )
    param = _renamed(args, "param_old", "parametrization", "--param", "--parametrization", default="mup")
    table = coord_check(param, widths=widths, steps=args.steps, seed=args.seed, lr=args.lr)
    slopes = coord_slopes(table).pivot(index="layer", columns="step", values="slope")
    print(f"coordinate check, {param}: slope of log RMS against log width {widths}, per step")
    print(slopes.round(3).to_string())
    worst = slopes.loc[:, slopes.columns >= 1].abs().max().max()
    print(f"\nlargest |slope| after step 0: {worst:.3f} (μP target: <= 0.1)")
    return 0


# --- scalelaw import wandb|mlflow: runs logged elsewhere as a runs table (scalelaw/importers.py)


def _cmd_import(args: argparse.Namespace) -> int:
    from scalelaw.importers import import_runs

    import_runs(
        args.source,
        args.location,
        mapping=args.map or None,
        seq_len=args.seq_len,
        batch_unit=args.batch_unit,
        states=None if "all" in (args.state or []) else (args.state or ("finished",)),
        experiments=args.experiment,
        filters=args.filter,
        out=args.out,
    )
    return 0


def _add_import_parser(sub) -> None:
    i = sub.add_parser(
        "import",
        help="runs logged to W&B or MLflow -> a runs table (guesses the columns, prints every guess)",
    )
    i.add_argument("source", choices=["wandb", "mlflow"])
    i.add_argument(
        "location",
        nargs="?",
        help="wandb: ENTITY/PROJECT or the CSV exported from the W&B runs table; "
        "mlflow: a tracking URI (sqlite:///mlflow.db, http://host:5000) or an mlflow.db / mlruns path "
        "(default: $MLFLOW_TRACKING_URI)",
    )
    i.add_argument("-o", "--out", required=True, help="the runs table to write (.parquet or .csv)")
    i.add_argument(
        "--map",
        action="append",
        metavar="COLUMN=NAME",
        help="take a runs-table column from your name for it, e.g. lr=optimizer.lr (repeatable)",
    )
    i.add_argument(
        "--seq-len", type=_SEQ_LEN, help="tokens per sequence, when the batch size counts sequences"
    )
    i.add_argument(
        "--batch-unit",
        choices=["tokens", "sequences"],
        help="what the batch column counts (default: its name)",
    )
    i.add_argument(
        "--state",
        action="append",
        help="run states to keep (repeatable; default finished; 'all' keeps every run)",
    )
    i.add_argument("--experiment", action="append", help="mlflow: experiment name (repeatable; default all)")
    i.add_argument("--filter", help="mlflow: a run filter, e.g. \"params.optimizer = 'adamw'\"")
    i.set_defaults(run=_cmd_import)


def _int_option(low: int = 1, high: float = validate.MAX_COUNT):
    """argparse ``type=`` for an integer option in [low, high] ("1e3" reads as 1000)."""

    def parse(text: str) -> int:
        try:
            value: float = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                value = math.nan
        try:
            return validate.count(value, "value", low=low, high=high, typed=text)
        except InputError as err:
            raise argparse.ArgumentTypeError(str(err).removeprefix("value ")) from None

    parse.__name__ = "integer"
    return parse


def _float_option(low: float = 0.0, high: float | None = None, low_open: bool = True, high_open=False):
    """argparse ``type=`` for a finite number in (low, high] (``low_open``/``high_open``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        try:
            value = validate.number(value, "value", low=low, high=high, low_open=low_open, typed=text)
        except InputError as err:
            raise argparse.ArgumentTypeError(str(err).removeprefix("value ")) from None
        if high_open and value == high:
            raise argparse.ArgumentTypeError(f"must be below {high:g}, got {text}")
        return value

    parse.__name__ = "number"
    return parse


_COUNT = _int_option(1)  # a positive integer
_SEED = _int_option(0, 2**32 - 1)  # numpy's seeds
_N_BOOT = _int_option(0, 10_000)  # 0: no intervals; 10,000 is 50x the default: more is a typo
_SEQ_LEN = _int_option(1, validate.MAX_TOKENS)
_ALPHA = _float_option(0.0, 1.0, high_open=True)  # in (0, 1)
MAX_FACTORS = 16  # verification settings per axis
MAX_WIDTH = 65_536  # coordcheck and verify train proxies of this width here
MAX_DEPTH = 4096  # layers of a verification proxy


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="scalelaw", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    f = sub.add_parser("fit", help="fit lr*, B* and loss laws to a runs table")
    f.add_argument("runs", help="runs table (.csv, .parquet, or the Step Law CSV with --format steplaw)")
    f.add_argument("--format", choices=["csv", "parquet", "steplaw"], default=None)
    f.add_argument("--where", help='row filter, e.g. "params <= 4.3e8 and tokens >= 1e10"')
    f.add_argument("--method", choices=METHODS, default=None, help="estimator (default average)")
    f.add_argument(
        "--prior",
        metavar="LAW",
        help="calibrate a published law on these runs instead of fitting one: "
        f"{', '.join([*PRESETS, DEFAULT_LAW])} or a law .json file (works from one cell)",
    )
    f.add_argument("--n-boot", type=_N_BOOT, default=200, help="bootstrap replicates (default 200)")
    f.add_argument("--seed", type=_SEED, default=0)
    f.add_argument(
        "--outliers",
        choices=OUTLIER_MODES,
        default="leave_out",
        help="mistyped-looking runs: leave them out and name them (default), refuse the table, or keep them",
    )
    f.add_argument("--out", help="write the fitted law as JSON here")
    f.set_defaults(run=_cmd_fit)

    p = sub.add_parser("predict", help="optimal lr, batch size and loss for a target run")
    p.add_argument(
        "model_size", help="non-embedding parameters N, e.g. 7e9 or 7B; 'auto': from --width/--depth"
    )
    p.add_argument("tokens", help="training tokens D, e.g. 1.4e12 or 1.4T")
    p.add_argument("--law", help="a law JSON file written by `scalelaw fit --out`")
    p.add_argument("--preset", choices=[*PRESETS, DEFAULT_LAW], help="a published law")
    p.add_argument("--seq-len", type=_SEQ_LEN, default=2048, help="tokens per sequence (default 2048)")
    p.add_argument("--alpha", type=_ALPHA, help="intervals at 1 - alpha (default 0.2: 80%%)")
    p.add_argument("--confidence", type=_ALPHA, help=argparse.SUPPRESS)  # deprecated: 1 - alpha
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--recipe",
        action="append",
        metavar="KEY=VALUE",
        help="your run's recipe, e.g. weight_decay=0.1 (repeatable): warns where the law's differs",
    )
    p.add_argument(
        "--emit",
        choices=["torchtitan", "hf", "nanogpt", "megatron"],
        help="print a training config for this trainer instead of the table",
    )
    p.add_argument("--gpus", type=_COUNT, help="data-parallel ranks the batch is split over (default 1)")
    shape = p.add_argument_group("target shape (adds per-group lr, init std, multipliers, Adam eps)")
    shape.add_argument("--width", type=_COUNT, help="the target's d_model")
    shape.add_argument("--depth", type=_COUNT, help="the target's layers")
    shape.add_argument("--head-dim", type=_COUNT, default=128, help="default 128")
    shape.add_argument("--parametrization", choices=["sp", "mup", "completep"], default="mup")
    shape.add_argument("--base-width", type=_COUNT, help="μP base width (default: the law's proxies')")
    shape.add_argument("--base-depth", type=_COUNT, help="μP base depth (default: the law's proxies')")
    shape.add_argument("--translate", choices=["hidden"], help="how a μP law's lr becomes an SP target's")
    p.add_argument(
        "--micro-batch",
        type=_COUNT,
        help="sequences per forward pass per rank (default: the largest exact one up to 8)",
    )
    p.set_defaults(run=_cmd_predict)

    pl = sub.add_parser("plan", help="compute-optimal N and D for a FLOP budget, with lr*, B* and loss there")
    pl.add_argument("--compute", required=True, help="training compute C = 6ND in FLOPs, e.g. 1e23")
    pl.add_argument("--law", help="a law JSON file written by `scalelaw fit --out` (with a loss law)")
    pl.add_argument("--preset", choices=[*PRESETS, DEFAULT_LAW], help="a published law (default: default)")
    pl.add_argument(
        "--tokens-per-param",
        metavar="R",
        help="fix D = R x N (e.g. 20, Chinchilla) instead of the split minimising the loss law",
    )
    pl.add_argument("--seq-len", type=_SEQ_LEN, default=2048, help="tokens per sequence (default 2048)")
    pl.add_argument("--alpha", type=_ALPHA, help="intervals at 1 - alpha (default 0.2: 80%%)")
    pl.add_argument("--json", action="store_true", help="print JSON instead of a table")
    pl.set_defaults(run=_cmd_plan)

    s = sub.add_parser("sweep", help="plan, price and run (or resume) a proxy sweep")
    s.add_argument("spec", help="sweep spec (TOML), e.g. sweeps/tiny_mup.toml")
    s.add_argument("--dry-run", action="store_true", help="print the runs and their cost, run nothing")
    s.add_argument("--out", help="results directory (default runs/<name>)")
    s.add_argument("--yes", action="store_true", help="run even above the run limit")
    s.add_argument(
        "--max-runs",
        type=_COUNT,
        help="refuse sweeps with more runs, a positive integer (default: the spec's)",
    )
    s.add_argument(
        "--refine",
        type=_int_option(0, 100),
        default=0,
        metavar="ROUNDS",
        help="extend unbracketed grids for up to ROUNDS rounds",
    )
    _add_backend_options(s)
    s.add_argument(
        "--no-fuse",
        action="store_true",
        help="train every run on its own instead of stacking runs that differ only in lr or budget",
    )
    s.add_argument("--device", default="H100", help="device for the cost estimate")
    s.add_argument("--mfu", type=_float_option(0.0, 1.0), default=0.4, help="MFU for the cost estimate")
    s.set_defaults(run=_cmd_sweep)

    r = sub.add_parser("report", help="HTML report of a runs table and its fitted laws")
    r.add_argument("runs", help="runs table (.csv, .parquet, or Step Law CSV with --format steplaw)")
    r.add_argument("--format", choices=["csv", "parquet", "steplaw"], default=None)
    r.add_argument("--law", help="a fitted law JSON (default: fit the runs)")
    r.add_argument("--target", action="append", help="MODEL_SIZE,TOKENS to predict (repeatable)")
    r.add_argument("--seq-len", type=_SEQ_LEN, default=2048)
    r.add_argument("--n-boot", type=_N_BOOT, default=200)
    r.add_argument("--out", help="the HTML file to write (default report.html)")
    r.add_argument("-o", "--output", dest="out_old", help=argparse.SUPPRESS)  # deprecated: --out
    r.set_defaults(run=_cmd_report)

    d = sub.add_parser("demo", help="small μP sweep -> fit -> predict -> report, on CPU")
    d.add_argument("--out", default="runs/demo", help="results directory (reused when re-run)")
    d.add_argument("--size", choices=["tiny", "small", "gpu"], default="small")
    d.add_argument("--workers", type=_int_option(1, 4096), help="local worker processes (GPUs: one per GPU)")
    d.add_argument("--target", default="7e9,1.4e12", help="MODEL_SIZE,TOKENS to predict")
    d.add_argument("--seq-len", type=_SEQ_LEN, default=4096)
    d.set_defaults(run=_cmd_demo)

    v = sub.add_parser("verify", help="train a law's prediction for a larger proxy and score it")
    v.add_argument("law", help="a law JSON file written by `scalelaw fit --out` (or demo's law.json)")
    v.add_argument(
        "--spec", required=True, help="the sweep spec (TOML) the law's runs came from: recipe, μP base"
    )
    v.add_argument(
        "--width", type=_int_option(1, MAX_WIDTH), required=True, help="width of the verification proxy"
    )
    v.add_argument(
        "--depth", type=_int_option(1, MAX_DEPTH), required=True, help="depth of the verification proxy"
    )
    v.add_argument("--tokens", required=True, help="training tokens of the verification runs, e.g. 262144")
    v.add_argument("--out", help="directory of the verification sweep (default runs/<spec name>-verify)")
    v.add_argument(
        "--sweep-out",
        dest="out_old",
        help=argparse.SUPPRESS,  # deprecated: --out
    )
    v.add_argument("--lr-factors", default="0.7071067811865476,1,1.4142135623730951", help="lr grid / lr*")
    v.add_argument("--batch-factors", default="0.5,1,2", help="batch grid / B* (rounded to whole sequences)")
    v.add_argument("--alpha", type=_ALPHA, help="intervals at 1 - alpha (default 0.2: 80%%)")
    v.add_argument("--confidence", type=_ALPHA, help=argparse.SUPPRESS)  # deprecated: 1 - alpha
    v.add_argument(
        "--seeds",
        type=_int_option(1, 1000),
        default=1,
        help="runs per setting, scored on their mean loss (default 1)",
    )
    _add_backend_options(v)
    v.add_argument("--no-fuse", action="store_true", help="train every run on its own")
    v.set_defaults(run=_cmd_verify)

    c = sub.add_parser("coordcheck", help="coordinate check of a parametrization across widths")
    c.add_argument("--parametrization", choices=["sp", "mup", "completep"], help="default mup")
    c.add_argument("--param", dest="param_old", choices=["sp", "mup", "completep"], help=argparse.SUPPRESS)
    c.add_argument("--widths", default="64,128,256,512")
    c.add_argument("--steps", type=_int_option(1, 10_000), default=4)
    c.add_argument("--lr", type=_float_option(0.0), default=3e-3)
    c.add_argument("--seed", type=_SEED, default=0)
    c.set_defaults(run=_cmd_coordcheck)
    _add_import_parser(sub)
    return parser


def _commands(parser: argparse.ArgumentParser) -> list[str]:
    """The subcommand names of ``parser``."""
    return [name for a in parser._subparsers._group_actions for name in a.choices]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; 0 on success, 2 (with one ``error:`` line on stderr) for a user
    mistake: a bad command line, bad input or data (:class:`ScalelawError`), a file that
    cannot be read or written. Any other exception is a bug in scalelaw and surfaces."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _ParseError as err:
        prog = err.prog
        if prog == parser.prog:  # extra arguments are found by the top parser: name the command
            words = sys.argv[1:] if argv is None else list(argv)
            prog = next((f"{prog} {w}" for w in words if w in _commands(parser)), prog)
        print(f"{prog}: error: {err} (see {prog} --help)", file=sys.stderr)
        return 2
    try:
        return args.run(args)
    except (ScalelawError, MissingExtraError) as err:  # input, data, an extra; else a bug: let it surface
        print(f"scalelaw {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if err.filename is None:  # not about a file the user named: a bug, with its traceback
            raise
        print(f"scalelaw {args.command}: error: {err.filename}: {err.strerror or err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
