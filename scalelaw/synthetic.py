"""Synthetic runs tables with known laws: for recovery tests and the example table.

Each cell's landscape is log L = log L*(N, D) + q(u, v), u and v the log distances of
(lr, batch size) from the true optima lr* = LR_COEF N^LR_EXP_N D^LR_EXP_D and
B* = B_COEF D^B_EXP_D, q the bowl fitted on the Step Law table (asymmetric in lr),
plus multiplicative noise; lr more than e^2.5 above the optimum blows up.

With ``weight_decays`` (:func:`make_runs`), each cell is also swept in AdamW's weight
decay λ, and log L gains TAU_K (log(f / f*(N, D)))^2, f = 1 / (lr λ S) AdamW's timescale
as a fraction of the S = D / batch size steps of training, f* = TAU_COEF N^TAU_EXP_N
D^TAU_EXP_D (:func:`true_timescale`); so the best λ at the optimal lr and batch size
puts the timescale at f*.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

LR_COEF, LR_EXP_N, LR_EXP_D = 0.5, -0.6, 0.25
B_COEF, B_EXP_D = 1.0, 0.55
LOSS = (1.8, 400.0, 400.0, 0.34, 0.28)  # E, A, B, alpha, beta
SHAPE = (0.0065, 0.0055, -0.0045, 0.0015, 0.0005)  # k_uu, k_vv, k_uv, k_uuu, k_vvv
TAU_COEF, TAU_EXP_N, TAU_EXP_D = 0.2, 0.12, -0.1
TAU_K = 0.01  # curvature of log loss in log(timescale fraction)
SIZES = (2e7, 5e7, 1.2e8, 3e8)
TOKENS = (2e9, 6e9, 2e10)


def true_lr(n, d, lr_factor: float = 1.0):
    """lr*(N, D); ``lr_factor`` moves it as another recipe would."""
    return lr_factor * LR_COEF * np.asarray(n, float) ** LR_EXP_N * np.asarray(d, float) ** LR_EXP_D


def true_batch(n, d):
    return B_COEF * np.asarray(d, float) ** B_EXP_D + 0 * np.asarray(n, float)


def true_timescale(n, d):
    """f*(N, D): the optimal AdamW timescale 1 / (lr λ) as a fraction of training steps."""
    return TAU_COEF * np.asarray(n, float) ** TAU_EXP_N * np.asarray(d, float) ** TAU_EXP_D


def true_weight_decay(n, d):
    """λ*(N, D) at the optimal lr and batch size: 1 / (lr* f* S*), S* = D / B*."""
    steps = np.asarray(d, float) / true_batch(n, d)
    return 1.0 / (true_lr(n, d) * true_timescale(n, d) * steps)


def true_loss(n, d):
    e, a, b, alpha, beta = LOSS
    return e + a / np.asarray(n, float) ** alpha + b / np.asarray(d, float) ** beta


def landscape(n, d, lr, batch_size, lr_factor: float = 1.0):
    """Noise-free loss of a run at (lr, batch size) in cell (N, D): the law and bowl of
    :func:`make_runs` (10 + for a blown-up lr more than e^2.5 above the optimum)."""
    k = SHAPE
    u = np.log(np.asarray(lr, float) / true_lr(n, d, lr_factor))
    v = np.log(np.asarray(batch_size, float) / true_batch(n, d))
    q = k[0] * u * u + k[1] * v * v + k[2] * u * v + k[3] * u**3 + k[4] * v**3
    return np.where(u > 2.5, 10.0, true_loss(n, d) * np.exp(q))


def make_runs(
    seed: int = 0,
    noise: float = 5e-4,
    sizes=SIZES,
    tokens=TOKENS,
    lr_steps=range(-6, 9),
    batch_steps=range(-4, 5),
    shared_batch_grid: bool = False,
    lr_factor: float = 1.0,
    cross: tuple[int, int] | None = None,
    weight_decays=None,
) -> pd.DataFrame:
    """A runs table: every (N, D) cell swept on a sqrt(2) lr grid x sqrt(2) batch grid.

    Grids are shifted off the true optima at random. With ``shared_batch_grid`` the batch
    sizes are rounded powers of sqrt(2) tokens instead, the same values in every cell of
    a token budget, as in a real sweep. ``lr_factor`` multiplies every cell's lr* (a
    recipe that moves the optimum). ``cross=(i0, j0)`` keeps only a one-axis-at-a-time
    sweep: the lr line at batch step ``j0`` and the batch line at lr step ``i0``.
    ``weight_decays``: factors on each cell's λ*(N, D) (:func:`true_weight_decay`, the grid
    shifted off it at random), one full lr x batch grid per value, in a
    ``weight_decay`` column; a factor of 0 gives λ = 0, whose timescale penalty is that
    of a timescale e^3 times too long.
    """
    rng = np.random.default_rng(seed)
    k = SHAPE
    rows = []
    decays = [None] if weight_decays is None else list(weight_decays)
    for n in sizes:
        for d in tokens:
            lr0, b0, l0 = true_lr(n, d, lr_factor), true_batch(n, d), true_loss(n, d)
            shift = rng.uniform(-0.5, 0.5, 2) * np.log(2) / 2  # grids not centred on the truth
            # drawn only with a weight-decay axis: the tables without one stay as they were
            wd_shift = 1.0 if weight_decays is None else np.exp(rng.uniform(-0.5, 0.5) * np.log(2))
            for factor, i in ((f, i) for f in decays for i in lr_steps):
                decay = None if factor is None else factor * wd_shift * float(true_weight_decay(n, d))
                for j in batch_steps:
                    if cross is not None and i != cross[0] and j != cross[1]:
                        continue
                    u = i * np.log(2) / 2 + shift[0]
                    v = j * np.log(2) / 2 + shift[1]
                    if shared_batch_grid:
                        v = np.log(round(2 ** (round(2 * np.log2(b0)) / 2 + j / 2)) / b0)
                    q = k[0] * u * u + k[1] * v * v + k[2] * u * v + k[3] * u**3 + k[4] * v**3
                    if decay is not None:
                        lr, batch = lr0 * np.exp(u), b0 * np.exp(v)
                        gap = 3.0
                        if decay > 0:
                            fraction = batch / (lr * decay * d)
                            gap = min(3.0, abs(np.log(fraction / true_timescale(n, d))))
                        q += TAU_K * gap * gap
                    loss = l0 * np.exp(q + noise * rng.standard_normal())
                    if u > 2.5:
                        loss = 10.0 + rng.uniform()  # blow-up at too high a learning rate
                    row = {
                        "run_id": f"n{n:.0e}-d{d:.0e}-lr{i}-b{j}",
                        "params": int(n),
                        "tokens": int(d),
                        "lr": lr0 * np.exp(u),
                        "batch_size": round(b0 * np.exp(v)),
                        "loss": loss,
                    }
                    if decay is not None:
                        row["run_id"] += f"-wd{decay:.4g}"
                        row["weight_decay"] = decay
                    rows.append(row)
    return pd.DataFrame(rows)
