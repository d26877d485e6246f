"""Throughput of scalelaw's trainer against a plain PyTorch loop, same model and batch.

The reference is the loop a practitioner would write (nanoGPT style): random windows
of the token file, forward, backward, gradient clipping, AdamW step, nothing else.
``train()`` does more (schedule, deterministic batches, divergence checks, loss
bookkeeping, validation); its training-loop tokens/s must still match the plain loop's:
ratio >= 1.0 on CPU. Both are timed the same way, best of ``--repeats``.

On CUDA (``--device cuda``) it runs in bf16, optionally with ``--compile``, and prints
MFU; ``--width 768 --depth 12 --seq-len 1024 --head-dim 64`` is a GPT-2-small sized
proxy (about 85M non-embedding parameters).

    python benchmarks/trainer_throughput.py [--width 256 --depth 4 --steps 30]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from scalelaw.proxy.data import load_dataset
from scalelaw.proxy.model import GPT
from scalelaw.proxy.train import RunSpec, _peak_flops, resolve_device, train


def plain_loop(spec: RunSpec, device: torch.device) -> float:
    """nanoGPT-style loop; returns training tokens/s."""
    data = load_dataset(spec.dataset)
    torch.manual_seed(spec.seed)
    model = GPT(spec.model_config(data.vocab_size)).to(device)
    opt = torch.optim.AdamW(
        model.parameters(),
        lr=spec.lr,
        betas=spec.betas,
        weight_decay=spec.weight_decay,
        fused=device.type == "cuda",
    )
    step_model = torch.compile(model) if spec.compile else model
    n_seqs = spec.batch_size // spec.seq_len
    micro = spec.micro_batch_size // spec.seq_len if spec.micro_batch_size else min(n_seqs, 16)
    bf16 = device.type == "cuda"
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(spec.steps):
        for _ in range(n_seqs // micro):
            ix = torch.randint(len(data.train) - spec.seq_len - 1, (micro,))
            x = torch.stack([torch.from_numpy(data.train[i : i + spec.seq_len].astype(np.int64)) for i in ix])
            y = torch.stack(
                [torch.from_numpy(data.train[i + 1 : i + 1 + spec.seq_len].astype(np.int64)) for i in ix]
            )
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                _, loss = step_model(x.to(device), y.to(device))
            (loss / (n_seqs // micro)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), spec.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return spec.steps * spec.batch_size / (time.perf_counter() - t0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--head-dim", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8192, help="tokens per step")
    parser.add_argument("--micro-batch", type=int, default=None, help="tokens per forward pass")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    device = resolve_device(args.device)
    spec = RunSpec(
        width=args.width,
        depth=args.depth,
        head_dim=args.head_dim,
        lr=3e-3,
        batch_size=args.batch,
        tokens=args.steps * args.batch,
        seq_len=args.seq_len,
        micro_batch_size=args.micro_batch,
        device=str(device),
        compile=args.compile,
        val_tokens=args.seq_len * 4,
    )
    cfg = spec.model_config(256)
    print(
        f"model: width {args.width}, depth {args.depth}, N = {cfg.non_embedding_params:,} "
        f"non-embedding params; batch {args.batch} tokens x {args.steps} steps on {device}"
        f"{' (bf16)' if device.type == 'cuda' else ' (fp32)'}{', compiled' if args.compile else ''}"
    )
    plain, ours = [], []
    for _ in range(args.repeats):
        plain.append(plain_loop(spec, device))
        ours.append(train(spec).tokens_per_s)
    p, o = max(plain), max(ours)
    print(
        f"plain PyTorch loop: {p:,.0f} tokens/s; scalelaw train(): {o:,.0f} tokens/s; "
        f"ratio {o / p:.3f} (target >= 1.0)"
    )
    peak = _peak_flops(device)
    if peak:
        print(
            f"MFU: train() {cfg.flops_per_token() * o / peak:.1%}, "
            f"plain {cfg.flops_per_token() * p / peak:.1%} "
            f"(peak {peak / 1e12:.0f} TFLOP/s bf16)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
