"""The row scatter's blocks (``scatter_int_rows``): records wait in a block of
``BLOCK_RECORDS`` per partition and are flushed whole; ``drain_blocks`` moves a partial block
behind the flushed records before a fold. Whatever the fill of the blocks and buffers when a
scatter stops, every row used ends up in exactly one record of its partition, once."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rfm_fast._kernels import buffered as kernels
from rfm_fast._kernels import layout
from rfm_fast._kernels.hashing import mix64
from rfm_fast.core.partitions import slot_array

BLOCK = layout.BLOCK_RECORDS
NO_BITMAP = np.empty(0, dtype=np.uint8)
NO_VALUES = np.empty(0, dtype=np.int64)
INT64_MAX = np.iinfo(np.int64).max


class Buffers:
    """One thread's record buffers and blocks, as ``BufferedPartitions`` allocates them."""

    def __init__(self, partitions: int, capacity: int, width: int) -> None:
        self.records = slot_array(partitions, capacity + BLOCK, width, populate=True)
        self.blocks = slot_array(partitions, BLOCK, width, populate=True)
        self.fill = np.zeros(partitions, dtype=np.int64)
        self.block_fill = np.zeros(partitions, dtype=np.int64)
        self.capacity = capacity

    def scatter(self, start, stop, shift, keys, ts, amounts, values, counters) -> int:
        return kernels.scatter_int_rows(
            start,
            stop,
            shift,
            keys,
            NO_BITMAP,
            0,
            ts,
            NO_BITMAP,
            0,
            INT64_MAX,
            amounts,
            NO_BITMAP,
            0,
            layout.RETURNS_PURCHASE,
            values,
            NO_BITMAP,
            0,
            self.fill,
            self.records,
            self.blocks,
            self.blocks.view(np.float64),
            self.block_fill,
            counters,
        )

    def drain(self, partitions: np.ndarray) -> list[list[tuple[int, ...]]]:
        """Drain the blocks of ``partitions`` and take their records out (as a fold does)."""
        kernels.drain_blocks(partitions, self.blocks, self.block_fill, self.records, self.fill)
        taken = []
        for p in partitions:
            n = int(self.fill[p])
            assert n <= self.records.shape[1]
            taken.append([tuple(int(w) for w in row) for row in self.records[p, :n]])
            self.fill[p] = 0
        return taken


def _scatter_all(keys, ts, amounts, values, bits: int, capacity: int):
    """Scatter every row, taking all records out whenever the scatter stops; returns the
    records taken per partition and the (partition, fill, block fill) at each stop."""
    partitions = 1 << bits
    width = layout.RECORD_WIDTH_DISTINCT if values.shape[0] else layout.RECORD_WIDTH
    buffers = Buffers(partitions, capacity, width)
    counters = np.zeros(layout.N_COUNTERS, dtype=np.int64)
    counters[layout.MAX_TIMESTAMP] = np.iinfo(np.int64).min
    taken: list[Counter] = [Counter() for _ in range(partitions)]
    stops = []
    start, n = 0, keys.shape[0]
    everything = np.arange(partitions, dtype=np.int64)
    while True:
        at = buffers.scatter(start, n, 64 - bits, keys, ts, amounts, values, counters)
        assert start <= at <= n
        assert np.all(buffers.fill % BLOCK == 0)
        assert np.all(buffers.fill <= capacity)
        assert np.all((buffers.block_fill >= 0) & (buffers.block_fill <= BLOCK))
        if at < n:
            p = int(np.uint64(mix64(keys[at])) >> np.uint64(64 - bits)) if bits else 0
            stops.append((p, int(buffers.fill[p]), int(buffers.block_fill[p])))
        for p, records in zip(everything, buffers.drain(everything), strict=True):
            taken[p].update(records)
        assert not buffers.block_fill.any()
        if at == n:
            break
        start = at
    assert counters[layout.ROWS_USED] == n
    return taken, stops


def _expected(keys, ts, amounts, values, bits: int) -> list[Counter]:
    partitions = 1 << bits
    expected: list[Counter] = [Counter() for _ in range(partitions)]
    for i in range(keys.shape[0]):
        h = int(np.int64(np.uint64(mix64(keys[i]))))
        p = (h & (2**64 - 1)) >> (64 - bits) if bits else 0
        record = (h, int(ts[i]), int(amounts[i : i + 1].view(np.int64)[0]))
        if values.shape[0]:
            record += (int(values[i]), 0)
        expected[p][record] += 1
    return expected


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    n=st.integers(0, 300),
    bits=st.integers(0, 3),
    blocks=st.integers(1, 4),
    distinct=st.booleans(),
    customers=st.integers(1, 40),
)
def test_every_row_is_scattered_once_whatever_the_blocks_hold(
    data, n, bits, blocks, distinct, customers
):
    keys = np.array(data.draw(st.lists(st.integers(0, customers), min_size=n, max_size=n)))
    keys = keys.astype(np.int64) * 7919 - 1000
    rng = np.random.default_rng(n)
    ts = rng.integers(0, 10**12, n)
    amounts = np.round(rng.normal(10, 30, n), 2)
    values = rng.integers(0, 5, n) if distinct else NO_VALUES
    taken, _ = _scatter_all(keys, ts, amounts, values, bits, BLOCK * blocks)
    assert taken == _expected(keys, ts, amounts, values, bits)


@pytest.mark.parametrize("left", range(1, BLOCK))
def test_a_partial_block_is_drained_with_the_flushed_records(left: int):
    """One partition, ``BLOCK * 3 + left`` rows: three blocks flushed, ``left`` rows left in
    the block at the end, drained behind them."""
    n = BLOCK * 3 + left
    keys = np.arange(n, dtype=np.int64)
    ts = np.arange(n, dtype=np.int64) * 10
    amounts = np.arange(n, dtype=np.float64) / 4
    taken, stops = _scatter_all(keys, ts, amounts, NO_VALUES, 0, BLOCK * 4)
    assert stops == []
    assert taken == _expected(keys, ts, amounts, NO_VALUES, 0)


def test_a_full_buffer_stops_the_scatter_while_other_blocks_are_partly_filled():
    """Partition 0 fills its buffer and its block while partition 1's block holds a few
    records: the scatter stops at partition 0's next row, and nothing is lost or repeated."""
    bits, capacity = 1, BLOCK * 2
    by_partition: dict[int, list[int]] = {0: [], 1: []}
    key = 0
    while min(len(by_partition[0]), len(by_partition[1])) < 4 * capacity:
        p = int(np.uint64(mix64(np.int64(key))) >> np.uint64(63))
        by_partition[p].append(key)
        key += 1
    # Three rows of partition 1, then partition 0 until it is full (buffer and block) and
    # one more row, then the rest interleaved.
    rows = by_partition[1][:3] + by_partition[0][: capacity + BLOCK + 1]
    rows += by_partition[1][3:20] + by_partition[0][capacity + BLOCK + 1 :][:20]
    keys = np.array(rows, dtype=np.int64)
    n = keys.shape[0]
    ts = np.arange(n, dtype=np.int64)
    amounts = np.full(n, 1.25)
    taken, stops = _scatter_all(keys, ts, amounts, NO_VALUES, bits, capacity)
    assert stops[0] == (0, capacity, BLOCK)
    assert taken == _expected(keys, ts, amounts, NO_VALUES, bits)
