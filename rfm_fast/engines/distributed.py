"""Scoring across partitions: exact edges from small mergeable histograms, applied per partition.

This module holds what the Spark and Dask integrations (:mod:`rfm_fast.engines.spark`,
:mod:`rfm_fast.engines.dask`) run; it depends on neither. The input partitions may hold any rows, in
any order, and then:

1. **Map-side combine** (on the workers): each input partition folds its rows into a partial
   :class:`rfm_fast.CustomerState` and splits it by a hash of the customer key into one piece
   per bucket (:func:`combine_partition`), plus one :class:`PartitionHeader` with the
   partition's row counts, types and latest timestamp. Only the pieces cross the network: what
   is shuffled grows with the customers of each partition (and their distinct orders), not
   with its rows.
2. **Totals** (workers, one per bucket): the pieces of a bucket merge into the per-customer
   totals of its customers, which hold every row of them (:func:`merge_pieces`).
3. **as_of** (driver): the headers merge (:func:`merge_headers`) into the row counts and the
   latest timestamp, hence ``as_of``.
4. **Histograms** (workers): per bucket, exact histograms of recency and frequency and a
   bucket histogram of monetary (:func:`histograms_of`, :class:`Histograms`); they merge by
   adding.
5. **Plan** (driver): the merged histograms fix the edges of recency and frequency exactly
   (:func:`plan`). For monetary, the histogram tells which bucket holds each cut-off rank; in
   exact mode the workers send their values inside those few buckets (:func:`candidates`),
   and the driver picks the exact order statistics (:func:`refine`).
6. **Scores** (workers): each bucket scores its customers against the plan's edges
   (:func:`apply`). The edges reproduce the scores (docs/semantics.md), so every score, edge
   and empty bin is what :func:`rfm_fast.score` gives on the whole input.

``method="split"`` ranks ties by customer key across the whole input and is not offered here.
"""

from __future__ import annotations

import itertools
import json
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import pyarrow as pa

from rfm_fast.core import arrow, binning
from rfm_fast.core.aggregator import CustomerTotals, RowCounts
from rfm_fast.core.io import table_from_ipc, table_to_ipc
from rfm_fast.core.options import ScoringOptions
from rfm_fast.core.pipeline import (
    Aggregated,
    conformed_batches,
    conformed_schema,
    customer_metrics,
    output_keys,
    result_stats,
    result_table,
)
from rfm_fast.core.result import RFMResult, RunStats
from rfm_fast.core.sketch import bucket_keys
from rfm_fast.core.state import CustomerState, customer_buckets, merge_states
from rfm_fast.errors import RFMError

METHODS = ("exact", "approx")
PARTITION_BATCH_ROWS = 1 << 16
"""Rows per batch that a partition's rows are folded in, unless the run says otherwise."""
COMBINE_MAX_SHARE = 1.0
"""An input partition sends its partial state when that is at most this share of its rows'
bytes, else the rows themselves (see :func:`combine_partition`)."""
STATE_PIECE, ROWS_PIECE = b"S", b"R"
"""The first byte of a piece: a CustomerState, or the bucket's rows as an Arrow IPC stream."""


def checked_options(**options: Any) -> ScoringOptions:
    """The options of a run across partitions, checked once on the driver and shipped to the
    workers: those of :func:`rfm_fast.score` (see :meth:`ScoringOptions.checked`), without
    ``"split"`` and ``threads`` (one thread a task), and ``batch_rows`` 65,536 by default.

    Raises
    ------
    RFMError
        For ``method="split"``, ``threads``, ``window``, and whatever
        :meth:`ScoringOptions.checked` refuses.

    Examples
    --------
    >>> from rfm_fast.engines import distributed
    >>> options = distributed.checked_options(customer="c", timestamp="t", amount="a")
    >>> options.reading.batch_rows, options.reading.threads, options.scoring.method
    (65536, 1, 'exact')
    """
    if "threads" in options:
        raise RFMError("threads is not an option across partitions: each task runs one thread")
    if options.get("window") is not None:
        raise RFMError(
            "window is not available across partitions yet: filter the rows to the window "
            "first (timestamp >= as_of - window days), with an as_of given"
        )
    defaults = {"batch_rows": PARTITION_BATCH_ROWS}
    checked = ScoringOptions.checked(**{**defaults, **options, "threads": 1})
    if checked.scoring.method not in METHODS:  # a valid method, but not this one
        raise RFMError(
            f"method {checked.scoring.method!r} is not available across partitions: 'split' "
            "breaks ties by customer key over the whole input; use 'exact' or 'approx'"
        )
    return checked


