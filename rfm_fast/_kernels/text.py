"""Kernels over the bytes of Arrow text columns (UTF-8 data and its offsets)."""

from __future__ import annotations

from rfm_fast._kernels.config import jit

_MINUS = 45  # "-"
_OPEN = 40  # "("
_POINT = 46  # "."


@jit
def plain_decimals(offsets, data, decimal, dotted_words, out_offsets, out_data):
    """Amounts already checked against their grammar as plain decimal text: a ``-`` where the
    value holds ``-``, ``(`` or U+2212 (bytes E2 88 92), then its ASCII digits and its decimal
    separator (byte ``decimal``) written as ``.``; every other byte is left out. With
    ``dotted_words``, a ``.`` right after an ASCII letter (``Rs.``, ``Fr.``) is left out too.
    ``out_data`` has room for ``len(data) + n`` bytes; ``out_offsets`` for ``n + 1``."""
    n = out_offsets.shape[0] - 1
    at = 0
    for i in range(n):
        out_offsets[i] = at
        start = offsets[i]
        end = offsets[i + 1]
        negative = False
        for j in range(start, end):
            b = data[j]
            minus_sign = b == 0xE2 and j + 2 < end and data[j + 1] == 0x88 and data[j + 2] == 0x92
            if b in (_MINUS, _OPEN) or minus_sign:
                negative = True
        if negative:
            out_data[at] = _MINUS
            at += 1
        before = 0
        for j in range(start, end):
            b = data[j]
            if 48 <= b <= 57:
                out_data[at] = b
                at += 1
            elif b == decimal:
                letter = (65 <= before <= 90) or (97 <= before <= 122)
                if not (dotted_words and letter):
                    out_data[at] = _POINT
                    at += 1
            before = b
    out_offsets[n] = at
