"""Sorting kernels: a radix sort of integer keys (buckets by the top bits, then each bucket
least significant digit first), and the pieces of a text sort (an integer sort of 8-byte
prefixes, then ties sorted by the whole string)."""

from __future__ import annotations

import numpy as np

from rfm_fast._kernels.config import jit, jit_inline
from rfm_fast._kernels.layout import RADIX_BITS


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


@jit
def radix_counts(keys, shift, start, stop, counts):
    """``counts[d]``: how many of ``keys[start:stop]`` (uint64) have digit ``d`` at ``shift``
    (``counts`` has ``2**RADIX_BITS`` entries; added to, not reset)."""
    mask = np.uint64((1 << RADIX_BITS) - 1)
    for i in range(start, stop):
        counts[(keys[i] >> np.uint64(shift)) & mask] += 1


@jit
def radix_scatter(keys, shift, start, stop, offsets, out_keys, out_order):
    """Stable scatter of ``keys[start:stop]`` by their digit at ``shift``: the key at ``i`` goes
    to ``offsets[digit]`` (then incremented) in ``out_keys``, and ``i`` to ``out_order``."""
    mask = np.uint64((1 << RADIX_BITS) - 1)
    for i in range(start, stop):
        digit = (keys[i] >> np.uint64(shift)) & mask
        at = offsets[digit]
        out_keys[at] = keys[i]
        out_order[at] = i
        offsets[digit] = at + 1


@jit
def radix_pass(keys, order, lo, n, shift, out_keys, out_order, out_lo, counts):
    """One stable pass: ``keys[lo:lo + n]`` (and ``order`` with them) moved to
    ``out_keys[out_lo:out_lo + n]`` by their digit at ``shift``. Returns False, moving
    nothing, when that digit is the same for all of them."""
    mask = np.uint64((1 << RADIX_BITS) - 1)
    counts[:] = 0
    for i in range(lo, lo + n):
        counts[(keys[i] >> np.uint64(shift)) & mask] += 1
    if counts[(keys[lo] >> np.uint64(shift)) & mask] == n:
        return False
    total = out_lo
    for d in range(1 << RADIX_BITS):
        c = counts[d]
        counts[d] = total
        total += c
    for i in range(lo, lo + n):
        key = keys[i]
        d = (key >> np.uint64(shift)) & mask
        at = counts[d]
        counts[d] = at + 1
        out_keys[at] = key
        out_order[at] = order[i]
    return True


@jit
def radix_sort_buckets(keys, order, bounds, first, last, bits, spare_keys, spare_order):
    """Sort each bucket ``keys[bounds[b]:bounds[b + 1]]`` for ``b`` in ``first..last - 1`` by
    its low ``bits`` bits (the higher bits are equal within a bucket), least significant
    digit first, stably; ``order`` moves with ``keys``. A pass whose digit is the same for the
    whole bucket is skipped. ``spare_keys``/``spare_order``: as long as the largest bucket."""
    counts = np.empty(1 << RADIX_BITS, dtype=np.int64)
    for b in range(first, last):
        lo = bounds[b]
        n = bounds[b + 1] - lo
        if n < 2:
            continue
        in_spare = False  # where the bucket's sorted-so-far copy is
        for shift in range(0, bits, RADIX_BITS):
            if in_spare:
                moved = radix_pass(spare_keys, spare_order, 0, n, shift, keys, order, lo, counts)
            else:
                moved = radix_pass(keys, order, lo, n, shift, spare_keys, spare_order, 0, counts)
            if moved:
                in_spare = not in_spare
        if in_spare:
            keys[lo : lo + n] = spare_keys[:n]
            order[lo : lo + n] = spare_order[:n]
