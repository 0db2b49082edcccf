"""rfm_fast.engines.spark against a real local Spark (local[2]): identical to rfm_fast.score.

Needs Java (CI installs a headless JRE from the OS packages) and ``rfm_fast[spark]``.
Partitions are made of several Arrow batches (``maxRecordsPerBatch``), and the orders are
spread over the input partitions round-robin, so an order's lines start out apart.
"""

from __future__ import annotations

import os
import sys

import pyarrow as pa
import pytest
from helpers import assert_same_scores, order_lines, require

import rfm_fast

pyspark = require("pyspark", program="java")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    # pyspark 4.x warns that it is not tested with pandas 3; rfm_fast.engines.spark does not use
    # pandas
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
]


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    # Spark binds to the machine's address unless told otherwise; tests stay on loopback.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]")
        .appName("rfm_fast tests")
        .config("spark.sql.shuffle.partitions", "5")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "300")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    yield session
    session.stop()


def _check(spark, table: pa.Table, **options) -> rfm_fast.engines.spark.SparkResult:
    import rfm_fast.engines.spark

    df = spark.createDataFrame(table).repartition(7)  # round robin: orders' lines spread out
    expected = rfm_fast.score(df.toArrow(), **options)
    result = rfm_fast.engines.spark.score_result(df, **options)
    try:
        assert_same_scores(result.table.toArrow(), expected, options["customer"])
        assert result.edges == expected.edges
        assert result.stats == expected.stats
    finally:
        result.release()
    return result


def test_cdnow_example(spark):
    table = rfm_fast.datasets.load_example()
    result = _check(spark, table, customer="customer_id", timestamp="date", amount="dollar_value")
    assert result.stats.customers == 23_570


@pytest.mark.parametrize("method", ["exact", "approx"])
def test_order_lines_with_text_ids_nulls_and_returns(spark, method):
    result = _check(
        spark,
        order_lines(),
        customer="customer",
        timestamp="ordered_at",
        amount="amount",
        order="order_id",
        method=method,
        monetary="mean",
    )
    assert result.stats.dropped["null_customer"] > 0


def test_days_thresholds_and_as_of(spark):
    _check(
        spark,
        order_lines(seed=5),
        customer="customer",
        timestamp="ordered_at",
        amount="amount",
        frequency="days",
        as_of="1971-01-01",
        thresholds={"recency": [30, 90, 180, 365]},
    )


def test_missing_column_is_a_clear_error(spark):
    import rfm_fast.engines.spark

    df = spark.createDataFrame(order_lines(rows=20))
    with pytest.raises(rfm_fast.RFMError, match="column\\(s\\) 'nope' not found"):
        rfm_fast.engines.spark.score(df, customer="nope", timestamp="ordered_at", amount="amount")


def test_zoned_timestamps_count_days_in_the_session_zone(spark):
    """mapInArrow hands TimestampType columns over zoned in the session's time zone, so days
    are counted there: the same as rfm_fast.score on the instants in that zone."""
    import rfm_fast.engines.spark

    table = order_lines(seed=8, rows=2_000)
    zoned = table.set_column(
        1, "ordered_at", table.column("ordered_at").cast(pa.timestamp("us", "UTC"))
    )
    options = dict(customer="customer", timestamp="ordered_at", amount="amount", frequency="days")
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")
    try:
        df = spark.createDataFrame(zoned).repartition(3)
        result = rfm_fast.engines.spark.score_result(df, **options)
        got = result.table.toArrow()
        result.release()
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")
    local = zoned.set_column(
        1, "ordered_at", zoned.column("ordered_at").cast(pa.timestamp("us", "America/New_York"))
    )
    expected = rfm_fast.score(local, **options)
    assert_same_scores(got, expected, "customer")
    assert result.edges == expected.edges
    in_utc = rfm_fast.score(zoned, **options).table.column("frequency")
    assert not in_utc.equals(expected.table.column("frequency"))  # the zone does matter here


@pytest.mark.parametrize("partitions", [1, 5, 16])
def test_every_bucket_lands_in_a_partition_of_its_own(spark, partitions):
    """The map-side pieces of bucket b carry routes[b], which Spark's hash partitioning sends to
    partition b: no two buckets share a partition, none is empty."""
    from pyspark.sql import functions as F

    from rfm_fast.engines.spark import bucket_routes

    routes = bucket_routes(spark, partitions)
    df = spark.createDataFrame([(b, value) for b, value in enumerate(routes)], "bucket int, v int")
    placed = df.repartition(partitions, F.col("v")).select(
        "bucket", F.spark_partition_id().alias("partition")
    )
    assert sorted(tuple(row) for row in placed.collect()) == [(b, b) for b in range(partitions)]
