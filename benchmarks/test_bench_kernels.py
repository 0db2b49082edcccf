"""pytest-benchmark suites for the kernels and the NumPy-level layer (not part of the tests)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

import rfm_fast
from rfm_fast.core import arrays
from rfm_fast.core.aggregator import KeyTable
from rfm_fast.core.arrow import IntColumn, Validity, key_column


def test_factorize_int_keys(benchmark, orders):
    keys = IntColumn(orders["customer"], Validity(np.empty(0, np.uint8), 0))
    out = np.empty(keys.values.shape[0], dtype=np.int64)

    def run():
        KeyTable("int").factorize(keys, out)

    benchmark(run)


def test_factorize_string_keys(benchmark, orders):
    text = pa.array(orders["customer"][:1_000_000].astype(str), pa.large_string())
    strings = key_column(text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text)
    out = np.empty(len(strings), dtype=np.int64)
    benchmark(lambda: KeyTable("string").factorize(strings, out))


def test_aggregate_numpy(benchmark, orders):
    result = benchmark(arrays.aggregate, orders["customer"], orders["timestamp"], orders["amount"])
    benchmark.extra_info["rows_per_second"] = orders["customer"].shape[0] / benchmark.stats["mean"]
    assert len(result) > 0


def test_aggregate_numpy_distinct_orders(benchmark, orders):
    benchmark(
        arrays.aggregate, orders["customer"], orders["timestamp"], orders["amount"], orders["order"]
    )


def test_score_metrics_exact(benchmark, orders):
    metrics = arrays.aggregate(orders["customer"], orders["timestamp"], orders["amount"])
    benchmark(arrays.score_metrics, metrics.recency, metrics.frequency, metrics.monetary)


def test_score_arrow_table(benchmark, orders):
    table = pa.table(orders)
    benchmark(rfm_fast.score, table, customer="customer", timestamp="timestamp", amount="amount")
