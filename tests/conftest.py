from __future__ import annotations

from pathlib import Path

import pytest

import scalelaw
from scalelaw.synthetic import make_runs

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
STEPLAW = SHARED / "steplaw" / "dense_lr_bs_loss.csv"
CHINCHILLA = SHARED / "chinchilla" / "epoch_chinchilla_svg_extracted_data.csv"


@pytest.fixture(scope="session")
def synthetic_runs():
    return scalelaw.validate_runs(make_runs(seed=0))


@pytest.fixture(scope="session")
def synthetic_law(synthetic_runs):
    return scalelaw.fit(synthetic_runs, n_boot=60, seed=1)


@pytest.fixture(scope="session")
def steplaw_runs():
    if not STEPLAW.is_file():
        pytest.skip(f"Step Law table not found at {STEPLAW} (../shared is absent)")
    return scalelaw.read_runs(STEPLAW, table_format="steplaw")
