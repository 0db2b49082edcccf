"""The public scoring API: :func:`score` and :class:`RFMResult`."""

from __future__ import annotations

import datetime as dt
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from rfm_fast import arrow, binning
from rfm_fast._kernels.config import load_numba_in_background
from rfm_fast.aggregation import (
    INT64_MAX,
    SMALL_INPUT_ROWS,
    CustomerAggregator,
    CustomerTotals,
    RowCounts,
)
from rfm_fast.arrays import _score_checked
from rfm_fast.errors import RFMError, RFMWarning
from rfm_fast.io import DEFAULT_BATCH_ROWS, open_source, prefetched
from rfm_fast.segments import SegmentsSpec, assign_segments, resolve_rules
from rfm_fast.timing import PhaseTime, PhaseTimer

FREQUENCIES = ("orders", "days")
MONETARIES = ("sum", "mean")
ProgressCallback = Callable[[int, int | None], None]
"""Called after each batch with (rows read so far, total rows or None when unknown)."""


@dataclass(frozen=True)
class RunStats:
    """What a run did: rows read, used and dropped by reason, customers, as_of, empty scores."""

    rows_read: int
    rows_used: int
    dropped: dict[str, int]
    null_amount: int
    customers: int
    as_of: dt.datetime | None
    empty_bins: dict[str, list[int]]
    bins: int
    method: str
    monetary: str = "sum"
    """``"sum"`` or ``"mean"``: what the ``monetary`` column holds."""
    timings: dict[str, PhaseTime] = field(default_factory=dict, compare=False)
    """Wall and CPU seconds per phase (``read``, ``aggregate``, ``finish``, ``score``; see
    :mod:`rfm_fast.timing`). Not compared: two runs with equal results have equal stats."""

    def as_dict(self) -> dict[str, Any]:
        """A plain dict (``as_of`` as ISO-8601 text), e.g. for JSON."""
        return {
            "rows_read": self.rows_read,
            "rows_used": self.rows_used,
            "dropped": dict(self.dropped),
            "null_amount": self.null_amount,
            "customers": self.customers,
            "as_of": None if self.as_of is None else self.as_of.isoformat(),
            "empty_bins": {k: list(v) for k, v in self.empty_bins.items()},
            "bins": self.bins,
            "method": self.method,
            "monetary": self.monetary,
            "timings": {k: {"wall_s": t.wall_s, "cpu_s": t.cpu_s} for k, t in self.timings.items()},
        }


@dataclass(frozen=True)
class RFMResult:
    """The result of :func:`score`.

    Attributes
    ----------
    table : pyarrow.Table
        One row per customer, sorted by customer key: the customer column under its input name,
        then ``recency, frequency, monetary, first_purchase, last_purchase, tenure, R, F, M,
        rfm_cell, rfm_score, segment``.
    edges : dict of str to list of float
        Per metric (``recency``, ``frequency``, ``monetary``), the ``bins - 1`` edges that
        reproduce the scores (see docs/semantics.md, "Edges returned").
    stats : RunStats
        Rows read, used and dropped by reason, customers, ``as_of`` and the empty scores.
    """

    table: pa.Table
    edges: dict[str, list[float]]
    stats: RunStats

    def to_pandas(self):
        """The table as a pandas DataFrame (needs pandas: ``pip install rfm_fast[reference]``)."""
        return self.table.to_pandas()

    def segment_counts(self) -> list[tuple[str, int]]:
        """(segment, customers) for every segment name, in rule order, then "Other"."""
        column = self.table.column("segment").combine_chunks()
        codes = arrow.primitive_values(column.indices, column.indices.type.to_pandas_dtype())
        counts = np.bincount(codes, minlength=len(column.dictionary))
        return [
            (str(name), int(c))
            for name, c in zip(column.dictionary.to_pylist(), counts, strict=True)
        ]

    def __repr__(self) -> str:
        s = self.stats
        return (
            f"RFMResult(customers={s.customers}, rows_used={s.rows_used}, "
            f"as_of={s.as_of.isoformat() if s.as_of else None}, bins={s.bins}, "
            f"method={s.method!r})"
        )


