"""What ``torch.compile`` buys the trainers: one lr column, solo and stacked, eager and compiled.

For each width it trains K runs that differ only in peak lr (one column of a sweep)
four ways on the machine's default device (CUDA when there is one, bf16 autocast
there): ``train()`` one run after another, eager and compiled (``RunSpec.compile``),
and ``train_group`` stacked, eager and compiled. A short warm-up of each path runs
first and is not counted (CUDA context, cuBLAS handles, compile caches); compilation
of the measured shapes is counted, as a sweep pays it. It prints each variant's wall
time, achieved FLOP/s, speed-up over solo eager, and the largest relative gap between
a variant's final validation losses and solo eager's.

    python benchmarks/fused_compile.py [--widths 256 512] [--runs 8] [--tokens 1048576]
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from scalelaw.proxy.data import load_dataset
from scalelaw.proxy.fused import train_group
from scalelaw.runspec import RunSpec


def column(width: int, runs: int, tokens: int, batch: int, seq_len: int, compile_: bool) -> list[RunSpec]:
    lrs = [6e-3 * 2 ** ((i - (runs - 1) / 2) / 2) for i in range(runs)]
    return [
        RunSpec(
            width=width,
            depth=4,
            lr=lr,
            batch_size=batch,
            tokens=tokens,
            seq_len=seq_len,
            parametrization="mup",
            base_width=256,
            base_depth=4,
            head_dim=64,
            compile=compile_,
        )
        for lr in lrs
    ]


def timed(specs: list[RunSpec], stacked: bool) -> tuple[float, list[float], float]:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    results = train_group(specs, stacked=stacked)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    return wall, [r.loss for r in results], sum(r.flops for r in results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=1 << 20)
    parser.add_argument("--batch", type=int, default=16384)
    parser.add_argument("--seq-len", type=int, default=512)
    args = parser.parse_args()
    load_dataset("gcide")
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    print(
        f"fused_compile: {args.runs} lrs per column, {args.tokens} tokens per run, batch {args.batch}, "
        f"seq_len {args.seq_len}, device {device}, torch {torch.__version__}"
    )
    print(f"{'width':>5} {'variant':<18} {'wall s':>8} {'TFLOP/s':>8} {'x solo':>7} {'max loss gap':>13}")
    for width in args.widths:
        # warm-up: CUDA context, cuBLAS handles, compile caches of both paths
        for compile_ in (False, True):
            train_group(column(width, 2, 2 * args.batch, args.batch, args.seq_len, compile_), stacked=True)
            train_group(column(width, 1, 2 * args.batch, args.batch, args.seq_len, compile_), stacked=False)
        ref_wall = ref_loss = None
        for name, stacked, compile_ in (
            ("solo eager", False, False),
            ("solo compiled", False, True),
            ("stacked eager", True, False),
            ("stacked compiled", True, True),
        ):
            specs = column(width, args.runs, args.tokens, args.batch, args.seq_len, compile_)
            wall, losses, flops = timed(specs, stacked)
            if ref_wall is None:
                ref_wall, ref_loss = wall, losses
            pairs = zip(losses, ref_loss, strict=True)
            gaps = [abs(a - b) / b for a, b in pairs if math.isfinite(a) and math.isfinite(b)]
            gap = f"{max(gaps):.1e}" if gaps else "n/a"
            print(
                f"{width:>5} {name:<18} {wall:>8.2f} {flops / wall / 1e12:>8.1f} "
                f"{ref_wall / wall:>7.2f} {gap:>13}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