# ---------------------------------------------------------------------- step 1: totals
@dataclass(frozen=True)
class PartitionHeader:
    """What a partition's totals do not show: row counts, types and the latest timestamp."""

    customer: str
    customer_type: pa.DataType
    time_type: pa.DataType
    as_of_limit: int | None
    counts: RowCounts

    def to_bytes(self) -> bytes:
        header = {
            "customer": self.customer,
            "as_of_limit": self.as_of_limit,
            "counts": {f.name: getattr(self.counts, f.name) for f in fields(RowCounts)},
        }
        types = pa.schema([("customer", self.customer_type), ("time", self.time_type)])
        text = json.dumps(header).encode()
        return struct.pack("<Q", len(text)) + text + types.serialize().to_pybytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> PartitionHeader:
        (size,) = struct.unpack_from("<Q", data)
        header = json.loads(bytes(data[8 : 8 + size]))
        types = pa.ipc.read_schema(pa.py_buffer(data[8 + size :]))
        return cls(
            customer=header["customer"],
            customer_type=types.field("customer").type,
            time_type=types.field("time").type,
            as_of_limit=header["as_of_limit"],
            counts=RowCounts(**header["counts"]),
        )


def merge_headers(headers: Iterable[PartitionHeader]) -> PartitionHeader:
    """The header of all partitions: counts added, the latest timestamp of all."""
    headers = list(headers)
    if not headers:
        raise RFMError("no partitions: the input has no partitions to score")
    with_rows = [h for h in headers if h.counts.rows_read] or headers
    return replace(with_rows[0], counts=RowCounts.total([h.counts for h in headers]))


def totals_schema(customer_type: pa.DataType) -> pa.Schema:
    """The schema of :func:`merge_pieces` output for a customer column of this type."""
    if pa.types.is_dictionary(customer_type):
        customer_type = customer_type.value_type
    if pa.types.is_string_view(customer_type):
        customer_type = pa.string()
    return pa.schema(
        [
            ("customer", customer_type),
            ("first", pa.int64()),
            ("last", pa.int64()),
            ("frequency", pa.int64()),
            ("monetary", pa.float64()),
        ]
    )


def combine_partition(
    spec: ScoringOptions, batches: Iterable[pa.RecordBatch], schema: pa.Schema, buckets: int
) -> tuple[list[tuple[int, bytes]], PartitionHeader]:
    """Step 1: one input partition's rows (any customers, any order) as pieces of its buckets.

    Returns the ``(bucket, piece)`` of every bucket that has rows here, and the partition's
    header. A piece is the bucket's part of the partition's partial state, or, where that
    state is not smaller than the rows (customers with one or two rows each:
    ``COMBINE_MAX_SHARE``), the bucket's rows themselves. Every piece of a customer, from
    every partition, has the same bucket; a bucket's pieces merge into its totals with
    :func:`merge_pieces`.
    """
    # Kept whole (the row count known sizes the buffers): the rows are sent instead where
    # combining does not pay.
    rows = pa.Table.from_batches(list(batches), schema)
    state = _state_of(spec, rows)
    header = PartitionHeader(
        state.customer, state.customer_type, state.time_type, state.as_of_limit, state.counts
    )
    if state.nbytes <= COMBINE_MAX_SHARE * rows.nbytes:
        parts = enumerate(state.split(buckets))
        return [(b, STATE_PIECE + part.to_bytes()) for b, part in parts if len(part)], header
    del state
    rows = _conformed_rows(rows, spec)
    bucket = customer_buckets(rows.column(spec.reading.columns.customer), buckets)
    order = np.argsort(bucket, kind="stable")
    bounds = np.searchsorted(bucket[order], np.arange(buckets + 1))
    rows = arrow.take_rows(rows, arrow.from_numpy(order))
    pieces = [
        (b, ROWS_PIECE + table_to_ipc(rows.slice(lo, hi - lo)))
        for b, (lo, hi) in enumerate(itertools.pairwise(bounds))
        if hi > lo
    ]
    return pieces, header


