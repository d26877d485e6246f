"""Sweep specs: a TOML file -> frozen dataclasses -> the list of runs, and its cost.

Nothing here imports torch: a sweep can be planned and priced on any machine.

```toml
name = "tiny-mup"
[model]                       # the ladder: widths x depths, or explicit shapes
parametrization = "mup"
widths = [64, 128]
depths = [2]                  # or: shapes = [[64, 2], [128, 4]]
base_width = 64
base_depth = 2
head_dim = 32
[lr]                          # geometric grid, or: values = [1e-3, 2e-3]
center = 3e-3
step = 1.4142135623730951
count = 5
[batch]
sizes = [4096, 8192]          # tokens per step
[tokens]
budgets = [262144]            # or: per_param = [20.0]  (tokens per non-embedding param)
[recipe]
schedule = "wsd"              # wsd | cosine | linear
warmup = 0.05                 # < 1: fraction of tokens; >= 1: tokens
seq_len = 128
seeds = [0]
[weight_decay]                # optional sweep axis; absent: recipe.weight_decay alone
values = [0.0, 0.05, 0.1]     # non-negative; every other run is repeated at each value
[limits]
max_runs = 1000               # refuse bigger sweeps unless --yes
```

Every field is checked where it enters (:func:`spec_from_dict`), against what a run can
train (the ranges in ``scalelaw.runspec``): a spec either parses into runs that all
train or raises :class:`SpecError` naming the field and the value. ``name`` is one
path component (``runs/<name>``); the run count, the product of the axis sizes, is
checked before any grid is built and may not pass :data:`MAX_SWEEP_RUNS`.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scalelaw.exceptions import InputError, SpecError, show
from scalelaw.proxy.data import CORPUS
from scalelaw.proxy.parametrization import NAMES
from scalelaw.runspec import (
    LIMIT_WHY,
    LR_RANGE,
    MAX_BATCH,
    MAX_DEPTH,
    MAX_HEAD_DIM,
    MAX_PARAMS,
    MAX_SEQ_LEN,
    MAX_TOKENS,
    MAX_WIDTH,
    SCHEDULES,
    SEED_MAX,
    WARMUP_FRACTION,
    RunSpec,
    is_real,
    max_lr_multiplier,
)
from scalelaw.shapes import PEAK_FLOPS, flops_per_token, non_embedding_params

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

VOCAB = 256  # the embedded corpus' byte tokenizer
# A sweep's defaults are RunSpec's: one definition of every default recipe value.
_RUN_DEFAULTS = {
    f.name: f.default for f in dataclasses.fields(RunSpec) if f.default is not dataclasses.MISSING
}


@dataclass(frozen=True)
class ModelLadder:
    shapes: tuple[tuple[int, int], ...]  # (width, depth)
    parametrization: str = _RUN_DEFAULTS["parametrization"]
    base_width: int = _RUN_DEFAULTS["base_width"]
    base_depth: int = _RUN_DEFAULTS["base_depth"]
    head_dim: int = _RUN_DEFAULTS["head_dim"]


@dataclass(frozen=True)
class Recipe:
    """The training recipe every run of a sweep shares; defaults are RunSpec's.
    ``warmup``: a fraction of each run's tokens when below 1, else tokens."""

    schedule: str = _RUN_DEFAULTS["schedule"]
    warmup: float = WARMUP_FRACTION
    decay_fraction: float = _RUN_DEFAULTS["decay_fraction"]
    weight_decay: float = _RUN_DEFAULTS["weight_decay"]
    grad_clip: float = _RUN_DEFAULTS["grad_clip"]
    seq_len: int = _RUN_DEFAULTS["seq_len"]
    dataset: str = _RUN_DEFAULTS["dataset"]
    seeds: tuple[int, ...] = (_RUN_DEFAULTS["seed"],)


