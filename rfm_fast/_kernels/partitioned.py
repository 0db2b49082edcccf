"""Radix-partitioned aggregation of text customer keys: rows are split by the top bits of their
key's hash, and each partition owns a small hash table, its totals and its keys' bytes.

(Integer keys go through the buffered partitions of :mod:`rfm_fast._kernels.buffered`, which
fold a partition only once thousands of its rows are buffered; text keys still fold batch by
batch, because a row's key bytes live in its batch.)

A partition's table is a fraction of the whole, so it stays in the CPU cache while that
partition's rows are folded in; and partitions share nothing, so threads can fold different
partitions at once with results that do not depend on the number of threads.

One batch goes through three kernels, each run on a chunk of rows (or one partition) per thread:

1. :func:`classify_string_rows`: drop (and count) rows without a
   customer or timestamp or after ``as_of``; hash the others and count them per partition;
2. :func:`scatter_rows`: copy the kept rows' hash, key (or row number for text keys), time,
   amount (split into exact integer words) and distinct value into partition-contiguous
   buffers, in input order within each partition;
3. :func:`fold_string_partition`: one partition's buffers into its
   table and totals, reading them front to back.

The caller sizes every table before step 3 so that it can take all of the partition's rows as
new keys: kernels never grow anything and never check their input.
"""

from __future__ import annotations

import numpy as np

from rfm_fast._kernels.aggregate import (
    DROPPED_AFTER_AS_OF,
    DROPPED_NULL_CUSTOMER,
    DROPPED_NULL_TIMESTAMP,
    MAX_TIMESTAMP,
    NULL_AMOUNT,
    ROWS_USED,
    amount_parts,
    amount_too_large,
    exact_sum,
)
from rfm_fast._kernels.config import jit, jit_inline
from rfm_fast._kernels.hashing import EMPTY, hash_bytes, is_valid, pair_hash
from rfm_fast._kernels.intrinsics import prefetch

# Columns of a partition's ``totals`` array (one row per customer).
FIRST = 0
LAST = 1
ROWS = 2
SUM_WHOLE = 3
SUM_FRACTION = 4
DISTINCT = 5
N_TOTALS = 6

PREFETCH_DISTANCE = 8
"""Rows between a slot's prefetch and its use (measured: 8 to 16 is best here)."""

# Bits of the per-row ``flags`` buffer.
VALUE_IS_NULL = 1


@jit_inline
def pair_slot(group, value, size):
    """Home slot of a (group, value) pair in a table of ``size`` slots (any size below 2**32:
    multiply-shift range reduction, so pair tables can grow by 1.5x instead of doubling)."""
    h = pair_hash(group, value) >> np.uint64(32)
    return np.int64((h * np.uint64(size)) >> np.uint64(32))


@jit
def first_bad_amount(amounts, bitmap, bit_offset):
    """The first row whose amount is infinite or too large to be summed exactly, or -1."""
    for i in range(amounts.shape[0]):
        if is_valid(bitmap, bit_offset, i) and amount_too_large(amounts[i]):
            return i
    return -1


@jit_inline
def partition_of(h, shift):
    """The top bits of the hash (``shift`` 64 means one partition)."""
    if shift >= 64:
        return np.int64(0)
    return np.int64(h >> np.uint64(shift))


