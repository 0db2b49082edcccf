"""Shared helpers of the tests: the generated case and how to run it on both
implementations, the assertions that compare results, the set-up of the Spark and Dask tests,
and where the test data lives.

The reference gets ``table.to_pandas()`` with integer columns as nullable pandas integers, so
that large ids next to nulls stay exact. The engines are optional extras: locally a test module
is skipped when its engine is not installed; CI sets ``RFM_REQUIRE_ENGINES=1``, and then a
missing engine fails the run instead.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import rfm_fast
from rfm_fast import reference
from rfm_fast.core import arrow
from rfm_fast.core.result import RESULT_COLUMNS

TESTS = Path(__file__).resolve().parent
REPOSITORY = TESTS.parent
TEST_DATA = TESTS / "data"
"""The small real data that ships with the tests (see data/README.md)."""
RETAIL_SLICE = TEST_DATA / "online_retail_slice.csv"
RETAIL_OPTIONS = dict(
    customer="CustomerID", timestamp="InvoiceDate", amount="Quantity*UnitPrice", order="InvoiceNo"
)
"""The Online Retail slice that ships with the tests, and the options that score its lines."""
SHARED_DATA = REPOSITORY.parent / "shared" / "data"
"""The larger real data sets, beside the repository where they are present."""


def take(table: pa.Table, order: list[int]) -> pa.Table:
    """``table.take(order)``, string_view columns included."""
    return arrow.take_rows(table, pa.array(order, pa.int64()))


OUTPUT_COLUMNS = list(RESULT_COLUMNS)
METRICS = ("recency", "frequency", "monetary")
UNIT_NS = {"D": 86_400 * 10**9, "ms": 10**6, "s": 10**9, "us": 10**3, "ns": 1}

# Pandas dtypes that keep integer columns exact when they hold nulls (plain to_pandas would
# turn them into float64 and lose the low bits of large ids).
_NULLABLE_INTS = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.uint8(): pd.UInt8Dtype(),
    pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(),
    pa.uint64(): pd.UInt64Dtype(),
}


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """``table.to_pandas()``, with integer columns as nullable pandas integers (exact ids)."""
    return table.to_pandas(types_mapper=_NULLABLE_INTS.get)


# --------------------------------------------------------------------------- the case


@dataclass
class Case:
    """One generated input and the options of one run, for both implementations."""

    table: pa.Table
    options: dict[str, Any] = field(default_factory=dict)
    rules: list | None = None  # reference form of the segment rules
    as_of_moment: dt.datetime | None = None  # naive (wall clock) or aware

    def score(self, data: Any = None, **extra: Any) -> rfm_fast.RFMResult:
        """Run the engine on ``data`` (default: the table) with the case's options."""
        options = {**self.options, **extra}
        return rfm_fast.score(self.table if data is None else data, **options)

    def reference_as_of(self, df: pd.DataFrame) -> pd.Timestamp | None:
        """``as_of`` as the reference takes it: zoned iff the column is, per the contract."""
        if self.as_of_moment is None:
            return None
        column = df[self.options["timestamp"]]
        tz = column.dt.tz if isinstance(column.dtype, pd.DatetimeTZDtype) else None
        moment = pd.Timestamp(self.as_of_moment)
        if tz is None:
            return moment if moment.tz is None else moment.tz_convert("UTC").tz_localize(None)
        return moment.tz_localize(tz) if moment.tz is None else moment.tz_convert(tz)

    def run_reference(self) -> tuple[pd.DataFrame, dict, dict]:
        df = to_pandas(self.table)
        o = self.options
        return reference.score(
            df,
            customer=o["customer"],
            timestamp=o["timestamp"],
            amount=o["amount"],
            order=o.get("order"),
            as_of=self.reference_as_of(df),
            bins=o.get("bins", 5),
            method=o.get("method", "exact"),
            frequency=o.get("frequency", "orders"),
            monetary=o.get("monetary", "sum"),
            thresholds=o.get("thresholds"),
            rules=self.rules,
            returns=o.get("returns", "net"),
            window=o.get("window"),
        )


