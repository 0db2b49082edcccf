"""Benchmarks are not tests: run them with ``python -m pytest benchmarks/ --benchmark-only``.

Sizes can be changed with ``RFM_BENCH_ROWS`` and ``RFM_BENCH_CUSTOMERS``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

ROWS = int(os.environ.get("RFM_BENCH_ROWS", 5_000_000))
CUSTOMERS = int(os.environ.get("RFM_BENCH_CUSTOMERS", 250_000))


@pytest.fixture(scope="session")
def orders() -> dict[str, np.ndarray]:
    """Seeded orders: lognormal customer activity, sparse 64-bit ids, lognormal amounts."""
    rng = np.random.default_rng(20261123)
    ids = rng.integers(1, 2**63 - 1, CUSTOMERS)
    activity = rng.lognormal(0.0, 1.0, CUSTOMERS)
    customer = ids[rng.choice(CUSTOMERS, ROWS, p=activity / activity.sum())]
    start = np.datetime64("2021-01-01T00:00:00", "s").astype(np.int64)
    timestamp = (start + rng.integers(0, 3 * 365 * 86_400, ROWS)).astype("datetime64[s]")
    amount = np.round(rng.lognormal(3.0, 1.0, ROWS), 2)
    return {
        "customer": customer,
        "timestamp": timestamp,
        "amount": amount,
        "order": np.arange(ROWS, dtype=np.int64),
    }
