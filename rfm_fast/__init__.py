"""rfm_fast: a compiled RFM (recency, frequency, monetary) scoring engine.

The main entry point is :func:`score`. The package, by concern (docs/architecture.md):

* :mod:`rfm_fast.core`: the single-machine engine (options, inputs, aggregation, scoring,
  mergeable state); :mod:`rfm_fast.core.arrays` is its NumPy-level layer;
* :mod:`rfm_fast.engines`: scoring across partitions, with Spark and Dask;
* :mod:`rfm_fast.insight`: segment tables, migration and the HTML report;
* :mod:`rfm_fast.actions`: campaign measurement (treatment against control, per segment);
* :mod:`rfm_fast.clv`: churn, expected purchases and lifetime value (BG/NBD, Gamma-Gamma);
* :mod:`rfm_fast.reference`: a plain pandas implementation of the same contract;
* :mod:`rfm_fast.datasets`: the built-in example;
* ``rfm_fast._kernels``: the Numba kernels, below everything.

``rfm_fast.arrays`` is :mod:`rfm_fast.core.arrays` (``from rfm_fast import arrays``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rfm_fast._lazy import lazy_exports

if TYPE_CHECKING:  # for type checkers and the docs; at run time, imported on first use (below)
    from rfm_fast import datasets
    from rfm_fast.actions import CampaignResult, campaign, customer_list
    from rfm_fast.core.database import Database
    from rfm_fast.core.scoring import RFMResult, RunStats, score
    from rfm_fast.core.segments import (
        BUILTIN_MAPS,
        DEFAULT_RULES,
        SegmentRule,
        load_rules,
        playbook,
    )
    from rfm_fast.core.state import CustomerState, merge_states
    from rfm_fast.daily import DailyState
    from rfm_fast.errors import RFMDataWarning, RFMError, RFMWarning
    from rfm_fast.insight.migration import Migration, migrate
    from rfm_fast.insight.tables import (
        SegmentQuality,
        grid,
        lifecycle_table,
        segment_quality,
        summarize,
    )


__version__ = "0.1.0"

__all__ = [
    "BUILTIN_MAPS",
    "DEFAULT_RULES",
    "CampaignResult",
    "CustomerState",
    "DailyState",
    "Database",
    "Migration",
    "RFMDataWarning",
    "RFMError",
    "RFMResult",
    "RFMWarning",
    "RunStats",
    "SegmentQuality",
    "SegmentRule",
    "__version__",
    "campaign",
    "customer_list",
    "datasets",
    "grid",
    "lifecycle_table",
    "load_rules",
    "merge_states",
    "migrate",
    "playbook",
    "score",
    "segment_quality",
    "summarize",
    "warmup",
]

# `import rfm_fast` loads none of the engine (Numba, pyarrow), SciPy or pandas: each public name
# is imported on its first use, so that `rfm --version` or a script that needs one function
# does not pay for the rest.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "rfm_fast.actions": ("CampaignResult", "campaign", "customer_list"),
        "rfm_fast.core.database": ("Database",),
        "rfm_fast.core.scoring": ("RFMResult", "RunStats", "score"),
        "rfm_fast.core.segments": (
            "BUILTIN_MAPS",
            "DEFAULT_RULES",
            "SegmentRule",
            "load_rules",
            "playbook",
        ),
        "rfm_fast.core.state": ("CustomerState", "merge_states"),
        "rfm_fast.daily": ("DailyState",),
        "rfm_fast.errors": ("RFMDataWarning", "RFMError", "RFMWarning"),
        "rfm_fast.insight.migration": ("Migration", "migrate"),
        "rfm_fast.insight.tables": (
            "SegmentQuality",
            "grid",
            "lifecycle_table",
            "segment_quality",
            "summarize",
        ),
    },
    submodules=("datasets",),
    aliases={"arrays": "rfm_fast.core.arrays"},
)


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

    from rfm_fast.core.scoring import score

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
