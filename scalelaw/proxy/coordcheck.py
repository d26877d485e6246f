"""Coordinate check (Yang et al. 2022, TP5 §D): does every activation keep its scale
as the model gets wider?

For each width, the same seed and data, a few Adam steps at a constant lr; before
each step, the RMS of the embedding output, every block's attention and MLP branch
outputs and residual stream, and the logits. Under μP the slope of log RMS against
log width stays near 0 for every layer; under SP the logits grow with width.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from scalelaw.exceptions import InputError
from scalelaw.proxy.data import CORPUS, batch_indices, get_batch, load_dataset
from scalelaw.proxy.model import GPT, ModelConfig
from scalelaw.proxy.parametrization import NAMES
from scalelaw.runspec import LR_RANGE, MAX_DEPTH, MAX_SEQ_LEN, MAX_WIDTH, SEED_MAX, is_int, is_real

HEAD_DIM = ModelConfig.head_dim  # every width of the check has heads of this size
MAX_STEPS = 10_000  # a coordinate check looks at the first few updates


def _check_args(
    parametrization: str,
    widths: Sequence[int],
    steps: int,
    seed: int,
    depth: int,
    lr: float,
    base_width: int,
    seq_len: int,
    batch_seqs: int,
) -> tuple[int, ...]:
    """Refuse what cannot give a slope: fewer than two distinct widths, no Adam step, a
    shape that does not build. Returns the widths as Python ints."""

    def integer(name: str, value: object, low: int, high: int) -> None:
        if not is_int(value) or not low <= value <= high:
            raise InputError(
                f"coordinate check: {name} must be an integer in [{low}, {high:,}], got {value!r}"
            )

    if parametrization not in NAMES:
        raise InputError(f"coordinate check: parametrization must be one of {NAMES}, got {parametrization!r}")
    if isinstance(widths, (str, bytes)) or not isinstance(widths, (Sequence, np.ndarray)):
        raise InputError(f"coordinate check: widths must be a sequence of integers, got {widths!r}")
    widths = list(widths)
    for w in widths:
        integer("every width (--widths)", w, HEAD_DIM, MAX_WIDTH)
        if w % HEAD_DIM:
            raise InputError(
                f"coordinate check: width {w} (--widths) is not a multiple of head_dim {HEAD_DIM}"
            )
    if len(set(widths)) < 2 or len(set(widths)) < len(widths):
        raise InputError(
            f"coordinate check: widths {tuple(widths)!r} (--widths): need at least two distinct widths, "
            "each once, to fit a slope against log width; e.g. --widths 64,128,256,512"
        )
    integer("steps (--steps)", steps, 1, MAX_STEPS)
    integer("seed (--seed)", seed, 0, SEED_MAX)
    integer("depth", depth, 1, MAX_DEPTH)
    integer("base_width", base_width, 1, MAX_WIDTH)
    integer("seq_len", seq_len, 1, MAX_SEQ_LEN)
    integer("batch_seqs", batch_seqs, 1, 65536)
    if not (is_real(lr) and LR_RANGE[0] <= lr <= LR_RANGE[1]):
        raise InputError(
            f"coordinate check: lr (--lr) must be a finite number in "
            f"[{LR_RANGE[0]:g}, {LR_RANGE[1]:g}], got {lr!r}"
        )
    return tuple(int(w) for w in widths)


def coord_check(
    parametrization: str = "mup",
    widths: Sequence[int] = (64, 128, 256, 512),
    steps: int = 4,
    seed: int = 0,
    depth: int = 2,
    lr: float = 3e-3,
    base_width: int = 64,
    seq_len: int = 64,
    batch_seqs: int = 8,
    dataset: str = CORPUS,
) -> pd.DataFrame:
    """Tidy DataFrame, one row per (width, step, layer): columns width, step, layer, rms.

    Step 0 is the model at initialisation; step t is after t Adam updates. ``lr`` is
    the base lr (μP scales it per group); all widths see the same batches. Needs two or
    more distinct widths and ``steps`` >= 1 (:class:`InputError` otherwise); an
    activation that blows up (NaN or inf RMS) is refused with the width and step.
    """
    widths = _check_args(parametrization, widths, steps, seed, depth, lr, base_width, seq_len, batch_seqs)
    data = load_dataset(dataset)
    batches = [
        get_batch(data.train, batch_indices(len(data.train), batch_seqs, seq_len, seed, s), seq_len)
        for s in range(steps + 1)
    ]
    rows = []
    for width in widths:
        torch.manual_seed(seed)
        cfg = ModelConfig(
            width=width,
            depth=depth,
            vocab_size=data.vocab_size,
            seq_len=seq_len,
            parametrization=parametrization,
            base_width=base_width,
        )
        model = GPT(cfg)
        opt = torch.optim.AdamW(model.optimizer_groups(lr, 0.0), lr=lr, betas=(0.9, 0.95))
        for step, (x, y) in enumerate(batches):
            record: dict[str, torch.Tensor] = {}
            _, loss = model(x, y, record=record)
            rms = {name: float(t.detach().float().pow(2).mean().sqrt()) for name, t in record.items()}
            bad = [name for name, value in rms.items() if not np.isfinite(value)]
            if bad:
                raise InputError(
                    f"coordinate check: at lr {lr:g} the {parametrization} model of width {width} blew up "
                    f"by step {step} ({bad[0]} RMS {rms[bad[0]]}); lower --lr"
                )
            rows += [(width, step, name, value) for name, value in rms.items()]
            if step < steps:
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
    return pd.DataFrame(rows, columns=["width", "step", "layer", "rms"])


def coord_slopes(table: pd.DataFrame) -> pd.DataFrame:
    """Least-squares slope of log rms against log width, per (layer, step).

    Columns: layer, step, slope. |slope| near 0 means the layer's scale is width-stable.
    """
    out = []
    for (layer, step), group in table.groupby(["layer", "step"], sort=False):
        if (group["rms"] <= 0).any() or group["width"].nunique() < 2:  # zero-initialised logits at step 0
            out.append((layer, step, float("nan")))
            continue
        slope = np.polyfit(np.log(group["width"].to_numpy(float)), np.log(group["rms"].to_numpy()), 1)[0]
        out.append((layer, step, float(slope)))
    return pd.DataFrame(out, columns=["layer", "step", "slope"])
