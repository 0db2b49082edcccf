"""Grouped aggregation by customer: an accumulator updated batch by batch.

:class:`CustomerAggregator` owns the hash tables and the running totals. Each call to
:meth:`CustomerAggregator.update` folds one batch in; :meth:`CustomerAggregator.finish` returns
:class:`CustomerTotals`, one entry per customer sorted by key. Memory grows with the number of
customers (and, with an order column, with the number of distinct orders), never with the number
of batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from rfm_fast._kernels import layout
from rfm_fast._kernels.dispatch import hashing
from rfm_fast._kernels.dispatch import totals as total_kernels
from rfm_fast.core.arrow import (
    ALL_VALID,
    DictionaryColumn,
    IntColumn,
    KeyColumn,
    StringColumn,
    Validity,
    from_numpy,
    key_column,
)
from rfm_fast.core.parallel import Runner, parallel_text_argsort, radix_sorted
from rfm_fast.core.partitions import BufferedPartitions, TextKeys, gathered_columns
from rfm_fast.errors import RFMError

INITIAL_SLOTS = 1 << 12
INT64_MAX = np.iinfo(np.int64).max
DEFAULT_PARTITION_BITS = 10
"""Partitions (as bits of the key hash) for large inputs of unknown size: 1,024 buffered
partitions."""
MIN_PARTITION_BITS, MAX_PARTITION_BITS = 4, 10
ROWS_PER_PARTITION = 1 << 18
"""Rows of an input of known size per partition (see :func:`partition_bits_for`)."""
SMALL_INPUT_ROWS = 1 << 18


def partition_bits_for(expected_rows: int | None) -> int:
    """Partitions (as bits of the key hash) for an input of ``expected_rows`` rows: about one
    per :data:`ROWS_PER_PARTITION` rows (rounded down to a power of two), 16 to 1,024; 1,024
    when the size is not known.

    A fold is fast when it meets many records and a table that stays in the L2 cache (5-10K
    customers, as ``../shared/perf-floor`` found). With 1,024 partitions at every size, 10M
    orders of 492K customers folded ~600 records a call into tables of ~480 customers, and the
    calls cost more than the records. In-memory ``arrays.aggregate``, 2 threads, this
    project's 2-core machine, wall seconds: 10M orders, 1.79 with 1,024 partitions, 0.61 with
    256, 0.52 with 128, 0.42-0.49 with 16 to 64; 50M orders of 2.46M customers, 3.55-3.63 with
    1,024, 2.89-2.91 with 512, 2.46-2.59 with 256, 2.38-2.40 with 128; 100M orders of 4.9M
    customers, 4.35-5.34 with 1,024, 4.69-4.77 with 512, 3.13-4.44 with 256.
    """
    if expected_rows is None:
        return DEFAULT_PARTITION_BITS
    wanted = max(int(expected_rows) // ROWS_PER_PARTITION, 1).bit_length() - 1
    return min(MAX_PARTITION_BITS, max(MIN_PARTITION_BITS, wanted))


"""Inputs known to be smaller are aggregated in one hash table instead of partitions."""
RETURN_MODES = {
    "purchase": layout.RETURNS_PURCHASE,
    "net": layout.RETURNS_NET,
    "drop": layout.RETURNS_DROP,
}
"""How rows with a negative amount are taken, by name (see docs/semantics.md, "Returns")."""
PARALLEL_MIN_ROWS = 1 << 15
"""Smaller batches are folded in the calling thread (threads would cost more than they save)."""


def _grown(array: np.ndarray, size: int, fill: int = 0) -> np.ndarray:
    """``array`` copied into a new array of ``size`` rows, the rest set to ``fill``."""
    out = np.full((size, *array.shape[1:]), fill, dtype=array.dtype)
    out[: array.shape[0]] = array
    return out


class KeyTable:
    """Maps keys (integers, or strings by their bytes) to dense ids in first-seen order.

    Used for order ids that are text or dictionary-encoded, whose distinct pairs are counted on
    dense integer ids. The table grows itself: a kernel stops where a new key would not fit, the
    table doubles and the kernel resumes from that row.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.n_groups = np.zeros(1, dtype=np.int64)
        slots = INITIAL_SLOTS
        self.max_groups = slots // 2
        self.slot_groups = np.full(slots, layout.EMPTY, dtype=np.int64)
        if kind == "int":
            self.slot_keys = np.zeros(slots, dtype=np.int64)
            self.group_keys = np.zeros(self.max_groups, dtype=np.int64)
        else:
            self.slot_hashes = np.zeros(slots, dtype=np.uint64)
            self.group_hashes = np.zeros(self.max_groups, dtype=np.uint64)
            self.arena = np.zeros(1 << 16, dtype=np.uint8)
            self.arena_offsets = np.zeros(self.max_groups + 1, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.n_groups[0])

    def keys(self) -> np.ndarray | pa.Array:
        """The keys by dense id: int64 values, or a ``large_string`` array."""
        n = len(self)
        if self.kind == "int":
            return self.group_keys[:n].copy()
        offsets = self.arena_offsets[: n + 1].copy()
        data = self.arena[: offsets[n]].copy()
        return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))

    # ----------------------------------------------------------------- growth
    def _grow_groups(self) -> None:
        slots = self.slot_groups.shape[0] * 2
        self.max_groups = slots // 2
        self.slot_groups = np.full(slots, layout.EMPTY, dtype=np.int64)
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
        mapping = np.full(size + 1, layout.EMPTY, dtype=np.int64)
        # Only entries that rows use become groups: a dictionary may hold unused values.
        used = np.unique(column.indices)
        used = used[used < size]
        if used.shape[0]:
            entries = column.dictionary.take(from_numpy(used))
            ids = np.empty(used.shape[0], dtype=np.int64)
            self.factorize(key_column(entries), ids)
            mapping[used] = ids
        np.take(mapping, column.indices, out=out)


