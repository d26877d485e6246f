from __future__ import annotations

import time
from pathlib import Path

import pytest

import scalelaw
from scalelaw.synthetic import make_runs

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
STEPLAW = SHARED / "steplaw" / "dense_lr_bs_loss.csv"
CHINCHILLA = SHARED / "chinchilla" / "epoch_chinchilla_svg_extracted_data.csv"

# A sweep spec of 8 tiny runs (2 widths x 2 lrs x 2 batch sizes), for sweep and spec tests.
SMALL_SPEC = """
name = "test"
[model]
widths = [32, 64]
depths = [1]
base_width = 32
head_dim = 16
[lr]
center = 8e-3
step = 2.0
count = 2
[batch]
sizes = [512, 1024]
[tokens]
budgets = [4096]
[recipe]
seq_len = 64
[limits]
max_runs = 50
"""


def wait_for(condition, timeout: float, what: str, poll_s: float = 0.05) -> None:
    """Poll ``condition()`` until it holds; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(poll_s)


@pytest.fixture(scope="session")
def synthetic_runs():
    return scalelaw.validate_runs(make_runs(seed=0))


@pytest.fixture(scope="session")
def synthetic_law(synthetic_runs):
    return scalelaw.fit(synthetic_runs, n_boot=60, seed=1)


@pytest.fixture(scope="session")
def synthetic_verification(synthetic_law):
    """The synthetic law's prediction at (1.2e9, 6e10), beyond its fitted range, scored
    on the default 3 x 3 grid of runs whose losses are the synthetic landscape's."""
    import pandas as pd

    from scalelaw.synthetic import landscape
    from scalelaw.verify import score, verification_grid

    n, d = 1.2e9, 6e10
    prediction = synthetic_law.predict(n, d, seq_len=1024)
    lrs, batches = verification_grid(prediction, seq_len=1024)
    rows = [
        {"run_id": f"{lr}-{b}", "params": int(n), "tokens": int(d), "lr": lr, "batch_size": b}
        for lr in lrs
        for b in batches
    ]
    table = pd.DataFrame(rows)
    table["loss"], table["diverged"] = landscape(n, d, table["lr"], table["batch_size"]), False
    return score(table, prediction, width=4096, depth=6)


@pytest.fixture(scope="session")
def steplaw_runs():
    if not STEPLAW.is_file():
        pytest.skip(f"Step Law table not found at {STEPLAW} (../shared is absent)")
    return scalelaw.read_runs(STEPLAW, table_format="steplaw")
