"""The steps of a scoring run, each a function named for what it returns.

:func:`read_totals` reads an input batch by batch into per-customer totals
(:class:`Aggregated`); :func:`scored_result` turns totals into an :class:`RFMResult`, through
:func:`customer_metrics`, the binning of :mod:`rfm_fast.core.arrays`, :func:`result_table` and
:func:`result_stats`. :func:`rfm_fast.score` is the two in a row; :class:`rfm_fast.CustomerState`
and the partition engine (:mod:`rfm_fast.engines.distributed`) run them apart, and
:mod:`rfm_fast.clv` reads with an observer of each batch.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rfm_fast._kernels import dispatch
from rfm_fast.core import arrow
from rfm_fast.core.aggregator import (
    INT64_MAX,
    SMALL_INPUT_ROWS,
    CustomerAggregator,
    CustomerTotals,
    RowCounts,
    partition_bits_for,
)
from rfm_fast.core.amounts import amount_numbers, amount_text_columns
from rfm_fast.core.arrays import score_checked
from rfm_fast.core.io import (
    CsvReading,
    ReadAgain,
    Source,
    open_source,
    prefetched,
    require_rereadable,
)
from rfm_fast.core.options import ReadOptions, ResolvedColumns, ScoreOptions
from rfm_fast.core.result import RESULT_COLUMNS, RFMResult, RunStats
from rfm_fast.core.segments import LOST_DAYS, assign_segments, recent_segments_long_silent
from rfm_fast.core.timing import PhaseTime, PhaseTimer
from rfm_fast.errors import RFMDataWarning, RFMError, RFMWarning

INT64_MIN = int(np.iinfo(np.int64).min)

ProgressCallback = Callable[[int, int | None], None]
"""Called after each batch with (rows read so far, total rows or None when unknown)."""


def _needs_parsing(ts_type: pa.DataType, timestamp_format: str | None) -> bool:
    """Text timestamps, or integers such as 20240131 when a format is given."""
    return arrow.is_text_type(ts_type) or (
        timestamp_format is not None and pa.types.is_integer(ts_type)
    )


def check_types(schema: pa.Schema, columns: ResolvedColumns, timestamp_format: str | None) -> None:
    """Raise RFMError, naming the column, its type and the types expected, where a column of
    ``columns`` has a type that a run cannot read as its role."""

    def found(name: str) -> str:
        return f"column {name!r} has type {schema.field(name).type}"

    if not arrow.is_key_type(schema.field(columns.customer).type):
        raise RFMError(
            f"customer {found(columns.customer)}; expected an integer, text or dictionary "
            "column (or floats that are whole numbers)"
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


_NULL_COLUMN_TYPES = {
    "customer": pa.int64(),
    "timestamp": pa.timestamp("us"),
    "amount": pa.float64(),
    "order": pa.int64(),
}
"""What a column of nulls only (a CSV file with a header and no rows, an empty column) is read
as: every row of it is then dropped or counted as the docs say, never refused for its type."""


def conformed_schema(
    schema: pa.Schema, columns: ResolvedColumns
) -> tuple[pa.Schema, dict[str, str]]:
    """``schema`` with the types the run reads its columns as, and the columns to convert:
    columns of nulls only get a type of their role, float customer ids are read as int64 (when
    every one is a whole number, see :func:`whole_number_ids`)."""
    roles = {columns.customer: "customer", columns.timestamp: "timestamp"}
    roles.update({name: "amount" for name in columns.amount})
    if columns.order is not None:
        roles[columns.order] = "order"
    conform: dict[str, str] = {}
    for name, role in roles.items():
        field, at = schema.field(name), schema.get_field_index(name)
        if pa.types.is_null(field.type):
            schema = schema.set(at, field.with_type(_NULL_COLUMN_TYPES[role]))
            conform[name] = "nulls"
        elif role == "customer" and pa.types.is_floating(field.type):
            schema = schema.set(at, field.with_type(pa.int64()))
            conform[name] = "whole numbers"
        elif role == "amount" and arrow.is_text_type(field.type):
            schema = schema.set(at, field.with_type(pa.float64()))
            conform[name] = "text amounts"
    return schema, conform


def conformed_batches(
    batches: Iterator[pa.RecordBatch],
    conform: dict[str, str],
    schema: pa.Schema,
    options: ReadOptions | None = None,
) -> Iterator[pa.RecordBatch]:
    """The batches with the columns of ``conform`` converted to their type in ``schema``."""
    first_row = 0
    amount_format = None if options is None else options.amount_format
    decimal = "." if options is None else options.decimal
    for batch in batches:
        arrays = list(batch.columns)
        for name, how in conform.items():
            at = batch.schema.get_field_index(name)
            wanted = schema.field(name).type
            if how == "nulls":
                arrays[at] = pa.nulls(batch.num_rows, wanted)
            elif how == "text amounts":
                column = batch.column(at)
                arrays[at] = amount_numbers(column, name, first_row, amount_format, decimal)
            else:
                arrays[at] = whole_number_ids(batch.column(at), name, first_row)
        first_row += batch.num_rows
        yield pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def whole_number_ids(column: pa.Array, name: str, first_row: int = 0) -> pa.Array:
    """Float customer ids (pandas makes integer ids float64 where some are missing) as int64,
    nulls and NaN as null.

    Raises
    ------
    RFMError
        Naming the first id that is not a whole number below 2**53 in absolute value, and its
        row (counting from 0): such a value is not an id that was meant.
    """
    values = column.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    valid = ~np.isnan(values)
    bad = valid & ((np.abs(values) >= 2.0**53) | (values != np.trunc(values)))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        if values[row] == np.trunc(values[row]):  # too large: a long id read as a float
            raise RFMError(
                f"customer column {name!r} holds floats, and row {first_row + row} (counting "
                f"from 0) has {float(values[row])!r}, too large to be an exact id (a CSV reader "
                "reads whole numbers beyond int64, such as 20-digit ids, as floats): read the "
                f"ids as text with schema='{name}=string' (CLI: --schema {name}=string), or "
                "cast a data frame's ids to int64 or text"
            )
        raise RFMError(
            f"customer column {name!r} holds floats; they are read as ids when each is a whole "
            f"number, but row {first_row + row} (counting from 0) has {float(values[row])!r}: fix "
            "that row, or cast the ids to integers or text"
        )
    ids = np.where(valid, values, 0.0).astype(np.int64)
    return pa.array(ids, pa.int64(), mask=~valid)


@dataclass(frozen=True)
class BatchColumns:
    """One batch's columns as the kernels take them (see :func:`read_totals`'s observer)."""

    customers: arrow.KeyColumn
    ticks: np.ndarray
    ticks_valid: arrow.Validity
    amounts: np.ndarray
    amounts_valid: arrow.Validity
    distinct: arrow.KeyColumn | None  # order ids (text ones as dense ids), or local days
    as_of_limit: int  # rows with later ticks are left out
    order_keys: arrow.KeyColumn | None = None  # text or dictionary order ids as read


@dataclass
class Aggregated:
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
    returns: str = "net"  # how rows with a negative amount were taken
    window: int | None = None  # days: rows more than this before as_of were left out
    before_window: int = 0  # those rows (also in counts.rows_read)
    delimiters_guessed: dict[str, str] = field(default_factory=dict)  # CSV file: delimiter


def read_totals(
    data: Any,
    options: ReadOptions,
    *,
    progress: ProgressCallback | None = None,
    keep_parts: bool = False,
    observer: Callable[[BatchColumns], None] | None = None,
    on_restart: Callable[[], None] | None = None,
) -> Aggregated:
    """Read ``data`` batch by batch into per-customer totals.

    Parameters
    ----------
    data : table, data frame, mapping or path
        Any input :func:`rfm_fast.score` takes.
    options : ReadOptions
        The columns and how to read them.
    progress : callable, optional
        Called after each batch with (rows read, total rows or None).
    keep_parts : bool, default False
        Also keep the exact sums and the distinct pairs, for a mergeable state.
    observer : callable, optional
        Sees each batch's columns (:class:`BatchColumns`) once they have been folded in.

    Returns
    -------
    Aggregated
        The totals, row counts, time axis and ``as_of``, with the phases timed so far.

    Notes
    -----
    A CSV file whose types change far into it (ids that are numbers and then ``C17``, whole
    amounts and then ``2.5``), or whose quoted values hold line breaks, is read again from
    the start with the wider types (and a warning); ``on_restart`` is called before each
    new read, for an ``observer`` to forget what it saw.
    """
    csv = csv_reading(options)
    while True:
        try:
            return _read_totals_once(data, options, csv, progress, keep_parts, observer)
        except ReadAgain:
            if on_restart is not None:
                on_restart()


def csv_reading(options: ReadOptions) -> CsvReading:
    """How a run reads CSV files, before it has learned anything of them."""
    column_types = dict(options.column_types)
    if options.amount_format is not None or options.decimal != ".":
        # amounts in a format the user named are text, read by its grammar, never numbers
        # that Arrow inferred with a decimal point
        for name in amount_text_columns(options.columns):
            column_types.setdefault(name, pa.string())
    return CsvReading(
        delimiter=options.delimiter,
        column_types=column_types,
        given=frozenset(options.column_types),
        ids=(options.columns.customer,),
    )


def _read_totals_once(
    data: Any,
    options: ReadOptions,
    csv: CsvReading,
    progress: ProgressCallback | None,
    keep_parts: bool,
    observer: Callable[[BatchColumns], None] | None,
) -> Aggregated:
    as_of, frequency, timestamp_format = options.as_of, options.frequency, options.timestamp_format
    timer = PhaseTimer()
    dispatch.prepare()
    source = open_source(
        data,
        batch_rows=options.batch_rows,
        text_columns=() if options.columns.order is None else (options.columns.order,),
        timestamp_format=timestamp_format,
        timestamp_column=options.columns.timestamp,
        csv=csv,
    )
    columns = options.columns.resolve(source.column_names)
    latest = None  # a window without as_of: the default as_of comes first, from a pass of its own
    if options.window is not None and as_of is None:
        require_rereadable(
            data,
            "a window without as_of",
            "give as_of (--as-of) with the window, or",
        )
        latest = latest_timestamp(source, columns, options)
    schema, batches = source.open(columns.names)
    schema, conform = conformed_schema(schema, columns)
    check_types(schema, columns, timestamp_format)
    if conform:
        batches = conformed_batches(batches, conform, schema, options)

    ts_type = schema.field(columns.timestamp).type
    text_timestamps = _needs_parsing(ts_type, timestamp_format)
    if text_timestamps:
        ts_type = pa.timestamp("us")  # refined by the first batch (text with offsets -> UTC)
    axis = arrow.TimeAxis.of(ts_type)
    as_of_ticks = None if as_of is None else axis.ticks_of(as_of)
    window = None if options.window is None else RowWindow(options.window)

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
        threads=options.threads,
        partition_bits=0 if small else partition_bits_for(source.expected_rows),
        expected_rows=source.total_rows,
        returns=options.returns,
    )

    loop_wall, loop_cpu = time.perf_counter(), time.process_time()
    # Text and dictionary order ids map to dense ids in one table, in batch order: the reader
    # thread does it for the next batch while this one is folded (its CPU time counts as read).
    dense_orders = frequency != "days" and (
        distinct == "string"
        or (columns.order is not None and pa.types.is_dictionary(schema.field(columns.order).type))
    )

    def with_order_ids(batch: pa.RecordBatch) -> tuple[pa.RecordBatch, arrow.IntColumn | None]:
        if not dense_orders:
            return batch, None
        orders = arrow.key_column(batch.column(columns.order))
        return batch, aggregator.dense_order_ids(orders)

    prepared = (with_order_ids(batch) for batch in batches)  # run by the reader thread
    first_batch = True
    for batch, order_ids in prefetched(prepared, timer=timer):
        ts_array = batch.column(columns.timestamp)
        if text_timestamps:
            ts_array = arrow.parse_text_timestamps(
                ts_array, columns.timestamp, timestamp_format, None if first_batch else axis.type
            )
            if first_batch and ts_array.type != axis.type:
                axis = arrow.TimeAxis.of(ts_array.type)
                as_of_ticks = None if as_of is None else axis.ticks_of(as_of)
                aggregator.as_of_limit = INT64_MAX if as_of_ticks is None else as_of_ticks
            ts_array = ts_array.cast(axis.type)
        # text: the first batch with a timestamp sets the axis (offsets or not) for the others
        first_batch = first_batch and ts_array.null_count == len(ts_array)
        if window is None:
            fold_batch(aggregator, batch, ts_array, axis, columns, frequency, observer, order_ids)
        else:
            if window.start is None:
                window.begin(axis, as_of_ticks, latest)
            window.fold(aggregator, batch, ts_array, axis, columns, frequency, observer, order_ids)
        if progress is not None:
            rows = aggregator.rows_read + (0 if window is None else window.left_out)
            progress(rows, source.total_rows)

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
    before_window = 0
    if window is not None:
        before_window = window.left_out
        counts = replace(counts, rows_read=counts.rows_read + before_window)
        if window.as_of is not None:
            as_of_ticks = window.as_of
    if as_of_ticks is None and counts.max_timestamp is not None:
        as_of_ticks = axis.default_as_of(counts.max_timestamp)
    return Aggregated(
        totals,
        counts,
        axis,
        as_of_ticks,
        limit,
        columns.customer,
        schema.field(columns.customer).type,
        timer,
        options.threads,
        options.returns,
        options.window,
        before_window,
        dict(csv.guessed),
    )


@dataclass(frozen=True)
class Latest:
    """The latest timestamp of the rows with a customer (in ``axis`` ticks)."""

    ticks: int
    axis: arrow.TimeAxis


def timed_batches(
    source: Source, columns: ResolvedColumns, options: ReadOptions
) -> Iterator[tuple[pa.RecordBatch, pa.Array, arrow.TimeAxis]]:
    """The batches of ``columns`` of ``source`` as a scoring pass reads them (types checked,
    columns conformed), each with its timestamps parsed to the run's time axis, and the axis.

    Raises
    ------
    RFMError
        As the scoring pass would, for columns of the wrong type or text that is not a time.
    """
    schema, batches = source.open(columns.names)
    schema, conform = conformed_schema(schema, columns)
    check_types(schema, columns, options.timestamp_format)
    if conform:
        batches = conformed_batches(batches, conform, schema, options)
    ts_type = schema.field(columns.timestamp).type
    text_timestamps = _needs_parsing(ts_type, options.timestamp_format)
    axis = None if text_timestamps else arrow.TimeAxis.of(ts_type)
    fixed = not text_timestamps  # text: the first batch with a timestamp sets the axis
    for batch in batches:
        ts_array = batch.column(columns.timestamp)
        if text_timestamps:
            ts_array = arrow.parse_text_timestamps(
                ts_array, columns.timestamp, options.timestamp_format, axis.type if fixed else None
            )
            if not fixed:  # as the scoring pass refines it
                axis = arrow.TimeAxis.of(ts_array.type)
                fixed = ts_array.null_count < len(ts_array)
            ts_array = ts_array.cast(axis.type)
        yield batch, ts_array, axis


def latest_timestamp(
    source: Source, columns: ResolvedColumns, options: ReadOptions
) -> Latest | None:
    """The latest timestamp of the rows of ``source`` that have a customer (returns included):
    the moment the default ``as_of`` is a day after. One pass over the customer and timestamp
    columns only; None when no row has both.

    Raises
    ------
    RFMError
        As the scoring pass would, for columns of the wrong type or text that is not a time.
    """
    keys = ResolvedColumns(columns.customer, columns.timestamp, (), None)
    latest, axis = None, None
    for batch, ts_array, axis in timed_batches(source, keys, options):
        both = pc.and_(batch.column(columns.customer).is_valid(), ts_array.is_valid())
        if pc.any(both).as_py():
            ticks, _ = axis.ticks(pc.filter(ts_array, both))
            most = int(ticks.max())
            latest = most if latest is None else max(latest, most)
    return None if latest is None else Latest(latest, axis)


class RowWindow:
    """Leaves out the rows more than ``days`` before ``as_of`` (``as_of - days <= timestamp``
    is kept), counting them, and folds the rest (see :func:`fold_batch`). A row without a
    customer or a timestamp is never left out here: it is dropped and counted for that."""

    def __init__(self, days: int) -> None:
        self.days = days
        self.start: int | None = None  # the first tick in the window
        self.as_of: int | None = None  # the default as_of, where the run had none
        self.left_out = 0
        self.rows_seen = 0

    def begin(self, axis: arrow.TimeAxis, as_of_ticks: int | None, latest: Latest | None) -> None:
        """Fix the window once the time axis is known (the first batch)."""
        if as_of_ticks is None:
            if latest is None:  # no row has a customer and a timestamp: nothing to leave out
                self.start = INT64_MIN
                return
            ticks = latest.ticks
            if latest.axis.type != axis.type:  # (both passes parse the same text alike)
                ticks = axis.ticks_of(np.datetime64(latest.ticks, latest.axis.unit))
            as_of_ticks = self.as_of = axis.default_as_of(ticks)
        if pa.types.is_date(axis.type):  # a column of dates counts whole days
            as_of_ticks -= as_of_ticks % axis.ticks_per_day
        self.start = max(as_of_ticks - self.days * axis.ticks_per_day, INT64_MIN)

    def fold(
        self,
        aggregator: CustomerAggregator,
        batch: pa.RecordBatch,
        ts_array: pa.Array,
        axis: arrow.TimeAxis,
        columns: ResolvedColumns,
        frequency: str,
        observer: Callable[[BatchColumns], None] | None,
        order_ids: arrow.IntColumn | None,
    ) -> None:
        """:func:`fold_batch` over the rows of ``batch`` inside the window."""
        ticks, valid = axis.ticks(ts_array)
        n = batch.num_rows
        before = (ticks < self.start) & valid.mask(n)
        before &= arrow.validity(batch.column(columns.customer)).mask(n)
        rows = None
        if before.any():
            keep = ~before
            rows = np.flatnonzero(keep)
            mask = pa.array(keep)
            batch = pa.RecordBatch.from_arrays(
                [_kept(column, mask) for column in batch.columns], names=batch.schema.names
            )
            ts_array = _kept(ts_array, mask)
            if order_ids is not None:
                kept = order_ids.values[keep]
                order_ids = arrow.IntColumn(kept, arrow.validity(pa.array(kept, mask=kept < 0)))
            self.left_out += n - rows.shape[0]
        first_row = self.rows_seen
        self.rows_seen += n
        fold_batch(
            aggregator,
            batch,
            ts_array,
            axis,
            columns,
            frequency,
            observer,
            order_ids,
            first_row=first_row,
            rows=rows,
        )


def _kept(array: pa.Array, mask: pa.Array) -> pa.Array:
    """The values of ``array`` where ``mask`` is true (``string_view`` has no filter kernel:
    as ``string``, which the kernels read alike)."""
    if pa.types.is_string_view(array.type):
        array = array.cast(pa.large_string())
    return array.filter(mask)


def fold_batch(
    aggregator: CustomerAggregator,
    batch: pa.RecordBatch,
    ts_array: pa.Array,
    axis: arrow.TimeAxis,
    columns: ResolvedColumns,
    frequency: str,
    observer: Callable[[BatchColumns], None] | None = None,
    order_ids: arrow.IntColumn | None = None,
    first_row: int | None = None,
    rows: np.ndarray | None = None,
) -> None:
    """Fold one batch into ``aggregator``: its timestamps ``ts_array`` already parsed to
    ``axis``, its text or dictionary order ids already dense (``order_ids``).

    ``first_row`` is the input row of the batch's first row (default: the rows folded so
    far), ``rows`` the input row of each of its rows, counting from ``first_row``, where rows
    were left out of it (:class:`RowWindow`): error messages name rows of the input.

    Raises
    ------
    RFMError
        For an infinite amount, or one too large to be summed exactly, naming its row.
    """
    if first_row is None:
        first_row = aggregator.rows_read  # of this batch, counting from 0

    def input_row(at: int) -> int:
        return first_row + (at if rows is None else int(rows[at]))

    if len(columns.amount) == 2:
        factors = [batch.column(name) for name in columns.amount]
        for name, factor in zip(columns.amount, factors, strict=True):
            bad = arrow.first_infinite(factor)
            if bad >= 0:
                raise bad_amount_error(name, input_row(bad), float(factor[bad].as_py()))
            bad = arrow.first_beyond_float(factor)
            if bad >= 0:
                raise inexact_factor_error(name, columns.amount, input_row(bad), factor[bad])
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
        raise bad_amount_error("*".join(columns.amount), input_row(bad), amounts[bad])
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
                None if order_ids is None else arrow.key_column(batch.column(columns.order)),
            )
        )


def bad_amount_error(name: str, row: int, value: Any) -> RFMError:
    """The error for an infinite or too large amount in ``row`` (of the whole input)."""
    if np.isinf(value):
        what = "an infinite value"
    else:
        what = f"a value too large to be summed exactly ({value}; the limit is 2**62)"
    return RFMError(
        f"amount column {name!r} has {what} in row {row} (counting from 0); remove or fix that row"
    )


def inexact_factor_error(name: str, factors: tuple[str, ...], row: int, value: Any) -> RFMError:
    """The error for a factor of an amount product too large to be multiplied exactly (a
    product is computed in float64, which holds integers exactly up to 2**53)."""
    return RFMError(
        f"amount {'*'.join(factors)!r}: column {name!r} has {value.as_py()} in row {row} "
        f"(counting from 0), beyond 2**53 in size, so the product cannot be computed exactly; "
        "fix or remove that row, or give the amount as one column (integers are summed exactly)"
    )


def scored_result(aggregated: Aggregated, options: ScoreOptions) -> RFMResult:
    """Score the customers of ``aggregated`` (warning, with the row counts, when there are
    none): metrics, scores, the result table and the run's statistics."""
    counts = aggregated.counts
    totals, only_returns = aggregated.totals.purchasers()
    if only_returns:
        aggregated = replace(aggregated, totals=totals)
    if not len(totals):
        warnings.warn(
            f"no usable rows: {counts.rows_read} read, {counts.null_customer} without customer, "
            f"{counts.null_timestamp} without timestamp, {counts.after_as_of} after as_of, "
            f"{counts.return_rows} returns ({only_returns} customers with only returns)"
            + (
                ""
                if aggregated.window is None
                else f", {aggregated.before_window} before the window"
            )
            + "; the result is empty",
            RFMWarning,
            stacklevel=3,
        )
    timer = aggregated.timer
    with timer.measure("score"):
        metrics = customer_metrics(aggregated, options.monetary)
        scores = score_checked(
            metrics.recency,
            metrics.frequency,
            metrics.monetary,
            options.bins,
            options.method,
            options.thresholds,
        )
        table = result_table(aggregated, metrics, scores.R, scores.F, scores.M, options.rules)
    stats = result_stats(aggregated, len(totals), scores.empty_bins, options, only_returns)
    found = data_warnings(aggregated, stats, options) + segment_warnings(table, options)
    for message in found:
        warnings.warn(message, RFMDataWarning, stacklevel=3)
    return RFMResult(table, scores.edges, stats, options.rules)


