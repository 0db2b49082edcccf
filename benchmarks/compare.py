"""rfm_fast against the engines a user would pick instead, on the same Parquet file, in one run.

Each engine runs in a process of its own (so that peak RSS is its own) and does the whole job:
read the three or four needed columns, aggregate per customer, score R/F/M quintiles, and write
one row per customer to Parquet. Two modes: ``rows`` (frequency = rows) and ``distinct``
(frequency = distinct order ids). The parent prints wall time, peak RSS and the ratios to
rfm_fast, and can save them as JSON for docs/performance.md.

    python benchmarks/compare.py benchmarks/data/orders_100m.parquet --json results.json
    python benchmarks/compare.py FILE --engines rfm_fast,duckdb --modes rows
    python benchmarks/compare.py FILE --baseline ../old-checkout   # + rfm_fast of that checkout

Engines: ``rfm_fast``, ``pandas`` (the reference implementation, rfm_fast.reference),
``pandas_qcut`` (the usual groupby + qcut script), ``polars`` (eager), ``polars_lazy``
(scan_parquet, streaming engine), ``duckdb``. Peers need ``pip install polars duckdb``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CUSTOMER, ORDER, TIMESTAMP, AMOUNT = "customer_id", "order_id", "ordered_at", "amount"
QUANTITY, UNIT_PRICE = "quantity", "unit_price"  # line-level files: amount = their product


def _has_product(path: str) -> bool:
    """Whether the file has quantity and unit price columns instead of an amount."""
    import pyarrow.parquet as pq

    return QUANTITY in pq.ParquetFile(path).schema_arrow.names


def _columns(path: str, mode: str) -> list[str]:
    """The columns an engine reads from ``path`` in ``mode``."""
    amounts = [QUANTITY, UNIT_PRICE] if _has_product(path) else [AMOUNT]
    return [CUSTOMER, TIMESTAMP, *amounts] + ([ORDER] if mode == "distinct" else [])


ENGINES = ("rfm_fast", "duckdb", "polars_lazy", "polars", "pandas_qcut", "pandas")
MODES = ("rows", "distinct")


# --------------------------------------------------------------------------- engines (child side)


def run_rfm_fast(path: str, mode: str, out: str) -> int:
    import rfm_fast
    from rfm_fast.core.io import write_table

    result = rfm_fast.score(
        path,
        customer=CUSTOMER,
        timestamp=TIMESTAMP,
        amount=f"{QUANTITY}*{UNIT_PRICE}" if _has_product(path) else AMOUNT,
        order=ORDER if mode == "distinct" else None,
    )
    write_table(result.table, out)
    return result.stats.customers


def run_pandas_reference(path: str, mode: str, out: str) -> int:
    import pandas as pd

    from rfm_fast import reference

    columns = _columns(path, mode)
    frame = pd.read_parquet(path, columns=columns)
    if _has_product(path):
        frame[AMOUNT] = frame.pop(QUANTITY) * frame.pop(UNIT_PRICE)
    table, _, _ = reference.score(
        frame,
        customer=CUSTOMER,
        timestamp=TIMESTAMP,
        amount=AMOUNT,
        order=ORDER if mode == "distinct" else None,
    )
    table.to_parquet(out)
    return len(table)


def run_pandas_qcut(path: str, mode: str, out: str) -> int:
    import pandas as pd

    columns = _columns(path, mode)
    frame = pd.read_parquet(path, columns=columns)
    if _has_product(path):
        frame[AMOUNT] = frame.pop(QUANTITY) * frame.pop(UNIT_PRICE)
    grouped = frame.groupby(CUSTOMER)
    per = grouped.agg(
        last=(TIMESTAMP, "max"),
        frequency=(ORDER, "nunique") if mode == "distinct" else (TIMESTAMP, "size"),
        monetary=(AMOUNT, "sum"),
    )
    as_of = per["last"].max() + pd.Timedelta(days=1)
    per["recency"] = (as_of - per["last"]) // pd.Timedelta(days=1)
    labels = [1, 2, 3, 4, 5]
    per["R"] = pd.qcut(per["recency"].rank(method="first", ascending=False), 5, labels=labels)
    per["F"] = pd.qcut(per["frequency"].rank(method="first"), 5, labels=labels)
    per["M"] = pd.qcut(per["monetary"].rank(method="first"), 5, labels=labels)
    per.reset_index().to_parquet(out)
    return len(per)


def _polars_scores(pl, per):
    n = per.height

    def ntile(expr):
        return ((expr.rank("ordinal") - 1) * 5 // n + 1).cast(pl.Int8)

    return per.with_columns(
        ntile(-pl.col("recency")).alias("R"),
        ntile(pl.col("frequency")).alias("F"),
        ntile(pl.col("monetary")).alias("M"),
    )


def _polars_aggregate(pl, frame, mode, product):
    frequency = pl.col(ORDER).n_unique() if mode == "distinct" else pl.len()
    amount = pl.col(QUANTITY) * pl.col(UNIT_PRICE) if product else pl.col(AMOUNT)
    return frame.group_by(CUSTOMER).agg(
        pl.col(TIMESTAMP).max().alias("last"),
        frequency.alias("frequency"),
        amount.sum().alias("monetary"),
    )


def _polars_finish(pl, per, out):
    as_of = per["last"].max() + __import__("datetime").timedelta(days=1)
    per = per.with_columns(((pl.lit(as_of) - pl.col("last")).dt.total_days()).alias("recency"))
    _polars_scores(pl, per).write_parquet(out)
    return per.height


def run_polars(path: str, mode: str, out: str) -> int:
    import polars as pl

    columns = _columns(path, mode)
    frame = pl.read_parquet(path, columns=columns)
    return _polars_finish(pl, _polars_aggregate(pl, frame, mode, _has_product(path)), out)


def run_polars_lazy(path: str, mode: str, out: str) -> int:
    import polars as pl

    lazy = _polars_aggregate(pl, pl.scan_parquet(path), mode, _has_product(path))
    per = lazy.collect(engine="streaming")
    return _polars_finish(pl, per, out)


def run_duckdb(path: str, mode: str, out: str) -> int:
    import duckdb

    frequency = f"count(DISTINCT {ORDER})" if mode == "distinct" else "count(*)"
    amount = f"{QUANTITY} * {UNIT_PRICE}" if _has_product(path) else AMOUNT
    con = duckdb.connect()
    con.execute(
        f"""
        COPY (
            WITH per AS (
                SELECT {CUSTOMER}, CAST(max({TIMESTAMP}) AS TIMESTAMP) AS last,
                       {frequency} AS frequency, sum({amount}) AS monetary
                FROM read_parquet('{path}') GROUP BY {CUSTOMER}
            ), window_end AS (SELECT max(last) + INTERVAL 1 DAY AS as_of FROM per),
            metrics AS (
                SELECT {CUSTOMER}, frequency, monetary,
                       (epoch_us(as_of) - epoch_us(last)) // 86400000000 AS recency
                FROM per, window_end
            )
            SELECT *, ntile(5) OVER (ORDER BY recency DESC) AS R,
                      ntile(5) OVER (ORDER BY frequency) AS F,
                      ntile(5) OVER (ORDER BY monetary) AS M
            FROM metrics
        ) TO '{out}' (FORMAT parquet)
        """
    )
    return con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]


BASELINE = "rfm_fast_baseline"
"""The engine name of ``--baseline DIR``: rfm_fast imported from another checkout (an earlier
commit), in the same rounds as the rest."""

RUNNERS = {
    "rfm_fast": run_rfm_fast,
    BASELINE: run_rfm_fast,
    "pandas": run_pandas_reference,
    "pandas_qcut": run_pandas_qcut,
    "polars": run_polars,
    "polars_lazy": run_polars_lazy,
    "duckdb": run_duckdb,
}


def child(engine: str, path: str, mode: str, out: str) -> None:
    """Run one engine once, print one JSON line: job wall time, customers, peak RSS."""
    started = time.perf_counter()
    customers = RUNNERS[engine](path, mode, out)
    wall = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"wall_s": wall, "customers": customers, "peak_rss_bytes": peak_kib * 1024}))


# --------------------------------------------------------------------------- parent


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, {platform.platform()}"


def measure(
    engine: str, path: Path, mode: str, timeout: float, baseline: Path | None = None
) -> dict:
    env = dict(os.environ)
    if engine == BASELINE:  # the same script, importing rfm_fast from the other checkout
        env["PYTHONPATH"] = os.pathsep.join([str(baseline), env.get("PYTHONPATH", "")])
    with tempfile.TemporaryDirectory() as folder:
        out = str(Path(folder) / "scores.parquet")
        started = time.perf_counter()
        try:
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    engine,
                    "--modes",
                    mode,
                    "--out",
                    out,
                    str(path),
                ],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                env=env,
            )
        except subprocess.TimeoutExpired:
            return {"engine": engine, "mode": mode, "error": f"timed out after {timeout:.0f} s"}
        process_wall = time.perf_counter() - started
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["?"]
        return {"engine": engine, "mode": mode, "error": tail[0][:200]}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"engine": engine, "mode": mode, "process_wall_s": process_wall, **result}


def summarized(runs: list[dict]) -> dict:
    """The median run of several, with every run's wall time and the spread (max - min)."""
    failed = [r for r in runs if "error" in r]
    if failed:
        return failed[0]
    ordered = sorted(runs, key=lambda r: r["wall_s"])
    walls = [r["wall_s"] for r in runs]
    return {
        **ordered[len(ordered) // 2],
        "runs_wall_s": walls,
        "spread_s": max(walls) - min(walls),
        "peak_rss_bytes": max(r["peak_rss_bytes"] for r in runs),
    }


def table(results: list[dict]) -> str:
    lines = [
        "| mode | engine | wall, median (s) | spread (s) | process wall (s) | peak RSS (GB) | "
        "wall / rfm_fast | customers |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for mode in MODES:
        rows = [r for r in results if r["mode"] == mode]
        base = next((r for r in rows if r["engine"] == "rfm_fast" and "error" not in r), None)
        for r in rows:
            if "error" in r:
                lines.append(f"| {mode} | {r['engine']} | failed: {r['error']} | | | | | |")
                continue
            ratio = f"{r['wall_s'] / base['wall_s']:.2f}" if base else "-"
            lines.append(
                f"| {mode} | {r['engine']} | {r['wall_s']:.2f} | {r.get('spread_s', 0):.2f} | "
                f"{r['process_wall_s']:.2f} | "
                f"{r['peak_rss_bytes'] / 1e9:.2f} | {ratio} | {r['customers']:,} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--repeat", type=int, default=3, help="measured runs per engine and mode")
    parser.add_argument(
        "--no-warmup", dest="warmup", action="store_false", help="skip the unmeasured first run"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a checkout of another commit: its rfm_fast runs too, as rfm_fast_baseline",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, str(args.file), args.modes, args.out)
        return
    results = []
    engines = args.engines.split(",")
    if args.baseline is not None:
        engines.insert(engines.index("rfm_fast") + 1 if "rfm_fast" in engines else 0, BASELINE)
    for mode in args.modes.split(","):
        if args.warmup:  # fills the compile cache and the page cache; not counted
            for engine in engines:
                measure(engine, args.file, mode, args.timeout, args.baseline)
        # Round robin: each repeat runs every engine once, so that a change in the load of a
        # shared machine falls on all of them alike.
        runs: dict[str, list[dict]] = {engine: [] for engine in engines}
        for _ in range(args.repeat):
            for engine in engines:
                runs[engine].append(measure(engine, args.file, mode, args.timeout, args.baseline))
        for engine in engines:
            result = summarized(runs[engine])
            print(json.dumps(result), file=sys.stderr)
            results.append(result)
    print(f"machine: {machine()}\nfile: {args.file}\n")
    print(table(results))
    if args.json:
        args.json.write_text(
            json.dumps({"machine": machine(), "file": str(args.file), "results": results}, indent=2)
        )


if __name__ == "__main__":
    main()
