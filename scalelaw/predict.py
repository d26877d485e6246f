"""Predict the optimal lr, batch size and loss of a target run; published presets.

``predict(model_size, tokens, law=...)`` evaluates a :class:`HyperparameterLaw` at
(N = non-embedding parameters, D = training tokens) and says how far outside the
fitted range the query lies. ``law`` may be a fitted law, a preset name
(``"steplaw"``, ``"deepseek"``, ``"default"``), a path to a law JSON file, or ``None``
(the project's default law, which the Prediction names).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from scalelaw.laws import HyperparameterLaw, PowerLaw, load_law

EXTRAPOLATION_WARN = 10.0  # warn when N or D lies more than 10x outside the fitted range
UNDETERMINED_SPAN = 100.0  # warn when an interval spans more than 100x
DEFAULT_LAW = "default"


@dataclass(frozen=True)
class Prediction:
    """Optimal hyperparameters for one target run.

    ``lr``: peak learning rate. ``batch_size``: tokens per optimizer step;
    ``batch_size_seqs``: the same in sequences of ``seq_len`` tokens, rounded to an
    integer >= 1. ``loss``: predicted final loss at the optimum (``None`` when the law
    has no loss law). Intervals are (low, high) at ``confidence`` for one new run, or
    ``None`` when the law publishes no uncertainty. ``extrapolation``: factor by which
    N and D lie outside the fitted range (1.0 = inside). ``law``: which law answered.
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

    @property
    def compute(self) -> float:
        """Training compute C = 6 N D in FLOPs (non-embedding, no attention term)."""
        return 6.0 * self.model_size * self.tokens

    def to_dict(self) -> dict:
        return {
            "model_size": self.model_size,
            "tokens": self.tokens,
            "seq_len": self.seq_len,
            "compute_flops": self.compute,
            "lr": self.lr,
            "lr_interval": self.lr_interval,
            "batch_size_tokens": self.batch_size,
            "batch_size_seqs": self.batch_size_seqs,
            "batch_size_interval": self.batch_size_interval,
            "loss": self.loss,
            "loss_interval": self.loss_interval,
            "confidence": self.confidence,
            "law": self.law,
            "extrapolation": self.extrapolation,
            "warnings": list(self.warnings),
        }

    def table(self) -> str:
        """A readable multi-line table."""
        pct = f"{100 * self.confidence:g}%"

        def row(label: str, value: float | None, interval, fmt: str) -> str:
            if value is None:
                return f"  {label:<22}{'n/a':>12}"
            text = f"  {label:<22}{value:>12{fmt}}"
            if interval is not None:
                text += f"   {pct} [{interval[0]:{fmt}}, {interval[1]:{fmt}}]"
            return text

        lines = [
            f"scalelaw prediction for N = {self.model_size:.3g} non-embedding params, "
            f"D = {self.tokens:.3g} tokens (C = 6ND = {self.compute:.3g} FLOPs)",
            f"  law: {self.law}",
            row("peak learning rate", self.lr, self.lr_interval, ".3g"),
            row("batch size (tokens)", self.batch_size, self.batch_size_interval, ".3g"),
            f"  {'batch size (seqs)':<22}{self.batch_size_seqs:>12d}   of {self.seq_len} tokens",
            row("loss", self.loss, self.loss_interval, ".4f"),
            f"  extrapolation: N x{self.extrapolation['N']:.3g}, D x{self.extrapolation['D']:.3g} "
            "beyond the fitted range"
            if self.extrapolation
            else "",
        ]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(line for line in lines if line)

    def __str__(self) -> str:
        return self.table()


