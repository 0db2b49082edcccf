"""Exceptions and warnings raised by rfm_fast.

Every error that bad input can cause is an :class:`RFMError` whose message says what was expected,
what was found and how to fix it; the command line prints that message as one line.
"""

from __future__ import annotations


class RFMError(ValueError):
    """Bad input or options: the message says what was expected, what was found and the fix."""


class RFMWarning(UserWarning):
    """Something a user should know about a run that still produced a valid result."""
