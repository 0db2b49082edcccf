"""Exceptions and warnings raised by rfm_fast.

Every error that bad input can cause is an :class:`RFMError` whose message says what was expected,
what was found and how to fix it; the command line prints that message as one line.
"""

from __future__ import annotations

from typing import Any

from rfm_fast.credentials import scrub


class RFMError(ValueError):
    """Bad input or options: the message says what was expected, what was found and the fix.

    The message never holds a credential: user information in URIs and password keywords are
    shown as ``***`` (:func:`rfm_fast.credentials.scrub`), whatever the message quotes.
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*(scrub(arg) if isinstance(arg, str) else arg for arg in args))


class RFMWarning(UserWarning):
    """Something a user should know about a run that still produced a valid result."""


class RFMDataWarning(RFMWarning):
    """The result is valid but the input or options look like a mistake: over 10% of the rows
    could not be used (no customer or no timestamp), or ``as_of`` lies further beyond the last
    purchase than the data's own span. Filter with ``warnings.filterwarnings("ignore",
    category=RFMDataWarning)`` where that is intended."""
