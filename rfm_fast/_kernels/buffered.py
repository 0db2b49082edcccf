"""Buffered radix partitions for customer keys: rows are scattered into per-partition record
buffers over many batches, and a partition's buffer is folded into its table only once it holds
thousands of rows.

Where the time of a grouped aggregation over millions of customers goes is the cache miss on the
customer's entry. A single table of 5M customers makes every row a miss to memory (measured on
this project's 2-core machine: 35 to 60 ns a row even with prefetching, and two threads
contend). Folding a partition's rows batch by batch (about 4,000 rows a partition a batch) does
not help: its table has left the cache since the previous batch. So each thread scatters its
rows into ``partitions x capacity`` fixed-size records, and a partition is folded when its
buffers are at least half full: thousands of rows meet a table that is small enough for the L2
cache, and that table is read while it is being reused. Integer keys' row records go through a
block of ``BLOCK_RECORDS`` a partition (all blocks together stay in the L2 cache), flushed
whole with non-temporal stores, so that the buffers are written without being read first
(:func:`scatter_int_rows`).

A record is ``RECORD_WIDTH`` int64 words (``RECORD_WIDTH_DISTINCT`` with distinct values): the
key's hash, timestamp and amount (the amount's float64 bits, or the integer itself), then the
distinct value and its flags. Null and NaN amounts are stored as 0 and counted when scattered: a
sum ignores them anyway. An integer key travels as its hash (``mix64``, a bijection): the
scatter hashes it once for its partition, a fold and a table's growth use the hash as it is, and
:func:`compact_slots` turns it back into the key (``unmix64``). A text key's record holds its
hash as the key and, in one more word, a reference
(position and length) to its bytes, which the scatter copies into the partition's byte buffer
beside the records: a batch's strings need not outlive the batch, and a fold reads both in
order. Each partition's table keeps its customers' key bytes in a store of its own; a slot
matches a record when the hashes and the bytes agree.

Where rows of one customer come together (a customer-sorted file), or the lines of one order,
:func:`scatter_int_runs` writes one *run record* a run instead (the run's earliest and latest
purchase, rows, exact sum and purchases, combined in registers), and :func:`fold_runs` folds
it: a fold then meets one record a run. Run records are wider (``RUN_WIDTH`` words), so they
are chosen only where runs are common (see :mod:`rfm_fast.core.partitions`).

A partition's table holds its customers in 64-byte slots of ``SLOT_WIDTH`` words, key hash and
totals together, so that finding a customer and updating its totals touch one cache line. An
empty slot has ``ROWS == 0``; every int64 key, sentinels included, is a valid key. Tables use
multiply-shift range reduction, so capacities need not be powers of two.

With distinct values, each new (customer, value) pair is appended to its partition's pair
arrays, not looked up in a hash table of pairs: such a table outgrows the cache at a few
hundred thousand pairs a partition, and then each row costs a miss. Repeats are removed by
sorting (:func:`dedupe_pairs`) when the arrays are full and at the end; a customer's repeat
of its latest value (an order's lines next to each other) is not appended at all.

Kernels never grow anything and never check their input: a kernel stops where a buffer is full
or a table could pass ``max_used`` entries, and returns where it stopped; the caller folds or
grows, and calls again from there.
"""

from __future__ import annotations

import numpy as np
from numba import types
from numba.extending import overload

from rfm_fast._kernels.config import JIT_OPTIONS, jit, jit_inline
from rfm_fast._kernels.hashing import is_valid, mix64, unmix64
from rfm_fast._kernels.intrinsics import prefetch, store_fence, store_nontemporal
from rfm_fast._kernels.layout import (
    DISTINCT,
    DROPPED_AFTER_AS_OF,
    DROPPED_NULL_CUSTOMER,
    DROPPED_NULL_TIMESTAMP,
    FIRST,
    INT64_MAX,
    INT64_MIN,
    KEY,
    LAST,
    LAST_VALUE,
    MAX_TIMESTAMP,
    N_TOTALS,
    NULL_AMOUNT,
    R_AMOUNT,
    R_FLAGS,
    R_KEY,
    R_TS,
    R_VALUE,
    RECORD_WIDTH,
    RETURN_ROWS,
    RETURNS_DROP,
    RETURNS_NET,
    ROWS,
    ROWS_USED,
    RUN_WIDTH,
    SLOT_WIDTH,
    SUM_FRACTION,
    SUM_WHOLE,
    TEXT_LENGTH_BITS,
    TEXT_LENGTH_MASK,
    U_FIRST,
    U_FLAGS,
    U_KEY,
    U_LAST,
    U_PURCHASES,
    U_ROWS,
    U_SUM_FRACTION,
    U_SUM_WHOLE,
    U_VALUE,
    VALUE_IS_NULL,
)
from rfm_fast._kernels.totals import amount_parts, exact_sum

PREFETCH_DISTANCE = 16
"""Records between a slot's prefetch and its use."""
INSERTION_SORT_MAX = 32
"""A customer's values are sorted in place up to this many (a call to sort costs more)."""


@jit_inline
def partition_of(h, shift):
    """A hash's partition: its top bits (``shift`` 64 means one partition)."""
    if shift >= 64:
        return np.int64(0)
    return np.int64(h >> np.uint64(shift))


@jit_inline
def home_slot(h, capacity):
    """A hash's first slot in a table of ``capacity`` slots: its low 32 bits, scaled."""
    return np.int64(((h & np.uint64(0xFFFFFFFF)) * np.uint64(capacity)) >> np.uint64(32))


# The slot words (S_) and other constants as uint64, for kernels that index with unsigned
# positions (a signed index costs Numba's wraparound code at every access).
U_ZERO = np.uint64(0)
U_ONE = np.uint64(1)
S_KEY = np.uint64(KEY)
S_FIRST = np.uint64(FIRST)
S_LAST = np.uint64(LAST)
S_ROWS = np.uint64(ROWS)
S_SUM_WHOLE = np.uint64(SUM_WHOLE)
S_SUM_FRACTION = np.uint64(SUM_FRACTION)
S_DISTINCT = np.uint64(DISTINCT)
S_LAST_VALUE = np.uint64(LAST_VALUE)
S_WIDTH = np.uint64(SLOT_WIDTH)
U_PREFETCH_DISTANCE = np.uint64(PREFETCH_DISTANCE)