UNUSABLE_ROWS_WARNING = 0.10
"""The fraction of rows without a customer or a timestamp above which a run warns."""


def data_warnings(aggregated: Aggregated, stats: RunStats, options: ScoreOptions) -> list[str]:
    """What looks like a mistake in a run that scored customers (see :class:`RFMDataWarning`).

    Rows left out by a choice (after an ``as_of`` that was given, ``returns="drop"``) do not
    count as unusable: only rows without a customer or a timestamp do. A distant ``as_of`` is
    not called out when the recency edges are fixed (``thresholds``): the scores then say it.
    """
    if not stats.customers:
        return []
    found = []
    unusable = stats.dropped["null_customer"] + stats.dropped["null_timestamp"]
    if unusable > UNUSABLE_ROWS_WARNING * stats.rows_read:
        found.append(
            f"{unusable:,} of {stats.rows_read:,} rows ({unusable / stats.rows_read:.0%}) were "
            f"left out: {stats.dropped['null_customer']:,} without customer, "
            f"{stats.dropped['null_timestamp']:,} without timestamp; check the customer and "
            "timestamp columns, or filter those rows out first if that is intended"
        )
    totals, axis = aggregated.totals, aggregated.axis
    earliest, latest = int(totals.first.min()), int(totals.last.max())
    silent, span = aggregated.as_of_ticks - latest, latest - earliest
    if silent > max(span, axis.ticks_per_day) and "recency" not in options.thresholds:
        days, span_days = silent // axis.ticks_per_day, span // axis.ticks_per_day
        found.append(
            f"as_of {axis.moment_text(aggregated.as_of_ticks)} is {days:,} days after the last "
            f"purchase ({axis.moment_text(latest)}), more than the data's own span of "
            f"{span_days:,} days: every customer is long silent, yet the quantile scores still "
            f"rank them against each other (R {options.bins} for the most recent); give an as_of "
            "near the data, or fixed recency edges in days (thresholds, --recency-edges)"
        )
    return found


