"""Scores from sorted metric values: the exact tie-aware rule, NTILE splits, and edge extraction."""

from __future__ import annotations

import numpy as np

from rfm_fast._kernels.config import jit


@jit
def exact_scores(sorted_values, order, bins, higher_is_better, out):
    """``out[order[k]] = 1 + floor(bins * less / N)`` for the value at sorted position ``k``.

    ``sorted_values`` is ascending and ``order`` the permutation that sorts the values. ``less``
    is the number of values strictly worse: strictly smaller when ``higher_is_better``, else
    strictly larger. Equal values always get equal scores.
    """
    n = sorted_values.shape[0]
    i = 0
    while i < n:
        j = i + 1
        while j < n and sorted_values[j] == sorted_values[i]:
            j += 1
        less = i if higher_is_better else n - j
        score = 1 + (np.int64(bins) * less) // n
        for k in range(i, j):
            out[order[k]] = score
        i = j


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
