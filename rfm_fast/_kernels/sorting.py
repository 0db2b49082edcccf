"""Sorting kernels: merging runs sorted by several threads, and the pieces of a text sort
(an integer sort of 8-byte prefixes, then ties sorted by the whole string)."""

from __future__ import annotations

import numpy as np

from rfm_fast._kernels.config import jit, jit_inline


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


@jit
def common_prefix_length(offsets, data):
    """Bytes that every string of (``offsets``, ``data``) starts with (0 for no strings)."""
    n = offsets.shape[0] - 1
    if n <= 0:
        return 0
    first = offsets[0]
    common = offsets[1] - first
    for i in range(1, n):
        lo = offsets[i]
        length = min(common, offsets[i + 1] - lo)
        k = 0
        while k < length and data[lo + k] == data[first + k]:
            k += 1
        common = k
        if common == 0:
            break
    return common


@jit
def text_prefixes(offsets, data, skip, out):
    """``out[i]``: bytes ``skip..skip + 7`` of string ``i`` as a big-endian uint64, zero-padded,
    so that integer order is byte order on those bytes (``skip`` bytes are common to all)."""
    for i in range(offsets.shape[0] - 1):
        lo = offsets[i] + skip
        hi = offsets[i + 1]
        word = np.uint64(0)
        for k in range(8):
            word <<= np.uint64(8)
            if lo + k < hi:
                word |= np.uint64(data[lo + k])
        out[i] = word


@jit_inline
def text_less(offsets, data, a, b):
    """Whether string ``a`` sorts before string ``b`` (bytes, then length)."""
    a_lo, b_lo = offsets[a], offsets[b]
    a_len, b_len = offsets[a + 1] - a_lo, offsets[b + 1] - b_lo
    for k in range(min(a_len, b_len)):
        x, y = data[a_lo + k], data[b_lo + k]
        if x != y:
            return x < y
    return a_len < b_len


@jit
def sort_prefix_ties(offsets, data, prefixes, order, max_run):
    """Sort, by the whole string, each run of ``order`` (sorted by ``prefixes``) whose strings
    share a prefix, by insertion; returns the start of the first run longer than ``max_run``
    (left for the caller), or -1."""
    n = order.shape[0]
    start = 0
    while start < n:
        end = start + 1
        while end < n and prefixes[order[end]] == prefixes[order[start]]:
            end += 1
        if end - start > max_run:
            return start
        for i in range(start + 1, end):
            item = order[i]
            j = i - 1
            while j >= start and text_less(offsets, data, item, order[j]):
                order[j + 1] = order[j]
                j -= 1
            order[j + 1] = item
        start = end
    return -1
