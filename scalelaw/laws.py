"""Fitted-law objects: pure numpy evaluation, intervals, summaries and JSON.

Units: N = non-embedding parameters, D = training tokens, lr = peak learning rate,
batch size in tokens per optimizer step, loss in nats per token.

- :class:`PowerLaw`: ``y = exp(log_coef) * N**exponents["N"] * D**exponents["D"]``
  (either term may be absent), for the optimal lr and batch size.
- :class:`LossLaw`: ``L(N, D) = E + A / N**alpha + B / D**beta`` (Hoffmann et al. 2022).
- :class:`HyperparameterLaw`: both power laws, an optional loss law, the range of
  (N, D) they were fitted on, and the per-cell optima they came from.

Uncertainty comes from bootstrap draws of the coefficients, stored with the law so
intervals survive a JSON round trip. Intervals are normal on the log scale: the
"mean" interval uses only the spread of the draws at the query (it widens with
distance from the data because the exponents are uncertain); the "prediction"
interval, for one new run, also adds ``resid_sd``, the scatter of cell optima around
the law. The spread is the normal-equivalent scale of the draws' central band at the
interval's own level (:func:`robust_sd`; the 10th-90th percentiles for 80%), not their
standard deviation: with few cells a handful of resamples are degenerate (two nearly
equal D carry the exponent) and return exponents of 10-50, which alone would make the
standard deviation, and an 80% interval built on it, span 1e60.

An optimum on the edge of a cell's grid is censored: the cell says only that the true
optimum is at most (smallest value swept) or at least (largest) that value. A power law
fitted to cells most of which sit on one edge records it in ``bound`` (``"upper"`` or
``"lower"``) and reports one-sided intervals (:meth:`PowerLaw.reported_interval`); a
degenerate fit (every cell's optimum the same value, zero standard errors) or one
censored on both edges has ``determined = False``. ``caveat`` says why, in words.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from scalelaw.exceptions import InputError, LawFileError, show
from scalelaw.lawcard import LawCard
from scalelaw.prediction import build_prediction
from scalelaw.results import (
    DEFAULT_ALPHA,
    FittedResults,
    Summary,
    check_alpha,
    coefficient_lines,
    level,
    resolve_alpha,
)
from scalelaw.validate import existing_file, is_number, number, positive_array, strict_json, write_text

FORMAT_VERSION = 1
TERMS = ("N", "D")


BOUNDS = ("upper", "lower")

# How far one lab's optimal lr (and batch size) sits from another's at the same (N, D),
# log scale: the Step Law and DeepSeek formulas, compared over the default law's domain
# (N 2.1e8-1.07e9, D 4e9-1e11, a 9 x 9 log grid), differ by an RMS of 0.72 in ln for
# both lr and B; one recipe's spread about the labs' mean is 0.72 / sqrt(2) = 0.51.
# Two labs are a thin sample: an outside lab's sweep (issue #14) sat 2.3x (0.83 in ln,
# 1.6 sd) from the default law, outside this spread's 80% band (1.28 sd). A published
# law used as is carries it in its prediction intervals (PowerLaw.recipe_sd);
# tests/test_prior.py re-measures it from the presets.
CROSS_RECIPE_SD = 0.51
# The same comparison for the exponents, per term: Step Law's lr* ~ N^-0.713 D^0.307
# against DeepSeek's (C = 6ND) N^-0.125 D^-0.125 differ by 0.59 and 0.43, its B* ~ D^0.571
# against N^0.327 D^0.327 by 0.33 and 0.24; over sqrt(2), one recipe's sd about the
# labs' mean. A calibration on the user's cells keeps the prior's exponents but with
# this uncertainty, which cells at several N and D narrow (scalelaw.prior).
CROSS_RECIPE_EXPONENT_SD = {
    "lr": {"N": 0.42, "D": 0.31},
    "batch_size": {"N": 0.23, "D": 0.17},
}
CROSS_RECIPE_SOURCE = (
    "spread between labs' recipes: Step Law vs DeepSeek formulas over N 2.1e8-1.07e9, "
    "D 4e9-1e11 differ by RMS 0.72 in ln (lr and B); one recipe's sd 0.72/sqrt(2) = 0.51"
)
MAX_LOG = 700.0  # exp() of more overflows float64; such an interval is "unbounded" anyway
# Largest magnitude a law's coefficients may have (log scale for power laws). Fitted lr and
# batch exponents lie within +-2 and degenerate bootstrap draws reach 10-50 (module
# docstring); these bounds only keep the arithmetic finite.
MAX_COEF = 1e6
MAX_LOSS_COEF = 1e100  # E, A, B in nats/token (A ~ 400 at Chinchilla's alpha 0.34)
MAX_LOSS_EXPONENT = 1e3  # alpha, beta: fits search 0.02-1.5 (scalelaw.losslaw.EXPONENT_RANGE)


def robust_sd(values: np.ndarray, alpha: float = 2 * stats.norm.cdf(-1.0)) -> np.ndarray:
    """Normal-equivalent scale of ``values`` along the last axis from its central
    (1 - alpha): (q[1 - alpha/2] - q[alpha/2]) / (2 z[1 - alpha/2]).

    Equals the standard deviation for normal values. Fewer than alpha/2 wild values on a
    side move it little; heavier tails inside that band widen it, as they should. The
    default band is the central 68% (a standard error); an interval at level 1 - alpha
    uses its own band, so it is the draws' percentile interval when the law has no
    residual scatter.
    """
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2], axis=-1)
    return (high - low) / (2 * stats.norm.ppf(1 - alpha / 2))


def _log_interval(center: np.ndarray, half: np.ndarray) -> tuple[Any, Any]:
    """exp(center -+ half), clipped to the float range instead of overflowing."""
    low = np.exp(np.clip(center - half, -MAX_LOG, MAX_LOG))
    high = np.exp(np.clip(center + half, -MAX_LOG, MAX_LOG))
    return (float(low), float(high)) if np.ndim(low) == 0 else (low, high)


def _query(model_size: Any, tokens: Any) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) where a law is evaluated: positive finite numbers or arrays of them,
    broadcast together; anything else is an :class:`InputError` naming the argument."""
    n = positive_array(model_size, "model_size")
    d = positive_array(tokens, "tokens")
    try:
        return np.broadcast_arrays(n, d)
    except ValueError:
        raise InputError(
            f"model_size and tokens have shapes {n.shape} and {d.shape}, which do not broadcast"
        ) from None