@jit_inline
def unsigned_home_slot(key, capacity):
    """:func:`home_slot` of an int64 key hash, as a uint64 (``capacity`` a uint64)."""
    return ((np.uint64(key) & np.uint64(0xFFFFFFFF)) * capacity) >> np.uint64(32)


def store_amount(records, records_float, p, f, value):  # pragma: no cover - overloaded
    """Write an amount into record ``(p, f)``: integers as they are, floats as float64."""
    raise NotImplementedError


@overload(store_amount, jit_options=JIT_OPTIONS)
def _store_amount_overload(records, records_float, p, f, value):
    if isinstance(value, types.Integer):

        def store_integer(records, records_float, p, f, value):
            records[p, f, R_AMOUNT] = np.int64(value)

        return store_integer

    def store_float(records, records_float, p, f, value):
        records_float[p, f, R_AMOUNT] = np.float64(value)

    return store_float


def load_amount(records, records_float, r, witness):  # pragma: no cover - overloaded
    """The amount of record ``r``, typed like the elements of ``witness`` (an empty array of
    the amount column's type): an int64, or a float64."""
    raise NotImplementedError


@overload(load_amount, jit_options=JIT_OPTIONS)
def _load_amount_overload(records, records_float, r, witness):
    if isinstance(witness.dtype, types.Integer):

        def load_integer(records, records_float, r, witness):
            return records[r, R_AMOUNT]

        return load_integer

    def load_float(records, records_float, r, witness):
        return records_float[r, R_AMOUNT]

    return load_float


@jit_inline
def is_return(amounts, bitmap, bit_offset, i):
    """Whether row ``i`` has an amount (not null, not NaN) below zero."""
    value = amounts[i]
    return is_valid(bitmap, bit_offset, i) and value < 0  # NaN < 0 is False


@jit
def scatter_int_rows(
    start,
    stop,
    shift,
    keys,
    key_bitmap,
    key_bit_offset,
    timestamps,
    ts_bitmap,
    ts_bit_offset,
    as_of_limit,
    amounts,
    amount_bitmap,
    amount_bit_offset,
    returns,
    values,
    value_bitmap,
    value_bit_offset,
    fill,
    records,
    blocks,
    blocks_float,
    block_fill,
    counters,
):
    """Scatter rows ``start..stop-1`` into their partition's records (``fill[p]`` of them
    used, advanced in place), counting the rows left out and the null amounts.

    A row's record is written to its partition's block (``blocks[p]``, ``block_fill[p]``
    records of ``BLOCK_RECORDS`` used), in the cache; a full block is copied to the
    partition's records whole, with non-temporal stores, when the partition's next row comes.
    ``fill[p]`` therefore stays a multiple of ``BLOCK_RECORDS``, every flush writes whole
    cache lines (records are page-aligned, and ``BLOCK_RECORDS`` records of any width are a
    multiple of 64 bytes), and the buffers are not read for ownership (scattered straight into
    ``records``, each row's store first read its line from memory; see docs/performance.md).
    A partition's buffer is full when its block is full and ``fill[p]`` is ``capacity =
    records.shape[1] - BLOCK_RECORDS`` (a multiple of ``BLOCK_RECORDS``): the records keep
    room for one more block, into which :func:`drain_blocks` moves a partial block before a
    fold.

    ``values`` empty: no distinct values.

    Parameters
    ----------
    start, stop : int
        The rows of the batch to scatter.
    shift : int
        ``64 - partition_bits``: a key's partition is the top bits of its hash.
    keys : int array
        The customer keys (any integer type).
    key_bitmap, key_bit_offset : uint8 array, int
        The key column's Arrow validity bitmap (empty: no nulls) and its bit offset; the same
        pair follows each column below.
    timestamps, ts_bitmap, ts_bit_offset : int64 array, uint8 array, int
        Purchase times in ticks of the column's unit.
    as_of_limit : int
        Rows with a later timestamp are left out (and counted).
    amounts, amount_bitmap, amount_bit_offset : int or float array, uint8 array, int
        Amounts; null and NaN ones are stored as 0 and counted.
    returns : int
        ``RETURNS_DROP`` (of :mod:`rfm_fast._kernels.totals`): rows with a negative amount are
        left out. Such rows are counted (``RETURN_ROWS``) whatever ``returns`` is.
    values, value_bitmap, value_bit_offset : int64 array, uint8 array, int
        Distinct values (order ids or days); empty when rows are counted.
    fill : int64 array, ``(partitions,)``
        Records used in each partition's buffer (a multiple of ``BLOCK_RECORDS``); advanced
        in place.
    records : int64 array ``(partitions, capacity + BLOCK_RECORDS, width)``
        The record buffers, page-aligned.
    blocks, blocks_float : int64 array ``(partitions, BLOCK_RECORDS, width)`` and its float64
        view
        Each partition's block of records not yet flushed.
    block_fill : int64 array, ``(partitions,)``
        Records in each partition's block; advanced in place.
    counters : int64 array
        Rows dropped by reason, null amounts, rows used and the latest timestamp (the
        ``DROPPED_*``, ``NULL_AMOUNT``, ``ROWS_USED`` and ``MAX_TIMESTAMP`` positions of
        :mod:`rfm_fast._kernels.totals`), updated in place.

    Returns
    -------
    int
        ``stop``, or the first row that did not fit.
    """
    block_records = blocks.shape[1]
    capacity = records.shape[1] - block_records
    width = records.shape[2]
    block_words = block_records * width
    partition_words = records.shape[1] * width
    flat_records = records.reshape(records.size)  # 1-D, for the non-temporal stores
    flat_blocks = blocks.reshape(blocks.size)
    has_values = values.shape[0] > 0
    max_ts = counters[MAX_TIMESTAMP]
    used = np.int64(0)
    null_amounts = np.int64(0)
    returned = np.int64(0)
    stopped = stop
    for i in range(start, stop):
        # Written out here rather than in a helper: a helper with several exits that takes
        # these arrays keeps Numba's reference counting in the loop.
        if not is_valid(key_bitmap, key_bit_offset, i):
            counters[DROPPED_NULL_CUSTOMER] += 1
            continue
        if not is_valid(ts_bitmap, ts_bit_offset, i):
            counters[DROPPED_NULL_TIMESTAMP] += 1
            continue
        ts = np.int64(timestamps[i])
        if ts > as_of_limit:
            counters[DROPPED_AFTER_AS_OF] += 1
            continue
        if returns == RETURNS_DROP and is_return(amounts, amount_bitmap, amount_bit_offset, i):
            counters[RETURN_ROWS] += 1
            if ts > max_ts:  # the latest timestamp counts returns in every mode
                max_ts = ts
            continue
        h = mix64(np.int64(keys[i]))
        p = partition_of(h, shift)
        b = block_fill[p]
        if b == block_records:  # flush the full block first
            f = fill[p]
            if f + block_records > capacity:
                stopped = i
                break
            source = p * block_words
            target = p * partition_words + f * width
            for w in range(block_words):
                store_nontemporal(flat_records, target + w, flat_blocks[source + w])
            fill[p] = f + block_records
            b = 0
        block_fill[p] = b + 1
        used += 1
        if ts > max_ts:
            max_ts = ts
        blocks[p, b, R_KEY] = np.int64(h)
        blocks[p, b, R_TS] = ts
        value = amounts[i]
        if is_valid(amount_bitmap, amount_bit_offset, i) and np.float64(value) == np.float64(value):
            store_amount(blocks, blocks_float, p, b, value)
            if value < 0:  # counted once stored: a row that did not fit is scattered again
                returned += 1
        else:
            blocks[p, b, R_AMOUNT] = 0
            null_amounts += 1
        if has_values:
            if is_valid(value_bitmap, value_bit_offset, i):
                blocks[p, b, R_VALUE] = np.int64(values[i])
                blocks[p, b, R_FLAGS] = 0
            else:
                blocks[p, b, R_VALUE] = 0
                blocks[p, b, R_FLAGS] = VALUE_IS_NULL
    store_fence()  # the flushed blocks are visible to the thread that folds them
    counters[ROWS_USED] += used
    counters[NULL_AMOUNT] += null_amounts
    counters[RETURN_ROWS] += returned
    counters[MAX_TIMESTAMP] = max_ts
    return stopped


