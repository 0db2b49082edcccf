"""An order-free digest of the rows of a load, taken while it is read: :class:`RowDigest`.

A daily state without a window keeps per-customer totals, and two different sets of rows can
have the same totals (amounts 10 + 20 against 15 + 15 on the same timestamps). The digest of
the rows themselves, folded into the load's fingerprint, tells such loads apart, while the same
rows in any order, batches or row groups still give the same digest.
"""

from __future__ import annotations

import numpy as np

from rfm_fast._kernels.dispatch import digest as digest_kernels
from rfm_fast._kernels.dispatch import hashing
from rfm_fast.core import arrow
from rfm_fast.core.pipeline import BatchColumns

_NO_VALUES = np.empty(0, dtype=np.int64)


class RowDigest:
    """Observer of :func:`rfm_fast.core.pipeline.read_totals` that digests every row used (a
    customer and a timestamp, not after ``as_of``): its customer, timestamp, amount (or null)
    and order id (or purchase day, or null).

    :attr:`words` are the sum and the xor, modulo 2**64, of a 64-bit hash of each row
    (:func:`rfm_fast._kernels.digest.row_digest`): the same multiset of rows gives the same
    words whatever its order or batching, and another multiset other words (but for a
    collision of 64-bit hashes).
    """

    def __init__(self) -> None:
        self.words = np.zeros(2, dtype=np.uint64)

    def reset(self) -> None:
        """Forget the rows seen (``read_totals`` reads the input again from the start)."""
        self.words[:] = 0

    def __call__(self, batch: BatchColumns) -> None:
        keys, keys_valid = key_hashes(batch.customers)
        amounts = batch.amounts
        if amounts.dtype.kind == "f":
            amounts = amounts.astype(np.float64, copy=False)
            bits = amounts.view(np.int64)
        else:
            bits = _NO_VALUES
        orders = batch.order_keys if batch.order_keys is not None else batch.distinct
        if orders is None:
            values, values_valid = _NO_VALUES, arrow.ALL_VALID
        else:
            values, values_valid = key_hashes(orders)
        digest_kernels.row_digest(
            keys,
            keys_valid.bitmap,
            keys_valid.bit_offset,
            batch.ticks,
            batch.ticks_valid.bitmap,
            batch.ticks_valid.bit_offset,
            amounts,
            bits,
            batch.amounts_valid.bitmap,
            batch.amounts_valid.bit_offset,
            values,
            values_valid.bitmap,
            values_valid.bit_offset,
            batch.as_of_limit,
            self.words,
        )


def key_hashes(column: arrow.KeyColumn) -> tuple[np.ndarray, arrow.Validity]:
    """Each row of a key column as one integer and its validity: integer keys as they are,
    text by a hash of its bytes (:func:`rfm_fast._kernels.hashing.text_hashes`), dictionary
    keys as their values' (so that a key hashes alike whatever the encoding)."""
    if isinstance(column, arrow.IntColumn):
        return column.values, column.validity
    if isinstance(column, arrow.StringColumn):
        out = np.empty(len(column), dtype=np.int64)
        hashing.text_hashes(column.offsets, column.data, out)
        return out, column.validity
    dictionary = column.dictionary
    entries, entries_valid = key_hashes(arrow.key_column(dictionary))
    entries = np.append(entries.astype(np.int64, copy=False), np.int64(0))  # the null index
    valid = np.append(entries_valid.mask(len(dictionary)), False)[column.indices]
    out = entries[column.indices]
    if valid.all():
        return out, arrow.ALL_VALID
    return out, arrow.Validity(np.packbits(valid, bitorder="little"), 0)