@dataclass(frozen=True)
class SweepSpec:
    """A parsed, validated sweep. ``lrs`` and ``batch_sizes`` are the full grids."""

    name: str
    model: ModelLadder
    lrs: tuple[float, ...]
    lr_step: float
    batch_sizes: tuple[int, ...]
    budgets: tuple[int, ...] = ()
    tokens_per_param: tuple[float, ...] = ()
    recipe: Recipe = field(default_factory=Recipe)
    max_runs: int = 1000
    source: str = "<spec>"
    weight_decays: tuple[float, ...] = ()  # the [weight_decay] axis; () -> (recipe.weight_decay,)

    @property
    def batch_step(self) -> float:
        """Factor between neighbouring batch sizes (2 when there is only one)."""
        b = sorted(self.batch_sizes)
        return b[1] / b[0] if len(b) > 1 else 2.0

    def run_specs(self) -> list[RunSpec]:
        """Every run of the full grid."""
        return [RunSpec(**kw) for kw in self.run_kwargs()]

    @property
    def n_runs(self) -> int:
        """Runs of the full grid, counted without building it (the product of the axis sizes)."""
        return (
            len(self.model.shapes)
            * len(self.recipe.seeds)
            * (len(self.budgets) + len(self.tokens_per_param))
            * len(self.lrs)
            * len(self.batch_sizes)
            * max(1, len(self.weight_decays))
        )

    def token_budgets(self, width: int, depth: int) -> list[int]:
        """Training tokens of a shape's runs: ``budgets``, then ``per_param`` x N."""
        n = non_embedding_params(width, depth)
        return list(self.budgets) + [round(r * n) for r in self.tokens_per_param]

    def run_kwargs(self) -> list[dict[str, Any]]:
        """The runs as RunSpec keyword arguments (no torch needed)."""
        out = []
        for (width, depth), seed in itertools.product(self.model.shapes, self.recipe.seeds):
            budgets = self.token_budgets(width, depth)
            decays = self.weight_decays or (self.recipe.weight_decay,)
            for tokens, lr, batch, decay in itertools.product(budgets, self.lrs, self.batch_sizes, decays):
                out.append(self.kwargs_for(width, depth, lr, batch, tokens, seed, weight_decay=decay))
        return out

    def kwargs_for(
        self,
        width: int,
        depth: int,
        lr: float,
        batch: int,
        tokens: int,
        seed: int,
        weight_decay: float | None = None,
    ) -> dict:
        r, m = self.recipe, self.model
        if tokens < batch:  # never raised silently: that would train a different run than asked
            raise SpecError(
                f"{self.source}: {tokens:,} tokens is less than one batch of {batch:,} tokens "
                f"(width {width} x depth {depth}); raise tokens.budgets or lower batch.sizes"
            )
        tokens = tokens // batch * batch  # whole optimizer steps
        warmup = round(r.warmup * tokens) if r.warmup < 1 else int(r.warmup)
        return {
            "width": width,
            "depth": depth,
            "lr": float(lr),
            "batch_size": int(batch),
            "tokens": int(tokens),
            "seq_len": r.seq_len,
            "parametrization": m.parametrization,
            "base_width": m.base_width,
            "base_depth": m.base_depth,
            "head_dim": m.head_dim,
            "schedule": r.schedule,
            "warmup": min(warmup, tokens),
            "decay_fraction": r.decay_fraction,
            "weight_decay": float(r.weight_decay if weight_decay is None else weight_decay),
            "grad_clip": r.grad_clip,
            "seed": seed,
            "dataset": r.dataset,
        }


@dataclass(frozen=True)
class Cost:
    runs: int
    flops: float
    device: str
    mfu: float

    @property
    def device_hours(self) -> float:
        return self.flops / (PEAK_FLOPS[self.device] * self.mfu) / 3600


def cost(runs: list[dict[str, Any]], device: str = "H100", mfu: float = 0.4) -> Cost:
    """Total training FLOPs of the runs and device-hours on ``device`` at ``mfu``."""
    if not isinstance(device, str) or device not in PEAK_FLOPS:
        raise SpecError(f"unknown device {device!r}; known: {sorted(PEAK_FLOPS)}")
    if not (is_real(mfu) and 0 < mfu <= 1):
        raise SpecError(f"mfu must be in (0, 1], got {mfu!r}")
    flops = sum(flops_per_token(r["width"], r["depth"], r["seq_len"], VOCAB) * r["tokens"] for r in runs)
    return Cost(len(runs), flops, device, mfu)


# ---- parsing ---------------------------------------------------------------------------