def segment_warnings(table: pa.Table, options: ScoreOptions) -> list[str]:
    """A warning when segments that their rules call recent (R above the middle score) hold
    customers whose median recency is over :data:`rfm_fast.core.segments.LOST_DAYS` days
    (not with fixed recency edges: the scores then mean days)."""
    if not table.num_rows or "recency" in options.thresholds or not options.rules:
        return []
    # (not to_numpy: it imports pandas, a quarter of a second of every run's start-up)
    recency = arrow.primitive_values(table.column("recency").combine_chunks(), np.int64)
    found = recent_segments_long_silent(
        options.rules, table.column("segment"), recency, options.bins
    )
    if not found:
        return []
    listed = ", ".join(f"{name} {days:,.0f}" for name, days in found)
    return [
        f"segments defined by recent purchases hold long-silent customers (median recency in "
        f"days: {listed}; over {LOST_DAYS} days is lost in the lifecycle map): R scores rank "
        "customers against each other, so the most recent of them score high however long "
        "ago they bought; give an as_of near the data, fixed recency edges in days "
        "(thresholds, --recency-edges), or a map over days (--segments lifecycle)"
    ]


@dataclass(frozen=True)
class Metrics:
    """The raw metrics of each customer (in key order)."""

    recency: np.ndarray
    tenure: np.ndarray
    frequency: np.ndarray
    monetary: np.ndarray


