"""rfm_fast.engines.spark and rfm_fast.engines.dask end to end on one machine, against
rfm_fast.score.

Reads a Parquet file of orders (benchmarks/generate.py output) with the engine, scores it, and
writes the scores to Parquet; prints wall times and checks that the scores equal those of
rfm_fast.score on the same file. A local engine on one machine measures the overhead of the
integration (shuffle, Python workers, extra jobs), not the speed of a cluster.

What the shuffle moves is measured by the engines themselves: for Spark, the shuffle write
bytes of every stage (from its monitoring REST API); for Dask, the bytes of the shards its p2p
shuffle sent plus the bytes workers sent each other for task inputs
(``transfer_outgoing_bytes_total``).

    python benchmarks/distributed_run.py benchmarks/data/orders_10m.parquet --engine spark
    python benchmarks/distributed_run.py benchmarks/data/orders_10m.parquet --engine dask
    python benchmarks/distributed_run.py lines.parquet --engine spark --distinct \
        --customer customer_id --order order_id --amount 'quantity*unit_price'
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import rfm_fast


def spark_shuffle_bytes(spark) -> int:
    """Shuffle write bytes of every stage this application ran, from Spark's REST API."""
    url = f"{spark.sparkContext.uiWebUrl}/api/v1/applications/{spark.sparkContext.applicationId}"
    with urllib.request.urlopen(f"{url}/stages?status=complete", timeout=30) as response:
        stages = json.load(response)
    return sum(stage.get("shuffleWriteBytes", 0) for stage in stages)


def dask_shuffle_bytes(client) -> dict:
    """Bytes the p2p shuffle sent as shards, and bytes workers sent each other for inputs."""
    metrics = client.run_on_scheduler(
        lambda dask_scheduler: dict(dask_scheduler.cumulative_worker_metrics)
    )
    shards = sum(
        v for k, v in metrics.items() if k[:1] == ("p2p",) and k[-2:] == ("shards", "bytes")
    )
    sent = client.run(lambda dask_worker: dask_worker.transfer_outgoing_bytes_total)
    return {"p2p_shard_bytes": int(shards), "worker_transfer_bytes": int(sum(sent.values()))}


def run_spark(path: Path, out: Path, partitions: int, columns: dict) -> dict:
    from pyspark.sql import SparkSession

    import rfm_fast.engines.spark

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    spark = (
        SparkSession.builder.master(f"local[{os.cpu_count()}]")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "200000")
        .config("spark.driver.memory", "8g")
        .config("spark.ui.enabled", "true")  # its REST API reports the shuffle bytes
        .config("spark.ui.port", "0")
        .getOrCreate()
    )
    started = time.perf_counter()
    df = spark.read.parquet(str(path))
    result = rfm_fast.engines.spark.score_result(df, **columns, partitions=partitions)
    planned = time.perf_counter() - started
    result.table.write.mode("overwrite").parquet(str(out))
    wall = time.perf_counter() - started
    shuffled = spark_shuffle_bytes(spark)
    result.release()
    spark.stop()
    return {
        "edges": result.edges,
        "planned_s": planned,
        "wall_s": wall,
        "shuffle": {"shuffle_write_bytes": shuffled},
    }


def run_dask(path: Path, out: Path, partitions: int, columns: dict) -> dict:
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    import rfm_fast.engines.dask

    cluster = LocalCluster(
        n_workers=os.cpu_count(), threads_per_worker=1, dashboard_address=None, host="127.0.0.1"
    )
    with cluster, Client(cluster) as client:
        started = time.perf_counter()
        ddf = dd.read_parquet(str(path))
        result = rfm_fast.engines.dask.score_result(
            ddf, **columns, partitions=partitions, batch_rows=1 << 18
        )
        planned = time.perf_counter() - started
        result.table.to_parquet(str(out))
        wall = time.perf_counter() - started
        shuffled = dask_shuffle_bytes(client)
    return {"edges": result.edges, "planned_s": planned, "wall_s": wall, "shuffle": shuffled}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--engine", choices=("spark", "dask"), required=True)
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--distinct", action="store_true", help="frequency = distinct order ids")
    parser.add_argument("--customer", default="customer_id")
    parser.add_argument("--timestamp", default="ordered_at")
    parser.add_argument("--amount", default="amount", help="a column, or A*B for a product")
    parser.add_argument("--order", default="order_id", help="the order id (with --distinct)")
    args = parser.parse_args()
    columns = dict(
        customer=args.customer,
        timestamp=args.timestamp,
        amount=args.amount,
        order=args.order if args.distinct else None,
    )
    started = time.perf_counter()
    expected = rfm_fast.score(str(args.file), **columns)
    single = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "scores"
        run = run_spark if args.engine == "spark" else run_dask
        measured = run(args.file, out, args.partitions, columns)
        got = pq.read_table(out).select(expected.table.column_names)
    got = got.take(pc.sort_indices(got.column(args.customer)))
    want = expected.table
    same = all(
        got.column(name).cast(pa.string()).equals(want.column(name).cast(pa.string()))
        for name in (args.customer, "recency", "frequency", "monetary", "R", "F", "M", "segment")
    )
    report = {
        "engine": args.engine,
        "file": str(args.file),
        "partitions": args.partitions,
        "frequency": "distinct orders" if args.distinct else "rows",
        "rows": expected.stats.rows_read,
        "customers": expected.stats.customers,
        "rfm_fast_score_s": round(single, 2),
        "engine_until_edges_s": round(measured["planned_s"], 2),
        "engine_wall_s": round(measured["wall_s"], 2),
        **measured["shuffle"],
        "identical_scores": bool(same and measured["edges"] == expected.edges),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
