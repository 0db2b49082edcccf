"""Mergeable per-customer state: partial aggregates that combine exactly, whatever the split.

A :class:`CustomerState` holds, for every customer seen in one part of the input, the earliest
and latest purchase, the row count and the exact sum of the amounts (as two integer words, see
docs/semantics.md), and, when the frequency counts distinct orders or days, the distinct
(customer, order) pairs themselves. Every part is a plain NumPy or Arrow array, so a state
serializes to bytes (:meth:`CustomerState.to_bytes`, also used by pickle) and merges
associatively and commutatively (:meth:`CustomerState.merge`, ``+``): merging the states of
any split of the rows gives the state of the whole input, bit for bit, and scoring it gives
exactly the result of :func:`rfm_fast.score`.

A state built with ``complete=True`` drops the pairs and keeps only the distinct counts: its
input must hold every row of each of its customers (data partitioned by customer, as the Spark
and Dask integrations do). Complete states merge only when they share no customer.
"""

from __future__ import annotations

import io
import itertools
import json
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rfm_fast._kernels import layout
from rfm_fast._kernels.dispatch import hashing
from rfm_fast._kernels.dispatch import totals as total_kernels
from rfm_fast.core import arrow
from rfm_fast.core.aggregator import INT64_MAX, CustomerTotals, RowCounts, monetary_sums
from rfm_fast.core.io import DEFAULT_BATCH_ROWS, table_from_ipc, table_to_ipc_buffer
from rfm_fast.core.options import ReadOptions, ScoreOptions
from rfm_fast.core.pipeline import (
    Aggregated,
    BatchColumns,
    ProgressCallback,
    read_totals,
    scored_result,
)
from rfm_fast.core.result import RFMResult
from rfm_fast.core.segments import SegmentsSpec
from rfm_fast.errors import RFMError

MAGIC = b"RFMSTATE"
FORMAT_VERSION = 1
INT64_MIN = np.iinfo(np.int64).min
_TOTALS = ("first", "last", "rows", "sum_whole", "sum_fraction")


