"""The shipped reference sweeps (data/): real μP and SP proxy runs of scalelaw's own trainer."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

import scalelaw

DATA = Path(__file__).resolve().parents[1] / "data"
SHARED_BUDGET = 393216  # the token budget both sweeps ran


@pytest.fixture(scope="module")
def tables():
    return {name: scalelaw.read_runs(DATA / f"reference_{name}.parquet") for name in ("mup", "sp")}


def test_reference_tables_match_their_specs(tables):
    from scalelaw.sweepspec import load_spec

    for name, runs in tables.items():
        spec = load_spec(DATA.parent / "sweeps" / f"reference_{name}.toml")
        assert set(runs["parametrization"]) == {spec.model.parametrization}
        assert set(runs["width"]) == {w for w, _ in spec.model.shapes}
        assert set(runs["tokens"]) == set(spec.budgets)
        assert set(spec.batch_sizes) <= set(runs["batch_size"])
        assert all(np.isclose(runs["lr"], lr, rtol=1e-9).any() for lr in spec.lrs)
        assert not runs["diverged"].any()


def test_mup_keeps_the_best_lr_at_fixed_batch_size_across_width(tables):
    # The point of μP: across 8x in width (64x in N), at fixed batch size and budget,
    # lr* ∝ N^alpha with |alpha| <= 0.1. The SP control on the same shapes moves down.
    mup, sp = (scalelaw.fit_transfer(tables[name]) for name in ("mup", "sp"))
    assert abs(mup.exponent) <= 0.1
    assert mup.ci[0] < 0 < mup.ci[1]
    assert sp.exponent < -0.1 and sp.ci[1] < 0
    assert sp.exponent < mup.ci[0]
    for result in (mup, sp):
        assert result.rows.loc[result.rows["used"], "params"].nunique() == 4 and result.n_used >= 8


def best_loss_by_width(runs) -> dict[int, float]:
    """Best loss per width over the grid both sweeps ran (the larger budget, μP's lrs)."""
    lrs = scalelaw.read_runs(DATA / "reference_mup.parquet")["lr"].unique()
    shared = runs[
        (runs["tokens"] == SHARED_BUDGET)
        & runs["batch_size"].isin([128, 256, 512])
        & np.isclose(runs["lr"].to_numpy()[:, None], lrs[None, :], rtol=1e-9).any(axis=1)
    ]
    return {int(w): float(g["loss"].min()) for w, g in shared.groupby("width")}


def test_wider_is_better_under_mup_and_less_so_under_sp(tables):
    # The μP hallmark (TP5): with hyperparameters tuned on one grid, loss improves
    # monotonically with width. Under SP the same grid serves wide models worse.
    mup, sp = best_loss_by_width(tables["mup"]), best_loss_by_width(tables["sp"])
    widths = sorted(mup)
    assert widths == [32, 64, 128, 256] == sorted(sp)
    assert mup[32] == pytest.approx(sp[32], abs=1e-6)  # μP and SP are one model at the base width
    assert all(mup[a] > mup[b] for a, b in itertools.pairwise(widths))
    assert sp[256] > mup[256] + 0.02


def test_reference_report_shows_the_transfer_exponent(tmp_path):
    from scalelaw.cli import main

    out = tmp_path / "mup.html"
    assert main(["report", str(DATA / "reference_mup.parquet"), "--n-boot", "20", "--out", str(out)]) == 0
    transfer = scalelaw.fit_transfer(scalelaw.read_runs(DATA / "reference_mup.parquet"))
    assert f"lr* ∝ N^{transfer.exponent:+.3f}" in out.read_text()
