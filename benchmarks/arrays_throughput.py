"""Orders per second of the NumPy-level layer, ``rfm_fast.core.arrays.aggregate``, on
in-memory arrays.

The arrays follow the reference workload (lognormal activity, sparse 64-bit ids, lognormal
amounts, ``datetime64[us]`` over three years). Each thread count gets a warm-up call, then
``--repeat`` timed calls; the median and the spread of the wall time are printed, with the
process CPU seconds of the median call (on a shared machine, CPU time moves less than wall time).
The final sort of customers by key is included, as it is in every call. ``--layout sorted``
orders the rows by customer first (a customer-sorted file: runs of a customer's rows).

    python benchmarks/arrays_throughput.py --orders 100M --customers 5M --threads 1,2
    python benchmarks/arrays_throughput.py --orders 10M --customers 500K --layout sorted
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
from generate import SEED, SPAN_US, START, parse_count  # type: ignore[import-not-found]

from rfm_fast.core import arrays


def workload(orders: int, customers: int, seed: int = SEED):
    rng = np.random.default_rng(seed)
    ids = np.unique(rng.integers(1, 2**63 - 1, size=int(customers * 1.01) + 16))
    ids = rng.permutation(ids)[:customers]
    activity = np.cumsum(rng.lognormal(0.0, 1.0, customers))
    activity /= activity[-1]
    who = np.searchsorted(activity, rng.random(orders), side="right")
    keys = ids[who]
    del who
    when = START + rng.integers(0, SPAN_US, orders).astype("timedelta64[us]")
    amount = np.round(rng.lognormal(3.0, 1.0, orders), 2)
    return keys, when, amount


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", default="20M")
    parser.add_argument("--customers", default="1M")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--layout", choices=("shuffled", "sorted"), default="shuffled")
    args = parser.parse_args()
    keys, when, amount = workload(parse_count(args.orders), parse_count(args.customers))
    if args.layout == "sorted":
        order = np.argsort(keys, kind="stable")
        keys, when, amount = keys[order], when[order], amount[order]
        del order
    results = []
    for threads in (int(t) for t in args.threads.split(",")):
        arrays.aggregate(keys[:100_000], when[:100_000], amount[:100_000], threads=threads)
        walls, cpus = [], []
        for _ in range(args.repeat):
            started, cpu = time.perf_counter(), time.process_time()
            metrics = arrays.aggregate(keys, when, amount, threads=threads)
            walls.append(time.perf_counter() - started)
            cpus.append(time.process_time() - cpu)
        median = statistics.median(walls)
        results.append(
            {
                "threads": threads,
                "layout": args.layout,
                "orders": int(keys.shape[0]),
                "customers": len(metrics),
                "walls_s": walls,
                "median_s": median,
                "cpu_s": cpus,
                "orders_per_s": keys.shape[0] / median,
            }
        )
        print(
            f"{threads} thread(s): {keys.shape[0] / median / 1e6:.1f}M orders/s "
            f"(median {median:.2f} s, spread {max(walls) - min(walls):.2f} s, "
            f"CPU {statistics.median(cpus):.2f} s, {len(metrics):,} customers, {args.layout})"
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
