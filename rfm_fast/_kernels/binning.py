"""Scores from ranked metric values: NTILE splits, and edge extraction."""

from __future__ import annotations

from rfm_fast._kernels.config import jit


@jit
def ntile_scores(order, bins, out):
    """SQL ``NTILE(bins)`` over customers ranked worst to best by ``order``.

    The first ``n % bins`` groups (the worst scores) get one customer more than the others.
    """
    n = order.shape[0]
    size = n // bins
    extra = n % bins
    big = extra * (size + 1)
    for k in range(n):
        group = k // (size + 1) if k < big else extra + (k - big) // size
        out[order[k]] = 1 + group


@jit
def score_ranges(values, scores, bins, low, high, counts):
    """Per score ``s`` (1..bins): the smallest and largest value, and how many customers."""
    for k in range(values.shape[0]):
        s = scores[k] - 1
        v = values[k]
        if counts[s] == 0:
            low[s] = v
            high[s] = v
        else:
            if v < low[s]:
                low[s] = v
            if v > high[s]:
                high[s] = v
        counts[s] += 1
