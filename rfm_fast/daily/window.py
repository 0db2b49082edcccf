"""What a daily state with a window keeps: the rows that a future window can still hold.

A state built with ``window=n`` days scores only the rows at most ``n`` days before ``as_of``,
and ``as_of`` never lies before the state's latest row. A row more than ``n + 1`` days older
than that latest row can therefore never be scored again: it is counted and let go. The state
keeps the others as rows (:class:`WindowRows`), conformed as a scoring pass reads them (the
customer and order ids as values, the timestamps parsed, the amount computed), and scores them
with the same pipeline as :func:`rfm_fast.score` over every row with ``window=n``: the results
are equal by construction, and the row counts are those of all the rows ever loaded.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rfm_fast._kernels.dispatch import hashing
from rfm_fast.core import arrow
from rfm_fast.core.io import (
    CsvReading,
    ReadAgain,
    open_source,
    table_from_ipc,
    table_to_ipc_buffer,
)
from rfm_fast.core.options import Columns, ReadOptions, ResolvedColumns, ScoreOptions
from rfm_fast.core.pipeline import (
    ProgressCallback,
    csv_reading,
    read_totals,
    scored_result,
    timed_batches,
)
from rfm_fast.core.result import RFMResult
from rfm_fast.errors import RFMError

INT64_MAX = int(np.iinfo(np.int64).max)


@dataclass(frozen=True)
class RowTally:
    """The rows of the loads that are not kept as rows: counted, for the run statistics."""

    rows_read: int = 0
    null_customer: int = 0
    null_timestamp: int = 0
    let_go: int = 0
    """Rows with a customer and a timestamp, older than any window can reach again."""

    def __add__(self, other: RowTally) -> RowTally:
        return RowTally(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


def astuple(tally: RowTally) -> tuple[int, ...]:
    """The counts of ``tally`` in field order."""
    return tuple(asdict(tally).values())


@dataclass(frozen=True)
class WindowRows:
    """The rows a windowed state keeps (:attr:`table`), the tally of the others, and the
    latest timestamp of all (in ticks of :attr:`time_type`)."""

    table: pa.Table
    tally: RowTally
    latest: int | None
    time_type: pa.DataType
    window: int

    @property
    def customer_type(self) -> pa.DataType:
        return self.table.schema.field(0).type

    @property
    def nbytes(self) -> int:
        return self.table.nbytes

    def merged(self, other: WindowRows) -> WindowRows:
        """These rows and ``other``'s, without those no window can reach any more."""
        if not other.table.num_rows and other.latest is None:
            return replace(self, tally=self.tally + other.tally)
        if not self.table.num_rows and self.latest is None:
            return replace(other, tally=self.tally + other.tally)
        schema = common_schema(self.table.schema, other.table.schema)
        table = pa.concat_tables([self.table.cast(schema), other.table.cast(schema)])
        latest = max(x for x in (self.latest, other.latest) if x is not None)
        merged = WindowRows(table, self.tally + other.tally, latest, self.time_type, self.window)
        return merged.trimmed()

    def trimmed(self) -> WindowRows:
        """Without the rows older than any window of an ``as_of`` on or after :attr:`latest`
        can reach (a day of margin: dates count whole days)."""
        if self.latest is None or not self.table.num_rows:
            return self
        axis = arrow.TimeAxis.of(self.time_type)
        oldest = self.latest - (self.window + 1) * axis.ticks_per_day
        ticks, _ = axis.ticks(self.table.column(1).combine_chunks())
        keep = ticks >= oldest
        if keep.all():
            return self
        gone = int(keep.shape[0] - keep.sum())
        tally = replace(self.tally, let_go=self.tally.let_go + gone)
        return replace(self, table=self.table.filter(pa.array(keep)), tally=tally)

    def scored(self, read: ReadOptions, score: ScoreOptions, as_of_ticks: int | None) -> RFMResult:
        """Every customer with a purchase in the window, scored as :func:`rfm_fast.score` over
        all the rows loaded with the same window would score them."""
        columns = self.table.column_names
        options = ReadOptions.checked(
            customer=columns[0],
            timestamp=columns[1],
            amount=columns[2],
            order=columns[3] if len(columns) > 3 else None,
            as_of=None if as_of_ticks is None else self._moment(as_of_ticks),
            frequency=read.frequency,
            returns=read.returns,
            threads=read.threads,
            window=self.window,
        )
        aggregated = read_totals(self.table, options)
        tally, counts = self.tally, aggregated.counts
        aggregated = replace(
            aggregated,
            counts=replace(
                counts,
                rows_read=counts.rows_read + tally.rows_read - self.table.num_rows,
                null_customer=tally.null_customer,
                null_timestamp=tally.null_timestamp,
            ),
            before_window=aggregated.before_window + tally.let_go,
        )
        return scored_result(aggregated, score)

    def _moment(self, ticks: int) -> Any:
        """``ticks`` as an ``as_of`` that means exactly them."""
        axis = arrow.TimeAxis.of(self.time_type)
        if axis.tz is None:
            return np.datetime64(ticks, axis.unit)
        return axis.to_datetime(ticks)

    def to_ipc(self) -> pa.Buffer:
        """The rows as an Arrow IPC stream; the rest travels in :meth:`header`."""
        return table_to_ipc_buffer(self.table)

    def header(self) -> dict[str, Any]:
        """What the state file's header keeps of these rows, besides the rows."""
        return {
            "tally": asdict(self.tally),
            "latest": self.latest,
            "time_type": str(self.time_type),
            "window": self.window,
        }

    @classmethod
    def from_parts(cls, header: dict[str, Any], rows: memoryview) -> WindowRows:
        """The rows :meth:`to_ipc` and :meth:`header` wrote."""
        table = table_from_ipc(rows)
        return cls(
            table,
            RowTally(**header["tally"]),
            header["latest"],
            table.schema.field(1).type,
            int(header["window"]),
        )


