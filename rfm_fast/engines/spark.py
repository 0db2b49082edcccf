"""rfm_fast inside Spark: exact RFM scores of a Spark DataFrame, computed on the executors.

Needs ``pip install 'rfm_fast[spark]'`` (pyspark) on the driver and the executors. Each input
partition folds its rows into partial per-customer state before the shuffle (map-side
combine), split into one piece per output partition by a hash of the customer key; Spark's own
shuffle (``repartition``) moves the pieces, so what it moves grows with the customers of each
input partition, not with its rows (and is never more than the rows: a partition whose state
would be larger sends its rows instead). Every step runs in ``mapInArrow`` over whole
partitions, and only small summaries reach the driver (see :mod:`rfm_fast.engines.distributed` and
docs/distributed.md).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from rfm_fast.core.result import RunStats, result_schema
from rfm_fast.core.segments import SegmentsSpec
from rfm_fast.engines import distributed
from rfm_fast.errors import RFMError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

HEADER = "_rfm_header"
BUCKET = "_rfm_bucket"
PIECE = "_rfm_piece"
ROUTE_CANDIDATES = 64
"""Values of the bucket column tried per output partition to find one that lands in each."""
_ROUTES: dict[int, list[int]] = {}
"""The routes found so far, by number of partitions (see :func:`bucket_routes`)."""


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
        Partitions of the shuffle by customer, hence of ``.table``, and buckets of the
        map-side pieces (default: ``spark.sql.shuffle.partitions``).

    Returns
    -------
    SparkResult
        ``.table`` (a Spark DataFrame, computed lazily from cached per-customer totals),
        ``.edges`` and ``.stats``.

    Notes
    -----
    Runs three to four small Spark jobs before it returns: one that finds a value of the
    bucket column for each output partition, the per-customer totals (map-side pieces,
    shuffled and merged, cached with ``MEMORY_AND_DISK``) with the partition headers (row
    counts, latest timestamp), the summaries (histograms), and in exact mode the monetary
    candidates. ``result.table`` is computed from the cached totals;
    :meth:`SparkResult.release` drops them. A piece is one binary value in Spark: an input
    partition must not hold more than about 30 million customers of one output partition
    (Spark's 2 GB limit on a value).

    Examples
    --------
    With a Spark DataFrame ``orders_df`` (tested in tests/engines/test_spark.py, not as a doctest)::

        import rfm_fast.engines.spark

        result = rfm_fast.engines.spark.score_result(
            orders_df, customer="customer_id", timestamp="ordered_at", amount="amount"
        )
        result.table.groupBy("segment").count().show()
        result.edges, result.stats
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F
    from pyspark.sql import types as T
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

    spec = distributed.checked_options(
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
    orders = df.select(*spec.reading.columns.names_in(df.columns))
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

    totals_arrow = to_arrow_schema(totals_type)
    pieces_type = T.StructType(
        [
            T.StructField(BUCKET, T.IntegerType(), True),
            T.StructField(PIECE, T.BinaryType(), True),
            T.StructField(HEADER, T.BinaryType(), True),
        ]
    )
    routes = bucket_routes(orders.sparkSession, partitions)

    def pieces_of_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        first = next(batches, None)
        if first is None:
            return
        pieces, header = distributed.combine_partition(
            spec, itertools.chain([first], batches), first.schema, partitions
        )
        for bucket, piece in pieces:  # one per batch: a batch's binary column stays < 2 GB
            yield _pieces_batch([routes[bucket]], [piece], [None])
        yield _pieces_batch([None], [None], [header.to_bytes()])

    def totals_of_bucket(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        pieces, headers = [], []
        for batch in batches:
            pieces += [p for p in batch.column(PIECE).to_pylist() if p is not None]
            headers += [h for h in batch.column(HEADER).to_pylist() if h is not None]
        totals = distributed.merge_pieces(spec, pieces)
        if totals is not None:
            nulls = pa.nulls(totals.num_rows, pa.binary())
            yield from totals.append_column(HEADER, nulls).to_batches()
        for header in headers:  # passed on to the driver with the totals
            row = {field.name: pa.nulls(1, field.type) for field in totals_arrow}
            row[HEADER] = pa.array([header], pa.binary())
            yield pa.RecordBatch.from_pydict(row, schema=totals_arrow)

    cached = (
        orders.mapInArrow(pieces_of_partition, pieces_type)
        .repartition(partitions, F.col(BUCKET))
        .mapInArrow(totals_of_bucket, totals_type)
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
            schema = distributed.totals_schema(header.customer_type)
            table = pa.Table.from_batches(list(batches), schema=schema)
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

    schema = result_schema(
        header.customer,
        distributed.totals_schema(header.customer_type).field("customer").type,
        header.time_type,
        pa.string(),  # Spark has no dictionaries
    )

    def scores_of_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            table = distributed.apply(spec, pa.Table.from_batches([batch]), header, final)
            table = table.set_column(
                table.num_columns - 1, "segment", table.column("segment").cast(pa.string())
            )
            yield from table.cast(schema).to_batches()

    table = totals.mapInArrow(scores_of_partition, from_arrow_schema(schema))
    stats = distributed.run_stats(spec, header, final)
    return SparkResult(table, final.edges, stats, cached)


def bucket_routes(session, partitions: int) -> list[int]:
    """For each output partition, a value of the bucket column that Spark's hash partitioning
    (``repartition(partitions, column)``) sends there, found with Spark's own hash, so that
    every bucket lands in a partition of its own.

    The values depend only on ``partitions`` (Spark hashes with a fixed Murmur3 seed), so
    they are found once per process, in a small Spark job, and kept.
    """
    if partitions in _ROUTES:
        return _ROUTES[partitions]
    from pyspark.sql import functions as F

    values = session.range(ROUTE_CANDIDATES * partitions).select(
        F.col("id").cast("int").alias("value")
    )
    target = F.pmod(F.hash(F.col("value")), F.lit(partitions)).alias("target")
    first_of = values.groupBy(target).agg(F.min("value").alias("value")).collect()
    routes = {row["target"]: row["value"] for row in first_of}
    if len(routes) < partitions:  # never seen: 64 tries per partition all missed one
        raise RFMError(f"found no bucket value for every one of {partitions} partitions")
    _ROUTES[partitions] = [routes[p] for p in range(partitions)]
    return _ROUTES[partitions]


def _pieces_batch(buckets: list, pieces: list, headers: list) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [
            pa.array(buckets, pa.int32()),
            pa.array(pieces, pa.binary()),
            pa.array(headers, pa.binary()),
        ],
        names=[BUCKET, PIECE, HEADER],
    )