def _log_features(terms: tuple[str, ...], model_size: Any, tokens: Any) -> np.ndarray:
    """Design rows [1, log N?, log D?] with shape (*broadcast shape, 1 + len(terms))."""
    n, d = _query(model_size, tokens)
    cols = {"N": np.log(n), "D": np.log(d)}
    return np.stack([np.ones_like(n), *[cols[t] for t in terms]], axis=-1)


class _BootstrapIntervals:
    """``interval()`` for a law with bootstrap draws: normal on the log scale with the
    draws' robust spread (:func:`robust_sd`), plus ``resid_sd`` for a new run. A law
    provides ``_log_draws(N, D)``, ``__call__(N, D)`` and ``resid_sd``."""

    resid_sd: float
    calibration: float = 1.0  # factor on the bootstrap spread of the prediction interval (see PowerLaw)
    resid_calibration: float = 1.0  # factor on its residual scatter
    recipe_sd: float = 0.0  # spread between labs' recipes, log scale (see PowerLaw)

    def _log_draws(self, model_size: Any, tokens: Any) -> np.ndarray | None:  # pragma: no cover
        raise NotImplementedError

    def interval(
        self,
        model_size: Any,
        tokens: Any,
        *,
        alpha: float | None = None,
        kind: str = "prediction",
        confidence: float | None = None,
    ) -> tuple[Any, Any] | None:
        """(low, high) at (N, D) at (1 - alpha), default 80%: ``kind="mean"`` for the law
        itself, ``"prediction"`` for one new run (adds ``resid_sd``); ``None`` when the
        law has no draws. (``confidence`` is the deprecated spelling of 1 - alpha.)"""
        alpha = resolve_alpha(alpha, confidence, f"{type(self).__name__}.interval")
        z = float(stats.norm.ppf(1 - alpha / 2))
        if kind not in ("prediction", "mean"):
            raise InputError(f"kind must be 'prediction' or 'mean', got {kind!r}")
        logs = self._log_draws(model_size, tokens)
        if logs is None and not (kind == "prediction" and self.recipe_sd > 0):
            return None
        spread = 0.0 if logs is None else robust_sd(logs, alpha)
        if kind == "prediction":
            sd = np.hypot(self.calibration * spread, self.resid_calibration * self.resid_sd)
            sd = np.hypot(sd, self.recipe_sd)
        else:
            sd = spread
        sd = np.where(np.isnan(sd), np.inf, sd)  # draws too wild to give a spread: unbounded
        center = np.log(np.asarray(self(model_size, tokens), dtype=float))
        return _log_interval(center, z * sd)