@jit
def drain_blocks(partitions, blocks, block_fill, records, fill):
    """Move the records of each of ``partitions``' blocks (see :func:`scatter_int_rows`) to
    the end of its records, before they are folded: ``fill[p]`` grows by ``block_fill[p]``
    (``records`` keeps room for one block beyond the scatter's capacity), and the block is
    emptied."""
    for k in range(partitions.shape[0]):
        p = partitions[k]
        f = fill[p]
        for b in range(block_fill[p]):
            for w in range(blocks.shape[2]):
                records[p, f + b, w] = blocks[p, b, w]
        fill[p] = f + block_fill[p]
        block_fill[p] = 0


@jit_inline
def load_word(data, at, end):
    """Bytes ``at..min(at + 8, end) - 1`` of ``data`` as a little-endian 64-bit word (zero
    padded)."""
    if at + 8 <= end:
        return (
            np.uint64(data[at])
            | (np.uint64(data[at + 1]) << np.uint64(8))
            | (np.uint64(data[at + 2]) << np.uint64(16))
            | (np.uint64(data[at + 3]) << np.uint64(24))
            | (np.uint64(data[at + 4]) << np.uint64(32))
            | (np.uint64(data[at + 5]) << np.uint64(40))
            | (np.uint64(data[at + 6]) << np.uint64(48))
            | (np.uint64(data[at + 7]) << np.uint64(56))
        )
    word = np.uint64(0)
    shift = np.uint64(0)
    while at < end:
        word |= np.uint64(data[at]) << shift
        shift += np.uint64(8)
        at += 1
    return word


@jit_inline
def text_to_words(data, start, length, words):
    """Write ``data[start:start + length]`` into ``words`` as little-endian 64-bit words (the
    last one padded with zero bytes) and return the bytes' hash: a multiply per word, then
    splitmix64's finalizer. Copies and comparisons by words cost a third of byte loops."""
    h = np.uint64(0x9E3779B97F4A7C15)
    k = np.uint64(0xFF51AFD7ED558CCD)
    end = start + length
    at = start
    w = 0
    while at < end:
        word = load_word(data, at, end)
        words[w] = word
        w += 1
        h = (h ^ word) * k
        h ^= h >> np.uint64(32)
        at += 8
    return mix64(h ^ np.uint64(length))


@jit_inline
def text_words(length):
    """64-bit words that hold ``length`` bytes."""
    return (length + 7) >> 3