@dataclass(frozen=True, eq=False)
class CustomerState:
    """Per-customer partial totals of some of the rows; merge them, then :meth:`score`.

    Build one with :meth:`of`. Attributes are read-only arrays, one entry per customer in key
    order (``keys``), except the pairs, one entry per distinct (customer, order or day).

    Attributes
    ----------
    customer : str
        Name of the customer column.
    customer_type : pyarrow.DataType
        Type of the customer column (the output has it).
    time_type : pyarrow.DataType
        Type of the timestamps; ``first`` and ``last`` are ticks of it.
    frequency : {"rows", "orders", "days"}
        What the frequency counts: rows, distinct order ids, or distinct purchase days.
    as_of_limit : int or None
        The ``as_of`` given when building (ticks): later rows were left out and counted.
    keys : numpy.ndarray or pyarrow.LargeStringArray
        Customer keys, ascending (int64, uint64 or text).
    first, last, rows, sum_whole, sum_fraction : numpy.ndarray
        Earliest and latest purchase, rows, and the exact sum of the amounts.
    distinct : numpy.ndarray or None
        Distinct orders or days of each customer: the final count in a complete state, else
        the rows with a null order id (each is an order of its own, see docs/semantics.md).
    pair_customers, pair_values : numpy.ndarray, numpy.ndarray or pyarrow.Array, or None
        The distinct (customer position, order id or day) pairs; None in a complete state.
    counts : RowCounts
        Rows read, used and dropped by reason, and the latest timestamp.
    returns : {"net", "purchase", "drop"}
        How rows with a negative amount were taken. With ``"net"``, a customer whose rows so
        far are all returns is kept (first INT64_MAX, last INT64_MIN) for its net sum, and left
        out when scored.
    """

    customer: str
    customer_type: pa.DataType
    time_type: pa.DataType
    frequency: str
    as_of_limit: int | None
    keys: np.ndarray | pa.Array
    first: np.ndarray
    last: np.ndarray
    rows: np.ndarray
    sum_whole: np.ndarray
    sum_fraction: np.ndarray
    distinct: np.ndarray | None
    pair_customers: np.ndarray | None
    pair_values: np.ndarray | pa.Array | None
    counts: RowCounts
    returns: str = "net"

    def __post_init__(self) -> None:
        # The merge and rounding kernels index these arrays without checks: a state built by
        # hand, or read from damaged bytes, must not reach them with arrays that disagree.
        n = len(self.keys)
        per_customer = {name: getattr(self, name) for name in _TOTALS}
        if self.distinct is not None:
            per_customer["distinct"] = self.distinct
        for name, values in per_customer.items():
            if values.ndim != 1 or values.shape[0] != n or values.dtype != np.int64:
                raise RFMError(
                    f"CustomerState.{name} must be {n} int64 values, one per key; got "
                    f"{values.dtype} of shape {values.shape}"
                )
        if (self.pair_customers is None) != (self.pair_values is None):
            raise RFMError("CustomerState needs both pair_customers and pair_values, or neither")
        if self.pair_customers is not None:
            pairs = self.pair_customers
            if pairs.shape[0] != len(self.pair_values) or (
                pairs.shape[0] and (pairs.min() < 0 or pairs.max() >= n)
            ):
                raise RFMError(
                    f"CustomerState pairs must name customers 0..{n - 1}, one value each"
                )

    # ------------------------------------------------------------------ building
    @classmethod
    def of(
        cls,
        data: Any,
        *,
        customer: str,
        timestamp: str,
        amount: str,
        order: str | None = None,
        as_of: Any = None,
        frequency: str = "orders",
        complete: bool = False,
        timestamp_format: str | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        threads: int | None = None,
        returns: str = "net",
        delimiter: str | None = None,
        schema: Any = None,
        amount_format: str | None = None,
        decimal: str = ".",
    ) -> CustomerState:
        """The state of one part of an order history (any input :func:`rfm_fast.score` takes).

        Parameters
        ----------
        data, customer, timestamp, amount, order, as_of, frequency, timestamp_format, \
batch_rows, threads, returns, delimiter, schema, amount_format, decimal
            As for :func:`rfm_fast.score`. ``as_of`` must be the same for every part: rows after
            it are left out here, before any merge.
        complete : bool, default False
            Promise that ``data`` holds every row of each of its customers (the input is
            partitioned by customer). The distinct pairs are then counted and dropped, which
            makes the state as small as its customer totals.

        Returns
        -------
        CustomerState

        Examples
        --------
        >>> import pyarrow as pa
        >>> from rfm_fast import CustomerState
        >>> orders = pa.table({
        ...     "customer": [1, 1, 2, 2],
        ...     "day": pa.array([0, 5, 3, 3], pa.int32()).cast(pa.date32()),
        ...     "amount": [10.0, 5.0, 2.5, 2.5],
        ...     "order": [100, 101, 200, 200],
        ... })
        >>> columns = dict(customer="customer", timestamp="day", amount="amount", order="order")
        >>> part1 = CustomerState.of(orders.slice(0, 3), **columns)
        >>> part2 = CustomerState.of(orders.slice(3), **columns)
        >>> whole = CustomerState.from_bytes((part1 + part2).to_bytes())
        >>> whole.score(bins=2, segments=None).table.column("frequency").to_pylist()
        [2, 1]
        """
        options = ReadOptions.checked(
            customer=customer,
            timestamp=timestamp,
            amount=amount,
            order=order,
            as_of=as_of,
            frequency=frequency,
            timestamp_format=timestamp_format,
            batch_rows=batch_rows,
            threads=threads,
            returns=returns,
            delimiter=delimiter,
            schema=schema,
            amount_format=amount_format,
            decimal=decimal,
        )
        return cls.of_options(data, options, complete=complete)

    @classmethod
    def of_options(
        cls,
        data: Any,
        options: ReadOptions,
        complete: bool = False,
        progress: ProgressCallback | None = None,
        observer: Callable[[BatchColumns], None] | None = None,
        on_restart: Callable[[], None] | None = None,
    ) -> CustomerState:
        """:meth:`of` with the options already checked (the partition engine's form);
        ``progress`` as for :func:`rfm_fast.score`, ``observer`` and ``on_restart`` as for
        :func:`rfm_fast.core.pipeline.read_totals` (a daily state digests the rows so)."""
        aggregated = read_totals(
            data,
            options,
            keep_parts=True,
            progress=progress,
            observer=observer,
            on_restart=on_restart,
        )
        frequency, order = options.frequency, options.columns.order
        mode = "days" if frequency == "days" else ("rows" if order is None else "orders")
        state = cls._of_totals(aggregated, mode)
        return state.completed() if complete else state

    @classmethod
    def _of_totals(cls, aggregated: Aggregated, mode: str) -> CustomerState:
        totals = aggregated.totals
        whole, fraction = totals.sums
        pair_customers, pair_values = totals.pairs if mode != "rows" else (None, None)
        distinct = totals.distinct
        if pair_customers is not None:  # what is left are the rows with a null order id
            distinct = distinct - np.bincount(pair_customers, minlength=len(distinct))
        return cls(
            customer=aggregated.customer,
            customer_type=aggregated.customer_type,
            time_type=aggregated.axis.type,
            frequency=mode,
            as_of_limit=aggregated.as_of_limit,
            keys=totals.keys,
            first=totals.first,
            last=totals.last,
            rows=totals.rows,
            sum_whole=whole,
            sum_fraction=fraction,
            distinct=distinct,
            pair_customers=pair_customers,
            pair_values=pair_values,
            counts=aggregated.counts,
            returns=aggregated.returns,
        )

    # ------------------------------------------------------------------ properties
    def __len__(self) -> int:
        return self.first.shape[0]

    @property
    def complete(self) -> bool:
        """Whether the distinct counts are final (no pairs kept)."""
        return self.frequency == "rows" or self.pair_customers is None

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays (what :meth:`to_bytes` writes, give or take headers)."""
        total = sum(a.nbytes for a in self._arrays() if a is not None)
        return int(total)

    def _arrays(self) -> list[Any]:
        return [
            self.keys,
            self.first,
            self.last,
            self.rows,
            self.sum_whole,
            self.sum_fraction,
            self.distinct,
            self.pair_customers,
            self.pair_values,
        ]

    def distinct_counts(self) -> np.ndarray | None:
        """Distinct orders (or days) per customer; None when the frequency counts rows."""
        if self.frequency == "rows":
            return None
        if self.pair_customers is None:
            return self.distinct
        pairs = np.bincount(self.pair_customers, minlength=len(self))
        return self.distinct + pairs.astype(np.int64)

    def completed(self) -> CustomerState:
        """This state with its distinct pairs counted and dropped (see ``complete`` in
        :meth:`of`): only valid once no other part of the input holds these customers."""
        if self.complete:
            return self
        return replace(self, distinct=self.distinct_counts(), pair_customers=None, pair_values=None)

    # ------------------------------------------------------------------ merging
    def __add__(self, other: CustomerState) -> CustomerState:
        return merge_states([self, other])

    def merge(self, *others: CustomerState) -> CustomerState:
        """This state merged with ``others`` (see :func:`merge_states`)."""
        return merge_states([self, *others])

    def split(self, buckets: int) -> list[CustomerState]:
        """This state's customers dealt to ``buckets`` states by a hash of their key.

        A customer falls in the same bucket in every state and every process, so the states of
        several parts of the input, split alike, can be merged bucket by bucket on different
        machines (the map side of :mod:`rfm_fast.engines.spark` and
        :mod:`rfm_fast.engines.dask`). Each bucket keeps its customers' pairs; the row counts
        stay with bucket 0, so merging all buckets gives back this state.

        Parameters
        ----------
        buckets : int
            How many states to return (at least 1); some may have no customers.

        Returns
        -------
        list of CustomerState
            ``buckets`` states, bucket ``b`` holding the customers whose key hashes to ``b``.

        Examples
        --------
        >>> import pyarrow as pa
        >>> from rfm_fast import CustomerState
        >>> orders = pa.table({"c": ["a", "b", "c", "a"], "t": pa.array([0, 1, 2, 3], pa.date32()),
        ...                    "a": [1.0, 2.0, 3.0, 4.0]})
        >>> state = CustomerState.of(orders, customer="c", timestamp="t", amount="a")
        >>> parts = state.split(2)
        >>> sum(len(part) for part in parts), (parts[0] + parts[1]).rows.tolist()
        (3, [2, 1, 1])
        """
        bucket = customer_buckets(self.keys, buckets)
        order = np.argsort(bucket, kind="stable")  # keys stay ascending inside a bucket
        bounds = np.searchsorted(bucket[order], np.arange(buckets + 1))
        # Position of each customer inside its bucket, to renumber the pairs.
        position = np.empty(len(self), dtype=np.int64)
        position[order] = np.arange(len(self)) - np.repeat(bounds[:-1], np.diff(bounds))
        if self.pair_customers is not None:
            pair_bucket = bucket[self.pair_customers]
            pair_order = np.argsort(pair_bucket, kind="stable")
            pair_bounds = np.searchsorted(pair_bucket[pair_order], np.arange(buckets + 1))
        parts = []
        for b in range(buckets):
            chosen = order[bounds[b] : bounds[b + 1]]
            pairs = {}
            if self.pair_customers is not None:
                taken = pair_order[pair_bounds[b] : pair_bounds[b + 1]]
                pairs = {
                    "pair_customers": position[self.pair_customers[taken]],
                    "pair_values": _take(self.pair_values, taken),
                }
            parts.append(
                replace(
                    self,
                    keys=_take(self.keys, chosen),
                    **{name: getattr(self, name)[chosen] for name in _TOTALS},
                    distinct=None if self.distinct is None else self.distinct[chosen],
                    **pairs,
                    counts=self.counts if b == 0 else RowCounts(),
                )
            )
        return parts

    # ------------------------------------------------------------------ scoring
    def totals(self) -> CustomerTotals:
        """The per-customer totals this state stands for (monetary rounded once)."""
        monetary = monetary_sums(self.sum_whole, self.sum_fraction, self.keys)
        return CustomerTotals(
            keys=self.keys,
            first=self.first,
            last=self.last,
            rows=self.rows,
            distinct=self.distinct_counts(),
            monetary=monetary,
        )

    def as_of_ticks(self) -> int | None:
        """``as_of`` in ticks: the one given when building, or the latest timestamp plus a day."""
        if self.as_of_limit is not None:
            return self.as_of_limit
        latest = self.counts.max_timestamp
        if latest is None:
            return None
        return arrow.TimeAxis.of(self.time_type).default_as_of(latest)

    def score(
        self,
        *,
        bins: int = 5,
        method: str = "exact",
        monetary: str = "sum",
        segments: SegmentsSpec = "default",
        thresholds: dict[str, Sequence[float]] | None = None,
    ) -> RFMResult:
        """Score the customers of this state, exactly as :func:`rfm_fast.score` scores the rows
        it stands for.

        Parameters
        ----------
        bins, method, monetary, segments, thresholds
            As for :func:`rfm_fast.score`.

        Returns
        -------
        RFMResult

        Examples
        --------
        >>> import pyarrow as pa
        >>> from rfm_fast import CustomerState
        >>> orders = pa.table({"c": [1, 2, 2], "t": pa.array([0, 1, 2], pa.timestamp("s")),
        ...                    "a": [1.0, 2.0, 3.0]})
        >>> state = CustomerState.of(orders, customer="c", timestamp="t", amount="a")
        >>> state.score(bins=2, segments=None).table.column("F").to_pylist()
        [1, 2]
        """
        options = ScoreOptions.checked(
            bins=bins, method=method, monetary=monetary, segments=segments, thresholds=thresholds
        )
        return self.scored(options)

    def scored(self, options: ScoreOptions) -> RFMResult:
        """:meth:`score` with the options already checked."""
        return scored_result(self.aggregated(), options)

    def aggregated(self) -> Aggregated:
        """The totals in the form the scoring steps take (:mod:`rfm_fast.core.pipeline`)."""
        return Aggregated(
            totals=self.totals(),
            counts=self.counts,
            axis=arrow.TimeAxis.of(self.time_type),
            as_of_ticks=self.as_of_ticks(),
            as_of_limit=self.as_of_limit,
            customer=self.customer,
            customer_type=self.customer_type,
            returns=self.returns,
        )

    # ------------------------------------------------------------------ bytes
    def to_chunks(self) -> list[bytes | pa.Buffer]:
        """What :meth:`to_bytes` writes, as the pieces to write one after the other (a file
        writer takes them without joining them first)."""
        header = {
            "version": FORMAT_VERSION,
            "customer": self.customer,
            "frequency": self.frequency,
            "as_of_limit": self.as_of_limit,
            "complete": self.complete,
            "returns": self.returns,
            "counts": {f.name: getattr(self.counts, f.name) for f in fields(RowCounts)},
        }
        columns = {"key": _as_arrow(self.keys)}
        for name in _TOTALS:
            columns[name] = pa.array(getattr(self, name))
        if self.frequency != "rows":
            columns["distinct"] = pa.array(self.distinct)
        pairs = {}
        if not self.complete:
            pairs = {
                "customer": pa.array(self.pair_customers),
                "value": _as_arrow(self.pair_values),
            }
        types = pa.schema([("customer_type", self.customer_type), ("time_type", self.time_type)])
        parts = [
            json.dumps(header).encode(),
            table_to_ipc_buffer(types.empty_table()),
            table_to_ipc_buffer(pa.table(columns)),
            table_to_ipc_buffer(pa.table(pairs)) if pairs else b"",
        ]
        chunks: list[bytes | pa.Buffer] = [MAGIC]
        for part in parts:
            chunks += [struct.pack("<Q", len(part)), part]
        return chunks

    def to_bytes(self) -> bytes:
        """Serialize to bytes: Arrow IPC streams of the totals and the pairs, plus a header.

        Examples
        --------
        >>> import pyarrow as pa
        >>> from rfm_fast import CustomerState
        >>> state = CustomerState.of(
        ...     pa.table({"c": [1, 2], "t": pa.array([0, 1], pa.timestamp("s")), "a": [1.0, 2.0]}),
        ...     customer="c", timestamp="t", amount="a")
        >>> CustomerState.from_bytes(state.to_bytes()).rows.tolist()
        [1, 1]
        """
        out = io.BytesIO()
        for chunk in self.to_chunks():
            out.write(chunk)
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes | memoryview) -> CustomerState:
        """The state that :meth:`to_bytes` wrote."""
        view = memoryview(data)
        if bytes(view[: len(MAGIC)]) != MAGIC:
            raise RFMError("not a CustomerState: the bytes do not start with the RFMSTATE header")
        parts, at = [], len(MAGIC)
        for _ in range(4):
            (size,) = struct.unpack_from("<Q", view, at)
            parts.append(view[at + 8 : at + 8 + size])
            at += 8 + size
        header = json.loads(bytes(parts[0]))
        if header["version"] != FORMAT_VERSION:
            raise RFMError(
                f"CustomerState format {header['version']} is not supported by this rfm_fast "
                f"(format {FORMAT_VERSION}); build the states with the same rfm_fast version"
            )
        types = table_from_ipc(parts[1]).schema
        totals = table_from_ipc(parts[2])
        keys = _from_arrow(totals.column("key"))
        pair_customers = pair_values = None
        distinct = None
        if header["frequency"] != "rows":
            distinct = totals.column("distinct").to_numpy()
            if not header["complete"]:
                pairs = table_from_ipc(parts[3])
                pair_customers = pairs.column("customer").to_numpy()
                pair_values = _from_arrow(pairs.column("value"))
        return cls(
            customer=header["customer"],
            customer_type=types.field("customer_type").type,
            time_type=types.field("time_type").type,
            frequency=header["frequency"],
            as_of_limit=header["as_of_limit"],
            keys=keys,
            **{name: totals.column(name).to_numpy() for name in _TOTALS},
            distinct=distinct,
            pair_customers=pair_customers,
            pair_values=pair_values,
            counts=RowCounts(**header["counts"]),
            returns=header.get("returns", "purchase"),  # states written before returns were
        )

    def __reduce__(self):
        return (CustomerState.from_bytes, (self.to_bytes(),))

    def __repr__(self) -> str:
        return (
            f"CustomerState(customers={len(self)}, rows_used={self.counts.rows_used}, "
            f"frequency={self.frequency!r}, complete={self.complete}, nbytes={self.nbytes})"
        )


def customer_buckets(keys: np.ndarray | pa.Array | pa.ChunkedArray, buckets: int) -> np.ndarray:
    """The bucket in ``0..buckets-1`` of each customer key, as :meth:`CustomerState.split`
    deals them: the same for a key in every state and process, and for the raw customer column
    (any integer, text or dictionary type; null keys fall in bucket 0)."""
    if isinstance(buckets, bool) or not isinstance(buckets, int) or buckets < 1:
        raise RFMError(f"buckets must be a whole number of at least 1; got {buckets!r}")
    if isinstance(keys, np.ndarray) and keys.dtype.kind not in "iu":
        if keys.dtype.kind not in "OUT":
            raise RFMError(f"customer keys must be integers or text; got dtype {keys.dtype}")
        keys = pa.array(keys, pa.large_string())  # text in a NumPy array: hashed as text
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks()
    if isinstance(keys, pa.Array) and not (
        pa.types.is_integer(keys.type)
        or pa.types.is_dictionary(keys.type)
        or arrow.is_text_type(keys.type)
    ):
        raise RFMError(f"customer keys must be integers or text; got type {keys.type}")
    if isinstance(keys, pa.Array) and pa.types.is_dictionary(keys.type):
        of_values = customer_buckets(keys.dictionary, buckets)
        return (
            of_values[keys.indices.fill_null(0).to_numpy(zero_copy_only=False)]
            if len(of_values)
            else np.zeros(len(keys), dtype=np.int64)
        )
    if isinstance(keys, pa.Array) and pa.types.is_integer(keys.type):
        wide = pa.uint64() if keys.type == pa.uint64() else pa.int64()
        keys = keys.cast(wide).fill_null(0).to_numpy(zero_copy_only=False)
    out = np.empty(len(keys), dtype=np.int64)
    if isinstance(keys, np.ndarray):
        hashing.int_key_buckets(keys, buckets, out)
    else:  # text: the same bytes hash alike whatever the string type
        text = arrow.key_column(keys.cast(pa.large_string()).fill_null(""))
        hashing.text_key_buckets(text.offsets, text.data, buckets, out)
    return out


def merge_states(
    states: Sequence[CustomerState], orders_within_parts: bool = False
) -> CustomerState:
    """Merge partial states into the state of all their rows.

    Merging is associative and commutative, and exact: per customer the earliest first
    purchase, the latest last purchase, the sum of the row counts and the exact sum of the
    amounts; distinct orders (or days) as the union of the pairs, so an order whose lines, or a
    customer whose orders, are spread over several parts is counted once.

    Parameters
    ----------
    states : sequence of CustomerState
    orders_within_parts : bool, default False
        Promise that no order (or purchase day, for ``frequency="days"``) has rows in two of
        the states: complete states (without pairs) may then share customers, and their
        distinct counts are added. An order that does span two states is counted once in each.

    Raises
    ------
    RFMError
        When the states were built differently (columns, types, frequency or ``as_of``), or when
        complete states share a customer (without ``orders_within_parts``).
    """
    states = list(states)
    if not states:
        raise RFMError("merge_states needs at least one state")
    if len(states) == 1:
        return states[0]
    # A part without rows has no say in the time type (text timestamps get theirs from the
    # first row), but everything else must match.
    first = next((s for s in states if s.counts.rows_read), states[0])
    for other in states:
        _check_compatible(first, other, check_time=other.counts.rows_read > 0)
    complete = all(s.complete for s in states)
    keys, groups = _union_keys([s.keys for s in states])
    n = len(keys)
    out = {
        "first": np.full(n, INT64_MAX, dtype=np.int64),
        "last": np.full(n, INT64_MIN, dtype=np.int64),
        "rows": np.zeros(n, dtype=np.int64),
        "sum_whole": np.zeros(n, dtype=np.int64),
        "sum_fraction": np.zeros(n, dtype=np.int64),
    }
    total_kernels.merge_totals(
        groups,
        *(np.concatenate([getattr(s, name) for s in states]) for name in _TOTALS[:3]),
        tuple(np.concatenate([getattr(s, name) for s in states]) for name in _TOTALS[3:]),
        out["first"],
        out["last"],
        out["rows"],
        (out["sum_whole"], out["sum_fraction"]),
    )
    distinct = pair_customers = pair_values = None
    if first.frequency != "rows":
        counted = np.concatenate([s.distinct for s in states])
        # (float weights: exact for counts below 2**53; np.add.at is ten times slower)
        distinct = np.bincount(groups, weights=counted, minlength=n).astype(np.int64)
        if not complete:
            pair_customers, pair_values = _union_pairs(states, groups)
        elif not orders_within_parts and np.bincount(groups, minlength=n).max(initial=0) > 1:
            # Complete states promise to hold all of their customers' rows: a customer in two
            # of them means the promise was broken and the counts would be wrong.
            raise RFMError(
                "complete states share customers: build them with complete=False unless "
                "each part holds every row of its customers"
            )
    rows_counts = [s.counts for s in states]
    return CustomerState(
        customer=first.customer,
        customer_type=first.customer_type,
        time_type=first.time_type,
        frequency=first.frequency,
        as_of_limit=first.as_of_limit,
        keys=keys,
        **out,
        distinct=distinct,
        pair_customers=pair_customers,
        pair_values=pair_values,
        counts=RowCounts.total(rows_counts),
        returns=first.returns,
    )


def _check_compatible(a: CustomerState, b: CustomerState, check_time: bool = True) -> None:
    checked = ("customer", "customer_type", "frequency", "as_of_limit", "returns")
    for what in (*checked, "time_type") if check_time else checked:
        if getattr(a, what) != getattr(b, what):
            raise RFMError(
                f"cannot merge states with different {what}: {getattr(a, what)!r} and "
                f"{getattr(b, what)!r}; build every part with the same columns and options"
            )


def _union_keys(parts: list[np.ndarray | pa.Array]) -> tuple[np.ndarray | pa.Array, np.ndarray]:
    """The sorted distinct keys of all parts, and the position of each part's key in them."""
    if isinstance(parts[0], np.ndarray):
        # A part without rows holds int64 keys even for a uint64 column: never mix the two
        # (NumPy would promote both to float64 and round large keys).
        dtype = np.uint64 if any(p.dtype == np.uint64 for p in parts) else np.int64
        parts = [p.astype(dtype, copy=False) for p in parts]
        # Each part's keys are ascending and distinct: the largest is kept as it is and the
        # keys of the others that it lacks are inserted (a daily update adds thousands of
        # customers to millions without sorting them all again).
        largest = max(range(len(parts)), key=lambda k: parts[k].shape[0])
        base = parts[largest]
        rest = [p for k, p in enumerate(parts) if k != largest]
        others = rest[0] if len(rest) == 1 else np.unique(np.concatenate(rest))
        if not (_ascending(base) and _ascending(others)):
            # keys of a state built by hand, or of damaged bytes: the merge kernel indexes with
            # the positions found here, which only sorted keys keep in bounds
            keys, groups = np.unique(np.concatenate(parts), return_inverse=True)
            return keys, groups.astype(np.int64)
        at = np.searchsorted(base, others)
        found = at < base.shape[0]
        found[found] = base[at[found]] == others[found]
        missing = others[~found]
        keys = np.insert(base, at[~found], missing)
        groups = [
            np.arange(base.shape[0], dtype=np.int64) + np.searchsorted(missing, base)
            if k == largest
            else np.searchsorted(keys, p).astype(np.int64)
            for k, p in enumerate(parts)
        ]
        return keys, np.concatenate(groups)
    text = pa.concat_arrays(parts)
    keys = pc.unique(text)
    keys = keys.take(pc.sort_indices(keys))
    groups = pc.index_in(text, value_set=keys).to_numpy(zero_copy_only=False)
    return keys, groups.astype(np.int64)


