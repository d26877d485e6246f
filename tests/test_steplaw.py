"""Science checks on the real Step Law table (skipped when ../shared is absent)."""

from __future__ import annotations

import numpy as np
import pytest

import scalelaw
from scalelaw.optima import iter_cells, regret

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


def test_heldout_regret_beats_the_published_law(steplaw_runs):
    train = steplaw_runs[steplaw_runs["params"] <= 4.3e8]
    law = scalelaw.fit(train, n_boot=0, loss_law=False)
    ours, published = [], []
    for cell, runs in iter_cells(steplaw_runs[steplaw_runs["params"] > 4.3e8]):
        for law_, out in ((law, ours), ("steplaw", published)):
            p = scalelaw.predict(cell["params"], cell["tokens"], law=law_)
            out.append(regret(runs, p.lr, p.batch_size))
    assert len(ours) == 5
    assert np.mean(ours) < np.mean(published)  # the published law saw these cells
    assert np.mean(ours) <= 0.0008 and np.max(ours) <= 0.0015


def test_shipped_default_law_is_the_fit_of_this_table(steplaw_runs):
    from scalelaw.predict import get_law

    shipped = get_law("default")
    fresh = scalelaw.fit(steplaw_runs, n_boot=0, loss_law=False)
    np.testing.assert_allclose(shipped.lr.params, fresh.lr.params, rtol=1e-6)
    np.testing.assert_allclose(shipped.batch_size.params, fresh.batch_size.params, rtol=1e-6)
