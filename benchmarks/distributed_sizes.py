"""What crosses the network in a distributed run, measured: bytes per step and partition count.

Runs the steps of rfm_fast.engines.distributed in this process over the first ``--rows`` orders of a
Parquet file (benchmarks/generate.py output), cut into P input partitions of consecutive rows
(as an engine reads a file) and P buckets, and reports for each P the bytes of the orders read
(what a shuffle of the rows would move), of the map-side pieces (what the shuffle moves), of
the partition headers, the summaries, the monetary candidates, the per-customer totals (which
stay on the workers), and of the mergeable CustomerState of the whole input with and without
its distinct pairs.

    python benchmarks/distributed_sizes.py benchmarks/data/orders_100m.parquet --rows 20M \
        --partitions 4,16,64 --json benchmarks/results/distributed_sizes.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from generate import parse_count  # benchmarks/ is on the path when run as a script

from rfm_fast import CustomerState
from rfm_fast.engines import distributed

CUSTOMER, ORDER, TIMESTAMP, AMOUNT = "customer_id", "order_id", "ordered_at", "amount"


def read_rows(path: Path, rows: int) -> pa.Table:
    batches, total = [], 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=1 << 20):
        batches.append(batch.slice(0, rows - total))
        total += batches[-1].num_rows
        if total >= rows:
            break
    return pa.Table.from_batches(batches)


def partitions_of(table: pa.Table, parts: int) -> list[pa.Table]:
    """The rows cut into ``parts`` input partitions of consecutive rows."""
    bounds = np.linspace(0, table.num_rows, parts + 1).astype(np.int64)
    return [table.slice(lo, hi - lo) for lo, hi in itertools.pairwise(bounds)]


def measure(table: pa.Table, parts: int, order: str | None) -> dict:
    spec = distributed.checked_options(
        customer=CUSTOMER, timestamp=TIMESTAMP, amount=AMOUNT, order=order
    )
    read = table.select(spec.reading.columns.names_in(table.column_names))
    started = time.perf_counter()
    combined = [
        distributed.combine_partition(spec, p.to_batches(1 << 20), read.schema, parts)
        for p in partitions_of(read, parts)
    ]
    combine_s = time.perf_counter() - started
    header = distributed.merge_headers(h for _, h in combined)
    started = time.perf_counter()
    pieces = [
        [piece for pieces, _ in combined for b, piece in pieces if b == bucket]
        for bucket in range(parts)
    ]
    buckets = [distributed.bucket_totals(distributed.merge_pieces(spec, p), header) for p in pieces]
    merge_s = time.perf_counter() - started
    as_of = distributed.as_of_ticks(header)
    started = time.perf_counter()
    summaries = [distributed.histograms_of(spec, t, header, as_of).to_bytes() for t in buckets]
    summary = distributed.empty_histograms(spec)
    for blob in summaries:
        summary = summary + distributed.Histograms.from_bytes(blob)
    current = distributed.plan(spec, summary, as_of)
    blobs = [distributed.candidates(spec, t, header, current).to_bytes() for t in buckets]
    final = distributed.refine(spec, current, [distributed.Candidates.from_bytes(b) for b in blobs])
    plan_s = time.perf_counter() - started
    started = time.perf_counter()
    scored = sum(distributed.apply(spec, t, header, final).num_rows for t in buckets)
    apply_s = time.perf_counter() - started
    return {
        "partitions": parts,
        "frequency": "distinct orders" if order else "rows",
        "customers": scored,
        "rows_bytes": read.nbytes,
        "pieces_bytes": sum(len(p) for bucket in pieces for p in bucket),
        "headers_bytes": sum(len(h.to_bytes()) for _, h in combined),
        "summaries_bytes": sum(len(s) for s in summaries),
        "pending_ranks": len(current.pending),
        "candidates_bytes": sum(len(b) for b in blobs),
        "totals_bytes": sum(t.nbytes for t in buckets),
        "combine_s": round(combine_s, 2),
        "merge_s": round(merge_s, 2),
        "summaries_plan_s": round(plan_s, 2),
        "apply_s": round(apply_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--rows", default="20M")
    parser.add_argument("--partitions", default="4,16,64")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    table = read_rows(args.file, parse_count(args.rows))
    customers = pc.count_distinct(table.column(CUSTOMER)).as_py()
    print(f"{table.num_rows:,} orders, {customers:,} customers")
    results = []
    for order in (None, ORDER):
        for parts in (int(p) for p in args.partitions.split(",")):
            results.append(measure(table, parts, order))
            print(json.dumps(results[-1]))
    columns = dict(customer=CUSTOMER, timestamp=TIMESTAMP, amount=AMOUNT, order=ORDER)
    state = CustomerState.of(table, **columns)
    states = {
        "state_with_pairs_bytes": len(state.to_bytes()),
        "state_complete_bytes": len(state.completed().to_bytes()),
    }
    print(json.dumps(states))
    if args.json:
        args.json.write_text(
            json.dumps({"rows": table.num_rows, "runs": results, **states}, indent=1)
        )


if __name__ == "__main__":
    main()
