"""Aggregation of customer keys through buffered radix partitions.

:class:`BufferedPartitions` is how :class:`rfm_fast.core.aggregator.CustomerAggregator` folds rows:
each thread scatters its rows of a batch into record buffers, one per partition, over as many
batches as the buffers hold; a partition is folded into its table (totals inline in 64-byte
slots) once some thread's buffer for it is at least half full, so that thousands of rows meet a
table small enough for the CPU cache. Text keys travel as their hash, with their bytes copied
beside the records; each partition keeps its customers' key bytes. See
:mod:`rfm_fast._kernels.buffered` for the kernels and the measurements behind the design.

Integer keys whose rows come in long runs (a customer-sorted file) are scattered as one run
record a run (chosen from the first batch: :data:`RUN_SHARE`).

Results do not depend on the number of threads, partitions, batch or buffer sizes: every total
is a minimum, a maximum, an exact integer sum or a set size, and the customers are sorted by key
at the end.
"""

from __future__ import annotations

import contextlib
import functools
import mmap
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from rfm_fast._kernels import layout
from rfm_fast._kernels.dispatch import buffered as kernels
from rfm_fast.core.arrow import Validity
from rfm_fast.core.parallel import Runner

BUFFER_ROWS = 1 << 24
"""Records buffered across all threads and partitions at most (16M: 384 MB for row counts,
640 MB with distinct values)."""
MIN_BUFFER_ROWS = 1 << 20
"""Records buffered at least when the input's row count is known (see :func:`buffer_rows`)."""
FIRST_BUFFER_ROWS = 1 << 10
"""Records per (thread, partition) buffer at first when the row count is not known; doubled
at a fold while the total is below :func:`buffer_rows` of the rows seen so far, so that an
input of unknown size buffers what one of known size would (small inputs allocate little)."""
TABLE_LOAD = 0.7
"""Largest share of a partition table's slots in use (linear probing stays short)."""
FIRST_SLOTS = 64
HUGE_PAGES = True
"""Whether buffers and tables ask for transparent huge pages (see :func:`_anonymous_map`)."""
RUN_SAMPLE_ROWS = 1 << 16
"""Rows of the first batch looked at to choose between row and run records."""
RUN_MIN_ROWS = 1 << 12
"""A first batch of fewer rows keeps row records (too few to judge, and to matter)."""
RUN_SHARE = 0.8
"""Run records (:func:`rfm_fast._kernels.buffered.scatter_int_runs`) are used for integer keys
when at least this share of the sampled rows continue a run (runs of 5 rows or more on
average: a customer-sorted input). Below it, the wider records cost more to write than the
fold saves: on invoice lines (3 a order, 10M rows) the run scatter took 32 ns a row against 18
for row records, most of it the random writes of 56-byte records (see docs/performance.md)."""
TEXT_WORDS_PER_RECORD = 4
"""64-bit words of text keys buffered per record at first (more when a batch has longer
keys): ids of up to 32 bytes fill the records before the text."""
FIRST_KEY_WORDS = 128
"""64-bit words of a partition's key store at first (text keys); doubled when full."""
FIRST_PAIRS = 256
"""Pairs a partition holds at first. When they are full, the repeats are removed
(:func:`rfm_fast._kernels.buffered.dedupe_pairs`) if the partition's previous removal freed at
least a quarter, and the arrays grow when less than half is free: distinct order ids are then
sorted once, at the end, and repeated ones (an order's lines far apart) do not pile up."""


