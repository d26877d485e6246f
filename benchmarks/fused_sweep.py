"""Fused against unfused sweeps: the same grid through ``run_sweep`` twice, in one invocation.

Once with today's unfused executor (``run_sweep(spec, dir, fuse=False, workers=W)``:
every run trained on its own by ``train()``) and once fused (``fuse=True``, same W:
the runs of each lr column trained as one stacked model by
``scalelaw.proxy.fused.train_group``), each into a fresh directory of its own. Each
variant runs in a child process started with multiprocessing's 'spawn', so its peak
resident memory (``ru_maxrss`` of the child, or of its largest pool worker when there
are workers; host memory only, GPU memory is not measured) is its own. For each variant
it prints the wall time of ``run_sweep`` (after the child has imported torch and opened
the corpus), the runs, the stacked groups formed (distinct ``group`` values in the
``start`` events of the sweep's events.jsonl, with their sizes), the training FLOPs (the
runs table's ``flops``) and the FLOP/s achieved, and the peak RSS; then the speed-up
(unfused wall / fused wall) and how well the two agree run by run (joined on
``run_id``: relative difference of the validation ``loss`` over runs finite in both, and
whether the divergence verdicts match). At the top of an lr grid training is chaotic
enough that rounding alone moves the final loss by 1e-3 or more (the reference
``train()`` disagrees with itself by as much when only its micro-batching changes; see
tests/test_fused.py), so the median gap is the float-rounding figure and the largest
gap is printed with its run.

Grids (``--grid``): ``demo`` (default) is the main job's sweep, ``scalelaw.demo.demo_spec("small")``;
``wide`` is widths 128 and 256 at 5 lrs, 2 batch sizes and 2 budgets; ``gpu`` is 8 lrs x
widths 256-1024 at depth 4 for a CUDA machine; ``tiny`` (6 runs) is a smoke test.

Targets: fused >= 3x faster than unfused on a 2-core CPU for the demo grid, and >= 10x
on a GPU for the gpu grid, with losses agreeing to float rounding. Nothing here asserts
on wall time; it measures and prints (with the load average before the runs: other
processes on the machine distort both walls).

    python benchmarks/fused_sweep.py [--grid demo|wide|gpu|tiny] [--widths W ...] [--batches B ...]
        [--workers 2] [--keep DIR] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import queue
import resource
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from scalelaw.sweepspec import SweepSpec

GRIDS: dict[str, dict[str, Any]] = {
    # 2 widths x 5 lrs x 2 batch sizes x 2 budgets = 40 runs of up to 65k tokens (CPU).
    "wide": dict(
        widths=[128, 256],
        depth=2,
        base=128,
        head_dim=32,
        lr=3e-3,
        lr_count=5,
        batches=[256, 512],
        budgets=[32768, 65536],
        seq_len=64,
    ),
    # 3 widths x 8 lrs x 2 batch sizes = 48 runs of 4M tokens, for one CUDA GPU; lr
    # centred where the demo's GPU ladder (same base width and head_dim) centres it.
    "gpu": dict(
        widths=[256, 512, 1024],
        depth=4,
        base=256,
        head_dim=64,
        lr=6e-3,
        lr_count=8,
        batches=[16384, 32768],
        budgets=[4194304],
        seq_len=512,
    ),
    # The main job's grid before this issue (commit c529378): 90 runs, batches of 2-8
    # sequences of 64 tokens, 33k-98k tokens; the grid the fused-sweep issue was written on.
    "demo0": dict(
        widths=[32, 64, 128],
        depth=2,
        base=32,
        head_dim=16,
        lr=3e-3,
        lr_count=5,
        batches=[128, 256, 512],
        budgets=[32768, 98304],
        seq_len=64,
    ),
    # 3 lrs x 2 budgets = 6 runs, one stackable group: a smoke test (seconds).
    "tiny": dict(
        widths=[32],
        depth=2,
        base=32,
        head_dim=16,
        lr=6e-3,
        lr_count=3,
        batches=[128],
        budgets=[8192, 16384],
        seq_len=64,
    ),
}


def grid_spec(name: str, widths: list[int] | None = None, batches: list[int] | None = None) -> SweepSpec:
    """The sweep of ``--grid name``, optionally cut to some of its widths or batch sizes
    (to split a long grid over several calls); ``demo`` is always read from scalelaw.demo."""
    if name == "demo":
        if widths or batches:
            raise SystemExit("--widths and --batches cut the named ladders, not the demo grid")
        from scalelaw.demo import demo_spec

        return demo_spec("small")
    from scalelaw.demo import ladder_spec

    fields = dict(GRIDS[name])
    for key, cut in (("widths", widths), ("batches", batches)):
        if cut:
            unknown = sorted(set(cut) - set(fields[key]))
            if unknown:
                raise SystemExit(f"--{key} {unknown}: grid {name!r} has {key} {fields[key]}")
            fields[key] = [v for v in fields[key] if v in cut]
    return ladder_spec(f"fused-bench-{name}", max_runs=1000, **fields)


def _maxrss_bytes(who: int) -> int:
    rss = resource.getrusage(who).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # Linux reports KiB


def _child(spec: SweepSpec, root: str, fuse: bool, workers: int, out: Any) -> None:
    """One variant, in a fresh spawned process: run the sweep, send back what was measured."""
    try:
        import torch

        from scalelaw.proxy.data import load_dataset
        from scalelaw.store import RunStore
        from scalelaw.sweep import run_sweep

        load_dataset(spec.recipe.dataset)  # builds the corpus cache if missing: not part of either wall
        rss_start = _maxrss_bytes(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        report = run_sweep(spec, root, workers=workers, fuse=fuse, log=lambda line: None)
        wall = time.perf_counter() - t0
        table = report.table
        columns = ["run_id", "lr", "batch_size", "tokens", "loss", "diverged", "flops"]
        runs = [] if table is None else table[columns].to_dict("records")
        starts = [e for e in RunStore(root).events() if e.get("event") == "start"]
        sizes: dict[str, int] = {}
        for e in starts:
            sizes[e["group"]] = e.get("runs", 1)
        cuda = torch.cuda.is_available()
        out.put(
            {
                "fuse": fuse,
                "wall_s": wall,
                "planned": report.planned,
                "skipped": report.skipped,
                "failed": [list(f) for f in report.failed],
                "runs": [
                    {
                        "run_id": str(r["run_id"]),
                        "lr": float(r["lr"]),
                        "batch_size": int(r["batch_size"]),
                        "tokens": int(r["tokens"]),
                        "loss": float(r["loss"]),
                        "diverged": bool(r["diverged"]),
                        "flops": float(r["flops"]),
                    }
                    for r in runs
                ],
                "group_sizes": sorted(sizes.values(), reverse=True),
                "rss_start_bytes": rss_start,
                "peak_rss_self_bytes": _maxrss_bytes(resource.RUSAGE_SELF),
                "peak_rss_children_bytes": _maxrss_bytes(resource.RUSAGE_CHILDREN),
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "device": "cuda" if cuda else "cpu",
                "gpu": torch.cuda.get_device_name(0) if cuda else None,
                "gpus": torch.cuda.device_count() if cuda else 0,
            }
        )
    except BaseException:
        out.put({"error": traceback.format_exc()})


def run_variant(spec: SweepSpec, root: Path, fuse: bool, workers: int) -> dict[str, Any]:
    """Run one variant in a spawned child process and return its measurements."""
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    child = ctx.Process(target=_child, args=(spec, str(root), fuse, workers, results))
    child.start()
    while True:
        try:
            got = results.get(timeout=1.0)
            break
        except queue.Empty:
            if child.is_alive():
                continue
            try:  # it may have sent its result just before exiting
                got = results.get(timeout=5.0)
                break
            except queue.Empty:
                raise RuntimeError(
                    f"the {'fused' if fuse else 'unfused'} child exited with code {child.exitcode} "
                    "and sent no result (killed for memory?)"
                ) from None
    child.join()
    if "error" in got:
        raise RuntimeError(f"the {'fused' if fuse else 'unfused'} sweep failed:\n{got['error']}")
    got["peak_rss_bytes"] = max(got["peak_rss_self_bytes"], got["peak_rss_children_bytes"])
    got["n_runs"] = len(got["runs"])
    got["groups"] = len(got["group_sizes"])
    got["flops"] = sum(r["flops"] for r in got["runs"])
    got["flops_per_s"] = got["flops"] / got["wall_s"]
    got["root"] = str(root)
    return got


def agreement(unfused: dict[str, Any], fused: dict[str, Any]) -> dict[str, Any]:
    """Run-by-run comparison of the two runs tables, joined on run_id."""
    a = {r["run_id"]: r for r in unfused["runs"]}
    b = {r["run_id"]: r for r in fused["runs"]}
    common = sorted(a.keys() & b.keys())
    rel, per_run = [], []
    for rid in common:
        la, lb = a[rid]["loss"], b[rid]["loss"]
        diff = abs(lb - la) / abs(la) if math.isfinite(la) and math.isfinite(lb) else None
        if diff is not None:
            rel.append(diff)
        per_run.append(
            {
                "run_id": rid,
                "lr": a[rid]["lr"],
                "batch_size": a[rid]["batch_size"],
                "tokens": a[rid]["tokens"],
                "loss_unfused": la if math.isfinite(la) else None,
                "loss_fused": lb if math.isfinite(lb) else None,
                "rel_diff": diff,
                "diverged_unfused": a[rid]["diverged"],
                "diverged_fused": b[rid]["diverged"],
            }
        )
    worst = max((r for r in per_run if r["rel_diff"] is not None), key=lambda r: r["rel_diff"], default=None)
    return {
        "joined": len(common),
        "only_unfused": len(a.keys() - b.keys()),
        "only_fused": len(b.keys() - a.keys()),
        "finite_in_both": len(rel),
        "max_rel_diff": max(rel) if rel else None,
        "median_rel_diff": statistics.median(rel) if rel else None,
        "verdicts_equal": sum(a[r]["diverged"] == b[r]["diverged"] for r in common),
        "diverged_unfused": sum(a[r]["diverged"] for r in common),
        "diverged_fused": sum(b[r]["diverged"] for r in common),
        "worst": worst,
        "runs": per_run,
    }


def _fresh(path: Path) -> Path:
    if path.exists() and any(path.iterdir()):
        raise SystemExit(f"{path} is not empty: a sweep there would reuse finished runs; pick another --keep")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _sizes(group_sizes: list[int]) -> str:
    if not group_sizes:
        return "-"
    lo, hi = min(group_sizes), max(group_sizes)
    return f"{len(group_sizes)} ({lo})" if lo == hi else f"{len(group_sizes)} ({lo}-{hi})"


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1e}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", choices=["demo", *GRIDS], default="demo")
    parser.add_argument("--widths", type=int, nargs="+", default=None, help="only these widths of the grid")
    parser.add_argument("--batches", type=int, nargs="+", default=None, help="only these batch sizes")
    parser.add_argument("--workers", type=int, default=1, help="run_sweep workers (CPU; one per GPU on CUDA)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the two sweep dirs under DIR")
    parser.add_argument("--json", type=Path, default=None, help="also write the measurements here")
    args = parser.parse_args()

    spec = grid_spec(args.grid, args.widths, args.batches)
    runs = spec.run_kwargs()
    widths = sorted({w for w, _ in spec.model.shapes})
    depths = sorted({d for _, d in spec.model.shapes})
    print(
        f"fused_sweep: run_sweep(fuse=False) vs run_sweep(fuse=True), workers {args.workers}, "
        f"grid {args.grid!r} ({spec.name}): {len(runs)} runs"
    )
    print(
        f"  widths {widths} (depth {'/'.join(map(str, depths))}), {len(spec.lrs)} lrs "
        f"{spec.lrs[0]:.2g}..{spec.lrs[-1]:.2g}, batch {list(spec.batch_sizes)} tokens, "
        f"seq_len {spec.recipe.seq_len}, budgets {list(spec.budgets) or list(spec.tokens_per_param)}"
    )
    sys.stdout.flush()

    base = args.keep or Path(tempfile.mkdtemp(prefix="fused_sweep-"))
    roots = {name: _fresh(base / f"{args.grid}-{name}") for name in ("unfused", "fused")}
    load = os.getloadavg()[0]
    measured = {}
    try:
        for name, fuse in (("unfused", False), ("fused", True)):
            root = roots[name]
            print(f"  {name}: running in {root}", flush=True)
            measured[name] = run_variant(spec, root, fuse, args.workers)
            print(f"  {name}: {measured[name]['wall_s']:.1f} s", flush=True)
    finally:
        if args.keep is None:
            import shutil

            shutil.rmtree(base, ignore_errors=True)

    u, f = measured["unfused"], measured["fused"]
    device = u["device"] + (f" ({u['gpus']} x {u['gpu']})" if u["gpu"] else "")
    pool = (
        f"; pool workers {max(1, (os.cpu_count() or 1) // args.workers)} threads each"
        if args.workers > 1
        else ""
    )
    print(
        f"machine: {os.cpu_count()} CPUs, torch {u['torch']}, {u['threads']} torch threads in the child"
        f"{pool}, device {device}; load average {load:.1f} before the runs"
    )
    if u["device"] == "cuda":
        print("  (on CUDA run_sweep uses one worker per visible GPU and ignores --workers)")
    print()
    print(
        f"{'variant':<8} {'runs':>5} {'groups':>11} {'wall s':>8} {'FLOPs':>9} {'FLOP/s':>9} "
        f"{'peak RSS':>10} {'at start':>10}"
    )
    for name, m in measured.items():
        print(
            f"{name:<8} {m['n_runs']:>5} {_sizes(m['group_sizes']):>11} {m['wall_s']:>8.1f} "
            f"{m['flops']:>9.3g} {m['flops_per_s']:>9.3g} {m['peak_rss_bytes'] / 2**20:>6.0f} MiB"
            f" {m['rss_start_bytes'] / 2**20:>6.0f} MiB"
        )
    for name, m in measured.items():
        if m["failed"] or m["skipped"]:
            print(f"  {name}: {len(m['failed'])} failed, {m['skipped']} skipped (not fresh?)")
            for rid, err in m["failed"][:3]:
                print(f"    {rid}: {err}")

    agree = agreement(u, f)
    speedup = u["wall_s"] / f["wall_s"]
    print()
    print(
        f"fused / unfused: {speedup:.2f}x faster (wall {u['wall_s']:.0f} s -> {f['wall_s']:.0f} s), "
        f"losses agree: max rel diff {_fmt(agree['max_rel_diff'])}, "
        f"median {_fmt(agree['median_rel_diff'])}, "
        f"divergence verdicts {agree['verdicts_equal']}/{agree['joined']} equal"
    )
    if agree["only_unfused"] or agree["only_fused"]:
        print(f"  runs in one table only: unfused {agree['only_unfused']}, fused {agree['only_fused']}")
    print(
        f"  diverged: unfused {agree['diverged_unfused']}, fused {agree['diverged_fused']}; "
        f"loss compared on {agree['finite_in_both']} runs finite in both"
    )
    if agree["worst"]:
        w = agree["worst"]
        print(
            f"  largest loss gap {w['rel_diff']:.1e}: lr {w['lr']:.3g}, batch {w['batch_size']}, "
            f"tokens {w['tokens']} (loss {w['loss_unfused']:.5f} unfused, {w['loss_fused']:.5f} fused)"
        )
    if args.keep:
        print(f"  sweep dirs: {u['root']}, {f['root']}")

    if args.json:
        summary = dict(measured)
        for m in summary.values():
            m.pop("runs")
        payload = {
            "grid": args.grid,
            "spec": spec.name,
            "widths": args.widths,
            "batches": args.batches,
            "workers": args.workers,
            "cpu_count": os.cpu_count(),
            "speedup": speedup,
            "variants": summary,
            "agreement": agree,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=1, allow_nan=False) + "\n", encoding="utf-8")
        print(f"  measurements: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