@dataclass(frozen=True)
class PowerLaw(_BootstrapIntervals):
    """``quantity* = exp(log_coef) * prod(X ** exponents[X])`` for X in (N, D).

    ``draws``: bootstrap samples, shape (n_draws, 1 + len(exponents)), columns
    ``[log_coef, *exponents]``. ``se``: analytic standard errors of the same
    columns when the fit provides them (statsmodels), else ``None``.
    ``bound``: ``None`` for a two-sided law; ``"upper"`` when the cells it was fitted to
    had their optima on the low edge of their grids (the true optimum is at most what the
    law says), ``"lower"`` for the high edge. ``determined``: ``False`` when the fit
    cannot identify the coefficients (degenerate: every cell's optimum the same value, or
    censored on both edges); its standard errors are then not reported. ``caveat``: why,
    in words (empty for a plain law). ``calibration`` and ``resid_calibration``: the
    factors on the prediction interval's bootstrap spread and residual scatter that make
    held-out optima land inside the 80% interval 80% of the time (learned by
    :func:`scalelaw.fit` from its own table's held-out folds, :mod:`scalelaw.calibration`;
    1.0: the bootstrap as is). ``recipe_sd``: the spread of the optimum between labs'
    recipes (log scale, :data:`CROSS_RECIPE_SD`), added to prediction intervals of a
    published law used as is on someone else's recipe; 0 for a law fitted or calibrated
    on the user's own runs (:func:`scalelaw.fit` with ``prior=``).
    """

    quantity: str
    unit: str
    log_coef: float
    exponents: dict[str, float]
    resid_sd: float = 0.0
    draws: np.ndarray | None = field(default=None, compare=False, repr=False)
    se: tuple[float, ...] | None = None
    bound: str | None = None
    determined: bool = True
    caveat: str = ""
    calibration: float = 1.0
    resid_calibration: float = 1.0
    recipe_sd: float = 0.0

    def __post_init__(self) -> None:
        where = self.quantity if isinstance(self.quantity, str) else "PowerLaw"
        for name, value in _power_fields(vars(self), where).items():
            object.__setattr__(self, name, value)

    @property
    def terms(self) -> tuple[str, ...]:
        return tuple(t for t in TERMS if t in self.exponents)

    @property
    def coef(self) -> float:
        return math.exp(self.log_coef)

    @property
    def params(self) -> np.ndarray:
        return np.array([self.log_coef, *[self.exponents[t] for t in self.terms]])

    def __call__(self, model_size: Any, tokens: Any) -> Any:
        with np.errstate(over="ignore", under="ignore"):  # inf / 0: refused where an answer is given
            value = np.exp(_log_features(self.terms, model_size, tokens) @ self.params)
        return float(value) if value.ndim == 0 else value

    def _log_draws(self, model_size: Any, tokens: Any) -> np.ndarray | None:
        """log(prediction) at (N, D) under each bootstrap draw: shape (..., n_draws)."""
        if self.draws is None or len(self.draws) < 2:
            return None
        features = _log_features(self.terms, model_size, tokens)
        with np.errstate(over="ignore", invalid="ignore"):  # wild draws: an unbounded interval
            return features @ np.asarray(self.draws).T

    def log_spread(self, model_size: Any, tokens: Any) -> np.ndarray | None:
        """Spread of log(prediction) over the bootstrap draws (:func:`robust_sd`)."""
        logs = self._log_draws(model_size, tokens)
        return None if logs is None else robust_sd(logs)

    def reported_interval(
        self, model_size: float, tokens: float, *, alpha: float | None = None
    ) -> tuple[float, float] | None:
        """The prediction interval at one (N, D) as it should be reported, in the law's unit.

        Two-sided for a plain law. For ``bound == "upper"``: ``(0.0, high)``, ``high`` the
        top of the two-sided interval (the true optimum is at most that); for ``"lower"``:
        ``(low, inf)``. For an undetermined law without a bound: ``(0.0, inf)``.
        ``None`` when the law publishes no uncertainty and has no bound.
        """
        two_sided = self.interval(model_size, tokens, alpha=alpha)
        value = float(self(model_size, tokens))
        low, high = (value, value) if two_sided is None else (float(two_sided[0]), float(two_sided[1]))
        if self.bound == "upper":
            return 0.0, max(high, value)
        if self.bound == "lower":
            return min(low, value), math.inf
        if not self.determined:
            return 0.0, math.inf
        return two_sided

    @property
    def status(self) -> str:
        """``""`` for a plain law, else ``"upper bound"``, ``"lower bound"`` or
        ``"not determined"`` (a bound wins: it is the statement the law can still make)."""
        if self.bound is not None:
            return f"{self.bound} bound"
        return "" if self.determined else "not determined"

    def formula(self) -> str:
        body = " * ".join(f"{t}^{self.exponents[t]:+.3f}" for t in self.terms)
        return f"{self.quantity} = {self.coef:.4g}" + (f" * {body}" if body else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "quantity": self.quantity,
            "unit": self.unit,
            "log_coef": self.log_coef,
            "exponents": dict(self.exponents),
            "resid_sd": self.resid_sd,
            "se": list(self.se) if self.se is not None else None,
            "draws": None if self.draws is None else np.asarray(self.draws).tolist(),
            "bound": self.bound,
            "determined": self.determined,
            "caveat": self.caveat,
            "calibration": self.calibration,
            "resid_calibration": self.resid_calibration,
            "recipe_sd": self.recipe_sd,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "power law") -> PowerLaw:
        """The law :meth:`to_dict` wrote; ``where`` names it (its key in a law file) in
        errors. Every field is checked (:func:`_power_fields`)."""
        d = _object(d, where)
        missing = [k for k in ("quantity", "unit", "log_coef", "exponents") if k not in d]
        if missing:
            raise InputError(f"{where}: {_missing(missing)}")
        required = ("quantity", "unit", "log_coef", "exponents")
        fields = {k: v for k, v in d.items() if k in POWER_FIELDS and (v is not None or k in required)}
        unknown = sorted(str(k) for k in set(d) - set(POWER_FIELDS))
        if unknown:
            raise InputError(f"{where}: unknown key(s) {unknown}; valid keys: {', '.join(POWER_FIELDS)}")
        return cls(**_power_fields(fields, where))


POWER_FIELDS = (
    "quantity",
    "unit",
    "log_coef",
    "exponents",
    "resid_sd",
    "se",
    "draws",
    "bound",
    "determined",
    "caveat",
    "calibration",
    "resid_calibration",
    "recipe_sd",
)


def _missing(keys: list[str]) -> str:
    """'missing key 'source'' (and the others, if several)."""
    return f"missing key {keys[0]!r}" + (f" (and {', '.join(map(repr, keys[1:]))})" if len(keys) > 1 else "")


def _object(d: Any, where: str) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise InputError(f"{where} must be a JSON object (a dict), got {show(d)}")
    return d


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"{name} must be text, got {show(value)}")
    return value


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name} must be true or false, got {show(value)}")
    return bool(value)


def _draws(value: Any, name: str, columns: int, limit: float = MAX_COEF) -> np.ndarray:
    """Bootstrap draws as a finite float array of shape (n, columns)."""
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):  # ragged rows
        array = np.asarray([None])
    if array.dtype.kind == "O":
        try:
            array = np.asarray(value, dtype=float) if all(map(is_number, array.ravel())) else array
        except (TypeError, ValueError):
            pass
    if array.dtype.kind not in "iuf" or array.ndim != 2 or array.shape[1] != columns:
        raise InputError(
            f"{name} must be a list of rows of {columns} numbers each, got "
            + (f"shape {array.shape}" if array.dtype.kind in "iufb" else f"{show(value)[:80]}")
        )
    array = array.astype(float)
    ok = np.isfinite(array) & (np.abs(array) <= limit)
    if not ok.all():
        raise InputError(
            f"{name} must hold finite numbers of at most {limit:g} in size, got {show(array[~ok][0])}"
        )
    return array