def _distance(value: float, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return max(value / high, low / value, 1.0)


def predict(
    model_size: float,
    tokens: float,
    law: HyperparameterLaw | str | os.PathLike | None = None,
    seq_len: int = 2048,
    confidence: float = 0.8,
) -> Prediction:
    """Optimal lr, batch size (tokens and sequences) and loss for a run of N params, D tokens.

    Intervals widen with distance from the fitted range (the bootstrap spread of the
    exponents grows with log distance); beyond 10x in N or D a warning says so.
    """
    for label, value in (("model_size", model_size), ("tokens", tokens), ("seq_len", seq_len)):
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{label} must be a positive finite number, got {value!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    warnings = []
    if law is None:
        law = get_law(DEFAULT_LAW)
        warnings.append(f"no law given: using the project's default law ({law.name})")
    elif not isinstance(law, HyperparameterLaw):
        law = get_law(law)
    n, d = float(model_size), float(tokens)

    lr = law.lr(n, d)
    batch = law.batch_size(n, d)
    loss = law.loss.predict(n, d) if law.loss is not None else None
    intervals = [
        part.interval(n, d, confidence) if part is not None else None
        for part in (law.lr, law.batch_size, law.loss)
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
    for name, interval in (("lr", intervals[0]), ("batch size", intervals[1])):
        span = math.inf if interval is None or interval[0] <= 0 else interval[1] / interval[0]
        if interval is not None and span > UNDETERMINED_SPAN:
            spans = "more than 1e300x" if not math.isfinite(span) or span > 1e300 else f"{span:.3g}x"
            warnings.append(
                f"the {name} is not determined at this target: its {confidence:.0%} interval spans "
                f"{spans}; sweep proxies closer to the target before trusting it"
            )
    if intervals[0] is None:
        warnings.append(f"the law {law.name!r} publishes no uncertainty: no intervals")
    if law.loss is None:
        warnings.append(f"the law {law.name!r} has no loss law: no loss prediction")
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
    )


def _steplaw() -> HyperparameterLaw:
    # Li et al. 2025, "Predictable Scale: Part I -- Optimal Hyperparameter Scaling Law in
    # Large Language Model Pretraining" (Step Law), eqs. for lr* and B*; fitted on their
    # dense grid (N 2.1e8..1.07e9 non-embedding, D 4e9..1e11 tokens, ../shared/data/steplaw).
    return HyperparameterLaw(
        name="steplaw",
        source="Li et al. 2025, Step Law: lr = 1.79 N^-0.713 D^0.307, B = 0.58 D^0.571 tokens",
        lr=PowerLaw("lr", "peak learning rate", math.log(1.79), {"N": -0.713, "D": 0.307}),
        batch_size=PowerLaw("batch_size", "tokens per step", math.log(0.58), {"D": 0.571}),
        fit_range={"N": (2.1e8, 1.07e9), "D": (4e9, 1e11)},
    )


def _deepseek() -> HyperparameterLaw:
    # Bi et al. 2024, "DeepSeek LLM" sec. 3.1: lr = 0.3118 C^-0.1250, B = 0.2920 C^0.3271
    # tokens. DeepSeek's C counts non-embedding FLOPs per token including attention
    # (C = M D); here C = 6 N D, so C^k = 6^k N^k D^k folds into the prefactor.
    c_lr, k_lr, c_b, k_b = 0.3118, -0.1250, 0.2920, 0.3271
    return HyperparameterLaw(
        name="deepseek",
        source="Bi et al. 2024, DeepSeek LLM: lr = 0.3118 C^-0.125, B = 0.292 C^0.3271 tokens, C = 6ND",
        lr=PowerLaw("lr", "peak learning rate", math.log(c_lr) + k_lr * math.log(6), {"N": k_lr, "D": k_lr}),
        batch_size=PowerLaw(
            "batch_size", "tokens per step", math.log(c_b) + k_b * math.log(6), {"N": k_b, "D": k_b}
        ),
    )


PRESETS = {"steplaw": _steplaw, "deepseek": _deepseek}


@cache
def _default_law() -> HyperparameterLaw:
    path = resources.files("scalelaw") / "presets" / "default.json"
    with resources.as_file(path) as p:
        return load_law(p)


def get_law(law: str | os.PathLike) -> HyperparameterLaw:
    """A preset by name (``steplaw``, ``deepseek``, ``default``) or a law JSON file by path."""
    if isinstance(law, str) and law in PRESETS:
        return PRESETS[law]()
    if law == DEFAULT_LAW:
        return _default_law()
    if isinstance(law, (str, os.PathLike)) and Path(law).suffix == ".json":
        return load_law(law)
    raise ValueError(
        f"unknown law {law!r}: use a fitted law, a preset "
        f"({', '.join([*PRESETS, DEFAULT_LAW])}) or a path to a law .json file"
    )
