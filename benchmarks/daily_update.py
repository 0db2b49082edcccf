"""A daily update of a saved state against a full re-score of all the rows (issue 13, item 7).

The reference workload (``generate.py``) is cut by time: the latest ``--new`` orders are "today's
load", the rest the history. A state is built from the history once (timed, with its size);
then, in turns, each in a process of its own and ``--runs`` times:

* ``full``: ``rfm score ALL -o scores.parquet`` over every row (the orders file as generated);
* ``update``: ``rfm state update STATE TODAY -o scores.parquet`` on a fresh copy of the state
  (reads the state, folds today's orders in, scores every customer, writes the scores and the
  new state, durably).

Both write one row per customer with the same scores (checked). The parent prints medians and
ranges and can save them as JSON for docs/performance.md.

    python benchmarks/daily_update.py --orders 100M --customers 5M --json results.json
    python benchmarks/daily_update.py --orders 10M --customers 500k --pairs
    python benchmarks/daily_update.py --orders 10M --customers 500k --window 365

With ``--window DAYS`` both sides score the trailing window: ``rfm score --window`` and a state
built with ``rfm state init --window`` (which keeps rows, not totals).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
COLUMNS = ["--customer", "customer_id", "--timestamp", "ordered_at", "--amount", "amount"]
COLUMNS += ["--order", "order_id", "--no-progress"]


def split_by_time(source: Path, history: Path, today: Path, new_rows: int) -> None:
    """Write the latest ``new_rows`` orders of ``source`` to ``today``, the rest to ``history``,
    one row group at a time."""
    times = pq.read_table(source, columns=["ordered_at"]).column("ordered_at")
    ticks = pc.cast(times, pa.int64())
    fraction = 1 - new_rows / len(ticks)
    cut_tick = pc.quantile(ticks, q=[fraction], interpolation="higher").to_pylist()[0]
    reader = pq.ParquetFile(source)
    with (
        pq.ParquetWriter(history, reader.schema_arrow) as old,
        pq.ParquetWriter(today, reader.schema_arrow) as new,
    ):
        for group in range(reader.num_row_groups):
            batch = reader.read_row_group(group)
            late = pc.greater(pc.cast(batch.column("ordered_at"), pa.int64()), cut_tick)
            old.write_table(batch.filter(pc.invert(late)))
            new.write_table(batch.filter(late))


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", default="100M")
    parser.add_argument("--customers", default="5M")
    parser.add_argument("--new", default="1M", help="orders in today's load")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pairs", action="store_true", help="keep every (customer, order) pair")
    parser.add_argument("--window", type=int, help="score the trailing window of DAYS days")
    parser.add_argument("--data", type=Path, default=HERE / "data")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from generate import parse_count

    args.data.mkdir(parents=True, exist_ok=True)
    name = f"orders_{args.orders.lower()}_{args.customers.lower()}"
    source = args.data / f"{name}.parquet"
    if not source.exists():
        subprocess.run(
            [
                sys.executable,
                str(HERE / "generate.py"),
                "--orders",
                args.orders,
                "--customers",
                args.customers,
                "-o",
                str(source),
            ],
            check=True,
        )
    history, today = args.data / f"{name}_history.parquet", args.data / f"{name}_today.parquet"
    if not today.exists():
        split_by_time(source, history, today, parse_count(args.new))
    rfm = [sys.executable, "-m", "rfm_fast_cli"]
    subprocess.run([*rfm, "example"], check=True, stdout=subprocess.DEVNULL)  # warm the cache
    mode = [] if args.pairs else ["--orders-within-loads"]
    window = [] if args.window is None else ["--window", str(args.window)]
    if window:
        mode = window
    kind = "_pairs" if args.pairs else f"_window{args.window}" if window else ""
    state = args.data / f"{name}{kind}.rfmstate"
    init_s = timed([*rfm, "state", "init", str(history), "-o", str(state), *COLUMNS, *mode])
    open_s = timed(
        [sys.executable, "-c", f"import rfm_fast; rfm_fast.DailyState.open({str(state)!r})"]
    )
    import_s = timed([sys.executable, "-c", "import rfm_fast"])
    work = state.with_name("work.rfmstate")
    full_out, update_out = args.data / "full_scores.parquet", args.data / "update_scores.parquet"
    walls: dict[str, list[float]] = {"full": [], "update": []}
    for _ in range(args.runs):
        walls["full"].append(
            timed([*rfm, "score", str(source), "-o", str(full_out), *COLUMNS, *window])
        )
        shutil.copyfile(state, work)
        walls["update"].append(
            timed(
                [
                    *rfm,
                    "state",
                    "update",
                    str(work),
                    str(today),
                    "-o",
                    str(update_out),
                    "--no-progress",
                ]
            )
        )
    same = pq.read_table(full_out).equals(pq.read_table(update_out))
    median = {k: statistics.median(v) for k, v in walls.items()}
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "orders": pq.ParquetFile(source).metadata.num_rows,
        "history_rows": pq.ParquetFile(history).metadata.num_rows,
        "today_rows": pq.ParquetFile(today).metadata.num_rows,
        "mode": f"window {args.window} days"
        if window
        else "pairs"
        if args.pairs
        else "orders within loads",
        "init_s": init_s,
        "state_bytes": state.stat().st_size,
        "open_s (process, incl. import)": open_s,
        "import_s": import_s,
        "walls_s": walls,
        "median_s": median,
        "ratio_update_to_full": median["update"] / median["full"],
        "same_scores": same,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    work.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