def scored_warning_checked(run: Any, fixed_recency: bool = False) -> rfm_fast.RFMResult:
    """``run()``, which must warn (RFMWarning, nothing else) exactly as the rules say: "no usable
    rows" when the result is empty, else an RFMDataWarning for over 10% of rows without customer
    or timestamp, and one for an as_of further beyond the last purchase than the data's span
    (unless the recency edges are ``fixed_recency``)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run()
    assert all(issubclass(w.category, rfm_fast.RFMWarning) for w in caught), caught
    assert [str(w.message).split(":")[0] == "no usable rows" for w in caught] == [
        w.category is rfm_fast.RFMWarning for w in caught
    ], caught
    assert [w.category for w in caught] == expected_warnings(result, fixed_recency), caught
    return result


def expected_warnings(result: rfm_fast.RFMResult, fixed_recency: bool) -> list[type[Warning]]:
    """The warning categories :func:`rfm_fast.score` must give for ``result``, in order.

    The warning about segments called recent whose median recency is over 365 days never
    applies here: the generated cases span about a month, with ``as_of`` near it."""
    stats, table = result.stats, result.table
    if stats.customers == 0:
        return [rfm_fast.RFMWarning]
    expected: list[type[Warning]] = []
    unusable = stats.dropped["null_customer"] + stats.dropped["null_timestamp"]
    if unusable > 0.1 * stats.rows_read:
        expected.append(rfm_fast.RFMDataWarning)
    first = table.column("first_purchase").to_numpy().astype("datetime64[ns]").min()
    last = table.column("last_purchase").to_numpy().astype("datetime64[ns]").max()
    as_of = stats.as_of
    if as_of.tzinfo is not None:
        as_of = as_of.astimezone(dt.UTC).replace(tzinfo=None)
    silent, span = np.datetime64(as_of, "ns") - last, last - first
    if silent > max(span, np.timedelta64(1, "D")) and not fixed_recency:
        expected.append(rfm_fast.RFMDataWarning)
    return expected


def time_unit(type_: pa.DataType) -> str:
    """The unit of one tick: D, ms, s, us or ns."""
    if pa.types.is_date32(type_):
        return "D"
    if pa.types.is_date64(type_):
        return "ms"
    return type_.unit


# --------------------------------------------------------------------------- comparison


def _instants(values: pd.Series | list) -> list[int | None]:
    """Nanoseconds since the epoch (UTC instants for zoned values, wall clock for naive)."""
    return [None if pd.isna(v) else pd.Timestamp(v).value for v in values]


def floored(moment: pd.Timestamp, unit: str) -> pd.Timestamp:
    """``moment`` rounded down to a whole tick of ``unit`` (and to the microseconds that a
    ``datetime`` can hold)."""
    step = max(UNIT_NS[unit], 1000)
    value = moment.value // step * step
    out = pd.Timestamp(value, unit="ns")
    return out if moment.tz is None else out.tz_localize("UTC").tz_convert(moment.tz)


def assert_edges_equal(got: dict[str, list[float]], expected: dict[str, list[float]]) -> None:
    assert set(got) == set(METRICS) == set(expected)
    for metric in METRICS:
        a, b = got[metric], expected[metric]
        assert len(a) == len(b), (metric, a, b)
        assert all(isinstance(e, float) for e in a), (metric, a)
        assert np.array_equal(np.array(a, dtype=float), np.array(b, dtype=float), equal_nan=True), (
            metric,
            a,
            b,
        )


def expected_key_type(type_: pa.DataType) -> pa.DataType:
    if pa.types.is_dictionary(type_):
        type_ = type_.value_type
    return pa.string() if pa.types.is_string_view(type_) else type_


def assert_matches_reference(case: Case) -> rfm_fast.RFMResult:
    """Run both implementations and compare every column, the edges and the stats."""
    ref_table, ref_edges, ref_stats = case.run_reference()
    result = scored_warning_checked(case.score, "recency" in (case.options.get("thresholds") or {}))
    assert (result.stats.customers == 0) == (ref_stats["customers"] == 0)
    table, stats = result.table, result.stats
    customer = case.options["customer"]
    ts_type = case.table.schema.field(case.options["timestamp"]).type

    # ---- columns, names and types
    assert table.column_names == [customer, *OUTPUT_COLUMNS]
    assert list(ref_table.columns) == table.column_names
    schema = table.schema
    assert schema.field(customer).type == expected_key_type(case.table.schema.field(customer).type)
    assert schema.field("first_purchase").type == ts_type
    assert schema.field("last_purchase").type == ts_type
    for name in ("recency", "frequency", "tenure"):
        assert schema.field(name).type == pa.int64()
    assert schema.field("monetary").type == pa.float64()
    for name in ("R", "F", "M"):
        assert schema.field(name).type == pa.int8()

    # ---- values
    assert table.num_rows == len(ref_table)
    assert table.column(customer).to_pylist() == ref_table[customer].tolist()
    for name in ("recency", "frequency", "tenure", "R", "F", "M", "rfm_score"):
        got = table.column(name).to_numpy().astype(np.int64)
        assert np.array_equal(got, ref_table[name].to_numpy(dtype=np.int64)), name
    got_money = table.column("monetary").to_numpy()
    want_money = ref_table["monetary"].to_numpy(dtype=np.float64)
    assert np.array_equal(got_money, want_money), (got_money, want_money)
    for name in ("first_purchase", "last_purchase"):
        got_times = _instants(table.column(name).to_pandas(date_as_object=False))
        assert got_times == _instants(ref_table[name]), name
    for name in ("rfm_cell", "segment"):
        assert table.column(name).to_pylist() == ref_table[name].tolist(), name

    # ---- edges and stats
    assert_edges_equal(result.edges, ref_edges)
    assert stats.rows_read == ref_stats["rows_read"] == case.table.num_rows
    assert stats.rows_used == ref_stats["rows_used"]
    assert stats.dropped == ref_stats["dropped"]
    assert stats.null_amount == ref_stats["null_amount"]
    assert stats.return_rows == ref_stats["return_rows"]
    assert stats.customers_only_returns == ref_stats["customers_only_returns"]
    assert stats.returns == case.options.get("returns", "net")
    assert stats.customers == ref_stats["customers"] == table.num_rows
    assert stats.empty_bins == ref_stats["empty_bins"]
    assert stats.bins == case.options.get("bins", 5)
    assert stats.window == case.options.get("window")
    if ref_stats["as_of"] is None:
        assert stats.as_of is None
    else:
        want = floored(ref_stats["as_of"], time_unit(ts_type))
        assert pd.Timestamp(stats.as_of) == want, (stats.as_of, ref_stats["as_of"])
        assert (stats.as_of.tzinfo is None) == (want.tz is None)
        if want.tz is not None:
            assert stats.as_of.utcoffset() == want.utcoffset()
    return result


def assert_same_result(a: rfm_fast.RFMResult, b: rfm_fast.RFMResult) -> None:
    """Two engine results are identical: table (types, values, bits), edges and stats."""
    assert a.table.schema == b.table.schema
    assert a.table.equals(b.table), (a.table, b.table)
    money_a = a.table.column("monetary").to_numpy()
    money_b = b.table.column("monetary").to_numpy()
    assert money_a.tobytes() == money_b.tobytes()  # bit-identical, -0.0 included
    assert_edges_equal(a.edges, b.edges)
    assert a.stats == b.stats


def run_engine(case: Case, data: Any = None, **extra: Any) -> rfm_fast.RFMResult:
    """Run the engine; it must warn as :func:`scored_warning_checked` says."""
    options = {**case.options, **extra}
    fixed_recency = "recency" in (options.get("thresholds") or {})
    return scored_warning_checked(lambda: case.score(data, **extra), fixed_recency)


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


def assert_same_as_reference(result: rfm_fast.RFMResult, expected, edges, stats) -> None:
    """The engine's result equals the reference's on real data: every column (monetary to
    1e-12), the edges and the row counts."""
    table = result.table
    assert table.num_rows == len(expected)
    for column in table.column_names:
        mine = table.column(column)
        if pa.types.is_dictionary(mine.type):
            mine = mine.cast(mine.type.value_type)
        theirs = expected[column].to_numpy()
        if column == "monetary":
            np.testing.assert_allclose(mine.to_numpy(), theirs, rtol=1e-12, atol=1e-9)
        elif pa.types.is_timestamp(mine.type) or pa.types.is_date(mine.type):
            as_ns = mine.to_numpy(zero_copy_only=False).astype("datetime64[ns]")
            np.testing.assert_array_equal(as_ns, theirs.astype("datetime64[ns]"))
        else:
            assert mine.to_pylist() == list(theirs), column
    for metric in ("recency", "frequency"):
        assert result.edges[metric] == edges[metric]
    np.testing.assert_allclose(result.edges["monetary"], edges["monetary"], rtol=1e-12)
    assert result.stats.rows_read == stats["rows_read"]
    assert result.stats.rows_used == stats["rows_used"]
    assert result.stats.dropped == stats["dropped"]
    assert result.stats.customers == stats["customers"]
    assert result.stats.return_rows == stats["return_rows"]
    assert result.stats.customers_only_returns == stats["customers_only_returns"]


def one_line_error(result: Any, *fragments: str) -> str:
    """The one line a failed command printed (exit code 1, ``error: ...`` on stderr, no
    traceback), checked to hold each of ``fragments``."""
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]
