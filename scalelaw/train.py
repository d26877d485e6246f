"""One proxy run: ``train(RunSpec) -> RunResult``, a row of the runs table.

AdamW with the parametrization's parameter groups; WSD, cosine or linear-to-zero
schedules with warmup in tokens; gradient clipping; gradient accumulation so any
batch size in tokens fits in memory; bf16 autocast on CUDA, fp32 on CPU; optional
``torch.compile``. The final loss is the validation loss on a fixed held-out token set.
A NaN/inf loss, or a training loss above ``DIVERGENCE_FACTOR`` x its starting value,
stops the run early with ``diverged = True`` (and a NaN loss): too high an lr is a
result, not an error.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scalelaw.data import CORPUS, batch_indices, get_batch, load_dataset, validation_starts
from scalelaw.model import GPT, ModelConfig
from scalelaw.parametrization import NAMES
from scalelaw.runs import stable_id

SCHEDULES = ("wsd", "cosine", "linear")
DIVERGENCE_FACTOR = 1.5  # a training loss 50% above the first step's has blown up
EMA = 0.9  # smoothing of the reported training loss
# Peak bf16 dense tensor FLOP/s per device, for MFU (vendor datasheets).
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12}


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
            raise ValueError(f"RunSpec.{field} = {getattr(self, field)!r}: {why}")

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
    def warmup_steps(self) -> int:
        warmup = self.warmup if self.warmup is not None else 0.05 * self.tokens
        return max(1, round(warmup / self.batch_size)) if warmup > 0 else 0

    @property
    def run_id(self) -> str:
        """Stable hash of every field: a resumed sweep recognises finished runs by it."""
        return stable_id(sorted(dataclasses.asdict(self).items()))

    def model_config(self, vocab_size: int) -> ModelConfig:
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


@dataclass(frozen=True)
class RunResult:
    """Outcome of one run; ``to_row()`` is its runs-table row (design.md schema)."""

    spec: RunSpec
    params: int
    tokens: int  # the budget, spec.tokens: runs of one cell share it even if they stop early
    tokens_trained: int
    loss: float
    train_loss: float
    diverged: bool
    steps: int
    wall_s: float
    tokens_per_s: float
    flops: float
    mfu: float | None
    device: str

    def to_row(self) -> dict[str, Any]:
        s = self.spec
        return {
            "run_id": s.run_id,
            "params": self.params,
            "tokens": self.tokens,
            "lr": s.lr,
            "batch_size": s.batch_size,
            "loss": self.loss,
            "loss_kind": "validation",
            "train_loss": self.train_loss,
            "tokens_trained": self.tokens_trained,
            "seq_len": s.seq_len,
            "width": s.width,
            "depth": s.depth,
            "heads": s.width // s.head_dim,
            "parametrization": s.parametrization,
            "schedule": s.schedule,
            "warmup": s.warmup_steps * s.batch_size,
            "weight_decay": s.weight_decay,
            "seed": s.seed,
            "diverged": self.diverged,
            "wall_s": self.wall_s,
            "tokens_per_s": self.tokens_per_s,
            "flops": self.flops,
        }


def lr_factor(spec: RunSpec, step: int) -> float:
    """Multiplier of the peak lr at optimizer step ``step`` (0-based)."""
    warm, total = spec.warmup_steps, spec.steps
    if step < warm:
        return (step + 1) / warm
    if spec.schedule == "linear":
        return max(0.0, (total - step) / max(1, total - warm))
    if spec.schedule == "cosine":
        progress = (step - warm) / max(1, total - warm)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    decay_steps = round(spec.decay_fraction * total)  # wsd
    decay_start = total - decay_steps
    return 1.0 if step < decay_start else max(0.0, (total - step) / max(1, decay_steps))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    gpu = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_FLOPS.items() if k in gpu), None)


@torch.no_grad()
def evaluate(
    model: GPT,
    tokens: np.ndarray,
    seq_len: int,
    max_tokens: int,
    device: torch.device,
    micro_seqs: int,
    autocast,
) -> float:
    """Mean next-token loss over the fixed validation sequences."""
    model.eval()
    starts = validation_starts(len(tokens), seq_len, max_tokens)
    total, count = 0.0, 0
    for i in range(0, len(starts), micro_seqs):
        x, y = (t.to(device) for t in get_batch(tokens, starts[i : i + micro_seqs], seq_len))
        with autocast():
            _, loss = model(x, y)
        total += float(loss) * len(x)
        count += len(x)
    model.train()
    return total / count


def train(spec: RunSpec, metrics_path: str | Path | None = None) -> RunResult:
    """Train one proxy model and return its result. Deterministic on CPU for a seed.

    ``metrics_path``: append one JSON line per step (step, tokens, lr, loss) there.
    """
    device = resolve_device(spec.device)
    data = load_dataset(spec.dataset)
    torch.manual_seed(spec.seed)
    cfg = spec.model_config(data.vocab_size)
    model = GPT(cfg).to(device)
    opt = torch.optim.AdamW(
        model.optimizer_groups(spec.lr, spec.weight_decay),
        lr=spec.lr,
        betas=spec.betas,
        fused=device.type == "cuda",
    )
    step_model = torch.compile(model) if spec.compile else model
    use_bf16 = device.type == "cuda"

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16)

    seqs_per_step = spec.batch_size // spec.seq_len
    micro_seqs = (
        (spec.micro_batch_size // spec.seq_len) if spec.micro_batch_size else min(seqs_per_step, 16)
    )
    while seqs_per_step % micro_seqs:
        micro_seqs -= 1
    n_micro = seqs_per_step // micro_seqs
    log = open(metrics_path, "a", encoding="utf-8") if metrics_path else None

    start_loss, smooth, diverged, step = None, float("nan"), False, 0
    t0 = time.perf_counter()
    try:
        for step in range(spec.steps):
            for group in opt.param_groups:
                group["lr"] = spec.lr * group["lr_multiplier"] * lr_factor(spec, step)
            starts = batch_indices(len(data.train), seqs_per_step, spec.seq_len, spec.seed, step)
            step_loss_t = torch.zeros((), device=device)
            for i in range(n_micro):
                x, y = get_batch(
                    data.train, starts[i * micro_seqs : (i + 1) * micro_seqs], spec.seq_len
                )
                with autocast():
                    _, loss = step_model(
                        x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                    )
                (loss / n_micro).backward()
                step_loss_t += loss.detach() / n_micro
            if spec.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), spec.grad_clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
            step_loss = float(step_loss_t)  # one host sync per step, for the divergence check
            start_loss = step_loss if start_loss is None else start_loss
            smooth = step_loss if step == 0 else EMA * smooth + (1 - EMA) * step_loss
            if log:
                log.write(
                    json.dumps(
                        {
                            "step": step,
                            "tokens": (step + 1) * spec.batch_size,
                            "lr": spec.lr * lr_factor(spec, step),
                            "loss": step_loss,
                        }
                    )
                    + "\n"
                )
            if not math.isfinite(step_loss) or step_loss > DIVERGENCE_FACTOR * start_loss:
                diverged = True
                break
    finally:
        if log:
            log.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall = time.perf_counter() - t0
    trained = (step + 1) * spec.batch_size
    val_loss = (
        float("nan")
        if diverged
        else evaluate(model, data.val, spec.seq_len, spec.val_tokens, device, micro_seqs, autocast)
    )
    if not math.isfinite(val_loss):
        diverged, val_loss = True, float("nan")
    flops = cfg.flops_per_token() * trained
    peak = _peak_flops(device)
    tokens_per_s = trained / wall
    return RunResult(
        spec=spec,
        params=cfg.non_embedding_params,
        tokens=spec.tokens,
        tokens_trained=trained,
        loss=val_loss,
        train_loss=smooth,
        diverged=diverged,
        steps=step + 1,
        wall_s=wall,
        tokens_per_s=tokens_per_s,
        flops=flops,
        mfu=(cfg.flops_per_token() * tokens_per_s / peak) if peak else None,
        device=str(device),
    )