def _power_fields(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """A power law's fields checked and converted (names in errors start with ``where``):
    finite coefficients, exponents only for N and D, a non-negative ``resid_sd``, draws
    of the right shape, positive interval factors."""
    out: dict[str, Any] = {}
    for key in ("quantity", "unit"):
        if key in raw:
            out[key] = _text(raw[key], f"{where}.{key}")
    if "log_coef" in raw:
        out["log_coef"] = number(raw["log_coef"], f"{where}.log_coef", low=-MAX_COEF, high=MAX_COEF)
    if "exponents" in raw:
        exponents = raw["exponents"]
        if not isinstance(exponents, dict):
            raise InputError(
                f'{where}.exponents must be an object of term: exponent, e.g. {{"N": -0.7, "D": 0.3}}, '
                f"got {show(exponents)}"
            )
        unknown = sorted(str(k) for k in set(exponents) - set(TERMS))
        if unknown:
            raise InputError(f"{where}.exponents: unknown term(s) {unknown}; use N and D")
        out["exponents"] = {
            t: number(v, f"{where}.exponents.{t}", low=-MAX_COEF, high=MAX_COEF) for t, v in exponents.items()
        }
    for key, low, low_open in (
        ("resid_sd", 0.0, False),
        ("calibration", 0.0, True),
        ("resid_calibration", 0.0, True),
        ("recipe_sd", 0.0, False),
    ):
        if key in raw:
            out[key] = number(raw[key], f"{where}.{key}", low=low, low_open=low_open, high=MAX_COEF)
    n_terms = len(out.get("exponents", raw.get("exponents", ())))
    if raw.get("se") is not None:
        se = raw["se"]
        if isinstance(se, (str, bytes, dict)) or not hasattr(se, "__len__") or len(se) != 1 + n_terms:
            raise InputError(
                f"{where}.se must be a list of {1 + n_terms} standard errors or null, got {show(se)}"
            )
        # NaN (null in JSON): a standard error the fit could not give
        out["se"] = tuple(math.nan if v is None else _se(v, f"{where}.se") for v in se)
    if raw.get("draws") is not None:
        out["draws"] = _draws(raw["draws"], f"{where}.draws", 1 + n_terms)
    if raw.get("bound") is not None and raw["bound"] not in BOUNDS:
        raise InputError(f"{where}.bound must be null, 'upper' or 'lower', got {show(raw['bound'])}")
    if "determined" in raw:
        out["determined"] = _flag(raw["determined"], f"{where}.determined")
    if "caveat" in raw:
        out["caveat"] = _text(raw["caveat"], f"{where}.caveat")
    return {**raw, **out}


def _se(value: Any, name: str) -> float:
    if is_number(value) and math.isnan(float(value)):
        return math.nan
    return number(value, name, low=0, high=MAX_COEF)


CALIBRATION_MIN_RATIOS = 4  # fewer held-out optima than this: a law's intervals stay uncalibrated


def describe_calibration(c: dict[str, Any]) -> str:
    """One line on how a law's intervals were calibrated (``scalelaw.calibration``)."""
    if not c["folds"]:
        return "80% intervals not calibrated: too few sizes or budgets to hold out"
    parts = []
    for name, key, n in (("lr", "lr", c["lr_points"]), ("batch", "batch_size", c["batch_points"])):
        resid = c.get("lr_resid" if key == "lr" else "batch_resid", c[key])
        factors = f"spread x{c[key]:.2f}, scatter x{resid:.2f}"
        parts.append(
            f"{name} {factors} ({n} held-out optima)"
            if n >= CALIBRATION_MIN_RATIOS
            else f"{name} not ({n} optima)"
        )
    return f"80% intervals calibrated on {c['folds']} held-out folds: " + "; ".join(parts)


LOSS_PARAMS = ("E", "A", "B", "alpha", "beta")


@dataclass(frozen=True)
class LossLaw(_BootstrapIntervals, FittedResults):
    """``L(N, D) = E + A / N**alpha + B / D**beta`` in nats/token.

    ``draws``: bootstrap samples, shape (n_draws, 5), columns ``LOSS_PARAMS``.
    ``resid_sd``: scatter of the fitted points around the law on the log-loss scale.
    ``n_points``: how many points it was fitted to; ``method``: how, in words (empty
    for laws saved before it was recorded).
    """

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    resid_sd: float = 0.0
    n_points: int = 0
    draws: np.ndarray | None = field(default=None, compare=False, repr=False)
    method: str = ""

    def __post_init__(self) -> None:
        for name, value in _loss_fields(vars(self), "loss").items():
            object.__setattr__(self, name, value)

    @property
    def vector(self) -> np.ndarray:
        """(E, A, B, alpha, beta) as an array (``params`` is the same as a Series by term)."""
        return np.array([self.E, self.A, self.B, self.alpha, self.beta])

    @staticmethod
    def evaluate(params: np.ndarray, model_size: Any, tokens: Any) -> np.ndarray:
        """Loss for parameter rows ``params`` (..., 5) at (N, D) broadcast against (...)."""
        p = np.asarray(params, dtype=float)
        n, d = np.asarray(model_size, dtype=float), np.asarray(tokens, dtype=float)
        return p[..., 0] + p[..., 1] / n ** p[..., 3] + p[..., 2] / d ** p[..., 4]

    def predict(self, model_size: Any, tokens: Any) -> Any:
        """Predicted loss: a float for scalar inputs, an array for array inputs."""
        n, d = _query(model_size, tokens)
        with np.errstate(over="ignore", under="ignore"):  # N^alpha -> inf: that term is 0
            value = self.E + self.A / n**self.alpha + self.B / d**self.beta
        return float(value) if value.ndim == 0 else value

    __call__ = predict

    def get_prediction(self, model_size: Any, tokens: Any, *, alpha: float | None = None) -> pd.DataFrame:
        """The statsmodels-style prediction table at (N, D) points (scalars or arrays):
        columns ``params``, ``tokens``, ``mean`` (the law's loss), ``mean_ci_lower`` /
        ``mean_ci_upper`` (the law's own uncertainty) and ``obs_ci_lower`` /
        ``obs_ci_upper`` (one new run: adds the residual scatter), at (1 - alpha),
        default 80% (``predict`` stays the plain number, as in ``law(N, D)``)."""
        n, d = (np.atleast_1d(x) for x in _query(model_size, tokens))
        frame = pd.DataFrame({"params": n, "tokens": d, "mean": np.atleast_1d(self.predict(n, d))})
        for kind, prefix in (("mean", "mean_ci"), ("prediction", "obs_ci")):
            band = self.interval(n, d, alpha=alpha, kind=kind)
            low, high = (np.full(len(n), np.nan), np.full(len(n), np.nan)) if band is None else band
            frame[f"{prefix}_lower"], frame[f"{prefix}_upper"] = np.atleast_1d(low), np.atleast_1d(high)
        return frame

    def _log_draws(self, model_size: Any, tokens: Any) -> np.ndarray | None:
        """log(loss) at (N, D) under each bootstrap draw: shape (..., n_draws)."""
        if self.draws is None or len(self.draws) < 2:
            return None
        n, d = _query(model_size, tokens)
        with np.errstate(over="ignore", under="ignore"):
            return np.log(self.evaluate(self.draws, n[..., None], d[..., None]))

    def formula(self) -> str:
        return f"loss = {self.E:.4g} + {self.A:.4g} / N^{self.alpha:.3f} + {self.B:.4g} / D^{self.beta:.3f}"

    def coefficients(self, alpha: float = DEFAULT_ALPHA) -> pd.DataFrame:
        """E, A, B, alpha, beta: estimate, bootstrap std err and (1 - alpha) percentile interval."""
        alpha = check_alpha(alpha)
        draws = None if self.draws is None else np.asarray(self.draws)
        rows = []
        for j, term in enumerate(LOSS_PARAMS):
            se, lo, hi = _spread(draws[:, j] if draws is not None else None, alpha)
            rows.append((term, float(self.vector[j]), se, lo, hi))
        return pd.DataFrame(rows, columns=["term", "estimate", "std_err", "ci_lower", "ci_upper"])

    def summary(self, alpha: float = DEFAULT_ALPHA) -> Summary:
        """The formula, its coefficients with (1 - alpha) intervals and the residual scatter."""
        table = self.coefficients(alpha).set_index("term")
        lines = [f"  {self.formula()}   (nats/token)", *coefficient_lines(table, alpha)]
        lines.append(f"  residual sd of log loss: {self.resid_sd:.3g}")
        if self.method:
            lines.append(f"  fitted by {self.method}")
        return Summary("\n".join(lines), table, "loss law")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {k: float(getattr(self, k)) for k in LOSS_PARAMS}
        d.update(
            resid_sd=self.resid_sd,
            n_points=self.n_points,
            draws=None if self.draws is None else np.asarray(self.draws).tolist(),
            method=self.method,
        )
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "loss") -> LossLaw:
        """The law :meth:`to_dict` wrote; every field checked (:func:`_loss_fields`)."""
        d = _object(d, where)
        missing = [k for k in LOSS_PARAMS if k not in d]
        if missing:
            raise InputError(f"{where}: {_missing(missing)}")
        unknown = sorted(str(k) for k in set(d) - set(LOSS_FIELDS))
        if unknown:
            raise InputError(f"{where}: unknown key(s) {unknown}; valid keys: {', '.join(LOSS_FIELDS)}")
        fields = {k: v for k, v in d.items() if v is not None or k in LOSS_PARAMS}
        return cls(**_loss_fields(fields, where))