def common_schema(a: pa.Schema, b: pa.Schema) -> pa.Schema:
    """The schema both loads' rows are kept in: where a column's type differs (a CSV file read
    amounts as integers one day and as floats the next, or order ids as numbers and as text),
    numbers as float64 and anything else as text, as a run over both files would merge them.
    The customer and timestamp types are checked to be equal before (:class:`DailyState`)."""
    fields = []
    for left, right in zip(a, b, strict=True):
        if left.type == right.type:
            fields.append(left)
        elif all(arrow.is_amount_type(t) for t in (left.type, right.type)):
            fields.append(left.with_type(pa.float64()))
        else:
            fields.append(left.with_type(pa.string()))
    return pa.schema(fields)


@dataclass(frozen=True)
class LoadRows:
    """One load read for a windowed state: its rows, and an order-free fingerprint."""

    rows: WindowRows
    fingerprint: str
    first: int | None
    """The load's earliest purchase (a row with a customer, a timestamp and, with
    ``returns="net"``, an amount that is not negative), in ticks."""
    former: tuple[str, ...] = ()
    """The fingerprint releases before recorded for the same rows read in the same batches,
    where it differs (so that a load recorded by them is still found)."""


def read_load(
    data: Any, options: ReadOptions, window: int, progress: ProgressCallback | None = None
) -> LoadRows:
    """Read ``data`` as a load of a state with a ``window`` of days: the rows that a window
    can reach (every row with a customer and a timestamp, but those more than ``window + 1``
    days older than the load's latest), and the counts of the others.

    The fingerprint is a SHA-256 of the row counts (rows read, without a customer, without a
    timestamp; not those let go, which depend on the batches) and of an order-free digest of
    every row with a customer and a timestamp (the same rows in any order or batching give the
    same fingerprint).
    """
    csv = csv_reading(options)
    while True:
        try:
            return _read_load_once(data, options, window, progress, csv)
        except ReadAgain:  # a CSV file whose types change far into it: read with the wider ones
            continue


