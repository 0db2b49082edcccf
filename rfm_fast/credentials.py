"""Credentials never shown: :func:`scrub` hides the user information of every URI-like string
and the value of every password keyword in a text, whatever the scheme.

It is the last line of defence, applied to every :class:`rfm_fast.RFMError` message and to
everything the ``rfm`` command prints; where a message is built around a known database URI,
:func:`rfm_fast.core.database.redacted` and :func:`~rfm_fast.core.database.scrubbed` hide its
secrets too (decoded forms included). Nothing here imports the rest of rfm_fast.
"""

from __future__ import annotations

import re

HIDDEN = "***"
"""What a hidden user information or password is shown as."""

_USER_INFO = re.compile(
    # scheme://user:password@ (or scheme:/user..., as a path shows it): up to the last @
    # before a space (a password may hold / ? # @), or, for a password with spaces in it, up
    # to an @ before any /
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*:/{1,3})(?:\S*@|[^/@\n]*@)"
)
_KEY = r"[A-Za-z_]*(?:password|passwd|pwd)"
_QUERY_PASSWORD = re.compile(rf"(?i)(?P<key>[?&;]{_KEY}=)[^&#\s]*")
"""``?password=...`` in a URI query: the value ends at the next parameter."""
_KEYWORD_PASSWORD = re.compile(
    rf"(?i)(?P<key>(?<![?&;A-Za-z_]){_KEY}(?:\s*=|[\"']\s*:)\s*)"
    r"""(?:\\*'(?:[^'\\]|\\+.)*'?|\\*"(?:[^"\\]|\\+.)*"?|\{[^}]*\}?)?\S*""",
    re.DOTALL,
)
"""``password=...`` in a keyword string (libpq's ``host=h password='a b'``, ODBC's
``PWD={...}``), and ``"password": ...``: the value, its quotes or braces whole (a quote after
any number of backslashes, as ``repr`` writes an escaped one, does not end it), up to the next
space."""


def scrub(text: str) -> str:
    """``text`` with the user information of every ``scheme://user:password@`` and the value
    of every password keyword (``password=``, ``pwd=``, ``sslpassword=``, ``PGPASSWORD=``, in a
    URI query or a keyword string, quoted or not) shown as ``***``. What it hides may be more
    than the secret (the rest of a keyword string's word, or a host after a password with
    spaces), never less.

    Examples
    --------
    >>> scrub("cannot open mysql://shop:s3cret@db.example.com/orders")
    'cannot open mysql://***@db.example.com/orders'
    >>> scrub("host=db user=rfm password='s3 cret' dbname=shop")
    'host=db user=rfm password=*** dbname=shop'
    >>> scrub("postgresql://db/shop?sslmode=require&password=s3cret&user=rfm")
    'postgresql://db/shop?sslmode=require&password=***&user=rfm'
    """
    text = _USER_INFO.sub(lambda m: f"{m['scheme']}{HIDDEN}@", text)
    text = _QUERY_PASSWORD.sub(lambda m: f"{m['key']}{HIDDEN}", text)
    return _KEYWORD_PASSWORD.sub(lambda m: f"{m['key']}{HIDDEN}", text)