def customer_metrics(aggregated: Aggregated, monetary_mode: str) -> Metrics:
    """Recency and tenure in days before ``as_of``, frequency, and monetary (``"sum"``, or
    ``"mean"`` per order) of every customer of ``aggregated``."""
    totals, as_of_ticks = aggregated.totals, aggregated.as_of_ticks
    if len(totals):
        ticks_per_day = aggregated.axis.ticks_per_day
        earliest = int(totals.first.min())
        if as_of_ticks - earliest > INT64_MAX:  # (Python ints: no wrap-around)
            axis = aggregated.axis
            raise RFMError(
                f"the timestamps run from {axis.moment_text(earliest)} to as_of "
                f"{axis.moment_text(as_of_ticks)}, more than a {axis.type} column can count "
                "between two moments; leave out rows with placeholder dates (such as "
                "0001-01-01 or 9999-12-31), or cast the column to a coarser unit"
            )
        recency = (as_of_ticks - totals.last) // ticks_per_day
        tenure = (as_of_ticks - totals.first) // ticks_per_day
    else:
        recency = tenure = np.zeros(0, dtype=np.int64)
    frequency = totals.rows if totals.distinct is None else totals.distinct
    monetary = totals.monetary
    if monetary_mode == "mean":
        monetary = monetary / np.maximum(frequency, 1)
    return Metrics(recency, tenure, frequency, monetary)