@jit
def scatter_text_rows(
    start,
    stop,
    shift,
    offsets,
    data,
    index,
    key_bitmap,
    key_bit_offset,
    timestamps,
    ts_bitmap,
    ts_bit_offset,
    as_of_limit,
    amounts,
    amount_bitmap,
    amount_bit_offset,
    returns,
    values,
    value_bitmap,
    value_bit_offset,
    fill,
    records,
    records_float,
    text_fill,
    texts,
    scratch,
    counters,
):
    """:func:`scatter_int_rows` for text keys: row ``i`` is string ``index[i]`` of
    (``offsets``, ``data``), or string ``i`` when ``index`` is empty (dictionaries pass their
    indices). A record's key is the string's hash; its bytes are copied, as 64-bit words, to
    the partition's ``texts`` (``(partitions, text_capacity)`` uint64, ``text_fill[p]``
    used), and the record's last word refers to them (word position and byte length).
    ``text_capacity`` must hold the longest key.

    Parameters
    ----------
    offsets, data, index : int array, uint8 array, int64 array
        In place of ``keys``: the key column's offsets (shifted to its offset) and bytes;
        ``index`` maps rows to strings (a dictionary's indices), or is empty.
    text_fill : int64 array, ``(partitions,)``
        Words used in each partition's ``texts``; advanced in place.
    texts : uint64 array, ``(partitions, text_capacity)``
        The key bytes of the records, as zero-padded 64-bit words.
    scratch : uint64 array
        Room for the words of the longest key.
    others
        As for :func:`scatter_int_rows`.

    Returns
    -------
    int
        ``stop``, or the first row whose partition's records or texts were full.
    """
    capacity = records.shape[1]
    text_capacity = texts.shape[1]
    text_at = records.shape[2] - 1
    has_values = values.shape[0] > 0
    indexed = index.shape[0] > 0
    max_ts = counters[MAX_TIMESTAMP]
    used = np.int64(0)
    null_amounts = np.int64(0)
    returned = np.int64(0)
    stopped = stop
    for i in range(start, stop):
        # Written out here, as in scatter_int_rows (Numba's reference counting).
        if not is_valid(key_bitmap, key_bit_offset, i):
            counters[DROPPED_NULL_CUSTOMER] += 1
            continue
        if not is_valid(ts_bitmap, ts_bit_offset, i):
            counters[DROPPED_NULL_TIMESTAMP] += 1
            continue
        ts = np.int64(timestamps[i])
        if ts > as_of_limit:
            counters[DROPPED_AFTER_AS_OF] += 1
            continue
        if returns == RETURNS_DROP and is_return(amounts, amount_bitmap, amount_bit_offset, i):
            counters[RETURN_ROWS] += 1
            if ts > max_ts:  # the latest timestamp counts returns in every mode
                max_ts = ts
            continue
        k = index[i] if indexed else i
        lo = np.int64(offsets[k])
        length = np.int64(offsets[k + 1]) - lo
        h = text_to_words(data, lo, length, scratch)
        p = partition_of(h, shift)
        f = fill[p]
        t = text_fill[p]
        n_words = text_words(length)
        if f == capacity or t + n_words > text_capacity:
            stopped = i
            break
        fill[p] = f + 1
        text_fill[p] = t + n_words
        for w in range(n_words):
            texts[p, t + w] = scratch[w]
        used += 1
        if ts > max_ts:
            max_ts = ts
        records[p, f, R_KEY] = np.int64(h)
        records[p, f, text_at] = (t << TEXT_LENGTH_BITS) | length
        records[p, f, R_TS] = ts
        value = amounts[i]
        if is_valid(amount_bitmap, amount_bit_offset, i) and np.float64(value) == np.float64(value):
            store_amount(records, records_float, p, f, value)
            if value < 0:  # counted once stored: a row that did not fit is scattered again
                returned += 1
        else:
            records[p, f, R_AMOUNT] = 0
            null_amounts += 1
        if has_values:
            if is_valid(value_bitmap, value_bit_offset, i):
                records[p, f, R_VALUE] = np.int64(values[i])
                records[p, f, R_FLAGS] = 0
            else:
                records[p, f, R_VALUE] = 0
                records[p, f, R_FLAGS] = VALUE_IS_NULL
    counters[ROWS_USED] += used
    counters[NULL_AMOUNT] += null_amounts
    counters[RETURN_ROWS] += returned
    counters[MAX_TIMESTAMP] = max_ts
    return stopped


@jit
def fold_records(
    records,
    records_float,
    witness,
    net_returns,
    start,
    stop,
    slots,
    slot_groups,
    n_used,
    max_used,
    pair_groups,
    pair_values,
    n_pairs,
):
    """Fold records ``start..stop-1`` of one partition's buffer (``(capacity, width)``) into its
    table ``slots``.

    With distinct values (``records`` wider than ``RECORD_WIDTH``), a new customer gets the
    dense id ``n_used`` in ``slot_groups`` (stored as ``-id - 1`` until the customer has a
    non-null value in ``LAST_VALUE``), and each (id, value) pair whose value differs from the
    customer's previous one is appended to ``pair_groups`` and ``pair_values``: repeats are
    removed later, by :func:`dedupe_pairs`. The slot's ``DISTINCT`` counts the null values.

    Parameters
    ----------
    records, records_float : int64 array ``(capacity, width)`` and its float64 view
        One partition's buffer (of one thread).
    witness : empty int64 or float64 array
        The amounts' type: how ``R_AMOUNT`` is read.
    net_returns : bool
        A record with a negative amount is a return: it adds to the sum (and, without
        distinct values, to the returns counted in ``DISTINCT``) but does not set the first
        or last purchase, nor count as an order. A customer whose records are all returns has
        ``FIRST == INT64_MAX`` and ``LAST == INT64_MIN``.
    start, stop : int
        The records to fold.
    slots : int64 array, ``(table_capacity, SLOT_WIDTH)``
        The partition's table: key and totals per customer (``ROWS == 0``: empty).
    slot_groups : int64 array, ``(table_capacity,)``
        With distinct values, each customer's dense id (``-id - 1`` until it has a value).
    n_used : int64 array, ``(1,)``
        Customers in the table; advanced in place.
    max_used : int
        The most customers the table may hold (its load limit).
    pair_groups, pair_values, n_pairs : int64 arrays, and ``(1,)``
        The (dense id, value) pairs appended so far (``n_pairs[0]`` of them); empty without
        distinct values.

    Returns
    -------
    int
        ``stop``, or the record at which the table or the pair arrays were full.
    """
    # Unsigned positions throughout: a signed index costs Numba's wraparound code (a shift, an
    # and and an add) at every access, and the table is accessed a dozen times a record.
    capacity = np.uint64(slots.shape[0])
    max_pairs = np.int64(pair_values.shape[0])
    has_values = records.shape[1] > RECORD_WIDTH
    table = slots.reshape(slots.size)  # 1-D: a slot's words at base + KEY, ..., LAST_VALUE
    used = n_used[0]
    pair_count = n_pairs[0]
    end = np.uint64(stop)
    for r in range(np.uint64(start), end):
        if used >= max_used or (has_values and pair_count >= max_pairs):
            n_used[0] = used
            n_pairs[0] = pair_count
            return np.int64(r)
        ahead = r + U_PREFETCH_DISTANCE
        if ahead < end:
            prefetch(table, unsigned_home_slot(records[ahead, R_KEY], capacity) * S_WIDTH)
        key = records[r, R_KEY]
        slot = unsigned_home_slot(key, capacity)
        base = slot * S_WIDTH
        while table[base + S_ROWS] != 0 and table[base + S_KEY] != key:
            slot += U_ONE
            if slot == capacity:
                slot = U_ZERO
            base = slot * S_WIDTH
        ts = records[r, R_TS]
        amount = load_amount(records, records_float, r, witness)
        whole, fraction = amount_parts(amount)
        purchase = not (net_returns and amount < 0)  # (not the parts: -1e-19 splits to 0, 0)
        rows = table[base + S_ROWS]
        if rows == 0:
            table[base + S_KEY] = key
            table[base + S_FIRST] = ts if purchase else INT64_MAX
            table[base + S_LAST] = ts if purchase else INT64_MIN
            if has_values:
                slot_groups[slot] = -used - 1  # no LAST_VALUE yet
            used += 1
        elif purchase:  # min and max: no branch on the data
            table[base + S_FIRST] = min(table[base + S_FIRST], ts)
            table[base + S_LAST] = max(table[base + S_LAST], ts)
        table[base + S_ROWS] = rows + 1
        table[base + S_SUM_WHOLE], table[base + S_SUM_FRACTION] = exact_sum(
            table[base + S_SUM_WHOLE], table[base + S_SUM_FRACTION], whole, fraction
        )
        if not purchase:
            if not has_values:
                table[base + S_DISTINCT] += 1  # the returns, taken off the rows at the end
            continue
        if not has_values:
            continue
        if records[r, R_FLAGS] & VALUE_IS_NULL:
            table[base + S_DISTINCT] += 1  # a null order is an order of its own
            continue
        value = records[r, R_VALUE]
        group = slot_groups[slot]
        if group >= 0 and table[base + S_LAST_VALUE] == value:
            continue  # the same value as the customer's latest one: already counted
        if group < 0:
            group = -group - 1
            slot_groups[slot] = group
        table[base + S_LAST_VALUE] = value
        pair_groups[pair_count] = group
        pair_values[pair_count] = value
        pair_count += 1
    n_used[0] = used
    n_pairs[0] = pair_count
    return stop


