"""Predict the optimal lr, batch size and loss of a target run; published presets.

``predict(model_size, tokens, law=...)`` evaluates a :class:`HyperparameterLaw` at
(N = non-embedding parameters, D = training tokens) and says how far outside the
fitted range the query lies. ``law`` may be a fitted law, a preset name
(``"steplaw"``, ``"deepseek"``, ``"default"``), a path to a law JSON file, or ``None``
(the project's default law, which the Prediction names).

Every preset carries a :class:`scalelaw.lawcard.LawCard`: the recipe its runs used, as
far as the source states it. ``predict(..., recipe={...})`` compares the user's recipe
with the law's card and warns once per difference.
"""

from __future__ import annotations

import dataclasses
import math
import os
from functools import cache
from importlib import resources
from pathlib import Path

from scalelaw.exceptions import InputError
from scalelaw.lawcard import LawCard
from scalelaw.laws import CROSS_RECIPE_SD, CROSS_RECIPE_SOURCE, HyperparameterLaw, PowerLaw, load_law
from scalelaw.prediction import (  # noqa: F401  (Prediction and _from_json: their old import path)
    DEFAULT_LAW,
    PRESET_NAMES,
    Prediction,
    _from_json,
    build_prediction,
)
from scalelaw.results import resolve_alpha
from scalelaw.target import TargetShape


def predict(
    model_size: float | None,
    tokens: float,
    *,
    law: HyperparameterLaw | str | os.PathLike | None = None,
    seq_len: int = 2048,
    alpha: float | None = None,
    confidence: float | None = None,
    recipe: dict | None = None,
    shape: TargetShape | None = None,
) -> Prediction:
    """Optimal lr, batch size (tokens and sequences) and loss for a run of N params, D tokens.

    Parameters
    ----------
    model_size : float or None
        Non-embedding parameters N of the target model.
    tokens : float
        Training tokens D of the target run.
    law : HyperparameterLaw, str or path, optional
        A fitted law, a preset name ("steplaw", "deepseek", "default") or a law JSON
        file; None uses the project's default law (with a warning saying so).
    seq_len : int
        Tokens per sequence, to express the batch size in sequences too.
    alpha : float, optional
        Intervals at (1 - alpha); default 0.2 (80%). ``confidence`` is the deprecated
        spelling of 1 - alpha.
    recipe : dict, optional
        Your run's recipe by :data:`scalelaw.lawcard.RECIPE_FIELDS` key, e.g.
        ``{"weight_decay": 0.0, "schedule": "cosine"}``; compared with the law's card
        (:meth:`LawCard.check`): one warning per difference, one naming the keys the card
        does not know. An unknown key or unreadable value raises :class:`InputError`.
    shape : TargetShape, optional
        The target model (:class:`scalelaw.target.TargetShape`): ``model_size`` may then
        be None (N from the shape), ``seq_len`` is the shape's, and the prediction adds
        ``groups``, the per-parameter-group lr, init std, multiplier, Adam ε and weight
        decay for that shape under the law's parametrization (a μP law's lr is its base
        shape's; an SP target of a μP law must say how it translates).

    Returns
    -------
    Prediction
        lr, batch_size (tokens), batch_size_seqs, loss, their intervals, bounds and
        determined flags, extrapolation factors and warnings; ``summary_frame(alpha)``.
        Intervals widen with distance from the fitted range; beyond 10x in N or D a
        warning says so, and an interval wider than 100x reads "not determined".
    """
    alpha = resolve_alpha(alpha, confidence, "predict")
    warnings = []  # the target's numbers are checked where the law is evaluated
    if law is None:
        law = get_law(DEFAULT_LAW)
        warnings.append(f"no law given: using the project's default law ({law.name})")
    elif not isinstance(law, HyperparameterLaw):
        law = get_law(law)
    return build_prediction(
        law,
        model_size,
        tokens,
        seq_len=seq_len,
        alpha=alpha,
        recipe=recipe,
        warnings=tuple(warnings),
        shape=shape,
    )


_STEPLAW_RECIPE = dict(
    seq_len=2048,
    loss_kind="smoothed_train",
    parametrization="sp",
    n_range=(2.1e8, 1.07e9),
    d_range=(4e9, 1e11),
    batch_range=(32768.0, 4194304.0),  # 16 .. 2048 sequences of 2048 tokens
)
_STEPLAW_NOTES = (
    "recipe from the Step Law README and dense table (github.com/step-law/steplaw); "
    "the paper's optimizer and schedule settings are not recorded here (unverified)",
)


def _steplaw_card() -> LawCard:
    return LawCard(**_STEPLAW_RECIPE, notes=(*_STEPLAW_NOTES, CROSS_RECIPE_SOURCE))


