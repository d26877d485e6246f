"""μTransfer benchmark: does the best learning rate stay put as the model widens?

Widths spanning 8x (32 -> 256) at fixed depth and token budget, trained on the
embedded corpus under μP and under SP on an lr grid with step 2^0.5. For each width
the grid is walked until its best point is bracketed; the best lr is refined by a
parabola through the best point and its neighbours (in log lr). Prints each width's
best lr and the slope of log lr* against log width with a 95% interval.
Target: under μP the best lr moves by at most one grid step across the 8x range;
under SP it moves clearly (towards 1/width).

    python benchmarks/lr_transfer.py [--tokens 131072] [--widths 32,64,128,256]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import statsmodels.api as sm

from scalelaw.proxy.train import RunSpec, train

STEP = math.sqrt(2)


def best_lr(width: int, param: str, args, start: float) -> tuple[float, int, dict[float, float]]:
    """Walk the lr grid from ``start`` until the minimum is bracketed."""
    losses: dict[int, float] = {}

    def loss_at(k: int) -> float:
        if k not in losses:
            spec = RunSpec(
                width=width,
                depth=args.depth,
                lr=start * STEP**k,
                batch_size=args.batch,
                tokens=args.tokens,
                seq_len=args.seq_len,
                parametrization=param,
                base_width=args.widths[0],
                head_dim=args.head_dim,
                seed=args.seed,
                val_tokens=32768,
            )
            r = train(spec)
            losses[k] = r.loss if not r.diverged else math.inf
        return losses[k]

    k = 0
    for _ in range(16):
        here, lower, upper = loss_at(k), loss_at(k - 1), loss_at(k + 1)
        if here <= lower and here <= upper:
            break
        k = k - 1 if lower < upper else k + 1
    y = np.array([loss_at(k - 1), loss_at(k), loss_at(k + 1)])
    shift = 0.0
    if np.all(np.isfinite(y)) and y[0] + y[2] - 2 * y[1] > 0:
        shift = 0.5 * (y[0] - y[2]) / (y[0] + y[2] - 2 * y[1])  # parabola vertex, in grid steps
    return start * STEP ** (k + shift), k, {start * STEP**i: v for i, v in sorted(losses.items())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="32,64,128,256")
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--head-dim", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--batch", type=int, default=2048, help="tokens per step")
    parser.add_argument("--tokens", type=int, default=131072)
    parser.add_argument("--lr", type=float, default=4e-3, help="grid centre")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.widths = [int(w) for w in args.widths.split(",")]
    t0 = time.perf_counter()
    slopes = {}
    for param in ("mup", "sp"):
        print(
            f"{param}: depth {args.depth}, {args.tokens} tokens, batch {args.batch} tokens, "
            f"lr grid step 2^0.5 (base width {args.widths[0]})"
        )
        rows, start = [], args.lr
        for width in args.widths:
            lr, k, losses = best_lr(width, param, args, start)
            start = start * STEP**k  # next width starts from this width's best grid point
            rows.append((width, lr))
            grid = "  ".join(f"{x:.2g}:{v:.3f}" for x, v in losses.items())
            print(f"  width {width:4d}: best lr {lr:.3g}   ({grid})")
        w, lr = np.log([r[0] for r in rows]), np.log([r[1] for r in rows])
        fit = sm.OLS(lr, sm.add_constant(w)).fit()
        lo, hi = fit.conf_int(0.05)[1]
        moved = abs(lr[-1] - lr[0]) / math.log(STEP)
        slopes[param] = fit.params[1]
        print(
            f"  slope of log lr* vs log width: {fit.params[1]:+.3f} (95% [{lo:+.3f}, {hi:+.3f}]); "
            f"best lr moved {moved:.2f} grid steps over "
            f"{args.widths[-1] // args.widths[0]}x width\n"
        )
    print(f"μP / SP slope ratio: {slopes['mup'] / slopes['sp']:.2f}; total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
