"""Deprecation helpers: old call shapes keep working for one release, with a warning."""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def keyword_only_since(version: str) -> Callable[[F], F]:
    """Decorate a function whose arguments after the first few became keyword-only in
    ``version``: calls that still pass them by position work, with a DeprecationWarning
    naming the arguments to pass by keyword (the scikit-learn convention)."""

    def decorate(func: F) -> F:
        params = list(inspect.signature(func).parameters.values())
        n_positional = sum(p.kind in _POSITIONAL for p in params)
        keyword_only = [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            extra = args[n_positional:]
            if extra:
                if len(extra) > len(keyword_only):
                    raise TypeError(f"{func.__name__}() takes {n_positional} positional arguments")
                names = keyword_only[: len(extra)]
                for name, value in zip(names, extra, strict=True):
                    if name in kwargs:
                        raise TypeError(f"{func.__name__}() got multiple values for argument {name!r}")
                    kwargs[name] = value
                warnings.warn(
                    f"{func.__name__}: pass {', '.join(names)} by keyword; positional use is "
                    f"deprecated since {version} and stops working in the next release",
                    DeprecationWarning,
                    stacklevel=2,
                )
            return func(*args[:n_positional], **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