@dataclass
class CustomerTotals:
    """Per-customer totals, sorted by customer key ascending.

    Timestamps are int64 ticks of the input column's unit (days for ``date32``). ``sums`` (the
    exact sums as (whole, fraction) words) and ``pairs`` (the distinct (customer position,
    value) pairs behind ``distinct``) are only filled when :meth:`CustomerAggregator.finish` is
    asked for them. A customer without a purchase (whose rows are all returns, with
    ``returns="net"``) has ``first`` INT64_MAX and ``last`` INT64_MIN: it is kept for its net
    sum (a later batch or state may bring its purchase) and left out of a scored result
    (:meth:`purchasers`).
    """

    keys: np.ndarray | pa.Array
    first: np.ndarray
    last: np.ndarray
    rows: np.ndarray
    """Rows that are purchases (with distinct values, where the frequency does not come from
    it, all rows)."""
    distinct: np.ndarray | None
    monetary: np.ndarray
    sums: tuple[np.ndarray, np.ndarray] | None = None
    pairs: tuple[np.ndarray, np.ndarray | pa.Array] | None = None

    def __len__(self) -> int:
        return self.first.shape[0]

    def purchasers(self) -> tuple[CustomerTotals, int]:
        """These totals without the customers that have no purchase, and how many those were
        (``pairs`` are not kept when any are left out)."""
        has_purchase = self.first != INT64_MAX
        left_out = int(has_purchase.shape[0] - np.count_nonzero(has_purchase))
        if not left_out:
            return self, 0
        keys = self.keys
        keys = keys[has_purchase] if isinstance(keys, np.ndarray) else keys.filter(has_purchase)
        return (
            CustomerTotals(
                keys=keys,
                first=self.first[has_purchase],
                last=self.last[has_purchase],
                rows=self.rows[has_purchase],
                distinct=None if self.distinct is None else self.distinct[has_purchase],
                monetary=self.monetary[has_purchase],
                sums=None if self.sums is None else tuple(w[has_purchase] for w in self.sums),
            ),
            left_out,
        )