def buffer_rows(expected_rows: int | None) -> int:
    """Records to buffer for an input of ``expected_rows`` rows (``None``: not known): an eighth
    of its rows (rounded up to a power of two), within MIN_BUFFER_ROWS..BUFFER_ROWS.

    Measured on 10M orders of 500K customers: aggregation took as long with 1M records as with
    16M (0.79 against 0.90 s), at 210 MB less peak memory; on 100M orders, 16M records fold
    each partition's table fewer times than 8M.
    """
    if expected_rows is None:
        return BUFFER_ROWS
    wanted = 1 << max(int(expected_rows) - 1, 1).bit_length()
    return min(BUFFER_ROWS, max(MIN_BUFFER_ROWS, wanted // 8))


def slot_array(partitions: int, rows: int, width: int, populate: bool = False) -> np.ndarray:
    """A zeroed ``(partitions, rows, width)`` int64 array in an anonymous memory map of its
    own: page-aligned (so every slot starts on a cache line), and releasable page by page with
    :func:`release_rows`. Tables are not populated: :func:`rehash_slots` touches each new
    partition in order just before it fills it, while the old partitions are released, so the
    old and the new table are never resident whole at once."""
    words = partitions * rows * width
    memory = _anonymous_map(words * 8, populate)
    return np.frombuffer(memory, dtype=np.int64, count=words).reshape(partitions, rows, width)


def text_array(partitions: int, words: int) -> np.ndarray:
    """A ``(partitions, words)`` uint64 array for scattered key bytes, pre-faulted like the
    record buffers (see :func:`slot_array`)."""
    memory = _anonymous_map(partitions * words * 8, populate=True)
    count = partitions * words
    return np.frombuffer(memory, dtype=np.uint64, count=count).reshape(partitions, words)


def _anonymous_map(size: int, populate: bool) -> mmap.mmap:
    """Zeroed anonymous memory, backed by transparent huge pages where the system allows.

    Record buffers are written through 1,024 streams or more per thread, and tables are read
    at random: with 4 kB pages, each stream and each probe needs its own TLB entry, and the
    TLB holds a few thousand. Huge pages (2 MB) cover them with a few hundred. ``populate``
    faults the pages in at once, in order: buffers written at random cost about twice as much
    when they are faulted in as they are written.
    """
    memory = mmap.mmap(-1, max(size, 1), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if HUGE_PAGES and hasattr(memory, "madvise") and hasattr(mmap, "MADV_HUGEPAGE"):
        with contextlib.suppress(OSError):  # a kernel without transparent huge pages
            memory.madvise(mmap.MADV_HUGEPAGE)
    if populate and size:
        np.frombuffer(memory, dtype=np.uint8)[:: mmap.PAGESIZE] = 0  # one write a page
    return memory


def release_rows(array: np.ndarray, start: int, stop: int) -> None:
    """Give the whole memory pages of ``array[start:stop]`` (an array of :func:`slot_array`)
    back to the system; those rows read as zeros afterwards. A no-op where ``madvise`` is not
    available."""
    memory = array.base
    while memory is not None and not isinstance(memory, mmap.mmap):
        memory = getattr(memory, "base", None) or getattr(memory, "obj", None)
    if memory is None or not hasattr(memory, "madvise"):
        return
    row_bytes = array.strides[0]
    first = -(-start * row_bytes // mmap.PAGESIZE) * mmap.PAGESIZE
    last = stop * row_bytes // mmap.PAGESIZE * mmap.PAGESIZE
    if last > first:
        memory.madvise(mmap.MADV_DONTNEED, first, last - first)


class PartitionTables:
    """Every partition's customers, in one ``(partitions, capacity, SLOT_WIDTH)`` array of
    slots (key and totals), and each partition's distinct pairs.

    Hashing spreads customers evenly over partitions, so their tables fill at the same rate
    and grow together: one large allocation per growth (in huge pages, see :func:`_anonymous_map`).
    Many small tables growing one by one cost a page fault for every 4 kB touched (measured on
    the 100M-row file: half of the fold time). Each partition's distinct (dense id, value)
    pairs are two arrays of its own, appended to and deduplicated when full: rows, unlike
    customers, can crowd into one partition.
    """

    def __init__(self, partitions: int, distinct: bool, text: bool = False) -> None:
        self.distinct = distinct
        self.text = text
        self.slots = slot_array(partitions, FIRST_SLOTS, layout.SLOT_WIDTH)
        self.slot_groups = np.zeros((partitions, FIRST_SLOTS if distinct else 0), dtype=np.int32)
        # Text keys: each slot's reference into its partition's key bytes.
        self.slot_text = np.zeros((partitions, FIRST_SLOTS if text else 0), dtype=np.int64)
        size = FIRST_KEY_WORDS if text else 0
        self.key_bytes = [np.empty(size, dtype=np.uint64) for _ in range(partitions)]
        self.key_bytes_used = np.zeros((partitions, 1), dtype=np.int64)
        self.n_used = np.zeros((partitions, 1), dtype=np.int64)
        size = FIRST_PAIRS if distinct else 0
        self.pair_groups = [np.empty(size, dtype=np.int32) for _ in range(partitions)]
        self.pair_values = [np.empty(size, dtype=np.int64) for _ in range(partitions)]
        self.n_pairs = np.zeros((partitions, 1), dtype=np.int64)
        self.dedupe_pays = np.ones(partitions, dtype=bool)

    @property
    def max_used(self) -> int:
        return int(self.slots.shape[1] * TABLE_LOAD)

    def fold(
        self,
        p: int,
        records: np.ndarray,
        texts: np.ndarray | None,
        witness: np.ndarray,
        start: int,
        n: int,
        net_returns: bool = False,
        runs: bool = False,
    ) -> int:
        """Fold records ``start..n-1`` of one buffer (and, for text keys, its bytes ``texts``)
        into partition ``p``; returns ``n``, or where it stopped because the slots are full
        (see :meth:`grow_slots`). Full pair arrays are deduplicated or grown here, and a full
        key store grows here: they are the partition's own. ``runs``: the records are run
        records."""
        records_float = records.view(np.float64)
        while start < n:
            if runs:
                start = kernels.fold_runs(
                    records,
                    start,
                    n,
                    self.slots[p],
                    self.slot_groups[p],
                    self.n_used[p],
                    self.max_used,
                    self.pair_groups[p],
                    self.pair_values[p],
                    self.n_pairs[p],
                )
            elif texts is None:
                start = kernels.fold_records(
                    records,
                    records_float,
                    witness,
                    net_returns,
                    start,
                    n,
                    self.slots[p],
                    self.slot_groups[p],
                    self.n_used[p],
                    self.max_used,
                    self.pair_groups[p],
                    self.pair_values[p],
                    self.n_pairs[p],
                )
            else:
                start = kernels.fold_text_records(
                    records,
                    records_float,
                    witness,
                    net_returns,
                    texts,
                    start,
                    n,
                    self.slots[p],
                    self.slot_groups[p],
                    self.slot_text[p],
                    self.key_bytes[p],
                    self.key_bytes_used[p],
                    self.n_used[p],
                    self.max_used,
                    self.pair_groups[p],
                    self.pair_values[p],
                    self.n_pairs[p],
                )
            if start < n:
                if int(self.n_used[p, 0]) >= self.max_used:
                    return start
                if self.distinct and int(self.n_pairs[p, 0]) >= self.pair_values[p].shape[0]:
                    self._make_room_for_pairs(p)
                else:  # the key store is full
                    self._grow_key_bytes(p)
        return n

    def _grow_key_bytes(self, p: int) -> None:
        """Double partition ``p``'s key store (a fold retries, doubling again, until the new
        key fits)."""
        used = int(self.key_bytes_used[p, 0])
        store = np.empty(2 * self.key_bytes[p].shape[0], dtype=np.uint64)
        store[:used] = self.key_bytes[p][:used]
        self.key_bytes[p] = store

    def dedupe_pairs(self, p: int) -> np.ndarray:
        """Keep each of partition ``p``'s pairs once; returns its distinct values per dense
        id (``n_used`` entries)."""
        n = int(self.n_pairs[p, 0])
        n_groups = int(self.n_used[p, 0])
        counts = np.empty(n_groups + 1, dtype=np.int64)
        scratch = np.empty(n, dtype=np.int64)
        kept = kernels.dedupe_pairs(
            self.pair_groups[p], self.pair_values[p], n, n_groups, scratch, counts
        )
        self.n_pairs[p, 0] = kept
        return counts[:n_groups]

    def grow_slots(self, run: Runner, threads: int) -> None:
        """Give every partition more slots (call while no fold runs).

        Each of ``threads`` threads rehashes a contiguous range of partitions and releases the
        old slots' memory as it goes, so that the old and the new table are never held whole
        at once (the peak memory of a run is at its last growth).
        """
        partitions, size, _ = self.slots.shape
        size = size * 4 if size < 1 << 12 else size * 2
        old_slots, old_groups, old_text = self.slots, self.slot_groups, self.slot_text
        slots = slot_array(partitions, size, layout.SLOT_WIDTH)
        groups = np.zeros((partitions, size if self.distinct else 0), dtype=np.int32)
        text = np.zeros((partitions, size if self.text else 0), dtype=np.int64)
        bounds = [partitions * t // threads for t in range(threads + 1)]
        step = max(1, (1 << 22) // max(old_slots[0].nbytes, 1))  # release about 4 MB at a time

        def rehash(t: int) -> None:
            released = bounds[t]
            for p in range(bounds[t], bounds[t + 1]):
                kernels.rehash_slots(
                    old_slots[p], old_groups[p], old_text[p], slots[p], groups[p], text[p]
                )
                if p + 1 - released >= step or p + 1 == bounds[t + 1]:
                    release_rows(old_slots, released, p + 1)
                    released = p + 1

        run(rehash, range(threads))
        self.slots, self.slot_groups, self.slot_text = slots, groups, text

    def _make_room_for_pairs(self, p: int) -> None:
        """Remove the repeats of partition ``p``'s full pair arrays where that has paid off
        before; grow the arrays when less than half of them is free (see FIRST_PAIRS)."""
        size = self.pair_values[p].shape[0]
        if self.dedupe_pays[p]:
            self.dedupe_pairs(p)
            self.dedupe_pays[p] = int(self.n_pairs[p, 0]) * 4 <= size * 3
        if int(self.n_pairs[p, 0]) * 2 <= size:
            return
        size = size * 4 if size < 1 << 12 else size * 3 // 2
        n = int(self.n_pairs[p, 0])
        groups = np.empty(size, dtype=np.int32)
        values = np.empty(size, dtype=np.int64)
        groups[:n] = self.pair_groups[p][:n]
        values[:n] = self.pair_values[p][:n]
        self.pair_groups[p], self.pair_values[p] = groups, values


@dataclass
class UnsortedTotals:
    """Every customer's key and totals (columns FIRST, LAST, ROWS, SUM_WHOLE, SUM_FRACTION,
    DISTINCT), partition after partition; and the distinct pairs, by position in that order.
    Keys are int64 values, or a ``large_string`` array for text keys."""

    keys: np.ndarray | pa.Array
    totals: np.ndarray
    pair_positions: np.ndarray | None
    pair_values: np.ndarray | None


@dataclass(frozen=True)
class TextKeys:
    """One batch's text keys: row ``i`` is string ``index[i]`` of (``offsets``, ``data``), or
    string ``i`` when ``index`` is empty (dictionaries pass their indices)."""

    offsets: np.ndarray
    data: np.ndarray
    index: np.ndarray

    @functools.cached_property
    def longest(self) -> int:
        """Bytes of the longest string (of all the strings the offsets delimit)."""
        return int(np.diff(self.offsets).max()) if self.offsets.shape[0] > 1 else 0

    @property
    def longest_words(self) -> int:
        """64-bit words that hold the longest string."""
        return -(-self.longest // 8)


class BufferedPartitions:
    """Per-customer totals, folded through buffered radix partitions.

    Parameters
    ----------
    distinct : bool
        Whether rows carry a distinct value (order id, dense text order id or day).
    threads : int
        Threads that scatter and fold; each scatters its share of a batch's rows into buffers
        of its own, and folds every ``threads``-th partition due.
    partition_bits : int
        ``2**partition_bits`` partitions (0: one table, for small inputs).
    run : callable
        ``run(task, items)`` calls ``task(item)`` for every item, on a thread pool or not.
    expected_rows : int, optional
        The input's row count, where it is known: the buffers are sized for it at once
        (:func:`buffer_rows`); otherwise they start small and double.
    text : bool, default False
        Whether the keys are text (:class:`TextKeys`) rather than integers.
    returns : int, default ``RETURNS_PURCHASE``
        How rows with a negative amount are taken (the ``RETURNS_*`` of
        :mod:`rfm_fast._kernels.totals`).
    """

    def __init__(
        self,
        distinct: bool,
        threads: int,
        partition_bits: int,
        run: Runner,
        expected_rows: int | None = None,
        text: bool = False,
        returns: int = layout.RETURNS_PURCHASE,
    ) -> None:
        self.distinct = distinct
        self.text = text
        self.returns = returns
        self.net_returns = returns == layout.RETURNS_NET
        self.threads = threads
        self.shift = 64 - partition_bits
        self.n_partitions = 1 << partition_bits
        self.width = layout.RECORD_WIDTH_DISTINCT if distinct else layout.RECORD_WIDTH
        if text:
            self.width += 1  # the reference to the key's bytes
        buffers = threads * self.n_partitions
        self.max_capacity = max(FIRST_BUFFER_ROWS, buffer_rows(expected_rows) // buffers)
        self.first_capacity = self.max_capacity if expected_rows is not None else FIRST_BUFFER_ROWS
        self.runs: bool | None = False if text else None  # chosen at the first batch
        self.capacity = 0
        self.text_capacity = 0
        self.rows_seen = 0
        self.records: list[np.ndarray] = []
        self.texts: list[np.ndarray] = []
        self.fill = np.zeros((threads, self.n_partitions), dtype=np.int64)
        # Row records of integer keys go through a block per partition (scatter_int_rows).
        self.blocks: list[np.ndarray] = []
        self.block_fill = np.zeros((threads, self.n_partitions), dtype=np.int64)
        self.text_fill = np.zeros((threads, self.n_partitions), dtype=np.int64)
        self.tables = PartitionTables(self.n_partitions, distinct, text)
        self.folded = np.zeros((threads, self.n_partitions), dtype=np.int64)
        """Records of each buffer already folded (a fold stopped by full slots resumes there)."""
        self.witness: np.ndarray | None = None
        self._run = run

    @property
    def blocked(self) -> bool:
        """Whether the records are scattered through blocks (row records of integer keys)."""
        return not self.text and self.runs is False

    def _allocate(self, capacity: int, text_capacity: int = 0) -> None:
        rows = capacity
        if self.blocked:  # whole blocks, and room for one more (see kernels.drain_blocks)
            block = layout.BLOCK_RECORDS
            capacity = -(-capacity // block) * block
            rows = capacity + block
        shape = (self.n_partitions, rows, self.width)
        self.records = [slot_array(*shape, populate=True) for _ in range(self.threads)]
        if self.blocked and not self.blocks:
            shape = (self.n_partitions, layout.BLOCK_RECORDS, self.width)
            self.blocks = [slot_array(*shape, populate=True) for _ in range(self.threads)]
        self.capacity = capacity
        if self.text:
            self.text_capacity = max(text_capacity, capacity * TEXT_WORDS_PER_RECORD)
            self.texts = [
                text_array(self.n_partitions, self.text_capacity) for _ in range(self.threads)
            ]

    def update(
        self,
        keys: np.ndarray | TextKeys,
        key_valid: Validity,
        timestamps: np.ndarray,
        timestamps_valid: Validity,
        as_of_limit: int,
        amounts: np.ndarray,
        amounts_valid: Validity,
        values: np.ndarray,
        values_valid: Validity,
        counters: np.ndarray,
        chunks: int,
    ) -> None:
        """Scatter one batch (in ``chunks`` slices, one per thread), folding whenever a
        buffer fills."""
        is_float = amounts.dtype.kind == "f"
        if self.witness is None or (self.witness.dtype.kind == "f") != is_float:
            if self.witness is not None:  # the buffered amounts are of the other kind
                self.fold_all()
            self.witness = np.empty(0, dtype=np.float64 if is_float else np.int64)
        if self.runs is None:
            self._choose_records(keys, values)
        if not self.records:
            self._allocate(min(self.first_capacity, self.max_capacity))
        scratch = [np.empty(0, dtype=np.uint64)] * self.threads
        if isinstance(keys, TextKeys):
            longest = keys.longest_words
            if 2 * longest > self.text_capacity:
                self.fold_all()  # room for two of the longest keys in every buffer
                self._allocate(self.capacity, 2 * longest)
            scratch = [np.empty(max(longest, 1), dtype=np.uint64) for _ in range(self.threads)]
        n = timestamps.shape[0]
        self.rows_seen += n
        bounds = [n * t // chunks for t in range(chunks + 1)]
        starts, stops = bounds[:-1], bounds[1:]
        pending = list(range(chunks))
        stopped: list[int] = []
        common = (
            timestamps,
            timestamps_valid.bitmap,
            timestamps_valid.bit_offset,
            as_of_limit,
            amounts,
            amounts_valid.bitmap,
            amounts_valid.bit_offset,
            self.returns,
            values,
            values_valid.bitmap,
            values_valid.bit_offset,
        )

        # No nulls, no distinct values, returns kept: the run scatter's tight loops apply.
        plain = (
            key_valid.bitmap.shape[0] == 0
            and timestamps_valid.bitmap.shape[0] == 0
            and amounts_valid.bitmap.shape[0] == 0
            and values.shape[0] == 0
            and self.returns != layout.RETURNS_DROP
        )

        def scatter(t: int) -> None:
            records = self.records[t]
            if isinstance(keys, TextKeys):
                at = kernels.scatter_text_rows(
                    starts[t],
                    stops[t],
                    self.shift,
                    keys.offsets,
                    keys.data,
                    keys.index,
                    key_valid.bitmap,
                    key_valid.bit_offset,
                    *common,
                    self.fill[t],
                    records,
                    records.view(np.float64),
                    self.text_fill[t],
                    self.texts[t],
                    scratch[t],
                    counters[t],
                )
            elif self.runs and plain:
                at = kernels.scatter_int_runs_plain(
                    starts[t],
                    stops[t],
                    self.shift,
                    keys,
                    timestamps,
                    as_of_limit,
                    amounts,
                    self.returns,
                    self.fill[t],
                    records,
                    counters[t],
                )
            elif self.runs:
                at = kernels.scatter_int_runs(
                    starts[t],
                    stops[t],
                    self.shift,
                    keys,
                    key_valid.bitmap,
                    key_valid.bit_offset,
                    *common,
                    self.fill[t],
                    records,
                    counters[t],
                )
            else:
                at = kernels.scatter_int_rows(
                    starts[t],
                    stops[t],
                    self.shift,
                    keys,
                    key_valid.bitmap,
                    key_valid.bit_offset,
                    *common,
                    self.fill[t],
                    records,
                    self.blocks[t],
                    self.blocks[t].view(np.float64),
                    self.block_fill[t],
                    counters[t],
                )
            if at < stops[t]:
                starts[t] = at
                stopped.append(t)

        while pending:
            stopped.clear()
            self._run(scatter, pending)
            if stopped:
                self._fold_due()
            pending = sorted(stopped)

    def _choose_records(self, keys: np.ndarray, values: np.ndarray) -> None:
        """Choose row or run records for integer keys from the first batch (of at least a few
        thousand rows; smaller inputs keep row records): results are the same either way.
        Run records are wider, so their buffers hold fewer records in the same memory."""
        n = min(keys.shape[0], RUN_SAMPLE_ROWS)
        if n < RUN_MIN_ROWS:
            self.runs = False
            return
        same = kernels.run_rows(keys, values, 0, n)
        self.runs = same >= RUN_SHARE * n
        if self.runs:
            width = layout.RUN_WIDTH_DISTINCT if self.distinct else layout.RUN_WIDTH
            scale = self.width / width
            self.max_capacity = max(FIRST_BUFFER_ROWS, int(self.max_capacity * scale))
            self.first_capacity = min(self.first_capacity, self.max_capacity)
            self.width = width

    def _fold_due(self) -> None:
        """Fold the partitions that some thread's buffer holds half full or more; when the
        buffers may still grow, fold them all and double them instead."""
        buffers = self.threads * self.n_partitions
        wanted = min(self.max_capacity, buffer_rows(self.rows_seen) // buffers)
        if self.capacity < wanted:
            self.fold_all()
            self._allocate(min(self.capacity * 2, self.max_capacity), self.text_capacity)
            return
        due = self.fill.max(axis=0) >= self.capacity // 2
        if self.text:
            due |= self.text_fill.max(axis=0) >= self.text_capacity // 2
        self._fold(np.flatnonzero(due))

    def fold_all(self) -> None:
        self._fold(np.flatnonzero((self.fill.max(axis=0) > 0) | (self.block_fill.max(axis=0) > 0)))

    def _fold(self, partitions: np.ndarray) -> None:
        """Fold the buffers of ``partitions`` (each thread every ``threads``-th of them),
        growing the slots between rounds until every buffer is folded."""
        if self.blocked and len(partitions):
            for t in range(self.threads):  # the blocks' records are folded with the rest
                kernels.drain_blocks(
                    partitions, self.blocks[t], self.block_fill[t], self.records[t], self.fill[t]
                )
        while len(partitions):
            shares = [partitions[t :: self.threads] for t in range(self.threads)]
            stopped: list[int] = []
            self._run(
                lambda t, shares=shares, stopped=stopped: self._fold_share(shares[t], stopped),
                [t for t in range(self.threads) if len(shares[t])],
            )
            done = np.setdiff1d(partitions, stopped)
            self.fill[:, done] = 0
            self.text_fill[:, done] = 0
            self.folded[:, done] = 0
            if stopped:
                self.tables.grow_slots(self._run, self.threads)
            partitions = np.array(sorted(stopped), dtype=np.int64)

    def _fold_share(self, partitions: np.ndarray, stopped: list[int]) -> None:
        """Fold every thread's buffer of each of ``partitions``; those whose slots filled up
        are added to ``stopped``."""
        for p in partitions:
            for thread in range(self.threads):
                n = int(self.fill[thread, p])
                start = int(self.folded[thread, p])
                if start >= n:
                    continue
                texts = self.texts[thread][p] if self.text else None
                at = self.tables.fold(
                    p,
                    self.records[thread][p],
                    texts,
                    self.witness,
                    start,
                    n,
                    self.net_returns,
                    bool(self.runs),
                )
                self.folded[thread, p] = at
                if at < n:
                    stopped.append(p)
                    break

    def finish(self, keep_pairs: bool) -> UnsortedTotals:
        """Fold what is left and return every customer's totals, partition after partition
        (the buffers and tables are released)."""
        if self.records:
            self.fold_all()
        self.records = []
        self.blocks = []
        self.texts = []
        tables, self.tables = self.tables, None
        sizes = tables.n_used[:, 0]
        bases = np.zeros(self.n_partitions + 1, dtype=np.int64)
        np.cumsum(sizes, out=bases[1:])
        total = int(bases[-1])
        keys = np.empty(total, dtype=np.int64)
        totals = np.empty((total, layout.N_TOTALS), dtype=np.int64)
        text_refs = np.empty(total if self.text else 0, dtype=np.int64)
        distinct_counts: list[np.ndarray | None] = [None] * self.n_partitions
        if self.distinct:  # pairs kept once each, hence each customer's distinct values

            def dedupe(t: int) -> None:
                for p in range(t, self.n_partitions, self.threads):
                    distinct_counts[p] = tables.dedupe_pairs(p)

            self._run(dedupe, range(self.threads))
        pair_bases = np.zeros(self.n_partitions + 1, dtype=np.int64)
        np.cumsum(tables.n_pairs[:, 0], out=pair_bases[1:])
        keep = keep_pairs and self.distinct
        positions = np.empty(int(pair_bases[-1]) if keep else 0, dtype=np.int64)
        values = np.empty_like(positions)
        distinct_column = layout.TOTAL_DISTINCT

        def compact(t: int) -> None:
            for p in range(t, self.n_partitions, self.threads):
                lo, hi = bases[p], bases[p + 1]
                kernels.compact_slots(
                    tables.slots[p],
                    tables.slot_groups[p],
                    tables.slot_text[p],
                    keys[lo:hi],
                    text_refs[lo:hi] if self.text else text_refs,
                    totals[lo:hi],
                )
                release_rows(tables.slots, p, p + 1)  # copied: give its memory back
                if self.distinct:  # the slots counted null values; add the distinct ones
                    totals[lo:hi, distinct_column] += distinct_counts[p]
                if keep:
                    plo, phi = pair_bases[p], pair_bases[p + 1]
                    kernels.pair_rows(
                        tables.pair_groups[p],
                        tables.pair_values[p],
                        phi - plo,
                        lo,
                        positions[plo:phi],
                        values[plo:phi],
                    )
                # Release each partition's pairs as soon as they are copied.
                tables.pair_groups[p] = tables.pair_values[p] = None

        self._run(compact, range(self.threads))
        customer_keys: np.ndarray | pa.Array = keys
        if self.text:
            customer_keys = self._text_keys(tables, text_refs, bases)
        return UnsortedTotals(
            customer_keys, totals, positions if keep else None, values if keep else None
        )

    def _text_keys(self, tables: PartitionTables, refs: np.ndarray, bases: np.ndarray) -> pa.Array:
        """The customers' text keys, partition after partition, as one ``large_string``
        array (each partition's key store is released once copied)."""
        offsets = np.zeros(refs.shape[0] + 1, dtype=np.int64)
        np.cumsum(refs & layout.TEXT_LENGTH_MASK, out=offsets[1:])
        data = np.empty(int(offsets[-1]), dtype=np.uint8)

        def copy(t: int) -> None:
            for p in range(t, self.n_partitions, self.threads):
                lo, hi = bases[p], bases[p + 1]
                store = tables.key_bytes[p].view(np.uint8)
                kernels.copy_key_bytes(store, refs[lo:hi], offsets[lo:hi], data)
                tables.key_bytes[p] = None

        self._run(copy, range(self.threads))
        return pa.LargeStringArray.from_buffers(
            refs.shape[0], pa.py_buffer(offsets), pa.py_buffer(data)
        )


def gathered_columns(
    totals: np.ndarray, order: np.ndarray, threads: int, run: Runner
) -> np.ndarray:
    """``totals[order]`` as one contiguous row per total (``(N_TOTALS, n)``), gathered by
    ``threads`` threads."""
    n = order.shape[0]
    columns = np.empty((totals.shape[1], n), dtype=np.int64)
    bounds = [n * t // threads for t in range(threads + 1)]
    run(
        lambda t: kernels.gather_totals(totals, order, bounds[t], bounds[t + 1], columns),
        range(threads),
    )
    return columns
