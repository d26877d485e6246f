"""Plan a training run from a compute budget: the loss-optimal (N*, D*), then lr*, B*, loss.

Units: ``compute`` C in FLOPs with C = 6 N D (N non-embedding parameters, D training
tokens; Kaplan et al. 2020, no attention term), batch size in tokens per optimizer step,
loss in nats per token.

:func:`plan` splits C between N and D where the law's loss law
L(N, D) = E + A / N^alpha + B / D^beta is lowest on the line 6 N D = C. The split has a
closed form (Hoffmann et al. 2022, eq. 4; :func:`scalelaw.losslaw.optimal_model_size`):

    N* = G (C / 6)^(beta / (alpha + beta)),  D* = C / (6 N*),
    G = (alpha A / (beta B))^(1 / (alpha + beta)),

from dL/dN = 0 along D = C / (6 N): alpha A N^-alpha = beta B D^-beta. Its intervals
come from the loss law's bootstrap draws: (N*, D*) recomputed under every draw, normal
on the log scale with the draws' robust spread at the interval's level, as the laws'
own intervals are (:func:`scalelaw.laws.robust_sd`). lr*, B* and the loss at (N*, D*)
are :func:`scalelaw.predict` there, with its intervals, bounds and warnings.

``tokens_per_param=r`` fixes D = r N instead (Hoffmann et al. 2022's compute-optimal
runs sit near r = 20): N = sqrt(C / (6 r)), no loss law needed.

The inverse questions: :func:`best_tokens` (the D for which a given N is the
compute-optimal size; a loss law alone has no best D at fixed N, as its loss falls with
D for ever) and :func:`cheapest_compute` (the least C whose optimal loss reaches a
target). Nothing here imports matplotlib or torch; the frontier figure is
:func:`scalelaw.report.frontier_figure`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from scalelaw import validate
from scalelaw.exceptions import FitError, InputError
from scalelaw.laws import HyperparameterLaw, LossLaw, robust_sd
from scalelaw.losslaw import optimal_model_size
from scalelaw.predict import DEFAULT_LAW, Prediction, get_law, predict
from scalelaw.results import (
    DEFAULT_ALPHA,
    FittedResults,
    Summary,
    check_alpha,
    level,
    std_err_from_interval,
)

# As scalelaw.predict: an interval spanning more than 100x is "not determined".
UNDETERMINED_SPAN = 100.0
MAX_LOG = 700.0  # exp() of more overflows float64


def _json_interval(iv: tuple[float, float] | None) -> list[float] | None:
    return None if iv is None else [float(iv[0]), float(iv[1])]  # clipped: always finite


def _read_interval(iv: list | None) -> tuple[float, float] | None:
    return None if iv is None else (float(iv[0]), float(iv[1]))


def _span(iv: tuple[float, float] | None) -> float:
    if iv is None:
        return math.nan
    return math.inf if iv[0] <= 0 or not math.isfinite(iv[1]) else iv[1] / iv[0]


def _positive(label: str, value: Any, unit: str = "", high: float | None = None) -> float:
    return validate.positive(value, label, unit=unit, high=high)


def _check_split(compute: float, n: float, d: float, how: str) -> None:
    """N and D of a plan inside scalelaw's bounds (a model of at least 1 parameter trained
    on at least 1 token, neither beyond :mod:`scalelaw.validate`'s bounds), or an
    InputError saying which input put them there."""
    for what, value, high in (("N", n, validate.MAX_PARAMS), ("D", d, validate.MAX_TOKENS)):
        if not (1 <= value <= high):
            raise InputError(
                f"compute {compute:.3g} FLOPs {how} gives {what} = {value:.3g}, outside [1, {high:.3g}] "
                "(scalelaw's bounds): use a budget or ratio nearer real training runs"
            )


def _resolve(law: HyperparameterLaw | str | os.PathLike | None) -> tuple[HyperparameterLaw, list[str]]:
    """The law to plan with, and the warning that says it was the default."""
    if law is None:
        law = get_law(DEFAULT_LAW)
        return law, [f"no law given: using the project's default law ({law.name})"]
    if isinstance(law, HyperparameterLaw):
        return law, []
    if isinstance(law, LossLaw):
        raise InputError(
            "plan needs a HyperparameterLaw (for lr* and B*), got a bare LossLaw: "
            "pass the law it belongs to (law.loss is this one)"
        )
    return get_law(law), []


def _loss_law(law: HyperparameterLaw | LossLaw | str | os.PathLike | None, what: str) -> LossLaw:
    """The loss law of ``law`` (a LossLaw is taken as is), or an InputError naming the law."""
    if isinstance(law, LossLaw):
        loss = law
    else:
        resolved, _ = _resolve(law)
        if resolved.loss is None:
            raise InputError(
                f"the law {resolved.name!r} has no loss law: {what} needs one (L(N, D) = E + A/N^alpha "
                "+ B/D^beta); use a law fitted with a loss law, e.g. the default law"
            )
        loss = resolved.loss
    if min(loss.A, loss.B, loss.alpha, loss.beta) <= 0:
        raise FitError(
            f"the loss law {loss.formula()} has no compute-optimal split: A, B, alpha and beta "
            "must all be positive (a zero term makes the loss fall along one axis alone)"
        )
    return loss


def _log_band(center: np.ndarray, log_draws: np.ndarray | None, alpha: float) -> tuple[Any, Any] | None:
    """exp(center -+ z sd), sd the draws' robust spread at this level (:func:`robust_sd`,
    along the last axis of ``log_draws``); None without draws. Open ends stay finite."""
    if log_draws is None:
        return None
    finite = np.clip(
        np.nan_to_num(log_draws, nan=MAX_LOG, posinf=MAX_LOG, neginf=-MAX_LOG), -MAX_LOG, MAX_LOG
    )
    half = stats.norm.ppf(1 - alpha / 2) * robust_sd(finite, alpha)
    return np.exp(np.clip(center - half, -MAX_LOG, MAX_LOG)), np.exp(
        np.clip(center + half, -MAX_LOG, MAX_LOG)
    )


def _log_split_draws(loss: LossLaw, compute: Any) -> np.ndarray | None:
    """log N* under every bootstrap draw: shape (*compute's shape, n_draws)."""
    if loss.draws is None or len(loss.draws) < 2:
        return None
    with np.errstate(divide="ignore"):
        return np.log(
            optimal_model_size(np.asarray(loss.draws, float), np.asarray(compute, float)[..., None])
        )


def _split_interval(loss: LossLaw, compute: float, alpha: float) -> tuple[float, float] | None:
    """The (1 - alpha) interval of N* at ``compute`` from the loss law's bootstrap draws."""
    center = math.log(float(optimal_model_size(loss.vector, compute)))
    band = _log_band(np.asarray(center), _log_split_draws(loss, compute), alpha)
    return None if band is None else (float(band[0]), float(band[1]))


def frontier(
    law: HyperparameterLaw | LossLaw | str | os.PathLike | None, compute: Any, *, alpha: float = DEFAULT_ALPHA
) -> pd.DataFrame:
    """The compute-optimal frontier of a loss law at the budgets ``compute`` (FLOPs).

    One row per budget: ``compute``, ``params`` (N*) and ``tokens`` (D*) with
    ``*_lower`` / ``*_upper`` (1 - alpha) intervals from the loss law's bootstrap draws
    (NaN without draws), and ``loss``, the law's loss at (N*, D*), with the law's own
    (mean) interval there. ``law``: as :func:`plan`, or a :class:`LossLaw`.
    """
    alpha = check_alpha(alpha)
    loss = _loss_law(law, "the frontier")
    c = np.atleast_1d(validate.positive_array(compute, "compute (FLOPs)", high=validate.MAX_COMPUTE))
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        n = optimal_model_size(loss.vector, c)
    if not np.all(np.isfinite(n) & (n > 0)):
        raise InputError(
            f"the loss law {loss.formula()} has no finite compute-optimal N at some of these budgets"
        )
    d = c / (6.0 * n)
    frame = pd.DataFrame({"compute": c, "params": n, "tokens": d})
    band = _log_band(np.log(n), _log_split_draws(loss, c), alpha)
    low, high = (np.full(len(c), np.nan),) * 2 if band is None else band
    frame["params_lower"], frame["params_upper"] = low, high
    frame["tokens_lower"], frame["tokens_upper"] = c / (6.0 * high), c / (6.0 * low)
    frame["loss"] = loss.predict(n, d)
    mean = loss.interval(n, d, alpha=alpha, kind="mean")
    frame["loss_lower"], frame["loss_upper"] = (np.nan, np.nan) if mean is None else mean
    return frame


@dataclass(frozen=True)
class Plan(FittedResults):
    """A training run planned from a compute budget.

    ``compute``: C in FLOPs (C = 6 N D). ``model_size``: N, non-embedding parameters;
    ``tokens``: D, training tokens; their intervals (low, high) at ``confidence`` from the
    loss law's bootstrap draws (``None`` with a fixed ``tokens_per_param`` or a law
    without draws), ``model_size_determined`` / ``tokens_determined`` ``False`` when
    they span more than 100x. ``tokens_per_param``: the fixed ratio D / N when one was
    given, else ``None`` (the loss-optimal split; :attr:`ratio` is D / N either way).
    ``exponents``: N* ∝ C^exponents["N"], D* ∝ C^exponents["D"] under the loss law
    (``None`` with a fixed ratio: 0.5 each). ``prediction``: lr*, B* (tokens and
    sequences), loss at (N, D), as :func:`scalelaw.predict` gives them; :attr:`lr`,
    :attr:`batch_size`, :attr:`loss` and their intervals read it. ``warnings``: the
    plan's and the prediction's.

    The results protocol (:mod:`scalelaw.results`): ``params`` / ``conf_int(alpha)`` by
    ``quantity`` (params, tokens, lr, batch_size, loss).
    """

    compute: float
    model_size: float
    tokens: float
    model_size_interval: tuple[float, float] | None
    tokens_interval: tuple[float, float] | None
    tokens_per_param: float | None
    exponents: dict[str, float] | None
    prediction: Prediction
    law: str
    warnings: tuple[str, ...]
    model_size_determined: bool = True
    tokens_determined: bool = True
    fitted_law: HyperparameterLaw | None = field(default=None, compare=False, repr=False)

    _index = ("quantity",)

    @property
    def default_alpha(self) -> float:  # the level it was planned at
        return self.prediction.alpha

    @property
    def confidence(self) -> float:
        return self.prediction.confidence

    @property
    def ratio(self) -> float:
        """Tokens per parameter D / N of the plan."""
        return self.tokens / self.model_size

    @property
    def seq_len(self) -> int:
        return self.prediction.seq_len

    @property
    def lr(self) -> float:
        return self.prediction.lr

    @property
    def lr_interval(self) -> tuple[float, float] | None:
        return self.prediction.lr_interval

    @property
    def batch_size(self) -> float:
        """Tokens per optimizer step."""
        return self.prediction.batch_size

    @property
    def batch_size_interval(self) -> tuple[float, float] | None:
        return self.prediction.batch_size_interval

    @property
    def batch_size_seqs(self) -> int:
        return self.prediction.batch_size_seqs

    @property
    def loss(self) -> float | None:
        return self.prediction.loss

    @property
    def loss_interval(self) -> tuple[float, float] | None:
        return self.prediction.loss_interval

    def coefficients(self, alpha: float | None = None) -> pd.DataFrame:
        """Rows params (N), tokens (D), lr, batch_size (tokens), loss: ``estimate``,
        ``std_err`` (normal-equivalent, from the interval on the log scale), ``ci_lower`` /
        ``ci_upper`` at (1 - alpha), default the level it was planned at."""
        alpha = self.default_alpha if alpha is None else check_alpha(alpha)
        plan_ = self
        if abs(alpha - self.default_alpha) > 1e-12:
            if self.fitted_law is None:
                raise InputError("this Plan carries no law (loaded from JSON?): plan again with alpha")
            plan_ = plan(
                self.compute,
                self.fitted_law,
                tokens_per_param=self.tokens_per_param,
                alpha=alpha,
                seq_len=self.seq_len,
            )
        rows = []
        for quantity, value, iv in (
            ("params", plan_.model_size, plan_.model_size_interval),
            ("tokens", plan_.tokens, plan_.tokens_interval),
        ):
            low, high = iv if iv is not None else (math.nan, math.nan)
            rows.append((quantity, value, std_err_from_interval(value, low, high, alpha), low, high))
        for r in plan_.prediction.summary_frame().itertuples():
            se = std_err_from_interval(r.estimate, r.ci_lower, r.ci_upper, alpha)
            rows.append((r.Index, r.estimate, se, r.ci_lower, r.ci_upper))
        return pd.DataFrame(rows, columns=["quantity", "estimate", "std_err", "ci_lower", "ci_upper"])

    def _split_display(self, quantity: str, pct: str) -> tuple[str, str]:
        """N or D as a reader should see it first, and its interval as text."""
        value, iv, determined = (
            (self.model_size, self.model_size_interval, self.model_size_determined)
            if quantity == "params"
            else (self.tokens, self.tokens_interval, self.tokens_determined)
        )
        if iv is None:
            return f"{value:.3g}", ("fixed by tokens_per_param" if self.tokens_per_param is not None else "")
        span = _span(iv)
        text = f"{pct} [{iv[0]:.3g}, {iv[1]:.3g}]" + (
            f", spans {span:.3g}x" if span > UNDETERMINED_SPAN else ""
        )
        return (f"{value:.3g}" if determined else "not determined"), text

    def table(self) -> str:
        """A readable multi-line table; lr, batch size and loss as :meth:`Prediction.table`
        shows them (bounds "≤ x", intervals over 100x "not determined"), N and D likewise."""
        pct = f"{100 * self.confidence:g}%"
        p = self.prediction

        def row(label: str, shown: str, interval: str) -> str:
            return f"  {label:<26}{shown:>14}" + (f"   {interval}" if interval else "")

        def predicted(label: str, quantity: str) -> str:
            interval = p.display_interval(quantity)
            return row(label, p.display(quantity), "" if interval == "n/a" else f"{pct} {interval}")

        if self.tokens_per_param is not None:
            split = f"D = {self.tokens_per_param:g} N (tokens_per_param)"
        elif self.exponents:
            split = f"loss-optimal: N* ∝ C^{self.exponents['N']:.3f}, D* ∝ C^{self.exponents['D']:.3f}"
        else:
            split = "loss-optimal"
        lines = [
            f"scalelaw plan for C = {self.compute:.3g} FLOPs (C = 6ND)",
            f"  law: {self.law}",
            f"  split: {split}",
            row("params N (non-embedding)", *self._split_display("params", pct)),
            row("tokens D", *self._split_display("tokens", pct)),
            row("tokens per param D/N", f"{self.ratio:.3g}", ""),
            predicted("peak learning rate", "lr"),
            predicted("batch size (tokens)", "batch_size"),
            row("batch size (seqs)", p.display_seqs(), f"of {p.seq_len} tokens"),
            predicted("loss", "loss"),
        ]
        if p.extrapolation:
            lines.append(
                f"  extrapolation: N x{p.extrapolation['N']:.3g}, D x{p.extrapolation['D']:.3g} "
                "beyond the fitted range"
            )
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def summary(self, alpha: float | None = None) -> Summary:
        """The plan's table and its quantities with (1 - alpha) intervals; ``.frame``:
        :meth:`coefficients` at alpha."""
        alpha = self.default_alpha if alpha is None else check_alpha(alpha)
        frame = self.coefficients(alpha).set_index("quantity")
        lines = [self.table(), "", f"  {'quantity':<12}{'estimate':>12}{level(alpha) + ' interval':>28}"]
        for quantity, r in frame.iterrows():
            iv = (
                f"[{r['ci_lower']:>10.4g}, {r['ci_upper']:>10.4g}]" if math.isfinite(r["ci_lower"]) else "n/a"
            )
            lines.append(f"  {quantity:<12}{r['estimate']:>12.4g}{iv:>28}")
        return Summary("\n".join(lines), frame, f"scalelaw plan for C = {self.compute:.3g} FLOPs")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values; the keys of :meth:`Prediction.to_dict` for lr, batch size and
        loss (``batch_size`` and ``batch_size_tokens`` both in tokens), plus ``compute``,
        ``params`` (N, also as ``model_size``), ``tokens`` and their intervals; NaN and
        open interval ends become ``None``. ``prediction``: the prediction at (N, D)."""
        pred = self.prediction.to_dict()
        return {
            "compute": self.compute,
            "params": self.model_size,
            "params_interval": _json_interval(self.model_size_interval),
            "params_determined": self.model_size_determined,
            "model_size": self.model_size,
            "tokens": self.tokens,
            "tokens_interval": _json_interval(self.tokens_interval),
            "tokens_determined": self.tokens_determined,
            "tokens_per_param": self.ratio,
            "fixed_tokens_per_param": self.tokens_per_param,
            "exponents": self.exponents,
            **{
                k: pred[k]
                for k in (
                    "lr",
                    "lr_interval",
                    "lr_bound",
                    "lr_determined",
                    "batch_size",
                    "batch_size_tokens",
                    "batch_size_interval",
                    "batch_size_seqs",
                    "batch_size_bound",
                    "batch_size_determined",
                    "loss",
                    "loss_interval",
                    "loss_determined",
                    "seq_len",
                    "confidence",
                    "extrapolation",
                )
            },
            "law": self.law,
            "warnings": list(self.warnings),
            "prediction": pred,
        }

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """JSON text of the plan; also written atomically to ``path`` when given."""
        text = json.dumps(validate.strict_json(self.to_dict()), indent=2, allow_nan=False)
        if path is not None:
            validate.write_text(path, text, "the plan")
        return text

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Plan:
        """The Plan :meth:`to_dict` wrote. It carries no law: ``conf_int`` answers only at
        its own level."""
        try:
            return cls(
                compute=float(d["compute"]),
                model_size=float(d["params"]),
                tokens=float(d["tokens"]),
                model_size_interval=_read_interval(d["params_interval"]),
                tokens_interval=_read_interval(d["tokens_interval"]),
                tokens_per_param=None
                if d["fixed_tokens_per_param"] is None
                else float(d["fixed_tokens_per_param"]),
                exponents=None
                if d["exponents"] is None
                else {k: float(v) for k, v in d["exponents"].items()},
                prediction=Prediction.from_dict(d["prediction"]),
                law=str(d["law"]),
                warnings=tuple(d["warnings"]),
                model_size_determined=bool(d["params_determined"]),
                tokens_determined=bool(d["tokens_determined"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise InputError(f"not a plan written by Plan.to_dict: {err!r}") from None


def plan(
    compute: float,
    law: HyperparameterLaw | str | os.PathLike | None = None,
    *,
    tokens_per_param: float | None = None,
    alpha: float = DEFAULT_ALPHA,
    seq_len: int = 2048,
    recipe: dict | None = None,
) -> Plan:
    """The run to train with ``compute`` FLOPs: N and D, then lr*, B* and loss there.

    Parameters
    ----------
    compute : float
        Training compute C in FLOPs, C = 6 N D (N non-embedding parameters, D tokens).
    law : HyperparameterLaw, str or path, optional
        A fitted law, a preset name or a law JSON file, as :func:`scalelaw.predict`
        takes; None: the project's default law (a warning says so). Without
        ``tokens_per_param`` it must have a loss law.
    tokens_per_param : float, optional
        Fix D = r N (Hoffmann et al. 2022: about 20 at their compute-optimal runs)
        instead of the split that minimises the loss law.
    alpha : float
        Intervals at (1 - alpha); default 0.2 (80%).
    seq_len : int
        Tokens per sequence, to give the batch size in sequences too.
    recipe : dict, optional
        Your recipe, compared with the law's card as :func:`scalelaw.predict` does.

    Returns
    -------
    Plan
        N* (``model_size``), D* (``tokens``) with intervals from the loss law's bootstrap
        draws, and the :func:`scalelaw.predict` prediction at (N*, D*): lr, batch size
        (tokens, sequences), loss and their intervals; ``warnings``.
    """
    compute = _positive("compute", compute, " FLOPs (C = 6ND)", high=validate.MAX_COMPUTE)
    alpha = check_alpha(alpha)
    resolved, warnings = _resolve(law)
    if tokens_per_param is not None:
        r = _positive("tokens_per_param", tokens_per_param, " (D / N)", high=validate.MAX_TOKENS)
        n = math.sqrt(compute / (6.0 * r))
        d = r * n
        _check_split(compute, n, d, f"at tokens_per_param {r:g}")
        n_iv = d_iv = None
        exponents = None
    else:
        if resolved.loss is None:
            raise InputError(
                f"the law {resolved.name!r} has no loss law: the planner needs a loss law to split "
                "compute between N and D; give tokens_per_param (e.g. 20, Chinchilla's ratio) to fix "
                "D = r N instead, or use a law with a loss law (the default law has one)"
            )
        loss = _loss_law(resolved, "the planner")
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            n = float(optimal_model_size(loss.vector, compute))
        d = compute / (6.0 * n) if n > 0 else math.inf
        _check_split(compute, n, d, f"split the loss-optimal way by {resolved.name!r}'s loss law")
        n_iv = _split_interval(loss, compute, alpha)
        d_iv = None if n_iv is None else (compute / (6.0 * n_iv[1]), compute / (6.0 * n_iv[0]))
        exponents = {"N": loss.beta / (loss.alpha + loss.beta), "D": loss.alpha / (loss.alpha + loss.beta)}
    seq_len = validate.seq_len(seq_len)
    if d < seq_len:
        raise InputError(
            f"compute {compute:.3g} FLOPs gives D = {d:.3g} tokens, less than one sequence of seq_len "
            f"{seq_len}: plan a larger budget or give a shorter seq_len"
        )
    prediction = predict(n, d, law=resolved, seq_len=seq_len, alpha=alpha, recipe=recipe)
    determined = not _span(n_iv) > UNDETERMINED_SPAN  # nan (no interval): True
    if not determined:
        span = _span(n_iv)
        spans = "more than 1e300x" if not math.isfinite(span) or span > 1e300 else f"{span:.3g}x"
        warnings.append(
            f"the split of C = {compute:.3g} FLOPs between N and D is not determined: the "
            f"{1 - alpha:.0%} interval of N* spans {spans} (the loss law's exponents are uncertain); "
            "fit the loss law on more sizes and budgets, or fix tokens_per_param"
        )
    elif n_iv is None and tokens_per_param is None:
        warnings.append(f"the loss law of {resolved.name!r} has no bootstrap draws: no interval on N*, D*")
    return Plan(
        compute=compute,
        model_size=n,
        tokens=d,
        model_size_interval=n_iv,
        tokens_interval=d_iv,
        tokens_per_param=None if tokens_per_param is None else float(tokens_per_param),
        exponents=exponents,
        prediction=prediction,
        law=resolved.name,
        warnings=(*warnings, *prediction.warnings),
        model_size_determined=determined,
        tokens_determined=determined,
        fitted_law=resolved,
    )


def best_tokens(
    model_size: float, law: HyperparameterLaw | LossLaw | str | os.PathLike | None = None
) -> float:
    """The D for which N = ``model_size`` is the compute-optimal size: the tokens to train
    an N-parameter model on, spending C = 6 N D the loss-optimal way.

    A loss law alone has no best D at fixed N (its loss falls with D for ever); this is
    the D on the compute-optimal frontier: alpha A N^-alpha = beta B D^-beta, so
    D = (beta B N^alpha / (alpha A))^(1 / beta). ``plan(compute=6 * N * best_tokens(N))``
    returns N again. ``law``: as :func:`plan`, or a :class:`LossLaw`.
    """
    n = validate.model_size(model_size)
    loss = _loss_law(law, "best_tokens")
    _, a, b, alpha, beta = loss.vector
    log_d = (math.log(beta * b / (alpha * a)) + alpha * math.log(n)) / beta
    if not log_d <= math.log(validate.MAX_TOKENS):
        raise InputError(
            f"the loss law {loss.formula()} puts the compute-optimal D for N = {n:.3g} at e^{log_d:.4g} "
            f"tokens, beyond scalelaw's bound of {validate.MAX_TOKENS:.3g}"
        )
    return float(math.exp(log_d))


def cheapest_compute(
    loss: float,
    law: HyperparameterLaw | LossLaw | str | os.PathLike | None = None,
    *,
    tokens_per_param: float | None = None,
) -> float:
    """The least compute C = 6 N D (FLOPs) whose best run reaches ``loss`` (nats/token).

    Along the loss-optimal split the law's loss is
    L*(C) = E + (1 + alpha / beta) A N*^-alpha, falling with C towards E; this solves
    L*(C) = loss in closed form. With ``tokens_per_param=r`` the run is D = r N and C
    the least with L(N, r N) = loss (a 1-D root in log N). A loss at or below E, the
    law's irreducible loss, is an :class:`InputError`: no compute reaches it.
    ``plan(compute=cheapest_compute(L)).loss`` is L again.
    """
    target = _positive("loss", loss, " nats/token")
    law_ = _loss_law(law, "cheapest_compute")
    e, a, b, alpha, beta = (float(x) for x in law_.vector)
    if target <= e:
        raise InputError(
            f"loss {target:g} is at or below the law's irreducible loss E = {e:.4g} "
            f"({law_.formula()}): no compute reaches it"
        )
    if tokens_per_param is not None:
        r = _positive("tokens_per_param", tokens_per_param, " (D / N)")

        log_gap, log_r = math.log(target - e), math.log(r)

        def excess(x: float) -> float:  # log(L(N, r N) - E) - log(loss - E) at N = e^x: falls with x
            return float(np.logaddexp(math.log(a) - alpha * x, math.log(b) - beta * (log_r + x))) - log_gap

        low, high = -10.0, 10.0
        while excess(high) > 0 and high < 1e3:  # N = e^1000 is far past any bound
            high *= 2
        while excess(low) < 0 and low > -1e3:
            low *= 2
        if excess(high) > 0 or excess(low) < 0:
            raise InputError(
                f"loss {target:g} with tokens_per_param {r:g} is out of reach of {law_.formula()} "
                "within scalelaw's bounds on N and D"
            )
        log_n = optimize.brentq(excess, low, high, xtol=1e-12, rtol=1e-14)
        return _compute_or_refuse(math.log(6.0 * r) + 2 * log_n, target, law_)
    # L*(C) - E = (1 + alpha / beta) A G^-alpha (C / 6)^(-alpha beta / (alpha + beta))
    log_g = (math.log(alpha * a) - math.log(beta * b)) / (alpha + beta)
    scale = math.log1p(alpha / beta) + math.log(a) - alpha * log_g
    log_k = (math.log(target - e) - scale) * -(alpha + beta) / (alpha * beta)
    return _compute_or_refuse(math.log(6.0) + log_k, target, law_)


def _compute_or_refuse(log_c: float, target: float, law: LossLaw) -> float:
    """exp(log_c) FLOPs, or an InputError when that is beyond scalelaw's compute bound."""
    if not log_c <= math.log(validate.MAX_COMPUTE):
        raise InputError(
            f"loss {target:g} needs about e^{log_c:.4g} FLOPs under {law.formula()}, beyond scalelaw's "
            f"bound of {validate.MAX_COMPUTE:.3g}: pick a loss further above E = {law.E:.4g}"
        )
    return float(math.exp(log_c))
