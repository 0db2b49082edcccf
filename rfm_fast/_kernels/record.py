"""Record which kernel signatures the Python layer calls, into ``signatures.txt``.

The compiled kernels (:mod:`rfm_fast._kernels.build`) are built for the signatures listed in
``signatures.txt``; this command writes that list. It runs representative workloads under
``@jit`` (``RFM_FAST_KERNELS=jit``) and keeps the argument types of every kernel call that goes
through :mod:`rfm_fast._kernels.dispatch`: the built-in example, small inputs with every key,
amount and timestamp type the readers produce (with and without nulls, shuffled and
customer-sorted, one thread and two, one table and partitions), distinct orders and days, text
ids, returns, windows, CSV with text amounts, states and their merge, and the daily state.

``tests/test_compiled_kernels.py`` records again and fails if a signature is missing from the
list, naming this command::

    python -m rfm_fast._kernels.record            # rewrite rfm_fast/_kernels/signatures.txt
    python -m rfm_fast._kernels.record --check    # exit 1 if signatures.txt misses any

Needs the package's dependencies (pyarrow, and Numba to run the kernels), not a compiler.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from rfm_fast._kernels import dispatch

SIGNATURES_FILE = Path(__file__).resolve().parent / "signatures.txt"
HEADER = """\
# Signatures of the kernels that are compiled ahead of time (rfm_fast/_kernels/build.py), one a
# line: module.kernel(argument types), as rfm_fast/_kernels/dispatch.py's type_code writes them.
# Written by `python -m rfm_fast._kernels.record`: do not edit by hand.
"""

ROWS_SMALL = 3_000
ROWS_LARGE = 400_000  # above SMALL_INPUT_ROWS (partitions), and 80K customers: parallel sorts


def format_signature(module: str, kernel: str, codes: tuple[str | None, ...]) -> str:
    """One line of ``signatures.txt``."""
    return f"{module}.{kernel}({', '.join(str(code) for code in codes)})"


def _orders(rows: int, seed: int, sort: bool = False) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    customers = rng.integers(0, max(rows // 5, 1), rows)
    if sort:
        customers = np.sort(customers)
    orders = customers * 1000 + rng.integers(0, 4, rows)
    seconds = 1_600_000_000 + rng.integers(0, 365 * 86_400, rows)
    amounts = np.round(rng.normal(50, 40, rows), 2)
    return {"customer": customers, "order": orders, "seconds": seconds, "amount": amounts}


def _tables(rows: int, seed: int, sort: bool = False) -> Iterator[object]:
    """Tables with every key, amount and timestamp type the readers produce."""
    import pyarrow as pa

    base = _orders(rows, seed, sort)
    customers, orders, seconds, amounts = (
        base["customer"],
        base["order"],
        base["seconds"],
        base["amount"],
    )
    valid = np.ones(rows, dtype=bool)
    valid[::17] = False
    mask = ~valid
    key_columns = {
        "int64": pa.array(customers),
        "int32": pa.array(customers.astype(np.int32)),
        "uint64": pa.array(customers.astype(np.uint64)),
        "int64_nulls": pa.array(customers, mask=mask),
        "string": pa.array(customers.astype(str)),
        "large_string": pa.array(customers.astype(str), type=pa.large_string()),
        "dictionary": pa.array(customers.astype(str)).dictionary_encode(),
        "string_nulls": pa.array(customers.astype(str), mask=mask),
    }
    amount_columns = {
        "float64": pa.array(amounts),
        "float32": pa.array(amounts.astype(np.float32)),
        "int64": pa.array(np.round(amounts).astype(np.int64)),
        "int32": pa.array(np.round(amounts).astype(np.int32)),
        "float64_nulls": pa.array(amounts, mask=mask),
        "int64_nulls": pa.array(np.round(amounts).astype(np.int64), mask=mask),
        "decimal": pa.array(amounts).cast(pa.decimal128(12, 2)),
    }
    time_columns = {
        "timestamp_us": pa.array(seconds * 1_000_000, type=pa.timestamp("us")),
        "timestamp_s": pa.array(seconds, type=pa.timestamp("s")),
        "timestamp_ms": pa.array(seconds * 1000, type=pa.timestamp("ms")),
        "timestamp_ns_tz": pa.array(seconds * 10**9, type=pa.timestamp("ns", tz="UTC")),
        "date32": pa.array(seconds // 86_400, type=pa.int32()).cast(pa.date32()),
        "timestamp_nulls": pa.array(seconds * 1_000_000, type=pa.timestamp("us"), mask=mask),
    }
    order_columns = {
        "int64": pa.array(orders),
        "string": pa.array(orders.astype(str)),
        "int64_nulls": pa.array(orders, mask=mask),
    }
    # every type of one column, with the others at their most common type
    defaults = {"customer": "int64", "timestamp": "timestamp_us", "amount": "float64"}
    choices = (
        [("customer", name) for name in key_columns]
        + [("amount", name) for name in amount_columns]
        + [("timestamp", name) for name in time_columns]
    )
    for column, name in choices:
        kinds = {**defaults, column: name}
        for order in (None, *order_columns):
            columns = {
                "customer": key_columns[kinds["customer"]],
                "timestamp": time_columns[kinds["timestamp"]],
                "amount": amount_columns[kinds["amount"]],
            }
            if order is not None:
                if column != "customer" and order != "int64":
                    continue  # order id types only once, with the default columns
                columns["order"] = order_columns[order]
            yield pa.table(columns)


def _score_everything(workdir: Path) -> None:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    import rfm_fast

    for rows, seed, sort in ((ROWS_SMALL, 1, False), (ROWS_SMALL, 2, True)):
        for table in _tables(rows, seed, sort):
            distinct = "order" in table.column_names
            for threads in (1, 2):
                rfm_fast.score(
                    table,
                    customer="customer",
                    timestamp="timestamp",
                    amount="amount",
                    order="order" if distinct else None,
                    threads=threads,
                    batch_rows=1000,
                )
    for sort in (False, True):
        for table in _tables(ROWS_LARGE, 3, sort):
            kinds = {str(table.schema.field(name).type) for name in ("amount", "timestamp")}
            if kinds != {"double", "timestamp[us]"}:
                continue
            distinct = "order" in table.column_names
            path = workdir / "large.parquet"
            pq.write_table(table, path)
            for threads in (1, 2):
                rfm_fast.score(
                    str(path),
                    customer="customer",
                    timestamp="timestamp",
                    amount="amount",
                    order="order" if distinct else None,
                    threads=threads,
                )
    # the options that change kernels' arguments
    table = next(iter(_tables(ROWS_SMALL, 4)))
    for options in (
        {"returns": "purchase"},
        {"returns": "drop"},
        {"frequency": "days"},
        {"method": "split"},
        {"monetary": "mean"},
        {"window": 90},
    ):
        rfm_fast.score(
            table, customer="customer", timestamp="timestamp", amount="amount", **options
        )
    # CSV: text amounts and timestamps parsed by the readers
    csv_path = workdir / "orders.csv"
    for table in list(_tables(ROWS_SMALL, 5))[:1]:
        pacsv.write_csv(table, csv_path)
        rfm_fast.score(str(csv_path), customer="customer", timestamp="timestamp", amount="amount")
    csv_path.write_text(
        "customer;timestamp;amount\n"
        + "".join(f"c{i % 7};2024-01-{1 + i % 28:02d};1.234,{i % 100:02d}\n" for i in range(500))
    )
    rfm_fast.score(
        str(csv_path),
        customer="customer",
        timestamp="timestamp",
        amount="amount",
        decimal=",",
        amount_format="currency",
    )


def _states_and_daily(workdir: Path) -> None:
    import pyarrow as pa

    import rfm_fast

    for kind in ("int64", "string"):
        tables = []
        for seed in (6, 7):
            base = _orders(ROWS_SMALL, seed)
            customers = base["customer"] if kind == "int64" else base["customer"].astype(str)
            tables.append(
                pa.table(
                    {
                        "customer": customers,
                        "timestamp": pa.array(base["seconds"], type=pa.timestamp("s")),
                        "amount": base["amount"],
                        "order": base["order"],
                    }
                )
            )
        for order in (None, "order"):
            states = [
                rfm_fast.CustomerState.of(
                    table, customer="customer", timestamp="timestamp", amount="amount", order=order
                )
                for table in tables
            ]
            rfm_fast.merge_states(states).score()
            rfm_fast.merge_states(states[0].split(3)).score()
            path = workdir / f"daily-{kind}-{order}.rfmstate"
            daily = rfm_fast.DailyState.init(
                tables[0], customer="customer", timestamp="timestamp", amount="amount", order=order
            )
            daily.update(tables[1])
            daily.save(path)
            rfm_fast.DailyState.open(path).update(tables[0], force=True)


def _cli(workdir: Path) -> None:
    from rfm_fast_cli.main import main

    repository = Path(__file__).resolve().parents[2]
    retail = next(
        (
            folder / "shared" / "data" / "online_retail" / "online_retail_I.csv.gz"
            for folder in (repository.parent, repository.parent.parent)
            if (folder / "shared" / "data").is_dir()
        ),
        None,
    )
    commands = [["example"]]
    if retail is not None:
        commands.append(
            [
                "score",
                str(retail),
                "--customer",
                "CustomerID",
                "--timestamp",
                "InvoiceDate",
                "--amount",
                "Quantity*UnitPrice",
                "--order",
                "InvoiceNo",
                "-o",
                str(workdir / "retail.parquet"),
            ]
        )
    for command in commands:
        with (
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
            contextlib.suppress(SystemExit),
        ):
            main(command)


COMPARED_CALLS = 4
"""Calls compared per signature (each copies its arguments, scratch buffers included: three
copies a call); later ones run the ``@jit`` function only."""


class Mismatches:
    """With ``--compare``: every kernel call with an export runs the export and the ``@jit``
    function on the same arguments, and the results are compared bit for bit."""

    def __init__(self) -> None:
        self.compared: set[str] = set()
        self.different: list[str] = []
        self._lock = threading.Lock()  # one call at a time: arrays shared by threads stay whole

    def twin(self, kernel: dispatch.Kernel, export: Any, jit: Any) -> Any:
        calls = [0]

        def both(*args: Any) -> Any:
            calls[0] += 1
            if calls[0] > COMPARED_CALLS:
                return jit(*args)
            codes = tuple(map(dispatch.type_code, args))
            arrays = [a for a in args if isinstance(a, np.ndarray) and a.flags.writeable]
            with self._lock:
                before = [a.copy() for a in arrays]
                aot_result = export(*args)
                aot_after = [a.copy() for a in arrays]
                for array, saved in zip(arrays, before, strict=True):
                    np.copyto(array, saved)  # in place: views of one buffer stay views
                jit_result = jit(*args)
                name = format_signature(kernel.module, kernel.name, codes)
                self.compared.add(name)
                same = _same(aot_result, jit_result) and all(
                    _same(a, b) for a, b in zip(aot_after, arrays, strict=True)
                )
                if not same:
                    self.different.append(name)
            return jit_result

        return both


def _same(a: Any, b: Any) -> bool:
    """Bit for bit: arrays by their bytes, floats by their bits (NaN equals NaN)."""
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if isinstance(a, float) or isinstance(b, float):
        return np.float64(a).tobytes() == np.float64(b).tobytes()
    return type(a) is type(b) and a == b


def _radix_sorts() -> None:
    """The radix sort of the finish, which runs from ``RADIX_SORT_MIN`` keys (more customers
    than the workloads above have), called with the threshold lowered on every key type it
    takes (its kernels see ``uint64`` spans whatever the keys), on one thread and two."""
    from rfm_fast.core import parallel

    rng = np.random.default_rng(11)
    saved = parallel.RADIX_SORT_MIN
    parallel.RADIX_SORT_MIN = 0
    try:
        for dtype in (np.int64, np.uint64):
            keys = rng.integers(0, 2**62, 20_000).astype(dtype)
            for threads in (1, 2):
                parallel.radix_sorted(keys, threads)
    finally:
        parallel.RADIX_SORT_MIN = saved


def record() -> set[str]:
    """Run the workloads; return the signatures of every kernel call, as lines."""
    dispatch.recorded = set()
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        _cli(workdir)
        _score_everything(workdir)
        _states_and_daily(workdir)
    _radix_sorts()
    return {format_signature(*signature) for signature in dispatch.recorded}


def read_listed(path: Path = SIGNATURES_FILE) -> set[str]:
    """The signatures listed in ``path``."""
    if not path.exists():
        return set()
    return {
        line.strip()
        for line in path.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m rfm_fast._kernels.record [--check]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if signatures are missing")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="also run every export beside its @jit function and compare the results bit for bit"
        " (needs the compiled kernels); exit 1 on a difference",
    )
    options = parser.parse_args(argv)
    mismatches = None
    if options.compare:
        os.environ[dispatch.MODE_VARIABLE] = "auto"
        if dispatch.compiled_module() is None:
            print(f"the compiled kernels are not built: run {dispatch.REBUILD}", file=sys.stderr)
            return 1
        mismatches = Mismatches()
        dispatch.twin = mismatches.twin
    else:
        os.environ[dispatch.MODE_VARIABLE] = "jit"
    seen = record()
    unexportable = sorted(line for line in seen if "None" in line)
    seen -= set(unexportable)
    for line in unexportable:
        print(f"not compiled (an argument type pycc cannot take): {line}", file=sys.stderr)
    listed = read_listed()
    missing = sorted(seen - listed)
    if mismatches is not None:
        print(f"{len(mismatches.compared)} signatures compared, export against @jit")
        for line in mismatches.different:
            print(f"different results, export against @jit: {line}")
        if mismatches.different:
            return 1
    if options.check or options.compare:
        for line in missing:
            print(f"missing from {SIGNATURES_FILE.name}: {line}")
        if missing:
            print(f"record them with: python -m rfm_fast._kernels.record, then {dispatch.REBUILD}")
        return 1 if missing else 0
    SIGNATURES_FILE.write_text(HEADER + "".join(f"{line}\n" for line in sorted(seen)))
    print(f"{len(seen)} signatures ({len(missing)} new) written to {SIGNATURES_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