def _conformed_rows(rows: pa.Table, spec: ScoringOptions) -> pa.Table:
    """``rows`` with their columns read as :func:`rfm_fast.score` reads them (float ids that are
    whole numbers and columns of nulls as int64, text amounts as numbers), so that they can be
    bucketed like the states' keys."""
    columns = spec.reading.columns.resolve(rows.column_names)
    schema, conform = conformed_schema(rows.schema, columns)
    if not conform:
        return rows
    batches = list(conformed_batches(iter(rows.to_batches()), conform, schema, spec.reading))
    return pa.Table.from_batches(batches) if batches else schema.empty_table()


def merge_pieces(spec: ScoringOptions, pieces: Iterable[bytes]) -> pa.Table | None:
    """Step 2: the per-customer totals of a bucket from all of its pieces (None without any).

    ``monetary`` is the exact sum rounded once to float64 (not yet divided for
    ``monetary="mean"``); ``frequency`` counts rows, distinct orders or days as asked. The
    row counts of the states merged here are not used: the headers carry them.
    """
    states, rows = [], {}
    for piece in pieces:
        kind, body = bytes(piece[:1]), memoryview(piece)[1:]
        if kind == STATE_PIECE:
            states.append(CustomerState.from_bytes(body))
        else:  # the rows of several partitions folded at once (a state has a fixed cost)
            table = table_from_ipc(body)
            rows.setdefault(table.schema, []).append(table)
    states += [_state_of(spec, pa.concat_tables(tables)) for tables in rows.values()]
    if not states:
        return None
    state = merge_states(states)
    totals = state.totals()
    frequency = totals.rows if totals.distinct is None else totals.distinct
    keys = output_keys(totals.keys, state.customer_type)
    return pa.table(
        [keys, totals.first, totals.last, frequency, totals.monetary],
        schema=totals_schema(state.customer_type),
    )


def _state_of(spec: ScoringOptions, rows: pa.Table) -> CustomerState:
    return CustomerState.of_options(rows, spec.reading)


def bucket_totals(totals: pa.Table | None, header: PartitionHeader) -> pa.Table:
    """``totals`` from :func:`merge_pieces`, or an empty table for a bucket without customers."""
    return totals_schema(header.customer_type).empty_table() if totals is None else totals


def as_of_ticks(header: PartitionHeader) -> int | None:
    """``as_of`` in ticks: the one given, or the latest timestamp of all partitions plus a day."""
    if header.as_of_limit is not None:
        return header.as_of_limit
    if header.counts.max_timestamp is None:
        return None
    return arrow.TimeAxis.of(header.time_type).default_as_of(header.counts.max_timestamp)


def _aggregated(totals: pa.Table, header: PartitionHeader, as_of: int | None) -> Aggregated:
    """A partition's totals in the form the single-machine scoring code takes."""
    frequency = totals.column("frequency").to_numpy()
    customers, _ = CustomerTotals(
        keys=totals.column("customer").combine_chunks(),
        first=totals.column("first").to_numpy(),
        last=totals.column("last").to_numpy(),
        rows=frequency,
        distinct=None,
        monetary=totals.column("monetary").to_numpy(),
    ).purchasers()  # customers with only returns are in the totals, not in the result
    return Aggregated(
        totals=customers,
        counts=header.counts,
        axis=arrow.TimeAxis.of(header.time_type),
        as_of_ticks=as_of,
        as_of_limit=header.as_of_limit,
        customer=header.customer,
        customer_type=header.customer_type,
    )