@jit
def classify_string_rows(
    start,
    stop,
    offsets,
    data,
    index,
    key_bitmap,
    key_bit_offset,
    timestamps,
    ts_bitmap,
    ts_bit_offset,
    as_of_limit,
    shift,
    hashes,
    parts,
    counts,
    counters,
):
    """For rows ``start..stop-1``: the partition of each used row (``len(counts) - 1`` for
    dropped rows), its hash, and the rows per partition in ``counts``. Row ``i`` is string
    ``index[i]`` of (offsets, data), or string ``i`` when ``index`` is empty (dictionaries pass
    indices)."""
    dropped = counts.shape[0] - 1
    indexed = index.shape[0] > 0
    for i in range(start, stop):
        # Written out here rather than in a helper: a helper that takes these arrays and has
        # several exits keeps Numba's reference counting in the loop (about 30 ns a row).
        if not is_valid(key_bitmap, key_bit_offset, i):
            counters[DROPPED_NULL_CUSTOMER] += 1
            parts[i] = dropped
            continue
        if not is_valid(ts_bitmap, ts_bit_offset, i):
            counters[DROPPED_NULL_TIMESTAMP] += 1
            parts[i] = dropped
            continue
        if np.int64(timestamps[i]) > as_of_limit:
            counters[DROPPED_AFTER_AS_OF] += 1
            parts[i] = dropped
            continue
        k = index[i] if indexed else i
        h = hash_bytes(data, np.int64(offsets[k]), np.int64(offsets[k + 1]))
        hashes[i] = h
        p = partition_of(h, shift)
        parts[i] = p
        counts[p] += 1


@jit
def scatter_rows(
    start,
    stop,
    parts,
    hashes,
    keys,
    timestamps,
    amounts,
    amount_bitmap,
    amount_bit_offset,
    values,
    value_bitmap,
    value_bit_offset,
    positions,
    out_hashes,
    out_keys,
    out_ts,
    out_whole,
    out_fraction,
    out_values,
    out_flags,
    counters,
):
    """Copy used rows ``start..stop-1`` to their partition's next position (``positions[p]``,
    advanced in place). ``keys`` empty: the row number is copied instead (text keys);
    ``values`` empty: no distinct values."""
    dropped = positions.shape[0] - 1
    has_keys = keys.shape[0] > 0
    has_values = values.shape[0] > 0
    max_ts = counters[MAX_TIMESTAMP]
    used = 0
    for i in range(start, stop):
        p = parts[i]
        if p == dropped:
            continue
        used += 1
        at = positions[p]
        positions[p] = at + 1
        out_hashes[at] = hashes[i]
        out_keys[at] = np.int64(keys[i]) if has_keys else np.int64(i)
        ts = np.int64(timestamps[i])
        out_ts[at] = ts
        if ts > max_ts:
            max_ts = ts
        whole = np.int64(0)
        fraction = np.int64(0)
        if is_valid(amount_bitmap, amount_bit_offset, i):
            value = amounts[i]
            if np.float64(value) == np.float64(value):
                whole, fraction = amount_parts(value)
            else:
                counters[NULL_AMOUNT] += 1
        else:
            counters[NULL_AMOUNT] += 1
        out_whole[at] = whole
        out_fraction[at] = fraction
        if has_values:
            if is_valid(value_bitmap, value_bit_offset, i):
                out_values[at] = np.int64(values[i])
                out_flags[at] = 0
            else:
                out_values[at] = 0
                out_flags[at] = VALUE_IS_NULL
    counters[ROWS_USED] += used
    counters[MAX_TIMESTAMP] = max_ts


@jit_inline
def folded_first_last(rows, first, last, ts):
    """(first, last) after a purchase at ``ts`` (``rows`` purchases so far)."""
    if rows == 0:
        return ts, ts
    return min(first, ts), max(last, ts)