_REQUIRED = object()
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")
NAME_RULE = (
    "one path component of letters, digits, '.', '_' and '-', starting with a letter or digit, "
    "at most 100 characters"
)
MAX_SWEEP_RUNS = 100_000  # runs one spec may plan, whatever limits.max_runs or --yes say
SPEC_FIELDS = {  # every field of every table ("": the top level); anything else is refused
    "": ("name", "model", "lr", "batch", "tokens", "recipe", "weight_decay", "limits"),
    "model": ("parametrization", "shapes", "widths", "depths", "base_width", "base_depth", "head_dim"),
    "lr": ("values", "center", "step", "count"),
    "batch": ("sizes",),
    "tokens": ("budgets", "per_param"),
    "recipe": (
        "schedule",
        "warmup",
        "decay_fraction",
        "weight_decay",
        "grad_clip",
        "seq_len",
        "dataset",
        "seeds",
    ),
    "weight_decay": ("values",),
    "limits": ("max_runs",),
}


def valid_name(name: object) -> bool:
    """Whether ``name`` can name a sweep: one safe path component (see NAME_RULE)."""
    return isinstance(name, str) and _NAME.match(name) is not None


def _show(value: object) -> str:
    """``show(value)``, cut to a readable length (a value may be a huge list or number)."""
    try:
        text = show(value)
    except Exception:  # a value whose repr fails is still named by its type
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:60] + f"... ({len(text)} characters)"


def _number(value: object, integer: bool) -> int | float | None:
    """The value as a Python int (``integer``; whole floats such as 1e6 count) or float;
    None when it is not a number (bools, strings, lists, dates are not)."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if not isinstance(value, (float, np.floating)):
        return None
    value = float(value)
    if integer:
        return int(value) if math.isfinite(value) and value.is_integer() else None
    return value


class _Table:
    """One TOML table: typed, range-checked values; every error names the file, the
    dotted field and the value found there."""

    def __init__(self, table: Mapping, where: str, source: str):
        self.table, self.where, self.source = table, where, source
        known = SPEC_FIELDS[where.rstrip(".")]
        for key in table:
            if not isinstance(key, str) or key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known)}"
                raise self.fail(str(key), f"is not a known field (typo?); {hint}")

    def fail(self, key: str, why: str) -> SpecError:
        return SpecError(f"{self.source}: field {self.where}{key}: {why}")

    def __contains__(self, key: str) -> bool:
        return key in self.table

    def sub(self, key: str) -> _Table:
        table = self.table.get(key, {})
        if not isinstance(table, Mapping):
            raise self.fail(key, f"must be a table ([{key}] section), got {_show(table)}")
        return _Table(table, f"{key}.", self.source)

    def raw(self, key: str, default: Any) -> Any:
        if key in self.table:
            return self.table[key]
        if default is _REQUIRED:
            raise self.fail(key, "is required")
        return default

    def check_int(self, key: str, value: Any, lo: int = 1, hi: int | None = None, why: str = "") -> int:
        number = _number(value, integer=True)
        if number is None:
            raise self.fail(key, f"must be int, got {_show(value)}")
        if number < lo:
            raise self.fail(key, f"must be {'positive' if lo == 1 else f'>= {lo}'}, got {_show(value)}")
        if hi is not None and number > hi:
            raise self.fail(key, f"must be at most {hi:,}{f' ({why})' if why else ''}, got {_show(value)}")
        return number

    def check_float(
        self, key: str, value: Any, lo: float = 0.0, hi: float = math.inf, lo_open: bool = True
    ) -> float:
        number = _number(value, integer=False)
        if number is None:
            raise self.fail(key, f"must be float, got {_show(value)}")
        if not (math.isfinite(number) and (number > lo if lo_open else number >= lo) and number <= hi):
            if hi < math.inf:
                why = f"must be a finite number in {'(' if lo_open else '['}{lo:g}, {hi:g}]"
            elif lo == 0:
                why = "must be positive and finite" if lo_open else "must be a non-negative number"
            else:
                why = f"must be a finite number {'>' if lo_open else '>='} {lo:g}"
            raise self.fail(key, f"{why}, got {_show(value)}")
        return number

    def int(
        self, key: str, default: Any = _REQUIRED, lo: int = 1, hi: int | None = None, why: str = ""
    ) -> int:
        """The field as an int in [lo, hi] (``default`` when absent, unchecked)."""
        if key not in self.table and default is not _REQUIRED:
            return default
        return self.check_int(key, self.raw(key, default), lo, hi, why)

    def float(
        self, key: str, default: Any = _REQUIRED, lo: float = 0.0, hi: float = math.inf, lo_open: bool = True
    ) -> float:
        """The field as a finite float above ``lo`` (or at it) and at most ``hi``."""
        if key not in self.table and default is not _REQUIRED:
            return default
        return self.check_float(key, self.raw(key, default), lo, hi, lo_open)

    def text(self, key: str, default: Any = _REQUIRED, choices: tuple[str, ...] = ()) -> str:
        """The field as a string, one of ``choices`` when given."""
        value = self.raw(key, default)
        if not isinstance(value, str):
            raise self.fail(key, f"must be str, got {_show(value)}")
        if choices and value not in choices:
            raise self.fail(key, f"must be one of {choices}, got {_show(value)}")
        return value

    def items(self, key: str) -> list:
        """A non-empty list (TOML array; a tuple or 1-d numpy array from Python)."""
        value = self.table[key]
        if isinstance(value, np.ndarray) and value.ndim == 1:
            value = list(value)
        if not isinstance(value, (list, tuple)) or not value:
            raise self.fail(key, f"must be a non-empty list, got {_show(value)}")
        return list(value)

    def distinct(self, key: str, values: tuple) -> tuple:
        seen: set = set()
        for i, v in enumerate(values):
            if v in seen:
                raise self.fail(key, f"repeats a value: {_show(v)} at [{i}] (the same runs again)")
            seen.add(v)
        return values

    def ints(self, key: str, lo: int = 1, hi: int | None = None, why: str = "") -> tuple[int, ...]:
        if key not in self.table:
            return ()
        values = tuple(self.check_int(f"{key}[{i}]", v, lo, hi, why) for i, v in enumerate(self.items(key)))
        return self.distinct(key, values)

    def floats(
        self, key: str, lo: float = 0.0, hi: float = math.inf, lo_open: bool = True
    ) -> tuple[float, ...]:
        if key not in self.table:
            return ()
        values = tuple(
            self.check_float(f"{key}[{i}]", v, lo, hi, lo_open) for i, v in enumerate(self.items(key))
        )
        return self.distinct(key, values)


def _name(top: _Table, source: str) -> str:
    """The sweep's name: the directory ``runs/<name>``, so one safe path component."""
    if "name" in top:
        name = top.text("name")
        if not _NAME.match(name):
            raise top.fail(
                "name", f"must be {NAME_RULE}, got {_show(name)} (the sweep writes to runs/<name>)"
            )
        return name
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(str(source)).stem).strip(".-_")[:100]
    return stem if valid_name(stem) else "sweep"