@dataclass(frozen=True)
class _Columns:
    """The columns a run reads, resolved against the input's column names."""

    customer: str
    timestamp: str
    amount: tuple[str, ...]  # one column, or the two factors of a product
    order: str | None

    @property
    def names(self) -> list[str]:
        names = [self.customer, self.timestamp, *self.amount]
        if self.order is not None:
            names.append(self.order)
        return list(dict.fromkeys(names))


def _needs_parsing(ts_type: pa.DataType, timestamp_format: str | None) -> bool:
    """Text timestamps, or integers such as 20240131 when a format is given."""
    return arrow.is_text_type(ts_type) or (
        timestamp_format is not None and pa.types.is_integer(ts_type)
    )


def _resolve_columns(
    available: Sequence[str], customer: str, timestamp: str, amount: str, order: str | None
) -> _Columns:
    def need(role: str, name: str) -> str:
        if not isinstance(name, str) or not name:
            raise RFMError(f"the {role} column must be given as a column name; got {name!r}")
        if name not in available:
            raise RFMError(
                f"{role} column {name!r} not found; the input has columns: "
                + ", ".join(repr(c) for c in available)
            )
        return name

    if isinstance(amount, str) and amount not in available and "*" in amount:
        factors = tuple(part.strip() for part in amount.split("*"))
        if len(factors) != 2 or not all(factors):
            raise RFMError(
                f"amount {amount!r}: a product is written as two column names, 'Quantity*UnitPrice'"
            )
        amounts = tuple(need("amount factor", f) for f in factors)
    else:
        amounts = (need("amount", amount),)
    return _Columns(
        need("customer", customer),
        need("timestamp", timestamp),
        amounts,
        None if order is None else need("order", order),
    )


def _check_types(schema: pa.Schema, columns: _Columns, timestamp_format: str | None) -> None:
    def found(name: str) -> str:
        return f"column {name!r} has type {schema.field(name).type}"

    if not arrow.is_key_type(schema.field(columns.customer).type):
        raise RFMError(
            f"customer {found(columns.customer)}; expected an integer, text or dictionary "
            "column (cast floats holding ids to integers first)"
        )
    ts_type = schema.field(columns.timestamp).type
    if not (arrow.is_time_type(ts_type) or _needs_parsing(ts_type, timestamp_format)):
        raise RFMError(
            f"timestamp {found(columns.timestamp)}; expected date32, date64, timestamp or text, "
            "or integers such as 20240131 with timestamp_format='%Y%m%d' (CLI: "
            "--timestamp-format '%Y%m%d')"
        )
    for name in columns.amount:
        if not arrow.is_amount_type(schema.field(name).type):
            raise RFMError(f"amount {found(name)}; expected an integer, float or decimal column")
    if columns.order is not None and not arrow.is_key_type(schema.field(columns.order).type):
        raise RFMError(f"order {found(columns.order)}; expected an integer, text or dictionary")


