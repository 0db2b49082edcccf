"""Hypothesis strategies for random order tables (:func:`cases` and the columns it draws).

Every generated value stays in a bounded range that cannot overflow: timestamps between 1959
and 2036, and amounts that are multiples of 1/4 up to 1000 in absolute value, so that every
float sum is exact and monetary values can be compared with ``==`` (tests that compare the
engine with itself use any finite float instead).
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from helpers import (
    METRICS,
    Case,
)
from hypothesis import settings
from hypothesis import strategies as st

from rfm_fast import reference
from rfm_fast.core.segments import SegmentRule

CUSTOMER = "CustomerID"
TIMESTAMP = "ts"
AMOUNT = "amount"
ORDER = "order"
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
AS_OF_OFFSETS = [
    dt.UTC,
    dt.timezone(dt.timedelta(hours=1)),
    dt.timezone(-dt.timedelta(hours=3, minutes=30)),
]


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
    window: bool | None = False,
) -> Case:
    """A random order table and a random set of options.

    ``order``, ``as_of``, ``with_thresholds`` and ``window`` (a window of 1-40 days; none by
    default): True or False forces the choice, None draws it.
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
    returns = draw(st.sampled_from(["net", "net", "purchase", "drop"]))
    if returns != "net" or draw(st.booleans()):  # the default, given or not
        options["returns"] = returns
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
    if window if window is not None else draw(st.booleans()):
        options["window"] = draw(st.integers(1, 40))
    # shuffle the column order: nothing may depend on it
    names = draw(st.permutations(list(columns)))
    table = pa.table({name: columns[name] for name in names})
    return Case(table, options, rules, moment)


def scaled(fraction: float) -> settings:
    """Settings with a fraction of the current profile's examples (for parametrized tests)."""
    return settings(max_examples=max(4, int(settings.default.max_examples * fraction)))
