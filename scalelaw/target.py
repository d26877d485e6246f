"""The target model's shape, and the per-group optimizer values that go with a prediction.

A law fitted on μP proxies predicts the peak lr **of the base shape** (the shape the
μP multipliers are relative to): under μP the target's hidden matrices take lr η/m,
init σ/√m and a smaller Adam ε, its readout a logit multiplier α_out/m, where
m = width / base width (CompleteP adds 1/l on the residual branches and in ε, l = depth
/ base depth). :func:`group_settings` computes these with the same
:class:`scalelaw.proxy.parametrization.Parametrization` rules the proxies trained with
(plain Python, no torch), so at the base shape they are exactly the proxies' own
optimizer groups.

A standard-parametrization (SP) trainer has one global lr. A μP law does not say what
it should be: that is a translation, and :class:`TargetShape` asks for it to be named
(``translate="hidden"``: every group takes μP's hidden-matrix lr η/m at the target
width, the lr that bounds a wide model's stability) instead of guessing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from scalelaw import validate
from scalelaw.exceptions import InputError
from scalelaw.proxy.parametrization import NAMES, Parametrization
from scalelaw.shapes import flops_per_token, non_embedding_params

TRANSLATIONS = ("hidden",)  # how a μP law's lr becomes one SP lr (see the module docstring)
# The rows of group_settings: (row, Parametrization group, what it holds)
ROWS = (
    ("embedding", "embedding", "token embedding"),
    ("query", "hidden", "q projection"),
    ("attention", "hidden", "k, v, o projections"),
    ("mlp", "hidden", "MLP matrices"),
    ("readout", "readout", "output projection (untied)"),
    ("norms", "gain", "norm gains"),
)


@dataclass(frozen=True)
class TargetShape:
    """The model a user is about to train.

    ``width`` (d_model), ``depth`` (layers), ``head_dim``, ``seq_len`` (tokens per
    sequence), ``parametrization`` (``"sp"``, ``"mup"``, ``"completep"``),
    ``base_width`` / ``base_depth`` (μP's reference shape; default: the one the law's
    proxies used, from its card), ``vocab_size`` (for FLOPs; 0 leaves the readout out),
    ``translate`` (how a μP law's lr becomes an SP trainer's one lr; required for an SP
    target of a μP law). ``model_size`` and ``flops_per_token`` count the proxies'
    architecture (attention 4w², SwiGLU MLP 3·w·8w/3 per layer): a model with another
    MLP should pass its own ``model_size`` to ``predict``.
    """

    width: int
    depth: int
    head_dim: int = 128
    seq_len: int = 2048
    parametrization: str = "mup"
    base_width: int | None = None
    base_depth: int | None = None
    vocab_size: int = 0
    translate: str | None = None

    def __post_init__(self) -> None:
        for name in ("width", "depth", "head_dim", "seq_len", "base_width", "base_depth", "vocab_size"):
            value = getattr(self, name)
            if value is None and name in ("base_width", "base_depth"):
                continue
            least = 0 if name == "vocab_size" else 1  # vocab_size 0: the readout left out of FLOPs
            high = validate.MAX_TOKENS if name == "seq_len" else validate.MAX_COUNT
            object.__setattr__(self, name, validate.count(value, f"TargetShape.{name}", low=least, high=high))
        if not isinstance(self.parametrization, str) or self.parametrization not in NAMES:
            raise InputError(
                f"TargetShape.parametrization must be one of {NAMES}, got {self.parametrization!r}"
            )
        if self.width % self.head_dim:
            raise InputError(f"TargetShape: width {self.width} is not a multiple of head_dim {self.head_dim}")
        if self.model_size > validate.MAX_PARAMS:
            raise InputError(
                f"TargetShape width {self.width}, depth {self.depth} has N = {self.model_size:.3g} "
                f"non-embedding parameters, beyond scalelaw's bound of {validate.MAX_PARAMS:.3g} (a typo?)"
            )
        if self.translate is not None and self.translate not in TRANSLATIONS:
            raise InputError(
                f"TargetShape.translate must be one of {TRANSLATIONS} or None, got {self.translate!r}"
            )

    @property
    def model_size(self) -> int:
        """Non-embedding parameters N (the runs table's ``params``)."""
        return non_embedding_params(self.width, self.depth)

    @property
    def flops_per_token(self) -> float:
        """Training FLOPs per token: 6N plus attention and (with ``vocab_size``) readout."""
        return flops_per_token(self.width, self.depth, self.seq_len, self.vocab_size)


def _law_parametrization(card) -> tuple[str | None, int | None, int | None]:
    if card is None:
        return None, None, None
    return card.parametrization, card.base_width, card.base_depth


def resolve_base(shape: TargetShape, card) -> tuple[str, int, int]:
    """The parametrization the law's lr belongs to and its base shape, checked against
    the target's; raises :class:`InputError` where they cannot be reconciled."""
    law_param, law_width, law_depth = _law_parametrization(card)
    law_param = law_param or "sp"
    scaled = law_param in ("mup", "completep")
    if not scaled and shape.parametrization != "sp":
        known = card is not None and card.parametrization is not None
        raise InputError(
            f"the law was fitted on {'SP' if known else 'SP (or unrecorded)'} runs: its lr is a global lr "
            f"at the proxies' widths, not a {shape.parametrization} base-shape lr; fit a law on μP proxies "
            "to get μP per-group values, or give TargetShape(parametrization='sp')"
        )
    if scaled and shape.parametrization == "sp" and shape.translate is None:
        raise InputError(
            f"the law was fitted on {law_param} proxies: its lr is the lr of the base shape, which an SP "
            "trainer (one global lr) cannot use as is; say how it translates: "
            "TargetShape(..., translate='hidden') gives every group μP's hidden-matrix lr at the target width"
        )
    if not scaled:
        return law_param, shape.width, shape.depth
    if shape.parametrization not in ("sp", law_param):
        raise InputError(
            f"the law was fitted on {law_param} proxies; its lr does not carry over to a "
            f"{shape.parametrization} target (the depth rules differ): use parametrization={law_param!r}"
        )
    for name, law_value, given in (
        ("base_width", law_width, shape.base_width),
        ("base_depth", law_depth, shape.base_depth),
    ):
        if law_value is not None and given is not None and law_value != given:
            raise InputError(
                f"TargetShape.{name} = {given} but the law's proxies used {name} {law_value}: the law's lr "
                f"belongs to {name} {law_value}; leave {name} unset"
            )
    base_width = law_width or shape.base_width
    base_depth = law_depth or shape.base_depth
    if base_width is None or base_depth is None:
        raise InputError(
            "the law does not record its proxies' base shape (its runs table has no base_width/base_depth "
            "columns): give TargetShape(base_width=..., base_depth=...), the shape your proxies' μP is "
            "relative to"
        )
    return law_param, base_width, base_depth


def _init_std(rules: Parametrization, row: str, group: str, known: bool, zero_init: bool) -> float:
    """A row's initial std: norm gains start at 1, a zero-initialised query or readout at 0,
    the rest by the parametrization's rule (NaN when the proxies' σ is not known)."""
    if group == "gain":
        return 1.0
    if zero_init and row in ("query", "readout"):
        return 0.0
    return rules.init_std_of(group) if known else math.nan


def group_settings(
    shape: TargetShape,
    lr: float,
    *,
    card=None,
    weight_decay: float | None = None,
    init_std: float | None = 0.02,
    adam_eps: float = 1e-8,
    base_head_dim: int | None = None,
    zero_init: bool = True,
) -> pd.DataFrame:
    """Per parameter group of the target: the values to give the optimizer and model.

    ``lr``: the law's predicted peak lr (for a μP law, the base shape's). ``card``: the
    law's :class:`scalelaw.lawcard.LawCard` (parametrization, base shape, weight decay).
    ``init_std``, ``adam_eps``: the proxies' σ and ε at the base shape (RunSpec's
    defaults; ``init_std=None``: not known, NaN in the table); ``zero_init``: the
    readout and query start at zero, as the proxies do (TP5 §F). Returns one row per
    group (``group``: embedding, query, attention, mlp, readout, norms)
    with ``holds`` (which weights), ``lr`` (peak), ``init_std``, ``multiplier`` (forward
    multiplier on the group's output: embedding α_emb, readout logits, residual branch),
    ``eps`` (Adam ε), ``weight_decay`` (AdamW coefficient, lr-coupled as in PyTorch;
    NaN when the law's card does not know it), and in ``attrs``: ``attention_scale``
    (multiplier of q·k), ``parametrization``, ``base_width``, ``base_depth``.
    """
    lr = validate.positive(lr, "lr")
    if not isinstance(shape, TargetShape):
        raise InputError(f"shape must be a scalelaw.TargetShape, got {type(shape).__name__}")
    law_param, base_width, base_depth = resolve_base(shape, card)
    decay = weight_decay if weight_decay is not None else (card.weight_decay if card is not None else None)
    rules = Parametrization(
        name=law_param if shape.parametrization != "sp" else "sp",
        width=shape.width,
        depth=shape.depth,
        base_width=base_width,
        base_depth=base_depth,
        head_dim=shape.head_dim,
        base_head_dim=base_head_dim,
        init_std=1.0 if init_std is None else init_std,
        adam_eps=adam_eps,
    )
    global_lr = lr
    if shape.parametrization == "sp" and law_param != "sp":  # translate="hidden"
        global_lr = lr * Parametrization(
            name=law_param,
            width=shape.width,
            depth=shape.depth,
            base_width=base_width,
            base_depth=base_depth,
            head_dim=shape.head_dim,
        ).lr_multiplier("hidden")
    rows = []
    for row, group, holds in ROWS:
        multiplier = {
            "embedding": rules.embedding_multiplier,
            "readout": rules.readout_multiplier,
            "attention": rules.residual_multiplier,  # on the o projection's branch
            "mlp": rules.residual_multiplier,
        }.get(row, 1.0)
        rows.append(
            {
                "group": row,
                "holds": holds,
                "lr": global_lr * rules.lr_multiplier(group),
                "init_std": _init_std(rules, row, group, init_std is not None, zero_init),
                "multiplier": multiplier,
                "eps": rules.eps(),
                "weight_decay": (decay if decay is not None else math.nan) if rules.decays(group) else 0.0,
            }
        )
    table = pd.DataFrame(rows)
    table.attrs.update(
        attention_scale=rules.attention_scale,
        parametrization=shape.parametrization,
        law_parametrization=law_param,
        base_width=base_width,
        base_depth=base_depth,
    )
    return table


def weight_decay_for(
    law, lr: float, batch_size: float, tokens: float, model_size: float | None = None
) -> tuple[float | None, str]:
    """The AdamW weight decay λ for the target, and the rule that gave it, in words.

    Rule (Wang & Aitchison 2024, "How to set AdamW's weight decay as you scale model and
    dataset size", arXiv 2405.13698): AdamW's weights are an exponential moving average
    of the updates with timescale τ = 1 / (lr · λ) steps; keep τ the same fraction of
    training as the proxies had. The proxies' fraction is read at the law's largest cell
    (its optimal lr and batch size there); λ here is for the base lr, and each group
    decays by its own lr times λ, as PyTorch's AdamW does. A law whose card does not know
    the proxies' λ gets None. A law fitted to a sweep that varied λ carries the timescale
    itself as a power law in (N, D) (``law.timescale``, :mod:`scalelaw.timescale`): then,
    given ``model_size``, λ = 1 / (lr · fraction(N, D) · steps) (the rule above is the
    fallback).
    """
    timescale = getattr(law, "timescale", None)
    if timescale is not None and model_size is not None:
        with np.errstate(over="ignore", divide="ignore"):
            fraction = float(timescale(model_size, tokens))
            decay = _finite_ratio(1.0, lr * fraction * (tokens / batch_size))
        if decay is None:
            return None, (
                f"weight decay: the fitted timescale law ({timescale.formula()}) gives no usable λ at "
                f"N = {model_size:.3g}, D = {tokens:.3g} (fraction {fraction:.3g}); no rule applied"
            )
        return decay, (
            f"weight decay: λ = {decay:.3g} puts AdamW's timescale 1/(lr λ) at {fraction:.3g} of training, "
            f"the fitted timescale law ({timescale.formula()}; Wang & Aitchison 2024)"
        )
    card = law.card
    if card is None or card.weight_decay is None:
        return None, "weight decay: the law's card does not record the proxies' λ; no rule applied"
    if card.weight_decay == 0:
        return 0.0, "weight decay: the proxies trained without it (λ = 0)"
    optima = law.optima
    if optima is None or not len(optima) or "lr_opt" not in optima:
        return (
            card.weight_decay,
            f"weight decay: the proxies' λ = {card.weight_decay:g} as is (no cells to scale from)",
        )
    cell = optima.sort_values(["params", "tokens"]).iloc[-1]
    proxy_steps = float(cell["tokens"]) / float(cell["batch_size_opt"])
    steps = tokens / batch_size
    if card.weight_decay_scaled_by_lr is False:  # decoupled: the weights decay by λ a step, τ = 1/λ
        fraction = 1.0 / (card.weight_decay * proxy_steps)
        decay = _finite_ratio(1.0, fraction * steps)
        timescale = "1/λ (decay not scaled by lr)"
    else:  # PyTorch's AdamW: decay by lr · λ a step, τ = 1/(lr λ)
        fraction = 1.0 / (float(cell["lr_opt"]) * card.weight_decay * proxy_steps)
        decay = _finite_ratio(1.0, lr * fraction * steps)
        timescale = "1/(lr λ)"
    if decay is None:  # the largest cell's optimum is missing from the law's optima
        return card.weight_decay, (
            f"weight decay: the proxies' λ = {card.weight_decay:g} as is (the largest cell's optimum "
            "is not known, so the timescale cannot be scaled)"
        )
    return decay, (
        f"weight decay: λ = {decay:.3g} keeps AdamW's timescale {timescale} at {fraction:.3g} of training, "
        f"as at the proxies' largest cell (N {cell['params']:.3g}, λ {card.weight_decay:g}; "
        "Wang & Aitchison 2024)"
    )


def _finite_ratio(top: float, bottom: float) -> float | None:
    """top / bottom when that is a positive finite number, else None."""
    if not (math.isfinite(bottom) and bottom > 0):
        return None
    value = top / bottom
    return value if math.isfinite(value) and value > 0 else None


def warmup_for(card, tokens: float) -> tuple[float | None, str]:
    """Warmup tokens for the target and the rule, in words: the proxies' fraction of
    training (scalelaw sweeps warm up over a fixed fraction), else their token count."""
    if card is not None and card.warmup_fraction is not None:
        return card.warmup_fraction * tokens, (
            f"warmup: {card.warmup_fraction:.3g} of training tokens, the fraction every proxy used"
        )
    if card is not None and card.warmup is not None:
        return float(card.warmup), f"warmup: {card.warmup:.3g} tokens, the proxies' fixed warmup"
    return None, "warmup: the law's card does not record the proxies' warmup"