def _read_load_once(
    data: Any,
    options: ReadOptions,
    window: int,
    progress: ProgressCallback | None,
    csv: CsvReading,
) -> LoadRows:
    source = open_source(
        data,
        batch_rows=options.batch_rows,
        text_columns=() if options.columns.order is None else (options.columns.order,),
        timestamp_format=options.timestamp_format,
        timestamp_column=options.columns.timestamp,
        csv=csv,
    )
    columns = options.columns.resolve(source.column_names)
    names = stored_names(options.columns, columns)
    kept: list[pa.Table] = []
    tally = RowTally()
    latest: int | None = None
    first: int | None = None
    digest = np.zeros(2, dtype=np.uint64)
    axis = None
    schema: pa.Schema | None = None
    for batch, ts_array, axis in timed_batches(source, columns, options):
        n = batch.num_rows
        customers = batch.column(columns.customer)
        has_customer = customers.is_valid()
        has_both = pc.and_(has_customer, ts_array.is_valid())
        used = int(pc.sum(has_both.cast(pa.int64())).as_py() or 0)
        no_customer = n - int(pc.sum(has_customer.cast(pa.int64())).as_py() or 0)
        tally = tally + RowTally(n, no_customer, n - no_customer - used, 0)
        if not used:
            continue
        rows = pa.table(
            [
                _values(customers),
                ts_array,
                _amounts(batch, columns),
                *([] if columns.order is None else [_values(batch.column(columns.order))]),
            ],
            names=names,
        ).filter(has_both)
        if schema is None:
            schema = rows.schema
        rows = rows.cast(schema)
        ticks, _ = axis.ticks(rows.column(1).combine_chunks())
        latest = max(int(ticks.max()), latest if latest is not None else -INT64_MAX)
        purchases = ticks
        if options.returns != "purchase":
            amounts = rows.column(2).combine_chunks()
            negative = pc.fill_null(pc.less(amounts, 0), False)
            purchases = ticks[~negative.to_numpy(zero_copy_only=False)]
        if purchases.shape[0]:
            first = min(int(purchases.min()), first if first is not None else INT64_MAX)
        digest += rows_digest(rows)
        kept.append(rows)
        if sum(t.num_rows for t in kept) > 4 * options.batch_rows:  # let go as it comes
            trimmed = _window_rows(kept, schema, tally, latest, axis, window).trimmed()
            kept, tally = [trimmed.table], trimmed.tally
        if progress is not None:
            progress(tally.rows_read, source.total_rows)
    if schema is None:  # no row with a customer and a timestamp
        schema = _empty_schema(source, columns, names, axis)
        axis = arrow.TimeAxis.of(schema.field(1).type)
    rows = _window_rows(kept, schema, tally, latest, axis, window).trimmed()
    fingerprint = rows_fingerprint(replace(tally, let_go=0), schema, digest)
    # releases before hashed the tally with the rows let go so far, which depends on batching
    former = () if not tally.let_go else (rows_fingerprint(tally, schema, digest),)
    return LoadRows(rows, fingerprint, first, former)


def rows_fingerprint(tally: RowTally, schema: pa.Schema, digest: np.ndarray) -> str:
    """SHA-256 of a load's row counts, the schema its rows are kept in and the order-free
    digest of its rows (:func:`rows_digest`)."""
    fingerprint = hashlib.sha256()
    fingerprint.update(json.dumps(asdict(tally), sort_keys=True).encode())
    fingerprint.update(str(schema).encode())
    fingerprint.update(digest.tobytes())
    return fingerprint.hexdigest()


def stored_names(given: Columns, columns: ResolvedColumns) -> list[str]:
    """The names of the kept columns: the customer, timestamp and order columns' own, and
    the amount under the name it was given (``Quantity*UnitPrice`` for a product)."""
    names = [columns.customer, columns.timestamp, given.amount]
    if columns.order is not None:
        names.append(columns.order)
    if len(set(names)) != len(names):
        raise RFMError(
            "a state with a window keeps the customer, timestamp, amount and order columns "
            f"under their names, and two are the same: {', '.join(map(repr, names))}"
        )
    return names


