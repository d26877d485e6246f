"""How the default fit's cost grows with the number of (N, D) cells (issue #13).

Synthetic tables from ``scalelaw.synthetic.make_runs`` on finer and finer (N, D) grids:
model sizes log-spaced over 2e7..3e8 and token budgets over 2e9..2e10 (the ranges of the
default table), 4 x 3 = 12, 6 x 4 = 24, 8 x 6 = 48, 12 x 8 = 96 and 16 x 12 = 192 cells,
each swept on make_runs' default 15 lr x 9 batch-size grid (135 runs per cell; run ids
renumbered, since make_runs' ids repeat on grids this fine). Each table is fitted with
the default ``scalelaw.fit(runs)`` (method "average": surface and band, their extrapolation
folds and interval calibration, loss law; 200 bootstrap replicates),
and, as the reference measured in the same run, with the surface solved the way the
previous version did: over (mu, theta) with the dense (runs x (cells + 11)) Jacobian
(``fit_surface(..., _full=True)``; about cells^2.4, so by default only up to 96 cells:
``--reference-up-to 192`` adds about 200 s a repeat).

Prints cells, runs, seconds (default fit and reference), the time ratio per doubling of
the cells from the previous row (``(t / t_prev) ** (1 / log2(cells / cells_prev))``), the
largest relative difference of the lr and batch-size coefficients from the reference,
and whether the targets are met: at most 60 s at 192 cells on a 2-core CPU, and at most
2.5x the time per doubling of the cells. Nothing asserts on wall time. Other processes
distort the timings (on a shared 2-core machine a single fit can take 2x its usual time),
so each fit is repeated ``--repeat`` times, the default fit and the reference in turn,
and the fastest of each is reported; the load average is printed first.

    python benchmarks/fit_scaling.py [--cells 12,24,48,96,192] [--reference-up-to 96]
                                     [--repeat 3] [--n-boot 200]
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import time
from unittest import mock

import numpy as np
import pandas as pd

import scalelaw
from scalelaw.surface import fit_surface
from scalelaw.synthetic import SIZES, TOKENS, make_runs

FIT_MODULE = importlib.import_module("scalelaw.fit")  # the module (scalelaw.fit is the function)
GRIDS = {12: (4, 3), 24: (6, 4), 48: (8, 6), 96: (12, 8), 192: (16, 12)}  # cells: (sizes, budgets)
TARGET_SECONDS, TARGET_CELLS, TARGET_RATIO = 60.0, 192, 2.5


def table(cells: int, seed: int = 0) -> pd.DataFrame:
    """make_runs on a (sizes x budgets) grid log-spaced over the default table's ranges."""
    n_sizes, n_tokens = GRIDS[cells]
    runs = make_runs(
        seed=seed,
        sizes=np.geomspace(min(SIZES), max(SIZES), n_sizes),
        tokens=np.geomspace(min(TOKENS), max(TOKENS), n_tokens),
    )
    runs["run_id"] = [f"run{i:06d}" for i in range(len(runs))]
    return runs


def timed_fit(runs: pd.DataFrame, n_boot: int, reference: bool) -> tuple[float, scalelaw.HyperparameterLaw]:
    """Seconds for ``scalelaw.fit(runs)``; with ``reference``, through the dense surface solver."""
    solver = functools.partial(fit_surface, _full=True) if reference else fit_surface
    with mock.patch.object(FIT_MODULE, "fit_surface", solver):
        t0 = time.perf_counter()
        law = scalelaw.fit(runs, n_boot=n_boot)
        return time.perf_counter() - t0, law


def max_rel_diff(law: scalelaw.HyperparameterLaw, ref: scalelaw.HyperparameterLaw) -> float:
    """Largest relative difference of the lr and batch-size coefficients (floor 1e-3)."""
    a = np.r_[law.lr.params, law.batch_size.params]
    b = np.r_[ref.lr.params, ref.batch_size.params]
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-3)))


def per_doubling(seconds: float, prev_seconds: float, cells: int, prev_cells: int) -> float:
    """Time ratio per doubling of the cells between two rows."""
    return (seconds / prev_seconds) ** (1 / np.log2(cells / prev_cells))


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="12,24,48,96,192", help=f"comma-separated, from {sorted(GRIDS)}")
    parser.add_argument(
        "--reference-up-to",
        type=int,
        default=96,
        help="time the dense reference up to this many cells (0: none)",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="time each fit this many times, keep the fastest"
    )
    parser.add_argument("--n-boot", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cells_list = [int(c) for c in args.cells.split(",")]
    unknown = [c for c in cells_list if c not in GRIDS]
    if unknown:
        parser.error(f"--cells: no grid for {unknown}; choose from {sorted(GRIDS)}")

    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average before the runs: {load}; {os.cpu_count()} CPUs")
    print(
        "default scalelaw.fit (average of surface and band, calibrated, loss law), "
        f"{args.n_boot} bootstrap replicates; "
        f"fastest of {max(1, args.repeat)}\n"
    )
    header = ("cells", "runs", "fit s", "ratio", "ref s", "ref ratio", "speed-up", "max rel diff")
    widths = (6, 7, 8, 6, 8, 9, 8, 12)
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, widths, strict=True)))
    warm = table(min(GRIDS), args.seed)  # first calls pay one-off costs (lazy imports, caches)
    timed_fit(warm, 2, reference=False)
    timed_fit(warm, 2, reference=True)
    rows: list[dict] = []
    for cells in cells_list:
        runs = table(cells, args.seed)
        with_ref = cells <= args.reference_up_to
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(max(1, args.repeat)):
            for reference in (False, True) if with_ref else (False,):
                elapsed, fitted = timed_fit(runs, args.n_boot, reference)
                times[reference].append(elapsed)
                if reference:
                    ref = fitted
                else:
                    law = fitted
        seconds = min(times[False])
        ref_seconds = min(times[True]) if with_ref else None
        diff = max_rel_diff(law, ref) if with_ref else None
        prev = rows[-1] if rows else None
        ratio = per_doubling(seconds, prev["s"], cells, prev["cells"]) if prev else None
        ref_ratio = None
        if prev and prev["ref"] and ref_seconds:
            ref_ratio = per_doubling(ref_seconds, prev["ref"], cells, prev["cells"])
        rows.append({"cells": cells, "s": seconds, "ref": ref_seconds, "ratio": ratio})
        cols = (
            str(cells),
            str(len(runs)),
            _fmt(seconds, ".2f"),
            _fmt(ratio, ".2f"),
            _fmt(ref_seconds, ".2f"),
            _fmt(ref_ratio, ".2f"),
            f"{ref_seconds / seconds:.1f}x" if ref_seconds else "-",
            _fmt(diff, ".1e"),
        )
        print(" ".join(f"{c:>{w}}" for c, w in zip(cols, widths, strict=True)), flush=True)

    print()
    last = {r["cells"]: r for r in rows}.get(TARGET_CELLS)
    if last:
        met = "met" if last["s"] <= TARGET_SECONDS else "NOT met"
        print(f"target <= {TARGET_SECONDS:.0f} s at {TARGET_CELLS} cells: {last['s']:.1f} s, {met}")
    ratios = [(r["cells"], r["ratio"]) for r in rows if r["ratio"] is not None]
    if ratios:
        worst_cells, worst = max(ratios, key=lambda cr: cr[1])
        met = "met" if worst <= TARGET_RATIO else "NOT met"
        print(f"target <= {TARGET_RATIO}x per doubling: worst {worst:.2f}x (to {worst_cells} cells), {met}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