def score(
    data: Any,
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
    segments: SegmentsSpec = "default",
    thresholds: dict[str, Sequence[float]] | None = None,
    timestamp_format: str | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    threads: int | None = None,
    progress: ProgressCallback | None = None,
) -> RFMResult:
    """Score every customer of an order history by recency, frequency and monetary value.

    The input is read batch by batch and folded into per-customer totals by compiled kernels;
    the scores follow the contract of ``docs/semantics.md``.

    Parameters
    ----------
    data : table, data frame, mapping or path
        A pyarrow Table, RecordBatch or RecordBatchReader; a pandas or polars DataFrame; a
        mapping of column name to NumPy array; or a path (str or PathLike) to a Parquet, CSV
        (also ``.csv.gz``) or Arrow IPC/Feather file.
    customer : str
        Customer column: integers, text or dictionary-encoded. Null customers are dropped and
        counted.
    timestamp : str
        Purchase time: ``date32``, ``date64``, ``timestamp`` of any unit with or without a time
        zone, or text (ISO-8601, or see ``timestamp_format``).
    amount : str
        Amount column (integer, float or decimal), or the product of two columns written
        ``"Quantity*UnitPrice"``. Null and NaN amounts are left out of the sum.
    order : str, optional
        Order id column; frequency then counts distinct orders instead of rows.
    as_of : datetime, date, numpy.datetime64 or str, optional
        End of the observation window. Default: the latest timestamp plus one day. Rows after
        it are left out and counted.
    bins : int, default 5
        Scores run from 1 to ``bins`` (2..9); ``bins`` is best.
    method : {"exact", "split", "approx"}, default "exact"
        ``"exact"``: equal values get equal scores (ties can leave scores empty). ``"split"``:
        equal-count bins like SQL ``NTILE``, ties broken by customer key. ``"approx"``: the
        exact rule over a mergeable sketch: integer metrics exactly, monetary values within a
        relative 0.5% of each other may tie (see :mod:`rfm_fast.sketch`).
    frequency : {"orders", "days"}, default "orders"
        Count distinct orders (rows without ``order``), or distinct purchase days.
    monetary : {"sum", "mean"}, default "sum"
        Total of the amounts, or the total divided by the frequency.
    segments : "default", None, path or sequence of SegmentRule, default "default"
        Segment rules: the default 5-bin map, none (every customer is "Other"), a TOML file, or
        rules built in Python.
    thresholds : dict of str to list of float, optional
        Explicit edges for some metrics, e.g. ``{"recency": [30, 90, 180, 365]}``.
    timestamp_format : str, optional
        ``strptime`` format of a text timestamp column, such as ``"%Y%m%d"``.
    batch_rows : int, default 1048576
        Rows per batch when reading files and large tables.
    threads : int, optional
        Threads that aggregate (default: one per core). The result is the same for any number;
        the next batch is read and decoded in a thread of its own meanwhile.
    progress : callable, optional
        Called after each batch with (rows read, total rows or None).

    Returns
    -------
    RFMResult
        ``.table`` (one row per customer, sorted by key), ``.edges`` and ``.stats``.

    Raises
    ------
    RFMError
        On bad options or input: missing columns, wrong column types, infinite amounts,
        unparseable ``as_of``, unreadable files, invalid segment rules. The message says what
        was expected and what was found.

    Examples
    --------
    >>> import datetime as dt
    >>> import pyarrow as pa
    >>> import rfm_fast
    >>> orders = pa.table({
    ...     "customer": [1, 1, 2, 3, 3, 3],
    ...     "day": pa.array([dt.date(2024, 1, d) for d in (2, 20, 5, 1, 10, 30)]),
    ...     "amount": [10.0, 15.0, 7.5, 20.0, 5.0, 40.0],
    ... })
    >>> result = rfm_fast.score(orders, customer="customer", timestamp="day", amount="amount",
    ...                         bins=3, segments=None)
    >>> columns = ["customer", "recency", "frequency", "monetary", "rfm_cell"]
    >>> result.table.select(columns).to_pylist()[0]
    {'customer': 1, 'recency': 11, 'frequency': 2, 'monetary': 25.0, 'rfm_cell': '222'}
    >>> result.stats.as_of
    datetime.datetime(2024, 1, 31, 0, 0)
    """
    bins, method, user_edges, rules = _scoring_options(bins, method, monetary, thresholds, segments)
    threads = _reading_options(frequency, batch_rows, threads)

    aggregated = _aggregate(
        data,
        customer=customer,
        timestamp=timestamp,
        amount=amount,
        order=order,
        as_of=as_of,
        frequency=frequency,
        timestamp_format=timestamp_format,
        batch_rows=batch_rows,
        threads=threads,
        progress=progress,
    )
    return _result(aggregated, bins, method, monetary, user_edges, rules)


def _scoring_options(
    bins: int,
    method: str,
    monetary: str,
    thresholds: dict[str, Sequence[float]] | None,
    segments: SegmentsSpec,
) -> tuple[int, str, dict[str, np.ndarray], Any]:
    """Checked scoring options: (bins, method, thresholds, segment rules)."""
    bins = binning.check_bins(bins)
    method = binning.check_method(method)
    if monetary not in MONETARIES:
        raise RFMError(f"monetary must be one of {', '.join(MONETARIES)}; got {monetary!r}")
    return bins, method, binning.check_thresholds(thresholds, bins), resolve_rules(segments, bins)


def _reading_options(frequency: str, batch_rows: int, threads: int | None) -> int:
    """Check the reading options; returns the number of threads."""
    if frequency not in FREQUENCIES:
        raise RFMError(f"frequency must be one of {', '.join(FREQUENCIES)}; got {frequency!r}")
    if not isinstance(batch_rows, int) or batch_rows < 1:
        raise RFMError(f"batch_rows must be a positive integer; got {batch_rows!r}")
    if threads is None:
        threads = os.cpu_count() or 1
    if not isinstance(threads, int) or threads < 1:
        raise RFMError(f"threads must be a positive integer; got {threads!r}")
    return threads