def _ladder(m: _Table) -> ModelLadder:
    param = m.text("parametrization", _RUN_DEFAULTS["parametrization"], NAMES)
    head_dim = m.int("head_dim", _RUN_DEFAULTS["head_dim"], 2, MAX_HEAD_DIM, LIMIT_WHY["head_dim"])
    if head_dim % 2:
        raise m.fail(
            "head_dim", f"must be even (rotary embeddings rotate pairs), got {_show(m.table['head_dim'])}"
        )
    if "shapes" in m:
        if "widths" in m or "depths" in m:
            raise m.fail("shapes", "give either shapes or widths / depths, not both")
        shapes = []
        for i, pair in enumerate(m.items("shapes")):
            if isinstance(pair, np.ndarray):
                pair = list(pair)
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise m.fail(f"shapes[{i}]", f"must be a [width, depth] pair, got {_show(pair)}")
            shapes.append(
                (
                    m.check_int(f"shapes[{i}][0]", pair[0], 1, MAX_WIDTH, LIMIT_WHY["width"]),
                    m.check_int(f"shapes[{i}][1]", pair[1], 1, MAX_DEPTH, LIMIT_WHY["depth"]),
                )
            )
        shapes = m.distinct("shapes", tuple(shapes))
        where = [f"shapes[{i}]" for i in range(len(shapes))]
    else:
        if "widths" not in m:
            raise m.fail("widths", "is required (or give shapes)")
        widths = m.ints("widths", 1, MAX_WIDTH, LIMIT_WHY["width"])
        depths = m.ints("depths", 1, MAX_DEPTH, LIMIT_WHY["depth"]) or (2,)
        if len(widths) * len(depths) > MAX_SWEEP_RUNS:  # counted before the product is built
            raise m.fail(
                "widths",
                f"{len(widths)} widths x {len(depths)} depths is more shapes than one spec may plan "
                f"runs ({MAX_SWEEP_RUNS:,})",
            )
        shapes = tuple(itertools.product(widths, depths))
        where = ["widths"] * len(shapes)
    for key, (w, d) in zip(where, shapes, strict=True):
        if w % head_dim:
            raise m.fail(key, f"width {w} is not a multiple of head_dim {head_dim}")
        if non_embedding_params(w, d) > MAX_PARAMS:
            raise m.fail(
                key,
                f"width {w} x depth {d} has {non_embedding_params(w, d):.3g} parameters, more than "
                f"{MAX_PARAMS:.3g} ({LIMIT_WHY['params']})",
            )
    base_width = m.int("base_width", shapes[0][0], 1, MAX_WIDTH, LIMIT_WHY["base_width"])
    base_depth = m.int("base_depth", shapes[0][1], 1, MAX_DEPTH, LIMIT_WHY["base_depth"])
    return ModelLadder(shapes, param, base_width, base_depth, head_dim)