@jit
def fold_text_records(
    records,
    records_float,
    witness,
    net_returns,
    texts,
    start,
    stop,
    slots,
    slot_groups,
    slot_text,
    key_bytes,
    key_bytes_used,
    n_used,
    max_used,
    pair_groups,
    pair_values,
    n_pairs,
):
    """:func:`fold_records` for text keys. A slot matches a record when the hashes (``KEY``)
    and the bytes agree: the record's in ``texts`` (the partition's scattered bytes), the
    slot's in ``key_bytes`` (the partition's keys, ``key_bytes_used[0]`` used), referred to by
    ``slot_text``; both are 64-bit words, zero-padded.

    Parameters
    ----------
    texts : uint64 array
        The partition's scattered key bytes, which the records' last word refers to.
    slot_text : int64 array, ``(table_capacity,)``
        Where each customer's key bytes are in ``key_bytes``.
    key_bytes, key_bytes_used : uint64 array, int64 array ``(1,)``
        The partition's store of key bytes, and the words of it used.
    others
        As for :func:`fold_records`.

    Returns
    -------
    int
        ``stop``, or the record at which the table, the pair arrays or the key store were full.
    """
    capacity = np.int64(slots.shape[0])
    max_pairs = np.int64(pair_values.shape[0])
    text_at = records.shape[1] - 1
    has_values = records.shape[1] > RECORD_WIDTH + 1
    key_capacity = np.int64(key_bytes.shape[0])
    flat = slots.reshape(slots.size)  # 1-D, for prefetch
    used = n_used[0]
    pair_count = n_pairs[0]
    bytes_used = key_bytes_used[0]
    stopped = stop
    for r in range(start, stop):
        if used >= max_used or (has_values and pair_count >= max_pairs):
            stopped = r
            break
        if r + PREFETCH_DISTANCE < stop:
            ahead = home_slot(np.uint64(records[r + PREFETCH_DISTANCE, R_KEY]), capacity)
            prefetch(flat, ahead * SLOT_WIDTH)
        key = records[r, R_KEY]
        ref = records[r, text_at]
        at = ref >> TEXT_LENGTH_BITS
        length = ref & TEXT_LENGTH_MASK
        slot = home_slot(np.uint64(key), capacity)
        while slots[slot, ROWS] != 0:
            if slots[slot, KEY] == key and slot_text[slot] & TEXT_LENGTH_MASK == length:
                slot_at = slot_text[slot] >> TEXT_LENGTH_BITS
                same = True
                for w in range(text_words(length)):
                    if key_bytes[slot_at + w] != texts[at + w]:
                        same = False
                        break
                if same:
                    break
            slot += 1
            if slot == capacity:
                slot = 0
        ts = records[r, R_TS]
        amount = load_amount(records, records_float, r, witness)
        whole, fraction = amount_parts(amount)
        purchase = not (net_returns and amount < 0)  # (not the parts: -1e-19 splits to 0, 0)
        new = slots[slot, ROWS] == 0
        if new:
            n_words = text_words(length)
            if bytes_used + n_words > key_capacity:
                stopped = r
                break
            for w in range(n_words):
                key_bytes[bytes_used + w] = texts[at + w]
            slot_text[slot] = (bytes_used << TEXT_LENGTH_BITS) | length
            bytes_used += n_words
            slots[slot, KEY] = key
            slots[slot, FIRST] = ts if purchase else INT64_MAX
            slots[slot, LAST] = ts if purchase else INT64_MIN
            if has_values:
                slot_groups[slot] = -used - 1  # no LAST_VALUE yet
            used += 1
        elif purchase:  # min and max: no branch on the data
            slots[slot, FIRST] = min(slots[slot, FIRST], ts)
            slots[slot, LAST] = max(slots[slot, LAST], ts)
        # From here on as in fold_records.
        slots[slot, ROWS] += 1
        slots[slot, SUM_WHOLE], slots[slot, SUM_FRACTION] = exact_sum(
            slots[slot, SUM_WHOLE], slots[slot, SUM_FRACTION], whole, fraction
        )
        if not purchase:
            if not has_values:
                slots[slot, DISTINCT] += 1
            continue
        if not has_values:
            continue
        if records[r, R_FLAGS] & VALUE_IS_NULL:
            slots[slot, DISTINCT] += 1
            continue
        value = records[r, R_VALUE]
        group = slot_groups[slot]
        if group >= 0 and slots[slot, LAST_VALUE] == value:
            continue
        if group < 0:
            group = -group - 1
            slot_groups[slot] = group
        slots[slot, LAST_VALUE] = value
        pair_groups[pair_count] = group
        pair_values[pair_count] = value
        pair_count += 1
    n_used[0] = used
    n_pairs[0] = pair_count
    key_bytes_used[0] = bytes_used
    return stopped


