"""Figures and the self-contained HTML report. The only module that imports matplotlib.

Every figure function takes DataFrames (a runs table, the per-cell optima of
:func:`scalelaw.optima.cell_optima`) and a law, and returns a matplotlib ``Figure``, so
notebooks can use them directly. :func:`write_report` puts them, with the coefficient
table, the predictions for the targets and every warning, into one HTML file whose
images are embedded PNG data URIs (no network needed to view it).
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from scalelaw.exceptions import InputError, ScalelawError
from scalelaw.laws import HyperparameterLaw
from scalelaw.optima import iter_cells
from scalelaw.predict import Prediction, predict
from scalelaw.results import DEFAULT_ALPHA, level
from scalelaw.runs import divergence_reason
from scalelaw.transfer import TransferFit, fit_transfer
from scalelaw.validate import write_text

MAX_PANELS = 12

_CELL = r"(?P<cell>N=[^,]+, D=[^:;]+)"
_EDGE = re.compile(
    rf"^optimum not bracketed in cell {_CELL}: the best run is at the (?P<side>smallest|largest) "
    r"(?P<what>[\w-]+) swept \((?P<value>[^)]*)\); (?P<fix>.*)$"
)
_PER_CELL = re.compile(rf"^cell {_CELL}: (?P<rest>.*)$")
_PER_TARGET = re.compile(r"^target (?P<cell>N=[^,]+, D=[^:]+): (?P<rest>.*)$")


def _edge_values(values: list[str]) -> str:
    """'128 tokens' for one value, '1.45e+05 to 5.87e+05 tokens' for a range."""
    unit = " tokens" if any(v.endswith(" tokens") for v in values) else ""
    numbers = sorted({float(v.removesuffix(" tokens")) for v in values})
    if len(numbers) == 1:
        return f"{numbers[0]:.3g}{unit}"
    return f"{numbers[0]:.3g} to {numbers[-1]:.3g}{unit}"


def group_warnings(warnings: Sequence[str]) -> list[str]:
    """One line per kind of warning, with the count and the cells (or targets) listed once.

    Recognises the per-cell messages of :mod:`scalelaw.optima` ("optimum not bracketed in
    cell N=..., D=...: the best run is at the smallest batch-size swept (128 tokens);
    extend the batch-size grid downward", several joined by "; " for one cell, and "cell
    N=..., D=...: every run diverged") and the per-target prefix of the report ("target
    N=..., D=...: ..."). Six bracketing messages that differ only in their cell become
    "6 cells: optimum on the smallest batch-size swept (128 tokens); extend the
    batch-size grid downward (cells: N=..., D=...; ...)". A kind met once keeps its
    original text; identical messages appear once. Order: first appearance.
    """
    groups: dict[tuple, dict] = {}
    for message in warnings:
        for part in re.split(r"; (?=optimum not bracketed in cell )", message):
            if m := _EDGE.match(part):
                key = ("edge", m["side"], m["what"], m["fix"])
                where, extra = m["cell"], m["value"]
            elif m := _PER_CELL.match(part):
                key, where, extra = ("cell", m["rest"]), m["cell"], None
            elif m := _PER_TARGET.match(part):
                key, where, extra = ("target", m["rest"]), m["cell"], None
            else:
                key, where, extra = ("plain", part), None, None
            group = groups.setdefault(key, {"where": [], "values": [], "texts": []})
            if where is not None and where not in group["where"]:
                group["where"].append(where)
            if extra is not None:
                group["values"].append(extra)
            if part not in group["texts"]:
                group["texts"].append(part)
    lines = []
    for key, group in groups.items():
        where, kind = group["where"], key[0]
        if kind == "plain" or len(group["texts"]) == 1:
            lines.append(group["texts"][0])
        elif kind == "edge":
            _, side, what, fix = key
            lines.append(
                f"{len(where)} cells: optimum on the {side} {what} swept "
                f"({_edge_values(group['values'])}), not bracketed; {fix} (cells: {'; '.join(where)})"
            )
        elif kind == "cell":
            lines.append(f"{len(where)} cells: {key[1]} (cells: {'; '.join(where)})")
        else:
            lines.append(f"{len(where)} targets: {key[1]} (targets: {'; '.join(where)})")
    return lines


def _colors(n: int):
    return plt.cm.viridis(np.linspace(0.05, 0.9, max(n, 1)))


def _grid(n: int, width: float = 3.2, height: float = 2.6) -> tuple[Figure, np.ndarray]:
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(width * cols, height * rows), squeeze=False, layout="constrained"
    )
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, axes.ravel()


def _err(value, lo, hi) -> np.ndarray:
    """Error-bar lengths (2, n) of intervals [lo, hi] around values. A bootstrap percentile
    interval need not contain the full-data estimate, so lengths are clipped at 0."""
    value, lo, hi = (np.atleast_1d(np.asarray(a, float)) for a in (value, lo, hi))
    return np.maximum(np.stack([value - lo, hi - value]), 0)


def lr_curves(runs: pd.DataFrame, optima: pd.DataFrame) -> Figure:
    """Loss against lr, one panel per token budget, one line per model size (its best
    batch size at each lr): the μTransfer picture. Fitted optima are marked ×."""
    usable = runs[divergence_reason(runs) == ""]
    budgets = sorted(usable["tokens"].unique())[:MAX_PANELS]
    fig, axes = _grid(len(budgets), 4.2, 3.2)
    sizes = sorted(usable["params"].unique())
    colors = dict(zip(sizes, _colors(len(sizes)), strict=True))
    for ax, d in zip(axes, budgets, strict=False):
        for n in sizes:
            cell = usable[(usable["tokens"] == d) & (usable["params"] == n)]
            if cell.empty:
                continue
            curve = cell.groupby("lr")["loss"].min()
            width = f"w={int(cell['width'].iloc[0])}" if "width" in cell else f"N={n:.2g}"
            ax.plot(curve.index, curve.values, "o-", ms=3, color=colors[n], label=f"{width} (N={n:.2g})")
            opt = optima[(optima["tokens"] == d) & (optima["params"] == n)]
            if len(opt) and np.isfinite(opt["lr_opt"].iloc[0]):
                ax.plot(opt["lr_opt"], opt["loss_opt"], "x", ms=9, mew=2, color=colors[n])
        ax.set_xscale("log")
        ax.set_xlabel("peak learning rate")
        ax.set_ylabel("loss (best batch size)")
        ax.set_title(f"D = {d:.3g} tokens", fontsize=10)
        ax.legend(fontsize=7)
    return fig


def landscapes(runs: pd.DataFrame, optima: pd.DataFrame) -> Figure:
    """Per cell: loss over the (lr, batch size) grid, with the fitted optimum and its
    80% bootstrap interval (cross). At most 12 cells."""
    usable = runs[divergence_reason(runs) == ""]
    cells = list(iter_cells(usable))[:MAX_PANELS]
    fig, axes = _grid(len(cells))
    for ax, (key, cell) in zip(axes, cells, strict=False):
        rel = cell["loss"] / cell["loss"].min() - 1
        points = ax.scatter(
            cell["lr"],
            cell["batch_size"],
            c=np.minimum(rel, 0.05) * 100,
            cmap="magma_r",
            s=40,
            vmin=0,
            vmax=5,
        )
        opt = optima[(optima["params"] == key["params"]) & (optima["tokens"] == key["tokens"])]
        if len(opt) and np.isfinite(opt["lr_opt"].iloc[0]):
            o = opt.iloc[0]
            ax.errorbar(
                o["lr_opt"],
                o["batch_size_opt"],
                xerr=_err(o["lr_opt"], o["lr_opt_lo"], o["lr_opt_hi"]),
                yerr=_err(o["batch_size_opt"], o["batch_size_opt_lo"], o["batch_size_opt_hi"]),
                fmt="*",
                color="tab:cyan",
                ms=12,
                mec="k",
                capsize=3,
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        _widen_flat(ax)
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_minor_formatter(NullFormatter())
        ax.tick_params(labelsize=7)
        ax.set_title(f"N={key['params']:.3g}, D={key['tokens']:.3g}", fontsize=9)
        ax.set_xlabel("lr", fontsize=8)
        ax.set_ylabel("batch (tokens)", fontsize=8)
    fig.colorbar(points, ax=list(axes)[: len(cells)], label="loss above cell best (%)", shrink=0.8)
    return fig


def _mark_target(
    ax, x: float, value: float, interval, label: str, bound: str | None = None, determined: bool = True
) -> None:
    """A target: red star, its interval as an error bar, its value written beside it.

    A one-sided prediction is a triangle at its bound (▼ at the top of an upper bound,
    ▲ at the bottom of a lower one) labelled "≤ x" / "≥ x"; an undetermined one keeps its
    error bar when finite and is labelled "not determined"."""
    style = dict(color="crimson", mec="k", ls="none")
    if bound is not None and interval is not None:
        end = interval[1] if bound == "upper" else interval[0]
        ax.plot(x, end, marker="v" if bound == "upper" else "^", ms=11, **style)
        text = f"{'≤' if bound == 'upper' else '≥'} {end:.3g}"
        ax.annotate(
            text,
            (x, end),
            textcoords="offset points",
            xytext=(-8, 6),
            ha="right",
            fontsize=8,
            color="crimson",
        )
        return
    finite = interval is not None and interval[0] > 0 and math.isfinite(interval[1])
    yerr = [[value - interval[0]], [interval[1] - value]] if finite else None
    ax.errorbar(
        x, value, yerr=yerr, fmt="*", ms=13, capsize=4, mfc="crimson" if determined else "none", **style
    )
    text = label if determined else "not determined"
    ax.annotate(
        text, (x, value), textcoords="offset points", xytext=(-8, 6), ha="right", fontsize=8, color="crimson"
    )


def _widen_flat(ax) -> None:
    """Give a log axis whose data span almost nothing a readable range (x/3 to 3x), so
    it is not ticked 1.28e2, 1.285e2, ..."""
    for get, set_, scale in (
        (ax.get_ylim, ax.set_ylim, ax.get_yscale),
        (ax.get_xlim, ax.set_xlim, ax.get_xscale),
    ):
        lo, hi = get()
        if scale() == "log" and lo > 0 and math.log(hi) - math.log(lo) < math.log(1.5):  # no overflow
            mid = math.sqrt(lo * hi)
            set_(mid / 3, mid * 3)
        elif scale() == "linear" and abs(hi - lo) < 1e-9 * max(1.0, abs(lo), abs(hi)):
            set_(lo - 0.1, hi + 0.1)


def _targets_frame(targets: Sequence[Prediction]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "N": p.model_size,
                "D": p.tokens,
                "lr": p.lr,
                "batch_size": p.batch_size,
                "loss": p.loss,
                "lr_int": p.lr_interval,
                "b_int": p.batch_size_interval,
                "loss_int": p.loss_interval,
                "lr_bound": p.lr_bound,
                "b_bound": p.batch_size_bound,
                "lr_det": p.lr_determined,
                "b_det": p.batch_size_determined,
            }
            for p in targets
        ]
    )


def _collapsed_note(optima: pd.DataFrame, col: str, edge_col: str, symbol: str, unit: str) -> str | None:
    """ "all cells' optima at B = 128 tokens (on the grid edge)" when every cell's optimum
    is the same value, else None."""
    values = optima[col].to_numpy(float)
    values = values[np.isfinite(values) & (values > 0)]
    if len(values) < 2 or np.ptp(np.log(values)) > 1e-9:
        return None
    edges = optima[edge_col] if edge_col in optima else pd.Series("", index=optima.index)
    where = ""
    if (edges == "low").all():
        where = "\n(on the grid edge: the smallest swept)"
    elif (edges == "high").all():
        where = "\n(on the grid edge: the largest swept)"
    elif (edges != "").any():
        where = "\n(on the grid edge)"
    return f"all cells' optima at {symbol} = {values[0]:.3g}{unit}{where}"


def hyperparameter_laws(
    optima: pd.DataFrame, law: HyperparameterLaw, targets: Sequence[Prediction] = ()
) -> Figure:
    """lr* and B* against N (one line per D) and against D (one line per N): cell optima
    with 80% error bars, the fitted law with its 80% band, extrapolated to each target
    (stars, with the predicted interval)."""
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5))
    tf = _targets_frame(targets)
    for row, (quantity, part, col, ylabel) in enumerate(
        (
            ("lr", law.lr, "lr_opt", "optimal peak lr"),
            ("batch", law.batch_size, "batch_size_opt", "optimal batch (tokens)"),
        )
    ):
        collapsed = (
            _collapsed_note(optima, "lr_opt", "lr_edge", "lr", "")
            if quantity == "lr"
            else _collapsed_note(optima, "batch_size_opt", "batch_edge", "B", " tokens")
        )
        for c, (xcol, other, xlabel) in enumerate(
            (("params", "tokens", "N (non-embedding params)"), ("tokens", "params", "D (tokens)"))
        ):
            ax = axes[row, c]
            groups = sorted(optima[other].unique())
            colors = _colors(len(groups))
            x_all = list(optima[xcol]) + (list(tf["N" if xcol == "params" else "D"]) if len(tf) else [])
            xs = np.geomspace(min(x_all) / 1.5, max(x_all) * 1.5, 60)
            for g, color in zip(groups, colors, strict=True):
                sub = optima[optima[other] == g]
                lo, hi = sub[f"{col}_lo"], sub[f"{col}_hi"]
                ax.errorbar(
                    sub[xcol],
                    sub[col],
                    yerr=_err(sub[col], lo, hi),
                    fmt="o",
                    color=color,
                    capsize=2,
                    label=f"{'D' if other == 'tokens' else 'N'}={g:.2g}",
                )
                n, d = (xs, g) if xcol == "params" else (g, xs)
                ax.plot(xs, part(n, d), "-", color=color, lw=1)
                band = part.interval(n, d, alpha=DEFAULT_ALPHA, kind="mean")
                if band is not None:
                    ax.fill_between(xs, band[0], band[1], color=color, alpha=0.15)
            for t in tf.itertuples():
                if quantity == "lr":
                    value, interval, bound, det = t.lr, t.lr_int, t.lr_bound, t.lr_det
                else:
                    value, interval, bound, det = t.batch_size, t.b_int, t.b_bound, t.b_det
                x = t.N if xcol == "params" else t.D
                _mark_target(ax, x, value, interval, f"{value:.3g}", bound, det)
            ax.set_xscale("log")
            ax.set_yscale("log")
            _widen_flat(ax)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            if part.status:
                ax.set_title(f"law: {part.status}", fontsize=9, color="crimson")
            if collapsed:
                ax.text(
                    0.5,
                    0.2,
                    collapsed,
                    transform=ax.transAxes,
                    ha="center",
                    va="center",
                    fontsize=8,
                    bbox=dict(boxstyle="round", fc="#fff3cd", ec="#e0a800"),
                )
            ax.legend(fontsize=7)
    fig.suptitle(f"{law.lr.formula()}    {law.batch_size.formula()}", fontsize=9)
    fig.tight_layout()
    return fig


def loss_law(optima: pd.DataFrame, law: HyperparameterLaw, targets: Sequence[Prediction] = ()) -> Figure:
    """Cell optimal losses against N, one line per D, with the fitted loss law, its 80%
    band, and the targets' predicted losses."""
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    if law.loss is None:
        ax.text(0.5, 0.5, "no loss law was fitted", ha="center", va="center", transform=ax.transAxes)
        return fig
    tf = _targets_frame(targets)
    budgets = sorted(optima["tokens"].unique())
    x_all = list(optima["params"]) + (list(tf["N"]) if len(tf) else [])
    xs = np.geomspace(min(x_all) / 1.5, max(x_all) * 1.5, 60)
    for d, color in zip(budgets, _colors(len(budgets)), strict=True):
        sub = optima[optima["tokens"] == d]
        ax.plot(sub["params"], sub["loss_opt"], "o", color=color, label=f"D={d:.2g}")
        ax.plot(xs, law.loss.predict(xs, d), "-", color=color, lw=1)
        band = law.loss.interval(xs, np.full_like(xs, d), alpha=DEFAULT_ALPHA, kind="mean")
        if band is not None:
            ax.fill_between(xs, band[0], band[1], color=color, alpha=0.15)
    for t in tf.itertuples():
        if t.loss is not None:
            _mark_target(ax, t.N, t.loss, t.loss_int, f"{t.loss:.3f} (D={t.D:.2g})")
    ax.set_xscale("log")
    ax.set_xlabel("N (non-embedding params)")
    ax.set_ylabel("optimal loss")
    ax.set_title(law.loss.formula(), fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def frontier_figure(
    law: HyperparameterLaw,
    targets: Sequence[Prediction] = (),
    *,
    optima: pd.DataFrame | None = None,
    compute_range: tuple[float, float] | None = None,
) -> Figure:
    """The loss law's compute-optimal frontier (:func:`scalelaw.plan.frontier`), log axes.

    Left: the optimal loss against compute C = 6ND with its 80% band, the cells' optimal
    losses at their own C (``optima``, default the law's) and the targets' predicted
    losses (stars: off the frontier when their N:D split is not the optimal one). Right:
    N* and D* against C with their 80% bands from the loss law's bootstrap, and the
    targets' N and D. Grey: the compute range the law was fitted on. ``compute_range``:
    (low, high) FLOPs; default from the fitted range to well past the targets.
    """
    from scalelaw.plan import frontier

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    if law.loss is None:
        for ax in axes:
            ax.text(0.5, 0.5, "no loss law was fitted", ha="center", va="center", transform=ax.transAxes)
        return fig
    optima = law.optima if optima is None else optima
    tf = _targets_frame(targets)
    data: list[float] = []
    if law.fit_range:
        (n_lo, n_hi), (d_lo, d_hi) = law.fit_range["N"], law.fit_range["D"]
        data = [6 * n_lo * d_lo, 6 * n_hi * d_hi]
    elif optima is not None and len(optima):
        data = list(6.0 * optima["params"].to_numpy(float) * optima["tokens"].to_numpy(float))
    wanted = data + (list(6.0 * tf["N"] * tf["D"]) if len(tf) else [])
    if compute_range is None:
        lo, hi = (
            (min(wanted) / 3, max(max(data, default=0) * 1e3, max(wanted) * 3)) if wanted else (1e18, 1e25)
        )
    else:
        lo, hi = compute_range
    try:
        table = frontier(law, np.geomspace(lo, hi, 60))
    except ScalelawError as err:  # a loss law without an interior optimum
        for ax in axes:
            ax.text(
                0.5, 0.5, str(err), ha="center", va="center", wrap=True, fontsize=8, transform=ax.transAxes
            )
        return fig
    c = table["compute"]
    left, right = axes
    left.plot(c, table["loss"], "-", color="k", lw=1.5, label="optimal loss L*(C)")
    left.fill_between(c, table["loss_lower"], table["loss_upper"], color="k", alpha=0.12)
    if optima is not None and len(optima) and "loss_opt" in optima:
        left.plot(
            6.0 * optima["params"] * optima["tokens"],
            optima["loss_opt"],
            "o",
            ms=4,
            color="tab:blue",
            label="cell optima",
        )
    for t in tf.itertuples():
        if t.loss is not None:
            _mark_target(left, 6 * t.N * t.D, t.loss, t.loss_int, f"{t.loss:.3f} (N={t.N:.2g}, D={t.D:.2g})")
    for name, color in (("params", "tab:purple"), ("tokens", "tab:green")):
        label = "N* (non-embedding params)" if name == "params" else "D* (tokens)"
        right.plot(c, table[name], "-", color=color, lw=1.5, label=label)
        right.fill_between(c, table[f"{name}_lower"], table[f"{name}_upper"], color=color, alpha=0.15)
    for t in tf.itertuples():
        right.plot(6 * t.N * t.D, t.N, "o", ms=8, mfc="none", color="tab:purple")
        right.plot(6 * t.N * t.D, t.D, "s", ms=8, mfc="none", color="tab:green")
    if len(tf):
        right.plot([], [], "o", mfc="none", color="0.3", label="targets' N (o) and D (□)")
    for ax in axes:
        if data:
            ax.axvspan(min(data), max(data), color="0.85", alpha=0.5, lw=0, zorder=0, label="fitted range")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("compute C = 6ND (FLOPs)")
        ax.legend(fontsize=7)
    for axis in (left.yaxis.set_major_formatter, left.yaxis.set_minor_formatter):
        axis(FuncFormatter(lambda v, _: f"{v:.3g}"))  # 2.4, not 2.4 x 10^0
    left.set_ylabel("loss (nats/token)")
    right.set_ylabel("N*, D*")
    loss = law.loss
    share = loss.beta / (loss.alpha + loss.beta)
    left.set_title(f"{loss.formula()}", fontsize=8)
    right.set_title(f"N* ∝ C^{share:.3f}, D* ∝ C^{1 - share:.3f} ({level(DEFAULT_ALPHA)} bands)", fontsize=9)
    return fig


def residuals(optima: pd.DataFrame, law: HyperparameterLaw) -> Figure:
    """Residuals of every law at the cell optima: log(observed / law) against N."""
    parts = [("lr*", "lr_opt", law.lr), ("B*", "batch_size_opt", law.batch_size)]
    if law.loss is not None:
        parts.append(("loss", "loss_opt", law.loss.predict))
    fig, axes = plt.subplots(1, len(parts), figsize=(4 * len(parts), 3.2), squeeze=False)
    for ax, (name, col, fn) in zip(axes[0], parts, strict=True):
        resid = np.log(
            optima[col].to_numpy(float)
            / fn(optima["params"].to_numpy(float), optima["tokens"].to_numpy(float))
        )
        ax.scatter(optima["params"], resid, c=np.log(optima["tokens"]), cmap="viridis")
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        if np.ptp(resid) < 1e-9:
            ax.set_ylim(-0.1, 0.1)
            ax.text(
                0.5,
                0.85,
                "all residuals 0: every cell has the same optimum",
                transform=ax.transAxes,
                ha="center",
                fontsize=8,
            )
        ax.set_xlabel("N")
        ax.set_ylabel(f"log({name} / law)")
        ax.set_title(f"{name} residuals (rms {np.sqrt(np.mean(resid**2)):.3g})", fontsize=9)
    fig.tight_layout()
    return fig


def lr_transfer(transfer: TransferFit) -> Figure:
    """Optimal lr at fixed batch size against N: one colour per batch size, one marker
    per token budget, lines of the fitted common slope. Hollow: rows left out of the fit
    (optimum on the edge of the row's lr grid)."""
    rows = transfer.rows
    fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    batches = sorted(rows["batch_size"].unique())
    colors = dict(zip(batches, _colors(len(batches)), strict=True))
    markers = dict(zip(sorted(rows["tokens"].unique()), "osD^v<>p*h", strict=False))
    for (d, b), group in rows.groupby(["tokens", "batch_size"]):
        group = group.sort_values("params")
        used = group[group["used"]]
        style = dict(color=colors[b], marker=markers.get(d, "o"), ms=6, ls="none")
        ax.plot(used["params"], used["lr_opt"], label=f"B={b}, D={d:.3g}", **style)
        ax.plot(group.loc[~group["used"], "params"], group.loc[~group["used"], "lr_opt"], mfc="none", **style)
        if len(used) >= 2:
            n = np.geomspace(used["params"].min(), used["params"].max(), 20)
            offset = np.mean(np.log(used["lr_opt"]) - transfer.exponent * np.log(used["params"]))
            ax.plot(n, np.exp(offset) * n**transfer.exponent, color=colors[b], lw=1, alpha=0.7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    _widen_flat(ax)
    ax.set_xlabel("N (non-embedding params)")
    ax.set_ylabel("optimal lr at that batch size")
    lo, hi = transfer.ci
    ax.set_title(
        f"lr* ∝ N^{transfer.exponent:+.3f}, {level(transfer.alpha)} [{lo:+.3f}, {hi:+.3f}] at fixed D and B",
        fontsize=10,
    )
    ax.legend(fontsize=7, ncol=2)
    return fig


def _transfer_section(transfer: TransferFit | str | None) -> list[str]:
    """The μTransfer check, or why the table cannot give one."""
    head = "<h2>μTransfer: optimal lr at fixed batch size against model size</h2>"
    if transfer is None:
        return []
    if isinstance(transfer, str):
        return [head, f"<p>not available: {html.escape(transfer)}</p>"]
    return [
        head,
        f"<p><b>{html.escape(transfer.summary())}</b>. Under μP the best lr at a given batch size "
        "and token budget should not move with width (exponent 0); under the standard "
        "parametrization with Adam it falls towards 1/width (N^-0.5 at fixed depth). This is "
        "not the exponent of the joint optimum lr*(N, D) above, which also follows B*.</p>",
        _img(lr_transfer(transfer), "optimal lr at fixed batch size against N"),
    ]


def figure_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def _img(fig: Figure, alt: str) -> str:
    data = base64.b64encode(figure_png(fig)).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(frame: pd.DataFrame, fmt: str = "{:.4g}") -> str:
    table = frame.to_html(
        index=False, float_format=lambda v: fmt.format(v), border=0, classes="t", na_rep="n/a"
    )
    return f"<div class='scroll'>{table}</div>"


def _lead(text: str, determined: bool) -> str:
    """A prediction cell: bold red when it is a bound or not determined."""
    return html.escape(text) if determined else f"<b class='nd'>{html.escape(text)}</b>"


def _prediction_table(p: Prediction) -> str:
    """One target's prediction: a row per quantity, what to use first (bounds read
    "≤ x", intervals wider than 100x read "not determined"), then its interval."""
    pct = f"{p.confidence:.0%}"
    ext = (
        f"; N {p.extrapolation['N']:.3g}x, D {p.extrapolation['D']:.3g}x outside the fitted range"
        if p.extrapolation
        else ""
    )
    rows = [
        ("peak learning rate", p.display("lr"), p.lr_determined, p.display_interval("lr")),
        (
            "batch size (tokens)",
            p.display("batch_size"),
            p.batch_size_determined,
            p.display_interval("batch_size"),
        ),
        (f"batch size (seqs of {p.seq_len})", p.display_seqs(), p.batch_size_determined, ""),
        ("loss (nats/token)", p.display("loss"), p.loss_determined, p.display_interval("loss")),
    ]
    body = "".join(
        f"<tr><th>{html.escape(label)}</th><td>{_lead(value, det)}</td><td>{html.escape(iv)}</td></tr>"
        for label, value, det, iv in rows
    )
    return (
        f"<div class='target'><h3>N = {p.model_size:.3g} params, D = {p.tokens:.3g} tokens</h3>"
        f"<p class='small'>C = 6ND = {p.compute:.3g} FLOPs{html.escape(ext)}</p>"
        f"<table class='t pred'><thead><tr><th></th><th>use</th><th>{pct} interval</th></tr></thead>"
        f"<tbody>{body}</tbody></table></div>"
    )


def _law_lines(law: HyperparameterLaw) -> str:
    """The fitted formulas, each with its status (upper bound, not determined)."""
    items = []
    for part in (law.lr, law.batch_size):
        status = f" <b class='nd'>[{html.escape(part.status)}]</b>" if part.status else ""
        items.append(
            f"<li><code>{html.escape(part.formula())}</code> ({html.escape(part.unit)}){status}</li>"
        )
    if law.loss is not None:
        items.append(f"<li><code>{html.escape(law.loss.formula())}</code> (nats/token)</li>")
    return f"<ul class='laws'>{''.join(items)}</ul>"


CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
img{max-width:100%;height:auto}table.t{border-collapse:collapse;font-size:0.85em;margin:0.5em 0}
table.t td,table.t th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}
.scroll{overflow-x:auto;max-width:100%}
.warn{background:#fff3cd;border-left:4px solid #e0a800;padding:0.4em 0.8em;margin:0.3em 0}
.warn,p,li{overflow-wrap:anywhere}
pre{white-space:pre-wrap;overflow-wrap:anywhere}
section{margin-bottom:1.5em}#verification{border:2px solid #444;border-radius:6px;padding:0 1em 0.5em}
.nd{color:#b00020}table.pred{font-size:1em}table.pred td,table.pred th{white-space:nowrap;text-align:left}
.targets{display:flex;flex-wrap:wrap;gap:0 2.5em}.target h3{margin:0.6em 0 0}
.small{font-size:0.85em;color:#555;margin:0.2em 0}
code{background:#f4f4f4;padding:1px 4px;overflow-wrap:anywhere}"""


def report_inputs(
    runs: pd.DataFrame,
    law: HyperparameterLaw,
    targets: Sequence[tuple[float, float]] = (),
    seq_len: int = 2048,
) -> dict[str, Any]:
    """What the report shows besides the runs and the law, computed by the pipeline's own
    stages: ``predictions`` for ``targets`` ((N, D) pairs) and the ``transfer`` fit (or,
    where the table cannot give one, the reason as a string). Keyword arguments for
    :func:`render_report` / :func:`write_report`."""
    try:
        transfer: TransferFit | str = fit_transfer(runs)
    except ScalelawError as err:
        transfer = str(err)
    return {
        "predictions": [predict(n, d, law=law, seq_len=seq_len) for n, d in targets],
        "transfer": transfer,
    }


def render_report(
    runs: pd.DataFrame,
    law: HyperparameterLaw,
    *,
    predictions: Sequence[Prediction] = (),
    transfer: TransferFit | str | None = None,
    title: str = "scalelaw report",
    lead_html: str | None = None,
) -> str:
    """The report as one HTML string; it fits and predicts nothing itself.

    ``predictions``: :class:`scalelaw.Prediction` objects for the targets; ``transfer``:
    the μTransfer fit, or why there is none (a string; None leaves the section out).
    :func:`report_inputs` computes both. The report opens with ``lead_html``
    (pre-escaped HTML, e.g. a verification verdict), in ``<section id="verification">``,
    then the predictions in ``<section id="prediction">``; then the grouped warnings, the
    coefficient table, the figures and the per-cell optima. Without ``lead_html`` the
    prediction section comes first.
    """
    optima = law.optima
    if optima is None:
        raise InputError("the law has no per-cell optima (a preset?): fit it to the runs first")
    preds = list(predictions)
    warnings = list(law.notes)
    if not preds:  # with targets, each prediction's warnings carry the law's caveats
        warnings += [
            f"{p.quantity} law, {p.status}: {p.caveat}" for p in (law.lr, law.batch_size) if p.caveat
        ]
    reason = divergence_reason(runs)
    if (reason != "").any() and not any("as diverged" in note for note in law.notes):
        warnings.append(
            f"{int((reason != '').sum())} diverged run(s) are shown in no figure and left out of fits"
        )
    for p in preds:  # name the target only when there are several
        prefix = f"target N={p.model_size:.3g}, D={p.tokens:.3g}: " if len(preds) > 1 else ""
        warnings += [prefix + w for w in p.warnings]
    grouped = group_warnings(warnings)
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>",
    ]
    if lead_html is not None:
        parts.append(f"<section id='verification'><h2>Verification</h2>{lead_html}</section>")
    parts.append("<section id='prediction'><h2>Prediction</h2>")
    if preds:
        parts.append(f"<div class='targets'>{''.join(_prediction_table(p) for p in preds)}</div>")
    else:
        parts.append("<p>No target given (<code>--target N,D</code>): the fitted laws are</p>")
    parts += [
        _law_lines(law) if not preds else "",
        f"<p>From {len(runs)} runs in {len(optima)} cells; law <b>{html.escape(law.name)}</b> "
        f"({html.escape(law.method)}); {len(grouped)} warning(s) below.</p>",
        "</section>",
        "<section id='warnings'><h2>Warnings</h2>",
        *([f"<div class='warn'>{html.escape(w)}</div>" for w in grouped] or ["<p>none</p>"]),
        "</section>",
        "<section id='laws'><h2>Fitted laws</h2>",
        _law_lines(law),
        _fit_range(law),
        _table(law.coefficients()),
        "</section>",
        "<h2>Optimal lr and batch size</h2>",
        _img(hyperparameter_laws(optima, law, preds), "hyperparameter laws"),
        *_transfer_section(transfer),
        "<h2>Loss against learning rate</h2>",
        _img(lr_curves(runs, optima), "loss against lr"),
        "<h2>Loss landscapes</h2>",
        _img(landscapes(runs, optima), "loss landscapes"),
        "<h2>Loss law</h2>",
        _img(loss_law(optima, law, preds), "loss law"),
        *(
            [
                "<h2>Compute-optimal frontier</h2>",
                _img(frontier_figure(law, preds), "compute-optimal frontier"),
            ]
            if law.loss is not None
            else []
        ),
        "<h2>Residuals</h2>",
        _img(residuals(optima, law), "residuals"),
        "<h2>Cell optima</h2>",
        _table(
            optima.astype({"params": float, "tokens": float})[
                [
                    c
                    for c in (
                        "params",
                        "tokens",
                        "n_runs",
                        "n_diverged",
                        "lr_opt",
                        "lr_opt_lo",
                        "lr_opt_hi",
                        "batch_size_opt",
                        "loss_opt",
                        "lr_edge",
                        "batch_edge",
                        "bracketed",
                    )
                    if c in optima
                ]
            ]
        ),
        "</body></html>",
    ]
    return "\n".join(part for part in parts if part)


def _fit_range(law: HyperparameterLaw) -> str:
    if not law.fit_range:
        return ""
    n, d = law.fit_range["N"], law.fit_range["D"]
    return (
        f"<p>Fitted on N in [{n[0]:.3g}, {n[1]:.3g}], D in [{d[0]:.3g}, {d[1]:.3g}]; "
        f"{html.escape(law.source)}. Coefficients with {level(DEFAULT_ALPHA)} intervals "
        "(n/a: not determined):</p>"
    )


def write_report(
    runs: pd.DataFrame,
    law: HyperparameterLaw,
    path: str | os.PathLike,
    **inputs: Any,
) -> Path:
    """Render the report (:func:`render_report`; ``inputs`` are its keyword arguments)
    and write it atomically to ``path``."""
    return write_text(path, render_report(runs, law, **inputs), "the report")


def verification_figure(v) -> Figure:
    """The verification grid: each setting's loss (its seeds' mean) over the best one's, in
    percent, on (lr, batch size) axes, with the predicted setting (star) and its intervals (dashed)."""
    if v.runs is None:
        raise InputError("verification_figure needs a Verification with its runs (scalelaw.verify)")
    runs = v.settings
    fig, ax = plt.subplots(figsize=(5.6, 4.0))
    finite = runs[np.isfinite(runs["loss"].to_numpy(float))]
    excess = 100 * (finite["loss"] / v.measured_best_loss - 1)
    points = ax.scatter(
        finite["lr"], finite["batch_size"], c=excess, s=260, cmap="viridis_r", edgecolors="k", zorder=2
    )
    for lr, b, e in zip(finite["lr"], finite["batch_size"], excess, strict=True):
        ax.annotate(
            f"+{e:.2f}%", (lr, b), xytext=(0, -17), textcoords="offset points", ha="center", fontsize=7
        )
    for r in runs[~np.isfinite(runs["loss"].to_numpy(float))].itertuples():
        ax.scatter([r.lr], [r.batch_size], marker="x", color="red", s=80, zorder=2)
    p = v.prediction
    ax.scatter(
        [p.lr], [p.batch_size], marker="*", s=240, color="orange", edgecolors="k", zorder=3, label="predicted"
    )
    lo_lr, hi_lr = p.lr_interval or (p.lr, p.lr)
    lo_b, hi_b = p.batch_size_interval or (p.batch_size, p.batch_size)
    xmin, xmax = min(v.lr_grid) / 1.6, max(v.lr_grid) * 1.6
    ymin, ymax = min(v.batch_grid) / 1.8, max(v.batch_grid) * 1.8
    box_x = [max(lo_lr, xmin), min(hi_lr, xmax)]
    box_y = [max(lo_b, ymin), min(hi_b, ymax)]
    ax.plot(
        [box_x[0], box_x[1], box_x[1], box_x[0], box_x[0]],
        [box_y[0], box_y[0], box_y[1], box_y[1], box_y[0]],
        "--",
        color="orange",
        label=f"{p.confidence:.0%} intervals (clipped)",
    )
    ax.set(xscale="log", yscale="log", xlim=(xmin, xmax), ylim=(ymin, ymax))
    ax.set_xlabel("peak lr")
    ax.set_ylabel("batch size (tokens)")
    ax.set_xticks(v.lr_grid, [f"{x:.2g}" for x in v.lr_grid])
    ax.set_yticks(v.batch_grid, [str(b) for b in v.batch_grid])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
    best = "best run" if v.seeds == 1 else f"best setting ({v.seeds}-seed means)"
    ax.set_title(f"width {v.width}, {v.tokens:,} tokens: loss over the {best}", fontsize=9)
    fig.colorbar(points, ax=ax, label="% above the best")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def verification_html(v, more: Sequence[str] = ()) -> str:
    """The report's opening section: the verdict, the verification grid, its numbers."""
    d = v.to_dict()
    rows = [
        (
            "regret of the predicted setting",
            f"{d['regret_pct']:.2f}%" if d["regret_pct"] is not None else "diverged",
        ),
        (
            "best run" if v.seeds == 1 else f"best setting (mean of {v.seeds} seeds)",
            f"lr {v.best_lr:.3g}, B {v.best_batch_size} tokens, loss {v.measured_best_loss:.4f}",
        ),
        ("best lr inside the interval", "yes" if v.lr_inside_interval else "no"),
        ("best B inside the interval", "yes" if v.batch_inside_interval else "no"),
    ]
    if d["loss_error_pct"] is not None:
        rows.append(("loss law: predicted vs best", f"{v.predicted_loss:.4f} ({d['loss_error_pct']:+.2f}%)"))
    if v.extrapolation:
        rows.append(
            ("beyond the fitted range", ", ".join(f"{k} x{x:.3g}" for k, x in v.extrapolation.items()))
        )
    if v.cells_total:
        rows.append(("fitted cells bracketed", f"{v.cells_bracketed} of {v.cells_total}"))
    table = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(x)}</td></tr>" for k, x in rows)
    return (
        f"<p class='verdict'><b>{html.escape(v.verdict())}</b></p>"
        f"<div class='targets'><table class='t'>{table}</table>"
        f"{_img(verification_figure(v), 'verification grid')}</div>"
        f"<p>Predicted against measured ({level(v.default_alpha)} intervals):</p>"
        + _table(v.summary().frame.reset_index())
        + "".join(more)
    )


def comparison_html(predictions: dict[str, Prediction]) -> str:
    """Several laws' predictions for one target side by side, each with how far it extrapolates."""
    labels = list(predictions)
    first = predictions[labels[0]]
    head = "".join(f"<th>{html.escape(label)}</th>" for label in labels)

    def cell(p: Prediction, quantity: str, determined: bool) -> str:
        iv = p.display_interval(quantity)
        small = f"<span class='small'>{html.escape(iv)}</span>"
        return f"<td>{_lead(p.display(quantity), determined)}<br>{small}</td>"

    rows = [
        ("peak learning rate", [cell(p, "lr", p.lr_determined) for p in predictions.values()]),
        (
            "batch size (tokens)",
            [cell(p, "batch_size", p.batch_size_determined) for p in predictions.values()],
        ),
        ("loss (nats/token)", [cell(p, "loss", p.loss_determined) for p in predictions.values()]),
        (
            "beyond its fitted range",
            [
                "<td>"
                + html.escape(
                    ", ".join(f"{k} x{v:.3g}" for k, v in p.extrapolation.items())
                    if p.extrapolation
                    else "unknown"
                )
                + "</td>"
                for p in predictions.values()
            ],
        ),
    ]
    body = "".join(f"<tr><th>{html.escape(label)}</th>{''.join(cells)}</tr>" for label, cells in rows)
    return (
        f"<h3>N = {first.model_size:.3g} params, D = {first.tokens:.3g} tokens: which law to trust</h3>"
        f"<table class='t pred'><thead><tr><th></th>{head}</tr></thead><tbody>{body}</tbody></table>"
    )