def _steplaw() -> HyperparameterLaw:
    # Li et al. 2025, "Predictable Scale: Part I -- Optimal Hyperparameter Scaling Law in
    # Large Language Model Pretraining" (Step Law), eqs. for lr* and B*; fitted on their
    # dense grid (N 2.1e8..1.07e9 non-embedding, D 4e9..1e11 tokens, ../shared/data/steplaw).
    return HyperparameterLaw(
        name="steplaw",
        source="Li et al. 2025, Step Law: lr = 1.79 N^-0.713 D^0.307, B = 0.58 D^0.571 tokens",
        lr=PowerLaw(
            "lr", "peak learning rate", math.log(1.79), {"N": -0.713, "D": 0.307}, recipe_sd=CROSS_RECIPE_SD
        ),
        batch_size=PowerLaw(
            "batch_size", "tokens per step", math.log(0.58), {"D": 0.571}, recipe_sd=CROSS_RECIPE_SD
        ),
        fit_range={"N": (2.1e8, 1.07e9), "D": (4e9, 1e11)},
        card=_steplaw_card(),
    )


def _deepseek() -> HyperparameterLaw:
    # Bi et al. 2024, "DeepSeek LLM" sec. 3.1: lr = 0.3118 C^-0.1250, B = 0.2920 C^0.3271
    # tokens. DeepSeek's C counts non-embedding FLOPs per token including attention
    # (C = M D); here C = 6 N D, so C^k = 6^k N^k D^k folds into the prefactor.
    c_lr, k_lr, c_b, k_b = 0.3118, -0.1250, 0.2920, 0.3271
    return HyperparameterLaw(
        name="deepseek",
        source="Bi et al. 2024, DeepSeek LLM: lr = 0.3118 C^-0.125, B = 0.292 C^0.3271 tokens, C = 6ND",
        lr=PowerLaw(
            "lr",
            "peak learning rate",
            math.log(c_lr) + k_lr * math.log(6),
            {"N": k_lr, "D": k_lr},
            recipe_sd=CROSS_RECIPE_SD,
        ),
        batch_size=PowerLaw(
            "batch_size",
            "tokens per step",
            math.log(c_b) + k_b * math.log(6),
            {"N": k_b, "D": k_b},
            recipe_sd=CROSS_RECIPE_SD,
        ),
        card=_deepseek_card(),
    )


def _deepseek_card() -> LawCard:
    # Bi et al. 2024 sec. 2.3 (hyperparameters): AdamW, beta1 0.9, beta2 0.95, weight decay
    # 0.1; multi-step schedule: peak after 2000 warmup steps, 31.6% of peak after 80% of
    # the tokens, 10% after 90%; gradient clipping 1.0. Sec. 2.1: a BBPE tokenizer. The
    # paper states these for its models; eps, sequence length of the scaling-law proxies,
    # the loss they minimised and whether decay is scaled by lr are not recorded: None.
    return LawCard(
        optimizer="adamw",
        beta1=0.9,
        beta2=0.95,
        weight_decay=0.1,
        schedule="multi-step",
        decay_floor=0.1,
        warmup_steps=2000,
        grad_clip=1.0,
        notes=(
            "recipe from Bi et al. 2024 (DeepSeek LLM, arXiv 2401.02954) sec. 2.3: "
            "lr x0.316 after 80% of tokens, x0.1 of peak after 90%",
            CROSS_RECIPE_SOURCE,
        ),
    )


PRESETS = {"steplaw": _steplaw, "deepseek": _deepseek}
assert tuple(PRESETS) == PRESET_NAMES


@cache
def _default_law() -> HyperparameterLaw:
    path = resources.files("scalelaw") / "presets" / "default.json"
    with resources.as_file(path) as p:
        law = load_law(p)
    if law.card is None:  # the shipped file predates cards: it is a fit of the Step Law table
        law = dataclasses.replace(law, card=_default_card(law))
    # used on someone else's recipe, its intervals carry the spread between recipes
    return dataclasses.replace(
        law,
        lr=dataclasses.replace(law.lr, recipe_sd=CROSS_RECIPE_SD),
        batch_size=dataclasses.replace(law.batch_size, recipe_sd=CROSS_RECIPE_SD),
        card=law.card.replace(notes=(*law.card.notes, CROSS_RECIPE_SOURCE)),
    )


def _default_card(law: HyperparameterLaw) -> LawCard:
    """The default law's card: the Step Law recipe, its domain from its fit_range."""
    card = _steplaw_card()
    if law.fit_range:
        card = card.replace(n_range=law.fit_range["N"], d_range=law.fit_range["D"])
    return card.replace(notes=("scalelaw's fit of the Step Law dense table; " + _STEPLAW_NOTES[0],))


def get_law(law: str | os.PathLike) -> HyperparameterLaw:
    """A preset by name (``steplaw``, ``deepseek``, ``default``) or a law JSON file by path."""
    if isinstance(law, str) and law in PRESETS:
        return PRESETS[law]()
    if law == DEFAULT_LAW:
        return _default_law()
    if isinstance(law, (str, os.PathLike)) and Path(law).suffix == ".json":
        return load_law(law)
    raise InputError(
        f"unknown law {law!r}: use a fitted law, a preset "
        f"({', '.join([*PRESETS, DEFAULT_LAW])}) or a path to a law .json file"
    )
