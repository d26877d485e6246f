"""``RunSpec``: everything that defines one proxy run, with no torch import, so sweeps
can be planned, hashed and stored on any machine.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from scalelaw.exceptions import InputError
from scalelaw.proxy.data import CORPUS
from scalelaw.proxy.parametrization import NAMES
from scalelaw.record import run_id_of

SCHEDULES = ("wsd", "cosine", "linear")


WARMUP_FRACTION = 0.05  # default warmup, as a fraction of the run's tokens


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines one proxy run. Sizes in tokens; lr is the base peak lr.

    ``warmup``: warmup length in tokens (default 5% of ``tokens``, at least one step).
    ``decay_fraction``: WSD's final linear decay, as a fraction of training.
    ``micro_batch_size``: tokens per forward pass (None: up to 16 sequences); the
    optimizer step always sees ``batch_size`` tokens.
    """

    width: int
    depth: int
    lr: float
    batch_size: int
    tokens: int
    seq_len: int = 128
    parametrization: str = "mup"
    base_width: int = 128
    base_depth: int = 2
    head_dim: int = 32
    init_std: float = 0.02
    schedule: str = "wsd"
    warmup: int | None = None
    decay_fraction: float = 0.2
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    betas: tuple[float, float] = (0.9, 0.95)
    seed: int = 0
    dataset: str = CORPUS
    val_tokens: int = 65536
    micro_batch_size: int | None = None
    device: str = "auto"
    compile: bool = False

    def __post_init__(self) -> None:
        def fail(field: str, why: str) -> None:
            raise InputError(f"RunSpec.{field} = {getattr(self, field)!r}: {why}")

        for field in (
            "width",
            "depth",
            "batch_size",
            "tokens",
            "seq_len",
            "head_dim",
            "val_tokens",
        ):
            if not isinstance(getattr(self, field), (int, np.integer)) or getattr(self, field) <= 0:
                fail(field, "must be a positive integer")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            fail("lr", "must be a positive finite number")
        if self.parametrization not in NAMES:
            fail("parametrization", f"must be one of {NAMES}")
        if self.schedule not in SCHEDULES:
            fail("schedule", f"must be one of {SCHEDULES}")
        if self.batch_size % self.seq_len:
            fail("batch_size", f"must be a multiple of seq_len ({self.seq_len}) tokens")
        if self.tokens < self.batch_size:
            fail("tokens", f"must be at least one batch ({self.batch_size} tokens)")
        if self.micro_batch_size is not None and (
            self.micro_batch_size % self.seq_len or self.batch_size % self.micro_batch_size
        ):
            fail("micro_batch_size", "must be a multiple of seq_len that divides batch_size")
        if not 0 <= self.decay_fraction <= 1:
            fail("decay_fraction", "must be in [0, 1]")
        if self.warmup is not None and not 0 <= self.warmup <= self.tokens:
            fail("warmup", "must be between 0 and tokens")
        if self.weight_decay < 0 or self.grad_clip < 0:
            fail("weight_decay" if self.weight_decay < 0 else "grad_clip", "must be >= 0")

    @property
    def steps(self) -> int:
        return self.tokens // self.batch_size

    @property
    def warmup_tokens(self) -> int:
        """Warmup in tokens as specified (default 5% of ``tokens``): the recipe value."""
        return self.warmup if self.warmup is not None else round(WARMUP_FRACTION * self.tokens)

    @property
    def warmup_steps(self) -> int:
        warmup = self.warmup_tokens
        return max(1, round(warmup / self.batch_size)) if warmup > 0 else 0

    @property
    def run_id(self) -> str:
        """Stable hash of every field: a resumed sweep recognises finished runs by it."""
        return run_id_of(dataclasses.asdict(self))

    def model_config(self, vocab_size: int):
        """The ``scalelaw.proxy.model.ModelConfig`` of this run (imports torch)."""
        from scalelaw.proxy.model import ModelConfig

        return ModelConfig(
            width=self.width,
            depth=self.depth,
            head_dim=self.head_dim,
            vocab_size=vocab_size,
            seq_len=self.seq_len,
            parametrization=self.parametrization,
            base_width=self.base_width,
            base_depth=self.base_depth,
            init_std=self.init_std,
        )
