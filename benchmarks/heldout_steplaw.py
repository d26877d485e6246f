"""Held-out benchmark on the Step Law dense table (Li et al. 2025).

Fit on the 12 cells with N <= 4.3e8, predict (lr, batch size) for the 5 cells with
N >= 5.3e8 and score each prediction by its regret: the loss at the predicted point,
interpolated over that cell's runs, relative to the cell's best run. The published
`steplaw` preset (fitted on all 17 cells, test cells included) and the `deepseek`
preset are scored in the same run as references. Also prints the lr-interval
coverage, the window chosen by leave-one-cell-out regret on the training cells, and
the time to fit all 1911 runs with bootstrap.

    python benchmarks/heldout_steplaw.py [--steplaw PATH]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import scalelaw
from scalelaw.optima import iter_cells, regret

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TABLE = ROOT.parent / "shared" / "data" / "steplaw" / "dense_lr_bs_loss.csv"
SPLIT_N = 4.3e8
WINDOWS = (0.005, 0.0075, 0.01, 0.015, 0.02, 0.03)


def score(law, test_cells) -> list[dict]:
    rows = []
    for cell, runs in test_cells:
        p = scalelaw.predict(cell["params"], cell["tokens"], law=law)
        best = runs.loc[runs["loss"].idxmin()]
        covered = None
        if p.lr_interval is not None:
            covered = p.lr_interval[0] <= best["lr"] <= p.lr_interval[1]
        rows.append(
            {
                "N": cell["params"],
                "D": cell["tokens"],
                "lr": p.lr,
                "batch": p.batch_size,
                "regret": regret(runs, p.lr, p.batch_size),
                "covered": covered,
                "best_lr": best["lr"],
                "best_batch": best["batch_size"],
            }
        )
    return rows


def loco_regret(train, window: float) -> np.ndarray:
    """Leave-one-cell-out regret on the training cells (no held-out data used)."""
    cells = list(iter_cells(train))
    out = []
    for cell, runs in cells:
        rest = train.drop(index=runs.index)
        law = scalelaw.fit(rest, window=window, n_boot=0, loss_law=False)
        out.append(
            regret(
                runs,
                law.lr(cell["params"], cell["tokens"]),
                law.batch_size(cell["params"], cell["tokens"]),
            )
        )
    return np.array(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steplaw", type=Path, default=DEFAULT_TABLE)
    args = parser.parse_args()
    if not args.steplaw.is_file():
        print(f"Step Law table not found at {args.steplaw}; pass --steplaw PATH", file=sys.stderr)
        return 2
    runs = scalelaw.read_runs(args.steplaw, table_format="steplaw")
    train = runs[runs["params"] <= SPLIT_N]
    test_cells = list(iter_cells(runs[runs["params"] > SPLIT_N]))
    print(
        f"Step Law dense table: {len(runs)} runs; fit on {train['params'].nunique()} sizes "
        f"({len(list(iter_cells(train)))} cells, N <= {SPLIT_N:.2g}), "
        f"test on {len(test_cells)} cells\n"
    )

    laws = {
        "scalelaw (default: average)": scalelaw.fit(train),
        "scalelaw (surface)": scalelaw.fit(train, method="surface"),
        "scalelaw (two-stage optima)": scalelaw.fit(train, method="optima"),
        "steplaw preset (saw test cells)": "steplaw",
        "deepseek preset": "deepseek",
    }
    summary = {}
    for name, law in laws.items():
        rows = score(law, test_cells)
        print(f"{name}")
        print(
            f"  {'N':>9} {'D':>9} {'pred lr':>9} {'best lr':>9} {'pred B':>9} {'best B':>9} "
            f"{'regret %':>9} {'lr in CI':>8}"
        )
        for r in rows:
            cov = "-" if r["covered"] is None else ("yes" if r["covered"] else "no")
            print(
                f"  {r['N']:9.3g} {r['D']:9.3g} {r['lr']:9.3g} {r['best_lr']:9.3g} "
                f"{r['batch']:9.3g} "
                f"{r['best_batch']:9.3g} {100 * r['regret']:9.3f} {cov:>8}"
            )
        reg = np.array([r["regret"] for r in rows])
        cov = [r["covered"] for r in rows if r["covered"] is not None]
        summary[name] = (reg.mean(), reg.max(), np.mean(cov) if cov else None)
        cov_text = f", lr coverage (80% interval) {np.mean(cov):.0%}" if cov else ""
        print(f"  mean regret {100 * reg.mean():.3f}%, max {100 * reg.max():.3f}%{cov_text}\n")

    ref_mean = summary["steplaw preset (saw test cells)"][0]
    own_mean, own_max, _ = summary["scalelaw (default: average)"]
    print(
        f"scalelaw default / steplaw preset mean-regret ratio: {own_mean / ref_mean:.2f} "
        "(target: mean <= 0.080%, max <= 0.150%; "
        f"got {100 * own_mean:.3f}%, {100 * own_max:.3f}%)\n"
    )

    print(
        "window choice: leave-one-cell-out regret on the 12 training cells "
        "(held-out regret shown for information only)"
    )
    print(
        f"  {'window':>7} {'LOCO mean %':>12} {'LOCO max %':>11} {'held-out mean %':>16} "
        f"{'held-out max %':>15}"
    )
    for w in WINDOWS:
        loco = loco_regret(train, w)
        held = np.array(
            [r["regret"] for r in score(scalelaw.fit(train, window=w, n_boot=0, loss_law=False), test_cells)]
        )
        print(
            f"  {w:7.4f} {100 * loco.mean():12.3f} {100 * loco.max():11.3f} "
            f"{100 * held.mean():16.3f} {100 * held.max():15.3f}"
        )

    print("\ntime to fit all 1911 runs (optima + laws + loss law, 200 bootstrap replicates):")
    t0 = time.perf_counter()
    scalelaw.fit(runs, method="optima")
    t_ref = time.perf_counter() - t0
    t0 = time.perf_counter()
    scalelaw.fit(runs)
    t_own = time.perf_counter() - t0
    print(
        f"  default fit {t_own:.2f} s; two-stage reference {t_ref:.2f} s in the same run "
        f"(ratio {t_own / t_ref:.2f}); budget 10 s (ratio {t_own / 10:.2f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
