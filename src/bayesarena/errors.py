"""Typed errors and warnings.

Every error raised on bad input is a :class:`BayesArenaError`, so the CLI can print it as one
line and callers can catch the whole family. Messages say what was expected, what was found,
the column involved and the first offending rows (scikit-learn's ``check_array`` style).
"""

from __future__ import annotations

from collections.abc import Sequence

MAX_ROWS_SHOWN = 5


class BayesArenaError(Exception):
    """Base class of every error bayesarena raises on bad input or bad requests."""


class InputError(BayesArenaError, ValueError):
    """The vote data cannot be used as given.

    Attributes
    ----------
    column:
        The column that holds the problem, when there is one.
    rows:
        Zero-based row numbers (in reading order) of the first offending rows.
    """

    def __init__(self, message: str, *, column: str | None = None, rows: Sequence[int] = ()):
        self.column = column
        self.rows = [int(r) for r in rows]
        super().__init__(message)


class MissingColumnError(InputError):
    """A required column is absent."""


class EmptyDataError(InputError):
    """There are no rows (or no usable rows) to fit."""


class UnknownLabelError(InputError):
    """A ``winner`` value is neither a documented alias nor in the user's mapping."""


class SelfBattleError(InputError):
    """A row compares a model with itself."""


class MissingValueError(InputError):
    """A required value is missing (NaN/NULL) or an empty model name."""


class InvalidCountError(InputError):
    """An aggregated count is negative, non-integer or not a number."""


class DisconnectedGraphError(InputError):
    """The comparison graph has more than one connected component.

    Strengths in different components are not comparable (the likelihood says nothing about
    their offset), so we refuse rather than let the prior decide the ranking.
    """

    def __init__(self, message: str, *, components: Sequence[Sequence[str]]):
        self.components = [list(c) for c in components]
        super().__init__(message)


class UnknownModelError(BayesArenaError, KeyError):
    """A requested model (competitor) name does not exist in the data or posterior."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class UnknownCategoryError(UnknownModelError):
    """A requested category does not exist in the data or posterior."""


class SpecError(BayesArenaError, ValueError):
    """A model specification file is invalid; the message names the bad key."""


class SamplingWarning(UserWarning):
    """Sampling diagnostics failed a threshold (R-hat, ESS or divergences)."""


def format_rows(rows: Sequence[int], total: int | None = None) -> str:
    """Render the first offending row numbers, e.g. ``rows 3, 7, 12 (and 40 more)``."""
    rows = list(rows)
    shown = ", ".join(str(r) for r in rows[:MAX_ROWS_SHOWN])
    n = len(rows) if total is None else total
    more = n - min(len(rows), MAX_ROWS_SHOWN)
    label = "row" if n == 1 else "rows"
    return f"{label} {shown}" + (f" (and {more} more)" if more > 0 else "")
