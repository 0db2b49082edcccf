"""Merging sorted runs: the last step of a sort whose runs were sorted by several threads."""

from __future__ import annotations

from rfm_fast._kernels.config import jit


@jit
def merge_sorted_runs(keys, bounds, order):
    """``order``: the positions of ``keys`` in ascending order, where each run
    ``keys[bounds[k]:bounds[k + 1]]`` is sorted (the runs are one per thread, so a linear scan
    of the heads is enough). Equal keys of different runs come out in run order."""
    runs = bounds.shape[0] - 1
    heads = bounds[:-1].copy()
    for out in range(order.shape[0]):
        best = -1
        for k in range(runs):
            if heads[k] < bounds[k + 1] and (best < 0 or keys[heads[k]] < keys[heads[best]]):
                best = k
        order[out] = heads[best]
        heads[best] += 1