@jit
def dedupe_pairs(pair_groups, pair_values, n, n_groups, scratch, counts):
    """Sort pairs ``0..n-1`` by dense id, then value, and keep each (id, value) once, in that
    order, at the front of the arrays; returns how many are kept.

    ``scratch`` has at least ``n`` entries; ``counts`` at least ``n_groups + 1``, and it holds
    each id's distinct values afterwards. A counting sort by id (ids are dense, below
    ``n_groups``), then a sort of each id's few values: about the cost of one pass, where a
    hash table of pairs costs a cache miss a row once it outgrows the cache.
    """
    for g in range(n_groups + 1):
        counts[g] = 0
    for k in range(n):
        counts[pair_groups[k] + 1] += 1
    for g in range(n_groups):
        counts[g + 1] += counts[g]  # counts[g]: where id g's values start
    for k in range(n):
        g = pair_groups[k]
        scratch[counts[g]] = pair_values[k]
        counts[g] += 1  # ends as where id g's values end
    kept = 0
    start = 0
    for g in range(n_groups):
        end = counts[g]
        if end - start > INSERTION_SORT_MAX:
            scratch[start:end].sort()
        else:  # a customer's few values, often in order already
            for k in range(start + 1, end):
                value = scratch[k]
                j = k - 1
                while j >= start and scratch[j] > value:
                    scratch[j + 1] = scratch[j]
                    j -= 1
                scratch[j + 1] = value
        first_kept = kept
        for k in range(start, end):
            if k == start or scratch[k] != scratch[k - 1]:
                pair_groups[kept] = g
                pair_values[kept] = scratch[k]
                kept += 1
        counts[g] = kept - first_kept
        start = end
    return kept


@jit
def rehash_slots(old, old_groups, old_text, new, new_groups, new_text):
    """Move every occupied slot of ``old`` (and its dense id and text reference, where
    ``old_groups`` and ``old_text`` are not empty) into the empty table ``new``."""
    capacity = np.uint64(new.shape[0])
    has_groups = old_groups.shape[0] > 0
    has_text = old_text.shape[0] > 0
    source = old.reshape(old.size)  # 1-D, unsigned positions (see fold_records)
    target = new.reshape(new.size)
    for base in range(U_ZERO, np.uint64(target.shape[0]), S_WIDTH):
        target[base + S_ROWS] = 0  # touch the new table in order first: cheaper than at random
    for s in range(np.uint64(old.shape[0])):
        at = s * S_WIDTH
        if source[at + S_ROWS] == 0:
            continue
        slot = unsigned_home_slot(source[at + S_KEY], capacity)
        base = slot * S_WIDTH
        while target[base + S_ROWS] != 0:
            slot += U_ONE
            if slot == capacity:
                slot = U_ZERO
            base = slot * S_WIDTH
        for w in range(S_WIDTH):
            target[base + w] = source[at + w]
        if has_groups:
            new_groups[slot] = old_groups[s]
        if has_text:
            new_text[slot] = old_text[s]


@jit
def compact_slots(slots, slot_groups, slot_text, keys_out, text_out, totals_out):
    """Write the occupied slots' keys (an integer key from its hash; and text references, where
    ``slot_text`` is not empty) and totals (``FIRST..DISTINCT``): in slot order, or at their
    dense id when ``slot_groups`` is not empty. Returns how many there were."""
    n = 0
    has_groups = slot_groups.shape[0] > 0
    has_text = slot_text.shape[0] > 0
    for s in range(slots.shape[0]):
        if slots[s, ROWS] == 0:
            continue
        at = n
        if has_groups:
            at = slot_groups[s] if slot_groups[s] >= 0 else -slot_groups[s] - 1
        # An integer key's hash is turned back into the key; a text key's stays a hash.
        keys_out[at] = slots[s, KEY] if has_text else unmix64(slots[s, KEY])
        if has_text:
            text_out[at] = slot_text[s]
        for w in range(N_TOTALS):
            totals_out[at, w] = slots[s, FIRST + w]
        n += 1
    return n


@jit
def pair_rows(pair_groups, pair_values, n, base, positions, values):
    """A partition's first ``n`` pairs as customer position (``base`` + id) and value."""
    for k in range(n):
        positions[k] = base + pair_groups[k]
        values[k] = pair_values[k]


@jit
def gather_totals(totals, order, start, stop, columns):
    """``columns[w, i] = totals[order[i], w]`` for ``i`` in ``start..stop-1``: the sorted
    customers' totals, one contiguous column per total (``columns`` is ``(N_TOTALS, n)``)."""
    for i in range(start, stop):
        src = order[i]
        for w in range(totals.shape[1]):
            columns[w, i] = totals[src, w]


@jit
def copy_key_bytes(key_bytes, refs, starts, out):
    """Copy the bytes of each text reference ``refs[i]`` into ``out`` from ``starts[i]``
    (``key_bytes`` is a partition's key store viewed as bytes)."""
    for i in range(refs.shape[0]):
        at = (refs[i] >> TEXT_LENGTH_BITS) * 8
        length = refs[i] & TEXT_LENGTH_MASK
        begin = starts[i]
        for b in range(length):
            out[begin + b] = key_bytes[at + b]


