"""method="approx": a mergeable sketch whose real error is measured against exact scoring."""

from __future__ import annotations

import numpy as np
import pytest

import rfm_fast
from rfm_fast.core import arrays
from rfm_fast.core.sketch import DEFAULT_RELATIVE_ERROR, LogHistogram, bucket_keys


@pytest.fixture(scope="module")
def monetary() -> np.ndarray:
    """1M customers' monetary values: lognormal spend, some returns (negative), some zeros."""
    rng = np.random.default_rng(11)
    values = np.round(rng.lognormal(4.0, 1.3, 1_000_000), 2)
    values[rng.random(values.shape[0]) < 0.02] *= -1
    values[rng.random(values.shape[0]) < 0.01] = 0.0
    return values


def test_error_against_exact_on_a_million_customers(monetary: np.ndarray):
    n = monetary.shape[0]
    recency = np.zeros(n, dtype=np.int64)
    frequency = np.ones(n, dtype=np.int64)
    exact = arrays.score_metrics(recency, frequency, monetary, method="exact").M
    approx = arrays.score_metrics(recency, frequency, monetary, method="approx").M
    differ = exact != approx
    share = differ.mean()
    # Measured: about 0.3% of customers move, each by one score at most.
    assert share < 0.01, share
    assert np.abs(exact.astype(int) - approx.astype(int)).max() <= 1
    # The documented bound: every approximate score is the exact score of a value within the
    # relative error, i.e. only values whose bucket straddles an exact edge can move.
    edges = arrays.score_metrics(recency, frequency, monetary, method="exact").edges["monetary"]
    moved = monetary[differ]
    keys = bucket_keys(moved)
    assert np.isin(keys, bucket_keys(np.array(edges))).all()


def test_sketch_merges_exactly_whatever_the_split(monetary: np.ndarray):
    whole = LogHistogram.of(monetary)
    rng = np.random.default_rng(5)
    cuts = np.sort(rng.integers(0, monetary.shape[0], 7))
    parts = [LogHistogram.of(p) for p in np.split(rng.permutation(monetary), cuts)]
    merged = parts[0]
    for part in reversed(parts[1:]):
        merged = part + merged
    restored = LogHistogram.from_bytes(merged.to_bytes())
    np.testing.assert_array_equal(restored.keys, whole.keys)
    np.testing.assert_array_equal(restored.counts, whole.counts)
    assert restored.relative_error == DEFAULT_RELATIVE_ERROR
    # Small state: the number of buckets grows with the spread of the values, not their count.
    assert whole.keys.shape[0] < 5_000


def test_bucket_keys_sort_like_the_values():
    values = np.array([-1e9, -3.0, -2.99, -1e-9, 0.0, 1e-300, 0.5, 0.5025, 1.0, 7.0, 1e12])
    keys = bucket_keys(values)
    assert (np.diff(keys) >= 0).all()
    assert keys[4] == 0 and keys[3] < 0 < keys[5]


def test_approx_scores_integer_metrics_exactly():
    table = rfm_fast.datasets.load_example()
    exact = rfm_fast.score(table, **rfm_fast.datasets.EXAMPLE_COLUMNS)
    approx = rfm_fast.score(table, method="approx", **rfm_fast.datasets.EXAMPLE_COLUMNS)
    assert approx.table["R"].equals(exact.table["R"])
    assert approx.table["F"].equals(exact.table["F"])
    moved = (approx.table["M"].to_numpy() != exact.table["M"].to_numpy()).mean()
    assert moved < 0.02
    assert approx.stats.method == "approx"
