"""A law of one recipe, calibrated on a cell or two of another, scored on the rest.

Two settings, each printed as one table: for each way of predicting, the held-out
cells' median and largest |log2(predicted lr / cell's fitted optimum)|, the share
within sqrt(2), the coverage of the 80% lr and batch-size intervals, and the mean and
largest regret (interpolated loss of the predicted setting over the cell's best run).

1. **The project's proxies** (needs ``data/recipe_b_mup.parquet``, made by
   ``sweeps/recipe_b_mup.toml``): recipe A is the shipped μP reference sweep
   (``data/reference_mup.parquet``), recipe B the same ladder trained with another
   recipe. The prior is A's full fit; it is calibrated on B's ``--calibrate`` cells
   (default: the two cells of B's smallest width) and scored on B's other cells, beside
   the prior alone and B's own full fit (which saw the scored cells: the floor).
   Targets (issue #14): calibrated lr within sqrt(2) of B's fitted optimum in every
   held-out cell, 80% coverage >= 70%, regret <= 2x B's own fit.

2. **Another lab's law on the Step Law runs** (needs ``../shared``): the DeepSeek
   formula (Bi et al. 2024: a different lab, data and recipe) is calibrated on two
   cells of Step Law's smallest model, each cut down to a one-axis-at-a-time cross (the
   lr line at one batch size, the batch line at one lr, as many labs sweep), and
   scored on the 13 cells of the larger models; beside the DeepSeek formula alone and
   the default law (a fit of all Step Law runs: the same lab, the floor).

    python benchmarks/recipe_shift.py [--calibrate-width 32] [--n-boot 200]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pandas as pd

import scalelaw
from scalelaw.crossval import score_cells
from scalelaw.optima import cell_optima
from scalelaw.runs import usable_runs

ROOT = Path(__file__).resolve().parents[1]
RECIPE_A = ROOT / "data" / "reference_mup.parquet"
RECIPE_B = ROOT / "data" / "recipe_b_mup.parquet"
STEPLAW = ROOT.parent / "shared" / "data" / "steplaw" / "dense_lr_bs_loss.csv"


def score(law: scalelaw.HyperparameterLaw, test: pd.DataFrame, optima: pd.DataFrame) -> dict[str, float]:
    """Held-out figures of ``law`` on the cells of ``test``."""
    scores = score_cells(law, test, optima=optima)
    log2 = np.abs(np.log2(scores["lr_pred"] / scores["lr_opt"]))
    return {
        "cells": len(scores),
        "median_log2": float(np.median(log2)),
        "max_log2": float(log2.max()),
        "within_sqrt2": float(np.mean(log2 <= 0.5)),
        "lr_cover": float(scores["lr_covered"].mean()),
        "batch_cover": float(scores["batch_covered"].mean()),
        "mean_regret_pct": float(scores["regret_pct"].mean()),
        "max_regret_pct": float(scores["regret_pct"].max()),
    }


def print_table(title: str, rows: dict[str, dict[str, float]]) -> None:
    print(title)
    print(
        f"  {'prediction':<44} {'cells':>5} {'|log2 lr|':>15} {'<=sqrt2':>8} "
        f"{'80% cover lr/B':>15} {'regret % mean/max':>18}"
    )
    for name, r in rows.items():
        print(
            f"  {name:<44} {r['cells']:>5} {r['median_log2']:>6.2f} / {r['max_log2']:<6.2f} "
            f"{r['within_sqrt2']:>8.0%} {r['lr_cover']:>7.0%} / {r['batch_cover']:<5.0%} "
            f"{r['mean_regret_pct']:>8.3f} / {r['max_regret_pct']:<7.3f}"
        )
    print()


def proxies(calibrate_width: int, n_boot: int, recipe_b: Path = RECIPE_B) -> None:
    if not recipe_b.exists():
        print(f"1. skipped: {recipe_b} is missing (scalelaw sweep sweeps/recipe_b_mup.toml)\n")
        return
    a, b = scalelaw.read_runs(RECIPE_A), scalelaw.read_runs(recipe_b)
    calib = b[b["width"] == calibrate_width]
    test = b[b["width"] != calibrate_width]
    if calib.empty:
        raise SystemExit(
            f"--calibrate-width {calibrate_width}: recipe B has widths {sorted(b['width'].unique())}"
        )
    prior = scalelaw.fit(a, n_boot=n_boot, loss_law=False, name="recipe A (full fit)")
    calibrated = scalelaw.fit(calib, prior=prior, n_boot=n_boot)
    own = scalelaw.fit(b, n_boot=n_boot, loss_law=False, name="recipe B (full fit, saw the test cells)")
    optima = cell_optima(usable_runs(test)[0], n_boot=0)
    cells = calib.groupby(["params", "tokens"]).ngroups
    shift = calibrated.settings["calibrated"]["lr"]
    print_table(
        f"1. proxies: prior = recipe A's full fit ({a['params'].nunique()} widths); calibrated on recipe B's "
        f"{cells} cell(s) of width {calibrate_width}; scored on B's other {len(optima)} cells",
        {
            "recipe A's law alone": score(prior, test, optima),
            f"A calibrated on B (lr x{math.exp(shift['shift']):.2f} +- {shift['shift_sd']:.2f} ln)": score(
                calibrated, test, optima
            ),
            "recipe B's own full fit (floor)": score(own, test, optima),
        },
    )
    n, d = optima["params"].to_numpy(float), optima["tokens"].to_numpy(float)
    gap = np.abs(np.log2(calibrated.lr(n, d) / own.lr(n, d)))
    print(
        f"  calibrated lr vs B's full-fit law at the {len(gap)} scored cells: |log2| median "
        f"{np.median(gap):.2f}, max {gap.max():.2f}; within sqrt(2) in {int((gap <= 0.5).sum())} "
        f"of {len(gap)} (target: all)\n"
    )


def cross_of(cell_runs: pd.DataFrame) -> pd.DataFrame:
    """A one-axis-at-a-time cut of a full grid: the lr line at the batch size one grid
    step above the best run's, and the batch line at the lr one step below the best's
    (a lab's guesses are never exactly on the optimum)."""
    usable = cell_runs[np.isfinite(cell_runs["loss"]) & ~cell_runs["diverged"].fillna(False).astype(bool)]
    best = usable.loc[usable["loss"].idxmin()]
    batches, lrs = np.sort(usable["batch_size"].unique()), np.sort(usable["lr"].unique())
    b0 = batches[min(len(batches) - 1, int(np.searchsorted(batches, best["batch_size"])) + 1)]
    lr0 = lrs[max(0, int(np.searchsorted(lrs, best["lr"])) - 1)]
    return cell_runs[(cell_runs["batch_size"] == b0) | (cell_runs["lr"] == lr0)]


def steplaw(n_boot: int) -> None:
    if not STEPLAW.exists():
        print(f"2. skipped: {STEPLAW} not found (../shared is absent)\n")
        return
    runs = scalelaw.read_runs(STEPLAW, table_format="steplaw")
    smallest = runs["params"].min()
    small = runs[runs["params"] == smallest]
    budgets = sorted(small["tokens"].unique())
    chosen = [budgets[0], budgets[2]]  # two of its four token budgets, 5x apart
    calib = pd.concat([cross_of(small[small["tokens"] == d]) for d in chosen])
    test = runs[runs["params"] > smallest]
    optima = cell_optima(usable_runs(test)[0], n_boot=0)
    deepseek = scalelaw.get_law("deepseek")
    rows = {"DeepSeek formula alone": score(deepseek, test, optima)}
    for name in ("deepseek", "steplaw"):
        law = scalelaw.fit(calib, prior=name, n_boot=n_boot)
        shift = law.settings["calibrated"]["lr"]
        rows[f"{name} calibrated on 2 crosses (lr x{math.exp(shift['shift']):.2f})"] = score(
            law, test, optima
        )
    rows["default law (fit of all Step Law runs: floor)"] = score(scalelaw.get_law("default"), test, optima)
    print_table(
        f"2. Step Law runs as the user's recipe: calibrated on {len(calib)} runs "
        f"(crosses at N={smallest:.3g}, D={chosen[0]:.3g} and {chosen[1]:.3g}); "
        f"scored on the {len(optima)} cells of larger models",
        rows,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibrate-width", type=int, default=32, help="recipe B's cells used to calibrate")
    parser.add_argument("--n-boot", type=int, default=200)
    parser.add_argument("--recipe-b", type=Path, default=RECIPE_B, help="recipe B's runs table")
    args = parser.parse_args()
    proxies(args.calibrate_width, args.n_boot, args.recipe_b)
    steplaw(args.n_boot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