@dataclass(frozen=True)
class BatchColumns:
    """One batch's columns as the kernels take them (see :func:`_aggregate`'s observer)."""

    customers: arrow.KeyColumn
    ticks: np.ndarray
    ticks_valid: arrow.Validity
    amounts: np.ndarray
    amounts_valid: arrow.Validity
    distinct: arrow.KeyColumn | None  # order ids (text ones as dense ids), or local days
    as_of_limit: int  # rows with later ticks are left out


@dataclass
class _Aggregated:
    """Per-customer totals and what is needed to score them."""

    totals: CustomerTotals
    counts: RowCounts
    axis: arrow.TimeAxis
    as_of_ticks: int | None  # the user's as_of, or the latest timestamp plus one day
    as_of_limit: int | None  # the user's as_of only: rows after it were left out
    customer: str  # the customer column's name
    customer_type: pa.DataType
    timer: PhaseTimer = field(default_factory=PhaseTimer)  # phases so far
    threads: int = 1  # for the steps after aggregation


def _aggregate(
    data: Any,
    *,
    customer: str,
    timestamp: str,
    amount: str,
    order: str | None,
    as_of: Any,
    frequency: str,
    timestamp_format: str | None,
    batch_rows: int,
    threads: int,
    progress: ProgressCallback | None = None,
    keep_parts: bool = False,
    observer: Callable[[BatchColumns], None] | None = None,
) -> _Aggregated:
    """Read ``data`` batch by batch into per-customer totals (``keep_parts``: also the exact
    sums and distinct pairs, for a mergeable state). ``observer`` also sees each batch's
    columns, once they have been folded in."""

    timer = PhaseTimer()
    load_numba_in_background()
    source = open_source(
        data,
        batch_rows=batch_rows,
        text_columns=() if order is None else (order,),
        timestamp_format=timestamp_format,
        timestamp_column=timestamp,
    )
    columns = _resolve_columns(source.column_names, customer, timestamp, amount, order)
    schema, batches = source.open(columns.names)
    _check_types(schema, columns, timestamp_format)

    ts_type = schema.field(columns.timestamp).type
    text_timestamps = _needs_parsing(ts_type, timestamp_format)
    if text_timestamps:
        ts_type = pa.timestamp("us")  # refined by the first batch (text with offsets -> UTC)
    axis = arrow.TimeAxis.of(ts_type)
    as_of_ticks = None if as_of is None else axis.ticks_of(as_of)

    distinct = None
    if frequency == "days":
        distinct = "int"
    elif columns.order is not None:
        distinct = arrow.key_kind(schema.field(columns.order).type)
    small = source.total_rows is not None and source.total_rows < SMALL_INPUT_ROWS
    aggregator = CustomerAggregator(
        arrow.key_kind(schema.field(columns.customer).type),
        distinct,
        INT64_MAX if as_of_ticks is None else as_of_ticks,
        threads=threads,
        partition_bits=0 if small else None,
        expected_rows=source.total_rows,
    )

    loop_wall, loop_cpu = time.perf_counter(), time.process_time()
    # Text and dictionary order ids map to dense ids in one table, in batch order: the reader
    # thread does it for the next batch while this one is folded (its CPU time counts as read).
    dense_orders = distinct == "string" or (
        columns.order is not None and pa.types.is_dictionary(schema.field(columns.order).type)
    )

    def with_order_ids(batch: pa.RecordBatch) -> tuple[pa.RecordBatch, arrow.IntColumn | None]:
        if not dense_orders or frequency == "days":
            return batch, None
        orders = arrow.key_column(batch.column(columns.order))
        return batch, aggregator.dense_order_ids(orders)

    prepared = (with_order_ids(batch) for batch in batches)  # run by the reader thread
    for batch, order_ids in prefetched(prepared, timer=timer):
        ts_array = batch.column(columns.timestamp)
        if text_timestamps:
            ts_array = arrow.parse_text_timestamps(ts_array, columns.timestamp, timestamp_format)
            if aggregator.rows_read == 0 and ts_array.type != axis.type:
                axis = arrow.TimeAxis.of(ts_array.type)
                as_of_ticks = None if as_of is None else axis.ticks_of(as_of)
                aggregator.as_of_limit = INT64_MAX if as_of_ticks is None else as_of_ticks
            ts_array = ts_array.cast(axis.type)
        _fold(aggregator, batch, ts_array, axis, columns, frequency, observer, order_ids)
        if progress is not None:
            progress(aggregator.rows_read, source.total_rows)

    read = timer.phases.get("read", PhaseTime(0.0, 0.0))
    timer.add(
        "aggregate",
        time.perf_counter() - loop_wall - read.wall_s,
        time.process_time() - loop_cpu - read.cpu_s,
    )
    counts = aggregator.row_counts()
    with timer.measure("finish"):
        totals = aggregator.finish(keep_sums=keep_parts, keep_pairs=keep_parts)
    limit = as_of_ticks
    if as_of_ticks is None and counts.max_timestamp is not None:
        as_of_ticks = counts.max_timestamp + axis.ticks_per_day
    return _Aggregated(
        totals,
        counts,
        axis,
        as_of_ticks,
        limit,
        columns.customer,
        schema.field(columns.customer).type,
        timer,
        threads,
    )


