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

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scalelaw.groups import eval_batch_seqs, micro_batch_seqs
from scalelaw.proxy.data import batch_indices, get_batch, load_dataset, validation_starts
from scalelaw.proxy.model import GPT
from scalelaw.record import RunRecord
from scalelaw.runspec import RunSpec
from scalelaw.shapes import PEAK_FLOPS

DIVERGENCE_FACTOR = 1.5  # a training loss 50% above the first step's has blown up
EMA = 0.9  # smoothing of the reported training loss


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

    def record(self) -> RunRecord:
        """This run as a runs-table record (:class:`scalelaw.record.RunRecord`)."""
        s = self.spec
        return RunRecord(
            run_id=s.run_id,
            params=self.params,
            tokens=self.tokens,
            lr=s.lr,
            batch_size=s.batch_size,
            loss=self.loss,
            diverged=self.diverged,
            loss_kind="validation",
            train_loss=self.train_loss,
            tokens_trained=self.tokens_trained,
            seq_len=s.seq_len,
            width=s.width,
            depth=s.depth,
            heads=s.width // s.head_dim,
            parametrization=s.parametrization,
            base_width=s.base_width,
            base_depth=s.base_depth,
            schedule=s.schedule,
            warmup=s.warmup_tokens,
            weight_decay=s.weight_decay,
            seed=s.seed,
            wall_s=self.wall_s,
            tokens_per_s=self.tokens_per_s,
            flops=self.flops,
        )

    def to_row(self) -> dict[str, Any]:
        """The runs-table row (design.md schema)."""
        return self.record().to_row()


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
    return next((v for k, v in PEAK_FLOPS.items() if k != "cpu" and k in gpu), None)


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
    micro_seqs = micro_batch_seqs(spec.batch_size, spec.seq_len, spec.micro_batch_size)
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
                x, y = get_batch(data.train, starts[i * micro_seqs : (i + 1) * micro_seqs], spec.seq_len)
                with autocast():
                    _, loss = step_model(x.to(device, non_blocking=True), y.to(device, non_blocking=True))
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
        else evaluate(
            model,
            data.val,
            spec.seq_len,
            spec.val_tokens,
            device,
            eval_batch_seqs(spec.seq_len, micro_seqs),
            autocast,
        )
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
