"""rfm_fast inside Spark: exact RFM scores of a Spark DataFrame, computed on the executors.

Needs ``pip install 'rfm_fast[spark]'`` (pyspark) on the driver and the executors. The orders
are hash-partitioned by customer with Spark's own shuffle (``repartition``); every other step
runs in ``mapInArrow`` over whole partitions, and only small summaries reach the driver (see
:mod:`rfm_fast.distributed` and docs/distributed.md).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from rfm_fast import distributed
from rfm_fast.errors import RFMError
from rfm_fast.scoring import RunStats
from rfm_fast.segments import SegmentsSpec

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

HEADER = "_rfm_header"


@dataclass(frozen=True)
class SparkResult:
    """The result of :func:`score_result`: the scores as a Spark DataFrame, the edges and the
    run statistics (the same as :class:`rfm_fast.RFMResult` has)."""

    table: DataFrame
    edges: dict[str, list[float]]
    stats: RunStats
    totals: DataFrame
    """The cached per-customer totals that ``table`` is computed from."""

    def release(self) -> None:
        """Drop the cached totals (``table`` can still be computed, from the orders again)."""
        self.totals.unpersist()


def score(df: DataFrame, **options: Any) -> DataFrame:
    """Score every customer of a Spark DataFrame of orders; see :func:`score_result`.

    Returns
    -------
    pyspark.sql.DataFrame
        One row per customer with the columns of :func:`rfm_fast.score` (``segment`` as text).
    """
    return score_result(df, **options).table


def score_result(
    df: DataFrame,
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
    partitions: int | None = None,
) -> SparkResult:
    """Score every customer of a Spark DataFrame of orders, exactly as :func:`rfm_fast.score`
    scores the same rows on one machine.

    Parameters
    ----------
    df : pyspark.sql.DataFrame
        The orders.
    customer, timestamp, amount, order, as_of, bins, frequency, monetary, segments, \
