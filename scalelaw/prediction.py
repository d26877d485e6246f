"""The prediction stage's result: :class:`Prediction`, and how a law builds one.

:func:`build_prediction` evaluates a fitted or published law (any object with the
:class:`scalelaw.laws.HyperparameterLaw` attributes) at one target and says how far
outside the fitted range the query lies, whether each interval determines anything and
where the user's recipe differs from the law's card. The law objects call it
(``law.predict``), and :func:`scalelaw.predict` calls it after resolving a preset or
file; this module imports no law module at run time, so the stages depend one way.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd
from scipy import stats

from scalelaw import validate
from scalelaw.exceptions import InputError, show
from scalelaw.lawcard import LawCard
from scalelaw.results import check_alpha
from scalelaw.target import TargetShape, group_settings, warmup_for, weight_decay_for

if TYPE_CHECKING:
    from scalelaw.laws import HyperparameterLaw

EXTRAPOLATION_WARN = 10.0  # warn when N or D lies more than 10x outside the fitted range
UNDETERMINED_SPAN = 100.0  # warn when an interval spans more than 100x
DEFAULT_LAW = "default"
PRESET_NAMES = ("steplaw", "deepseek")  # scalelaw.predict.PRESETS builds them


def _json_number(x: float | None) -> float | None:
    """A float for JSON: ``None`` (null) for NaN and +-inf, which JSON cannot hold."""
    return None if x is None or not math.isfinite(x) else float(x)


def _json_interval(iv: tuple[float, float] | None) -> list[float | None] | None:
    return None if iv is None else [_json_number(iv[0]), _json_number(iv[1])]


def _from_json(x: float | None, missing: float) -> float:
    return missing if x is None else float(x)


def _span(iv: tuple[float, float] | None) -> float:
    """high / low of an interval; inf when it is open or touches 0, nan when absent."""
    if iv is None:
        return math.nan
    return math.inf if iv[0] <= 0 or not math.isfinite(iv[1]) else iv[1] / iv[0]


@dataclass(frozen=True)
class Prediction:
    """Optimal hyperparameters for one target run.

    ``lr``: peak learning rate. ``batch_size``: tokens per optimizer step;
    ``batch_size_seqs``: the same in sequences of ``seq_len`` tokens, rounded to an
    integer >= 1. ``loss``: predicted final loss at the optimum (``None`` when the law
    has no loss law). Intervals are (low, high) at ``confidence`` for one new run, or
    ``None`` when the law publishes no uncertainty. ``extrapolation``: factor by which
    N and D lie outside the fitted range (1.0 = inside). ``law``: which law answered.
    ``shape``: the target's :class:`scalelaw.target.TargetShape` when one was given, and
    ``groups`` the per-parameter-group values for it (:func:`scalelaw.target.group_settings`:
    ``group``, ``holds``, ``lr``, ``init_std``, ``multiplier``, ``eps``, ``weight_decay``).
    ``weight_decay`` (AdamW λ for the base lr, lr-coupled) and ``warmup_tokens``: the
    recipe scaled to the target (:func:`scalelaw.target.weight_decay_for`,
    :func:`scalelaw.target.warmup_for`; None when the law's card does not know the
    proxies'), and ``rules`` says in words how each was set.

    ``lr_bound`` / ``batch_size_bound``: ``None``, or ``"upper"`` when the law was
    fitted to optima censored on the low edge of the grids (then the interval is
    ``(0.0, high)`` and the optimum is at most ``high``), ``"lower"`` for the high edge
    (interval ``(low, inf)``). ``lr_determined`` / ``batch_size_determined`` /
    ``loss_determined``: ``False`` when the number is not a usable point estimate: a
    one-sided law, a degenerate fit (interval ``(0.0, inf)``) or an interval spanning
    more than ``UNDETERMINED_SPAN`` (100x). The central values stay in the object and
    its JSON; :meth:`table` and the report lead with "not determined" or the bound.
    """

    model_size: float
    tokens: float
    seq_len: int
    lr: float
    batch_size: float
    batch_size_seqs: int
    loss: float | None
    lr_interval: tuple[float, float] | None
    batch_size_interval: tuple[float, float] | None
    loss_interval: tuple[float, float] | None
    confidence: float
    law: str
    extrapolation: dict[str, float]
    warnings: tuple[str, ...]
    lr_bound: str | None = None
    batch_size_bound: str | None = None
    lr_determined: bool = True
    batch_size_determined: bool = True
    loss_determined: bool = True
    fitted_law: HyperparameterLaw | None = field(default=None, compare=False, repr=False)
    shape: TargetShape | None = None
    groups: pd.DataFrame | None = field(default=None, compare=False, repr=False)
    weight_decay: float | None = None
    warmup_tokens: float | None = None
    rules: tuple[str, ...] = ()

    @property
    def alpha(self) -> float:
        """1 - confidence: the intervals are at (1 - alpha)."""
        return round(1.0 - self.confidence, 12)  # 0.2, not 0.19999999999999996

    def summary_frame(self, alpha: float | None = None) -> pd.DataFrame:
        """One row per quantity (lr, batch_size in tokens, loss): ``estimate``, ``ci_lower``,
        ``ci_upper`` at (1 - alpha) (default: this prediction's own level), ``bound`` and
        ``determined``, as statsmodels' ``get_prediction(...).summary_frame(alpha)``."""
        if alpha is not None and abs(check_alpha(alpha) - self.alpha) > 1e-12:
            if self.fitted_law is None:
                raise InputError(
                    "this Prediction carries no law (loaded from JSON?): predict again with alpha"
                )
            again = build_prediction(
                self.fitted_law, self.model_size, self.tokens, seq_len=self.seq_len, alpha=alpha
            )
            return again.summary_frame()
        rows = []
        for quantity in ("lr", "batch_size", "loss"):
            value, interval, bound, determined, _ = self._parts(quantity)
            low, high = interval if interval is not None else (math.nan, math.nan)
            value = math.nan if value is None else value
            rows.append((quantity, value, low, high, bound, determined))
        columns = ["quantity", "estimate", "ci_lower", "ci_upper", "bound", "determined"]
        return pd.DataFrame(rows, columns=columns).set_index("quantity")

    @property
    def compute(self) -> float:
        """Training compute C = 6 N D in FLOPs (non-embedding, no attention term)."""
        return 6.0 * self.model_size * self.tokens

    def to_dict(self) -> dict:
        """Plain JSON-ready values; open interval ends (inf) and NaN become ``None``."""
        return {
            "model_size": self.model_size,
            "tokens": self.tokens,
            "seq_len": self.seq_len,
            "compute_flops": self.compute,
            "lr": _json_number(self.lr),
            "lr_interval": _json_interval(self.lr_interval),
            "lr_bound": self.lr_bound,
            "lr_determined": self.lr_determined,
            "batch_size": _json_number(self.batch_size),
            "batch_size_tokens": _json_number(self.batch_size),  # deprecated key (0.2): read batch_size
            "batch_size_seqs": self.batch_size_seqs,
            "batch_size_interval": _json_interval(self.batch_size_interval),
            "batch_size_bound": self.batch_size_bound,
            "batch_size_determined": self.batch_size_determined,
            "loss": _json_number(self.loss),
            "loss_interval": _json_interval(self.loss_interval),
            "loss_determined": self.loss_determined,
            "confidence": self.confidence,
            "law": self.law,
            "extrapolation": {k: _json_number(v) for k, v in self.extrapolation.items()},
            "warnings": list(self.warnings),
            "weight_decay": _json_number(self.weight_decay),
            "warmup_tokens": _json_number(self.warmup_tokens),
            "rules": list(self.rules),
            "shape": None if self.shape is None else dataclasses.asdict(self.shape),
            "groups": None if self.groups is None else _group_records(self.groups),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Prediction:
        """The Prediction :meth:`to_dict` wrote (JSON nulls back to NaN, open ends to inf).

        It carries no law, so :meth:`summary_frame` answers only at its own level.
        """
        try:
            interval_of = {}
            for q in ("lr", "batch_size", "loss"):
                iv = d[f"{q}_interval"]
                interval_of[q] = (
                    None if iv is None else (_from_json(iv[0], math.nan), _from_json(iv[1], math.inf))
                )
            batch = d["batch_size"] if "batch_size" in d else d["batch_size_tokens"]
            return cls(
                model_size=float(d["model_size"]),
                tokens=float(d["tokens"]),
                seq_len=int(d["seq_len"]),
                lr=_from_json(d["lr"], math.nan),
                batch_size=_from_json(batch, math.nan),
                batch_size_seqs=int(d["batch_size_seqs"]),
                loss=d["loss"],
                lr_interval=interval_of["lr"],
                batch_size_interval=interval_of["batch_size"],
                loss_interval=interval_of["loss"],
                confidence=float(d["confidence"]),
                law=str(d["law"]),
                extrapolation={k: _from_json(v, math.inf) for k, v in d["extrapolation"].items()},
                warnings=tuple(d["warnings"]),
                lr_bound=d["lr_bound"],
                batch_size_bound=d["batch_size_bound"],
                lr_determined=bool(d["lr_determined"]),
                batch_size_determined=bool(d["batch_size_determined"]),
                loss_determined=bool(d["loss_determined"]),
                weight_decay=d.get("weight_decay"),
                warmup_tokens=d.get("warmup_tokens"),
                rules=tuple(d.get("rules", ())),
                shape=None if d.get("shape") is None else TargetShape(**d["shape"]),
                groups=None if d.get("groups") is None else _groups_from_records(d["groups"]),
            )
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise InputError(f"not a prediction written by Prediction.to_dict: {err!r}") from None

    def _parts(self, quantity: str) -> tuple[float | None, tuple | None, str | None, bool, str]:
        if quantity == "lr":
            return self.lr, self.lr_interval, self.lr_bound, self.lr_determined, ".3g"
        if quantity == "batch_size":
            return (
                self.batch_size,
                self.batch_size_interval,
                self.batch_size_bound,
                self.batch_size_determined,
                ".3g",
            )
        if quantity == "loss":
            return self.loss, self.loss_interval, None, self.loss_determined, ".4f"
        raise InputError(f"quantity must be 'lr', 'batch_size' or 'loss', got {quantity!r}")

    def display(self, quantity: str, scale: float = 1.0) -> str:
        """What a reader should see first for ``quantity`` ("lr", "batch_size", "loss").

        The value (divided by ``scale``, e.g. ``seq_len`` for sequences), or ``"≤ high"``
        / ``"≥ low"`` for a one-sided law, or ``"not determined"``; ``"n/a"`` when there
        is no value.
        """
        value, iv, bound, determined, fmt = self._parts(quantity)
        if value is None:
            return "n/a"
        if bound == "upper" and iv is not None:
            return f"≤ {iv[1] / scale:{fmt}}"
        if bound == "lower" and iv is not None:
            return f"≥ {iv[0] / scale:{fmt}}"
        if not determined:
            return "not determined"
        return f"{value / scale:{fmt}}"

    def display_seqs(self) -> str:
        """The batch size in sequences of ``seq_len`` as a reader should see it: the
        integer, "≤ k" / "≥ k" for a one-sided law (below one sequence: "≤ 0.093"), or
        "not determined"."""
        iv, bound = self.batch_size_interval, self.batch_size_bound
        if bound is not None and iv is not None:
            end = (iv[1] if bound == "upper" else iv[0]) / self.seq_len
            sign = "≤" if bound == "upper" else "≥"
            if end < 1:
                return f"{sign} {end:.2g}"
            return f"{sign} {math.floor(end) if bound == 'upper' else math.ceil(end):d}"
        return f"{self.batch_size_seqs:d}" if self.batch_size_determined else "not determined"

    def display_interval(self, quantity: str) -> str:
        """The interval of ``quantity`` as text: ``[low, high]``, with the span when it
        exceeds 100x, ``"one-sided (upper bound)"`` for a bound, or ``"n/a"``."""
        _, iv, bound, _, fmt = self._parts(quantity)
        if iv is None:
            return "n/a"
        if bound is not None:
            return f"one-sided ({bound} bound)"
        span = _span(iv)
        if not math.isfinite(span):
            return "unbounded"
        text = f"[{iv[0]:{fmt}}, {iv[1]:{fmt}}]"
        return text + (f", spans {span:.3g}x" if span > UNDETERMINED_SPAN else "")

    def table(self) -> str:
        """A readable multi-line table. One-sided quantities show their bound ("≤ 128"),
        undetermined ones lead with "not determined" (the number stays in the object)."""
        pct = f"{100 * self.confidence:g}%"

        def row(label: str, quantity: str) -> str:
            value, iv, bound, determined, fmt = self._parts(quantity)
            text = f"  {label:<22}{self.display(quantity):>14}"
            if value is None:
                return text
            if bound is not None:
                return text + f"   {pct} one-sided: {bound} bound (optima on the grid edge)"
            if iv is not None:
                text += f"   {pct} {self.display_interval(quantity)}"
            if not determined and math.isfinite(_span(iv)):
                text += f"   (law's central value {value:{fmt}})"
            return text

        seqs = self.display_seqs()
        lines = [
            f"scalelaw prediction for N = {self.model_size:.3g} non-embedding params, "
            f"D = {self.tokens:.3g} tokens (C = 6ND = {self.compute:.3g} FLOPs)",
            f"  law: {self.law}",
            row("peak learning rate", "lr"),
            row("batch size (tokens)", "batch_size"),
            f"  {'batch size (seqs)':<22}{seqs:>14}   of {self.seq_len} tokens",
            row("loss", "loss"),
            f"  extrapolation: N x{self.extrapolation['N']:.3g}, D x{self.extrapolation['D']:.3g} "
            "beyond the fitted range"
            if self.extrapolation
            else "",
        ]
        lines += [f"  {rule}" for rule in self.rules]
        if self.groups is not None:
            lines += _group_lines(self.groups)
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(line for line in lines if line)

    def __str__(self) -> str:
        return self.table()

    def to_config(self, kind: str, **kwargs) -> str:
        """This prediction as a training config: ``kind`` "torchtitan", "hf", "nanogpt" or
        "megatron"; ``gpus=``, ``micro_batch=``, ``tokens=`` as
        :func:`scalelaw.export.to_config`, which returns a ``ConfigText`` (a ``str``
        with ``.warnings``)."""
        from scalelaw.export import to_config

        return to_config(self, kind, **kwargs)


def _group_records(groups: pd.DataFrame) -> dict:
    return {
        "attrs": dict(groups.attrs),
        "rows": [
            {k: _json_number(v) if isinstance(v, float) else v for k, v in r.items()}
            for r in groups.to_dict("records")
        ],
    }


def _groups_from_records(d: dict) -> pd.DataFrame:
    table = pd.DataFrame(d["rows"]).fillna({"weight_decay": math.nan})
    table.attrs.update(d.get("attrs", {}))
    return table


def _group_lines(groups: pd.DataFrame) -> list[str]:
    a = groups.attrs
    base = f", base {a['base_width']} x {a['base_depth']}" if a.get("law_parametrization") != "sp" else ""
    lines = [
        f"  per group ({a.get('parametrization')} target from a {a.get('law_parametrization')} law{base}; "
        f"attention q.k x {a.get('attention_scale', math.nan):.4g}):",
        f"    {'group':<10}{'lr':>11}{'init std':>11}{'multiplier':>12}{'Adam eps':>11}{'decay':>9}",
    ]
    for r in groups.itertuples():
        init = "?" if math.isnan(r.init_std) else format(r.init_std, ".4g")
        decay = "?" if math.isnan(r.weight_decay) else format(r.weight_decay, ".3g")
        lines.append(f"    {r.group:<10}{r.lr:>11.4g}{init:>11}{r.multiplier:>12.4g}{r.eps:>11.3g}{decay:>9}")
    return lines


def _distance(value: float, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return max(value / high, low / value, 1.0)


def build_prediction(
    law: HyperparameterLaw,
    model_size: float | None,
    tokens: float,
    *,
    seq_len: int = 2048,
    alpha: float = 0.2,
    recipe: dict | None = None,
    warnings: tuple[str, ...] = (),
    shape: TargetShape | None = None,
) -> Prediction:
    """``law`` evaluated at (N = ``model_size``, D = ``tokens``); see :func:`scalelaw.predict`.

    ``warnings``: said first (e.g. that the law is the default one). ``shape``: the
    target's shape; adds the per-group values (:func:`scalelaw.target.group_settings`).
    """
    alpha = check_alpha(alpha)
    confidence = 1.0 - alpha
    if not _is_law(law):
        raise InputError(f"law must be a HyperparameterLaw, got {type(law).__name__}")
    if shape is not None:
        if not isinstance(shape, TargetShape):
            raise InputError(f"shape must be a scalelaw.TargetShape, got {type(shape).__name__}")
        model_size = shape.model_size if model_size is None else model_size
        seq_len = shape.seq_len
    elif model_size is None:
        raise InputError("give model_size (non-embedding parameters) or shape=TargetShape(...) to derive it")
    n, d = validate.model_size(model_size), validate.tokens(tokens)
    seq_len = validate.seq_len(seq_len)
    if seq_len > d:
        raise InputError(
            f"seq_len {show(seq_len)} is longer than the whole run's tokens {show(tokens)}: "
            "not one sequence fits; check the units (seq_len in tokens per sequence, tokens in total)"
        )
    warnings = list(warnings)
    warnings += _recipe_warnings(law, recipe)

    lr = _answer(law.lr(n, d), "lr", law, n, d)
    batch = _answer(law.batch_size(n, d), "batch size", law, n, d)
    loss = _answer(law.loss.predict(n, d), "loss", law, n, d) if law.loss is not None else None
    if batch < seq_len / 2:
        warnings.append(
            f"the predicted batch ({batch:.3g} tokens) is under half a sequence of {seq_len} tokens: "
            f"batch_size_seqs rounds it up to 1 sequence ({seq_len / batch:.3g}x the law's batch); "
            "is seq_len right?"
        )
    intervals = [
        law.lr.reported_interval(n, d, alpha=alpha),
        law.batch_size.reported_interval(n, d, alpha=alpha),
        law.loss.interval(n, d, alpha=alpha) if law.loss is not None else None,
    ]

    extrapolation: dict[str, float] = {}
    if law.fit_range:
        extrapolation = {
            "N": _distance(n, law.fit_range["N"]),
            "D": _distance(d, law.fit_range["D"]),
        }
        for term, factor in extrapolation.items():
            if factor > EXTRAPOLATION_WARN:
                low, high = law.fit_range[term]
                warnings.append(
                    f"{term} lies {factor:.3g}x outside the range the law was fitted "
                    f"on ({low:.3g} to {high:.3g}); treat the numbers as rough"
                )
    else:
        warnings.append(
            f"the law {law.name!r} does not record the range it was fitted on: extrapolation distance unknown"
        )
    determined = {}
    for name, part, interval in (("lr", law.lr, intervals[0]), ("batch size", law.batch_size, intervals[1])):
        span = _span(interval)
        if part.bound is not None:
            side, end = ("at most", interval[1]) if part.bound == "upper" else ("at least", interval[0])
            unit = " tokens" if name == "batch size" else ""
            warnings.append(
                f"the {name} is only bounded: the optimum is {side} {end:.3g}{unit}; {part.caveat}"
            )
            determined[name] = False
        elif not part.determined:
            warnings.append(f"the {name} is not determined: {part.caveat}")
            determined[name] = False
        elif interval is not None and span > UNDETERMINED_SPAN:
            spans = "more than 1e300x" if not math.isfinite(span) or span > 1e300 else f"{span:.3g}x"
            warnings.append(
                f"the {name} is not determined at this target: its {confidence:.0%} interval spans "
                f"{spans}; sweep proxies closer to the target before trusting it"
            )
            determined[name] = False
        else:
            determined[name] = True
    loss_determined = not _span(intervals[2]) > UNDETERMINED_SPAN  # nan (no interval): True
    if intervals[0] is None:
        warnings.append(f"the law {law.name!r} publishes no uncertainty: no intervals")
    elif law.lr.recipe_sd > 0:
        z = float(stats.norm.ppf(1 - alpha / 2))
        warnings.append(
            f"a law of another lab's recipe: its intervals include the spread between recipes "
            f"(x/{math.exp(z * law.lr.recipe_sd):.2g} at {confidence:.0%}); calibrate it on a cell or two of "
            f"your own runs to narrow them: scalelaw fit RUNS --prior {_prior_name(law)}"
        )
    if law.loss is None:
        warnings.append(f"the law {law.name!r} has no loss law: no loss prediction")
    decay, decay_rule = weight_decay_for(law, lr, batch, d, model_size=n)
    warmup, warmup_rule = warmup_for(law.card, d)
    groups = None
    if shape is not None:
        # init is known for scalelaw's own proxies (their card records the base shape)
        ours = law.card is not None and law.card.base_width is not None
        groups = group_settings(
            shape, lr, card=law.card, weight_decay=decay, init_std=0.02 if ours else None, zero_init=ours
        )
        if abs(math.log(shape.model_size / n)) > math.log(1.1):
            warnings.append(
                f"model_size {n:.3g} differs from the shape's N = {shape.model_size:.3g} (width "
                f"{shape.width}, depth {shape.depth}, the proxies' architecture): the lr and batch size "
                f"are for {n:.3g}"
            )
    return Prediction(
        model_size=n,
        tokens=d,
        seq_len=int(seq_len),
        lr=lr,
        batch_size=batch,
        batch_size_seqs=max(1, round(batch / seq_len)),
        loss=loss,
        lr_interval=intervals[0],
        batch_size_interval=intervals[1],
        loss_interval=intervals[2],
        confidence=confidence,
        law=law.name,
        extrapolation=extrapolation,
        warnings=tuple(warnings),
        lr_bound=law.lr.bound,
        batch_size_bound=law.batch_size.bound,
        lr_determined=determined["lr"],
        batch_size_determined=determined["batch size"],
        loss_determined=loss_determined,
        fitted_law=law,
        shape=shape,
        groups=groups,
        weight_decay=decay,
        warmup_tokens=warmup,
        rules=(decay_rule, warmup_rule),
    )


def _is_law(law: object) -> bool:
    """Whether ``law`` has a HyperparameterLaw's parts (duck-typed: this module does not
    import the law classes at run time, so the stages depend one way)."""
    return all(hasattr(law, k) for k in ("lr", "batch_size", "loss", "fit_range", "card", "name"))


def _answer(value: float, what: str, law: HyperparameterLaw, n: float, d: float) -> float:
    """A law's value at (N, D), refused when it is not a positive finite number (the law's
    coefficients push it past the float range at this target): never a nan or inf answer."""
    if math.isfinite(value) and value > 0:
        return float(value)
    raise InputError(
        f"the law {law.name!r} gives a {what} of {value:.3g} at N = {n:.3g}, D = {d:.3g}: its "
        "coefficients put this target beyond the range of floating-point numbers; predict closer "
        "to the fitted range or check the law file"
    )


def _prior_name(law: HyperparameterLaw) -> str:
    """How the CLI's --prior names ``law``: a preset's name, else a law file."""
    if law.name in PRESET_NAMES or law.name == DEFAULT_LAW:
        return law.name
    return DEFAULT_LAW if law.name.startswith(DEFAULT_LAW + ":") else "LAW.json"


def _recipe_warnings(law: HyperparameterLaw, recipe: dict | None) -> list[str]:
    """The warnings comparing ``recipe`` with ``law.card`` (none when no recipe)."""
    if recipe is None:
        return []
    card = law.card if law.card is not None else LawCard()
    differences, unknown = card.check(recipe)  # raises InputError on a bad key or value
    warnings = [f"your recipe differs from the law's: {diff} (yours vs the law's)" for diff in differences]
    if unknown:
        what = "the law has no card" if law.card is None else "unknown for this law"
        warnings.append(f"your recipe's {', '.join(unknown)} cannot be checked: {what}")
    return warnings


# Recipe of the Step Law dense table, as far as this project can verify it: the Step Law
# README (seq_len: `bs` counts sequences of 2048 tokens, runs.STEPLAW_SEQ_LEN), its data
# table (`smooth loss` is the smoothed final training loss; N, D and bs * 2048 give the
# domain) and import_steplaw (standard parametrization). Optimizer, betas, eps, weight
# decay, schedule, warmup and clipping could not be checked against the paper here: None.
