"""Shared set-up of the Spark and Dask tests: data sets and the single-machine expectation.

The engines are optional extras. Locally a test module is skipped when its engine is not
installed; CI sets ``RFM_REQUIRE_ENGINES=1``, and then a missing engine fails the run instead.
"""

from __future__ import annotations

import importlib
import os
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import rfm_fast


def require(module: str, program: str | None = None):
    """Import an optional engine (and check for a program it runs, such as ``java``): skip
    locally when it is missing, fail in CI."""
    if os.environ.get("RFM_REQUIRE_ENGINES") == "1":
        if program is not None and shutil.which(program) is None:
            raise RuntimeError(f"{module} needs {program!r}, which is not on the PATH")
        return importlib.import_module(module)
    if program is not None and shutil.which(program) is None:
        pytest.skip(
            f"{module} needs {program!r}, which is not on the PATH", allow_module_level=True
        )
    return pytest.importorskip(module)


def order_lines(seed: int = 3, rows: int = 6_000) -> pa.Table:
    """Line-level orders: text customer ids, each order id on 1-4 rows, some null customers,
    null and negative amounts, naive microsecond timestamps."""
    rng = np.random.default_rng(seed)
    orders = rows // 2
    order_customer = rng.integers(0, 700, orders)
    order_time = rng.integers(0, 500 * 86_400, orders) * 1_000_000
    lines = rng.integers(1, 5, orders)
    order_of_row = np.repeat(np.arange(orders), lines)
    n = order_of_row.shape[0]
    customer = pa.array([f"c{c:04d}" for c in order_customer[order_of_row]])
    customer = pc.if_else(pa.array(rng.random(n) < 0.01), pa.nulls(n, pa.string()), customer)
    amount = np.round(rng.lognormal(2.5, 1.0, n), 2)
    amount[rng.random(n) < 0.05] = 4.99  # ties
    amount[rng.random(n) < 0.03] *= -1  # returns
    amount_array = pa.array(amount, mask=rng.random(n) < 0.02)
    return pa.table(
        {
            "customer": customer,
            "ordered_at": pa.array(order_time[order_of_row], pa.timestamp("us")),
            "amount": amount_array,
            "order_id": pa.array(order_of_row + 10_000, pa.int64()),
        }
    )


def expected_table(result: rfm_fast.RFMResult) -> pa.Table:
    """The single-machine table as the engines return it: ``segment`` as plain text."""
    table = result.table
    index = table.schema.get_field_index("segment")
    return table.set_column(index, "segment", table.column("segment").cast(pa.string()))


def by_customer(table: pa.Table, customer: str) -> pa.Table:
    """Rows in customer-key order (the engines return them in partition order)."""
    return table.take(pc.sort_indices(table.column(customer))).combine_chunks()


def assert_same_scores(got: pa.Table, expected: rfm_fast.RFMResult, customer: str) -> None:
    want = expected_table(expected)
    got = by_customer(got, customer).cast(want.schema)
    assert got.num_rows == want.num_rows
    assert got.equals(want.combine_chunks()), (got.slice(0, 5), want.slice(0, 5))
    money = got.column("monetary").to_numpy()
    assert money.tobytes() == want.column("monetary").to_numpy().tobytes()