# ---------------------------------------------------------------------- step 3: histograms
@dataclass
class Histograms:
    """Mergeable histograms of some customers' metrics (add histograms with ``+``).

    ``recency`` and ``frequency`` are exact histograms (distinct values and counts);
    ``monetary`` a histogram over the log-spaced buckets of :mod:`rfm_fast.core.sketch`, with the
    smallest and largest value of each bucket. ``score_counts`` counts the customers per score
    of each metric scored by user thresholds.
    """

    customers: int
    values: dict[str, np.ndarray]  # recency, frequency: distinct values; monetary: bucket keys
    counts: dict[str, np.ndarray]
    monetary_min: np.ndarray
    monetary_max: np.ndarray
    score_counts: dict[str, np.ndarray] = field(default_factory=dict)
    only_returns: int = 0
    """Customers left out because all their rows are returns (``returns="net"``)."""

    def __add__(self, other: Histograms) -> Histograms:
        values, counts = {}, {}
        for metric in binning.METRICS:
            values[metric], where = np.unique(
                np.concatenate([self.values[metric], other.values[metric]]), return_inverse=True
            )
            counts[metric] = np.zeros(values[metric].shape[0], dtype=np.int64)
            np.add.at(
                counts[metric], where, np.concatenate([self.counts[metric], other.counts[metric]])
            )
            if metric == "monetary":
                minima = np.full(values[metric].shape[0], np.inf)
                np.minimum.at(
                    minima, where, np.concatenate([self.monetary_min, other.monetary_min])
                )
                maxima = np.full(values[metric].shape[0], -np.inf)
                np.maximum.at(
                    maxima, where, np.concatenate([self.monetary_max, other.monetary_max])
                )
        return Histograms(
            customers=self.customers + other.customers,
            values=values,
            counts=counts,
            monetary_min=minima,
            monetary_max=maxima,
            score_counts={
                metric: self.score_counts[metric] + other.score_counts[metric]
                for metric in self.score_counts
            },
            only_returns=self.only_returns + other.only_returns,
        )

    def to_bytes(self) -> bytes:
        columns = {
            "customers": np.array([self.customers], dtype=np.int64),
            "only_returns": np.array([self.only_returns], dtype=np.int64),
        }
        for metric in binning.METRICS:
            columns[f"{metric}.values"] = self.values[metric]
            columns[f"{metric}.counts"] = self.counts[metric]
        columns["monetary.min"] = self.monetary_min
        columns["monetary.max"] = self.monetary_max
        for metric, counts in self.score_counts.items():
            columns[f"{metric}.score_counts"] = counts
        return _arrays_to_bytes(columns)

    @classmethod
    def from_bytes(cls, data: bytes) -> Histograms:
        columns = _arrays_from_bytes(data)
        return cls(
            customers=int(columns["customers"][0]),
            values={m: columns[f"{m}.values"] for m in binning.METRICS},
            counts={m: columns[f"{m}.counts"] for m in binning.METRICS},
            monetary_min=columns["monetary.min"],
            monetary_max=columns["monetary.max"],
            score_counts={
                name.split(".")[0]: array
                for name, array in columns.items()
                if name.endswith(".score_counts")
            },
            only_returns=int(columns["only_returns"][0]),
        )


def _metric_values(
    spec: ScoringOptions, totals: pa.Table, header: PartitionHeader, as_of: int | None
):
    metrics = customer_metrics(_aggregated(totals, header, as_of), spec.scoring.monetary)
    return {
        "recency": metrics.recency,
        "frequency": metrics.frequency,
        "monetary": metrics.monetary,
    }


def histograms_of(
    spec: ScoringOptions, totals: pa.Table, header: PartitionHeader, as_of: int | None
) -> Histograms:
    """The histograms of one partition's customers (``header`` and ``as_of`` of all partitions)."""
    values = _metric_values(spec, totals, header, as_of)
    distinct, counts = {}, {}
    for metric in ("recency", "frequency"):
        distinct[metric], counts[metric] = np.unique(values[metric], return_counts=True)
    keys = bucket_keys(values["monetary"])
    order = np.argsort(keys, kind="stable")
    distinct["monetary"], starts, counts["monetary"] = np.unique(
        keys[order], return_index=True, return_counts=True
    )
    sorted_money = values["monetary"][order]
    minima = np.minimum.reduceat(sorted_money, starts) if starts.shape[0] else np.empty(0)
    maxima = np.maximum.reduceat(sorted_money, starts) if starts.shape[0] else np.empty(0)
    score_counts = {}
    for metric, edges in spec.scoring.thresholds.items():
        scored = binning.score_metric(
            values[metric],
            bins=spec.scoring.bins,
            method=spec.scoring.method,
            higher_is_better=metric != "recency",
            thresholds=edges,
        )
        score_counts[metric] = np.bincount(scored.scores - 1, minlength=spec.scoring.bins).astype(
            np.int64
        )
    customers = values["recency"].shape[0]
    return Histograms(
        customers=customers,
        only_returns=totals.num_rows - customers,
        values={m: np.asarray(v, dtype=_DTYPES[m]) for m, v in distinct.items()},
        counts={m: c.astype(np.int64) for m, c in counts.items()},
        monetary_min=minima.astype(np.float64),
        monetary_max=maxima.astype(np.float64),
        score_counts=score_counts,
    )