def _fold(
    aggregator: CustomerAggregator,
    batch: pa.RecordBatch,
    ts_array: pa.Array,
    axis: arrow.TimeAxis,
    columns: _Columns,
    frequency: str,
    observer: Callable[[BatchColumns], None] | None = None,
    order_ids: arrow.IntColumn | None = None,
) -> None:
    first_row = aggregator.rows_read  # of this batch, counting from 0
    if len(columns.amount) == 2:
        factors = [batch.column(name) for name in columns.amount]
        for name, factor in zip(columns.amount, factors, strict=True):
            bad = arrow.first_infinite(factor)
            if bad >= 0:
                raise _bad_amount(name, first_row + bad, float(factor[bad].as_py()))
        amount_array = arrow.product_of(*factors)
    else:
        amount_array = batch.column(columns.amount[0])
    customers = arrow.key_column(batch.column(columns.customer))
    ticks, ticks_valid = axis.ticks(ts_array)
    amounts, amounts_valid = arrow.amount_values(amount_array)
    if frequency == "days":
        distinct = arrow.IntColumn(axis.local_days(ts_array), ticks_valid)
    elif order_ids is not None:  # text or dictionary order ids, already as dense ids
        distinct = order_ids
    elif columns.order is not None:
        distinct = arrow.key_column(batch.column(columns.order))
    else:
        distinct = None
    bad = aggregator.update(customers, ticks, ticks_valid, amounts, amounts_valid, distinct)
    if bad >= 0:
        raise _bad_amount("*".join(columns.amount), first_row + bad, amounts[bad])
    if observer is not None:
        observer(
            BatchColumns(
                customers,
                ticks,
                ticks_valid,
                amounts,
                amounts_valid,
                distinct,
                aggregator.as_of_limit,
            )
        )


def _bad_amount(name: str, row: int, value: Any) -> RFMError:
    """The error for an infinite or too large amount in ``row`` (of the whole input)."""
    if np.isinf(value):
        what = "an infinite value"
    else:
        what = f"a value too large to be summed exactly ({value}; the limit is 2**62)"
    return RFMError(
        f"amount column {name!r} has {what} in row {row} (counting from 0); remove or fix that row"
    )


def _result(
    aggregated: _Aggregated,
    bins: int,
    method: str,
    monetary_mode: str,
    user_edges: dict[str, np.ndarray],
    rules,
) -> RFMResult:
    counts = aggregated.counts
    if not len(aggregated.totals):
        warnings.warn(
            f"no usable rows: {counts.rows_read} read, {counts.null_customer} without customer, "
            f"{counts.null_timestamp} without timestamp, {counts.after_as_of} after as_of; "
            "the result is empty",
            RFMWarning,
            stacklevel=3,
        )
    timer = aggregated.timer
    with timer.measure("score"):
        metrics = _metrics(aggregated, monetary_mode)
        scores = _score_checked(
            metrics.recency,
            metrics.frequency,
            metrics.monetary,
            bins,
            method,
            user_edges,
            aggregated.threads,
        )
        table = _table(aggregated, metrics, scores.R, scores.F, scores.M, rules)
    stats = _stats(
        aggregated, len(aggregated.totals), scores.empty_bins, bins, method, monetary_mode
    )
    return RFMResult(table, scores.edges, stats)


