"""``RunSpec``: everything that defines one proxy run, with no torch import, so sweeps
can be planned, hashed and stored on any machine.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

import numpy as np

from scalelaw.exceptions import InputError
from scalelaw.proxy.data import CORPUS
from scalelaw.proxy.parametrization import GROUPS, NAMES, Parametrization
from scalelaw.record import run_id_of
from scalelaw.shapes import non_embedding_params

SCHEDULES = ("wsd", "cosine", "linear")
DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d{1,3})?")  # what the trainer's torch.device() accepts


WARMUP_FRACTION = 0.05  # default warmup, as a fraction of the run's tokens

# What a proxy run can be: sweeps are validated against these when parsed, so a run
# that cannot train is refused before any run starts.
LR_RANGE = (1e-8, 100.0)  # Adam peak lr; 100 is far past where any run diverges (tests force 30)
SEED_MAX = 2**32 - 1  # numpy's SeedSequence needs seeds >= 0; torch.manual_seed takes < 2**64
MAX_WIDTH = 16384  # wider than any model trained on one device
MAX_DEPTH = 1024
MAX_HEAD_DIM = 1024
MAX_SEQ_LEN = 16384  # attention is T^2 per head; the embedded corpus' validation split is ~197k tokens
MAX_BATCH = 2**24  # tokens per optimizer step; published LLM batches stay below ~16M tokens
MAX_TOKENS = 10**13  # training tokens of one run: frontier pre-training scale, beyond any proxy
MAX_PARAMS = 8e9  # non-embedding parameters: AdamW's fp32 weights, grads and moments (16 B each) fill 128 GB
INT_LIMITS = {
    "width": MAX_WIDTH,
    "depth": MAX_DEPTH,
    "batch_size": MAX_BATCH,
    "tokens": MAX_TOKENS,
    "seq_len": MAX_SEQ_LEN,
    "base_width": MAX_WIDTH,
    "base_depth": MAX_DEPTH,
    "head_dim": MAX_HEAD_DIM,
    "val_tokens": MAX_TOKENS,
}
LIMIT_WHY = {
    "width": "wider than a proxy model trains on one device",
    "depth": "deeper than a proxy model trains on one device",
    "batch_size": "published LLM batches stay below ~16M tokens per step",
    "tokens": "frontier pre-training scale, beyond any proxy run",
    "seq_len": "attention memory grows as seq_len^2",
    "base_width": "the μP base shape is a proxy width",
    "base_depth": "the μP base shape is a proxy depth",
    "head_dim": "attention heads are narrower than this",
    "val_tokens": "frontier pre-training scale",
    "params": "AdamW state in fp32 would not fit one device",
}


def is_int(value: object) -> bool:
    """A Python or numpy integer, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_real(value: object) -> bool:
    """A finite Python or numpy number, not a bool."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def max_lr_multiplier(parametrization: str, width: int, base_width: int) -> float:
    """The largest per-group Adam lr multiplier of a shape (μP hidden: base_width / width)."""
    rules = Parametrization(parametrization, width=width, base_width=base_width, head_dim=2)
    return max(rules.lr_multiplier(group) for group in GROUPS)


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

        for field, top in INT_LIMITS.items():
            value = getattr(self, field)
            if not is_int(value) or value <= 0:
                fail(field, "must be a positive integer")
            if value > top:
                fail(field, f"must be at most {top:,} ({LIMIT_WHY[field]})")
        if not (is_real(self.lr) and LR_RANGE[0] <= self.lr <= LR_RANGE[1]):
            fail("lr", f"must be a positive finite number in [{LR_RANGE[0]:g}, {LR_RANGE[1]:g}]")
        if not is_int(self.seed) or not 0 <= self.seed <= SEED_MAX:
            fail("seed", f"must be an integer in [0, {SEED_MAX}] (numpy and torch accept these)")
        if not isinstance(self.parametrization, str) or self.parametrization not in NAMES:
            fail("parametrization", f"must be one of {NAMES}")
        if not isinstance(self.schedule, str) or self.schedule not in SCHEDULES:
            fail("schedule", f"must be one of {SCHEDULES}")
        if self.head_dim % 2 or self.width % self.head_dim:
            fail("head_dim", f"must be even and divide width ({self.width}): heads are width / head_dim")
        if non_embedding_params(self.width, self.depth) > MAX_PARAMS:
            fail(
                "width",
                f"with depth {self.depth}: more than {MAX_PARAMS:.3g} parameters ({LIMIT_WHY['params']})",
            )
        if self.batch_size % self.seq_len:
            fail("batch_size", f"must be a multiple of seq_len ({self.seq_len}) tokens")
        if self.tokens < self.batch_size:
            fail("tokens", f"must be at least one batch ({self.batch_size} tokens)")
        if self.micro_batch_size is not None and (
            not is_int(self.micro_batch_size)
            or self.micro_batch_size <= 0
            or self.micro_batch_size % self.seq_len
            or self.batch_size % self.micro_batch_size
        ):
            fail("micro_batch_size", "must be a multiple of seq_len that divides batch_size")
        if not (is_real(self.decay_fraction) and 0 <= self.decay_fraction <= 1):
            fail("decay_fraction", "must be in [0, 1]")
        if self.warmup is not None and not (is_int(self.warmup) and 0 <= self.warmup <= self.tokens):
            fail("warmup", "must be a whole number of tokens between 0 and tokens")
        for field in ("weight_decay", "grad_clip"):
            if not (is_real(getattr(self, field)) and getattr(self, field) >= 0):
                fail(field, "must be a finite number >= 0")
        if not (is_real(self.init_std) and 0 < self.init_std <= 1):
            fail("init_std", "must be a finite number in (0, 1]")
        if not (
            isinstance(self.betas, (tuple, list, np.ndarray))
            and np.ndim(self.betas) == 1
            and len(self.betas) == 2
            and all(is_real(b) and 0 <= b < 1 for b in self.betas)
        ):
            fail("betas", "must be two numbers in [0, 1)")
        if not isinstance(self.dataset, str) or not self.dataset:
            fail("dataset", f"must be {CORPUS!r} or a dataset directory")
        if not isinstance(self.device, str) or not DEVICE.fullmatch(self.device):
            fail("device", "must be 'auto', 'cpu', 'mps', 'cuda' or 'cuda:N'")
        if not isinstance(self.compile, bool):
            fail("compile", "must be true or false")
        decay = (
            self.lr * self.weight_decay * max_lr_multiplier(self.parametrization, self.width, self.base_width)
        )
        if decay >= 1:
            fail(
                "weight_decay",
                f"with lr {self.lr:g}: AdamW shrinks each decayed weight by lr x weight_decay = {decay:.3g} "
                "per step, which zeroes or flips it (must be < 1)",
            )

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