def _window_rows(
    kept: list[pa.Table],
    schema: pa.Schema,
    tally: RowTally,
    latest: int | None,
    axis: arrow.TimeAxis,
    window: int,
) -> WindowRows:
    table = pa.concat_tables(kept) if kept else schema.empty_table()
    return WindowRows(table.combine_chunks(), tally, latest, axis.type, window)


def _values(column: pa.Array) -> pa.Array:
    """Ids as their values: dictionaries decoded, ``string_view`` as ``string`` (what a run
    writes them as)."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_string_view(column.type):
        column = column.cast(pa.string())
    return column


def _amounts(batch: pa.RecordBatch, columns: ResolvedColumns) -> pa.Array:
    if len(columns.amount) == 2:
        return arrow.product_of(*(batch.column(name) for name in columns.amount))
    return batch.column(columns.amount[0])


def _empty_schema(
    source: Any, columns: ResolvedColumns, names: list[str], axis: arrow.TimeAxis | None
) -> pa.Schema:
    """The kept columns' schema of a load without usable rows (its time axis, where a batch
    gave it one; else the timestamp column's type, or timestamp[us] for text, as a run)."""
    schema, _ = source.open(columns.names)
    time_type = axis.type if axis is not None else schema.field(columns.timestamp).type
    if not arrow.is_time_type(time_type):
        time_type = pa.timestamp("us")
    amount = pa.float64() if len(columns.amount) == 2 else schema.field(columns.amount[0]).type
    if arrow.is_text_type(amount):
        amount = pa.float64()
    types = [schema.field(columns.customer).type, time_type, amount]
    if columns.order is not None:
        types.append(schema.field(columns.order).type)
    types = [t.value_type if pa.types.is_dictionary(t) else t for t in types]
    types = [pa.string() if pa.types.is_string_view(t) else t for t in types]
    types = [pa.int64() if pa.types.is_null(t) else t for t in types]
    return pa.schema(list(zip(names, types, strict=True)))


_MIX = np.uint64(0x9E3779B97F4A7C15)


def _mixed(values: np.ndarray) -> np.ndarray:
    """A 64-bit mix of each value (splitmix64's finalizer), wrapping."""
    z = values.astype(np.uint64, copy=True)
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z


def _column_hashes(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A 64-bit hash of each value of ``column`` (nulls alike, NaN alike)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    type_ = array.type
    if arrow.is_text_type(type_):
        text = arrow.key_column(array.cast(pa.large_string()).fill_null(""))
        out = np.empty(len(array), dtype=np.int64)
        hashing.text_hashes(text.offsets, text.data, out)
        values = out.view(np.uint64)
    elif pa.types.is_floating(type_) or pa.types.is_decimal(type_):
        floats = array.cast(pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False)
        floats = np.where(np.isnan(floats), np.nan, floats)
        values = floats.view(np.uint64)
    elif pa.types.is_date32(type_):
        values = array.cast(pa.int32()).cast(pa.int64()).fill_null(0).to_numpy()
    else:  # integers (uint64 ones wrap), timestamps and date64 as their int64 values
        values = pc.cast(array, pa.int64(), safe=False).fill_null(0).to_numpy()
    hashed = _mixed(values.view(np.uint64) if values.dtype != np.uint64 else values)
    if array.null_count:
        hashed[~array.is_valid().to_numpy(zero_copy_only=False)] = _MIX
    return hashed


def rows_digest(rows: pa.Table) -> np.ndarray:
    """Two 64-bit words summing a hash of each row of ``rows``: the same rows in any order,
    in any batches, give the same words (add the words of batches to combine them)."""
    if not rows.num_rows:
        return np.zeros(2, dtype=np.uint64)
    with np.errstate(over="ignore"):
        row = np.zeros(rows.num_rows, dtype=np.uint64)
        for position, column in enumerate(rows.columns):
            row = _mixed(row ^ (_column_hashes(column) + np.uint64(position) * _MIX))
        return np.array([row.sum(dtype=np.uint64), _mixed(row).sum(dtype=np.uint64)])
