"""The single-machine scoring engine, above the kernels (:mod:`rfm_fast._kernels`).

What a run goes through, module by module:

* :mod:`~rfm_fast.core.options`: the options, checked once (:class:`ScoringOptions`);
* :mod:`~rfm_fast.core.io`: inputs opened as batches of Arrow columns, read ahead in a thread;
  results written atomically;
* :mod:`~rfm_fast.core.arrow`: Arrow columns as the arrays and bitmaps kernels take, and the
  time axis of a timestamp column;
* :mod:`~rfm_fast.core.aggregator`: batches folded into per-customer totals
  (:class:`~rfm_fast.core.aggregator.CustomerAggregator`), through the buffered radix
  partitions of :mod:`~rfm_fast.core.partitions` and the thread pool of
  :mod:`~rfm_fast.core.parallel`;
* :mod:`~rfm_fast.core.pipeline`: the steps of a run, from input to :class:`RFMResult`
  (:mod:`~rfm_fast.core.result`), with :mod:`~rfm_fast.core.binning` (exact and NTILE scores),
  :mod:`~rfm_fast.core.sketch` (approximate ones) and :mod:`~rfm_fast.core.segments`;
* :mod:`~rfm_fast.core.scoring`: :func:`score`, the public face of all of it;
* :mod:`~rfm_fast.core.state`: :class:`CustomerState`, totals that merge;
* :mod:`~rfm_fast.core.arrays`: the same on NumPy arrays in memory;
* :mod:`~rfm_fast.core.timing`: wall and CPU time per phase.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rfm_fast._lazy import lazy_exports

if TYPE_CHECKING:  # for type checkers and the docs; at run time, imported on first use (below)
    from rfm_fast.core.options import ReadOptions, ScoreOptions, ScoringOptions
    from rfm_fast.core.result import RESULT_COLUMNS, RFMResult, RunStats, result_schema
    from rfm_fast.core.scoring import score
    from rfm_fast.core.state import CustomerState, merge_states

__all__ = [
    "RESULT_COLUMNS",
    "CustomerState",
    "RFMResult",
    "ReadOptions",
    "RunStats",
    "ScoreOptions",
    "ScoringOptions",
    "merge_states",
    "result_schema",
    "score",
]

# Importing one module of the engine (rfm_fast.core.timing, rfm_fast.core.io) does not import the
# others (the options import the Numba kernels).
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "rfm_fast.core.options": ("ReadOptions", "ScoreOptions", "ScoringOptions"),
        "rfm_fast.core.result": ("RESULT_COLUMNS", "RFMResult", "RunStats", "result_schema"),
        "rfm_fast.core.scoring": ("score",),
        "rfm_fast.core.state": ("CustomerState", "merge_states"),
    },
)
