"""Hypothesis strategies for random order tables, and helpers that run the compiled engine and
the pandas reference on the same input and compare everything they return.

Every generated value stays in a bounded range that cannot overflow: timestamps between 1959
and 2036, and amounts that are multiples of 1/4 up to 1000 in absolute value, so that every
float sum is exact and monetary values can be compared with ``==`` (tests that compare the
engine with itself use any finite float instead).

The reference gets ``table.to_pandas()`` with integer columns as nullable pandas integers, so
that large ids next to nulls stay exact.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import settings
from hypothesis import strategies as st

import rfm_fast
from rfm_fast import reference
from rfm_fast.core.result import RESULT_COLUMNS
from rfm_fast.core.segments import SegmentRule

CUSTOMER = "CustomerID"
TIMESTAMP = "ts"
AMOUNT = "amount"
ORDER = "order"
OUTPUT_COLUMNS = list(RESULT_COLUMNS)
METRICS = ("recency", "frequency", "monetary")
EPOCH = dt.datetime(1970, 1, 1)

INT_TYPES = {
    "int8": pa.int8(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "uint8": pa.uint8(),
    "uint16": pa.uint16(),
    "uint32": pa.uint32(),
    "uint64": pa.uint64(),
}
TEXT_TYPES = {
    "string": pa.string(),
    "large_string": pa.large_string(),
    "string_view": pa.string_view(),
}
KEY_KINDS = [*INT_TYPES, *TEXT_TYPES, "dict_int", "dict_string"]
ORDER_KINDS = [
    "int64",
    "int32",
    "uint64",
    "string",
    "large_string",
    "string_view",
    "dict_int",
    "dict_string",
]
TIME_KINDS = [
    ("date32", None, None),
    ("date64", None, None),
    *(
        ("timestamp", unit, tz)
        for unit in ("s", "ms", "us", "ns")
        for tz in (None, "UTC", "Europe/London", "+05:30")
    ),
]
AMOUNT_KINDS = ["float64", "float64", "float32", "int64", "int16", "decimal", "product"]
TICKS_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
UNIT_NS = {"D": 86_400 * 10**9, "ms": 10**6, "s": 10**9, "us": 10**3, "ns": 1}
AS_OF_OFFSETS = [
    dt.UTC,
    dt.timezone(dt.timedelta(hours=1)),
    dt.timezone(-dt.timedelta(hours=3, minutes=30)),
]

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
        )


def expect_empty_warning(empty: bool):
    """``pytest.warns(RFMWarning)`` when the run has no usable rows, else nothing."""
    return (
        pytest.warns(rfm_fast.RFMWarning, match="no usable rows")
        if empty
        else (contextlib.nullcontext())
    )


# --------------------------------------------------------------------------- columns


def _int_values(type_: pa.DataType) -> st.SearchStrategy[int]:
    info = np.iinfo(type_.to_pandas_dtype())
    values = st.integers(int(info.min), int(info.max))
    if type_ == pa.uint64():  # ids above 2**63 do not fit an int64
        return st.one_of(
            values, st.integers(2**64 - 1000, 2**64 - 1), st.integers(2**63 - 3, 2**63 + 3)
        )
    if info.min < 0:
        return st.one_of(values, st.integers(-3, 3))
    return values


TEXT = st.text(st.characters(codec="utf-8"), max_size=6)


@st.composite
def _null_mask(draw, n: int) -> list[bool]:
    """Which of ``n`` rows are null (none, or a random few)."""
    if n == 0 or not draw(st.booleans()):
        return [False] * n
    return draw(st.lists(st.integers(0, 4).map(lambda d: d == 0), min_size=n, max_size=n))


@st.composite
def key_arrays(draw, n: int, kinds: list[str], pool_size: tuple[int, int]) -> pa.Array:
    """A key column (customer or order ids) of ``n`` rows drawing on a small pool of keys."""
    kind = draw(st.sampled_from(kinds))
    if kind == "dict_int":
        value_type = draw(st.sampled_from([pa.int64(), pa.int32(), pa.uint64(), pa.int8()]))
    elif kind == "dict_string":
        value_type = draw(st.sampled_from([pa.string(), pa.large_string()]))
    else:
        value_type = INT_TYPES.get(kind) or TEXT_TYPES[kind]
    values = TEXT if value_type in TEXT_TYPES.values() else _int_values(value_type)
    pool = draw(st.lists(values, min_size=pool_size[0], max_size=pool_size[1], unique=True))
    picks = draw(st.lists(st.integers(0, len(pool) - 1), min_size=n, max_size=n))
    nulls = draw(_null_mask(n))
    if not kind.startswith("dict_"):
        return pa.array(
            [None if null else pool[p] for p, null in zip(picks, nulls, strict=True)], value_type
        )
    # Dictionary: the pool plus unused entries, in a random order.
    unused = draw(st.lists(values.filter(lambda v: v not in pool), max_size=3, unique=True))
    dictionary = draw(st.permutations(pool + unused))
    position = {v: i for i, v in enumerate(dictionary)}
    index_type = draw(st.sampled_from([pa.int8(), pa.int16(), pa.int32(), pa.int64()]))
    indices = [None if null else position[pool[p]] for p, null in zip(picks, nulls, strict=True)]
    return pa.DictionaryArray.from_arrays(
        pa.array(indices, index_type), pa.array(dictionary, value_type)
    )


def time_type(kind: tuple[str, str | None, str | None]) -> pa.DataType:
    name, unit, tz = kind
    if name == "date32":
        return pa.date32()
    if name == "date64":
        return pa.date64()
    return pa.timestamp(unit, tz=tz)


def time_unit(type_: pa.DataType) -> str:
    """The unit of one tick: D, ms, s, us or ns."""
    if pa.types.is_date32(type_):
        return "D"
    if pa.types.is_date64(type_):
        return "ms"
    return type_.unit


@st.composite
def time_arrays(draw, n: int, type_: pa.DataType, base_day: int) -> pa.Array:
    """Timestamps within about a month after ``base_day`` (days since 1970-01-01)."""
    days = draw(st.lists(st.integers(0, 30), min_size=n, max_size=n))
    nulls = draw(_null_mask(n))
    if pa.types.is_date32(type_):
        ticks = [base_day + d for d in days]
        array = pa.array(np.array(ticks, dtype=np.int32))
    elif pa.types.is_date64(type_):
        ticks = [(base_day + d) * 86_400_000 for d in days]
        array = pa.array(np.array(ticks, dtype=np.int64))
    else:
        per_second = TICKS_PER_SECOND[type_.unit]
        seconds = draw(st.lists(st.integers(0, 86_399), min_size=n, max_size=n))
        fractions = draw(st.lists(st.integers(0, per_second - 1), min_size=n, max_size=n))
        ticks = [
            ((base_day + d) * 86_400 + s) * per_second + f
            for d, s, f in zip(days, seconds, fractions, strict=True)
        ]
        array = pa.array(np.array(ticks, dtype=np.int64))
    mask = pa.array(nulls, pa.bool_())
    array = array.view(type_)
    return pc.if_else(mask, pa.scalar(None, type_), array) if any(nulls) else array


QUARTERS = st.integers(-4000, 4000).map(lambda v: v / 4)
"""Amounts whose sums are exact in float64 (so that they can be compared with ==)."""
FLOATS = st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False)
"""Any finite amount, tiny and subnormal ones included."""


@st.composite
def amount_columns(draw, n: int, exact: bool = True) -> tuple[dict[str, pa.Array], str]:
    """Amount column(s) and the ``amount=`` argument naming them.

    ``exact``: float amounts are multiples of 1/4 (else any finite float).
    """
    kind = draw(st.sampled_from(AMOUNT_KINDS))
    nulls = draw(_null_mask(n))
    floats = QUARTERS if exact else FLOATS
    if kind == "product":
        quantity = draw(st.lists(st.integers(-5, 20), min_size=n, max_size=n))
        price = draw(st.lists(floats, min_size=n, max_size=n))
        price_nulls = draw(_null_mask(n))
        columns = {
            "Quantity": pa.array(
                [None if z else q for q, z in zip(quantity, nulls, strict=True)], pa.int32()
            ),
            "UnitPrice": pa.array(
                [None if z else p for p, z in zip(price, price_nulls, strict=True)], pa.float64()
            ),
        }
        return columns, "Quantity*UnitPrice"
    if kind in ("int64", "int16"):
        values = draw(st.lists(st.integers(-1000, 1000), min_size=n, max_size=n))
        type_ = pa.int64() if kind == "int64" else pa.int16()
        return {
            AMOUNT: pa.array([None if z else v for v, z in zip(values, nulls, strict=True)], type_)
        }, AMOUNT
    if kind == "decimal":
        values = draw(st.lists(QUARTERS, min_size=n, max_size=n))
        amounts = [None if z else decimal.Decimal(v) for v, z in zip(values, nulls, strict=True)]
        return {AMOUNT: pa.array(amounts, pa.decimal128(9, 2))}, AMOUNT
    if kind == "float32" and not exact:
        floats = st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False, width=32)
    values = draw(st.lists(floats, min_size=n, max_size=n))
    nans = draw(_null_mask(n))
    amounts = [
        None if z else (math.nan if nan else v)
        for v, z, nan in zip(values, nulls, nans, strict=True)
    ]
    # from_pandas=False keeps NaN as a (non-null) value, next to the real nulls
    type_ = pa.float64() if kind == "float64" else pa.float32()
    return {AMOUNT: pa.array(amounts, type_, from_pandas=False)}, AMOUNT


@st.composite
def custom_rules(draw, bins: int) -> list[tuple[str, dict[str, tuple[int, int]]]]:
    rules = []
    for i in range(draw(st.integers(1, 4))):
        keys = draw(st.lists(st.sampled_from("RFM"), min_size=1, max_size=3, unique=True))
        ranges = {}
        for key in keys:
            low = draw(st.integers(1, bins))
            ranges[key] = (low, draw(st.integers(low, bins)))
        rules.append((f"segment {i}", ranges))
    return rules


EDGE_VALUES = {
    "recency": st.integers(-2, 40).map(float),
    "frequency": st.integers(0, 16).map(lambda v: v / 2),
    "monetary": st.integers(-6000, 6000).map(lambda v: v / 4),
}


@st.composite
def thresholds(draw, bins: int, required: bool = False) -> dict[str, list[float]] | None:
    """User edges for some of the metrics (at least one when ``required``), or None."""
    chosen = draw(
        st.lists(st.sampled_from(METRICS), min_size=int(required), max_size=3, unique=True)
    )
    if not chosen:
        return None
    out = {}
    for metric in chosen:
        values = st.one_of(EDGE_VALUES[metric], st.sampled_from([-math.inf, math.inf]))
        out[metric] = sorted(draw(st.lists(values, min_size=bins - 1, max_size=bins - 1)))
    return out


@st.composite
def user_as_of(draw, base_day: int) -> tuple[Any, dt.datetime]:
    """A user ``as_of`` (in one of the forms the engine takes) and the moment it means.

    Naive moments are kept away from 00:00-04:00, where daylight-saving changes make some wall
    clock times ambiguous or missing.
    """
    day = base_day + draw(st.integers(-3, 33))
    form = draw(
        st.sampled_from(
            ["datetime", "aware", "date", "str", "str_date", "str_offset", "datetime64"]
        )
    )
    if form in ("date", "str_date"):
        wall = EPOCH + dt.timedelta(days=day)
        return (wall.date() if form == "date" else wall.date().isoformat()), wall
    wall = EPOCH + dt.timedelta(days=day, seconds=draw(st.integers(4 * 3600, 86_399)))
    if form == "datetime":
        return wall, wall
    if form == "str":
        return wall.isoformat(sep=draw(st.sampled_from(["T", " "]))), wall
    if form == "datetime64":
        return np.datetime64(wall, "s"), wall
    aware = wall.replace(tzinfo=draw(st.sampled_from(AS_OF_OFFSETS)))
    return (aware if form == "aware" else aware.isoformat()), aware


@st.composite
def cases(
    draw,
    *,
    max_rows: int = 40,
    min_rows: int = 0,
    key_kinds: list[str] | None = None,
    customers: tuple[int, int] = (1, 10),
    time_kinds: list | None = None,
    order: bool | None = None,
    as_of: bool | None = None,
    with_thresholds: bool | None = None,
    exact_amounts: bool = True,
) -> Case:
    """A random order table and a random set of options.

    ``order``, ``as_of`` and ``with_thresholds``: True or False forces the choice, None draws it.
    ``customers`` bounds the number of distinct customer keys. ``exact_amounts``: amounts whose
    float sums are exact (else any finite amounts, for tests that compare the engine with
    itself).
    """
    n = draw(st.integers(min_rows, max_rows))
    base_day = draw(st.integers(-4000, 24_000))
    columns: dict[str, pa.Array] = {
        CUSTOMER: draw(key_arrays(n, key_kinds or KEY_KINDS, customers)),
    }
    ts_type = time_type(draw(st.sampled_from(time_kinds or TIME_KINDS)))
    columns[TIMESTAMP] = draw(time_arrays(n, ts_type, base_day))
    amounts, amount = draw(amount_columns(n, exact=exact_amounts))
    columns.update(amounts)
    options: dict[str, Any] = {"customer": CUSTOMER, "timestamp": TIMESTAMP, "amount": amount}
    if order if order is not None else draw(st.booleans()):
        columns[ORDER] = draw(key_arrays(n, ORDER_KINDS, (1, 6)))
        options["order"] = ORDER
    bins = draw(st.integers(2, 9))
    options["bins"] = bins
    options["method"] = draw(st.sampled_from(["exact", "split"]))
    options["frequency"] = draw(st.sampled_from(["orders", "orders", "days"]))
    options["monetary"] = draw(st.sampled_from(["sum", "sum", "mean"]))
    if with_thresholds is not False:
        given = draw(thresholds(bins, required=bool(with_thresholds)))
        if given is not None:
            options["thresholds"] = given
    rules = None
    if bins == 5 and draw(st.booleans()):
        options["segments"] = "default"
        rules = reference.DEFAULT_RULES
    elif draw(st.booleans()):
        rules = draw(custom_rules(bins))
        options["segments"] = [SegmentRule(name, dict(ranges)) for name, ranges in rules]
    else:
        options["segments"] = None
    moment = None
    if as_of if as_of is not None else draw(st.booleans()):
        options["as_of"], moment = draw(user_as_of(base_day))
    # shuffle the column order: nothing may depend on it
    names = draw(st.permutations(list(columns)))
    table = pa.table({name: columns[name] for name in names})
    return Case(table, options, rules, moment)


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
    with expect_empty_warning(ref_stats["customers"] == 0):
        result = case.score()
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
    assert stats.customers == ref_stats["customers"] == table.num_rows
    assert stats.empty_bins == ref_stats["empty_bins"]
    assert stats.bins == case.options.get("bins", 5)
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


def scaled(fraction: float) -> settings:
    """Settings with a fraction of the current profile's examples (for parametrized tests)."""
    return settings(max_examples=max(4, int(settings.default.max_examples * fraction)))


def run_engine(case: Case, data: Any = None, **extra: Any) -> rfm_fast.RFMResult:
    """Run the engine; it must warn (RFMWarning, and nothing else) exactly when the result is
    empty."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = case.score(data, **extra)
    assert [w.category for w in caught] == [rfm_fast.RFMWarning] * len(caught), caught
    assert len(caught) == (result.stats.customers == 0), caught
    return result
