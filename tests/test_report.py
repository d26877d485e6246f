"""The HTML report: embedded PNGs that are not blank, targets with intervals, warnings."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
from matplotlib import image

import scalelaw
from scalelaw.report import render_report
from scalelaw.synthetic import make_runs


def images(text: str) -> list[np.ndarray]:
    tags = re.findall(r"<img [^>]*>", text)
    srcs = [re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', t) for t in tags]
    assert all(srcs), "every <img> must be an embedded PNG data URI"
    return [image.imread(io.BytesIO(base64.b64decode(s.group(1))), format="png") for s in srcs]


@pytest.fixture(scope="module")
def report(synthetic_runs, synthetic_law):
    return render_report(synthetic_runs, synthetic_law, targets=[(7e9, 1.4e12), (1e9, 2e10)], seq_len=4096)


def test_every_image_is_an_embedded_png_that_is_not_blank(report):
    pictures = images(report)
    assert len(pictures) == 5  # no μTransfer figure: the synthetic cells share no batch sizes
    assert "μTransfer: optimal lr at fixed batch size" in report and "not available" in report
    for picture in pictures:
        assert picture.shape[0] > 200 and picture.shape[1] > 300
        assert picture[..., :3].std() > 0.05  # not a blank canvas
    assert "http://" not in report and "https://" not in report  # nothing fetched to view it


def test_every_target_appears_with_numbers_and_intervals(report, synthetic_law):
    for n, d in [(7e9, 1.4e12), (1e9, 2e10)]:
        p = synthetic_law.predict(n, d, seq_len=4096)
        row = re.search(
            rf"<td>{re.escape(f'{n:.3g}')}</td>\s*<td>{re.escape(f'{d:.3g}')}</td>(.*?)</tr>", report, re.S
        )
        assert row, f"no prediction row for N={n:.3g}, D={d:.3g}"
        cells = row.group(1)
        assert f"{p.lr:.3g}" in cells and f"[{p.lr_interval[0]:.3g}, {p.lr_interval[1]:.3g}]" in cells
        assert f"{p.loss:.4f}" in cells and str(p.batch_size_seqs) in cells


def test_mu_transfer_section_states_the_fixed_batch_exponent():
    runs = scalelaw.validate_runs(make_runs(seed=2, shared_batch_grid=True))
    law = scalelaw.fit(runs, n_boot=5, loss_law=False)
    text = render_report(runs, law)
    transfer = scalelaw.fit_transfer(runs)
    assert f"lr* ∝ N^{transfer.exponent:+.3f} [{transfer.ci[0]:+.3f}, {transfer.ci[1]:+.3f}]" in text
    assert len(images(text)) == 6


def test_unbracketed_cell_gives_a_visible_warning():
    runs = scalelaw.validate_runs(make_runs(seed=5, lr_steps=range(-8, -1)))
    law = scalelaw.fit(runs, n_boot=5, loss_law=False)
    text = render_report(runs, law)
    assert re.search(
        r"<div class='warn'>optimum not bracketed in cell N=[^<]*extend the lr grid upward</div>", text
    )


def test_report_cli_on_the_example_table(tmp_path, capsys):
    from scalelaw.cli import main

    out = tmp_path / "r.html"
    assert (
        main(["report", "data/example_runs.csv", "--target", "7e9,1.4e12", "--n-boot", "20", "-o", str(out)])
        == 0
    )
    text = out.read_text()
    assert len(images(text)) == 5 and "7e+09" in text
