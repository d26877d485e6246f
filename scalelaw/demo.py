"""``scalelaw demo``: the whole product in one command, sized for a 2-core CPU.

A small μP sweep on the embedded corpus -> the runs table -> fitted laws -> a
prediction for a large target -> ``report.html``. Re-running reuses finished runs.
``--size`` picks a bigger ladder for a GPU box.
"""

from __future__ import annotations

from pathlib import Path

from scalelaw.fit import fit_or_two_stage
from scalelaw.predict import predict
from scalelaw.runs import read_runs
from scalelaw.sweepspec import cost, parse_spec
from scalelaw.transfer import fit_transfer

_COMMON = """
[model]
parametrization = "mup"
widths = {widths}
depths = [2]
base_width = {base}
base_depth = 2
head_dim = {head_dim}
[lr]
center = {lr}
step = 1.4142135623730951
count = {lr_count}
[batch]
sizes = {batches}
[tokens]
budgets = {budgets}
[recipe]
schedule = "wsd"
seq_len = {seq_len}
[limits]
max_runs = 500
"""

SIZES = {
    # 4 cells x 9 runs, under a minute: tests the pipeline; too few cells for a loss law.
    "tiny": dict(
        widths=[32, 64],
        base=32,
        head_dim=16,
        lr=6e-3,
        lr_count=3,
        batches=[512, 1024, 2048],
        budgets=[8192, 16384],
        seq_len=64,
    ),
    # 6 cells x 15 runs: about 7 minutes on 2 CPU cores. Budgets this small want
    # batches of a sequence or two (see data/README.md), so the batch grid starts at 2
    # sequences per step and the optimal batch still comes out unbracketed.
    "small": dict(
        widths=[32, 64, 128],
        base=32,
        head_dim=16,
        lr=3e-3,
        lr_count=5,
        batches=[128, 256, 512],
        budgets=[32768, 98304],
        seq_len=64,
    ),
    # 8 cells x 15 runs of up to 25M tokens: for one GPU (about an hour on an H100).
    "gpu": dict(
        widths=[256, 512, 1024, 2048],
        base=256,
        head_dim=64,
        lr=6e-3,
        lr_count=5,
        batches=[65536, 131072, 262144],
        budgets=[8388608, 25165824],
        seq_len=512,
    ),
}


def demo_spec(size: str = "small"):
    if size not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}, got {size!r}")
    return parse_spec(f'name = "demo-{size}"\n' + _COMMON.format(**SIZES[size]), source=f"demo:{size}")


def run_demo(
    out: str | Path = "runs/demo",
    size: str = "small",
    workers: int | None = None,
    target: tuple[float, float] = (7e9, 1.4e12),
    seq_len: int = 4096,
    log=print,
) -> Path:
    """Run the demo; returns the path of the report."""
    from scalelaw.report import write_report
    from scalelaw.sweep import run_sweep

    spec = demo_spec(size)
    runs = spec.run_kwargs()
    price = cost(runs, "cpu", 1.0)
    out = Path(out)
    log(f"scalelaw demo ({size}): a μP sweep of {len(runs)} runs on the embedded corpus -> {out}")
    log(
        f"  widths {[w for w, _ in spec.model.shapes]} (depth 2), lr {spec.lrs[0]:.2g}..{spec.lrs[-1]:.2g} "
        f"(x2^0.5), batch {list(spec.batch_sizes)} tokens, budgets {list(spec.budgets)} tokens"
    )
    log(f"  {price.flops:.2g} training FLOPs; finished runs in {out} are reused")
    report = run_sweep(spec, out, workers=workers, log=log)
    if report.failed:
        log(f"  {len(report.failed)} run(s) failed: {report.failed[0][1]}")
    table = read_runs(out / "runs.parquet")
    law = fit_or_two_stage(table, name=f"demo ({size}) μP proxies")
    if law.method != "surface":
        log(f"  {law.notes[0]}")
    law.to_json(out / "law.json")
    prediction = predict(*target, law=law, seq_len=seq_len)
    path = write_report(
        table, law, out / "report.html", targets=[target], seq_len=seq_len, title=f"scalelaw demo ({size})"
    )
    log("")
    log(law.summary())
    try:
        log("\nμTransfer check: " + fit_transfer(table).summary())
    except ValueError as err:
        log(f"\nμTransfer check not available: {err}")
    log("")
    log(prediction.table())
    log(f"\nreport: {path.resolve()}\nlaw: {(out / 'law.json').resolve()}")
    return path
