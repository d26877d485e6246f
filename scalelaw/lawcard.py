"""Law cards: the training recipe a law's runs used, so a law is not applied blindly.

An optimal lr or batch size is optimal *for a recipe*: the optimizer and its betas, the
weight decay, the schedule and its floor, the warmup, the sequence length, the data and
tokenizer, the parametrization. A law fitted by another lab carries their recipe with it.
A :class:`LawCard` records that recipe (every field optional: ``None`` = unknown) and the
domain the law was fitted on, and :meth:`LawCard.differences` compares a user's recipe
with it, so :func:`scalelaw.predict` can warn when they differ.

Units: ``warmup`` in tokens (the runs table's unit, ``RunRecord.warmup``); papers that
state warmup in optimizer steps fill ``warmup_steps`` instead. ``decay_floor``: the final
lr as a fraction of the peak lr. ``weight_decay``: the coefficient as passed to the
optimizer; ``weight_decay_scaled_by_lr`` says whether the decay per step is lr * wd
(PyTorch ``AdamW``) or wd alone (fully decoupled). Domain: ``n_range`` non-embedding
parameters, ``d_range`` training tokens, ``batch_range`` tokens per optimizer step, each
(min, max). numpy/pandas only, no torch.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scalelaw.exceptions import InputError, show
from scalelaw.validate import MAX_TOKENS, number

RELATIVE_TOLERANCE = 0.1  # numbers within 10% of each other agree
BETAS = ("beta1", "beta2")  # compared on the 1 - beta scale: 0.95 vs 0.999 is a real difference

# Recipe fields by type: what a user's recipe dict may name, and how its values are read.
FLOAT_FIELDS = ("beta1", "beta2", "eps", "weight_decay", "decay_floor", "grad_clip", "warmup_fraction")
INT_FIELDS = ("warmup", "warmup_steps", "seq_len", "base_width", "base_depth")
BOOL_FIELDS = ("weight_decay_scaled_by_lr",)
STR_FIELDS = ("optimizer", "schedule", "data", "tokenizer", "loss_kind", "parametrization")
RECIPE_FIELDS = (
    "optimizer",
    "beta1",
    "beta2",
    "eps",
    "weight_decay",
    "weight_decay_scaled_by_lr",
    "schedule",
    "decay_floor",
    "warmup",
    "warmup_steps",
    "warmup_fraction",
    "grad_clip",
    "seq_len",
    "data",
    "tokenizer",
    "loss_kind",
    "parametrization",
    "base_width",
    "base_depth",
)
DOMAIN_FIELDS = ("n_range", "d_range", "batch_range")
# Runs-table columns a fit reads into the card when the table holds one value of them.
TABLE_FIELDS = (
    "parametrization",
    "base_width",
    "base_depth",
    "schedule",
    "warmup",
    "weight_decay",
    "seq_len",
    "loss_kind",
)
_TRUE, _FALSE = ("true", "yes", "1"), ("false", "no", "0")
# Largest value of the bounded numeric fields: betas and fractions at most 1; counts of
# tokens within scalelaw's bound on tokens (scalelaw.validate).
FIELD_MAX = {
    "beta1": 1.0,
    "beta2": 1.0,
    "decay_floor": 1.0,
    "warmup_fraction": 1.0,
    "warmup": MAX_TOKENS,
    "warmup_steps": MAX_TOKENS,
    "seq_len": MAX_TOKENS,
    "base_width": MAX_TOKENS,
    "base_depth": MAX_TOKENS,
}


@dataclass(frozen=True)
class LawCard:
    """The recipe and domain of the runs a law was fitted on; ``None`` = unknown.

    Recipe: ``optimizer`` (e.g. ``"adamw"``), ``beta1``, ``beta2``, ``eps``,
    ``weight_decay`` (coefficient), ``weight_decay_scaled_by_lr`` (True: decay per step is
    lr * weight_decay, as PyTorch AdamW), ``schedule`` (``"cosine"``, ``"wsd"``,
    ``"linear"``, ``"multi-step"``, ...), ``decay_floor`` (final lr / peak lr),
    ``warmup`` (tokens), ``warmup_steps`` (optimizer steps, when a paper states that
    instead), ``warmup_fraction`` (warmup tokens / training tokens, when every run used
    the same fraction, as scalelaw sweeps do), ``grad_clip`` (max global gradient norm),
    ``seq_len`` (tokens per sequence), ``data`` and ``tokenizer`` (names), ``loss_kind`` (the loss the law's
    optima minimise: ``"train"``, ``"smoothed_train"`` or ``"validation"``),
    ``parametrization`` (``"sp"``, ``"mup"``, ``"completep"``), ``base_width`` and
    ``base_depth`` (the shape μP's multipliers are relative to: a μP law's lr is the lr
    of that shape; :mod:`scalelaw.target` turns it into per-group values).

    Domain: ``n_range`` (non-embedding parameters), ``d_range`` (training tokens),
    ``batch_range`` (tokens per step), each (min, max).

    ``varied``: recipe fields that took several values across the runs (so they are
    ``None`` here, not unknown). ``notes``: free text, e.g. where each value comes from.
    """

    optimizer: str | None = None
    beta1: float | None = None
    beta2: float | None = None
    eps: float | None = None
    weight_decay: float | None = None
    weight_decay_scaled_by_lr: bool | None = None
    schedule: str | None = None
    decay_floor: float | None = None
    warmup: int | None = None
    warmup_steps: int | None = None
    warmup_fraction: float | None = None
    grad_clip: float | None = None
    seq_len: int | None = None
    data: str | None = None
    tokenizer: str | None = None
    loss_kind: str | None = None
    parametrization: str | None = None
    base_width: int | None = None
    base_depth: int | None = None
    n_range: tuple[float, float] | None = None
    d_range: tuple[float, float] | None = None
    batch_range: tuple[float, float] | None = None
    varied: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in RECIPE_FIELDS:
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _coerce(name, value, "LawCard"))
        for name in DOMAIN_FIELDS:
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _range(name, value))
        for key in ("varied", "notes"):
            items = getattr(self, key)
            if isinstance(items, str) or not isinstance(items, (list, tuple)):
                raise InputError(f"LawCard.{key} must be a tuple of text, got {show(items)}")
        if not all(isinstance(v, str) for v in self.varied):
            raise InputError(f"LawCard.varied must name recipe fields, got {show(self.varied)}")
        unknown = set(self.varied) - set(RECIPE_FIELDS)
        if unknown:
            raise InputError(f"LawCard.varied: unknown field(s) {sorted(unknown)}")
        object.__setattr__(self, "varied", tuple(self.varied))
        object.__setattr__(self, "notes", tuple(str(n) for n in self.notes))

    @property
    def known(self) -> dict[str, Any]:
        """The recipe fields this card knows, in ``RECIPE_FIELDS`` order."""
        return {k: getattr(self, k) for k in RECIPE_FIELDS if getattr(self, k) is not None}

    def check(self, recipe: dict[str, Any]) -> tuple[list[str], list[str]]:
        """(differences, unknown) between a user's ``recipe`` and this card.

        ``differences``: one ``"weight_decay 0.0 vs 0.1"`` per field where both are known
        and disagree (yours first, the law's second; numbers agree within 10%, betas on
        the 1 - beta scale, text case-insensitively). ``unknown``: fields of ``recipe``
        this card does not know. Raises :class:`InputError` for a key that is not a
        recipe field or a value that cannot be read as that field's type.
        """
        if not isinstance(recipe, dict):
            raise InputError(f"recipe must be a dict of recipe fields, got {type(recipe).__name__}")
        differences, unknown = [], []
        for key, raw in recipe.items():
            if key not in RECIPE_FIELDS:
                raise InputError(f"unknown recipe key {key!r}; valid keys: {', '.join(RECIPE_FIELDS)}")
            if raw is None:
                continue
            mine = _coerce(key, raw, "recipe")
            theirs = getattr(self, key)
            if theirs is None:
                unknown.append(key)
            elif not _agree(key, mine, theirs):
                differences.append(f"{key} {_fmt(mine)} vs {_fmt(theirs)}")
        return differences, unknown

    def differences(self, recipe: dict[str, Any]) -> list[str]:
        """Each way ``recipe`` differs from the card, as text: ``"weight_decay 0.0 vs 0.1"``
        (yours vs the law's), then ``"tokenizer: unknown for this law"`` for each field the
        card does not know (not a difference: it cannot be checked). See :meth:`check`."""
        differences, unknown = self.check(recipe)
        return differences + [f"{k}: unknown for this law" for k in unknown]

    def describe(self) -> str:
        """A few lines for summaries: the known recipe, the domain, what varied."""
        known = self.known
        lines = []
        if known:
            lines.append("recipe: " + ", ".join(f"{k} {_fmt(v)}" for k, v in known.items()))
        else:
            lines.append("recipe: unknown")
        domain = [
            f"{label} [{r[0]:.3g}, {r[1]:.3g}]"
            for label, r in (("N", self.n_range), ("D", self.d_range), ("batch tokens", self.batch_range))
            if r is not None
        ]
        if domain:
            lines.append("domain: " + ", ".join(domain))
        if self.varied:
            lines.append("several values across the runs (not recorded): " + ", ".join(self.varied))
        missing = [k for k in RECIPE_FIELDS if k not in known and k not in self.varied]
        if missing and known:
            lines.append("unknown: " + ", ".join(missing))
        lines += [f"card note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {k: getattr(self, k) for k in RECIPE_FIELDS}
        d.update({k: None if getattr(self, k) is None else list(getattr(self, k)) for k in DOMAIN_FIELDS})
        d.update(varied=list(self.varied), notes=list(self.notes))
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LawCard:
        if not isinstance(d, dict):
            raise InputError(f"a law card must be a JSON object, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(str(k) for k in set(d) - names)
        if unknown:
            raise InputError(f"law card: unknown key(s) {unknown}; valid keys: {', '.join(sorted(names))}")
        values = dict(d)
        for key in ("varied", "notes"):
            items = values.get(key) or ()
            if not isinstance(items, (list, tuple)) or not all(isinstance(v, str) for v in items):
                raise InputError(f"law card: {key} must be a list of text, got {show(items)}")
            values[key] = tuple(items)
        return cls(**values)

    def replace(self, **changes: Any) -> LawCard:
        return dataclasses.replace(self, **changes)


def card_from_runs(runs: pd.DataFrame, optima: pd.DataFrame | None = None) -> LawCard:
    """The card of a law fitted on ``runs``: every ``TABLE_FIELDS`` column holding one
    value across the runs (missing values count as a value of their own), the rest
    unknown or, when a column holds several values, listed in ``varied``. Domain: N and D
    of ``optima`` (the fitted cells; else of the runs), batch sizes of the runs."""
    values: dict[str, Any] = {}
    varied = []
    for name in TABLE_FIELDS:
        if name not in runs.columns:
            continue
        column = runs[name]
        distinct = column.dropna().unique()
        if len(distinct) == 1 and not column.isna().any():
            value = distinct[0]
            values[name] = value.item() if hasattr(value, "item") else value
        elif len(distinct) >= 1:
            varied.append(name)
    if {"warmup", "tokens"} <= set(runs.columns) and runs["warmup"].notna().all():
        fractions = runs["warmup"].to_numpy(float) / runs["tokens"].to_numpy(float)
        if len(fractions) and np.ptp(fractions) <= 0.01 * max(fractions.max(), 1e-12):
            values["warmup_fraction"] = round(float(np.median(fractions)), 6)
    cells = optima if optima is not None and len(optima) else runs
    return LawCard(
        **values,
        n_range=(float(cells["params"].min()), float(cells["params"].max())),
        d_range=(float(cells["tokens"].min()), float(cells["tokens"].max())),
        batch_range=(float(runs["batch_size"].min()), float(runs["batch_size"].max())),
        varied=tuple(varied),
    )


def parse_recipe(items: list[str] | None) -> dict[str, str]:
    """``["weight_decay=0.1", "schedule=cosine"]`` (the CLI's ``--recipe``) as a dict;
    values stay text (:meth:`LawCard.check` reads them by field type)."""
    recipe: dict[str, str] = {}
    if items is not None and (isinstance(items, str) or not isinstance(items, (list, tuple))):
        raise InputError(f"recipe items must be a list of KEY=VALUE strings, got {show(items)}")
    for item in items or ():
        if not isinstance(item, str):
            raise InputError(f"--recipe {show(item)}: expected KEY=VALUE text, e.g. weight_decay=0.1")
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise InputError(f"--recipe {item!r}: expected KEY=VALUE, e.g. weight_decay=0.1")
        if key not in RECIPE_FIELDS:
            raise InputError(f"unknown recipe key {key!r}; valid keys: {', '.join(RECIPE_FIELDS)}")
        recipe[key] = value
    return recipe


def _coerce(name: str, value: Any, where: str) -> Any:
    """``value`` as field ``name``'s type; text from the command line is parsed."""
    try:
        if name in BOOL_FIELDS:
            if isinstance(value, str):
                text = value.strip().lower()
                if text in _TRUE + _FALSE:
                    return text in _TRUE
                raise ValueError(value)
            if isinstance(value, (bool, np.bool_, int, np.integer)) and value in (0, 1):
                return bool(value)
            raise ValueError(value)
        if name in STR_FIELDS:
            if not isinstance(value, str) or not value.strip():
                raise ValueError(value)
            return value.strip()
        if isinstance(value, (bool, np.bool_)):
            raise ValueError(value)
        x = float(value.strip() if isinstance(value, str) else value)
        least = 1 if name in ("seq_len", "base_width", "base_depth") else 0
        if not math.isfinite(x) or x < least or x > FIELD_MAX.get(name, math.inf):
            raise ValueError(value)
        if name in INT_FIELDS:
            if x != int(x):
                raise ValueError(value)
            return int(x)
        return x
    except (TypeError, ValueError, OverflowError):
        kind = (
            "true or false"
            if name in BOOL_FIELDS
            else "a name"
            if name in STR_FIELDS
            else "a positive integer"
            if name in ("seq_len", "base_width", "base_depth")
            else "a non-negative integer"
            if name in INT_FIELDS
            else "a non-negative number"
        )
        if name in FIELD_MAX:
            kind += f" up to {FIELD_MAX[name]:g}"
        raise InputError(f"{where} {name} must be {kind}, got {show(value)}") from None


def _range(name: str, value: Any) -> tuple[float, float]:
    """A domain field as (min, max): two positive finite numbers, min <= max."""
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__len__") or len(value) != 2:
        raise InputError(f"LawCard.{name} must be (min, max), got {show(value)}")
    low, high = (number(v, f"LawCard.{name}", low=0, low_open=True) for v in value)
    if low > high:
        raise InputError(f"LawCard.{name} must be (min, max) with min <= max, got {show(value)}")
    return low, high


def _agree(name: str, mine: Any, theirs: Any) -> bool:
    if name in STR_FIELDS:
        return str(mine).lower() == str(theirs).lower()
    if name in BOOL_FIELDS:
        return bool(mine) == bool(theirs)
    a, b = float(mine), float(theirs)
    if name in BETAS:
        a, b = 1.0 - a, 1.0 - b
    return abs(a - b) <= RELATIVE_TOLERANCE * max(abs(a), abs(b))


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return f"{value:d}"
    return f"{value:g}"