def _dataset(r: _Table, seq_len: int) -> str:
    """The embedded corpus, or a directory whose files exist and hold more than one sequence."""
    dataset = r.text("dataset", _RUN_DEFAULTS["dataset"])
    if dataset == CORPUS:
        return dataset
    if not dataset.strip() or "\0" in dataset:
        raise r.fail("dataset", f"must be {CORPUS!r} or a dataset directory, got {_show(dataset)}")
    directory = Path(dataset)
    need = "a dataset directory holds train.bin and val.bin (uint16 token ids) and meta.json with vocab_size"
    try:
        meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
        sizes = {split: (directory / f"{split}.bin").stat().st_size // 2 for split in ("train", "val")}
    except (OSError, ValueError, RecursionError) as err:
        raise r.fail("dataset", f"{_show(dataset)} cannot be read ({err}); {need}") from None
    vocab = meta.get("vocab_size") if isinstance(meta, dict) else None
    if _number(vocab, integer=True) is None or not 2 <= vocab <= 65536:
        raise r.fail(
            "dataset",
            f"{_show(dataset)}: meta.json's vocab_size must be an integer in [2, 65536] "
            f"(uint16 tokens), got {_show(vocab)}",
        )
    for split, n in sizes.items():
        if n < seq_len + 2:
            raise r.fail(
                "dataset",
                f"{_show(dataset)}: {split}.bin holds {n} tokens, fewer than one sequence "
                f"of recipe.seq_len {seq_len} + 2",
            )
    return dataset


def _recipe(r: _Table) -> Recipe:
    default = Recipe()
    seq_len = r.int("seq_len", default.seq_len, 1, MAX_SEQ_LEN, LIMIT_WHY["seq_len"])
    warmup = r.float("warmup", default.warmup, 0.0, lo_open=False)
    if warmup >= 1 and not float(warmup).is_integer():
        raise r.fail(
            "warmup",
            "below 1 is a fraction of each run's tokens, from 1 on a whole number of tokens; "
            f"got {_show(r.table['warmup'])}",
        )
    return Recipe(
        schedule=r.text("schedule", default.schedule, SCHEDULES),
        warmup=float(warmup),
        decay_fraction=r.float("decay_fraction", default.decay_fraction, 0.0, 1.0, lo_open=False),
        weight_decay=r.float("weight_decay", default.weight_decay, 0.0, lo_open=False),
        grad_clip=r.float("grad_clip", default.grad_clip, 0.0, lo_open=False),
        seq_len=seq_len,
        dataset=_dataset(r, seq_len),
        seeds=r.ints("seeds", 0, SEED_MAX, "numpy and torch accept seeds in [0, 2**32 - 1]")
        if "seeds" in r
        else default.seeds,
    )


def _lr_axis(lr: _Table) -> tuple[int, Callable[[], tuple[float, ...]], float]:
    """(grid size, a function building the grid, step factor); nothing is built yet, so a
    huge count is refused by the run count before it takes any memory."""
    lo, hi = LR_RANGE
    if "values" in lr:
        for key in ("center", "count"):
            if key in lr:
                raise lr.fail(key, "give either lr.values or lr.center / lr.count, not both")
        values = tuple(sorted(lr.floats("values", lo, hi, lo_open=False)))
        step = lr.float("step", values[1] / values[0] if len(values) > 1 else 2**0.5)
        if not step > 1:
            raise lr.fail("step", f"must be > 1, got {_show(lr.table['step'])}")
        return len(values), lambda: values, step
    center = lr.float("center", _REQUIRED, lo, hi, lo_open=False)
    step = lr.float("step", 2**0.5, 0.0)
    if not step > 1:
        raise lr.fail("step", f"must be > 1, got {_show(lr.table['step'])}")
    count = lr.int("count", 5, 1, MAX_SWEEP_RUNS, "runs one spec may plan")
    half = (count - 1) / 2 * math.log(step)
    if math.log(center) - half < math.log(lo) or math.log(center) + half > math.log(hi):
        raise SpecError(
            f"{lr.source}: fields lr.center = {center:g}, lr.step = {step:g}, lr.count = {count}: the grid "
            f"spans [{math.exp(math.log(center) - half):.3g}, "
            f"{math.exp(min(math.log(center) + half, 700)):.3g}], "
            f"outside the lr range [{lo:g}, {hi:g}]; lower lr.count or lr.step, or move lr.center"
        )
    return count, lambda: tuple(center * step ** (i - (count - 1) / 2) for i in range(count)), step


def parse_spec(text: str, source: str = "<spec>") -> SweepSpec:
    """Parse TOML text into a validated :class:`SweepSpec` (errors name the field and value)."""
    if not isinstance(text, str):
        raise SpecError(f"{source}: a sweep spec is TOML text, got {type(text).__name__}")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{source}: not valid TOML ({err})") from None
    except RecursionError:
        raise SpecError(f"{source}: not valid TOML (nested too deeply)") from None
    return spec_from_dict(data, source)


def spec_from_dict(data: Mapping[str, Any], source: str = "<spec>") -> SweepSpec:
    """A validated :class:`SweepSpec` from the spec's tables as a mapping (what TOML parses to).

    Every value is checked where it enters, against what a run can train (``scalelaw.runspec``'s
    ranges: lr, seeds, shapes, batch and token sizes), and every combination: a batch is a
    whole number of sequences, each token budget is at least one batch, warmup fits the
    shortest run, lr x weight decay < 1. The run count (the product of the axis sizes) is
    checked before any grid is built. Raises :class:`SpecError` naming the field and value.
    """
    if not isinstance(data, Mapping):
        raise SpecError(f"{source}: a sweep spec is a table of sections, got {_show(data)}")
    top = _Table(data, "", source)
    name = _name(top, source)
    ladder = _ladder(top.sub("model"))
    r = top.sub("recipe")
    recipe = _recipe(r)

    b = top.sub("batch")
    if "sizes" not in b:
        raise b.fail("sizes", "is required (tokens per optimizer step)")
    batches = b.ints("sizes", 1, MAX_BATCH, LIMIT_WHY["batch_size"])
    for i, size in enumerate(batches):
        if size % recipe.seq_len:
            raise b.fail(f"sizes[{i}]", f"{size} tokens is not a multiple of recipe.seq_len {recipe.seq_len}")

    t = top.sub("tokens")
    budgets = t.ints("budgets", 1, MAX_TOKENS, LIMIT_WHY["tokens"])
    ratios = t.floats("per_param", 0.0, float(MAX_TOKENS))
    if not budgets and not ratios:
        raise t.fail("budgets", "give budgets (tokens) or per_param (tokens per parameter)")

    wd = top.sub("weight_decay")
    if "weight_decay" in top and "values" not in wd:
        raise wd.fail("values", "is required in a [weight_decay] table (a list of non-negative numbers)")
    decays = tuple(sorted(wd.floats("values", 0.0, lo_open=False)))
    if decays and "weight_decay" in r:
        raise wd.fail(
            "values", "give the weight decay either here (a sweep axis) or as recipe.weight_decay, not both"
        )

    lr = top.sub("lr")
    n_lrs, lr_grid, step = _lr_axis(lr)
    lim = top.sub("limits")
    max_runs = lim.int("max_runs", 1000, 1, MAX_SWEEP_RUNS, "runs one spec may plan")

    axes = {  # the run count is their product, known before any grid is built
        "shapes (model.widths x depths or shapes)": len(ladder.shapes),
        "seeds (recipe.seeds)": len(recipe.seeds),
        "token budgets (tokens.budgets, per_param)": len(budgets) + len(ratios),
        f"lrs (lr.{'values' if 'values' in lr else 'count'})": n_lrs,
        "batch sizes (batch.sizes)": len(batches),
        "weight decays (weight_decay.values)": max(1, len(decays)),
    }
    n_runs = math.prod(axes.values())
    if n_runs > MAX_SWEEP_RUNS:
        raise SpecError(
            f"{source}: {n_runs:,} runs = {' x '.join(f'{n} {k}' for k, n in axes.items())}: more than "
            f"one spec may plan ({MAX_SWEEP_RUNS:,}); shrink an axis or split the sweep"
        )
    spec = SweepSpec(
        name, ladder, lr_grid(), step, batches, budgets, ratios, recipe, max_runs, source, decays
    )
    _check_combinations(spec, t, r, top)
    return spec


def _check_combinations(spec: SweepSpec, t: _Table, r: _Table, top: _Table) -> None:
    """What no single field shows: each budget holds a batch, budgets stay distinct once
    rounded to whole steps, warmup fits the shortest run, lr x weight decay stays below 1;
    then every corner of the grid is built as a RunSpec, the trainer's own check."""
    big = max(spec.batch_sizes)

    def sources(width: int, depth: int) -> list[tuple[str, int]]:
        keys = [f"budgets[{i}]" for i in range(len(spec.budgets))]
        keys += [f"per_param[{i}]" for i in range(len(spec.tokens_per_param))]
        return list(zip(keys, spec.token_budgets(width, depth), strict=True))

    for width, depth in spec.model.shapes:
        n = non_embedding_params(width, depth)
        for key, tokens in sources(width, depth):
            if tokens < big:
                raise t.fail(
                    key,
                    f"{tokens:,} tokens for width {width} x depth {depth} (N = {n:,}) is less than "
                    f"one batch of {big:,} tokens (batch.sizes): every run trains at least one step",
                )
            if tokens > MAX_TOKENS:
                raise t.fail(
                    key,
                    f"{tokens:.3g} tokens for width {width} x depth {depth} is more than "
                    f"{MAX_TOKENS:.0e} ({LIMIT_WHY['tokens']})",
                )
        for batch in spec.batch_sizes:
            seen: dict[int, str] = {}
            for key, tokens in sources(width, depth):
                steps = tokens // batch
                if steps in seen:
                    raise t.fail(
                        key,
                        f"{tokens:,} tokens is {steps} steps of batch {batch}, the same runs as "
                        f"{seen[steps]} (budgets are rounded down to whole steps) for width {width} "
                        f"x depth {depth}",
                    )
                seen[steps] = f"{key} ({tokens:,} tokens)"
    shortest = min(
        tokens // batch * batch
        for w, d in spec.model.shapes
        for _, tokens in sources(w, d)
        for batch in spec.batch_sizes
    )
    if spec.recipe.warmup >= 1 and spec.recipe.warmup > shortest:
        raise r.fail(
            "warmup", f"{spec.recipe.warmup:g} tokens is longer than the shortest run ({shortest:,} tokens)"
        )
    decays = spec.weight_decays or (spec.recipe.weight_decay,)
    key = "weight_decay.values" if spec.weight_decays else "recipe.weight_decay"
    for width, _ in spec.model.shapes:
        mult = max_lr_multiplier(spec.model.parametrization, width, spec.model.base_width)
        shrink = max(spec.lrs) * max(decays) * mult
        if shrink >= 1:
            raise SpecError(
                f"{spec.source}: field {key}: {max(decays):g} with lr up to {max(spec.lrs):.3g}"
                + (f" (x {mult:g}, the μP lr multiplier of width {width})" if mult != 1 else "")
                + f": AdamW shrinks each decayed weight by lr x weight_decay = {shrink:.3g} per step, "
                "which zeroes or flips it; it must stay below 1"
            )
    corners = lambda values: sorted({min(values), max(values)})  # noqa: E731
    for width, depth in spec.model.shapes:
        budgets = [tokens for _, tokens in sources(width, depth)]
        for lr, batch, tokens, seed, decay in itertools.product(
            corners(spec.lrs),
            corners(spec.batch_sizes),
            corners(budgets),
            corners(spec.recipe.seeds),
            corners(decays),
        ):
            try:
                RunSpec(**spec.kwargs_for(width, depth, lr, batch, tokens, seed, weight_decay=decay))
            except InputError as err:
                raise SpecError(
                    f"{spec.source}: the run width {width} x depth {depth}, lr {lr:.3g}, batch {batch}, "
                    f"{tokens:,} tokens, seed {seed} cannot train: {err}"
                ) from None


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a sweep spec file (TOML)."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such sweep spec")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"{path}: cannot read the sweep spec ({err})") from None
    return parse_spec(text, source=str(path))
