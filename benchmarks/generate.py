"""The seeded reference workload of docs/performance.md (GUIDE section 4), written to Parquet.

Orders are drawn over three years for customers whose activity is lognormal; customer ids are
sparse 64-bit integers (or text), amounts lognormal. The file is written one row group (1M rows,
snappy) at a time, so generating 500M orders needs no more memory than generating 1M.

Variants:

* ``--ids int`` (default) or ``--ids string``: customer ids as int64, or as text like
  ``"c-00f3a9c2d1e4b567"``.
* ``--lines N``: line-level rows: each order id spans 1..2N-1 consecutive rows (mean N) of the
  same customer and time, each with its own amount. Without it, every row is its own order.

Examples
--------
    python benchmarks/generate.py --orders 100M --customers 5M \
        -o benchmarks/data/orders_100m.parquet
    python benchmarks/generate.py --orders 10M --customers 500k --ids string --lines 4 \
        -o benchmarks/data/lines_10m.parquet
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SEED = 20_261_123
ROW_GROUP = 1 << 20
START = np.datetime64("2021-01-01T00:00:00", "us")
SPAN_US = 3 * 365 * 86_400 * 1_000_000
SCHEMA_INT = pa.schema(
    [
        ("customer_id", pa.int64()),
        ("order_id", pa.int64()),
        ("ordered_at", pa.timestamp("us")),
        ("amount", pa.float64()),
    ]
)


def parse_count(text: str) -> int:
    """``100M``, ``500k``, ``1.5G`` or a plain integer."""
    text = text.strip().lower().replace("_", "")
    scale = {"k": 10**3, "m": 10**6, "g": 10**9, "b": 10**9}.get(text[-1:], 1)
    number = text[:-1] if scale != 1 else text
    return int(float(number) * scale)


def customer_ids(rng: np.random.Generator, customers: int, ids: str) -> pa.Array:
    """Distinct sparse ids: random 63-bit integers, or their text form."""
    values = np.unique(rng.integers(1, 2**63 - 1, size=int(customers * 1.01) + 16))
    values = rng.permutation(values)[:customers]
    if ids == "int":
        return pa.array(values)
    return pa.array(np.char.add("c-", np.char.zfill(np.char.mod("%x", values), 16)))


def generate(
    path: Path, orders: int, customers: int, ids: str = "int", lines: int = 0, seed: int = SEED
) -> dict[str, int]:
    """Write the workload to ``path``; returns rows, orders and customers written."""
    rng = np.random.default_rng(seed)
    keys = customer_ids(rng, customers, ids)
    activity = np.cumsum(rng.lognormal(0.0, 1.0, customers))
    activity /= activity[-1]
    schema = SCHEMA_INT if ids == "int" else SCHEMA_INT.set(0, pa.field("customer_id", pa.string()))
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    seen = np.zeros(customers, dtype=bool)
    rows_written = orders_written = 0
    started = time.perf_counter()
    with pq.ParquetWriter(temporary, schema, compression="snappy") as writer:
        while rows_written < orders if not lines else orders_written < orders:
            n_orders = min(ROW_GROUP, orders - orders_written)
            if lines:
                n_orders = min(max(ROW_GROUP // lines, 1), orders - orders_written)
            who = np.searchsorted(activity, rng.random(n_orders), side="right")
            seen[who] = True
            when = START + rng.integers(0, SPAN_US, n_orders).astype("timedelta64[us]")
            order_id = orders_written + np.arange(n_orders, dtype=np.int64)
            if lines:
                per_order = 1 + rng.integers(0, 2 * lines - 1, n_orders)
                who = np.repeat(who, per_order)
                when = np.repeat(when, per_order)
                order_id = np.repeat(order_id, per_order)
            amount = np.round(rng.lognormal(3.0, 1.0, who.shape[0]), 2)
            writer.write_table(
                pa.table(
                    [
                        keys.take(pa.array(who)),
                        order_id,
                        pa.array(when, pa.timestamp("us")),
                        amount,
                    ],
                    schema=schema,
                ),
                row_group_size=ROW_GROUP,
            )
            rows_written += who.shape[0]
            orders_written += n_orders
            if sys.stderr.isatty():
                print(
                    f"\r{rows_written:,} rows, {time.perf_counter() - started:.0f} s",
                    end="",
                    file=sys.stderr,
                )
    temporary.replace(path)
    return {"rows": rows_written, "orders": orders_written, "customers": int(seen.sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", default="1M", help="number of orders (e.g. 100M)")
    parser.add_argument("--customers", default=None, help="customer pool (default: orders / 20)")
    parser.add_argument("--ids", choices=("int", "string"), default="int")
    parser.add_argument("--lines", type=int, default=0, help="mean rows per order (line-level)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    orders = parse_count(args.orders)
    customers = parse_count(args.customers) if args.customers else max(orders // 20, 1)
    started = time.perf_counter()
    written = generate(args.output, orders, customers, args.ids, args.lines, args.seed)
    print(
        f"\nwrote {written['rows']:,} rows ({written['orders']:,} orders, "
        f"{written['customers']:,} customers) to {args.output} in "
        f"{time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    main()
