"""Aggregation of integer customer keys through buffered radix partitions.

:class:`BufferedIntPartitions` is the integer-key strategy of
:class:`rfm_fast.aggregation.CustomerAggregator`: each thread scatters its rows of a batch into
record buffers, one per partition, over as many batches as the buffers hold; a partition is
folded into its table (totals inline in 64-byte slots) once some thread's buffer for it is at
least half full, so that thousands of rows meet a table small enough for the CPU cache. See
:mod:`rfm_fast._kernels.buffered` for the kernels and the measurements behind the design.

Results do not depend on the number of threads, partitions, batch or buffer sizes: every total
is a minimum, a maximum, an exact integer sum or a set size, and the customers are sorted by key
at the end.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass

import numpy as np

from rfm_fast._kernels import buffered as kernels
from rfm_fast.arrow import Validity
from rfm_fast.parallel import Runner

BUFFER_ROWS = 1 << 24
"""Records buffered across all threads and partitions at most (16M: 384 MB for row counts,
640 MB with distinct values)."""
MIN_BUFFER_ROWS = 1 << 20
"""Records buffered at least when the input's row count is known (see :func:`buffer_rows`)."""
FIRST_BUFFER_ROWS = 1 << 10
"""Records per (thread, partition) buffer at first when the row count is not known; doubled
after each fold until the total reaches BUFFER_ROWS, so that small inputs allocate little."""
TABLE_LOAD = 0.7
"""Largest share of a partition table's slots in use (linear probing stays short)."""
FIRST_SLOTS = 64
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
    # ``populate``: MAP_POPULATE faults the pages in at once, in order; buffers that are
    # written at random cost about twice as much when faulted in as they are touched.
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
    if populate:
        flags |= getattr(mmap, "MAP_POPULATE", 0)
    memory = mmap.mmap(-1, max(words * 8, 1), flags=flags)
    return np.frombuffer(memory, dtype=np.int64, count=words).reshape(partitions, rows, width)


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
    and grow together: one large allocation per growth, which the kernel backs with huge pages.
    Many small tables growing one by one cost a page fault for every 4 kB touched (measured on
    the 100M-row file: half of the fold time). Each partition's distinct (dense id, value)
    pairs are two arrays of its own, appended to and deduplicated when full: rows, unlike
    customers, can crowd into one partition.
    """

    def __init__(self, partitions: int, distinct: bool) -> None:
        self.distinct = distinct
        self.slots = slot_array(partitions, FIRST_SLOTS, kernels.SLOT_WIDTH)
        self.slot_groups = np.zeros((partitions, FIRST_SLOTS if distinct else 0), dtype=np.int32)
        self.n_used = np.zeros((partitions, 1), dtype=np.int64)
        size = FIRST_PAIRS if distinct else 0
        self.pair_groups = [np.empty(size, dtype=np.int32) for _ in range(partitions)]
        self.pair_values = [np.empty(size, dtype=np.int64) for _ in range(partitions)]
        self.n_pairs = np.zeros((partitions, 1), dtype=np.int64)
        self.dedupe_pays = np.ones(partitions, dtype=bool)

    @property
    def max_used(self) -> int:
        return int(self.slots.shape[1] * TABLE_LOAD)

    def fold(self, p: int, records: np.ndarray, witness: np.ndarray, start: int, n: int) -> int:
        """Fold records ``start..n-1`` of one buffer into partition ``p``; returns ``n``, or
        where it stopped because the slots are full (see :meth:`grow_slots`). Full pair
        arrays are deduplicated, or grown, here: they are the partition's own."""
        records_float = records.view(np.float64)
        while start < n:
            start = kernels.fold_records(
                records,
                records_float,
                witness,
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
            if start < n:
                if int(self.n_used[p, 0]) >= self.max_used:
                    return start
                self._make_room_for_pairs(p)
        return n

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
        old_slots, old_groups = self.slots, self.slot_groups
        slots = slot_array(partitions, size, kernels.SLOT_WIDTH)
        groups = np.zeros((partitions, size if self.distinct else 0), dtype=np.int32)
        bounds = [partitions * t // threads for t in range(threads + 1)]
        step = max(1, (1 << 22) // max(old_slots[0].nbytes, 1))  # release about 4 MB at a time

        def rehash(t: int) -> None:
            released = bounds[t]
            for p in range(bounds[t], bounds[t + 1]):
                kernels.rehash_slots(old_slots[p], old_groups[p], slots[p], groups[p])
                if p + 1 - released >= step or p + 1 == bounds[t + 1]:
                    release_rows(old_slots, released, p + 1)
                    released = p + 1

        run(rehash, range(threads))
        self.slots, self.slot_groups = slots, groups

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
    DISTINCT), partition after partition; and the distinct pairs, by position in that order."""

    keys: np.ndarray
    totals: np.ndarray
    pair_positions: np.ndarray | None
    pair_values: np.ndarray | None


class BufferedIntPartitions:
    """Per-customer totals of integer keys, folded through buffered radix partitions.

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
    """

    def __init__(
        self,
        distinct: bool,
        threads: int,
        partition_bits: int,
        run: Runner,
        expected_rows: int | None = None,
    ) -> None:
        self.distinct = distinct
        self.threads = threads
        self.shift = 64 - partition_bits
        self.n_partitions = 1 << partition_bits
        self.width = kernels.RECORD_WIDTH_DISTINCT if distinct else kernels.RECORD_WIDTH
        buffers = threads * self.n_partitions
        self.max_capacity = max(FIRST_BUFFER_ROWS, buffer_rows(expected_rows) // buffers)
        self.first_capacity = self.max_capacity if expected_rows is not None else FIRST_BUFFER_ROWS
        self.capacity = 0
        self.records: list[np.ndarray] = []
        self.fill = np.zeros((threads, self.n_partitions), dtype=np.int64)
        self.tables = PartitionTables(self.n_partitions, distinct)
        self.folded = np.zeros((threads, self.n_partitions), dtype=np.int64)
        """Records of each buffer already folded (a fold stopped by full slots resumes there)."""
        self.witness: np.ndarray | None = None
        self._run = run

    def _allocate(self, capacity: int) -> None:
        shape = (self.n_partitions, capacity, self.width)
        self.records = [slot_array(*shape, populate=True) for _ in range(self.threads)]
        self.capacity = capacity

    def update(
        self,
        keys: np.ndarray,
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
        if not self.records:
            self._allocate(min(self.first_capacity, self.max_capacity))
        n = timestamps.shape[0]
        bounds = [n * t // chunks for t in range(chunks + 1)]
        starts, stops = bounds[:-1], bounds[1:]
        pending = list(range(chunks))
        stopped: list[int] = []

        def scatter(t: int) -> None:
            records = self.records[t]
            at = kernels.scatter_int_rows(
                starts[t],
                stops[t],
                self.shift,
                keys,
                key_valid.bitmap,
                key_valid.bit_offset,
                timestamps,
                timestamps_valid.bitmap,
                timestamps_valid.bit_offset,
                as_of_limit,
                amounts,
                amounts_valid.bitmap,
                amounts_valid.bit_offset,
                values,
                values_valid.bitmap,
                values_valid.bit_offset,
                self.fill[t],
                records,
                records.view(np.float64),
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

    def _fold_due(self) -> None:
        """Fold the partitions that some thread's buffer holds half full or more; when the
        buffers may still grow, fold them all and double them instead."""
        if self.capacity < self.max_capacity:
            self.fold_all()
            self._allocate(min(self.capacity * 2, self.max_capacity))
            return
        due = np.flatnonzero(self.fill.max(axis=0) >= self.capacity // 2)
        self._fold(due)

    def fold_all(self) -> None:
        self._fold(np.flatnonzero(self.fill.max(axis=0) > 0))

    def _fold(self, partitions: np.ndarray) -> None:
        """Fold the buffers of ``partitions`` (each thread every ``threads``-th of them),
        growing the slots between rounds until every buffer is folded."""
        while len(partitions):
            shares = [partitions[t :: self.threads] for t in range(self.threads)]
            stopped: list[int] = []
            self._run(
                lambda t, shares=shares, stopped=stopped: self._fold_share(shares[t], stopped),
                [t for t in range(self.threads) if len(shares[t])],
            )
            done = np.setdiff1d(partitions, stopped)
            self.fill[:, done] = 0
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
                at = self.tables.fold(p, self.records[thread][p], self.witness, start, n)
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
        tables, self.tables = self.tables, None
        sizes = tables.n_used[:, 0]
        bases = np.zeros(self.n_partitions + 1, dtype=np.int64)
        np.cumsum(sizes, out=bases[1:])
        total = int(bases[-1])
        keys = np.empty(total, dtype=np.int64)
        totals = np.empty((total, kernels.N_TOTALS), dtype=np.int64)
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
        distinct_column = kernels.DISTINCT - kernels.FIRST

        def compact(t: int) -> None:
            for p in range(t, self.n_partitions, self.threads):
                lo, hi = bases[p], bases[p + 1]
                kernels.compact_slots(
                    tables.slots[p], tables.slot_groups[p], keys[lo:hi], totals[lo:hi]
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
        return UnsortedTotals(keys, totals, positions if keep else None, values if keep else None)


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
