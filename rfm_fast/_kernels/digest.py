"""An order-free digest of a multiset of order rows.

Each row used (a valid customer and timestamp, not after ``as_of``) is hashed from its customer
key, timestamp ticks, amount and order (or purchase day); the digest is the sum and the xor,
modulo 2**64, of a mix of those hashes, so that the same rows in any order and any batches give
the same two words (add the sums and xor the xors of batches to combine them). No kernel checks
its input; the public layer (:mod:`rfm_fast.daily.rows`) turns every key kind into integers.
"""

from __future__ import annotations

import numpy as np

from rfm_fast._kernels.config import jit
from rfm_fast._kernels.hashing import is_valid, mix64

NULL_AMOUNT = np.uint64(0x6A09E667F3BCC909)
"""What a null (or NaN) amount hashes as, before mixing."""
NULL_VALUE = np.uint64(0xBB67AE8584CAA73B)
"""What a null order id (or a load without order ids) hashes as, before mixing."""
FLOAT_AMOUNT = np.uint64(0x3C6EF372FE94F82B)
"""Marks an amount that is no whole number, hashed from its float64 bits."""
_STEP = np.uint64(0x9E3779B97F4A7C15)
_WHOLE_LIMIT = 9.223372036854775808e18  # 2**63: whole floats below it hash as integers


@jit
def row_digest(
    keys,
    keys_bitmap,
    keys_offset,
    ticks,
    ticks_bitmap,
    ticks_offset,
    amounts,
    amount_bits,
    amounts_bitmap,
    amounts_offset,
    values,
    values_bitmap,
    values_offset,
    as_of_limit,
    out,
):
    """Fold the rows of one batch into ``out`` (uint64, ``(2,)``): ``out[0]`` += and ``out[1]``
    ^= a 64-bit hash of each row used.

    Parameters
    ----------
    keys : integer array
        Each row's customer key, or the 64-bit hash of a text key.
    ticks : int64 array
        Each row's timestamp.
    amounts : integer or float64 array
        Each row's amount: a whole number hashes as its integer value whatever the type
        (``10`` and ``10.0`` alike), other floats by their bits, NaN as a null.
    amount_bits : int64 array
        The float64 amounts' bits (``amounts.view(np.int64)``); empty for integer amounts.
    values : integer array
        Each row's order id (or the hash of a text one), or its purchase day; empty: none.
    *_bitmap, *_offset
        Arrow validity bitmaps (empty: no nulls) and their bit offsets.
    as_of_limit : int
        Rows with later ticks are not used.
    """
    total = out[0]
    mixed = out[1]
    floats = amount_bits.shape[0] > 0
    with_values = values.shape[0] > 0
    for i in range(ticks.shape[0]):
        if not is_valid(keys_bitmap, keys_offset, i) or not is_valid(ticks_bitmap, ticks_offset, i):
            continue
        if ticks[i] > as_of_limit:
            continue
        h = mix64(np.uint64(np.int64(keys[i])) ^ _STEP)
        h = mix64(h ^ (np.uint64(ticks[i]) + _STEP))
        amount = NULL_AMOUNT
        if is_valid(amounts_bitmap, amounts_offset, i):
            if floats:
                v = np.float64(amounts[i])
                if v != v:
                    amount = NULL_AMOUNT
                elif np.floor(v) == v and -_WHOLE_LIMIT <= v < _WHOLE_LIMIT:
                    amount = np.uint64(np.int64(v))
                else:
                    amount = mix64(np.uint64(amount_bits[i])) ^ FLOAT_AMOUNT
            else:
                amount = np.uint64(np.int64(amounts[i]))
        h = mix64(h ^ (amount + _STEP))
        value = NULL_VALUE
        if with_values and is_valid(values_bitmap, values_offset, i):
            value = np.uint64(np.int64(values[i]))
        h = mix64(h ^ (value + _STEP))
        total += h
        mixed ^= mix64(h + _STEP)
    out[0] = total
    out[1] = mixed