LOSS_FIELDS = (*LOSS_PARAMS, "resid_sd", "n_points", "draws", "method")


def _loss_fields(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """A loss law's fields checked and converted: E, A, B >= 0 and alpha, beta > 0, all
    finite (a negative exponent makes the loss grow with N or D without bound), a
    non-negative ``resid_sd`` and ``n_points``, draws of five finite columns obeying the
    same signs."""
    out: dict[str, Any] = {}
    for key in LOSS_PARAMS:
        if key in raw:
            positive = key in ("alpha", "beta")
            high = MAX_LOSS_EXPONENT if positive else MAX_LOSS_COEF
            out[key] = number(raw[key], f"{where}.{key}", low=0, low_open=positive, high=high)
    if "resid_sd" in raw:
        out["resid_sd"] = number(raw["resid_sd"], f"{where}.resid_sd", low=0, high=MAX_COEF)
    if "n_points" in raw:
        out["n_points"] = number(raw["n_points"], f"{where}.n_points", low=0, integral=True)
    if raw.get("draws") is not None:
        draws = _draws(raw["draws"], f"{where}.draws", len(LOSS_PARAMS), MAX_LOSS_COEF)
        bad = (draws[:, :3] < 0).any(axis=1) | (draws[:, 3:] <= 0).any(axis=1)
        bad |= (draws[:, :3] > MAX_LOSS_COEF).any(axis=1) | (draws[:, 3:] > MAX_LOSS_EXPONENT).any(axis=1)
        if bad.any():
            raise InputError(
                f"{where}.draws: row {int(np.flatnonzero(bad)[0])} has an E, A or B outside "
                f"[0, {MAX_LOSS_COEF:g}] or an alpha or beta outside (0, {MAX_LOSS_EXPONENT:g}]"
            )
        out["draws"] = draws
    if "method" in raw:
        out["method"] = _text(raw["method"], f"{where}.method")
    return {**raw, **out}


@dataclass(frozen=True)
class HyperparameterLaw(FittedResults):
    """Optimal lr*(N, D), batch size B*(N, D) in tokens and, optionally, loss L(N, D).

    ``fit_range``: {"N": (min, max), "D": (min, max)} of the cells the law was fitted
    on (``None`` if unknown); predictions report how far outside it they lie.
    ``optima``: the per-cell optima table the law was fitted from (see
    :func:`scalelaw.optima.cell_optima`), or ``None`` for published presets.
    ``card``: the recipe and domain of the runs behind the law (:class:`LawCard`), or
    ``None`` when unknown (law files written before cards still load).
    ``timescale``: AdamW's optimal timescale 1 / (lr λ) as a fraction of training steps,
    a power law in (N, D) (:mod:`scalelaw.timescale`), where the runs varied weight
    decay; else ``None``.
    """

    name: str
    source: str
    lr: PowerLaw
    batch_size: PowerLaw
    loss: LossLaw | None = None
    fit_range: dict[str, tuple[float, float]] | None = None
    method: str = "preset"
    notes: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)
    optima: pd.DataFrame | None = field(default=None, compare=False, repr=False)
    card: LawCard | None = None
    timescale: PowerLaw | None = None

    def __post_init__(self) -> None:
        for key in ("name", "source", "method"):
            _text(getattr(self, key), key)
        for key, kind, optional in (
            ("lr", PowerLaw, False),
            ("batch_size", PowerLaw, False),
            ("loss", LossLaw, True),
            ("timescale", PowerLaw, True),
            ("card", LawCard, True),
        ):
            value = getattr(self, key)
            if not (isinstance(value, kind) or (optional and value is None)):
                what = kind.__name__ + (" or None" if optional else "")
                raise InputError(f"{key} must be a {what}, got {show(value)}")
        if self.fit_range is not None:
            object.__setattr__(self, "fit_range", _fit_range(self.fit_range, "fit_range"))
        if isinstance(self.notes, str) or not all(isinstance(n, str) for n in self.notes):
            raise InputError(f"notes must be a list of text lines, got {show(self.notes)}")
        object.__setattr__(self, "notes", tuple(self.notes))
        if not isinstance(self.settings, dict):
            raise InputError(f"settings must be a dict, got {show(self.settings)}")
        if self.optima is not None and not isinstance(self.optima, pd.DataFrame):
            raise InputError(f"optima must be a DataFrame or None, got {type(self.optima).__name__}")

    def predict(
        self,
        model_size: float | None,
        tokens: float,
        *,
        seq_len: int = 2048,
        alpha: float | None = None,
        confidence: float | None = None,
        recipe: dict[str, Any] | None = None,
        shape=None,
    ):
        """This law at (N = ``model_size``, D = ``tokens``): a ``Prediction`` (intervals at
        1 - alpha, 80% by default; ``confidence`` is deprecated; ``recipe`` is compared
        with the law's card; ``shape`` a :class:`scalelaw.target.TargetShape`); the same as
        ``scalelaw.predict(..., law=self)``."""
        alpha = resolve_alpha(alpha, confidence, "HyperparameterLaw.predict")
        return build_prediction(
            self, model_size, tokens, seq_len=seq_len, alpha=alpha, recipe=recipe, shape=shape
        )

    get_prediction = predict  # the statsmodels name

    _index = ("law", "term")

    def coefficients(self, alpha: float = DEFAULT_ALPHA) -> pd.DataFrame:
        """Tidy table of every fitted coefficient, intervals at (1 - alpha).

        Columns: law, term, estimate, std_err, ci_lower, ci_upper. ``term`` is
        ``log_coef`` (natural log of the prefactor) or ``exp_N`` / ``exp_D`` for power
        laws, and E, A, B, alpha, beta for the loss law. Standard errors are analytic
        when the fit gives them (statsmodels OLS), else the bootstrap standard
        deviation (:func:`robust_sd`); intervals are then bootstrap percentiles. NaN when unknown, and for
        a law that is not determined (``PowerLaw.determined``): a degenerate fit's
        near-zero standard errors are not evidence of precision.
        """
        alpha = check_alpha(alpha)
        rows = []
        for law in (self.lr, self.batch_size):
            names = ["log_coef", *[f"exp_{t}" for t in law.terms]]
            draws = None if law.draws is None else np.asarray(law.draws)
            for j, (term, est) in enumerate(zip(names, law.params, strict=True)):
                se, lo, hi = _spread(draws[:, j] if draws is not None else None, alpha)
                if not law.determined:
                    se = lo = hi = float("nan")
                elif law.se is not None:
                    se = law.se[j]
                    if self.method == "prior":  # a Gaussian posterior: no residual degrees of freedom
                        t = stats.norm.ppf(1 - alpha / 2)
                    else:
                        dof = max(len(self.optima) - len(names), 1) if self.optima is not None else 1
                        t = stats.t.ppf(1 - alpha / 2, dof)
                    lo, hi = est - t * se, est + t * se
                rows.append((law.quantity, term, est, se, lo, hi))
        if self.loss is not None:
            loss = self.loss.coefficients(alpha)
            rows += [("loss", *r) for r in loss.itertuples(index=False)]
        return pd.DataFrame(rows, columns=["law", "term", "estimate", "std_err", "ci_lower", "ci_upper"])

    def summary(self, alpha: float = DEFAULT_ALPHA) -> Summary:
        """Formulas, coefficients with (1 - alpha) intervals, range, notes: a :class:`Summary`
        (its text as a str; ``.frame`` the coefficients; HTML in notebooks)."""
        lines = [
            f"scalelaw law: {self.name}",
            f"  source: {self.source}",
            f"  method: {self.method}",
        ]
        if "average_weight" in self.settings:
            w = self.settings["average_weight"]
            lines.append(
                f"  weights: surface {w:.2f}, band {1 - w:.2f} (least mean + max error on "
                f"{self.settings['average_folds']} extrapolation folds)"
            )
        if self.fit_range:
            n, d = self.fit_range["N"], self.fit_range["D"]
            lines.append(f"  fitted on N in [{n[0]:.3g}, {n[1]:.3g}], D in [{d[0]:.3g}, {d[1]:.3g}]")
        lines.append("")
        for part in (self.lr, self.batch_size):
            status = f"   [{part.status.upper()}]" if part.status else ""
            lines.append(f"  {part.formula()}   ({part.unit}){status}")
        if self.loss is not None:
            lines.append(f"  {self.loss.formula()}   (nats/token)")
        if self.timescale is not None:
            ts = self.timescale
            status = "" if ts.determined else "   [NOT DETERMINED]"
            spread = "" if ts.se is None else " (std err " + ", ".join(f"{v:.2g}" for v in ts.se) + ")"
            lines.append(f"  {ts.formula()}   ({ts.unit}; AdamW 1/(lr λ)){spread}{status}")
            if ts.caveat:
                lines.append(f"  timescale law caveat: {ts.caveat}")
        table = self.coefficients(alpha)
        if table["std_err"].notna().any():
            pct = level(alpha)
            lines += [
                "",
                f"  {'law':<11}{'term':<10}{'estimate':>12}{'std err':>11}{pct + ' interval':>28}",
            ]
            undetermined = {p.quantity for p in (self.lr, self.batch_size) if not p.determined}
            for r in table.itertuples():
                if r.law in undetermined:
                    lines.append(f"  {r.law:<11}{r.term:<10}{r.estimate:>12.4g}{'n/a':>11}   not determined")
                    continue
                lines.append(
                    f"  {r.law:<11}{r.term:<10}{r.estimate:>12.4g}{r.std_err:>11.3g}"
                    f"   [{r.ci_lower:>10.4g}, {r.ci_upper:>10.4g}]"
                )
        if self.optima is not None:
            unbracketed = int((~self.optima["bracketed"]).sum())
            lines += [
                "",
                f"  cells: {len(self.optima)} ({unbracketed} with an unbracketed optimum)",
            ]
        for part in (self.lr, self.batch_size):
            if part.caveat:
                lines.append(f"  {part.quantity} law {part.status or 'caveat'}: {part.caveat}")
        if "calibration" in self.settings:
            lines.append(f"  intervals: {describe_calibration(self.settings['calibration'])}")
        for note in self.notes:
            lines.append(f"  note: {note}")
        if self.card is not None:
            lines += ["", "  law card:", *[f"    {line}" for line in self.card.describe().splitlines()]]
        return Summary("\n".join(lines), table.set_index(["law", "term"]), f"scalelaw law: {self.name}")

    def __str__(self) -> str:
        return str(self.summary())

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "scalelaw.law",
            "version": FORMAT_VERSION,
            "name": self.name,
            "source": self.source,
            "method": self.method,
            "lr": self.lr.to_dict(),
            "batch_size": self.batch_size.to_dict(),
            "loss": None if self.loss is None else self.loss.to_dict(),
            "fit_range": None if self.fit_range is None else {k: list(v) for k, v in self.fit_range.items()},
            "notes": list(self.notes),
            "settings": self.settings,
            "optima": None if self.optima is None else _records(self.optima),
            "card": None if self.card is None else self.card.to_dict(),
            "timescale": None if self.timescale is None else self.timescale.to_dict(),
        }

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """JSON text of the law (strict JSON: a NaN, e.g. a standard error the fit could not
        give, is written as null); also written atomically to ``path`` when given."""
        text = json.dumps(strict_json(self.to_dict()), indent=1, allow_nan=False)
        if path is not None:
            write_text(path, text, "the law")
        return text

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "<dict>") -> HyperparameterLaw:
        """The law :meth:`to_dict` wrote. Every field is checked: a missing or unknown key,
        text where a number belongs, NaN, an infinite or sign-wrong coefficient, a list of
        the wrong shape raise :class:`LawFileError` naming ``source`` and the key."""
        if not isinstance(d, dict) or d.get("format") != "scalelaw.law":
            raise LawFileError(f'{source}: not a scalelaw law file (missing "format": "scalelaw.law")')
        if d.get("version") != FORMAT_VERSION or isinstance(d.get("version"), bool):
            raise LawFileError(f"{source}: law file version {d.get('version')!r} is not {FORMAT_VERSION}")
        unknown = sorted(str(k) for k in set(d) - set(LAW_KEYS))
        if unknown:
            raise LawFileError(f"{source}: unknown key(s) {unknown}; valid keys: {', '.join(LAW_KEYS)}")
        missing = [k for k in ("name", "source", "method", "lr", "batch_size") if k not in d]
        if missing:
            raise LawFileError(f"{source}: {_missing(missing)}")
        try:
            return cls(
                name=_text(d["name"], "name"),
                source=_text(d["source"], "source"),
                method=_text(d["method"], "method"),
                lr=PowerLaw.from_dict(d["lr"], "lr"),
                batch_size=PowerLaw.from_dict(d["batch_size"], "batch_size"),
                loss=None if d.get("loss") is None else LossLaw.from_dict(d["loss"], "loss"),
                fit_range=None if d.get("fit_range") is None else _fit_range(d["fit_range"], "fit_range"),
                notes=_notes(d.get("notes") or []),
                settings=_settings(d.get("settings") or {}),
                optima=None if d.get("optima") in (None, []) else _optima(d["optima"]),  # []: no cells
                card=None if d.get("card") is None else _card(d["card"]),
                timescale=None
                if d.get("timescale") is None
                else PowerLaw.from_dict(d["timescale"], "timescale"),
            )
        except InputError as err:
            raise LawFileError(f"{source}: {err}") from None


