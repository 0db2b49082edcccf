"""What the scores mean and how they move: per-segment tables and the R x F grid
(:mod:`~rfm_fast.insight.tables`), migration between two dates
(:mod:`~rfm_fast.insight.migration`) and the HTML report (:mod:`~rfm_fast.insight.report`)."""

from __future__ import annotations

from rfm_fast.insight.migration import Migration, migrate
from rfm_fast.insight.tables import (
    SegmentQuality,
    grid,
    lifecycle_table,
    segment_quality,
    summarize,
)

__all__ = [
    "Migration",
    "SegmentQuality",
    "grid",
    "lifecycle_table",
    "migrate",
    "segment_quality",
    "summarize",
]
