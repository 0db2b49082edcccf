"""Work split over threads: the runner type the aggregation passes around, and a sort whose
runs are sorted by several threads at once (NumPy's sort releases the GIL)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from rfm_fast._kernels.sorting import merge_sorted_runs

Runner = Callable[[Callable[[int], object], Iterable[int]], None]
"""``run(task, items)`` calls ``task(item)`` for every item, on a thread pool or not."""

PARALLEL_SORT_MIN = 1 << 16
"""Fewer values are sorted by one thread."""


def parallel_argsort(values: np.ndarray, threads: int, run: Runner | None = None) -> np.ndarray:
    """The positions of ``values`` in ascending order (1-D, no NaN).

    Each of ``threads`` threads sorts a slice, then one pass merges the sorted slices. Among
    equal values the order is that of some sort, not necessarily a stable one. ``run`` runs the
    slices (default: a pool of ``threads`` threads made for the call).
    """
    n = values.shape[0]
    if threads <= 1 or n < PARALLEL_SORT_MIN:
        return np.argsort(values)
    bounds = np.array([n * t // threads for t in range(threads + 1)], dtype=np.int64)
    runs = np.empty(n, dtype=np.int64)

    def sort(t: int) -> None:
        lo, hi = bounds[t], bounds[t + 1]
        runs[lo:hi] = np.argsort(values[lo:hi]) + lo

    if run is None:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(sort, range(threads)))
    else:
        run(sort, range(threads))
    order = np.empty(n, dtype=np.int64)
    merge_sorted_runs(values[runs], bounds, order)
    return runs[order]
