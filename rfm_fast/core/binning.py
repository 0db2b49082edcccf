"""Scores 1..bins from metric values: exact (tie-aware), split (NTILE) and user thresholds.

See docs/semantics.md, "Scores". The functions here take one metric's values, in customer-key
order, and return the scores (``int8``), the edges that reproduce them, and the scores left empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rfm_fast._kernels.dispatch import binning as kernels
from rfm_fast.core.sketch import LogHistogram
from rfm_fast.errors import RFMError

METHODS = ("exact", "split", "approx")
METRICS = ("recency", "frequency", "monetary")
MIN_BINS, MAX_BINS = 2, 9


@dataclass(frozen=True)
class MetricScores:
    """The scores of one metric, the edges that reproduce them, and the empty scores."""

    scores: np.ndarray
    edges: list[float]
    empty: list[int]


def check_bins(bins: int) -> int:
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer):
        raise RFMError(f"bins must be an integer from {MIN_BINS} to {MAX_BINS}; got {bins!r}")
    if not MIN_BINS <= bins <= MAX_BINS:
        raise RFMError(
            f"bins must be from {MIN_BINS} to {MAX_BINS} (scores are single digits); got {bins}"
        )
    return int(bins)


def check_method(method: str) -> str:
    if method not in METHODS:
        raise RFMError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    return method


def check_thresholds(
    thresholds: dict[str, Sequence[float]] | None, bins: int
) -> dict[str, np.ndarray]:
    """Validate user edges: known metrics, increasing finite numbers, ``bins - 1`` of each."""
    if not thresholds:
        return {}
    checked = {}
    for metric, edges in thresholds.items():
        if metric not in METRICS:
            raise RFMError(
                f"thresholds: unknown metric {metric!r}; expected one of {', '.join(METRICS)}"
            )
        try:
            values = np.asarray(list(edges), dtype=np.float64)
        except (TypeError, ValueError):
            raise RFMError(
                f"thresholds for {metric} must be a list of numbers; got {edges!r}"
            ) from None
        if values.ndim != 1 or np.isnan(values).any():
            raise RFMError(f"thresholds for {metric} must be numbers (not NaN); got {edges!r}")
        # Not np.diff: inf - inf is NaN (with a RuntimeWarning), and equal infinite neighbours
        # are allowed.
        if (values[1:] < values[:-1]).any():
            raise RFMError(f"thresholds for {metric} must be in increasing order; got {edges!r}")
        if values.shape[0] + 1 != bins:
            raise RFMError(
                f"thresholds for {metric}: {values.shape[0]} edges make {values.shape[0] + 1} "
                f"scores, but bins is {bins}; give {bins - 1} edges or set bins to "
                f"{values.shape[0] + 1}"
            )
        checked[metric] = values
    return checked


def score_metric(
    values: np.ndarray,
    *,
    bins: int,
    method: str,
    higher_is_better: bool,
    thresholds: np.ndarray | None = None,
) -> MetricScores:
    """Score one metric. ``values`` must be in customer-key order (ties for ``split``)."""
    n = values.shape[0]
    scores = np.empty(n, dtype=np.int8)
    if thresholds is not None:
        below = np.searchsorted(thresholds, values, side="left")
        scores[:] = 1 + below if higher_is_better else bins - below
    elif method == "approx" and values.dtype.kind == "f":
        # Floats (monetary) through the mergeable sketch; integer metrics (recency in days,
        # frequency) have exact histograms, which merge exactly too: the exact rule below.
        sketch = LogHistogram.of(values)
        less = sketch.below(values) if higher_is_better else sketch.above(values)
        n = values.shape[0]
        scores[:] = 1 + (bins * less) // max(n, 1)
    elif method in ("exact", "approx") and _small_integer_range(values):
        _exact_scores_by_counting(values, bins, higher_is_better, scores)
    elif method in ("exact", "approx"):
        _exact_scores_by_selection(values, bins, higher_is_better, scores)
    else:
        ranked = values if higher_is_better else -values
        kernels.ntile_scores(np.argsort(ranked, kind="stable"), bins, scores)
    edges, empty = edges_of(values, scores, bins, higher_is_better)
    if thresholds is not None:
        edges = [float(e) for e in thresholds]
    return MetricScores(scores, edges, empty)


def _small_integer_range(values: np.ndarray) -> bool:
    """Integers (recency in days, frequency) whose range is small enough to count, not sort."""
    if values.dtype.kind not in "iu" or values.shape[0] == 0:
        return False
    return int(values.max()) - int(values.min()) <= 4 * values.shape[0] + 1024


def _exact_scores_by_counting(
    values: np.ndarray, bins: int, higher_is_better: bool, out: np.ndarray
) -> None:
    """The exact rule through a histogram of the values: O(N + range) instead of a sort."""
    n = values.shape[0]
    low = int(values.min())
    offsets = values - low
    counts = np.bincount(offsets)
    at_most = np.cumsum(counts)
    # less(v): customers strictly worse: smaller values (F, M), or larger values (recency).
    less = at_most - counts if higher_is_better else n - at_most
    out[:] = (1 + (bins * less) // n)[offsets]


def _exact_scores_by_selection(
    values: np.ndarray, bins: int, higher_is_better: bool, out: np.ndarray
) -> None:
    """The exact rule through the ``bins - 1`` order statistics it turns on: O(N), no sort.

    ``floor(bins * less(v) / N) >= j`` exactly when ``less(v) >= k_j = ceil(j * N / bins)``;
    and ``less(v) >= k`` exactly when the k-th smallest value is below ``v`` (F, M), or the
    k-th largest above it (recency). So the score of ``v`` is one plus the number of those
    order statistics it passes. For the monetary values of 4.9M customers this replaced a
    parallel argsort.
    """
    n = values.shape[0]
    out[:] = 1
    if n == 0:
        return
    ranks = -((-np.arange(1, bins, dtype=np.int64) * n) // bins)  # k_j, in 1..n
    positions = ranks - 1 if higher_is_better else n - ranks
    statistics = np.partition(values, np.unique(positions))[positions]
    for statistic in statistics:
        # (a bool array added to int8 scores: no temporary of 8 bytes a customer)
        out += (values > statistic) if higher_is_better else (values < statistic)


def edges_of(
    values: np.ndarray, scores: np.ndarray, bins: int, higher_is_better: bool
) -> tuple[list[float], list[int]]:
    """The ``bins - 1`` edges that reproduce ``scores`` of ``values`` (docs/semantics.md,
    "Edges returned"), and the scores no value has."""
    low = np.zeros(bins, dtype=values.dtype)
    high = np.zeros(bins, dtype=values.dtype)
    counts = np.zeros(bins, dtype=np.int64)
    kernels.score_ranges(values, scores, bins, low, high, counts)
    empty = [s + 1 for s in range(bins) if counts[s] == 0]
    edges = []
    n = values.shape[0]
    for j in range(1, bins):
        # Scores counted as "at most j steps up from the worst" for F/M, "at least bins+1-j"
        # for recency, where a higher value is worse.
        members = range(j) if higher_is_better else range(bins - j, bins)
        tops = [high[s] for s in members if counts[s]]
        # No customer reaches these scores (only the best recency scores can stay empty so):
        # any edge below every value reproduces the scores.
        edges.append(float(max(tops)) if tops else (float("-inf") if n else float("nan")))
    return edges, empty
