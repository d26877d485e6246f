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
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scalelaw.exceptions import SpecError
from scalelaw.proxy.parametrization import NAMES
from scalelaw.runspec import SCHEDULES, WARMUP_FRACTION, RunSpec
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

    def run_kwargs(self) -> list[dict[str, Any]]:
        """The runs as RunSpec keyword arguments (no torch needed)."""
        out = []
        for (width, depth), seed in itertools.product(self.model.shapes, self.recipe.seeds):
            n = non_embedding_params(width, depth)
            budgets = list(self.budgets) + [round(r * n) for r in self.tokens_per_param]
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
        tokens = max(batch, tokens // batch * batch)  # whole optimizer steps
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
    if device not in PEAK_FLOPS:
        raise SpecError(f"unknown device {device!r}; known: {sorted(PEAK_FLOPS)}")
    if not 0 < mfu <= 1:
        raise SpecError(f"mfu must be in (0, 1], got {mfu!r}")
    flops = sum(flops_per_token(r["width"], r["depth"], r["seq_len"], VOCAB) * r["tokens"] for r in runs)
    return Cost(len(runs), flops, device, mfu)


# ---- parsing ---------------------------------------------------------------------------


class _Fields:
    """Typed access to one TOML table with errors naming the file and the dotted field."""

    def __init__(self, table: dict, where: str, source: str):
        self.table, self.where, self.source = table, where, source
        self.used: set[str] = set()

    def fail(self, key: str, why: str) -> SpecError:
        return SpecError(f"{self.source}: field {self.where}{key}: {why}")

    def get(self, key: str, kind: type, default: Any = None, positive: bool = False) -> Any:
        self.used.add(key)
        if key not in self.table:
            if default is None:
                raise self.fail(key, "is required")
            return default
        value = self.table[key]
        ok = (
            isinstance(value, kind) and not isinstance(value, bool)
            if kind is not bool
            else isinstance(value, bool)
        )
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise self.fail(key, f"must be {kind.__name__}, got {value!r}")
        if positive and not value > 0:
            raise self.fail(key, f"must be positive, got {value!r}")
        return value

    def get_list(self, key: str, kind: type, default: tuple = (), positive: bool = True) -> tuple:
        self.used.add(key)
        if key not in self.table:
            return default
        value = self.table[key]
        if not isinstance(value, list) or not value:
            raise self.fail(key, f"must be a non-empty list, got {value!r}")
        out = []
        for i, v in enumerate(value):
            if kind is float and isinstance(v, int) and not isinstance(v, bool):
                v = float(v)
            if not isinstance(v, kind) or isinstance(v, bool):
                raise self.fail(f"{key}[{i}]", f"must be {kind.__name__}, got {v!r}")
            if positive and not v > 0:
                raise self.fail(f"{key}[{i}]", f"must be positive, got {v!r}")
            out.append(v)
        return tuple(out)

    def done(self) -> None:
        unknown = set(self.table) - self.used
        if unknown:
            raise self.fail(sorted(unknown)[0], "is not a known field (typo?)")


def _sub(root: _Fields, key: str) -> _Fields:
    root.used.add(key)
    table = root.table.get(key, {})
    if not isinstance(table, dict):
        raise root.fail(key, "must be a table ([section])")
    return _Fields(table, f"{key}.", root.source)


def parse_spec(text: str, source: str = "<spec>") -> SweepSpec:
    """Parse TOML text into a :class:`SweepSpec` (errors name the field)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{source}: not valid TOML ({err})") from None
    top = _Fields(data, "", source)
    name = top.get("name", str, default=Path(source).stem)

    m = _sub(top, "model")
    param = m.get("parametrization", str, _RUN_DEFAULTS["parametrization"])
    if param not in NAMES:
        raise m.fail("parametrization", f"must be one of {NAMES}, got {param!r}")
    if "shapes" in m.table:
        m.used.add("shapes")
        raw = m.table["shapes"]
        if (
            not isinstance(raw, list)
            or not raw
            or not all(
                isinstance(s, list) and len(s) == 2 and all(isinstance(x, int) and x > 0 for x in s)
                for s in raw
            )
        ):
            raise m.fail("shapes", f"must be a list of [width, depth] positive integer pairs, got {raw!r}")
        shapes = tuple((int(w), int(d)) for w, d in raw)
    else:
        widths = m.get_list("widths", int)
        if not widths:
            raise m.fail("widths", "is required (or give shapes)")
        shapes = tuple(itertools.product(widths, m.get_list("depths", int, default=(2,))))
    head_dim = m.get("head_dim", int, _RUN_DEFAULTS["head_dim"], positive=True)
    for w, _ in shapes:
        if w % head_dim:
            raise m.fail("widths", f"width {w} is not a multiple of head_dim {head_dim}")
    ladder = ModelLadder(
        shapes,
        param,
        m.get("base_width", int, shapes[0][0], positive=True),
        m.get("base_depth", int, shapes[0][1], positive=True),
        head_dim,
    )
    m.done()

    lr = _sub(top, "lr")
    if "values" in lr.table:
        lrs = tuple(sorted(lr.get_list("values", float)))
        step = lr.get("step", float, lrs[1] / lrs[0] if len(lrs) > 1 else 2**0.5)
    else:
        center = lr.get("center", float, positive=True)
        step = lr.get("step", float, 2**0.5)
        if not step > 1:
            raise lr.fail("step", f"must be > 1, got {step!r}")
        count = lr.get("count", int, 5, positive=True)
        lrs = tuple(center * step ** (i - (count - 1) / 2) for i in range(count))
    lr.done()

    b = _sub(top, "batch")
    batches = b.get_list("sizes", int)
    if not batches:
        raise b.fail("sizes", "is required (tokens per optimizer step)")
    b.done()

    t = _sub(top, "tokens")
    budgets, ratios = t.get_list("budgets", int), t.get_list("per_param", float)
    if not budgets and not ratios:
        raise t.fail("budgets", "give budgets (tokens) or per_param (tokens per parameter)")
    t.done()

    r, default = _sub(top, "recipe"), Recipe()
    recipe = Recipe(
        schedule=r.get("schedule", str, default.schedule),
        warmup=r.get("warmup", float, default.warmup),
        decay_fraction=r.get("decay_fraction", float, default.decay_fraction),
        weight_decay=r.get("weight_decay", float, default.weight_decay),
        grad_clip=r.get("grad_clip", float, default.grad_clip),
        seq_len=r.get("seq_len", int, default.seq_len, positive=True),
        dataset=r.get("dataset", str, default.dataset),
        seeds=r.get_list("seeds", int, default=default.seeds, positive=False),
    )
    if recipe.schedule not in SCHEDULES:
        raise r.fail("schedule", f"must be one of {SCHEDULES}, got {recipe.schedule!r}")
    if recipe.warmup < 0:
        raise r.fail("warmup", f"must be >= 0, got {recipe.warmup!r}")
    for i, size in enumerate(batches):
        if size % recipe.seq_len:
            raise b.fail(f"sizes[{i}]", f"{size} tokens is not a multiple of recipe.seq_len {recipe.seq_len}")
    r.done()

    wd = _sub(top, "weight_decay")
    decays = wd.get_list("values", float, positive=False)
    for i, value in enumerate(decays):
        if not (math.isfinite(value) and value >= 0):
            raise wd.fail(f"values[{i}]", f"must be a non-negative number, got {value!r}")
    if len(set(decays)) < len(decays):
        raise wd.fail("values", f"repeats a value: {list(decays)!r}")
    if decays and "weight_decay" in r.table:
        raise wd.fail(
            "values", "give the weight decay either here (a sweep axis) or as recipe.weight_decay, not both"
        )
    wd.done()
    if "weight_decay" in top.table and not decays:
        raise wd.fail("values", "is required in a [weight_decay] table (a list of non-negative numbers)")

    lim = _sub(top, "limits")
    max_runs = lim.get("max_runs", int, 1000, positive=True)
    lim.done()
    top.done()
    return SweepSpec(
        name, ladder, lrs, step, batches, budgets, ratios, recipe, max_runs, source, tuple(sorted(decays))
    )


def load_spec(path: str | Path) -> SweepSpec:
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such sweep spec")
    return parse_spec(path.read_text(encoding="utf-8"), source=str(path))