def result_table(
    aggregated: Aggregated, metrics: Metrics, r: np.ndarray, f: np.ndarray, m: np.ndarray, rules
) -> pa.Table:
    """The result table (:data:`rfm_fast.core.result.RESULT_COLUMNS` after the customer column)
    from the metrics and the scores ``r``, ``f``, ``m``; ``rules`` give the segments."""
    totals, axis = aggregated.totals, aggregated.axis
    columns = (
        arrow.from_numpy(metrics.recency, pa.int64()),
        arrow.from_numpy(metrics.frequency, pa.int64()),
        arrow.from_numpy(metrics.monetary, pa.float64()),
        axis.to_arrow(totals.first),
        axis.to_arrow(totals.last),
        arrow.from_numpy(metrics.tenure, pa.int64()),
        arrow.from_numpy(r),
        arrow.from_numpy(f),
        arrow.from_numpy(m),
        rfm_cells(r, f, m),
        arrow.from_numpy(r.astype(np.int16) + f + m, pa.int16()),
        assign_segments(
            rules,
            {"R": r, "F": f, "M": m},
            {
                "recency": metrics.recency,
                "tenure": metrics.tenure,
                "frequency": metrics.frequency,
                "monetary": metrics.monetary,
            },
        ),
    )
    return pa.Table.from_arrays(
        [output_keys(totals.keys, aggregated.customer_type), *columns],
        names=[aggregated.customer, *RESULT_COLUMNS],
    )


