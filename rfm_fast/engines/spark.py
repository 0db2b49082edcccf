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

import functools
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from rfm_fast.core.option_table import given_options
from rfm_fast.core.options import ScoringOptions
from rfm_fast.core.result import RunStats, result_schema
from rfm_fast.core.segments import SegmentsSpec
from rfm_fast.engines import distributed
from rfm_fast.errors import RFMError
from rfm_fast.optional import require

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
    returns: str = "net",
    amount_format: str | None = None,
    decimal: str = ".",
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
    customer, timestamp, amount, order, as_of, bins, frequency, monetary, returns, \
amount_format, decimal, segments, \
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
    arguments = dict(locals())  # (the options, before any other name is bound)
    require("pyspark.sql.pandas.types", "spark", "rfm_fast.engines.spark")
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    spec = distributed.checked_options(**given_options("spark", arguments))
    distributed.check_columns(spec, df.columns)
    orders = df.select(*spec.reading.columns.names_in(df.columns))
    if partitions is None:
        partitions = int(orders.sparkSession.conf.get("spark.sql.shuffle.partitions"))
    cached = _cached_totals(orders, spec, partitions)
    header = _merged_header(cached)
    totals = cached.where(F.col(HEADER).isNull()).drop(HEADER)
    final = _final_plan(totals, spec, header)
    schema = result_schema(
        header.customer,
        distributed.totals_schema(header.customer_type).field("customer").type,
        header.time_type,
        pa.string(),  # Spark has no dictionaries
    )
    scores = functools.partial(_scores_of_partition, spec, header, final, schema)
    table = totals.mapInArrow(scores, from_arrow_schema(schema))
    return SparkResult(table, final.edges, distributed.run_stats(spec, header, final), cached)


def _cached_totals(orders: DataFrame, spec: ScoringOptions, partitions: int) -> DataFrame:
    """Steps 1 and 2: the map-side pieces, moved by bucket with ``repartition``, merged into
    each bucket's totals, followed by the input partitions' headers (rows with ``HEADER``
    set), cached."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F
    from pyspark.sql import types as T
    from pyspark.sql.pandas.types import to_arrow_schema

    totals_type = T.StructType(
        [
            T.StructField("customer", orders.schema[spec.reading.columns.customer].dataType),
            T.StructField("first", T.LongType(), True),
            T.StructField("last", T.LongType(), True),
            T.StructField("frequency", T.LongType(), True),
            T.StructField("monetary", T.DoubleType(), True),
            T.StructField(HEADER, T.BinaryType(), True),
        ]
    )
    pieces_type = T.StructType(
        [
            T.StructField(BUCKET, T.IntegerType(), True),
            T.StructField(PIECE, T.BinaryType(), True),
            T.StructField(HEADER, T.BinaryType(), True),
        ]
    )
    routes = bucket_routes(orders.sparkSession, partitions)
    pieces = functools.partial(_pieces_of_partition, spec, routes)
    merged = functools.partial(_totals_of_bucket, spec, to_arrow_schema(totals_type))
    return (
        orders.mapInArrow(pieces, pieces_type)
        .repartition(partitions, F.col(BUCKET))
        .mapInArrow(merged, totals_type)
        .persist(StorageLevel.MEMORY_AND_DISK)
    )


def _merged_header(cached: DataFrame) -> distributed.PartitionHeader:
    """Step 3: the headers of every input partition, merged on the driver."""
    from pyspark.sql import functions as F

    rows = cached.where(F.col(HEADER).isNotNull()).select(HEADER).collect()
    if not rows:  # no rows at all: every partition was empty
        cached.unpersist()
        raise RFMError("the DataFrame has no rows to score")
    return distributed.merge_headers(distributed.PartitionHeader.from_bytes(r[0]) for r in rows)


def _final_plan(
    totals: DataFrame, spec: ScoringOptions, header: distributed.PartitionHeader
) -> distributed.Plan:
    """Steps 4 and 5: the partitions' histograms, and where needed their monetary candidates,
    gathered by two small jobs into the final plan."""
    from pyspark.sql import types as T

    part_type = T.StructType([T.StructField("part", T.BinaryType(), True)])
    as_of = distributed.as_of_ticks(header)

    def gathered(task: Callable[[pa.Table], bytes]) -> list[bytes]:
        job = functools.partial(_bytes_of_partition, task, header)
        return [row[0] for row in totals.mapInArrow(job, part_type).collect()]

    return distributed.final_plan(
        spec,
        as_of,
        gathered(functools.partial(_histogram_bytes, spec, header, as_of)),
        lambda current: gathered(functools.partial(_candidate_bytes, spec, header, current)),
    )


def _pieces_of_partition(
    spec: ScoringOptions, routes: list[int], batches: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """An input partition's pieces, one batch each (a batch's binary column stays below 2 GB),
    then its header."""
    first = next(batches, None)
    if first is None:
        return
    pieces, header = distributed.combine_partition(
        spec, itertools.chain([first], batches), first.schema, len(routes)
    )
    for bucket, piece in pieces:
        yield _pieces_batch([routes[bucket]], [piece], [None])
    yield _pieces_batch([None], [None], [header.to_bytes()])


def _totals_of_bucket(
    spec: ScoringOptions, totals_arrow: pa.Schema, batches: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """A bucket's totals from its pieces, then the headers that reached it, passed on."""
    pieces, headers = [], []
    for batch in batches:  # the values as buffers over the batch's memory, not copies
        pieces += [p.as_buffer() for p in batch.column(PIECE) if p.is_valid]
        headers += [h.as_py() for h in batch.column(HEADER) if h.is_valid]
    totals = distributed.merge_pieces(spec, pieces)
    if totals is not None:
        nulls = pa.nulls(totals.num_rows, pa.binary())
        yield from totals.append_column(HEADER, nulls).to_batches()
    for header in headers:
        row = {field.name: pa.nulls(1, field.type) for field in totals_arrow}
        row[HEADER] = pa.array([header], pa.binary())
        yield pa.RecordBatch.from_pydict(row, schema=totals_arrow)


def _bytes_of_partition(
    task: Callable[[pa.Table], bytes],
    header: distributed.PartitionHeader,
    batches: Iterator[pa.RecordBatch],
) -> Iterator[pa.RecordBatch]:
    """One row holding ``task`` of a partition's totals."""
    schema = distributed.totals_schema(header.customer_type)
    table = pa.Table.from_batches(list(batches), schema=schema)
    yield pa.RecordBatch.from_pydict({"part": pa.array([task(table)], pa.binary())})


def _histogram_bytes(
    spec: ScoringOptions, header: distributed.PartitionHeader, as_of: int | None, t: pa.Table
) -> bytes:
    return distributed.histograms_of(spec, t, header, as_of).to_bytes()


def _candidate_bytes(
    spec: ScoringOptions,
    header: distributed.PartitionHeader,
    current: distributed.Plan,
    t: pa.Table,
) -> bytes:
    return distributed.candidates(spec, t, header, current).to_bytes()


def _scores_of_partition(
    spec: ScoringOptions,
    header: distributed.PartitionHeader,
    final: distributed.Plan,
    schema: pa.Schema,
    batches: Iterator[pa.RecordBatch],
) -> Iterator[pa.RecordBatch]:
    """Step 6: the result rows of a partition's customers (``segment`` as text)."""
    for batch in batches:
        table = distributed.apply(spec, pa.Table.from_batches([batch]), header, final)
        table = table.set_column(
            table.num_columns - 1, "segment", table.column("segment").cast(pa.string())
        )
        yield from table.cast(schema).to_batches()


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