@jit
def run_rows(keys, values, start, stop):
    """Rows of ``start..stop-1`` that continue a run: the same key as the row before (and,
    where ``values`` is not empty, the same value). Nulls are not looked at: an estimate of
    how much :func:`scatter_int_runs` would combine."""
    has_values = values.shape[0] > 0
    same = np.int64(0)
    for i in range(start + 1, stop):
        if keys[i] == keys[i - 1] and (not has_values or values[i] == values[i - 1]):
            same += 1
    return same


@jit
def scatter_int_runs(
    start,
    stop,
    shift,
    keys,
    key_bitmap,
    key_bit_offset,
    timestamps,
    ts_bitmap,
    ts_bit_offset,
    as_of_limit,
    amounts,
    amount_bitmap,
    amount_bit_offset,
    returns,
    values,
    value_bitmap,
    value_bit_offset,
    fill,
    records,
    counters,
):
    """:func:`scatter_int_rows` with run-combining: the rows of a run (consecutive used rows
    of one key and, with distinct values, one value or null) become one record of
    ``RUN_WIDTH`` (``RUN_WIDTH_DISTINCT``) words: the key's hash, the earliest and latest
    purchase, the rows, their exact sum and the rows that are purchases (and the value and
    its flags). Rows left out do not break a run.

    The counts of a run are kept until its record is written: where its partition's buffer is
    full, the run's first row is returned (the rows from there are scattered again after a
    fold, and counted then).

    Parameters
    ----------
    returns : int
        ``RETURNS_DROP``: negative amounts are left out; ``RETURNS_NET``: they are summed but
        are not purchases; otherwise they are purchases.
    records : int64 array ``(partitions, capacity, width)``
        The run record buffers.
    others
        As for :func:`scatter_int_rows`.

    Returns
    -------
    int
        ``stop``, or the first row of the run that did not fit.
    """
    capacity = records.shape[1]
    has_values = values.shape[0] > 0
    net = returns == RETURNS_NET
    max_ts = counters[MAX_TIMESTAMP]
    # Counts up to the last record written, and those since (of rows from `begin` on).
    done_null_key = done_null_ts = done_after = done_used = done_null_amounts = np.int64(0)
    done_returns = np.int64(0)
    null_key = null_ts = after = used = null_amounts = returned = np.int64(0)
    stopped = stop
    begin = start  # the first row after the last record written
    in_run = False
    run_key = np.int64(0)
    run_first = run_last = run_rows_ = run_whole = run_fraction = run_purchases = np.int64(0)
    run_value = run_flags = np.int64(0)
    key = ts = value = flags = np.int64(0)
    negative = False
    for i in range(start, stop + 1):
        if i < stop:
            if not is_valid(key_bitmap, key_bit_offset, i):
                null_key += 1
                continue
            if not is_valid(ts_bitmap, ts_bit_offset, i):
                null_ts += 1
                continue
            ts = np.int64(timestamps[i])
            if ts > as_of_limit:
                after += 1
                continue
            negative = is_return(amounts, amount_bitmap, amount_bit_offset, i)
            if ts > max_ts:  # the latest timestamp counts returns in every mode
                max_ts = ts
            if returns == RETURNS_DROP and negative:
                returned += 1
                continue
            key = np.int64(keys[i])  # hashed once a run, when its record is written
            value = np.int64(0)
            flags = np.int64(0)
            if has_values:
                if is_valid(value_bitmap, value_bit_offset, i):
                    value = np.int64(values[i])
                else:
                    flags = np.int64(VALUE_IS_NULL)
            if in_run and key == run_key and value == run_value and flags == run_flags:
                same = True
            else:
                same = False
        else:
            same = False
        if not same and in_run:  # write the run's record
            h = mix64(run_key)
            p = partition_of(h, shift)
            f = fill[p]
            if f == capacity:
                stopped = begin
                break
            fill[p] = f + 1
            records[p, f, U_KEY] = np.int64(h)
            records[p, f, U_FIRST] = run_first
            records[p, f, U_LAST] = run_last
            records[p, f, U_ROWS] = run_rows_
            records[p, f, U_SUM_WHOLE] = run_whole
            records[p, f, U_SUM_FRACTION] = run_fraction
            records[p, f, U_PURCHASES] = run_purchases
            if has_values:
                records[p, f, U_VALUE] = run_value
                records[p, f, U_FLAGS] = run_flags
            done_null_key = null_key
            done_null_ts = null_ts
            done_after = after
            done_used = used
            done_null_amounts = null_amounts
            done_returns = returned
            begin = i
            in_run = False
        if i == stop:
            break
        if not same:  # a new run from row i
            in_run = True
            run_key = key
            run_value = value
            run_flags = flags
            run_first = INT64_MAX
            run_last = INT64_MIN
            run_rows_ = 0
            run_whole = 0
            run_fraction = 0
            run_purchases = 0
        used += 1
        run_rows_ += 1
        amount = amounts[i]
        if is_valid(amount_bitmap, amount_bit_offset, i) and np.float64(amount) == np.float64(
            amount
        ):
            whole, fraction = amount_parts(amount)
            run_whole, run_fraction = exact_sum(run_whole, run_fraction, whole, fraction)
            if negative:
                returned += 1
        else:
            null_amounts += 1
        if not (net and negative):
            run_purchases += 1
            run_first = min(run_first, ts)
            run_last = max(run_last, ts)
    if stopped == stop:
        done_null_key = null_key
        done_null_ts = null_ts
        done_after = after
        done_used = used
        done_null_amounts = null_amounts
        done_returns = returned
    counters[DROPPED_NULL_CUSTOMER] += done_null_key
    counters[DROPPED_NULL_TIMESTAMP] += done_null_ts
    counters[DROPPED_AFTER_AS_OF] += done_after
    counters[ROWS_USED] += done_used
    counters[NULL_AMOUNT] += done_null_amounts
    counters[RETURN_ROWS] += done_returns
    counters[MAX_TIMESTAMP] = max_ts
    return stopped


