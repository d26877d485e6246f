"""The results protocol every fitted object follows, the statsmodels way.

- ``params`` and ``bse``: pandas Series of the estimates and their standard errors,
  indexed by term (``(law, term)`` for a :class:`~scalelaw.HyperparameterLaw`);
- ``conf_int(alpha=0.2)``: a DataFrame with columns ``lower`` and ``upper``, the
  (1 - alpha) intervals, same index;
- ``coefficients(alpha=0.2)``: the tidy table all of these are read from (index columns,
  ``estimate``, ``std_err``, ``ci_lower``, ``ci_upper``);
- ``summary(alpha=0.2)``: a :class:`Summary`, a ``str`` holding the text report that
  also renders as HTML (``_repr_html_``, which notebooks and the report use) and as
  the coefficient DataFrame (``.frame``).

One interval convention: ``alpha``, as in statsmodels, defaulting to 0.2, the 80%
intervals the product reports; every printed interval says its level.
"""

from __future__ import annotations

import html
import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from scalelaw.exceptions import InputError, show
from scalelaw.validate import is_number  # numpy floats are numbers; bools are not

DEFAULT_ALPHA = 0.2  # 80% intervals, the level scalelaw reports everywhere
# alpha nearer 0 or 1 than this: z = Phi^-1(1 - alpha/2) leaves the float range (alpha 5e-324
# gives z = inf) and a "100%" interval is no statement; 1e-6 is a 99.9999% interval.
MIN_ALPHA = 1e-6
COLUMNS = ("estimate", "std_err", "ci_lower", "ci_upper")


def check_alpha(alpha: float) -> float:
    """``alpha`` as a float in (0, 1), or an InputError naming it."""
    if not is_number(alpha) or not MIN_ALPHA <= alpha <= 1 - MIN_ALPHA:
        raise InputError(
            f"alpha must be in (0, 1), at least {MIN_ALPHA:g} from either end (0.2 gives 80% intervals), "
            f"got {show(alpha)}"
        )
    return float(alpha)


def resolve_alpha(alpha: float | None, confidence: float | None, where: str, stacklevel: int = 3) -> float:
    """The alpha of a call that may still use the deprecated ``confidence = 1 - alpha``.

    ``stacklevel``: frames up to the user's call (3: the caller of the function that
    calls this), so the warning points at their line and shows under default filters.
    """
    if confidence is not None:
        warnings.warn(
            f"{where}(confidence=c) is deprecated; use alpha=1 - c (alpha=0.2: 80% intervals)",
            DeprecationWarning,
            stacklevel=stacklevel,
        )
        if alpha is not None:
            raise InputError(f"{where}: give alpha or confidence, not both")
        if not is_number(confidence) or not MIN_ALPHA <= confidence <= 1 - MIN_ALPHA:
            raise InputError(f"confidence must be in (0, 1), got {show(confidence)}")
        return 1.0 - float(confidence)
    return check_alpha(DEFAULT_ALPHA if alpha is None else alpha)


def std_err_from_interval(estimate: float, low: float, high: float, alpha: float) -> float:
    """Normal-equivalent standard error of a positive quantity from its (1 - alpha) interval.

    The interval is read on the log scale, where scalelaw's intervals are built, and
    carried to the quantity's own scale by the delta method:
    ``estimate * (log high - log low) / (2 z_{1 - alpha/2})``. NaN for an open, absent
    or non-positive interval.
    """
    values = np.array([estimate, low, high], float)
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        return math.nan
    return float(estimate * math.log(high / low) / (2 * stats.norm.ppf(1 - alpha / 2)))


def level(alpha: float) -> str:
    """'80%' for alpha 0.2."""
    return f"{100 * (1 - alpha):g}%"


class Summary(str):
    """A fitted object's summary: ``str()`` is the text report; ``.frame`` the coefficient
    table; ``_repr_html_()`` both as HTML (the text's header lines, then the table)."""

    frame: pd.DataFrame
    title: str

    def __new__(cls, text: str, frame: pd.DataFrame, title: str) -> Summary:
        obj = super().__new__(cls, text)
        obj.frame, obj.title = frame, title
        return obj

    def as_frame(self) -> pd.DataFrame:
        return self.frame.copy()

    def as_html(self) -> str:
        body = self.frame.to_html(float_format=lambda x: f"{x:.4g}", na_rep="n/a", border=0)
        return (
            f"<div class='scalelaw-summary'><p><b>{html.escape(self.title)}</b></p>"
            f"<pre>{html.escape(str(self))}</pre>{body}</div>"
        )

    _repr_html_ = as_html


class FittedResults:
    """Mixin: ``params``, ``bse`` and ``conf_int`` read off ``coefficients(alpha)``.

    A class provides ``coefficients(alpha)`` (a DataFrame with the ``_index`` columns
    and COLUMNS) and sets ``_index``.
    """

    _index: tuple[str, ...] = ("term",)
    default_alpha: float = DEFAULT_ALPHA  # the level conf_int() and summary() use by default

    def coefficients(self, alpha: float = DEFAULT_ALPHA) -> pd.DataFrame:  # pragma: no cover
        raise NotImplementedError

    def _indexed(self, alpha: float | None = None) -> pd.DataFrame:
        alpha = self.default_alpha if alpha is None else check_alpha(alpha)
        return self.coefficients(alpha).set_index(list(self._index))

    @property
    def params(self) -> pd.Series:
        """Estimates by term."""
        return self._indexed()["estimate"].rename("params")

    @property
    def bse(self) -> pd.Series:
        """Standard errors by term (NaN where the fit gives none)."""
        return self._indexed()["std_err"].rename("bse")

    def conf_int(self, alpha: float | None = None) -> pd.DataFrame:
        """(1 - alpha) intervals by term: columns ``lower``, ``upper`` (default: the
        object's own level, 80% unless it was fitted at another)."""
        table = self._indexed(alpha)
        return table[["ci_lower", "ci_upper"]].rename(columns={"ci_lower": "lower", "ci_upper": "upper"})


def coefficient_lines(table: pd.DataFrame, alpha: float, label: str = "term") -> list[str]:
    """Text rows of a coefficient table: term, estimate, std err, interval at ``alpha``."""
    lines = [f"  {label:<22}{'estimate':>12}{'std err':>11}{level(alpha) + ' interval':>28}"]
    for name, row in table.iterrows():
        term = " ".join(name) if isinstance(name, tuple) else str(name)
        if not math.isfinite(row["std_err"]):
            lines.append(f"  {term:<22}{row['estimate']:>12.4g}{'n/a':>11}")
            continue
        lines.append(
            f"  {term:<22}{row['estimate']:>12.4g}{row['std_err']:>11.3g}"
            f"   [{row['ci_lower']:>10.4g}, {row['ci_upper']:>10.4g}]"
        )
    return lines