def monetary_sums(
    whole: np.ndarray,
    fraction: np.ndarray,
    keys: np.ndarray | pa.Array,
    threads: int = 1,
    run: Runner | None = None,
) -> np.ndarray:
    """Exact (whole, fraction) sums rounded once to float64, by ``threads`` slices run by
    ``run`` (default: one after the other).

    Raises
    ------
    RFMError
        Naming the first customer (of ``keys``, in the sums' order) whose sum left the range
        that is summed exactly: a wrapped or rounded total is never returned.
    """
    n = whole.shape[0]
    out = np.empty(n, dtype=np.float64)
    bounds = [n * t // threads for t in range(threads + 1)]
    first_bad = [-1] * threads

    def convert(t: int) -> None:
        lo, hi = bounds[t], bounds[t + 1]
        at = total_kernels.sums_to_float(whole[lo:hi], fraction[lo:hi], out[lo:hi])
        first_bad[t] = -1 if at < 0 else lo + at

    (run or _in_turn)(convert, range(threads))
    bad = next((at for at in first_bad if at >= 0), -1)
    if bad >= 0:
        key = keys[bad]
        key = key.as_py() if isinstance(key, pa.Scalar) else key.item()
        raise RFMError(
            f"the amounts of customer {key!r} sum to more than 9.2e18 in absolute value "
            "(2**63 - 2, the largest sum rfm_fast keeps exactly); amounts that large are "
            "usually in the wrong unit or corrupt: check the amount column"
        )
    return out


def _in_turn(task: Callable[[int], object], items: Iterable[int]) -> None:
    for item in items:
        task(item)


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
    return_rows: int = 0
    """Rows with a negative amount (of those not dropped for another reason)."""
    dropped_returns: int = 0
    """Of those, the rows left out (``returns="drop"``)."""

    @classmethod
    def total(cls, counts: Sequence[RowCounts]) -> RowCounts:
        """The counts of several parts of one input: added, and the latest timestamp of all."""
        latest = [c.max_timestamp for c in counts if c.max_timestamp is not None]
        return cls(
            rows_read=sum(c.rows_read for c in counts),
            rows_used=sum(c.rows_used for c in counts),
            null_customer=sum(c.null_customer for c in counts),
            null_timestamp=sum(c.null_timestamp for c in counts),
            after_as_of=sum(c.after_as_of for c in counts),
            null_amount=sum(c.null_amount for c in counts),
            max_timestamp=max(latest) if latest else None,
            return_rows=sum(c.return_rows for c in counts),
            dropped_returns=sum(c.dropped_returns for c in counts),
        )


@dataclass(frozen=True)
class _Keys:
    """One batch's customer keys in the form the partition kernels take."""

    kind: str  # "int" or "string"
    validity: Validity
    values: np.ndarray | None = None  # integer keys
    offsets: np.ndarray | None = None  # text keys: offsets and data buffers,
    data: np.ndarray | None = None
    index: np.ndarray = field(default_factory=lambda: _NO_INDEX)  # row -> string (dictionaries)


_NO_INDEX = np.empty(0, dtype=np.int64)


def _batch_keys(column: KeyColumn) -> _Keys:
    """Plain and dictionary-encoded keys as kernel input (dictionaries through their indices)."""
    if isinstance(column, IntColumn):
        return _Keys("int", column.validity, values=column.values)
    if isinstance(column, StringColumn):
        return _Keys("string", column.validity, offsets=column.offsets, data=column.data)
    size = len(column.dictionary)
    entries = key_column(column.dictionary)
    entry_valid = np.append(np.asarray(column.dictionary.is_valid()), False)
    valid = _validity_of(entry_valid[column.indices])
    if isinstance(entries, IntColumn):
        values = np.append(entries.values, entries.values[:1] if size else [0])
        return _Keys("int", valid, values=values.astype(entries.values.dtype)[column.indices])
    return _Keys("string", valid, offsets=entries.offsets, data=entries.data, index=column.indices)


class CustomerAggregator:
    """Running per-customer totals, updated batch by batch.

    Rows are radix-partitioned by the hash of their customer key, through buffers that hold
    many batches (:class:`rfm_fast.core.partitions.BufferedPartitions`); each partition
    owns its table and totals, so partitions can be folded by several threads at once with
    results that do not depend on the number of threads, the batch sizes or the row order.

    Parameters
    ----------
    key_kind : {"int", "string"}
        How customer keys are hashed (see :func:`rfm_fast.core.arrow.key_kind`).
    distinct_kind : {None, "int", "string"}
        How the values whose distinct count is the frequency are hashed: ``None`` when the
        frequency is the number of rows, ``"int"`` for integer order ids or purchase days,
        ``"string"`` for text order ids.
    as_of_limit : int
        Rows whose timestamp (in ticks) is greater are left out and counted.
    threads : int
        Threads that fold partitions; 1 folds everything in the calling thread.
    partition_bits : int, optional
        ``2**partition_bits`` partitions (0 for small inputs: one table); default:
        :func:`partition_bits_for` ``expected_rows``.
    expected_rows : int, optional
        The input's row count where it is known, to size buffers once; it need not be exact.
    returns : {"purchase", "net", "drop"}, default "purchase"
        How rows with a negative amount are taken (see docs/semantics.md, "Returns"). With
        ``"net"``, a customer whose rows are all returns has totals (its net sum) but no
        purchase: ``first`` is INT64_MAX, ``last`` INT64_MIN and its frequency 0.
    """

    def __init__(
        self,
        key_kind: str,
        distinct_kind: str | None,
        as_of_limit: int = INT64_MAX,
        *,
        threads: int = 1,
        partition_bits: int | None = None,
        expected_rows: int | None = None,
        returns: str = "purchase",
    ):
        self.as_of_limit = int(as_of_limit)
        self.returns = returns
        self.key_kind = key_kind
        self.distinct_kind = distinct_kind
        if partition_bits is None:
            partition_bits = partition_bits_for(expected_rows)
        self.threads = max(1, int(threads))
        self._pool = ThreadPoolExecutor(self.threads) if self.threads > 1 else None
        self._partitions: BufferedPartitions | None = BufferedPartitions(
            distinct_kind is not None,
            self.threads,
            partition_bits,
            self._run,
            expected_rows,
            text=key_kind == "string",
            returns=RETURN_MODES[returns],
        )
        # Text order ids, and dictionary-encoded ids of either kind, are mapped to dense ids
        # first (integer ids are counted as they are).
        self.order_ids = KeyTable(distinct_kind) if distinct_kind in ("int", "string") else None
        self.rows_read = 0
        self.counters = np.zeros((self.threads, layout.N_COUNTERS), dtype=np.int64)
        self.counters[:, layout.MAX_TIMESTAMP] = np.iinfo(np.int64).min
        self._unsigned = False
        self._dense_orders = False  # pair values are ids of self.order_ids, not the values

    def _run(self, task, items) -> None:
        """``task(item)`` for each item: on the thread pool, or here when there is none."""
        if self._pool is None or len(items) < 2:
            for item in items:
                task(item)
        else:
            for _ in self._pool.map(task, items):
                pass

    def update(
        self,
        customers: KeyColumn,
        timestamps: np.ndarray,
        timestamps_valid: Validity,
        amounts: np.ndarray,
        amounts_valid: Validity,
        distinct_values: KeyColumn | None = None,
    ) -> int:
        """Fold one batch in.

        Parameters
        ----------
        customers : IntColumn or text column
            The customer keys (:func:`rfm_fast.core.arrow.key_column`).
        timestamps, timestamps_valid : int64 array, Validity
            Purchase times in ticks, and their validity.
        amounts, amounts_valid : int or float array, Validity
            The amounts, and their validity.
        distinct_values : key column, optional
            Order ids (or days) whose distinct count per customer is the frequency; text and
            dictionary ids are mapped to dense ids here unless :meth:`dense_order_ids` did it.

        Returns
        -------
        int
            The index of the first row whose amount is infinite or too large (nothing of the
            batch is folded in then), or ``-1``.
        """
        n = timestamps.shape[0]
        bad = total_kernels.first_bad_amount(
            amounts, amounts_valid.bitmap, amounts_valid.bit_offset
        )
        if bad >= 0:
            return int(bad)
        keys = _batch_keys(customers)
        if keys.kind == "int":
            self._unsigned |= keys.values.dtype == np.uint64
        values, values_valid = self._pair_value_column(distinct_values, n)
        chunks = self.threads if n >= PARALLEL_MIN_ROWS else 1
        if keys.kind == "int":
            batch_keys: np.ndarray | TextKeys = keys.values
        else:
            batch_keys = TextKeys(keys.offsets, keys.data, keys.index)
            if batch_keys.longest > layout.MAX_TEXT_KEY_BYTES:
                raise RFMError(
                    f"a customer id is {batch_keys.longest:,} bytes long; ids of up to "
                    f"{layout.MAX_TEXT_KEY_BYTES:,} bytes are supported"
                )
        self.rows_read += n  # only once nothing can refuse the batch any more
        self._partitions.update(
            batch_keys,
            keys.validity,
            timestamps,
            timestamps_valid,
            self.as_of_limit,
            amounts,
            amounts_valid,
            values,
            values_valid,
            self.counters,
            chunks,
        )
        return -1

    def _pair_value_column(
        self, distinct_values: KeyColumn | None, n: int
    ) -> tuple[np.ndarray, Validity]:
        """Integer values (order ids, text order ids as dense ids, or days) for the pairs."""
        if distinct_values is None:
            return _NO_INDEX, ALL_VALID
        if not isinstance(distinct_values, IntColumn):
            distinct_values = self.dense_order_ids(distinct_values)
        return distinct_values.values, distinct_values.validity

    def dense_order_ids(self, orders: KeyColumn) -> IntColumn:
        """Text or dictionary-encoded order ids as dense integer ids, in a new array, ready for
        :meth:`update` as its ``distinct_values`` column.

        The ids are given in first-seen order, so batches must come here in the order they are
        folded. This may run in another thread than :meth:`update` (a reader thread that
        prepares the next batch while this one is folded), one thread at a time.
        """
        values = np.empty(len(orders), dtype=np.int64)
        self.order_ids.factorize(orders, values)
        self._dense_orders = True
        return IntColumn(values, _validity_of(values >= 0))  # null order ids come back as -1

    def row_counts(self) -> RowCounts:
        total = self.counters.sum(axis=0)
        max_ts = int(self.counters[:, layout.MAX_TIMESTAMP].max())
        used = int(total[layout.ROWS_USED])
        dropped_returns = int(total[layout.RETURN_ROWS]) if self.returns == "drop" else 0
        return RowCounts(
            rows_read=self.rows_read,
            rows_used=used,
            null_customer=int(total[layout.DROPPED_NULL_CUSTOMER]),
            null_timestamp=int(total[layout.DROPPED_NULL_TIMESTAMP]),
            after_as_of=int(total[layout.DROPPED_AFTER_AS_OF]),
            null_amount=int(total[layout.NULL_AMOUNT]),
            max_timestamp=max_ts if used or dropped_returns else None,  # returns count too
            return_rows=int(total[layout.RETURN_ROWS]),
            dropped_returns=dropped_returns,
        )

    def finish(self, *, keep_sums: bool = False, keep_pairs: bool = False) -> CustomerTotals:
        """Per-customer totals of every customer with at least one used row, sorted by key.

        ``keep_sums`` also returns the exact sums, ``keep_pairs`` the distinct pairs (for a
        mergeable :class:`rfm_fast.core.state.CustomerState`).
        """
        pair_positions = pair_values = None
        unsorted = self._partitions.finish(keep_pairs)
        self._partitions = None
        totals = unsorted.totals
        if unsorted.pair_positions is not None:
            pair_positions = unsorted.pair_positions
            pair_values = self._pair_values(unsorted.pair_values)
        if isinstance(unsorted.keys, np.ndarray):
            keys = unsorted.keys.view(np.uint64) if self._unsigned else unsorted.keys
            keys, order = radix_sorted(keys, self.threads, self._run)
        else:
            text = key_column(unsorted.keys)
            order = parallel_text_argsort(text.offsets, text.data, self.threads, self._run)
            keys = unsorted.keys.take(from_numpy(order))
        columns = gathered_columns(totals, order, self.threads, self._run)
        del totals, unsorted
        whole = columns[layout.TOTAL_SUM_WHOLE]
        fraction = columns[layout.TOTAL_SUM_FRACTION]
        monetary = monetary_sums(whole, fraction, keys, self.threads, self._run)
        if self._pool is not None:
            self._pool.shutdown()
        rows = columns[layout.TOTAL_ROWS]
        if self.returns == "net" and self.distinct_kind is None:
            rows = rows - columns[layout.TOTAL_DISTINCT]  # the slots counted the returns
        pairs = None
        if pair_positions is not None:
            rank = np.empty(order.shape[0], dtype=np.int64)
            rank[order] = np.arange(order.shape[0], dtype=np.int64)
            pairs = (rank[pair_positions], pair_values)
        return CustomerTotals(
            keys=keys,
            first=columns[layout.TOTAL_FIRST],
            last=columns[layout.TOTAL_LAST],
            rows=rows,
            distinct=None if self.distinct_kind is None else columns[layout.TOTAL_DISTINCT],
            monetary=monetary,
            sums=(whole, fraction) if keep_sums else None,
            pairs=pairs,
        )

    def _pair_values(self, values: np.ndarray) -> np.ndarray | pa.Array:
        """Pair values as the state keeps them: dense ids of text (or dictionary) order ids
        become the ids themselves, as text even with no rows."""
        if self._dense_orders or self.distinct_kind == "string":
            return _take(self.order_ids.keys(), values)
        return values


def _take(keys: np.ndarray | pa.Array, ids: np.ndarray) -> np.ndarray | pa.Array:
    return keys[ids] if isinstance(keys, np.ndarray) else keys.take(from_numpy(ids))


def _validity_of(mask: np.ndarray) -> Validity:
    """An Arrow-style validity bitmap (LSB first) from a boolean mask."""
    if mask.all():
        return ALL_VALID
    return Validity(np.packbits(mask, bitorder="little"), 0)
