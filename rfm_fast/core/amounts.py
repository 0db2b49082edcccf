"""Text amounts read exactly or refused: one strict grammar per option (docs/semantics.md,
"Text amounts").

* no option: a plain number as a program writes it (``12.5``, ``-3``, ``.5``, ``1e3``), as the
  CSV reader itself reads numbers; no grouping, no currency;
* ``decimal=","``: a sign, digits grouped in threes by ``.`` or a space, a decimal comma
  (``-1.234,56``);
* ``amount_format="currency"``: also a currency symbol or ISO code on either side, a sign
  before or after a leading currency, parentheses for a negative amount; digits grouped in
  threes (by ``,``, ``'`` or a space when the decimal separator is ``.``; by ``.`` or a space
  when it is ``,``).

A value is checked against its grammar over the whole column at once (Arrow's RE2 regular
expressions), turned into plain decimal text and cast to float64 as Arrow casts text.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rfm_fast._kernels.dispatch import text as text_kernels
from rfm_fast.errors import RFMError

if TYPE_CHECKING:
    from rfm_fast.core.options import Columns

SIGNS = "+-\u2212"
"""The signs an amount may carry: plus, hyphen-minus and the minus sign U+2212."""

SPACES = " \u00a0\u202f\u2009"
"""Spaces between the parts of an amount, and a group separator: space, no-break space,
narrow no-break space, thin space."""

GROUP_SEPARATORS = {".": ",'\u2019" + SPACES, ",": "." + SPACES}
"""The digit group separators a decimal separator allows (a group is three digits)."""

CURRENCY_WORDS = (
    *("US$", "R$", "C$", "A$", "NZ$", "HK$", "S$", "MX$", "NT$"),
    *("Rs", "Rs.", "kr", "kr.", "Fr.", "zł", "Kč", "Ft", "RM", "Rp", "lei"),
)
"""Currencies written otherwise than as an ISO code (``EUR``) or a currency sign (``€``): a
dollar with its country, and local abbreviations."""


def _re2_class(chars: str) -> str:
    """An RE2 character class of ``chars``."""
    return "[" + "".join(f"\\x{{{ord(c):04X}}}" for c in chars) + "]"


_SIGN = _re2_class(SIGNS)
_S = _re2_class(SPACES) + "*"
_CURRENCY = r"(?:[A-Z]{3}|\p{Sc}|" + "|".join(re.escape(word) for word in CURRENCY_WORDS) + ")"
_PLAIN = rf"^{_SIGN}?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+\-]?[0-9]+)?$"


def _number(decimal: str) -> str:
    """Digits, grouped in threes by one separator or not at all, and a fraction."""
    grouped = "|".join(
        rf"[0-9]{{1,3}}(?:{re.escape(group)}[0-9]{{3}})+" for group in GROUP_SEPARATORS[decimal]
    )
    return rf"(?:[0-9]+|{grouped})(?:{re.escape(decimal)}[0-9]+)?"


def amount_grammar(amount_format: str | None, decimal: str) -> str:
    """The RE2 expression a text amount must match in whole (after its outer whitespace is
    trimmed), for the options ``amount_format`` and ``decimal``."""
    if amount_format is None and decimal == ".":
        return _PLAIN
    number = _number(decimal)
    if amount_format is None:
        return rf"^{_SIGN}?{number}$"
    s, sign, cur = _S, _SIGN, _CURRENCY
    forms = [
        rf"{sign}?{s}{number}(?:{s}{cur})?",  # -12.00, -12,00 €, 12 EUR
        rf"{sign}?{s}{cur}{s}{number}",  # $12, -$12, - € 12
        rf"{cur}{s}{sign}{s}{number}",  # $-12, EUR -12
        rf"\({s}{number}{s}\)(?:{s}{cur})?",  # (12.00), (12.00) USD
        rf"{cur}{s}\({s}{number}{s}\)",  # $(12.00)
        rf"\({s}{cur}{s}{number}{s}\)",  # ($12.00)
        rf"\({s}{number}{s}{cur}{s}\)",  # (12,00 €)
    ]
    return "^(?:" + "|".join(forms) + ")$"


def amount_numbers(
    column: pa.Array, name: str, first_row: int, amount_format: str | None, decimal: str
) -> pa.Array:
    """Text amounts as float64, each read by the grammar of ``amount_format`` and ``decimal``
    (see the module); empty text is null.

    >>> texts = pa.array(["1.234,50 €", "(3,00)", "\u22127 EUR", None])
    >>> amount_numbers(texts, "amount", 0, "currency", ",").to_pylist()
    [1234.5, -3.0, -7.0, None]

    Raises
    ------
    RFMError
        Showing the first value that is not an amount of that grammar, its row (counting from
        0), and the option that would read it.
    """
    text = column.cast(pa.string()) if column.type != pa.string() else column
    text = pc.utf8_trim_whitespace(text)
    text = pc.if_else(pc.equal(text, ""), None, text)
    good = pc.or_kleene(
        pc.is_null(text), pc.match_substring_regex(text, amount_grammar(amount_format, decimal))
    )
    if pc.all(good).as_py() is False:
        row = pc.index(good, False).as_py()
        _refuse(column[row].as_py(), name, first_row + row, amount_format, decimal)
    if amount_format is None and decimal == ".":
        if _has_byte(text, 0xE2):  # a minus sign U+2212 among them
            text = pc.replace_substring(text, "\u2212", "-")
        return text.cast(pa.float64())
    return _plain_decimals(text, decimal, dotted_words=amount_format is not None).cast(pa.float64())


def _has_byte(text: pa.Array, byte: int) -> bool:
    data = text.buffers()[2]
    return data is not None and bool((np.frombuffer(data, dtype=np.uint8) == byte).any())


def _plain_decimals(text: pa.Array, decimal: str, dotted_words: bool) -> pa.Array:
    """Checked amounts as plain decimal text (``-1234.50``), by one pass over their bytes
    (:func:`rfm_fast._kernels.text.plain_decimals`); nulls stay null."""
    text = text.cast(pa.large_string())
    if text.offset:
        text = pa.concat_arrays([text])  # a copy that starts at 0, as its validity does
    validity, offsets, data = text.buffers()
    offsets = np.frombuffer(offsets, dtype=np.int64)[: len(text) + 1]
    data = np.empty(0, np.uint8) if data is None else np.frombuffer(data, dtype=np.uint8)
    out_offsets = np.empty(len(text) + 1, dtype=np.int64)
    out_data = np.empty(int(offsets[-1] - offsets[0]) + len(text), dtype=np.uint8)
    text_kernels.plain_decimals(offsets, data, ord(decimal), dotted_words, out_offsets, out_data)
    buffers = [validity, pa.py_buffer(out_offsets), pa.py_buffer(out_data)]
    return pa.Array.from_buffers(pa.large_string(), len(text), buffers, text.null_count)


_SHOWN_CHARS = 40
"""The most characters of a refused value an error shows."""


def _refuse(value: str, name: str, row: int, amount_format: str | None, decimal: str) -> None:
    text = value.strip()
    last = re.search(r"([.,])[0-9]{1,2}[^0-9.,]*$", text)  # a separator before cents
    if last is not None and last[1] != decimal and decimal == ".":
        hint = "decimal=',' (CLI: --decimal ,) reads a comma as the decimal separator"
    elif last is not None and last[1] != decimal:
        hint = (
            "with decimal=',' a '.' groups digits in threes; give decimal='.' (CLI: "
            "--decimal .) if the amounts are written with a decimal point"
        )
    elif re.search(r"[0-9][eE][+\-]?[0-9]|0[xX]", text):
        hint = "exponents and hexadecimal are not amounts of this format: write a plain number"
    elif amount_format is None:
        hint = (
            "amount_format='currency' (CLI: --amount-format currency) reads currency "
            "symbols and codes and thousands separators"
        )
    else:
        hint = (
            "an amount is a sign, a currency symbol or code, digits grouped in threes and "
            f"one decimal separator {decimal!r}: fix that row, or give the amounts as numbers"
        )
    shown = value if len(value) <= _SHOWN_CHARS else value[:_SHOWN_CHARS] + "..."
    written = "a plain number" if amount_format is None and decimal == "." else "an amount"
    raise RFMError(
        f"amount column {name!r} is text, and row {row} (counting from 0) has {shown!r}, "
        f"which is not {written} with the decimal separator {decimal!r}; {hint}"
    )


def amount_text_columns(columns: Columns) -> tuple[str, ...]:
    """The columns that may hold the amount: its name, and the two factors where it is
    written as a product (``"Quantity*UnitPrice"``), before the input's names are known."""
    names = (columns.amount,)
    if "*" in columns.amount:
        names += tuple(part.strip() for part in columns.amount.split("*"))
    return names