@jit
def scatter_int_runs_plain(
    start, stop, shift, keys, timestamps, as_of_limit, amounts, returns, fill, records, counters
):
    """:func:`scatter_int_runs` for the common case, in tight loops: no null keys, timestamps
    or amounts (no validity bitmaps), no distinct values, and ``returns`` is not
    ``RETURNS_DROP``. A run's rows are consumed by an inner loop that keeps every total in a
    register (the general kernel, with its many cases, keeps them on the stack: 25 ns a row
    against 6, see docs/performance.md). Arguments and result as for
    :func:`scatter_int_runs`; the records and counters are the same."""
    capacity = records.shape[1]
    net = returns == RETURNS_NET
    max_ts = counters[MAX_TIMESTAMP]
    after = used = null_amounts = returned = np.int64(0)  # up to the last record written
    stopped = stop
    i = start
    while i < stop:
        begin = i  # the first row after the last record written
        pending_after = np.int64(0)
        while i < stop and np.int64(timestamps[i]) > as_of_limit:
            pending_after += 1
            i += 1
        if i == stop:
            after += pending_after
            break
        key = np.int64(keys[i])
        run_first = INT64_MAX
        run_last = INT64_MIN
        run_rows_ = run_whole = run_fraction = run_purchases = np.int64(0)
        run_null_amounts = run_returned = np.int64(0)
        while i < stop:
            ts = np.int64(timestamps[i])
            if ts > as_of_limit:  # left out, and does not end the run
                pending_after += 1
                i += 1
                continue
            max_ts = max(max_ts, ts)  # (of the row that ends the run too, as the general one)
            if np.int64(keys[i]) != key:
                break
            run_rows_ += 1
            amount = amounts[i]
            if np.float64(amount) == np.float64(amount):
                whole, fraction = amount_parts(amount)
                run_whole, run_fraction = exact_sum(run_whole, run_fraction, whole, fraction)
                run_returned += np.int64(amount < 0)
            else:
                run_null_amounts += 1
            if not (net and amount < 0):  # (NaN < 0 is False)
                run_purchases += 1
                run_first = min(run_first, ts)
                run_last = max(run_last, ts)
            i += 1
        h = mix64(key)
        p = partition_of(h, shift)
        f = fill[p]
        if f == capacity:
            stopped = begin
            break
        fill[p] = f + 1
        records[p, f, U_KEY] = np.int64(h)
        records[p, f, U_FIRST] = run_first
        records[p, f, U_LAST] = run_last
        records[p, f, U_ROWS] = run_rows_
        records[p, f, U_SUM_WHOLE] = run_whole
        records[p, f, U_SUM_FRACTION] = run_fraction
        records[p, f, U_PURCHASES] = run_purchases
        after += pending_after
        used += run_rows_
        null_amounts += run_null_amounts
        returned += run_returned
    counters[DROPPED_AFTER_AS_OF] += after
    counters[ROWS_USED] += used
    counters[NULL_AMOUNT] += null_amounts
    counters[RETURN_ROWS] += returned
    counters[MAX_TIMESTAMP] = max_ts
    return stopped


@jit
def fold_runs(
    records,
    start,
    stop,
    slots,
    slot_groups,
    n_used,
    max_used,
    pair_groups,
    pair_values,
    n_pairs,
):
    """:func:`fold_records` for run records (:func:`scatter_int_runs`): the same totals, a
    run at a time. Arguments and result as for :func:`fold_records`."""
    capacity = np.int64(slots.shape[0])
    max_pairs = np.int64(pair_values.shape[0])
    has_values = records.shape[1] > RUN_WIDTH
    flat = slots.reshape(slots.size)  # 1-D, for prefetch
    used = n_used[0]
    pair_count = n_pairs[0]
    for r in range(start, stop):
        if used >= max_used or (has_values and pair_count >= max_pairs):
            n_used[0] = used
            n_pairs[0] = pair_count
            return r
        if r + PREFETCH_DISTANCE < stop:
            ahead = home_slot(np.uint64(records[r + PREFETCH_DISTANCE, U_KEY]), capacity)
            prefetch(flat, ahead * SLOT_WIDTH)
        key = records[r, U_KEY]
        slot = home_slot(np.uint64(key), capacity)
        while slots[slot, ROWS] != 0 and slots[slot, KEY] != key:
            slot += 1
            if slot == capacity:
                slot = 0
        if slots[slot, ROWS] == 0:
            slots[slot, KEY] = key
            slots[slot, FIRST] = records[r, U_FIRST]
            slots[slot, LAST] = records[r, U_LAST]
            if has_values:
                slot_groups[slot] = -used - 1  # no LAST_VALUE yet
            used += 1
        else:  # (INT64_MAX and INT64_MIN where the run has no purchase)
            slots[slot, FIRST] = min(slots[slot, FIRST], records[r, U_FIRST])
            slots[slot, LAST] = max(slots[slot, LAST], records[r, U_LAST])
        rows = records[r, U_ROWS]
        purchases = records[r, U_PURCHASES]
        slots[slot, ROWS] += rows
        slots[slot, SUM_WHOLE], slots[slot, SUM_FRACTION] = exact_sum(
            slots[slot, SUM_WHOLE],
            slots[slot, SUM_FRACTION],
            records[r, U_SUM_WHOLE],
            records[r, U_SUM_FRACTION],
        )
        if not has_values:
            slots[slot, DISTINCT] += rows - purchases  # the returns, taken off the rows
            continue
        if purchases == 0:
            continue
        if records[r, U_FLAGS] & VALUE_IS_NULL:
            slots[slot, DISTINCT] += purchases  # each null order is an order of its own
            continue
        value = records[r, U_VALUE]
        group = slot_groups[slot]
        if group >= 0 and slots[slot, LAST_VALUE] == value:
            continue  # the same value as the customer's latest one: already counted
        if group < 0:
            group = -group - 1
            slot_groups[slot] = group
        slots[slot, LAST_VALUE] = value
        pair_groups[pair_count] = group
        pair_values[pair_count] = value
        pair_count += 1
    n_used[0] = used
    n_pairs[0] = pair_count
    return stop