def result_stats(
    aggregated: Aggregated,
    customers: int,
    empty_bins: dict[str, list[int]],
    options: ScoreOptions,
    only_returns: int = 0,
) -> RunStats:
    """The statistics of a run that scored ``customers`` of ``aggregated`` with ``options``
    (``only_returns`` customers, whose rows were all returns, were left out)."""
    counts, as_of_ticks = aggregated.counts, aggregated.as_of_ticks
    return RunStats(
        rows_read=counts.rows_read,
        rows_used=counts.rows_used,
        dropped={
            "null_customer": counts.null_customer,
            "null_timestamp": counts.null_timestamp,
            "after_as_of": counts.after_as_of,
            "returns": counts.dropped_returns,
            **({} if aggregated.window is None else {"before_window": aggregated.before_window}),
        },
        null_amount=counts.null_amount,
        customers=customers,
        as_of=None if as_of_ticks is None else aggregated.axis.to_datetime(as_of_ticks),
        empty_bins=empty_bins,
        bins=options.bins,
        method=options.method,
        monetary=options.monetary,
        returns=aggregated.returns,
        return_rows=counts.return_rows,
        customers_only_returns=only_returns,
        window=aggregated.window,
        timings=aggregated.timer.result(),
        delimiters_guessed=dict(aggregated.delimiters_guessed),
    )


def output_keys(keys: np.ndarray | pa.Array, input_type: pa.DataType) -> pa.Array:
    """Customer keys in the input's type (dictionaries decoded, string_view as string)."""
    value_type = input_type.value_type if pa.types.is_dictionary(input_type) else input_type
    if isinstance(keys, np.ndarray):
        return arrow.from_numpy(keys).cast(value_type)
    if keys.type == value_type or pa.types.is_large_string(value_type):
        return keys
    return keys.cast(pa.string())


def rfm_cells(r: np.ndarray, f: np.ndarray, m: np.ndarray) -> pa.Array:
    """The text cells "RFM" (one digit each) built as one Arrow string buffer, no Python loop."""
    n = r.shape[0]
    chars = np.empty((n, 3), dtype=np.uint8)
    chars[:, 0] = r + ord("0")
    chars[:, 1] = f + ord("0")
    chars[:, 2] = m + ord("0")
    offsets = np.arange(0, 3 * n + 1, 3, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chars))
