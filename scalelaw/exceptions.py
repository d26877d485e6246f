"""The errors scalelaw raises on purpose, one family.

- :class:`ScalelawError`: the base; ``except scalelaw.ScalelawError`` catches every
  error the package raises about its input or its data, and nothing else.
- :class:`InputError`: bad input, named where it entered: a file, a column, a key, an
  option or an argument, and the value found there. Subclasses say which kind of input:
  :class:`RunsTableError` (a runs table), :class:`LawFileError` (a law JSON file),
  :class:`SpecError` (a sweep spec), :class:`DataError` (a token dataset).
- :class:`NotEnoughDataError`: the input is valid but cannot support what was asked
  (too few cells, runs or distinct values); the message says what to add.
- :class:`FitError`: a fit that ran and failed (no convergence, a landscape that is not
  a bowl, an optimum outside the swept range).

Each also derives from :class:`ValueError`, as the errors it replaces did, so code
that caught ``ValueError`` keeps working. The command line turns exactly this family
into ``scalelaw <command>: error: <message>`` and exit status 2; any other exception is
a bug in scalelaw and surfaces with its traceback.
"""

from __future__ import annotations


def show(value: object) -> str:
    """A value as the user wrote it, for error messages: repr(), with numpy scalars shown
    as plain numbers (``np.float64(0.41)`` as ``0.41``)."""
    from numpy import generic  # a dependency anyway; imported here to keep this module light

    return repr(value.item() if isinstance(value, generic) else value)


class ScalelawError(ValueError):
    """Base of every error scalelaw raises about its input or data."""


class InputError(ScalelawError):
    """Bad input: the message names the file, column, key or option and the value."""


class RunsTableError(InputError):
    """A runs table (CSV / Parquet / DataFrame) that is missing columns or has bad values."""


class LawFileError(InputError):
    """A law JSON file that cannot be read or holds invalid values."""


class SpecError(InputError):
    """A sweep spec (TOML) with an unknown key, a bad value or an impossible combination."""


class DataError(InputError):
    """A token dataset directory that is missing files or holds bad metadata."""


class NotEnoughDataError(ScalelawError):
    """Valid input too thin for the request (too few cells, runs or distinct values)."""


class FitError(ScalelawError):
    """A fit that cannot give an answer from this data; the message says why and what to do."""
