"""rfm_fast: a compiled RFM (recency, frequency, monetary) scoring engine.

The main entry point is :func:`score`; :mod:`rfm_fast.arrays` is the NumPy-level layer below it,
and :mod:`rfm_fast.reference` a plain pandas implementation of the same contract.
"""

from __future__ import annotations

from rfm_fast import datasets
from rfm_fast.errors import RFMError, RFMWarning
from rfm_fast.insight import SegmentQuality, grid, segment_quality, summarize
from rfm_fast.migration import Migration, migrate
from rfm_fast.scoring import RFMResult, RunStats, score
from rfm_fast.segments import DEFAULT_RULES, SegmentRule, load_rules
from rfm_fast.state import CustomerState, merge_states

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_RULES",
    "CustomerState",
    "Migration",
    "RFMError",
    "RFMResult",
    "RFMWarning",
    "RunStats",
    "SegmentQuality",
    "SegmentRule",
    "__version__",
    "datasets",
    "grid",
    "load_rules",
    "merge_states",
    "migrate",
    "score",
    "segment_quality",
    "summarize",
    "warmup",
]


def warmup() -> None:
    """Compile (or load from the cache) the kernels for the common input types.

    The first call of a kernel in a process compiles it, or loads it from Numba's on-disk cache.
    A long-lived process (a server, a Spark or Dask worker) can call this once at start-up so that
    the first real request does not pay that cost.

    Examples
    --------
    >>> import rfm_fast
    >>> rfm_fast.warmup()
    """
    import datetime as dt

    import pyarrow as pa

    day = dt.date(2024, 1, 1)
    for customers in (pa.array([1, 2], pa.int64()), pa.array(["a", "b"])):
        table = pa.table(
            {
                "customer": customers,
                "timestamp": pa.array([day, day], pa.date32()),
                "ts": pa.array([0, 1], pa.timestamp("us")),
                "amount": pa.array([1.0, 2.0]),
                "order": pa.array([1, 2], pa.int64()),
                "invoice": pa.array(["x", "y"]),
            }
        )
        for timestamp in ("timestamp", "ts"):
            for order in (None, "order", "invoice"):
                score(table, customer="customer", timestamp=timestamp, amount="amount", order=order)
