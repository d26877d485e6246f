"""The shipped reference sweeps (data/): real μP and SP proxy runs of scalelaw's own trainer."""

from __future__ import annotations

import itertools
from pathlib import Path

import scalelaw

DATA = Path(__file__).resolve().parents[1] / "data"


def test_reference_tables_match_their_specs():
    from scalelaw.sweepspec import load_spec

    for name in ("mup", "sp"):
        runs = scalelaw.read_runs(DATA / f"reference_{name}.parquet")
        spec = load_spec(DATA.parent / "sweeps" / f"reference_{name}.toml")
        assert set(runs["parametrization"]) == {spec.model.parametrization}
        assert set(runs["width"]) == {w for w, _ in spec.model.shapes}
        assert set(spec.lrs) <= set(runs["lr"]) and set(spec.batch_sizes) <= set(runs["batch_size"])


def test_reference_report_shows_the_unbracketed_batch_sizes():
    # At these token budgets (65k and 197k) the best batch size lies at or below 256
    # tokens, the smallest swept even after two refinement rounds: the report must say so.
    from scalelaw.report import render_report

    runs = scalelaw.read_runs(DATA / "reference_mup.parquet")
    law = scalelaw.fit(runs, method="optima", n_boot=20)
    assert not law.optima["batch_bracketed"].any()
    text = render_report(runs, law)
    assert text.count("extend the batch-size grid downward</div>") >= 6


def best_loss_by_width(name: str) -> dict[int, float]:
    """Best loss per width at 196,608 tokens, over the grid both sweeps share."""
    runs = scalelaw.read_runs(DATA / f"reference_{name}.parquet")
    shared = runs[
        (runs["tokens"] == 196608)
        & runs["batch_size"].isin([512, 1024, 2048])
        & runs["lr"].between(2.9e-3, 1.21e-2)
    ]
    return {int(w): float(g["loss"].min()) for w, g in shared.groupby("width")}


def test_wider_is_better_under_mup_but_not_under_sp():
    # The μP hallmark (TP5): with hyperparameters tuned on the same grid, loss improves
    # monotonically with width; under SP the widest model is worse than the narrowest.
    mup, sp = best_loss_by_width("mup"), best_loss_by_width("sp")
    widths = sorted(mup)
    assert widths == [32, 64, 128, 256] == sorted(sp)
    assert all(mup[a] > mup[b] for a, b in itertools.pairwise(widths))
    assert mup[256] < mup[32] - 0.05
    assert sp[256] > sp[32] + 0.05