_DTYPES = {"recency": np.int64, "frequency": np.int64, "monetary": np.int64}


def empty_histograms(spec: ScoringOptions) -> Histograms:
    """The histograms of no customers (the neutral element of ``+``)."""
    none = np.empty(0, dtype=np.int64)
    return Histograms(
        customers=0,
        values={m: none for m in binning.METRICS},
        counts={m: none for m in binning.METRICS},
        monetary_min=np.empty(0),
        monetary_max=np.empty(0),
        score_counts={
            m: np.zeros(spec.scoring.bins, dtype=np.int64) for m in spec.scoring.thresholds
        },
    )


# ---------------------------------------------------------------------- step 4: the plan
@dataclass(frozen=True)
class Plan:
    """Edges per metric (which reproduce the scores), empty scores, ``as_of`` and the counts.

    ``pending`` lists, in exact mode, the monetary ranks still to resolve: (rank, bucket key,
    customers in lower buckets); :func:`refine` resolves them with the partitions'
    :func:`candidates`.
    """

    as_of: int | None
    customers: int
    edges: dict[str, list[float]]
    empty: dict[str, list[int]]
    pending: tuple[tuple[int, int, int], ...] = ()
    known: tuple[tuple[int, float], ...] = ()  # resolved monetary ranks: (rank, value)
    only_returns: int = 0  # customers left out: all their rows are returns

    @property
    def buckets(self) -> list[int]:
        """The monetary buckets whose values the workers must send (see :func:`candidates`)."""
        return sorted({bucket for _, bucket, _ in self.pending})


