"""The HTML report: embedded PNGs that are not blank, targets with intervals, warnings."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
from matplotlib import image

import scalelaw
from scalelaw.report import (
    frontier_figure,
    group_warnings,
    hyperparameter_laws,
    render_report,
    report_inputs,
)
from scalelaw.synthetic import make_runs


def images(text: str) -> list[np.ndarray]:
    tags = re.findall(r"<img [^>]*>", text)
    srcs = [re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', t) for t in tags]
    assert all(srcs), "every <img> must be an embedded PNG data URI"
    return [image.imread(io.BytesIO(base64.b64decode(s.group(1))), format="png") for s in srcs]


@pytest.fixture(scope="module")
def report(synthetic_runs, synthetic_law):
    inputs = report_inputs(synthetic_runs, synthetic_law, [(7e9, 1.4e12), (1e9, 2e10)], seq_len=4096)
    return render_report(synthetic_runs, synthetic_law, **inputs)


def test_every_image_is_an_embedded_png_that_is_not_blank(report):
    pictures = images(report)
    assert len(pictures) == 6  # no μTransfer figure: the synthetic cells share no batch sizes
    assert "μTransfer: optimal lr at fixed batch size" in report and "not available" in report
    for picture in pictures:
        assert picture.shape[0] > 200 and picture.shape[1] > 300
        assert picture[..., :3].std() > 0.05  # not a blank canvas
    assert "http://" not in report and "https://" not in report  # nothing fetched to view it


def test_every_target_appears_with_numbers_and_intervals(report, synthetic_law):
    for n, d in [(7e9, 1.4e12), (1e9, 2e10)]:
        p = synthetic_law.predict(n, d, seq_len=4096)
        block = re.search(
            rf"<h3>N = {re.escape(f'{n:.3g}')} params, D = {re.escape(f'{d:.3g}')} tokens</h3>(.*?)</table>",
            report,
            re.S,
        )
        assert block, f"no prediction table for N={n:.3g}, D={d:.3g}"
        rows = dict(re.findall(r"<tr><th>([^<]*)</th>(.*?)</tr>", block.group(1)))
        lr_row = rows["peak learning rate"]
        assert f"<td>{p.lr:.3g}</td>" in lr_row
        assert f"[{p.lr_interval[0]:.3g}, {p.lr_interval[1]:.3g}]" in lr_row
        assert f"<td>{p.batch_size:.3g}</td>" in rows["batch size (tokens)"]
        assert f"<td>{p.batch_size_seqs}</td>" in rows["batch size (seqs of 4096)"]
        assert f"<td>{p.loss:.4f}</td>" in rows["loss (nats/token)"]


def test_mu_transfer_section_states_the_fixed_batch_exponent():
    runs = scalelaw.validate_runs(make_runs(seed=2, shared_batch_grid=True))
    law = scalelaw.fit(runs, n_boot=5, loss_law=False)
    text = render_report(runs, law, **report_inputs(runs, law))
    transfer = scalelaw.fit_transfer(runs)
    assert "Compute-optimal frontier" not in text  # no loss law, no frontier
    assert f"lr* ∝ N^{transfer.exponent:+.3f} [{transfer.ci[0]:+.3f}, {transfer.ci[1]:+.3f}]" in text
    assert len(images(text)) == 6


def test_unbracketed_cell_gives_a_visible_warning():
    runs = scalelaw.validate_runs(make_runs(seed=5, lr_steps=range(-8, -1)))
    law = scalelaw.fit(runs, n_boot=5, loss_law=False)
    text = render_report(runs, law, **report_inputs(runs, law))
    # One grouped line for the 12 cells, each cell named once, not 12 repeated warnings.
    line = re.search(
        r"<div class='warn'>12 cells: optimum on the largest lr swept \([^)]*\), not bracketed; "
        r"extend the lr grid upward \(cells: ([^<]*)\)</div>",
        text,
    )
    assert line and len(line.group(1).split("; ")) == 12
    assert "<div class='warn'>optimum not bracketed in cell" not in text
    assert "[lower bound]" in text  # the lr law is censored: a lower bound on lr*


def test_report_cli_on_the_example_table(tmp_path, capsys):
    from scalelaw.cli import main

    out = tmp_path / "r.html"
    assert (
        main(
            ["report", "data/example_runs.csv", "--target", "7e9,1.4e12", "--n-boot", "20", "--out", str(out)]
        )
        == 0
    )
    text = out.read_text()
    assert len(images(text)) == 6 and "7e+09" in text  # with the frontier of its loss law


def _section_ids(text: str) -> list[str]:
    return re.findall(r"<section id='([^']+)'", text)


def test_the_report_opens_with_the_verdict_then_the_prediction(synthetic_runs, synthetic_law):
    lead = "<p><b>Verdict:</b> regret 0.12% &lt; 0.5%: <em>verified</em></p>"
    text = render_report(
        synthetic_runs,
        synthetic_law,
        **report_inputs(synthetic_runs, synthetic_law, [(1e9, 2e10)]),
        lead_html=lead,
    )
    assert _section_ids(text)[:2] == ["verification", "prediction"]
    body = text.split("<body>", 1)[1]
    assert body.index(lead) < body.index("<section id='prediction'>") < body.index("<h3>N = 1e+09 params")
    assert body.index(lead) < body.index("<h2>Warnings</h2>") and body.index("<img") > body.index(
        "<h3>N = 1e+09"
    )
    # The coefficients appear once, as a table (no text summary repeating them).
    assert "<pre>" not in text and "std err" not in text and text.count("exp_N") == 2  # lr, batch


def test_without_a_lead_the_prediction_comes_first(report):
    assert _section_ids(report)[0] == "prediction" and "id='verification'" not in report
    body = report.split("<body>", 1)[1]
    assert body.index("<section id='prediction'>") < body.index("<h3>N = 7e+09") < body.index("<h2>Warnings")


def test_no_pre_block_without_wrapping(report):
    css = re.search(r"<style>(.*?)</style>", report, re.S).group(1)
    if "<pre" in report:
        assert re.search(r"pre\{[^}]*white-space:\s*pre-wrap", css)
    assert re.search(r"\.warn[^{]*\{[^}]*overflow-wrap:\s*anywhere", css)


def test_group_warnings_lists_each_kind_once_with_its_cells():
    cells = [f"N={n:.3g}, D=1.31e+05" for n in (2.66e4, 1e5, 4.01e5, 1.58e6, 6.3e6, 2.5e7)]
    edge = (
        "optimum not bracketed in cell {}: the best run is at the smallest batch-size swept "
        "(128 tokens); extend the batch-size grid downward"
    )
    lr_edge = (
        "optimum not bracketed in cell {}: the best run is at the largest lr swept (0.0123); "
        "extend the lr grid upward"
    )
    warnings = [edge.format(c) for c in cells[:5]]
    warnings.append(lr_edge.format(cells[5]) + "; " + edge.format(cells[5]))  # one cell, both edges
    warnings += ["left out 3 of 90 runs as diverged (3 NaN/inf loss)"] * 2
    warnings += [
        "target N=7e+09, D=1.4e+12: the lr is not determined at this target",
        "target N=1e+09, D=2e+10: the lr is not determined at this target",
    ]
    grouped = group_warnings(warnings)
    assert grouped == [
        "6 cells: optimum on the smallest batch-size swept (128 tokens), not bracketed; extend the "
        f"batch-size grid downward (cells: {'; '.join(cells)})",
        lr_edge.format(cells[5]),  # a kind met once keeps its own words
        "left out 3 of 90 runs as diverged (3 NaN/inf loss)",
        "2 targets: the lr is not determined at this target (targets: N=7e+09, D=1.4e+12; N=1e+09, D=2e+10)",
    ]
    values = [edge.format(cells[0]), edge.format(cells[1]).replace("(128 tokens)", "(256 tokens)")]
    assert "(128 to 256 tokens)" in group_warnings(values)[0]
    assert group_warnings([]) == []


@pytest.fixture(scope="module")
def one_edge():
    """Every cell's best run at 741455 tokens, the smallest batch swept: a degenerate law.
    Six cells (two sizes) keep the report quick to render."""
    runs = make_runs(seed=3, sizes=(2e7, 3e8), shared_batch_grid=True, batch_steps=range(-4, 9))
    runs = scalelaw.validate_runs(runs[runs["batch_size"].isin([741455, 1048576, 1482910])])
    return runs, scalelaw.fit(runs, method="optima", n_boot=10, loss_law=False)


def test_a_collapsed_figure_says_so_instead_of_a_hair_thin_axis(one_edge):
    _, law = one_edge
    fig = hyperparameter_laws(law.optima, law, [law.predict(7e9, 1.4e12)])
    batch_axes = fig.axes[2:4]
    for ax in batch_axes:
        texts = [t.get_text() for t in ax.texts]
        assert any(t.startswith("all cells' optima at B = 7.41e+05 tokens") for t in texts), texts
        low, high = ax.get_ylim()
        assert high / low >= 8  # a readable range, not 7.41e5 +- 0.1%
        assert ax.get_title() == "law: upper bound"
    assert not any("all cells' optima" in t.get_text() for t in fig.axes[0].texts)  # lr varies


def test_a_censored_report_shows_the_bound_first(one_edge):
    runs, law = one_edge
    text = render_report(runs, law, **report_inputs(runs, law, [(7e9, 1.4e12)]))
    prediction = text.split("<section id='prediction'>", 1)[1].split("</section>", 1)[0]
    assert "<b class='nd'>≤ 7.41e+05</b>" in prediction and "one-sided (upper bound)" in prediction
    assert "7.41e+05, 7.41e+05" not in text
    assert text.count("6 cells: optimum on the smallest batch-size swept (7.41e+05 tokens)") == 1
    assert len(images(text)) == 6  # shared batch grid: the μTransfer figure too


def test_the_verification_section_shows_predicted_against_measured(synthetic_verification):
    from scalelaw.report import verification_html

    v = synthetic_verification
    page = verification_html(v)
    assert v.verdict() in page.replace("&#x27;", "'") and "Predicted against measured (80% intervals)" in page
    rows = re.findall(r"<tr>\s*<td>(\w+)</td>(.*?)</tr>", page[page.index("Predicted against") :], re.S)
    cells = {q: [float(x) for x in re.findall(r"<td>([^<]+)</td>", rest)] for q, rest in rows}
    assert list(cells) == ["lr", "batch_size", "loss"]  # estimate, std_err, ci_lower, ci_upper, measured
    assert cells["batch_size"][-1] == pytest.approx(v.best_batch_size, rel=1e-3)
    assert cells["lr"][0] == pytest.approx(v.prediction.lr, rel=1e-3)
    assert cells["lr"][2] < cells["lr"][0] < cells["lr"][3]


def test_the_report_shows_the_compute_optimal_frontier(report, synthetic_law):
    from scalelaw.plan import plan

    section = re.search(r"<h2>Compute-optimal frontier</h2>\s*(<img [^>]*>)", report)
    assert section, "no frontier figure after its heading"
    assert 'alt="compute-optimal frontier"' in section.group(1)
    (picture,) = images(section.group(1))
    assert picture.shape[0] > 200 and picture.shape[1] > 600 and picture[..., :3].std() > 0.05
    assert report.index("<h2>Loss law</h2>") < report.index("<h2>Compute-optimal frontier</h2>")
    # the figure draws the planner's numbers: loss, N* and D* against C, on log axes
    fig = frontier_figure(synthetic_law, [synthetic_law.predict(7e9, 1.4e12)])
    left, right = fig.axes
    assert all(ax.get_xscale() == "log" and ax.get_yscale() == "log" for ax in (left, right))
    lines = {line.get_label(): line for ax in (left, right) for line in ax.get_lines()}
    c = lines["optimal loss L*(C)"].get_xdata()
    for i in (0, len(c) // 2, len(c) - 1):
        p = plan(float(c[i]), synthetic_law)
        assert lines["optimal loss L*(C)"].get_ydata()[i] == pytest.approx(p.loss)
        assert lines["N* (non-embedding params)"].get_ydata()[i] == pytest.approx(p.model_size)
        assert lines["D* (tokens)"].get_ydata()[i] == pytest.approx(p.tokens)
    assert max(c) > 6 * 7e9 * 1.4e12  # reaches the target's compute
    assert "N* ∝ C^" in right.get_title()
