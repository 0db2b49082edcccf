"""The seeded reference workload of docs/performance.md (GUIDE section 4), written to Parquet.

Orders are drawn over three years for customers whose activity is lognormal; customer ids are
sparse 64-bit integers (or text), amounts lognormal. The file is written one row group (1M rows,
snappy) at a time, so generating 500M orders needs no more memory than generating 1M.

Variants (the defaults give the reference file of docs/performance.md, bit for bit):

* ``--ids``: ``random`` (default; ``int`` is the same): distinct random 63-bit integers;
  ``dense``: 0..customers-1 in a random order of first appearance; ``multiples``: multiples of
  1,000 (sparse, but regular); ``string``: text like ``"c-00f3a9c2d1e4b567"``.
* ``--sigma S``: the lognormal sigma of customer activity (default 1.0; 1.2 is more skewed).
* ``--lines N``: line-level rows: each order id spans 1..2N-1 consecutive rows (mean N) of the
  same customer and time, each with its own amount. Without it, every row is its own order.
  With ``--invoices text``, order ids are text (``"INV0000123"``); with ``--amounts product``,
  the file has ``quantity`` and ``unit_price`` instead of ``amount`` (score it with
  ``amount="quantity*unit_price"``).
* ``--timestamps``: ``us`` (default, ``timestamp[us]``) or ``date32``.
* ``--row-group N``: rows per Parquet row group (default 1M).
* ``--layout``: ``shuffled`` (default: rows in random customer order) or ``sorted`` (all of a
  customer's rows together, customers in key order, as in an export sorted by customer).

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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SEED = 20_261_123
ROW_GROUP = 1 << 20
START = np.datetime64("2021-01-01T00:00:00", "us")
SPAN_US = 3 * 365 * 86_400 * 1_000_000


def parse_count(text: str) -> int:
    """``100M``, ``500k``, ``1.5G`` or a plain integer."""
    text = text.strip().lower().replace("_", "")
    scale = {"k": 10**3, "m": 10**6, "g": 10**9, "b": 10**9}.get(text[-1:], 1)
    number = text[:-1] if scale != 1 else text
    return int(float(number) * scale)


def customer_ids(rng: np.random.Generator, customers: int, ids: str) -> pa.Array:
    """Distinct customer ids in the layout ``ids`` (see the module docstring)."""
    if ids in ("int", "random", "string"):
        values = np.unique(rng.integers(1, 2**63 - 1, size=int(customers * 1.01) + 16))
        values = rng.permutation(values)[:customers]
    else:
        values = rng.permutation(customers).astype(np.int64)
        if ids == "multiples":
            values *= 1_000
    if ids != "string":
        return pa.array(values)
    return pa.array(np.char.add("c-", np.char.zfill(np.char.mod("%x", values), 16)))


def _columns(
    keys: pa.Array,
    who: np.ndarray,
    when: np.ndarray,
    order_id: np.ndarray,
    rng: np.random.Generator,
    options: Options,
) -> dict[str, pa.Array]:
    """One row group's columns, in the file's schema."""
    n = who.shape[0]
    amount = np.round(rng.lognormal(3.0, 1.0, n), 2)
    stamps = pa.array(when, pa.timestamp("us"))
    if options.timestamps == "date32":
        stamps = stamps.cast(pa.date32(), safe=False)
    orders = pa.array(order_id)
    if options.invoices == "text":
        orders = pa.array(np.char.add("INV", np.char.zfill(order_id.astype(str), 10)))
    columns = {"customer_id": keys.take(pa.array(who)), "order_id": orders, "ordered_at": stamps}
    if options.amounts == "product":
        quantity = 1 + rng.poisson(1.5, n)
        columns["quantity"] = pa.array(quantity)
        columns["unit_price"] = pa.array(np.round(amount / quantity, 2))
    else:
        columns["amount"] = pa.array(amount)
    return columns


@dataclass(frozen=True)
class Options:
    """The variant of the workload (see the module docstring)."""

    ids: str = "random"
    lines: int = 0
    sigma: float = 1.0
    timestamps: str = "us"
    row_group: int = ROW_GROUP
    layout: str = "shuffled"
    invoices: str = "int"
    amounts: str = "amount"


def generate(
    path: Path,
    orders: int,
    customers: int,
    ids: str = "random",
    lines: int = 0,
    seed: int = SEED,
    options: Options | None = None,
) -> dict[str, int]:
    """Write the workload to ``path``; returns rows, orders and customers written."""
    options = options or Options(ids=ids, lines=lines)
    rng = np.random.default_rng(seed)
    keys = customer_ids(rng, customers, options.ids)
    activity = np.cumsum(rng.lognormal(0.0, options.sigma, customers))
    activity /= activity[-1]
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    seen = np.zeros(customers, dtype=bool)
    rows_written = orders_written = 0
    started = time.perf_counter()
    writer = None
    for who, when, order_id in _row_groups(rng, orders, customers, activity, keys, options):
        seen[who] = True
        table = pa.table(_columns(keys, who, when, order_id, rng, options))
        if writer is None:
            writer = pq.ParquetWriter(temporary, table.schema, compression="snappy")
        writer.write_table(table, row_group_size=options.row_group)
        rows_written += who.shape[0]
        orders_written = int(order_id[-1]) + 1 if who.shape[0] else orders_written
        if sys.stderr.isatty():
            print(
                f"\r{rows_written:,} rows, {time.perf_counter() - started:.0f} s",
                end="",
                file=sys.stderr,
            )
    if writer is not None:
        writer.close()
    temporary.replace(path)
    return {"rows": rows_written, "orders": orders_written, "customers": int(seen.sum())}


def _row_groups(rng, orders, customers, activity, keys, options):
    """(customer positions, times, order ids) of each row group, in the file's layout."""
    lines = options.lines
    per_group = max(options.row_group // lines, 1) if lines else options.row_group
    if options.layout == "sorted":
        # Every customer's orders together, customers in key order: the counts of a
        # multinomial draw with the activity as probabilities.
        share = np.diff(activity, prepend=0.0)
        counts = rng.multinomial(orders, share)
        by_key = np.argsort(_sort_keys(keys))
        order_customers = np.repeat(by_key, counts[by_key])
        for lo in range(0, orders, per_group):
            who = order_customers[lo : lo + per_group]
            yield _expanded(rng, who, lo, lines)
        return
    done = 0
    while done < orders:
        n_orders = min(per_group, orders - done)
        who = np.searchsorted(activity, rng.random(n_orders), side="right")
        yield _expanded(rng, who, done, lines)
        done += n_orders


def _sort_keys(keys: pa.Array) -> np.ndarray:
    return np.asarray(keys.to_numpy(zero_copy_only=False))


def _expanded(rng, who, first_order, lines):
    """Times and order ids of ``who``'s orders, and with ``lines``, each order's lines."""
    n_orders = who.shape[0]
    when = START + rng.integers(0, SPAN_US, n_orders).astype("timedelta64[us]")
    order_id = first_order + np.arange(n_orders, dtype=np.int64)
    if lines:
        per_order = 1 + rng.integers(0, 2 * lines - 1, n_orders)
        who = np.repeat(who, per_order)
        when = np.repeat(when, per_order)
        order_id = np.repeat(order_id, per_order)
    return who, when, order_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", default="1M", help="number of orders (e.g. 100M)")
    parser.add_argument("--customers", default=None, help="customer pool (default: orders / 20)")
    parser.add_argument(
        "--ids", choices=("random", "int", "dense", "multiples", "string"), default="random"
    )
    parser.add_argument("--lines", type=int, default=0, help="mean rows per order (line-level)")
    parser.add_argument("--sigma", type=float, default=1.0, help="activity skew (lognormal)")
    parser.add_argument("--timestamps", choices=("us", "date32"), default="us")
    parser.add_argument("--row-group", default="1M", help="rows per row group (e.g. 128k)")
    parser.add_argument("--layout", choices=("shuffled", "sorted"), default="shuffled")
    parser.add_argument("--invoices", choices=("int", "text"), default="int")
    parser.add_argument("--amounts", choices=("amount", "product"), default="amount")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    orders = parse_count(args.orders)
    customers = parse_count(args.customers) if args.customers else max(orders // 20, 1)
    options = Options(
        ids=args.ids,
        lines=args.lines,
        sigma=args.sigma,
        timestamps=args.timestamps,
        row_group=parse_count(args.row_group),
        layout=args.layout,
        invoices=args.invoices,
        amounts=args.amounts,
    )
    started = time.perf_counter()
    written = generate(args.output, orders, customers, seed=args.seed, options=options)
    print(
        f"\nwrote {written['rows']:,} rows ({written['orders']:,} orders, "
        f"{written['customers']:,} customers) to {args.output} in "
        f"{time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    main()