def plan(spec: ScoringOptions, histograms: Histograms, as_of: int | None) -> Plan:
    """Edges from the merged histograms: final for recency and frequency; for monetary, final in
    approx mode and pending the exact order statistics in exact mode."""
    n = histograms.customers
    edges, empty = {}, {}
    for metric in ("recency", "frequency"):
        edges[metric], empty[metric] = _histogram_edges(
            histograms.values[metric],
            histograms.counts[metric],
            n,
            spec.scoring.bins,
            metric != "recency",
        )
    pending: tuple = ()
    known: tuple = ()
    keys, counts, maxima = (
        histograms.values["monetary"],
        histograms.counts["monetary"],
        histograms.monetary_max,
    )
    if "monetary" in spec.scoring.thresholds:
        pass  # the user's edges, below
    elif n == 0:
        edges["monetary"], empty["monetary"] = _histogram_edges(
            keys, counts, 0, spec.scoring.bins, True
        )
    elif spec.scoring.method == "approx":
        # A value's approximate score depends only on its bucket: score the buckets, and take
        # the largest value of each (single-machine "approx" scores exactly so).
        below = np.cumsum(counts) - counts
        scores = (1 + (spec.scoring.bins * below) // n).astype(np.int8)
        edges["monetary"], empty["monetary"] = binning.edges_of(
            maxima, scores, spec.scoring.bins, True
        )
    else:
        cumulative = np.cumsum(counts)
        resolved, waiting = [], []
        for rank in _cut_ranks(n, spec.scoring.bins):
            b = int(np.searchsorted(cumulative, rank, side="right"))
            if rank == cumulative[b] - 1 or histograms.monetary_min[b] == maxima[b]:
                # the largest value of its bucket, or a bucket of one value (ties): known
                resolved.append((rank, float(maxima[b])))
            else:
                waiting.append((rank, int(keys[b]), int(cumulative[b] - counts[b])))
        known, pending = tuple(resolved), tuple(waiting)
    for metric, thresholds in spec.scoring.thresholds.items():
        edges[metric] = [float(e) for e in thresholds]
        empty[metric] = [
            s + 1 for s in range(spec.scoring.bins) if histograms.score_counts[metric][s] == 0
        ]
    result = Plan(as_of, n, edges, empty, pending, known, histograms.only_returns)
    if "monetary" not in edges and not pending:  # every rank known from the bucket maxima
        result = refine(spec, result, [])
    return result


def _cut_ranks(n: int, bins: int) -> list[int]:
    """0-based ranks of the values that fix the exact edges: the largest value with score at
    most j is the value of rank ceil(j * n / bins) - 1, for j = 1 .. bins (see
    docs/distributed.md)."""
    return [(j * n + bins - 1) // bins - 1 for j in range(1, bins + 1)]


def _histogram_edges(
    values: np.ndarray, counts: np.ndarray, n: int, bins: int, higher_is_better: bool
) -> tuple[list[float], list[int]]:
    """Exact edges and empty scores from a histogram: the exact rule applied to each distinct
    value with its count, then the single-machine edge rule."""
    at_most = np.cumsum(counts)
    less = at_most - counts if higher_is_better else n - at_most
    scores = (1 + (bins * less) // max(n, 1)).astype(np.int8)
    return binning.edges_of(values, scores, bins, higher_is_better)


@dataclass
class Candidates:
    """Monetary values of some buckets, distinct, with counts; merge with ``+``."""

    buckets: np.ndarray
    values: np.ndarray
    counts: np.ndarray

    def __add__(self, other: Candidates) -> Candidates:
        return Candidates(
            np.concatenate([self.buckets, other.buckets]),
            np.concatenate([self.values, other.values]),
            np.concatenate([self.counts, other.counts]),
        )

    def to_bytes(self) -> bytes:
        return _arrays_to_bytes(
            {"buckets": self.buckets, "values": self.values, "counts": self.counts}
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Candidates:
        columns = _arrays_from_bytes(data)
        return cls(columns["buckets"], columns["values"], columns["counts"])


def candidates(
    spec: ScoringOptions, totals: pa.Table, header: PartitionHeader, current: Plan
) -> Candidates:
    """A partition's monetary values inside the plan's pending buckets (distinct, counted)."""
    money = _metric_values(spec, totals, header, current.as_of)["monetary"]
    keys = bucket_keys(money)
    inside = np.isin(keys, np.asarray(current.buckets, dtype=np.int64))
    pairs = np.unique(np.rec.fromarrays([keys[inside], money[inside]]), return_counts=True)
    records, counts = pairs
    return Candidates(
        np.asarray(records["f0"], dtype=np.int64),
        np.asarray(records["f1"], dtype=np.float64),
        counts.astype(np.int64),
    )


def refine(spec: ScoringOptions, current: Plan, parts: Iterable[Candidates]) -> Plan:
    """The plan with its pending monetary ranks resolved from all partitions' candidates."""
    if "monetary" in current.edges:
        return current
    merged = Candidates(np.empty(0, np.int64), np.empty(0), np.empty(0, np.int64))
    for part in parts:
        merged = merged + part
    order_stats = dict(current.known)
    for rank, bucket, below in current.pending:
        inside = merged.buckets == bucket
        values, where = np.unique(merged.values[inside], return_inverse=True)
        counts = np.zeros(values.shape[0], dtype=np.int64)
        np.add.at(counts, where, merged.counts[inside])
        position = int(np.searchsorted(np.cumsum(counts), rank - below, side="right"))
        order_stats[rank] = float(values[position])
    # The value of rank r_j is the largest with score <= j; scoring those representatives
    # exactly and applying the single-machine edge rule gives the edges and the empty scores.
    cuts = np.array([order_stats[r] for r in _cut_ranks(current.customers, spec.scoring.bins)])
    scores = (1 + np.searchsorted(cuts[:-1], cuts, side="left")).astype(np.int8)
    edges, empty = binning.edges_of(cuts, scores, spec.scoring.bins, True)
    return replace(
        current,
        edges={**current.edges, "monetary": edges},
        empty={**current.empty, "monetary": empty},
        pending=(),
        known=(),
    )


# ---------------------------------------------------------------------- step 5: scores
def apply(spec: ScoringOptions, totals: pa.Table, header: PartitionHeader, final: Plan) -> pa.Table:
    """One partition's result table: the rows :func:`rfm_fast.score` gives its customers."""
    if final.pending or "monetary" not in final.edges:
        raise RFMError("the plan is not final: resolve its monetary ranks with refine() first")
    aggregated = _aggregated(totals, header, final.as_of)
    metrics = customer_metrics(aggregated, spec.scoring.monetary)
    scores = {}
    for metric in binning.METRICS:
        scores[metric] = binning.score_metric(
            getattr(metrics, metric),
            bins=spec.scoring.bins,
            method=spec.scoring.method,
            higher_is_better=metric != "recency",
            thresholds=np.asarray(final.edges[metric], dtype=np.float64),
        ).scores
    return result_table(
        aggregated,
        metrics,
        scores["recency"],
        scores["frequency"],
        scores["monetary"],
        spec.scoring.rules,
    )


def run_stats(spec: ScoringOptions, header: PartitionHeader, final: Plan) -> RunStats:
    """The run's :class:`rfm_fast.RunStats`, as :func:`rfm_fast.score` reports them."""
    whole_input = Aggregated(
        totals=None,  # type: ignore[arg-type]  # the stats need no per-customer totals
        counts=header.counts,
        axis=arrow.TimeAxis.of(header.time_type),
        as_of_ticks=final.as_of,
        as_of_limit=header.as_of_limit,
        customer=header.customer,
        customer_type=header.customer_type,
        returns=spec.reading.returns,
    )
    return result_stats(whole_input, final.customers, final.empty, spec.scoring, final.only_returns)


def check_columns(spec: ScoringOptions, available: Sequence[str]) -> None:
    """Raise RFMError when a column the run reads is not among ``available``."""
    missing = [c for c in spec.reading.columns.names_in(available) if c not in available]
    if missing:
        raise RFMError(
            f"column(s) {', '.join(map(repr, missing))} not found; the DataFrame has columns: "
            + ", ".join(repr(c) for c in available)
        )


def final_plan(
    spec: ScoringOptions,
    as_of: int | None,
    histogram_bytes: Iterable[bytes],
    candidates_of: Callable[[Plan], Iterable[bytes]],
) -> Plan:
    """Steps 3 and 4 on the driver: merge the partitions' histograms (as bytes), plan, and, when
    monetary ranks are pending, resolve them with ``candidates_of(plan)``, the partitions'
    candidates as bytes (an engine job, run only then)."""
    merged = empty_histograms(spec)
    for blob in histogram_bytes:
        merged = merged + Histograms.from_bytes(blob)
    current = plan(spec, merged, as_of)
    parts = []
    if current.pending:
        parts = [Candidates.from_bytes(blob) for blob in candidates_of(current)]
    return refine(spec, current, parts)


def score_partitions(
    spec: ScoringOptions,
    partitions: Iterable[Iterable[pa.RecordBatch]],
    schema: pa.Schema,
    buckets: int = 4,
) -> RFMResult:
    """All six steps in this process, over input partitions that may hold any rows: the
    reference that the Spark and Dask integrations are tested against."""
    combined = [combine_partition(spec, batches, schema, buckets) for batches in partitions]
    header = merge_headers(h for _, h in combined)
    by_bucket: list[list[bytes]] = [[] for _ in range(buckets)]
    for pieces, _ in combined:
        for bucket, piece in pieces:
            by_bucket[bucket].append(piece)
    parts = [bucket_totals(merge_pieces(spec, pieces), header) for pieces in by_bucket]
    as_of = as_of_ticks(header)
    final = final_plan(
        spec,
        as_of,
        (histograms_of(spec, t, header, as_of).to_bytes() for t in parts),
        lambda current: [candidates(spec, t, header, current).to_bytes() for t in parts],
    )
    tables = [apply(spec, totals, header, final) for totals in parts]
    return RFMResult(
        pa.concat_tables(tables), final.edges, run_stats(spec, header, final), spec.scoring.rules
    )


# ---------------------------------------------------------------------- bytes
def _arrays_to_bytes(columns: dict[str, np.ndarray]) -> bytes:
    """Named 1-d arrays of any lengths as one Arrow IPC stream (one column per array)."""
    fields_, arrays = [], []
    for name, values in columns.items():
        fields_.append(pa.field(name, pa.list_(pa.from_numpy_dtype(values.dtype))))
        arrays.append(pa.array([values]))
    return table_to_ipc(pa.Table.from_arrays(arrays, schema=pa.schema(fields_)))


def _arrays_from_bytes(data: bytes) -> dict[str, np.ndarray]:
    table = table_from_ipc(data)
    return {
        name: np.asarray(table.column(name)[0].values.to_numpy(zero_copy_only=False))
        for name in table.column_names
    }
