"""rfm_fast against the engines a user would pick instead, on the same Parquet file, in one run.

Each engine runs in a process of its own (so that peak RSS is its own) and does the whole job:
read the three or four needed columns, aggregate per customer, score R/F/M quintiles, and write
one row per customer to Parquet. Two modes: ``rows`` (frequency = rows) and ``distinct``
(frequency = distinct order ids). The parent prints wall time, peak RSS and the ratios to
rfm_fast, and can save them as JSON for docs/performance.md.

The headline is the **process wall**: start-up, imports, reading, the job and writing, as a user
waits for it. Beside it: rfm_fast's in-process phases (``read`` CPU in the reader thread,
``aggregate``, ``finish``, ``score``, ``write``), and the floor of each phase on the same file,
each in a process of its own: ``floor_read`` decodes the needed columns and nothing else
(``iter_batches(pre_buffer=False)``); ``floor_pass`` reads them into memory (not counted) and
makes one pass over the arrays, one value of each column a row, in a compiled loop; the floor of
``score`` + ``write`` is the write of a table of the same shape alone (``floor_write``).

    python benchmarks/compare.py benchmarks/data/orders_100m.parquet --json results.json
    python benchmarks/compare.py FILE --engines rfm_fast,duckdb --modes rows
    python benchmarks/compare.py FILE --baseline ../old-checkout   # + rfm_fast of that checkout
    python benchmarks/compare.py ../shared/data/online_retail/online_retail_I.csv.gz \
        --modes distinct

A file with ``customer_id``, ``ordered_at`` and ``amount`` (or ``quantity`` and ``unit_price``)
and ``order_id`` columns is the generated workload; the UCI Online Retail CSV (``CustomerID``,
``InvoiceDate``, ``Quantity * UnitPrice``, ``InvoiceNo``) is recognised by its columns. Every
engine leaves out rows without a customer id.

Engines: ``rfm_fast``, ``pandas`` (the reference implementation, rfm_fast.reference),
``pandas_qcut`` (the usual groupby + qcut script), ``polars`` (eager), ``polars_lazy``
(scan_parquet, streaming engine), ``duckdb``; floors: ``floor_read``, ``floor_pass``,
``floor_write`` (see above). Peers need ``pip install polars duckdb``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    """The columns of a workload file, and how the engines read it."""

    customer: str
    timestamp: str
    order: str
    amount: str | None = None  # None: the amount is quantity * unit price
    quantity: str | None = None
    unit_price: str | None = None
    csv: bool = False

    def columns(self, mode: str) -> list[str]:
        """The columns an engine reads in ``mode``."""
        amounts = [self.amount] if self.amount else [self.quantity, self.unit_price]
        return [self.customer, self.timestamp, *amounts] + (
            [self.order] if mode == "distinct" else []
        )

    def amount_sql(self) -> str:
        """The amount as an expression (SQL, and rfm_fast's ``amount=``)."""
        return self.amount or f"{self.quantity}*{self.unit_price}"


GENERATED = Layout("customer_id", "ordered_at", "order_id", amount="amount")
GENERATED_LINES = Layout(
    "customer_id", "ordered_at", "order_id", quantity="quantity", unit_price="unit_price"
)
ONLINE_RETAIL = Layout(
    "CustomerID", "InvoiceDate", "InvoiceNo", quantity="Quantity", unit_price="UnitPrice", csv=True
)


def layout_of(path: str) -> Layout:
    """The layout of ``path``: the generated workload (Parquet) or the Online Retail CSV."""
    if path.endswith((".csv", ".csv.gz")):
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as file:
            header = file.readline().strip().split(",")
        if ONLINE_RETAIL.customer in header:
            return ONLINE_RETAIL
        raise SystemExit(f"{path}: a CSV other than the Online Retail file (columns {header})")
    import pyarrow.parquet as pq

    names = pq.ParquetFile(path).schema_arrow.names
    return GENERATED_LINES if "quantity" in names else GENERATED


ENGINES = ("rfm_fast", "duckdb", "polars_lazy", "polars", "pandas_qcut", "pandas")
FLOORS = ("floor_read", "floor_pass", "floor_write")
MODES = ("rows", "distinct")


# --------------------------------------------------------------------------- engines (child side)


def run_rfm_fast(path: str, mode: str, out: str) -> dict:
    """``rfm_fast.score`` and ``write_table``, with the garbage collector set as the ``rfm``
    command sets it (:func:`rfm_fast_cli.main.main`: :func:`gc.freeze` before and after the
    job, so that the collection at exit does not traverse Numba's registries)."""
    import gc

    import rfm_fast
    from rfm_fast.core.io import write_table

    gc.freeze()

    shape = layout_of(path)
    result = rfm_fast.score(
        path,
        customer=shape.customer,
        timestamp=shape.timestamp,
        amount=shape.amount_sql(),
        order=shape.order if mode == "distinct" else None,
    )
    started, cpu = time.perf_counter(), time.process_time()
    write_table(result.table, out)
    phases = {
        name: [round(t.wall_s, 4), round(t.cpu_s, 4)] for name, t in result.stats.timings.items()
    }
    phases["write"] = [
        round(time.perf_counter() - started, 4),
        round(time.process_time() - cpu, 4),
    ]
    gc.freeze()
    return {"customers": result.stats.customers, "phases": phases}


def _pandas_frame(path: str, mode: str):
    import pandas as pd

    shape = layout_of(path)
    columns = shape.columns(mode)
    if shape.csv:
        frame = pd.read_csv(path, usecols=columns, parse_dates=[shape.timestamp])
    else:
        frame = pd.read_parquet(path, columns=columns)
    frame = frame[frame[shape.customer].notna()]
    if not shape.amount:
        frame = frame.assign(amount=frame.pop(shape.quantity) * frame.pop(shape.unit_price))
    return frame.rename(
        columns={shape.customer: "customer", shape.timestamp: "ts", shape.order: "order"}
    ).rename(columns={shape.amount or "amount": "amount"})


def run_pandas_reference(path: str, mode: str, out: str) -> int:
    from rfm_fast import reference

    frame = _pandas_frame(path, mode)
    table, _, _ = reference.score(
        frame,
        customer="customer",
        timestamp="ts",
        amount="amount",
        order="order" if mode == "distinct" else None,
    )
    table.to_parquet(out)
    return len(table)


def run_pandas_qcut(path: str, mode: str, out: str) -> int:
    import pandas as pd

    frame = _pandas_frame(path, mode)
    grouped = frame.groupby("customer")
    per = grouped.agg(
        last=("ts", "max"),
        frequency=("order", "nunique") if mode == "distinct" else ("ts", "size"),
        monetary=("amount", "sum"),
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


def _polars_aggregate(pl, frame, mode, shape: Layout):
    frequency = pl.col(shape.order).n_unique() if mode == "distinct" else pl.len()
    amount = (
        pl.col(shape.amount) if shape.amount else pl.col(shape.quantity) * pl.col(shape.unit_price)
    )
    return (
        frame.filter(pl.col(shape.customer).is_not_null())
        .group_by(shape.customer)
        .agg(
            pl.col(shape.timestamp).max().alias("last"),
            frequency.alias("frequency"),
            amount.sum().alias("monetary"),
        )
    )


def _polars_finish(pl, per, out):
    as_of = per["last"].max() + __import__("datetime").timedelta(days=1)
    per = per.with_columns(((pl.lit(as_of) - pl.col("last")).dt.total_days()).alias("recency"))
    _polars_scores(pl, per).write_parquet(out)
    return per.height


def _polars_frame(pl, path: str, mode: str, shape: Layout):
    columns = shape.columns(mode)
    if shape.csv:  # invoice numbers are text ("C536379" is a cancellation)
        return pl.read_csv(
            path,
            columns=columns,
            try_parse_dates=True,
            schema_overrides={shape.order: pl.String},
        )
    return pl.read_parquet(path, columns=columns)


def run_polars(path: str, mode: str, out: str) -> int:
    import polars as pl

    shape = layout_of(path)
    frame = _polars_frame(pl, path, mode, shape)
    return _polars_finish(pl, _polars_aggregate(pl, frame, mode, shape), out)


def run_polars_lazy(path: str, mode: str, out: str) -> int:
    import polars as pl

    shape = layout_of(path)
    if shape.csv and path.endswith(".gz"):  # scan_csv does not read compressed files
        source = _polars_frame(pl, path, mode, shape).lazy()
    elif shape.csv:
        source = pl.scan_csv(path, try_parse_dates=True, schema_overrides={shape.order: pl.String})
    else:
        source = pl.scan_parquet(path)
    per = _polars_aggregate(pl, source, mode, shape).collect(engine="streaming")
    return _polars_finish(pl, per, out)


def run_duckdb(path: str, mode: str, out: str) -> int:
    import duckdb

    shape = layout_of(path)
    frequency = f"count(DISTINCT {shape.order})" if mode == "distinct" else "count(*)"
    source = f"read_csv('{path}')" if shape.csv else f"read_parquet('{path}')"
    con = duckdb.connect()
    con.execute(
        f"""
        COPY (
            WITH per AS (
                SELECT {shape.customer}, CAST(max({shape.timestamp}) AS TIMESTAMP) AS last,
                       {frequency} AS frequency, sum({shape.amount_sql()}) AS monetary
                FROM {source} WHERE {shape.customer} IS NOT NULL GROUP BY {shape.customer}
            ), window_end AS (SELECT max(last) + INTERVAL 1 DAY AS as_of FROM per),
            metrics AS (
                SELECT {shape.customer}, frequency, monetary,
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


# --------------------------------------------------------------------------- floors (child side)


def _read_batches(path: str, mode: str):
    """The needed columns of ``path``, batch by batch, decoded and nothing else."""
    shape = layout_of(path)
    columns = shape.columns(mode)
    if shape.csv:
        import pyarrow.csv as pacsv

        options = pacsv.ConvertOptions(include_columns=columns)
        yield from pacsv.open_csv(path, convert_options=options)
        return
    import pyarrow.parquet as pq

    yield from pq.ParquetFile(path, pre_buffer=False).iter_batches(
        batch_size=1 << 20, columns=columns
    )


def run_floor_read(path: str, mode: str, out: str) -> dict:
    """Decode the needed columns, keep nothing: the floor of rfm_fast's ``read`` phase."""
    started, cpu = time.perf_counter(), time.process_time()
    rows = sum(batch.num_rows for batch in _read_batches(path, mode))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"customers": 0, "rows": rows, "phases": {"read": [round(wall, 4), round(cpu, 4)]}}


def run_floor_pass(path: str, mode: str, out: str) -> dict:
    """Read the needed columns into memory (not counted), then one compiled pass over them that
    reads one value of each column a row: the floor of any aggregation of those arrays."""
    import numba
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    @numba.njit(nogil=True, cache=True)
    def one_pass(keys, stamps, amounts, orders):  # pragma: no cover - compiled
        mixed, latest, total = np.int64(0), np.int64(0), 0.0
        for i in range(keys.shape[0]):
            mixed ^= keys[i] + orders[i % orders.shape[0]]
            latest = max(latest, stamps[i])
            total += amounts[i]
        return mixed, latest, total

    def as_int64(column: pa.ChunkedArray) -> np.ndarray:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            column = pc.hash_64(column) if hasattr(pc, "hash_64") else pc.binary_length(column)
        if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
            column = (
                column.cast(pa.int64())
                if pa.types.is_timestamp(column.type)
                else column.cast(pa.int32()).cast(pa.int64())
            )
        return np.ascontiguousarray(column.to_numpy(zero_copy_only=False), dtype=np.int64)

    shape = layout_of(path)
    table = pa.Table.from_batches(list(_read_batches(path, mode)))
    keys = as_int64(table[shape.customer].fill_null(0))
    stamps = as_int64(table[shape.timestamp])
    if shape.amount:
        amounts = table[shape.amount].to_numpy(zero_copy_only=False).astype(np.float64)
    else:
        amounts = pc.multiply(
            table[shape.quantity].cast(pa.float64()), table[shape.unit_price].cast(pa.float64())
        ).to_numpy(zero_copy_only=False)
    orders = as_int64(table[shape.order]) if mode == "distinct" else np.zeros(1, np.int64)
    one_pass(keys[:16], stamps[:16], amounts[:16], orders[:16])  # compile, not counted
    started, cpu = time.perf_counter(), time.process_time()
    one_pass(keys, stamps, amounts, orders)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"customers": 0, "rows": len(keys), "phases": {"pass": [round(wall, 4), round(cpu, 4)]}}


def run_floor_write(path: str, mode: str, out: str) -> dict:
    """Write a per-customer table of the shape rfm_fast writes (id, three metrics, first and
    last purchase, three scores) with pyarrow's defaults: the floor of the ``write`` phase, for
    as many customers as the file has."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    shape = layout_of(path)
    if shape.csv:
        import pyarrow.csv as pacsv

        options = pacsv.ConvertOptions(include_columns=[shape.customer])
        column = pacsv.read_csv(path, convert_options=options)[shape.customer]
    else:
        column = pq.read_table(path, columns=[shape.customer])[shape.customer]
    ids = pc.unique(column).drop_null()
    ids = ids.take(pc.sort_indices(ids))  # the file's own ids, in key order, as rfm_fast writes
    customers = len(ids)
    rng = np.random.default_rng(0)
    table = pa.table(
        {
            "customer": ids,
            "first_purchase": pa.array(rng.integers(0, 2**50, customers), pa.timestamp("us")),
            "last_purchase": pa.array(rng.integers(0, 2**50, customers), pa.timestamp("us")),
            "recency_days": rng.integers(0, 1100, customers),
            "frequency": rng.integers(1, 100, customers),
            "monetary": rng.lognormal(4, 1, customers).round(2),
            **{f"{m}_score": rng.integers(1, 6, customers).astype(np.int8) for m in "RFM"},
        }
    )
    started, cpu = time.perf_counter(), time.process_time()
    pq.write_table(table, out)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"customers": customers, "phases": {"write": [round(wall, 4), round(cpu, 4)]}}


BASELINE = "rfm_fast_baseline"
"""The engine name of ``--baseline DIR``: rfm_fast imported from another checkout (an earlier
commit), in the same rounds as the rest."""

RUNNERS = {
    "floor_read": run_floor_read,
    "floor_pass": run_floor_pass,
    "floor_write": run_floor_write,
    "rfm_fast": run_rfm_fast,
    BASELINE: run_rfm_fast,
    "pandas": run_pandas_reference,
    "pandas_qcut": run_pandas_qcut,
    "polars": run_polars,
    "polars_lazy": run_polars_lazy,
    "duckdb": run_duckdb,
}


def child(engine: str, path: str, mode: str, out: str) -> None:
    """Run one engine once, print one JSON line: job wall time, customers, peak RSS, and the
    in-process phases where the engine reports them."""
    started = time.perf_counter()
    done = RUNNERS[engine](path, mode, out)
    wall = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    details = done if isinstance(done, dict) else {"customers": done}
    print(json.dumps({"wall_s": wall, "peak_rss_bytes": peak_kib * 1024, **details}))


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
    """The run of median process wall among several, with every run's process wall, the spread
    (max - min), the largest peak RSS, and each phase's median over the runs."""
    failed = [r for r in runs if "error" in r]
    if failed:
        return failed[0]
    ordered = sorted(runs, key=lambda r: r["process_wall_s"])
    walls = [r["process_wall_s"] for r in runs]
    median = dict(ordered[len(ordered) // 2])
    if all("phases" in r for r in runs):
        median["phases"] = {
            name: [
                statistics.median(r["phases"][name][0] for r in runs),
                statistics.median(r["phases"][name][1] for r in runs),
            ]
            for name in runs[0]["phases"]
        }
    return {
        **median,
        "runs_process_wall_s": walls,
        "spread_s": max(walls) - min(walls),
        "peak_rss_bytes": max(r["peak_rss_bytes"] for r in runs),
    }


PEERS = ("duckdb", "polars_lazy", "polars")
"""The engines whose best process wall rfm_fast is held against (the issue's targets)."""


def table(results: list[dict]) -> str:
    """Markdown: the engines by process wall (the headline), then rfm_fast's phases beside the
    floors."""
    lines = [
        "| mode | engine | process wall, median (s) | runs (s) | job wall (s) | peak RSS (GB) | "
        "customers |",
        "|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for mode in MODES:
        rows = [r for r in results if r["mode"] == mode and r["engine"] not in FLOORS]
        for r in rows:
            if "error" in r:
                lines.append(f"| {mode} | {r['engine']} | failed: {r['error']} | | | | |")
                continue
            runs = ", ".join(f"{w:.2f}" for w in r["runs_process_wall_s"])
            lines.append(
                f"| {mode} | {r['engine']} | {r['process_wall_s']:.2f} | {runs} | "
                f"{r['wall_s']:.2f} | {r['peak_rss_bytes'] / 1e9:.2f} | {r['customers']:,} |"
            )
        ours = next((r for r in rows if r["engine"] == "rfm_fast" and "error" not in r), None)
        peers = [r for r in rows if r["engine"] in PEERS and "error" not in r]
        if ours and peers:
            best = min(peers, key=lambda r: r["process_wall_s"])
            verdicts.append(
                f"{mode}: rfm_fast / best peer ({best['engine']}), process wall: "
                f"{ours['process_wall_s'] / best['process_wall_s']:.2f}"
            )
    phases = _phase_table(results)
    return "\n".join([*lines, "", *verdicts, *(["", *phases] if phases else [])])


def _phase_table(results: list[dict]) -> list[str]:
    """rfm_fast's in-process phases (median wall and CPU seconds) beside their floors."""
    floor_of = {"read": "read", "aggregate": "pass", "write": "write"}
    lines = []
    for mode in MODES:
        ours = next(
            (
                r
                for r in results
                if r["mode"] == mode and r["engine"] == "rfm_fast" and "phases" in r
            ),
            None,
        )
        if ours is None:
            continue
        floors = {}
        for r in results:
            if r["mode"] == mode and r["engine"] in FLOORS and "phases" in r:
                floors.update(r["phases"])
        if not lines:
            lines = [
                "| mode | phase | rfm_fast wall (s) | rfm_fast CPU (s) | floor wall (s) | "
                "floor CPU (s) |",
                "|---|---|---|---|---|---|",
            ]
        outside = ours["process_wall_s"] - ours["wall_s"]
        unphased = ours["wall_s"] - sum(wall for wall, _ in ours["phases"].values())
        lines.append(f"| {mode} | interpreter start and exit | {outside:.3f} | | | |")
        lines.append(f"| {mode} | imports, Numba start-up, between phases | {unphased:.3f} | | | |")
        for name, (wall, cpu) in ours["phases"].items():
            floor = floors.get(floor_of.get(name, ""))
            floor_text = f"{floor[0]:.3f} | {floor[1]:.3f}" if floor else "| "
            lines.append(f"| {mode} | {name} | {wall:.3f} | {cpu:.3f} | {floor_text} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--engines", default=",".join(ENGINES + FLOORS))
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
