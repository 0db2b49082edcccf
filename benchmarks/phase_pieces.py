"""CPU seconds of the pieces of a run around the aggregation: reading the three columns of an
orders file, sorting the customer keys, scoring R, F and M, assigning segments, and writing the
result to Parquet. Each piece runs alone, ``--runs`` times, in this process; the median, the
minimum and the maximum of its CPU time (every thread) are printed, with the median wall time.

    python benchmarks/generate.py --orders 10M --customers 500K -o /tmp/r10.parquet
    rfm score /tmp/r10.parquet --customer customer_id --timestamp ordered_at --amount amount \\
        -o /tmp/r10_scores.parquet
    python benchmarks/phase_pieces.py /tmp/r10.parquet /tmp/r10_scores.parquet

The orders file gives the read (columns ``--customer``, ``--timestamp``, ``--amount``); the
result file (an ``rfm score`` output) gives the customers for the other pieces, their keys
shuffled before the sort as the aggregation leaves them. For a before and after, run the same
command with ``PYTHONPATH`` set to each checkout, in turns; CPU time is steadier than wall time
on a shared machine, but both move with the load.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rfm_fast.core import arrays, io, parallel, segments
from rfm_fast.core.arrow import key_column


def timed(task: Callable[[], object], runs: int) -> tuple[list[float], list[float]]:
    """CPU and wall seconds of ``runs`` calls of ``task``."""
    cpu, wall = [], []
    for _ in range(runs):
        started_cpu, started = time.process_time(), time.perf_counter()
        task()
        cpu.append(time.process_time() - started_cpu)
        wall.append(time.perf_counter() - started)
    return cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("orders", type=Path, help="Parquet file of orders")
    parser.add_argument("result", type=Path, help="Parquet file of an rfm score result")
    parser.add_argument("--customer", default="customer_id")
    parser.add_argument("--timestamp", default="ordered_at")
    parser.add_argument("--amount", default="amount")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("phase_pieces_out.parquet"))
    args = parser.parse_args()

    table = pq.read_table(args.result)
    key = table.column_names[0]
    keys = np.random.default_rng(0).permutation(table.column(key).to_numpy())
    recency, frequency, monetary, tenure = (
        table.column(name).to_numpy() for name in ("recency", "frequency", "monetary", "tenure")
    )
    pool = ThreadPoolExecutor(args.threads)

    def run(task: Callable[[int], object], items) -> None:
        list(pool.map(task, items))

    def read() -> None:
        source = io.open_source(args.orders)
        _, batches = source.open([args.customer, args.timestamp, args.amount])
        for _ in batches:
            pass

    text = None if keys.dtype.kind in "iu" else key_column(pa.array(keys, pa.large_string()))

    def sort_keys() -> None:
        if text is None:
            parallel.radix_sorted(keys, args.threads, run)
        else:
            parallel.parallel_text_argsort(text.offsets, text.data, args.threads, run)

    def score() -> arrays.Scores:
        return arrays.score_checked(recency, frequency, monetary, 5, "exact", {})

    scores = score()

    def assign() -> None:
        segments.assign_segments(
            segments.DEFAULT_RULES,
            {"R": scores.R, "F": scores.F, "M": scores.M},
            {"recency": recency, "tenure": tenure, "frequency": frequency, "monetary": monetary},
        )

    def write() -> None:
        io.write_table(table, args.out)

    print(f"{table.num_rows:,} customers; {args.runs} runs; CPU seconds (every thread)")
    for name, task in (
        ("read", read),
        ("sort keys", sort_keys),
        ("score R, F, M", score),
        ("segments", assign),
        ("write", write),
    ):
        cpu, wall = timed(task, args.runs)
        print(
            f"{name:14s} CPU median {statistics.median(cpu):.3f} ({min(cpu):.3f}-{max(cpu):.3f}), "
            f"wall median {statistics.median(wall):.3f}",
            flush=True,
        )
    args.out.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
