"""rfm_fast.spark and rfm_fast.dask end to end on one machine, against rfm_fast.score.

Reads a Parquet file of orders (benchmarks/generate.py output) with the engine, scores it, and
writes the scores to Parquet; prints wall times and checks that the scores equal those of
rfm_fast.score on the same file. A local engine on one machine measures the overhead of the
integration (shuffle, Python workers, extra jobs), not the speed of a cluster.

    python benchmarks/distributed_run.py benchmarks/data/orders_10m.parquet --engine spark
    python benchmarks/distributed_run.py benchmarks/data/orders_10m.parquet --engine dask
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import rfm_fast

COLUMNS = dict(customer="customer_id", timestamp="ordered_at", amount="amount")


def run_spark(path: Path, out: Path, partitions: int, order: str | None) -> dict:
    from pyspark.sql import SparkSession

    import rfm_fast.spark

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    spark = (
        SparkSession.builder.master(f"local[{os.cpu_count()}]")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "200000")
        .config("spark.driver.memory", "8g")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    started = time.perf_counter()
    df = spark.read.parquet(str(path))
    result = rfm_fast.spark.score_result(df, **COLUMNS, order=order, partitions=partitions)
    planned = time.perf_counter() - started
    result.table.write.mode("overwrite").parquet(str(out))
    wall = time.perf_counter() - started
    result.release()
    spark.stop()
    return {"edges": result.edges, "planned_s": planned, "wall_s": wall}


def run_dask(path: Path, out: Path, partitions: int, order: str | None) -> dict:
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    import rfm_fast.dask

    cluster = LocalCluster(
        n_workers=os.cpu_count(), threads_per_worker=1, dashboard_address=None, host="127.0.0.1"
    )
    with cluster, Client(cluster):
        started = time.perf_counter()
        ddf = dd.read_parquet(str(path))
        result = rfm_fast.dask.score_result(
            ddf, **COLUMNS, order=order, partitions=partitions, batch_rows=1 << 18
        )
        planned = time.perf_counter() - started
        result.table.to_parquet(str(out))
        wall = time.perf_counter() - started
    return {"edges": result.edges, "planned_s": planned, "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--engine", choices=("spark", "dask"), required=True)
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--distinct", action="store_true", help="frequency = distinct order ids")
    args = parser.parse_args()
    order = "order_id" if args.distinct else None
    started = time.perf_counter()
    expected = rfm_fast.score(str(args.file), **COLUMNS, order=order)
    single = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "scores"
        run = run_spark if args.engine == "spark" else run_dask
        measured = run(args.file, out, args.partitions, order)
        got = pq.read_table(out).select(expected.table.column_names)
    got = got.take(pc.sort_indices(got.column("customer_id")))
    want = expected.table
    same = all(
        got.column(name).cast(pa.string()).equals(want.column(name).cast(pa.string()))
        for name in ("customer_id", "recency", "frequency", "monetary", "R", "F", "M", "segment")
    )
    report = {
        "engine": args.engine,
        "file": str(args.file),
        "partitions": args.partitions,
        "frequency": "distinct orders" if order else "rows",
        "rows": expected.stats.rows_read,
        "customers": expected.stats.customers,
        "rfm_fast_score_s": round(single, 2),
        "engine_until_edges_s": round(measured["planned_s"], 2),
        "engine_wall_s": round(measured["wall_s"], 2),
        "identical_scores": bool(same and measured["edges"] == expected.edges),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
