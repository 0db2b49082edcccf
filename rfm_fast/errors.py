"""Exceptions and warnings raised by rfm_fast.

Every error that bad input can cause is an :class:`RFMError` whose message says what was expected,
what was found and how to fix it; the command line prints that message as one line.
"""

from __future__ import annotations

import errno
import os
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


EXCERPT_CHARACTERS = 60
"""How much of a long text a message quotes (:func:`excerpt`)."""


def excerpt(text: str, limit: int = EXCERPT_CHARACTERS) -> str:
    """``text`` quoted for a message (as ``repr`` quotes it), cut to its first ``limit``
    characters and an ellipsis when longer, so that a message never echoes a whole long input.

    Examples
    --------
    >>> excerpt("R >= 4")
    "'R >= 4'"
    >>> excerpt("x" * 100, limit=5)
    "'xxxxx'... (100 characters)"
    """
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text):,} characters)"


_OS_ERRORS = {
    errno.EROFS: "the file system is read-only; write to a folder on a writable file system",
    errno.ENOSPC: "the disk is full (no space left on the device); free some space or write "
    "to another disk",
    errno.EDQUOT: "the disk quota is used up; free some space or write to another disk",
}


def os_error_reason(error: OSError) -> str:
    """Why ``error`` happened, for a message that goes on ``cannot write PATH: ``: a read-only
    file system, a full disk and a used-up quota each in their own words, with the fix (none of
    them is "permission denied"); any other error as the system words it.

    Examples
    --------
    >>> import errno
    >>> os_error_reason(OSError(errno.EROFS, "Read-only file system"))
    'the file system is read-only; write to a folder on a writable file system'
    >>> os_error_reason(OSError(errno.EIO, "Input/output error"))
    'Input/output error'
    """
    return _OS_ERRORS.get(error.errno) or error.strerror or str(error)


def folder_write_reason(folder: str | os.PathLike) -> str | None:
    """Why files cannot be made in ``folder`` (see :func:`os_error_reason`), or None when they
    can: a read-only file system is told from a refused permission."""
    if os.access(folder, os.W_OK | os.X_OK):
        return None
    try:
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    return os_error_reason(OSError(errno.EROFS, "")) if read_only else "permission denied"
