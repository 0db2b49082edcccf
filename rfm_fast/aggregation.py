"""Grouped aggregation by customer: an accumulator updated batch by batch.

:class:`CustomerAggregator` owns the hash tables and the running totals. Each call to
:meth:`CustomerAggregator.update` folds one batch in; :meth:`CustomerAggregator.finish` returns
:class:`CustomerTotals`, one entry per customer sorted by key. Memory grows with the number of
customers (and, with an order column, with the number of distinct orders), never with the number
of batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rfm_fast._kernels import aggregate as agg_kernels
from rfm_fast._kernels import hashing
from rfm_fast.arrow import (
    DictionaryColumn,
    IntColumn,
    KeyColumn,
    StringColumn,
    Validity,
    key_column,
)

INITIAL_SLOTS = 1 << 12
INT64_MAX = np.iinfo(np.int64).max


def _grown(array: np.ndarray, size: int, fill: int = 0) -> np.ndarray:
    """``array`` copied into a new array of ``size`` entries, the rest set to ``fill``."""
    out = np.full(size, fill, dtype=array.dtype)
    out[: array.shape[0]] = array
    return out


class KeyTable:
    """Maps keys (integers, or strings by their bytes) to dense ids in first-seen order.

    The table grows itself: a kernel stops where a new key would not fit, the table doubles and
    the kernel resumes from that row. ``on_grow(max_groups)`` lets the owner grow the arrays it
    indexes by group id.
    """

    def __init__(self, kind: str, on_grow=None) -> None:
        self.kind = kind
        self.n_groups = np.zeros(1, dtype=np.int64)
        self._on_grow = on_grow
        slots = INITIAL_SLOTS
        self.max_groups = slots // 2
        self.slot_groups = np.full(slots, hashing.EMPTY, dtype=np.int64)
        if kind == "int":
            self.slot_keys = np.zeros(slots, dtype=np.int64)
            self.group_keys = np.zeros(self.max_groups, dtype=np.int64)
        else:
            self.slot_hashes = np.zeros(slots, dtype=np.uint64)
            self.group_hashes = np.zeros(self.max_groups, dtype=np.uint64)
            self.arena = np.zeros(1 << 16, dtype=np.uint8)
            self.arena_offsets = np.zeros(self.max_groups + 1, dtype=np.int64)
        self._unsigned = False

    def __len__(self) -> int:
        return int(self.n_groups[0])

    # ----------------------------------------------------------------- growth
    def _grow_groups(self) -> None:
        slots = self.slot_groups.shape[0] * 2
        self.max_groups = slots // 2
        self.slot_groups = np.full(slots, hashing.EMPTY, dtype=np.int64)
        n = len(self)
        if self.kind == "int":
            self.slot_keys = np.zeros(slots, dtype=np.int64)
            self.group_keys = _grown(self.group_keys, self.max_groups)
            hashing.rehash_int_keys(self.group_keys, n, self.slot_keys, self.slot_groups)
        else:
            self.slot_hashes = np.zeros(slots, dtype=np.uint64)
            self.group_hashes = _grown(self.group_hashes, self.max_groups)
            self.arena_offsets = _grown(self.arena_offsets, self.max_groups + 1)
            hashing.rehash_string_keys(self.group_hashes, n, self.slot_hashes, self.slot_groups)
        if self._on_grow is not None:
            self._on_grow(self.max_groups)

    def _grow_arena(self, needed: int) -> None:
        size = max(self.arena.shape[0] * 2, int(self.arena_offsets[len(self)]) + needed)
        self.arena = _grown(self.arena, size)

    # ----------------------------------------------------------------- factorize
    def factorize(self, column: KeyColumn, out: np.ndarray) -> None:
        """Write the group id of each row of ``column`` into ``out`` (``-1`` for nulls)."""
        if isinstance(column, DictionaryColumn):
            self._factorize_dictionary(column, out)
        elif isinstance(column, IntColumn):
            self._factorize_ints(column.values, column.validity, out)
        else:
            self._factorize_strings(column, out)

    def _factorize_ints(self, values: np.ndarray, valid: Validity, out: np.ndarray) -> None:
        if values.dtype == np.uint64:
            self._unsigned = True
        start, n = 0, values.shape[0]
        while True:
            start = hashing.factorize_int_keys(
                values,
                valid.bitmap,
                valid.bit_offset,
                start,
                self.slot_keys,
                self.slot_groups,
                self.group_keys,
                self.n_groups,
                self.max_groups,
                out,
            )
            if start >= n:
                return
            self._grow_groups()

    def _factorize_strings(self, column: StringColumn, out: np.ndarray) -> None:
        start, n = 0, len(column)
        while True:
            start = hashing.factorize_string_keys(
                column.offsets,
                column.data,
                column.validity.bitmap,
                column.validity.bit_offset,
                start,
                self.slot_hashes,
                self.slot_groups,
                self.arena,
                self.arena_offsets,
                self.group_hashes,
                self.n_groups,
                self.max_groups,
                out,
            )
            if start >= n:
                return
            if len(self) >= self.max_groups:
                self._grow_groups()
            else:
                self._grow_arena(int(column.offsets[start + 1] - column.offsets[start]))

    def _factorize_dictionary(self, column: DictionaryColumn, out: np.ndarray) -> None:
        size = len(column.dictionary)
        mapping = np.full(size + 1, hashing.EMPTY, dtype=np.int64)
        # Only entries that rows use become groups: a dictionary may hold unused values.
        used = np.unique(column.indices)
        used = used[used < size]
        if used.shape[0]:
            entries = column.dictionary.take(pa.array(used))
            ids = np.empty(used.shape[0], dtype=np.int64)
            self.factorize(key_column(entries), ids)
            mapping[used] = ids
        np.take(mapping, column.indices, out=out)

    # ----------------------------------------------------------------- results
    def keys(self) -> np.ndarray | pa.Array:
        """The key of each group: int64 (uint64 for uint64 input) or a large_string array."""
        n = len(self)
        if self.kind == "int":
            keys = self.group_keys[:n]
            return keys.view(np.uint64) if self._unsigned else keys.copy()
        offsets = self.arena_offsets[: n + 1]
        return pa.LargeStringArray.from_buffers(
            n, pa.py_buffer(offsets.copy()), pa.py_buffer(self.arena[: offsets[n]].copy())
        )


class DistinctPairCounter:
    """Counts distinct (group, value) pairs per group: distinct orders or purchase days."""

    def __init__(self) -> None:
        slots = INITIAL_SLOTS
        self.slot_groups = np.full(slots, hashing.EMPTY, dtype=np.int64)
        self.slot_values = np.zeros(slots, dtype=np.int64)
        self.n_pairs = np.zeros(1, dtype=np.int64)

    def add(self, groups: np.ndarray, values: np.ndarray, valid: Validity, counts: np.ndarray):
        start, n = 0, groups.shape[0]
        while True:
            start = hashing.count_distinct_pairs(
                groups,
                values,
                valid.bitmap,
                valid.bit_offset,
                start,
                self.slot_groups,
                self.slot_values,
                self.n_pairs,
                self.slot_groups.shape[0] // 2,
                counts,
            )
            if start >= n:
                return
            slots = self.slot_groups.shape[0] * 2
            new_groups = np.full(slots, hashing.EMPTY, dtype=np.int64)
            new_values = np.zeros(slots, dtype=np.int64)
            hashing.rehash_pairs(self.slot_groups, self.slot_values, new_groups, new_values)
            self.slot_groups, self.slot_values = new_groups, new_values


@dataclass
class CustomerTotals:
    """Per-customer totals, sorted by customer key ascending.

    Timestamps are int64 ticks of the input column's unit (days for ``date32``).
    """

    keys: np.ndarray | pa.Array
    first: np.ndarray
    last: np.ndarray
    rows: np.ndarray
    distinct: np.ndarray | None
    monetary: np.ndarray

    def __len__(self) -> int:
        return self.first.shape[0]


@dataclass
class RowCounts:
    """What happened to the rows folded into an aggregator."""

    rows_read: int = 0
    rows_used: int = 0
    null_customer: int = 0
    null_timestamp: int = 0
    after_as_of: int = 0
    null_amount: int = 0
    max_timestamp: int | None = None


class CustomerAggregator:
    """Running per-customer totals, updated batch by batch.

    Parameters
    ----------
    key_kind : {"int", "string"}
        How customer keys are hashed (see :func:`rfm_fast.arrow.key_kind`).
    distinct : {None, "int", "string"}
        How the values whose distinct count is the frequency are hashed: ``None`` when the
        frequency is the number of rows, ``"int"`` for integer order ids or purchase days,
        ``"string"`` for text order ids.
    as_of_limit : int
        Rows whose timestamp (in ticks) is greater are left out and counted.
    """

    def __init__(self, key_kind: str, distinct: str | None, as_of_limit: int = INT64_MAX):
        self.as_of_limit = int(as_of_limit)
        size = INITIAL_SLOTS // 2
        self.first = np.zeros(size, dtype=np.int64)
        self.last = np.zeros(size, dtype=np.int64)
        self.rows = np.zeros(size, dtype=np.int64)
        self.sum_whole = np.zeros(size, dtype=np.int64)
        self.sum_fraction = np.zeros(size, dtype=np.int64)
        self.distinct_counts = np.zeros(size, dtype=np.int64) if distinct else None
        self.customers = KeyTable(key_kind, on_grow=self._grow_totals)
        self.distinct_kind = distinct
        # Text order ids, and dictionary-encoded ids of either kind, are mapped to dense ids
        # first (integer ids are counted as they are).
        self.order_ids = KeyTable(distinct) if distinct in ("int", "string") else None
        self.pairs = DistinctPairCounter() if distinct else None
        self.counters = np.zeros(agg_kernels.N_COUNTERS, dtype=np.int64)
        self.counters[agg_kernels.MAX_TIMESTAMP] = np.iinfo(np.int64).min
        self.rows_read = 0
        self._groups = np.empty(0, dtype=np.int64)
        self._order_groups = np.empty(0, dtype=np.int64)

    def _grow_totals(self, size: int) -> None:
        self.first = _grown(self.first, size)
        self.last = _grown(self.last, size)
        self.rows = _grown(self.rows, size)
        self.sum_whole = _grown(self.sum_whole, size)
        self.sum_fraction = _grown(self.sum_fraction, size)
        if self.distinct_counts is not None:
            self.distinct_counts = _grown(self.distinct_counts, size)

    def update(
        self,
        customers: KeyColumn,
        timestamps: np.ndarray,
        timestamps_valid: Validity,
        amounts: np.ndarray,
        amounts_valid: Validity,
        distinct: KeyColumn | None = None,
    ) -> int:
        """Fold one batch in.

        Returns the index of the first row whose amount is infinite or too large (the batch is
        then only partly folded in and the aggregator must be discarded), or ``-1``.
        """
        n = timestamps.shape[0]
        self.rows_read += n
        if self._groups.shape[0] < n:
            self._groups = np.empty(n, dtype=np.int64)
        groups = self._groups[:n]
        self.customers.factorize(customers, groups)
        bad_row = agg_kernels.accumulate(
            groups,
            timestamps,
            timestamps_valid.bitmap,
            timestamps_valid.bit_offset,
            self.as_of_limit,
            amounts,
            amounts_valid.bitmap,
            amounts_valid.bit_offset,
            self.first,
            self.last,
            self.rows,
            self.sum_whole,
            self.sum_fraction,
            self.counters,
        )
        if bad_row >= 0 or distinct is None:
            return int(bad_row)
        if isinstance(distinct, IntColumn):
            values, valid = distinct.values, distinct.validity
        else:
            if self._order_groups.shape[0] < n:
                self._order_groups = np.empty(n, dtype=np.int64)
            values = self._order_groups[:n]
            self.order_ids.factorize(distinct, values)
            # Null order ids come back as -1; mark them null for the pair counter.
            valid = _validity_of(values >= 0)
        self.pairs.add(groups, values, valid, self.distinct_counts)
        return -1

    def row_counts(self) -> RowCounts:
        c = self.counters
        max_ts = int(c[agg_kernels.MAX_TIMESTAMP])
        return RowCounts(
            rows_read=self.rows_read,
            rows_used=int(c[agg_kernels.ROWS_USED]),
            null_customer=int(c[agg_kernels.DROPPED_NULL_CUSTOMER]),
            null_timestamp=int(c[agg_kernels.DROPPED_NULL_TIMESTAMP]),
            after_as_of=int(c[agg_kernels.DROPPED_AFTER_AS_OF]),
            null_amount=int(c[agg_kernels.NULL_AMOUNT]),
            max_timestamp=None if c[agg_kernels.ROWS_USED] == 0 else max_ts,
        )

    def finish(self) -> CustomerTotals:
        """Per-customer totals of every customer with at least one used row, sorted by key."""
        n = len(self.customers)
        keys = self.customers.keys()
        if isinstance(keys, np.ndarray):
            order = np.argsort(keys, kind="stable")
        else:
            order = pc.sort_indices(keys).to_numpy()
        order = order[self.rows[:n][order] > 0]
        monetary = np.empty(n, dtype=np.float64)
        agg_kernels.sums_to_float(self.sum_whole[:n], self.sum_fraction[:n], monetary)
        return CustomerTotals(
            keys=keys[order] if isinstance(keys, np.ndarray) else keys.take(pa.array(order)),
            first=self.first[:n][order],
            last=self.last[:n][order],
            rows=self.rows[:n][order],
            distinct=None if self.distinct_counts is None else self.distinct_counts[:n][order],
            monetary=monetary[order],
        )


def _validity_of(mask: np.ndarray) -> Validity:
    """An Arrow-style validity bitmap (LSB first) from a boolean mask."""
    if mask.all():
        return Validity(np.empty(0, dtype=np.uint8), 0)
    return Validity(np.packbits(mask, bitorder="little"), 0)
