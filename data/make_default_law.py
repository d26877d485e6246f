"""Regenerate scalelaw/presets/default.json: the law `scalelaw.predict(law=None)` uses.

It is scalelaw's own fit (default method, 200 bootstrap replicates, seed 0) of all
1911 runs of the Step Law dense table (Li et al. 2025), read from ../shared; only the
fitted law and its 17 per-cell optima are shipped, never the runs themselves.

    python data/make_default_law.py [--steplaw PATH]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import scalelaw

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT.parent / "shared" / "data" / "steplaw" / "dense_lr_bs_loss.csv"
OUT = ROOT / "scalelaw" / "presets" / "default.json"


def build(table: Path = TABLE) -> scalelaw.HyperparameterLaw:
    runs = scalelaw.read_runs(table, table_format="steplaw")
    return scalelaw.fit(runs, name="default: scalelaw fit of the Step Law dense table (1911 runs)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steplaw", type=Path, default=TABLE)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    law = build(args.steplaw)
    law.to_json(args.out)
    print(law.summary())
    print(f"\nwrote {args.out}")