@jit
def fold_string_partition(
    rows,
    hashes,
    timestamps,
    whole,
    fraction,
    values,
    flags,
    offsets,
    data,
    index,
    slot_hashes,
    slot_groups,
    group_hashes,
    arena,
    arena_offsets,
    n_groups,
    totals,
    pair_groups,
    pair_values,
    n_pairs,
):
    """Fold one partition's scattered rows into its table and totals (and distinct pairs, when
    ``values`` is not empty). ``rows`` are the batch's row numbers, whose bytes are read from
    (offsets, data, index); new keys are appended to ``arena``."""
    mask = np.int64(slot_hashes.shape[0] - 1)
    has_values = values.shape[0] > 0
    pair_size = np.int64(pair_groups.shape[0])
    indexed = index.shape[0] > 0
    count = n_groups[0]
    pairs = n_pairs[0]
    n = rows.shape[0]
    for r in range(n):
        if r + PREFETCH_DISTANCE < n:
            ahead = np.int64(hashes[r + PREFETCH_DISTANCE]) & mask
            prefetch(slot_groups, ahead)
            prefetch(slot_hashes, ahead)
        i = rows[r]
        k = index[i] if indexed else i
        lo = np.int64(offsets[k])
        length = np.int64(offsets[k + 1]) - lo
        h = hashes[r]
        slot = np.int64(h) & mask
        while True:
            group = slot_groups[slot]
            if group == EMPTY:
                group = count
                count += 1
                used = arena_offsets[group]
                for b in range(length):
                    arena[used + b] = data[lo + b]
                arena_offsets[group + 1] = used + length
                slot_groups[slot] = group
                slot_hashes[slot] = h
                group_hashes[group] = h
                break
            if slot_hashes[slot] == h:
                g_lo = arena_offsets[group]
                if arena_offsets[group + 1] - g_lo == length:
                    same = True
                    for b in range(length):
                        if arena[g_lo + b] != data[lo + b]:
                            same = False
                            break
                    if same:
                        break
            slot = (slot + 1) & mask
        # The row's work is written out here: helpers that take these arrays and write to
        # them or return early keep Numba's reference counting in the loop (~30 ns a row).
        totals[group, FIRST], totals[group, LAST] = folded_first_last(
            totals[group, ROWS], totals[group, FIRST], totals[group, LAST], timestamps[r]
        )
        totals[group, ROWS] += 1
        if whole[r] != 0 or fraction[r] != 0:
            totals[group, SUM_WHOLE], totals[group, SUM_FRACTION] = exact_sum(
                totals[group, SUM_WHOLE], totals[group, SUM_FRACTION], whole[r], fraction[r]
            )
        if not has_values:
            continue
        if flags[r] & VALUE_IS_NULL:  # a null order is an order of its own
            totals[group, DISTINCT] += 1
            continue
        value = values[r]
        slot = pair_slot(group, value, pair_size)
        while True:
            occupant = pair_groups[slot]
            if occupant == EMPTY:
                pair_groups[slot] = group
                pair_values[slot] = value
                totals[group, DISTINCT] += 1
                pairs += 1
                break
            if occupant == group and pair_values[slot] == value:
                break
            slot += 1
            if slot == pair_size:
                slot = 0
    n_groups[0] = count
    n_pairs[0] = pairs


@jit
def string_bytes(rows, offsets, index):
    """Total bytes of the strings of ``rows`` (to size a partition's arena)."""
    total = np.int64(0)
    indexed = index.shape[0] > 0
    for r in range(rows.shape[0]):
        k = index[rows[r]] if indexed else rows[r]
        total += np.int64(offsets[k + 1]) - np.int64(offsets[k])
    return total


@jit
def rehash_string_partition(group_hashes, n_groups, slot_groups, slot_hashes):
    """Reinsert text groups ``0..n_groups-1`` into empty slot arrays of a new size."""
    mask = np.int64(slot_groups.shape[0] - 1)
    for group in range(n_groups):
        h = group_hashes[group]
        slot = np.int64(h) & mask
        while slot_groups[slot] != EMPTY:
            slot = (slot + 1) & mask
        slot_groups[slot] = group
        slot_hashes[slot] = h


@jit
def rehash_pairs(old_groups, old_values, new_groups, new_values):
    """Move every occupied pair slot of the old arrays into the (empty) new ones."""
    size = np.int64(new_groups.shape[0])
    for k in range(old_groups.shape[0]):
        group = old_groups[k]
        if group == EMPTY:
            continue
        value = old_values[k]
        slot = pair_slot(group, value, size)
        while new_groups[slot] != EMPTY:
            slot += 1
            if slot == size:
                slot = 0
        new_groups[slot] = group
        new_values[slot] = value