LAW_KEYS = (
    "format",
    "version",
    "name",
    "source",
    "method",
    "lr",
    "batch_size",
    "loss",
    "fit_range",
    "notes",
    "settings",
    "optima",
    "card",
    "timescale",
)
# Per-cell optima columns that summaries, the report and the weight-decay rule read.
OPTIMA_COLUMNS = (
    "params",
    "tokens",
    "lr_opt",
    "lr_opt_lo",
    "lr_opt_hi",
    "batch_size_opt",
    "batch_size_opt_lo",
    "batch_size_opt_hi",
    "loss_opt",
    "bracketed",
)


def _fit_range(value: Any, where: str) -> dict[str, tuple[float, float]]:
    """``{"N": [min, max], "D": [min, max]}``: positive finite, min <= max."""
    if not isinstance(value, dict) or set(value) != set(TERMS):
        raise InputError(f'{where} must be {{"N": [min, max], "D": [min, max]}}, got {show(value)}')
    out = {}
    for term in TERMS:
        pair = value[term]
        if isinstance(pair, (str, bytes, dict)) or not hasattr(pair, "__len__") or len(pair) != 2:
            raise InputError(f"{where}.{term} must be [min, max], got {show(pair)}")
        low, high = (number(v, f"{where}.{term}", low=0, low_open=True) for v in pair)
        if low > high:
            raise InputError(f"{where}.{term} must be [min, max] with min <= max, got {show(pair)}")
        out[term] = (low, high)
    return out