@dataclass(frozen=True)
class _Metrics:
    """The raw metrics of each customer (in key order)."""

    recency: np.ndarray
    tenure: np.ndarray
    frequency: np.ndarray
    monetary: np.ndarray


def _metrics(aggregated: _Aggregated, monetary_mode: str) -> _Metrics:
    totals, as_of_ticks = aggregated.totals, aggregated.as_of_ticks
    if len(totals):
        ticks_per_day = aggregated.axis.ticks_per_day
        recency = (as_of_ticks - totals.last) // ticks_per_day
        tenure = (as_of_ticks - totals.first) // ticks_per_day
    else:
        recency = tenure = np.zeros(0, dtype=np.int64)
    frequency = totals.rows if totals.distinct is None else totals.distinct
    monetary = totals.monetary
    if monetary_mode == "mean":
        monetary = monetary / np.maximum(frequency, 1)
    return _Metrics(recency, tenure, frequency, monetary)


def _table(
    aggregated: _Aggregated, metrics: _Metrics, r: np.ndarray, f: np.ndarray, m: np.ndarray, rules
) -> pa.Table:
    """The result table: customer, metrics, purchase times, scores, cell and segment."""
    totals, axis = aggregated.totals, aggregated.axis
    return pa.table(
        {
            aggregated.customer: _customer_output(totals.keys, aggregated.customer_type),
            "recency": arrow.from_numpy(metrics.recency, pa.int64()),
            "frequency": arrow.from_numpy(metrics.frequency, pa.int64()),
            "monetary": arrow.from_numpy(metrics.monetary, pa.float64()),
            "first_purchase": axis.to_arrow(totals.first),
            "last_purchase": axis.to_arrow(totals.last),
            "tenure": arrow.from_numpy(metrics.tenure, pa.int64()),
            "R": arrow.from_numpy(r),
            "F": arrow.from_numpy(f),
            "M": arrow.from_numpy(m),
            "rfm_cell": _cells(r, f, m),
            "rfm_score": arrow.from_numpy(r.astype(np.int16) + f + m, pa.int16()),
            "segment": assign_segments(rules, {"R": r, "F": f, "M": m}),
        }
    )


def _stats(
    aggregated: _Aggregated,
    customers: int,
    empty_bins: dict[str, list[int]],
    bins: int,
    method: str,
    monetary_mode: str,
) -> RunStats:
    counts, as_of_ticks = aggregated.counts, aggregated.as_of_ticks
    return RunStats(
        rows_read=counts.rows_read,
        rows_used=counts.rows_used,
        dropped={
            "null_customer": counts.null_customer,
            "null_timestamp": counts.null_timestamp,
            "after_as_of": counts.after_as_of,
        },
        null_amount=counts.null_amount,
        customers=customers,
        as_of=None if as_of_ticks is None else aggregated.axis.to_datetime(as_of_ticks),
        empty_bins=empty_bins,
        bins=bins,
        method=method,
        monetary=monetary_mode,
        timings=aggregated.timer.result(),
    )


def _customer_output(keys: np.ndarray | pa.Array, input_type: pa.DataType) -> pa.Array:
    """Customer keys in the input's type (dictionaries decoded, string_view as string)."""
    value_type = input_type.value_type if pa.types.is_dictionary(input_type) else input_type
    if isinstance(keys, np.ndarray):
        return arrow.from_numpy(keys).cast(value_type)
    if keys.type == value_type or pa.types.is_large_string(value_type):
        return keys
    return keys.cast(pa.string())


def _cells(r: np.ndarray, f: np.ndarray, m: np.ndarray) -> pa.Array:
    """The text cells "RFM" (one digit each) built as one Arrow string buffer, no Python loop."""
    n = r.shape[0]
    chars = np.empty((n, 3), dtype=np.uint8)
    chars[:, 0] = r + ord("0")
    chars[:, 1] = f + ord("0")
    chars[:, 2] = m + ord("0")
    offsets = np.arange(0, 3 * n + 1, 3, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chars))
