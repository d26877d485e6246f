"""Coordinate check: μP keeps every activation's scale across widths 64..512; SP does not."""

from __future__ import annotations

import pytest

from scalelaw.proxy.coordcheck import coord_check, coord_slopes

WIDTHS = (64, 128, 256, 512)


@pytest.fixture(scope="module")
def slopes():
    return {p: coord_slopes(coord_check(p, widths=WIDTHS, steps=4, seed=0)) for p in ("mup", "sp")}


def test_table_is_tidy():
    table = coord_check("mup", widths=(64, 128), steps=1)
    assert list(table.columns) == ["width", "step", "layer", "rms"]
    assert set(table["layer"]) == {
        "embedding",
        "logits",
        *(f"block{i}.{k}" for i in (0, 1) for k in ("attn", "mlp", "out")),
    }
    assert len(table) == 2 * 2 * 8


def test_mup_activations_are_width_stable(slopes):
    after = slopes["mup"][slopes["mup"]["step"] >= 1]
    assert len(after) == 4 * 8 and after["slope"].notna().all()
    worst = after.loc[after["slope"].abs().idxmax()]
    assert abs(worst["slope"]) <= 0.1, f"{worst['layer']} at step {worst['step']}: slope {worst['slope']:.3f}"


def test_sp_logits_grow_with_width(slopes):
    logits = slopes["sp"].query("layer == 'logits' and step >= 1")
    assert (logits["slope"] >= 0.3).all()
    hidden = slopes["sp"].query("layer == 'block0.mlp' and step >= 2")
    assert (hidden["slope"] >= 0.5).all()
