"""Calibrate a published law on a few cells of the user's own runs.

A law fitted on another lab's sweep is a law of that lab's recipe. Its exponents (how
the optimum moves with N and D) are what a big sweep buys and what tends to transfer;
its coefficient (where the optimum sits) moves with the recipe by a factor of 2 or
more. :func:`calibrate` keeps the prior's exponents and re-estimates the coefficient
from as few as one cell of the user's runs, as a Bayesian linear regression on the
cells' log optima:

    log q*_c = theta0 + theta_N (log N_c - n0) + theta_D (log D_c - d0) + e_c

- prior on theta: the prior law's values; the coefficient theta0 with an sd of
  ln 10 (the recipe's shift is not known in advance), the exponents with the
  covariance of the prior's bootstrap draws times its interval calibration factor
  (a law published without draws borrows the default law's, a fit of the same
  Step Law runs) plus the spread of exponents between labs' recipes
  (:data:`scalelaw.laws.CROSS_RECIPE_EXPONENT_SD`): whether the exponents transfer
  to the user's recipe is itself uncertain;
- e_c: each cell's optimum error (its bootstrap spread, floored by its grid step) plus
  the cell-to-cell scatter of optima about a law, tau (the prior's calibrated residual
  scatter);
- (n0, d0) is the centre of the user's cells, so the coefficient and exponents are
  separate questions there: one cell fixes theta0, cells at several N and D also move
  the exponents, as far as their spread and the prior's covariance allow.

The posterior mean is the calibrated law; its draws (posterior samples) give intervals
that hold the calibration's uncertainty, the prior's exponent uncertainty carried from
the user's cells to the target, and tau for a new run. A quantity the user's cells
cannot determine (one batch size swept, or every cell's optimum on a grid edge) keeps
the prior's law and its spread between recipes (:data:`scalelaw.laws.CROSS_RECIPE_SD`),
and the law's notes say so.

Per-cell optima come from :func:`scalelaw.optima.fit_optima` with the prior's bowl
interaction, so one-axis-at-a-time sweeps (lr varied at one batch size, batch size at
one lr) give optima too.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pandas as pd

from scalelaw.exceptions import InputError, NotEnoughDataError
from scalelaw.fit import optimum_weights
from scalelaw.lawcard import card_from_runs
from scalelaw.laws import CROSS_RECIPE_EXPONENT_SD, CROSS_RECIPE_SD, HyperparameterLaw, PowerLaw
from scalelaw.optima import DEFAULT_INTERACTION, fit_optima
from scalelaw.runs import cell_columns, usable_runs, validate_runs
from scalelaw.validate import count

COEF_PRIOR_SD = math.log(10.0)  # the recipe's shift of the coefficient: unknown in advance
MIN_VALUES = 3  # distinct values of lr (batch size) a cell must sweep to place its optimum


def resolve_prior(prior: str | HyperparameterLaw) -> HyperparameterLaw:
    """A law object, a preset name (steplaw, deepseek, default) or a law .json path."""
    if isinstance(prior, HyperparameterLaw):
        return prior
    from scalelaw.predict import get_law  # the presets live with the prediction stage

    if isinstance(prior, str) or hasattr(prior, "__fspath__"):
        return get_law(prior)
    raise InputError(f"prior must be a law, a preset name or a law .json path, got {type(prior).__name__}")


def _exponent_draws(law: PowerLaw, fallback: PowerLaw | None) -> tuple[np.ndarray | None, str]:
    """Deviations of the exponents under the law's bootstrap (n_draws, n_terms), scaled by
    its interval calibration, and where they came from."""
    for source, name in ((law, "its own bootstrap"), (fallback, "the default law's bootstrap")):
        if source is None or source.draws is None or len(source.draws) < 2:
            continue
        if set(law.terms) - set(source.terms):
            continue
        columns = [1 + source.terms.index(t) for t in law.terms]
        draws = np.asarray(source.draws)[:, columns]
        return source.calibration * (draws - np.median(draws, axis=0)), name
    return None, "none known"


def _cells_for(optima: pd.DataFrame, runs: pd.DataFrame, quantity: str) -> pd.DataFrame:
    """The cells whose runs place ``quantity``'s optimum: MIN_VALUES or more values swept,
    the best run not on a grid edge."""
    column = "lr" if quantity == "lr" else "batch_size"
    edge = "lr_edge" if quantity == "lr" else "batch_edge"
    keys = cell_columns(runs)
    swept = runs.groupby(keys, dropna=False)[column].nunique().rename("_swept").reset_index()
    table = optima.merge(swept, on=keys, how="left")
    ok = (table["_swept"] >= MIN_VALUES) & (table[edge] == "") & table[f"{quantity}_opt"].notna()
    return table[ok.to_numpy()].drop(columns="_swept").reset_index(drop=True)


@dataclasses.dataclass(frozen=True)
class Update:
    """The posterior of one quantity's law: canonical parameters [log_coef, *exponents],
    their covariance, and what went into it."""

    params: np.ndarray
    cov: np.ndarray
    shift: float  # log(calibrated / prior) at the centre of the user's cells
    shift_sd: float
    cells: int
    tau: float
    exponents_source: str


def _update(prior: PowerLaw, fallback: PowerLaw | None, cells: pd.DataFrame, quantity: str) -> Update:
    terms = prior.terms
    logs = {"N": np.log(cells["params"].to_numpy(float)), "D": np.log(cells["tokens"].to_numpy(float))}
    center = np.array([logs[t].mean() for t in terms])
    x = np.column_stack([np.ones(len(cells)), *[logs[t] - c for t, c in zip(terms, center, strict=True)]])
    y = np.log(cells[f"{quantity}_opt"].to_numpy(float))
    exps = np.array([prior.exponents[t] for t in terms])
    at_center = prior.log_coef + exps @ center
    mean0 = np.concatenate([[at_center], exps])
    deviations, source = _exponent_draws(prior, fallback)
    cov0 = np.zeros((len(mean0), len(mean0)))
    cov0[0, 0] = COEF_PRIOR_SD**2
    if deviations is not None and len(terms):
        cov0[1:, 1:] = np.atleast_2d(np.cov(deviations, rowvar=False))
    across = CROSS_RECIPE_EXPONENT_SD[quantity]
    cov0[1:, 1:] += np.diag([across[t] ** 2 for t in terms])
    tau = prior.resid_sd * prior.resid_calibration
    if tau <= 0 and fallback is not None:
        tau = fallback.resid_sd * fallback.resid_calibration
    noise = 1 / optimum_weights(cells, f"{quantity}_opt") + tau**2
    # Kalman form: no inverse of the prior covariance, which is singular where the
    # prior's exponents are exact
    gain = cov0 @ x.T @ np.linalg.inv(x @ cov0 @ x.T + np.diag(noise))
    mean = mean0 + gain @ (y - x @ mean0)
    cov = cov0 - gain @ x @ cov0
    cov = (cov + cov.T) / 2
    canonical = mean.copy()
    canonical[0] = mean[0] - mean[1:] @ center
    to_canonical = np.eye(len(mean))
    to_canonical[0, 1:] = -center
    return Update(
        params=canonical,
        cov=to_canonical @ cov @ to_canonical.T,
        shift=float(mean[0] - at_center),
        shift_sd=float(math.sqrt(max(cov[0, 0], 0.0))),
        cells=len(cells),
        tau=float(tau),
        exponents_source=source,
    )


def _calibrated_law(prior: PowerLaw, update: Update, n_draws: int, rng: np.random.Generator) -> PowerLaw:
    draws = rng.multivariate_normal(update.params, update.cov, size=n_draws, method="eigh")
    return PowerLaw(
        prior.quantity,
        prior.unit,
        float(update.params[0]),
        {t: float(v) for t, v in zip(prior.terms, update.params[1:], strict=True)},
        resid_sd=update.tau,
        draws=draws,
        se=tuple(float(s) for s in np.sqrt(np.clip(np.diag(update.cov), 0, None))),
    )


def calibrate(
    prior: str | HyperparameterLaw,
    runs: pd.DataFrame,
    *,
    n_boot: int = 200,
    seed: int = 0,
    name: str | None = None,
) -> HyperparameterLaw:
    """``prior``'s law moved to the recipe of ``runs``; see the module docstring.

    ``runs``: a runs table of the user's recipe, one cell or more (a grid or a cross of
    one-axis sweeps). ``n_boot``: bootstrap replicates of each cell's optimum, and the
    number of posterior draws the law's intervals are read from. Returns a law with
    ``method="prior"``; ``settings["prior"]`` names the prior and
    ``settings["calibrated"][quantity]`` holds each quantity's shift at the user's cells
    (ln, with its sd), the cells used and tau (None where the prior was kept).
    """
    from scalelaw.predict import get_law

    law0 = resolve_prior(prior)
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 2:
        raise InputError(f"n_boot must be an integer >= 2 (posterior draws for intervals), got {n_boot!r}")
    seed = count(seed, "seed", low=0)  # numpy's generators take non-negative integers
    runs = validate_runs(runs, min_lrs=1)
    usable, note = usable_runs(runs)
    notes = [note] if note else []
    interaction = float(law0.settings.get("interaction", DEFAULT_INTERACTION))
    optima = fit_optima(usable, n_boot=n_boot, seed=seed, interaction=interaction).table
    notes += [w for w in optima["warning"] if isinstance(w, str) and w]
    fallback = get_law("default") if law0.name != "default" else None
    rng = np.random.default_rng(seed)
    laws: dict[str, PowerLaw] = {}
    shifts: dict[str, Any] = {}
    for quantity in ("lr", "batch_size"):
        prior_law = getattr(law0, quantity)
        cells = _cells_for(optima, usable, quantity)
        if cells.empty:
            laws[quantity] = dataclasses.replace(
                prior_law, recipe_sd=max(prior_law.recipe_sd, CROSS_RECIPE_SD)
            )
            notes.append(
                f"{quantity}: no cell sweeps {MIN_VALUES}+ values with its best run inside the grid; "
                f"the prior's {quantity} law is kept as is, with the spread between recipes in its intervals"
            )
            shifts[quantity] = None
            continue
        fb = getattr(fallback, quantity) if fallback is not None else None
        update = _update(prior_law, fb, cells, quantity)
        laws[quantity] = _calibrated_law(prior_law, update, n_boot, rng)
        shifts[quantity] = {
            "shift": update.shift,
            "shift_sd": update.shift_sd,
            "cells": update.cells,
            "tau": update.tau,
            "exponents_prior": update.exponents_source,
        }
        notes.append(
            f"{quantity}: the prior's exponents kept, uncertain by the spread between recipes and "
            f"{update.exponents_source} (moved only as far as {update.cells} cell(s) can tell); "
            f"coefficient x{math.exp(update.shift):.3g} (ln {update.shift:+.2f} +- {update.shift_sd:.2f}) "
            "at the user's cells"
        )
    if (optima["interaction"] == "assumed").any():
        notes.append(
            f"{int((optima['interaction'] == 'assumed').sum())} cell(s) swept one axis at a time: their "
            f"lr x batch-size interaction is the prior's ({interaction:+.2f}), not fitted"
        )
    if shifts["lr"] is None and shifts["batch_size"] is None:
        raise NotEnoughDataError(
            "no cell of the runs places an optimum: sweep at least 3 learning rates (or batch sizes) "
            "in a cell, with the best run inside the grid"
        )
    fit_range = law0.fit_range
    if fit_range:  # the prior's range, widened to the user's cells
        span = {"N": optima["params"].to_numpy(float), "D": optima["tokens"].to_numpy(float)}
        fit_range = {
            t: (float(min(fit_range[t][0], span[t].min())), float(max(fit_range[t][1], span[t].max())))
            for t in ("N", "D")
        }
    card = card_from_runs(runs, optima)
    card = card.replace(notes=(*card.notes, f"exponents from the prior law {law0.name!r}"))
    return HyperparameterLaw(
        name=name or f"{law0.name} calibrated on {len(optima)} cell(s)",
        source=f"{law0.source}; calibrated on {len(runs)} runs in {len(optima)} cell(s)",
        lr=laws["lr"],
        batch_size=laws["batch_size"],
        loss=None,
        fit_range=fit_range,
        method="prior",
        notes=(
            *notes,
            "no loss law: the prior's losses are of its data and tokenizer, and a few cells cannot fit one",
        ),
        settings={
            "prior": law0.name,
            "interaction": interaction,
            "calibrated": shifts,
            "n_boot": int(n_boot),
            "seed": int(seed),
        },
        optima=optima,
        card=card,
    )