def _ascending(keys: np.ndarray) -> bool:
    """Whether ``keys`` are strictly ascending (distinct and sorted)."""
    return bool(np.all(keys[1:] > keys[:-1]))


def _union_pairs(
    states: list[CustomerState], groups: np.ndarray
) -> tuple[np.ndarray, np.ndarray | pa.Array]:
    """The distinct (customer, value) pairs of all states, customers renumbered by ``groups``.

    A state's own pairs are distinct. The state with the most pairs is kept whole; the pairs of
    the others are deduplicated and looked up in it by a hash kernel, in one pass over each
    (a daily update merges a few thousand new pairs into millions without sorting them)."""
    customers, values, base = [], [], 0
    for s in states:
        if s.pair_customers is None:
            raise RFMError(
                "cannot merge a complete state with one that keeps distinct pairs: a complete "
                "state no longer knows which orders it counted"
            )
        customers.append(groups[base + s.pair_customers])
        values.append(s.pair_values)
        base += len(s)
    values = _same_kind(values)
    if isinstance(values[0], np.ndarray):
        # A part without rows holds int64 values even for uint64 ids: never mix the two
        # (NumPy would promote both to float64); the codes are the values' 64 bits.
        dtype = np.uint64 if any(v.dtype == np.uint64 for v in values) else np.int64
        values = [v.astype(dtype, copy=False) for v in values]
        codes = [v.view(np.int64) for v in values]
    else:  # text order ids: one code per distinct text across all states
        encoded = pc.dictionary_encode(pa.concat_arrays(values)).indices.to_numpy()
        bounds = np.cumsum([0] + [len(v) for v in values])
        codes = [encoded[a:b].astype(np.int64) for a, b in itertools.pairwise(bounds)]
    largest = max(range(len(states)), key=lambda k: len(customers[k]))
    others = [k for k in range(len(states)) if k != largest]
    other_customers = np.concatenate([customers[k] for k in others])
    other_codes = np.concatenate([codes[k] for k in others])
    size = 1 << max(4, int(2 * max(other_customers.shape[0], 1) - 1).bit_length())
    slots = np.full(size, layout.EMPTY, dtype=np.int64)
    keep = np.zeros(other_customers.shape[0], dtype=np.bool_)
    hashing.new_pairs(other_customers, other_codes, customers[largest], codes[largest], slots, keep)
    customer = np.concatenate([customers[largest], other_customers[keep]])
    if isinstance(values[0], np.ndarray):
        other_values = np.concatenate([values[k] for k in others])
        return customer, np.concatenate([values[largest], other_values[keep]])
    other_values = pa.concat_arrays([values[k] for k in others]) if others else values[largest]
    kept = other_values.filter(pa.array(keep)) if others else other_values.slice(0, 0)
    return customer, pa.concat_arrays([values[largest], kept])


