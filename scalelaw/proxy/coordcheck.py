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

from scalelaw.proxy.data import CORPUS, batch_indices, get_batch, load_dataset
from scalelaw.proxy.model import GPT, ModelConfig


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
    the base lr (μP scales it per group); all widths see the same batches.
    """
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
            rows += [
                (width, step, name, float(t.detach().float().pow(2).mean().sqrt()))
                for name, t in record.items()
            ]
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
        if (group["rms"] <= 0).any():  # e.g. zero-initialised logits at step 0
            out.append((layer, step, float("nan")))
            continue
        slope = np.polyfit(np.log(group["width"].to_numpy(float)), np.log(group["rms"].to_numpy()), 1)[0]
        out.append((layer, step, float(slope)))
    return pd.DataFrame(out, columns=["layer", "step", "slope"])
