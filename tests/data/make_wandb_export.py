"""Write ``wandb_export.csv``: a nanoGPT-style sweep as W&B's runs table exports it.

The layout is W&B's runs-table CSV: every value quoted; ``Name``, ``State``, ``Notes``,
``User``, ``Tags``, ``Created``, ``Runtime``, ``Sweep``; then the config keys and the
summary keys under their plain names, one beside the other. As in nanoGPT, the config
has the peak ``learning_rate``, a ``batch_size`` in sequences of ``block_size`` tokens
and ``max_iters``; the summary has the last *scheduled* ``lr``, ``train/loss`` and
``val/loss``. Empty cells are keys a run never logged.

The sweep: widths 64 and 128 (depth 2), token budgets 2^21 and 2^22, 5 lrs x 3 batch
sizes per cell, losses from a bowl around lr 4e-3 and 16 sequences; plus three runs an
import must not take as they are: a crashed run, a run that never logged ``val/loss``
and a run whose loss went NaN (diverged: kept, flagged). Run from this folder:
``python make_wandb_export.py``.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

BLOCK_SIZE = 128
DEPTH = 2
LRS = (1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2)
BATCHES = (8, 16, 32)  # sequences per optimizer step
BUDGETS = (2**21, 2**22)  # tokens
WIDTHS = (64, 128)
META = ("Name", "State", "Notes", "User", "Tags", "Created", "Runtime", "Sweep")
CONFIG = (
    "batch_size",
    "block_size",
    "learning_rate",
    "max_iters",
    "n_embd",
    "n_head",
    "n_layer",
    "non_embedding_params",
    "seed",
    "weight_decay",
)
SUMMARY = ("lr", "train/loss", "val/loss")


def loss(params: int, tokens: int, lr: float, batch: int) -> float:
    """A bowl in (log lr, log batch) on top of L(N, D) = 1.8 + 40/N^0.3 + 60/D^0.3."""
    base = 1.8 + 40 / params**0.3 + 60 / tokens**0.3
    return base + 0.02 * math.log(lr / 4e-3) ** 2 + 0.01 * math.log(batch / 16) ** 2


def rows() -> list[dict[str, str]]:
    out = []
    for width in WIDTHS:
        params = 12 * width * width * DEPTH
        for tokens in BUDGETS:
            for lr in LRS:
                for batch in BATCHES:
                    name = f"w{width}-d{tokens}-lr{lr:g}-b{batch}"
                    value = loss(params, tokens, lr, batch)
                    config = {
                        "batch_size": batch,
                        "block_size": BLOCK_SIZE,
                        "learning_rate": lr,
                        "max_iters": tokens // (batch * BLOCK_SIZE),
                        "n_embd": width,
                        "n_head": width // 32,
                        "n_layer": DEPTH,
                        "non_embedding_params": params,
                        "seed": 1337,
                        "weight_decay": 0.1,
                    }
                    summary = {"lr": lr / 10, "train/loss": value - 0.05, "val/loss": value}
                    out.append({"Name": name, "State": "finished", **config, **summary})
    last = dict(out[-1])
    out.append({**last, "Name": "w128-crashed", "State": "crashed", "val/loss": 9.0})
    out.append({**last, "Name": "w128-no-eval", "val/loss": ""})
    out.append({**last, "Name": "w128-diverged", "learning_rate": 0.5, "val/loss": "NaN"})
    for i, row in enumerate(out):
        row.update({"Notes": "-", "User": "", "Tags": "", "Runtime": str(60 + i), "Sweep": ""})
        row["Created"] = f"2026-05-25T10:{i // 60:02d}:{i % 60:02d}.000Z"
    return [{k: str(row.get(k, "")) for k in (*META, *CONFIG, *SUMMARY)} for row in out]


def main() -> None:
    path = Path(__file__).with_name("wandb_export.csv")
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=(*META, *CONFIG, *SUMMARY), quoting=csv.QUOTE_ALL)
        writer.writeheader()
        writer.writerows(rows())
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
