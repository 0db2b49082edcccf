"""rfm_fast inside Dask: exact RFM scores of a Dask DataFrame, computed on the workers.

Needs ``pip install 'rfm_fast[dask]'`` (dask[dataframe], distributed) on the client and the
workers. Each input partition folds its rows into partial per-customer state (map-side
combine), split into one piece per output partition by a hash of the customer key; the task
that merges an output partition's pieces fetches only those, so what the workers send each
other grows with the customers of each input partition, not with its rows (and is never more
than the rows: a partition whose state would be larger sends its rows instead). The
per-customer totals stay on the workers (``persist``), and only small summaries reach the
client (see :mod:`rfm_fast.engines.distributed` and docs/distributed.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from rfm_fast.core.option_table import given_options
from rfm_fast.core.result import RunStats
from rfm_fast.core.segments import SegmentsSpec
from rfm_fast.engines import distributed
from rfm_fast.errors import RFMError
from rfm_fast.optional import require

if TYPE_CHECKING:
    import dask.dataframe as dd
    import pandas as pd


@dataclass(frozen=True)
class DaskResult:
    """The result of :func:`score_result`: the scores as a Dask DataFrame, the edges and the
    run statistics (the same as :class:`rfm_fast.RFMResult` has)."""

    table: dd.DataFrame
    edges: dict[str, list[float]]
    stats: RunStats


def score(ddf: dd.DataFrame, **options: Any) -> dd.DataFrame:
    """Score every customer of a Dask DataFrame of orders; see :func:`score_result`.

    Returns
    -------
    dask.dataframe.DataFrame
        One row per customer with the columns of :func:`rfm_fast.score`.
    """
    return score_result(ddf, **options).table


def score_result(
    ddf: dd.DataFrame,
    *,
    customer: str,
    timestamp: str,
    amount: str,
    order: str | None = None,
    as_of: Any = None,
    bins: int = 5,
    method: str = "exact",
    frequency: str = "orders",
    monetary: str = "sum",
    returns: str = "net",
    amount_format: str | None = None,
    decimal: str = ".",
    segments: SegmentsSpec = "default",
    thresholds: dict[str, Sequence[float]] | None = None,
    timestamp_format: str | None = None,
    partitions: int | None = None,
    batch_rows: int = 1 << 16,
) -> DaskResult:
    """Score every customer of a Dask DataFrame of orders, exactly as :func:`rfm_fast.score`
    scores the same rows on one machine.

    Parameters
    ----------
    ddf : dask.dataframe.DataFrame
        The orders.
    customer, timestamp, amount, order, as_of, bins, frequency, monetary, returns, \
amount_format, decimal, segments, \
thresholds, timestamp_format
        As for :func:`rfm_fast.score`.
    method : {"exact", "approx"}, default "exact"
        ``"split"`` needs one global ranking and is not offered.
    partitions : int, optional
        Output partitions, by customer, and buckets of the map-side pieces (default: those
        of ``ddf``).
    batch_rows : int, default 65536
        Each partition is handed to the kernels in Arrow batches of this many rows.

    Returns
    -------
    DaskResult
        ``.table`` (a Dask DataFrame over the persisted per-customer totals), ``.edges`` and
        ``.stats``.

    Examples
    --------
    With a Dask DataFrame ``orders_ddf`` (tested in tests/engines/test_dask.py, not as a doctest)::

        import rfm_fast.engines.dask

        result = rfm_fast.engines.dask.score_result(
            orders_ddf, customer="customer_id", timestamp="ordered_at", amount="amount"
        )
        result.table.segment.value_counts().compute()
        result.edges, result.stats
    """
    arguments = dict(locals())  # (the options, before any other name is bound)
    require("dask.dataframe", "dask", "rfm_fast.engines.dask")
    import dask
    import dask.dataframe as dd

    spec = distributed.checked_options(**given_options("dask", arguments))
    distributed.check_columns(spec, list(ddf.columns))
    orders = ddf[spec.reading.columns.names_in(list(ddf.columns))]
    buckets = partitions or orders.npartitions
    combine = dask.delayed(_combine, nout=2)
    combined = [combine(part, spec, buckets) for part in orders.to_delayed()]
    # Each bucket's task takes only its own piece of each map output (a small getitem task
    # on the worker that holds the map output).
    merge, piece_of = dask.delayed(_merge), dask.delayed(_piece)
    merged = [merge(spec, [piece_of(p, b) for p, _ in combined]) for b in range(buckets)]
    persisted = dask.persist(*merged, *(header for _, header in combined))
    totals, headers = persisted[:buckets], dask.compute(*persisted[buckets:])
    headers = [h for h in headers if h]
    if not headers:
        raise RFMError("the DataFrame has no rows to score")
    header = distributed.merge_headers(distributed.PartitionHeader.from_bytes(h) for h in headers)
    as_of_ticks = distributed.as_of_ticks(header)

    histograms, gather = dask.delayed(_histograms), dask.delayed(_candidates)
    final = distributed.final_plan(
        spec,
        as_of_ticks,
        dask.compute(*[histograms(t, spec, header, as_of_ticks) for t in totals]),
        lambda current: dask.compute(*[gather(t, spec, header, current) for t in totals]),
    )
    meta = _meta(spec, header, final)
    apply = dask.delayed(_apply)
    table = dd.from_delayed([apply(t, spec, header, final) for t in totals], meta=meta)
    return DaskResult(table, final.edges, distributed.run_stats(spec, header, final))


def _combine(frame: pd.DataFrame, spec: distributed.ScoringOptions, buckets: int) -> tuple:
    """An input partition's pieces, one entry per bucket (None where it has no customers), and
    its header bytes; (no pieces, None) for an empty partition (pandas cannot tell the type
    of an empty object column, so it has no say in the types)."""
    if len(frame) == 0:
        return [None] * buckets, None
    table = pa.Table.from_pandas(frame, preserve_index=False)
    batches = table.to_batches(max_chunksize=spec.reading.batch_rows)
    pieces, header = distributed.combine_partition(spec, batches, table.schema, buckets)
    by_bucket: list[bytes | None] = [None] * buckets
    for bucket, piece in pieces:
        by_bucket[bucket] = piece
    return by_bucket, header.to_bytes()


def _piece(by_bucket: list[bytes | None], bucket: int) -> bytes | None:
    return by_bucket[bucket]


def _merge(spec: distributed.ScoringOptions, pieces: list[bytes | None]) -> pa.Table | None:
    return distributed.merge_pieces(spec, (p for p in pieces if p is not None))


def _histograms(part, spec, header, as_of_ticks) -> bytes:
    return distributed.histograms_of(
        spec, distributed.bucket_totals(part, header), header, as_of_ticks
    ).to_bytes()


def _candidates(part, spec, header, current) -> bytes:
    return distributed.candidates(
        spec, distributed.bucket_totals(part, header), header, current
    ).to_bytes()


def _apply(part, spec, header, final) -> pd.DataFrame:
    return distributed.apply(
        spec, distributed.bucket_totals(part, header), header, final
    ).to_pandas()


def _meta(spec, header, final) -> pd.DataFrame:
    """An empty frame with the result's columns and dtypes."""
    return _apply(None, spec, header, final)