thresholds, timestamp_format
        As for :func:`rfm_fast.score`. ``mapInArrow`` hands ``TimestampType`` columns to
        Python zoned in ``spark.sql.session.timeZone``: ``frequency="days"`` counts days in
        that zone, and a naive ``as_of`` is read in it (``TimestampNTZType`` and
        ``DateType`` columns count the days as written).
    method : {"exact", "approx"}, default "exact"
        ``"split"`` needs one global ranking and is not offered.
    partitions : int, optional
        Partitions of the shuffle by customer (default: ``spark.sql.shuffle.partitions``).

    Returns
    -------
    SparkResult
        ``.table`` (a Spark DataFrame, computed lazily from cached per-customer totals),
        ``.edges`` and ``.stats``.

    Notes
    -----
    Runs two to three small Spark jobs before it returns: the per-customer totals (cached
    with ``MEMORY_AND_DISK``) with the partition headers (row counts, latest timestamp), the
    summaries (histograms), and in exact mode the monetary candidates. ``result.table`` is
    computed from the cached totals; :meth:`SparkResult.release` drops them.

    Examples
    --------
    With a Spark DataFrame ``orders_df`` (tested in tests/test_spark.py, not as a doctest)::

        import rfm_fast.spark

        result = rfm_fast.spark.score_result(
            orders_df, customer="customer_id", timestamp="ordered_at", amount="amount"
        )
        result.table.groupBy("segment").count().show()
        result.edges, result.stats
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    spec = distributed.Spec.of(
        customer=customer,
        timestamp=timestamp,
        amount=amount,
        order=order,
        as_of=as_of,
        bins=bins,
        method=method,
        frequency=frequency,
        monetary=monetary,
        segments=segments,
        thresholds=thresholds,
        timestamp_format=timestamp_format,
    )
    distributed.check_columns(spec, df.columns)
    orders = df.select(*spec.columns_in(df.columns))
    if partitions is None:
        partitions = int(orders.sparkSession.conf.get("spark.sql.shuffle.partitions"))
    customer_field = orders.schema[customer]
    totals_type = T.StructType(
        [
            T.StructField("customer", customer_field.dataType, True),
            T.StructField("first", T.LongType(), True),
            T.StructField("last", T.LongType(), True),
            T.StructField("frequency", T.LongType(), True),
            T.StructField("monetary", T.DoubleType(), True),
            T.StructField(HEADER, T.BinaryType(), True),
        ]
    )

    def totals_of_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        first = next(batches, None)
        if first is None:
            return
        totals, header = distributed.partition_totals(
            spec, itertools.chain([first], batches), first.schema
        )
        nulls = pa.nulls(totals.num_rows, pa.binary())
        yield from totals.append_column(HEADER, nulls).to_batches()
        row = {name: pa.nulls(1, totals.schema.field(name).type) for name in totals.column_names}
        yield pa.RecordBatch.from_pydict(
            {**row, HEADER: pa.array([header.to_bytes()], pa.binary())}
        )

    cached = (
        orders.repartition(partitions, F.col(customer))
        .mapInArrow(totals_of_partition, totals_type)
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    headers = [
        distributed.PartitionHeader.from_bytes(row[0])
        for row in cached.where(F.col(HEADER).isNotNull()).select(HEADER).collect()
    ]
    if not headers:  # no rows at all: every partition was empty
        cached.unpersist()
        raise RFMError("the DataFrame has no rows to score")
    header = distributed.merge_headers(headers)
    as_of_ticks = distributed.as_of_ticks(header)
    totals = cached.where(F.col(HEADER).isNull()).drop(HEADER)

    def per_partition(task):
        def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            table = pa.Table.from_batches(list(batches), schema=_totals_arrow(header))
            yield pa.RecordBatch.from_pydict({"part": pa.array([task(table)], pa.binary())})

        return run

    part_type = T.StructType([T.StructField("part", T.BinaryType(), True)])

    summarize = per_partition(
        lambda t: distributed.summarize(spec, t, header, as_of_ticks).to_bytes()
    )

    def candidates_of(current: distributed.Plan) -> list[bytes]:
        gather = per_partition(
            lambda t: distributed.candidates(spec, t, header, current).to_bytes()
        )
        return [row[0] for row in totals.mapInArrow(gather, part_type).collect()]

    final = distributed.final_plan(
        spec,
        as_of_ticks,
        (row[0] for row in totals.mapInArrow(summarize, part_type).collect()),
        candidates_of,
    )

    result_schema = _result_schema(header)

    def scores_of_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            table = distributed.apply(spec, pa.Table.from_batches([batch]), header, final)
            table = table.set_column(
                table.num_columns - 1, "segment", table.column("segment").cast(pa.string())
            )
            yield from table.cast(result_schema).to_batches()

    from pyspark.sql.pandas.types import from_arrow_schema

    table = totals.mapInArrow(scores_of_partition, from_arrow_schema(result_schema))
    stats = distributed.run_stats(spec, header, final)
    return SparkResult(table, final.edges, stats, cached)


def _totals_arrow(header: distributed.PartitionHeader) -> pa.Schema:
    return distributed.totals_schema(header.customer_type)


def _result_schema(header: distributed.PartitionHeader) -> pa.Schema:
    """The Arrow schema of the score rows (``segment`` as text: Spark has no dictionaries)."""
    customer_type = distributed.totals_schema(header.customer_type).field("customer").type
    return pa.schema(
        [
            (header.customer, customer_type),
            ("recency", pa.int64()),
            ("frequency", pa.int64()),
            ("monetary", pa.float64()),
            ("first_purchase", header.time_type),
            ("last_purchase", header.time_type),
            ("tenure", pa.int64()),
            ("R", pa.int8()),
            ("F", pa.int8()),
            ("M", pa.int8()),
            ("rfm_cell", pa.string()),
            ("rfm_score", pa.int16()),
            ("segment", pa.string()),
        ]
    )
