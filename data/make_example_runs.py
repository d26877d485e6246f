"""Regenerate data/example_runs.csv: a small synthetic runs table with known laws.

Until the project's own proxy sweeps are shipped, this is the example the README's
first command fits. Its landscapes come from :mod:`scalelaw.synthetic` (true
lr* = 0.5 N^-0.6 D^0.25, B* = D^0.55 tokens, L = 1.8 + 400/N^0.34 + 400/D^0.28),
so a fit of it can be checked against the truth.

    python data/make_example_runs.py
"""

from pathlib import Path

import scalelaw
from scalelaw.synthetic import make_runs

OUT = Path(__file__).resolve().parent / "example_runs.csv"

if __name__ == "__main__":
    runs = make_runs(seed=0, lr_steps=range(-4, 7, 2), batch_steps=range(-4, 5, 2))
    runs["loss_kind"] = "synthetic"
    scalelaw.write_runs(runs, OUT)
    print(f"wrote {len(runs)} runs to {OUT}")
