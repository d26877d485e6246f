"""Science checks on the real Step Law table (skipped when ../shared is absent)."""

from __future__ import annotations

import numpy as np
import pytest

import scalelaw

pytestmark = pytest.mark.science


@pytest.fixture(scope="module")
def all_cells_law(steplaw_runs):
    return scalelaw.fit(steplaw_runs, n_boot=50)


def test_exponents_agree_with_step_law(all_cells_law):
    # Published (Li et al. 2025): lr = 1.79 N^-0.713 D^0.307, B = 0.58 D^0.571.
    law = all_cells_law
    assert law.lr.exponents["N"] == pytest.approx(-0.713, abs=0.1)
    assert law.lr.exponents["D"] == pytest.approx(0.307, abs=0.1)
    assert law.batch_size.exponents["D"] == pytest.approx(0.571, abs=0.1)
    assert law.notes[0] == "left out 181 of 1911 runs as diverged (181 loss > 1.5x cell best)"
    assert law.optima["bracketed"].all()


def test_the_default_beats_the_band_baseline_and_the_published_law_extrapolating_in_n(steplaw_runs):
    """Leave the 1, 2 and 3 largest model sizes out (16 held-out cells): the default's
    mean and max regret beat the Step Law paper's own band method fitted to the same
    cells, and its published law (which saw every cell). Point predictions only: the
    bootstrap and calibration do not move them."""
    from scalelaw.crossval import crossvalidate, summarize

    def fitted(method):
        return lambda train: scalelaw.fit(train, method=method, n_boot=0, loss_law=False, calibrate=False)

    estimators = {"default": fitted("average"), "band": fitted("band")}
    estimators["published"] = lambda train: scalelaw.get_law("steplaw")
    table = summarize(crossvalidate(steplaw_runs, estimators, schemes=["leave-largest-N-out"]))
    table = table.set_index("estimator")
    assert (table["cells"] == 16).all()
    for other in ("band", "published"):
        assert table.loc["default", "mean_regret_pct"] < table.loc[other, "mean_regret_pct"]
        assert table.loc["default", "max_regret_pct"] < table.loc[other, "max_regret_pct"]
    assert table.loc["default", "mean_regret_pct"] <= 0.10 and table.loc["default", "max_regret_pct"] <= 0.20


def test_shipped_default_law_is_the_fit_of_this_table(steplaw_runs):
    from scalelaw.predict import get_law

    shipped = get_law("default")
    fresh = scalelaw.fit(steplaw_runs, n_boot=0, loss_law=False)
    np.testing.assert_allclose(shipped.lr.params, fresh.lr.params, rtol=1e-6)
    np.testing.assert_allclose(shipped.batch_size.params, fresh.batch_size.params, rtol=1e-6)
