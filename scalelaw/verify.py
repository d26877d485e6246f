"""Verify a prediction by training it: a small sweep centred on the predicted (lr*, B*)
for a proxy beyond the fitted range, and its score.

    law = scalelaw.fit(runs)
    v = scalelaw.verify(law, spec, width=128, depth=2, tokens=262_144, out="runs/verify")
    print(v.verdict())       # predicted lr 3.1e-03, B 64 tokens for width 128 ... ; trained: ...
    v.regret_pct, v.lr_inside_interval, v.batch_inside_interval

The verification runs are an ordinary sweep (``OUT/runs.parquet``, the runs-table
schema; resumable, any backend), so anyone can recompute the score from the raw
losses with :func:`score`. The grid is the predicted lr times ``lr_factors`` (default
2^-0.5, 1, 2^0.5) by the predicted batch size times ``batch_factors`` (default 1/2, 1, 2),
the batch grid centred on the power-of-two number of sequences nearest the predicted
batch size (at least one sequence; doubled upward where rounding merged two points). The score:

- ``regret_pct``: loss at the predicted (lr, B), interpolated in (log lr, log B) over
  the grid's settings as :func:`scalelaw.optima.regret` does, over the best setting's
  loss, minus 1, in percent (inf when the predicted setting itself diverged);
- ``lr_inside_interval`` / ``batch_inside_interval``: whether the best setting's lr and
  B lie inside the prediction's (1 - ``alpha``) intervals (default 80%);
- ``predicted_loss`` against ``measured_best_loss``.

With ``seeds`` > 1 every setting is trained once per seed and a setting's loss is the
mean over its seeds (a setting with a diverged seed counts as diverged): a tiny proxy's
final loss moves by 0.3-1.5% from seed to seed, as much as the regret being measured.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scalelaw.atomic import atomic_write_text
from scalelaw.deprecation import keyword_only_since
from scalelaw.exceptions import FitError, InputError, NotEnoughDataError
from scalelaw.optima import regret
from scalelaw.predict import Prediction, _from_json
from scalelaw.results import FittedResults, Summary, check_alpha, level, resolve_alpha, std_err_from_interval
from scalelaw.shapes import non_embedding_params

LR_FACTORS = (2**-0.5, 1.0, 2**0.5)
BATCH_FACTORS = (0.5, 1.0, 2.0)


@dataclass(frozen=True)
class Verification(FittedResults):
    """The score of one prediction trained at a proxy scale (see the module docstring).

    Units: ``model_size`` non-embedding parameters, ``tokens`` and batch sizes in
    tokens, lr the peak (base) learning rate, losses in nats per token, ``regret_pct``
    and ``loss_error_pct`` in percent, ``wall_s`` seconds spent training the grid now
    (0 when every run was reused from an earlier call).

    The results protocol (:mod:`scalelaw.results`) reads the prediction being verified:
    ``params`` are the predicted lr, batch size and loss, ``conf_int(alpha)`` their
    intervals, and ``coefficients`` adds what training measured (``measured``: the best
    setting's lr, batch size and loss).
    """

    width: int
    depth: int
    model_size: int
    tokens: int
    prediction: Prediction
    lr_grid: tuple[float, ...]
    batch_grid: tuple[int, ...]
    best_lr: float
    best_batch_size: int
    measured_best_loss: float
    predicted_setting_loss: float
    regret_pct: float
    lr_inside_interval: bool
    batch_inside_interval: bool
    runs_total: int
    runs_diverged: int
    seeds: int = 1
    wall_s: float = 0.0
    cells_bracketed: int | None = None
    cells_total: int | None = None
    fitted_range: dict[str, float] = field(default_factory=dict)
    runs: pd.DataFrame | None = field(default=None, repr=False, compare=False)  # the verification runs

    @property
    def settings(self) -> pd.DataFrame:
        """One row per (lr, batch_size) of the grid: ``loss`` (mean over its seeds; NaN if
        any diverged), ``loss_sd`` (over seeds; NaN for one), ``seeds``, ``diverged``."""
        if self.runs is None:
            raise InputError("this Verification carries no runs (it was loaded from verify.json)")
        return seed_means(self.runs)

    _index = ("quantity",)

    @property
    def default_alpha(self) -> float:  # the level the prediction was scored at
        return self.prediction.alpha

    def coefficients(self, alpha: float | None = None) -> pd.DataFrame:
        """Rows lr, batch_size (tokens), loss: ``estimate`` (predicted), ``std_err``
        (normal-equivalent, from the interval), ``ci_lower``/``ci_upper`` at (1 - alpha)
        (default: the level it was scored at), ``measured`` (the best setting's value)."""
        alpha = self.default_alpha if alpha is None else check_alpha(alpha)
        frame = self.prediction.summary_frame(alpha).reset_index()
        frame["std_err"] = [
            std_err_from_interval(r.estimate, r.ci_lower, r.ci_upper, alpha) for r in frame.itertuples()
        ]
        frame["measured"] = [self.best_lr, float(self.best_batch_size), self.measured_best_loss]
        return frame[["quantity", "estimate", "std_err", "ci_lower", "ci_upper", "measured"]]

    def summary(self, alpha: float | None = None) -> Summary:
        """The verdict and the scoring details; ``.frame``: :meth:`coefficients` at alpha."""
        alpha = self.default_alpha if alpha is None else check_alpha(alpha)
        frame = self.coefficients(alpha).set_index("quantity")
        lines = [self.verdict(), ""]
        lines.append(
            f"  {'quantity':<12}{'predicted':>12}{level(alpha) + ' interval':>28}{'measured best':>15}"
        )
        for quantity, row in frame.iterrows():
            interval = (
                f"[{row['ci_lower']:>10.4g}, {row['ci_upper']:>10.4g}]"
                if math.isfinite(row["ci_lower"])
                else "n/a"
            )
            lines.append(f"  {quantity:<12}{row['estimate']:>12.4g}{interval:>28}{row['measured']:>15.4g}")
        lines.append("")
        lines.extend(self._details())
        return Summary("\n".join(lines), frame, f"Verification at width {self.width} x depth {self.depth}")

    @property
    def predicted_loss(self) -> float | None:
        return self.prediction.loss

    @property
    def loss_error_pct(self) -> float | None:
        """(predicted loss / best measured loss - 1) in percent; None without a loss law."""
        if self.prediction.loss is None or not math.isfinite(self.measured_best_loss):
            return None
        return 100.0 * (self.prediction.loss / self.measured_best_loss - 1.0)

    @property
    def extrapolation(self) -> dict[str, float]:
        """How far beyond the fitted range the target lies: N / max fitted N, D / max fitted D."""
        out = {}
        if "params_max" in self.fitted_range:
            out["N"] = self.model_size / self.fitted_range["params_max"]
        if "tokens_max" in self.fitted_range:
            out["D"] = self.tokens / self.fitted_range["tokens_max"]
        return out

    def verdict(self) -> str:
        """One line: what was predicted, and what training it showed."""
        p = self.prediction

        def shown(quantity: str, value: float) -> str:  # the value trained, and what the law says of it
            text = p.display(quantity)
            return f"{value:.3g}" + ("" if text == f"{value:.3g}" else f" ({text})")

        head = (
            f"predicted lr {shown('lr', p.lr)}, B {shown('batch_size', p.batch_size)} tokens for width "
            f"{self.width} (N {self.model_size:.3g}) at {self.tokens:,} tokens"
        )
        best = "best run" if self.seeds == 1 else "best setting"
        if not math.isfinite(self.regret_pct):
            trained = f"trained: the predicted setting diverged (best of {self.settings_total} settings: "
            trained += f"lr {self.best_lr:.3g}, B {self.best_batch_size})"
        else:
            trained = f"trained: within {self.regret_pct:.2f}% of the best of {self.settings_total} "
            trained += "runs" if self.seeds == 1 else f"settings ({self.seeds} seeds each)"
        level = f"{p.confidence:.0%}"
        inside = [
            name for name, ok in (("lr", self.lr_inside_interval), ("B", self.batch_inside_interval)) if ok
        ]
        if len(inside) == 2:
            where = f"{best} inside the {level} intervals"
        elif inside:
            outside = "B" if inside == ["lr"] else "lr"
            where = f"{best}'s {inside[0]} inside its {level} interval, its {outside} outside"
        else:
            where = f"{best} outside both {level} intervals"
        return f"{head}; {trained}; {where}"

    @property
    def settings_total(self) -> int:
        return len(self.lr_grid) * len(self.batch_grid)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (the keys of verify.json); NaN and inf become None."""

        def num(x: float | None) -> float | None:
            return None if x is None or not math.isfinite(x) else float(x)

        return {
            "verdict": self.verdict(),
            "width": self.width,
            "depth": self.depth,
            "model_size": self.model_size,
            "params": self.model_size,  # deprecated key (0.2): read model_size
            "tokens": self.tokens,
            "predicted_lr": num(self.prediction.lr),
            "predicted_batch_size": num(self.prediction.batch_size),
            "lr_interval": self.prediction.to_dict()["lr_interval"],
            "batch_size_interval": self.prediction.to_dict()["batch_size_interval"],
            "confidence": self.prediction.confidence,
            "lr_grid": list(self.lr_grid),
            "batch_grid": list(self.batch_grid),
            "best_lr": self.best_lr,
            "best_batch_size": self.best_batch_size,
            "measured_best_loss": num(self.measured_best_loss),
            "predicted_setting_loss": num(self.predicted_setting_loss),
            "predicted_loss": num(self.predicted_loss),
            "loss_error_pct": num(self.loss_error_pct),
            "regret_pct": num(self.regret_pct),
            "lr_inside_interval": self.lr_inside_interval,
            "batch_inside_interval": self.batch_inside_interval,
            "runs_total": self.runs_total,
            "runs_diverged": self.runs_diverged,
            "seeds": self.seeds,
            "cells_bracketed": self.cells_bracketed,
            "cells_total": self.cells_total,
            "extrapolation": {k: num(v) for k, v in self.extrapolation.items()},
            "wall_s": self.wall_s,
            "fitted_range": dict(self.fitted_range),
            "prediction": self.prediction.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "<dict>") -> Verification:
        """The Verification :meth:`to_dict` wrote (without its runs: ``settings`` needs
        the sweep's runs.parquet)."""
        try:
            return cls(
                width=int(d["width"]),
                depth=int(d["depth"]),
                model_size=int(d["model_size"] if "model_size" in d else d["params"]),
                tokens=int(d["tokens"]),
                prediction=Prediction.from_dict(d["prediction"]),
                lr_grid=tuple(float(x) for x in d["lr_grid"]),
                batch_grid=tuple(int(x) for x in d["batch_grid"]),
                best_lr=float(d["best_lr"]),
                best_batch_size=int(d["best_batch_size"]),
                measured_best_loss=_from_json(d["measured_best_loss"], math.nan),
                predicted_setting_loss=_from_json(d["predicted_setting_loss"], math.nan),
                regret_pct=_from_json(d["regret_pct"], math.inf),
                lr_inside_interval=bool(d["lr_inside_interval"]),
                batch_inside_interval=bool(d["batch_inside_interval"]),
                runs_total=int(d["runs_total"]),
                runs_diverged=int(d["runs_diverged"]),
                seeds=int(d["seeds"]),
                wall_s=float(d["wall_s"]),
                cells_bracketed=d["cells_bracketed"],
                cells_total=d["cells_total"],
                fitted_range={k: float(v) for k, v in d.get("fitted_range", {}).items()},
            )
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(f"{source}: not a verification written by scalelaw verify ({err!r})") from None

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=1, allow_nan=False)
        if path is not None:
            atomic_write_text(Path(path), text)
        return text

    def _details(self) -> list[str]:
        v = self.to_dict()
        lines = []
        lines.append(
            f"  grid: lr {[f'{x:.3g}' for x in self.lr_grid]} x batch {list(self.batch_grid)} tokens"
        )
        lines.append(
            f"  best {'run' if self.seeds == 1 else f'setting (mean of {self.seeds} seeds)'}: "
            f"lr {self.best_lr:.3g}, B {self.best_batch_size}, "
            f"loss {self.measured_best_loss:.4f}; predicted setting {self.predicted_setting_loss:.4f}"
        )
        if v["loss_error_pct"] is not None:
            lines.append(
                f"  loss law: predicted {self.predicted_loss:.4f} ({v['loss_error_pct']:+.2f}% vs best run)"
            )
        if self.extrapolation:
            lines.append(
                "  beyond the fitted range: "
                + ", ".join(f"{k} x{x:.3g}" for k, x in self.extrapolation.items())
            )
        if self.cells_total:
            lines.append(f"  fitted cells bracketed: {self.cells_bracketed} of {self.cells_total}")
        if self.runs_diverged:
            lines.append(f"  {self.runs_diverged} of {self.runs_total} verification runs diverged")
        return lines


def load_verification(path: str | os.PathLike) -> Verification:
    """Read a ``verify.json`` written by :func:`verify` (or :meth:`Verification.to_json`)."""
    path = Path(path)
    try:
        d = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: not a readable JSON file ({err})") from None
    if not isinstance(d, dict):
        raise InputError(f"{path}: expected a JSON object written by scalelaw verify")
    return Verification.from_dict(d, source=str(path))


def verification_grid(
    prediction: Prediction,
    seq_len: int,
    lr_factors: Sequence[float] = LR_FACTORS,
    batch_factors: Sequence[float] = BATCH_FACTORS,
) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """The lrs and batch sizes (tokens, whole sequences, at least one) around a prediction."""
    for name, factors in (("lr_factors", lr_factors), ("batch_factors", batch_factors)):
        if not factors or not all(
            isinstance(f, (int, float)) and math.isfinite(f) and f > 0 for f in factors
        ):
            raise InputError(f"verify: {name} must be positive finite numbers, got {list(factors)!r}")
    if not (math.isfinite(prediction.lr) and prediction.lr > 0):
        raise FitError(f"verify: the predicted lr {prediction.lr!r} is not a positive number")
    if not (math.isfinite(prediction.batch_size) and prediction.batch_size > 0):
        raise FitError(f"verify: the predicted batch size {prediction.batch_size!r} is not a positive number")
    lrs = tuple(sorted({prediction.lr * f for f in lr_factors}))
    # Centre on the power-of-two number of sequences nearest B* (in log): with the default
    # factors every batch size then divides a power-of-two budget, so all runs train the
    # same number of tokens. The score still reads the loss at the predicted B itself.
    centre = seq_len * 2.0 ** round(math.log2(max(prediction.batch_size / seq_len, 1.0)))
    batches = sorted({max(1, round(centre * f / seq_len)) * seq_len for f in batch_factors})
    while len(batches) < len(set(batch_factors)):  # rounding to whole sequences merged points
        batches.append(2 * batches[-1])
    return lrs, tuple(batches)


def seed_means(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs of a verification grid averaged over seeds, one row per (lr, batch_size):
    ``loss`` (mean; NaN when any seed diverged), ``loss_sd`` (sample sd over seeds),
    ``seeds`` (runs), ``diverged`` (any seed diverged)."""
    loss = runs["loss"].to_numpy(float)
    diverged = ~np.isfinite(loss) | runs.get("diverged", pd.Series(False, index=runs.index)).to_numpy(bool)
    frame = pd.DataFrame(
        {"lr": runs["lr"].to_numpy(float), "batch_size": runs["batch_size"].to_numpy(), "loss": loss}
    ).assign(diverged=diverged)
    out = (
        frame.groupby(["lr", "batch_size"], sort=True)
        .agg(
            loss=("loss", "mean"),
            loss_sd=("loss", "std"),
            seeds=("loss", "size"),
            diverged=("diverged", "any"),
        )
        .reset_index()
    )
    out.loc[out["diverged"], ["loss", "loss_sd"]] = math.nan
    return out


def score(
    runs: pd.DataFrame,
    prediction: Prediction,
    width: int,
    depth: int,
    wall_s: float = 0.0,
    cells: tuple[int, int] | None = None,
    fitted_range: dict[str, float] | None = None,
) -> Verification:
    """Score a prediction against the verification runs (one cell of the runs-table
    schema; several seeds per (lr, batch size) are averaged first, see :func:`seed_means`)."""
    if runs.empty:
        raise NotEnoughDataError("verify: no finished verification runs to score")
    settings = seed_means(runs)
    finite = ~settings["diverged"].to_numpy(bool)
    if not finite.any():
        raise FitError(
            f"verify: all {len(runs)} verification runs diverged; the predicted lr {prediction.lr:.3g} "
            "is far too high for this proxy"
        )
    best = settings[finite].loc[settings[finite]["loss"].idxmin()]
    lrs = np.sort(settings["lr"].unique())
    batches = np.sort(settings["batch_size"].unique())
    centre_lr = lrs[np.argmin(np.abs(np.log(lrs / prediction.lr)))]
    centre_b = batches[np.argmin(np.abs(np.log(batches / prediction.batch_size)))]
    centre = settings[(settings["lr"] == centre_lr) & (settings["batch_size"] == centre_b)]
    centre_loss = float(centre["loss"].iloc[0]) if len(centre) else math.nan
    if math.isfinite(centre_loss):
        regret_pct = 100.0 * regret(settings[finite], prediction.lr, prediction.batch_size)
    else:
        regret_pct = math.inf
    lr_iv, b_iv = prediction.lr_interval, prediction.batch_size_interval
    return Verification(
        width=int(width),
        depth=int(depth),
        model_size=non_embedding_params(width, depth),
        tokens=int(runs["tokens"].iloc[0]),
        prediction=prediction,
        lr_grid=tuple(float(x) for x in lrs),
        batch_grid=tuple(int(b) for b in batches),
        best_lr=float(best["lr"]),
        best_batch_size=int(best["batch_size"]),
        measured_best_loss=float(best["loss"]),
        predicted_setting_loss=centre_loss,
        regret_pct=regret_pct,
        lr_inside_interval=bool(lr_iv is not None and lr_iv[0] <= best["lr"] <= lr_iv[1]),
        batch_inside_interval=bool(b_iv is not None and b_iv[0] <= best["batch_size"] <= b_iv[1]),
        runs_total=len(runs),
        runs_diverged=int((~np.isfinite(runs["loss"].to_numpy(float))).sum()),
        seeds=int(settings["seeds"].max()),
        wall_s=wall_s,
        cells_bracketed=cells[0] if cells else None,
        cells_total=cells[1] if cells else None,
        fitted_range=dict(fitted_range or {}),
        runs=runs.reset_index(drop=True),
    )


@keyword_only_since("0.2")
def verify(
    law,
    spec,
    *,
    width: int,
    depth: int,
    tokens: int,
    out: str | os.PathLike,
    lr_factors: Sequence[float] = LR_FACTORS,
    batch_factors: Sequence[float] = BATCH_FACTORS,
    alpha: float | None = None,
    confidence: float | None = None,
    backend: str = "local",
    workers: int | None = None,
    slurm=None,
    fuse: bool = True,
    seeds: int = 1,
    ray=None,
    cells: tuple[int, int] | None = None,
    log: Callable[[str], None] = print,
) -> Verification:
    """Train the law's prediction for a proxy of ``width`` x ``depth`` on ``tokens`` tokens.

    Parameters
    ----------
    law : HyperparameterLaw
        The fitted law whose prediction is checked.
    spec : SweepSpec
        The sweep its runs came from: parametrization, base shape, head dim and recipe
        are taken from it, so the proxy differs from the fitted ones only in size.
    width, depth : int
        The verification proxy's shape (width a multiple of the spec's head_dim).
    tokens : int
        Its training tokens.
    out : path
        Directory of the verification sweep (``out/runs.parquet``, the runs-table schema)
        and its score (``out/verify.json``). Re-running reuses finished runs.
    lr_factors, batch_factors : sequence of float
        The grid around the prediction (default lr x 2^-0.5, 1, 2^0.5; B x 1/2, 1, 2).
    alpha : float, optional
        Interval level 1 - alpha for "inside the intervals" (default 0.2: 80%).
    seeds : int
        Runs per setting (seeds s0, s0+1, ... from the spec's first seed), scored on
        their mean loss; fused, a setting's seeds train as one stacked model.
    backend, workers, slurm, ray, fuse
        Where and how the sweep trains, as for :func:`scalelaw.sweep.run_sweep`.

    Returns
    -------
    Verification
        The grid, the best setting, regret of the predicted setting (percent), whether
        the best lies inside the intervals, predicted against measured loss.
    """
    from scalelaw.extras import require_extra
    from scalelaw.sweep import run_sweep  # planning is torch-free; training imports torch

    require_extra("train", "scalelaw.verify (it trains proxies)")
    for name, value in (("width", width), ("depth", depth), ("tokens", tokens), ("seeds", seeds)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise InputError(f"verify: {name} must be a positive integer, got {value!r}")
    if width % spec.model.head_dim:
        raise InputError(
            f"verify: width {width} is not a multiple of the spec's head_dim {spec.model.head_dim}"
        )
    params = non_embedding_params(width, depth)
    alpha = resolve_alpha(alpha, confidence, "verify")
    prediction = law.predict(params, tokens, seq_len=spec.recipe.seq_len, alpha=alpha)
    lrs, batches = verification_grid(prediction, spec.recipe.seq_len, lr_factors, batch_factors)
    if tokens < max(batches):
        raise InputError(f"verify: {tokens} tokens is less than one batch of {max(batches)} tokens")
    vspec = dataclasses.replace(
        spec,
        name=f"{spec.name}-verify",
        model=dataclasses.replace(spec.model, shapes=((int(width), int(depth)),)),
        lrs=lrs,
        batch_sizes=batches,
        budgets=(int(tokens),),
        tokens_per_param=(),
        recipe=dataclasses.replace(spec.recipe, seeds=tuple(spec.recipe.seeds[0] + i for i in range(seeds))),
    )
    log(
        f"verify: width {width} x depth {depth} (N {params:.3g}) at {tokens:,} tokens: "
        f"{len(lrs)} lrs x {len(batches)} batch sizes x {seeds} seed(s) around lr {prediction.lr:.3g}, "
        f"B {prediction.batch_size:.3g}"
    )
    t0 = time.perf_counter()
    report = run_sweep(vspec, out, backend=backend, workers=workers, slurm=slurm, ray=ray, fuse=fuse, log=log)
    wall = time.perf_counter() - t0 if report.ran else 0.0
    if report.table is None or report.table.empty:
        raise NotEnoughDataError(
            f"verify: no verification run finished in {out}; see {Path(out) / 'events.jsonl'}"
        )
    fitted: dict[str, float] = {}
    if law.fit_range:
        fitted = {"params_max": float(law.fit_range["N"][1]), "tokens_max": float(law.fit_range["D"][1])}
    result = score(report.table, prediction, width, depth, wall_s=wall, cells=cells, fitted_range=fitted)
    result.to_json(Path(out) / "verify.json")
    return result