def _notes(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
        raise InputError(f"notes must be a list of text lines, got {show(value)}")
    return tuple(value)


def _settings(value: Any) -> dict[str, Any]:
    """The fit's settings; the ones summaries format are checked as numbers."""
    settings = {k: v for k, v in _object(value, "settings").items() if v is not None}  # null: unknown
    for key, low, high in (("average_weight", 0, 1), ("average_folds", 0, None), ("interaction", None, None)):
        if key in settings:
            number(settings[key], f"settings.{key}", low=low, high=high)
    if "calibration" in settings:
        c = _object(settings["calibration"], "settings.calibration")
        for key in ("folds", "lr_points", "batch_points", "lr", "batch_size", "lr_resid", "batch_resid"):
            required = key not in ("lr_resid", "batch_resid")
            if key in c or required:
                number(c.get(key), f"settings.calibration.{key}", low=0)
    return settings


def _optima(value: Any) -> pd.DataFrame:
    """The per-cell optima records: the columns that are read, with numbers that are numbers
    (missing as null), positive N and D."""
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise InputError(f"optima must be a list of cell records (objects), got {show(value)[:80]}")
    table = pd.DataFrame(value)
    missing = [c for c in OPTIMA_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"optima: the cell records miss column(s) {missing}")
    for col in OPTIMA_COLUMNS:
        for row, v in enumerate(table[col]):
            if col == "bracketed":
                _flag(v, f"optima[{row}].bracketed")
            elif col in ("params", "tokens", "lr_opt", "batch_size_opt", "loss_opt"):
                number(v, f"optima[{row}].{col}", low=0, low_open=True)
            elif v is not None and not (is_number(v) and math.isnan(float(v))):
                number(v, f"optima[{row}].{col}", low=0, low_open=True)
    return table


def _card(value: Any) -> LawCard:
    try:
        return LawCard.from_dict(value)
    except InputError as err:
        raise InputError(f"card: {err}") from None


def load_law(path: str | os.PathLike) -> HyperparameterLaw:
    """Load a law saved with :meth:`HyperparameterLaw.to_json`.

    Raises :class:`LawFileError` naming the file (and the key) for a missing or unreadable
    file, text that is not JSON, and any field that does not hold what it should
    (:meth:`HyperparameterLaw.from_dict`)."""
    path = existing_file(path, "law path", LawFileError)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise LawFileError(f"{path}: not valid JSON ({err})") from None
    except OSError as err:
        raise LawFileError(f"{path}: cannot read the file ({err.strerror or err})") from None
    except RecursionError:
        raise LawFileError(f"{path}: not a law file (nested too deeply)") from None
    return HyperparameterLaw.from_dict(data, source=str(path))


def _spread(draws: np.ndarray | None, alpha: float) -> tuple[float, float, float]:
    """(std err, low, high) of one coefficient from its bootstrap draws: the robust scale
    (:func:`robust_sd`) and the (alpha/2, 1 - alpha/2) percentiles; NaN without draws."""
    if draws is None or len(draws) < 2:
        return float("nan"), float("nan"), float("nan")
    lo, hi = np.quantile(draws, [alpha / 2, 1 - alpha / 2])
    return float(robust_sd(np.asarray(draws, float))), float(lo), float(hi)


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(table.to_json(orient="records"))
