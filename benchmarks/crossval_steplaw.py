"""Cross-validation of every hyperparameter-law estimator on the Step Law dense table.

Folds (scalelaw.crossval): leave-one-N-out over the 5 model sizes, leave-largest-k-N-out
for k = 1..3 (extrapolation), leave-one-D-out over the token budgets. Per estimator and
scheme: mean and max regret of the predicted (lr, B) on the held-out cells, the share
of held-out cell optima inside the 80% lr and B intervals, and how far the folds
extrapolate. The published `steplaw` (fitted on all 17 cells, so it saw every test
cell) and `deepseek` presets are scored on the same folds as references. The original
single split (fit N <= 4.3e8, test the 5 larger cells) is the "largest 2 N" fold.

    python benchmarks/crossval_steplaw.py [--steplaw PATH] [--schemes leave-largest-N-out ...]
        [--estimators surface band ...] [--n-boot 200] [--out scores.csv]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

import scalelaw
from scalelaw.crossval import DEFAULT_SCHEMES, SCHEMES, crossvalidate, summarize

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TABLE = ROOT.parent / "shared" / "data" / "steplaw" / "dense_lr_bs_loss.csv"
ORIGINAL_SPLIT = "largest 2 N"  # fit N <= 4.3e8, test the 5 cells with N >= 5.3e8


def estimators(n_boot: int) -> dict:
    def fitted(method: str):
        return lambda train: scalelaw.fit(train, method=method, n_boot=n_boot, loss_law=False)

    return {
        "surface": fitted("surface"),
        "optima": fitted("optima"),
        "band": fitted("band"),
        "average": fitted("average"),
        "steplaw*": lambda train: scalelaw.get_law("steplaw"),
        "deepseek": lambda train: scalelaw.get_law("deepseek"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steplaw", type=Path, default=DEFAULT_TABLE)
    parser.add_argument("--schemes", nargs="+", default=list(DEFAULT_SCHEMES), choices=SCHEMES)
    parser.add_argument("--estimators", nargs="+", default=None, help="names from the table (default: all)")
    parser.add_argument("--n-boot", type=int, default=200)
    parser.add_argument("--out", type=Path, default=None, help="also write the per-cell scores (CSV)")
    args = parser.parse_args()
    if not args.steplaw.is_file():
        print(f"Step Law table not found at {args.steplaw} (../shared is absent)", file=sys.stderr)
        return 2
    runs = scalelaw.read_runs(args.steplaw, table_format="steplaw")
    chosen = estimators(args.n_boot)
    if args.estimators:
        chosen = {k: v for k, v in chosen.items() if k in args.estimators}
    t0 = time.perf_counter()
    scores = crossvalidate(runs, chosen, schemes=args.schemes, log=lambda m: print(m, flush=True))
    wall = time.perf_counter() - t0
    if args.out:
        scores.to_csv(args.out, index=False)
    table = summarize(scores)
    original = summarize(scores[scores["fold"] == ORIGINAL_SPLIT].assign(scheme="original split"))
    pd.set_option("display.width", 200)
    print()
    print(pd.concat([table, original]).to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print("\n* steplaw was fitted on all 17 cells: its held-out scores are in-sample.")
    print(f"{len(scores)} cell scores in {wall:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