def _same_kind(values: list[np.ndarray | pa.Array]) -> list[np.ndarray | pa.Array]:
    """Order ids of one kind: integers stay integers; when some parts hold text ids (a CSV file
    whose invoice numbers all look like numbers, another with ``C536379``), every id is taken
    as text, ``581000`` and ``"581000"`` being the same order, as one read of all the files
    would have them. Parts without pairs take the kind of the others."""
    kinds = {isinstance(v, np.ndarray) for v in values if len(v)}
    if kinds == {True} or (not kinds and isinstance(values[0], np.ndarray)):
        return [v if isinstance(v, np.ndarray) else np.zeros(0, np.int64) for v in values]
    return [pa.array(v).cast(pa.large_string()) if isinstance(v, np.ndarray) else v for v in values]


def _take(values: np.ndarray | pa.Array, positions: np.ndarray) -> np.ndarray | pa.Array:
    if isinstance(values, np.ndarray):
        return values[positions]
    return values.take(arrow.from_numpy(positions))


def _as_arrow(values: np.ndarray | pa.Array) -> pa.Array:
    return pa.array(values) if isinstance(values, np.ndarray) else values


def _from_arrow(column: pa.ChunkedArray) -> np.ndarray | pa.Array:
    array = column.combine_chunks()
    if pa.types.is_integer(array.type):
        return array.to_numpy()
    return array.cast(pa.large_string())
