"""Hand-written cases: the worked example of docs/semantics.md, edges as thresholds, errors that
bad input must raise, exact sums, time zones and as_of, and hash tables that must grow."""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo

import numpy as np
import pyarrow as pa
import pytest
from helpers import Case, assert_matches_reference, assert_same_result, run_engine
from hypothesis import given
from hypothesis import strategies as st
from strategies import CUSTOMER, cases, scaled

import rfm_fast
from rfm_fast import RFMError, RFMWarning
from rfm_fast.clv import summary
from rfm_fast.core import arrays

DAY = dt.date(2024, 6, 1)
AS_OF = dt.datetime(2024, 6, 30)
BASE = {"customer": "customer", "timestamp": "ts", "amount": "amount"}


def orders(spec: dict, *, key_type: pa.DataType | None = None) -> pa.Table:
    """One row per (days before AS_OF, amount) pair of each customer; date32 timestamps."""
    rows = [
        (key, (AS_OF - dt.timedelta(days=days)).date(), amount)
        for key, purchases in spec.items()
        for days, amount in purchases
    ]
    return pa.table(
        {
            "customer": pa.array([r[0] for r in rows], key_type),
            "ts": pa.array([r[1] for r in rows], pa.date32()),
            "amount": pa.array([r[2] for r in rows], pa.float64()),
        }
    )


def score(data, **options) -> rfm_fast.RFMResult:
    return rfm_fast.score(data, **{**BASE, **options})


def column(result: rfm_fast.RFMResult, name: str) -> list:
    return result.table.column(name).to_pylist()


def check(table: pa.Table, rules=None, as_of_moment=None, **options) -> rfm_fast.RFMResult:
    """The engine agrees with the reference on ``table`` with these options."""
    if "segments" not in options:
        options["segments"] = None
    return assert_matches_reference(Case(table, {**BASE, **options}, rules, as_of_moment))


# --------------------------------------------------------------------------- the worked example


WORKED_FREQUENCIES = [1, 1, 1, 1, 1, 1, 2, 2, 3, 7]


def test_worked_example_of_semantics() -> None:
    table = orders({key: [(5, 1.0)] * f for key, f in enumerate(WORKED_FREQUENCIES)})
    result = check(table, as_of=AS_OF, as_of_moment=AS_OF)
    assert column(result, "frequency") == WORKED_FREQUENCIES
    assert column(result, "F") == [1, 1, 1, 1, 1, 1, 4, 4, 5, 5]
    assert result.stats.empty_bins["frequency"] == [2, 3]
    assert result.edges["frequency"] == [1.0, 1.0, 1.0, 2.0]
    # all recencies tie: nobody is worse than anybody, everybody gets R = 1, and the best
    # recency scores, reached by nobody, have the edge -inf
    assert column(result, "R") == [1] * 10
    assert result.stats.empty_bins["recency"] == [2, 3, 4, 5]
    assert result.edges["recency"] == [-math.inf, -math.inf, -math.inf, -math.inf]


def test_worked_example_with_split() -> None:
    table = orders({key: [(5, 1.0)] * f for key, f in enumerate(WORKED_FREQUENCIES)})
    result = check(table, method="split")
    # NTILE(5) of 10 customers: two per score, ties broken by key
    assert column(result, "F") == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert result.stats.empty_bins["frequency"] == []


def test_exact_edges_fed_back_as_thresholds_reproduce_the_scores() -> None:
    table = orders({key: [(key % 4, 1.0 + key)] * f for key, f in enumerate(WORKED_FREQUENCIES)})
    first = score(table, as_of=AS_OF, segments=None)
    again = score(table, as_of=AS_OF, segments=None, thresholds=first.edges)
    for name in ("R", "F", "M"):
        assert column(again, name) == column(first, name)
    assert again.edges == first.edges
    assert again.stats.empty_bins == first.stats.empty_bins


@scaled(0.5)
@given(cases(min_rows=1, max_rows=60, with_thresholds=False))
def test_exact_edges_as_thresholds_property(case: Case) -> None:
    case.options["method"] = "exact"
    first = run_engine(case)
    if first.stats.customers == 0:
        return
    again = run_engine(case, thresholds=first.edges)
    assert_same_result(again, first)


# --------------------------------------------------------------------------- errors


@given(
    st.lists(
        st.floats(-1e6, 1e6, allow_nan=False) | st.sampled_from([0.0, -0.0, 1.5, 2.0]),
        min_size=1,
        max_size=400,
    )
    | st.lists(st.integers(-(2**62), 2**62), min_size=1, max_size=400),
    st.integers(2, 9),
    st.booleans(),
)
def test_exact_scores_of_any_values_are_the_reference_ranks(
    values: list, bins: int, higher_is_better: bool
) -> None:
    """The exact rule by order statistics (no sort) against its definition computed with a
    sort: floats with ties and zeros of both signs, and integers too spread to be counted."""
    from rfm_fast.core.binning import score_metric

    array = np.asarray(values)
    ordered = np.sort(array)
    if higher_is_better:  # less(v): customers with a strictly smaller value
        less = np.searchsorted(ordered, array, side="left")
    else:  # recency: customers with a strictly larger value
        less = array.shape[0] - np.searchsorted(ordered, array, side="right")
    expected = 1 + (bins * less) // array.shape[0]
    scored = score_metric(array, bins=bins, method="exact", higher_is_better=higher_is_better)
    np.testing.assert_array_equal(scored.scores, expected)


def test_infinite_amount_names_column_and_row() -> None:
    table = orders({1: [(1, 1.0), (2, 2.0)], 2: [(1, 3.0), (3, -math.inf), (4, 5.0)]})
    with pytest.raises(RFMError, match=r"amount column 'amount' has an infinite value in row 3"):
        score(table)
    # the row number counts over all batches
    with pytest.raises(RFMError, match=r"in row 3 "):
        score(table, batch_rows=2)


def test_infinite_amount_on_a_dropped_row_is_still_an_error() -> None:
    table = pa.table(
        {
            "customer": pa.array([1, None, 2], pa.int64()),
            "ts": pa.array([DAY, DAY, None], pa.date32()),
            "amount": [1.0, math.inf, 2.0],
        }
    )
    with pytest.raises(RFMError, match="infinite value in row 1"):
        score(table)
    table = table.set_column(2, "amount", pa.array([1.0, 2.0, math.inf]))
    with pytest.raises(RFMError, match="infinite value in row 2"):
        score(table)
    with pytest.raises(RFMError, match="infinite value in row 0"):
        score(table.set_column(2, "amount", pa.array([math.inf, 2.0, 1.0])), as_of="2000-01-01")


def test_infinite_factor_or_product() -> None:
    table = pa.table(
        {
            "customer": [1, 1, 2],
            "ts": pa.array([DAY] * 3, pa.date32()),
            "Quantity": pa.array([1.0, None, 0.0]),
            "UnitPrice": [1.0, math.inf, 5.0],
        }
    )
    # inf in a factor is an error even where the other factor is null (or zero)
    with pytest.raises(RFMError, match="amount column 'UnitPrice' has an infinite value in row 1"):
        score(table, amount="Quantity*UnitPrice")
    overflow = table.set_column(3, "UnitPrice", pa.array([1.0, 1e200, 5.0]))
    overflow = overflow.set_column(2, "Quantity", pa.array([1.0, 1e200, 0.0]))
    with pytest.raises(RFMError, match=r"'Quantity\*UnitPrice' has an infinite value in row 1"):
        score(overflow, amount="Quantity*UnitPrice")
    with pytest.raises(ValueError, match="infinite"):  # the reference agrees
        Case(overflow, {**BASE, "amount": "Quantity*UnitPrice"}).run_reference()


def test_amount_limit() -> None:
    limit = 2**62
    fits = pa.table(
        {
            "customer": [1, 1, 2],
            "ts": pa.array([DAY] * 3, pa.date32()),
            "amount": pa.array([limit - 1, 1 - limit, limit - 1], pa.int64()),
        }
    )
    assert column(score(fits, segments=None), "monetary") == [0.0, float(limit - 1)]
    for bad in (limit, -limit):
        table = fits.set_column(2, "amount", pa.array([1, bad, 1], pa.int64()))
        with pytest.raises(RFMError, match=r"too large.*row 1"):
            score(table)
    table = fits.set_column(2, "amount", pa.array([1, 2**63 + 1, 1], pa.uint64()))
    with pytest.raises(RFMError, match=r"too large.*row 1"):
        score(table)
    with pytest.raises(RFMError, match=r"too large.*row 2"):
        score(fits.set_column(2, "amount", pa.array([1.0, -1.0, 2.0**62])))


SUM_LIMIT = 2**63 - 2


@pytest.mark.parametrize("key_type", [pa.int64(), pa.string()])
@pytest.mark.parametrize("amount_type", [pa.int64(), pa.float64()])
@pytest.mark.parametrize("sign", [1, -1])
def test_a_sum_past_the_int64_range_names_the_customer(key_type, amount_type, sign) -> None:
    """Each amount is below the limit, their sum is not: an error, never a wrapped value."""
    big = sign * 4 * 10**18
    big = float(big) if amount_type == pa.float64() else big
    table = pa.table(
        {
            "customer": pa.array([7, 3, 7, 7], pa.int64()).cast(key_type),
            "ts": pa.array([DAY] * 4, pa.date32()),
            "amount": pa.array([big, 1, big, big], amount_type),
        }
    )
    customer = "7" if key_type == pa.int64() else "'7'"
    with pytest.raises(RFMError, match=rf"amounts of customer {customer} sum to more than"):
        score(table, segments=None)
    with pytest.raises(ValueError, match="sum past"):  # the reference agrees
        Case(table, BASE).run_reference()


def test_sums_at_the_limit_are_exact() -> None:
    """``2**63 - 2`` is the largest whole part kept; one more is an error, in either order."""
    half = 2**62 - 1
    fits = [half, half, 0]  # 2**63 - 2
    table = pa.table(
        {
            "customer": [1, 1, 1, 2, 2, 2],
            "ts": pa.array([DAY] * 6, pa.date32()),
            "amount": pa.array(fits + [-x for x in fits], pa.int64()),
        }
    )
    monetary = column(score(table, segments=None), "monetary")
    assert monetary == [float(SUM_LIMIT), -float(SUM_LIMIT)]
    for over in ([half, half, 1], [1, half, half], [-half, -half, -1]):
        bad = table.set_column(2, "amount", pa.array(over + fits, pa.int64()))
        with pytest.raises(RFMError, match="amounts of customer 1 sum"):
            score(bad, segments=None)


def test_a_sum_that_overflows_only_when_states_merge() -> None:
    """Each part's sum fits; the merged one does not, and merging says so."""
    part = pa.table(
        {
            "customer": [5, 6],
            "ts": pa.array([DAY] * 2, pa.date32()),
            "amount": pa.array([4 * 10**18, 1], pa.int64()),
        }
    )
    states = [rfm_fast.CustomerState.of(part, **BASE) for _ in range(3)]
    merged = states[0].merge(*states[1:])
    with pytest.raises(RFMError, match="amounts of customer 5 sum"):
        merged.score(segments=None)
    with pytest.raises(RFMError, match="amounts of customer 5 sum"):  # and the BTYD summary
        summary(pa.concat_tables([part] * 3), **BASE)


def test_missing_column_lists_the_columns_present() -> None:
    table = orders({1: [(1, 1.0)]}).append_column("Invoice", pa.array(["A"]))
    message = r"customer column 'client' not found; the input has columns: 'customer', 'ts', "
    with pytest.raises(RFMError, match=message + r"'amount', 'Invoice'"):
        score(table, customer="client")
    with pytest.raises(RFMError, match=r"column 'Customer_' not found \(did you mean 'customer'"):
        score(table, customer="Customer_")
    with pytest.raises(RFMError, match=r"order column 'invoce' not found \(did you mean 'Invoice'"):
        score(table, order="invoce")
    with pytest.raises(RFMError, match=r"amount factor column 'Price' not found"):
        score(table, amount="amount*Price")
    with pytest.raises(RFMError, match=r"two column names"):
        score(table, amount="amount*amount*amount")


def test_column_literally_named_like_a_product_is_used() -> None:
    table = orders({1: [(1, 2.0)], 2: [(1, 3.0)]})
    table = table.append_column("Quantity*UnitPrice", pa.array([10.0, 20.0]))
    result = score(table, amount="Quantity*UnitPrice", segments=None)
    assert column(result, "monetary") == [10.0, 20.0]


@pytest.mark.parametrize(
    ("name", "values", "message"),
    [
        ("customer", pa.array([1.5]), r"customer column 'customer' holds floats.*has 1.5"),
        ("customer", pa.array([True]), r"customer column 'customer' has type bool"),
        ("ts", pa.array([1.0]), r"timestamp column 'ts' has type double"),
        ("ts", pa.array([20240101], pa.int64()), r"timestamp column 'ts' has type int64"),
        ("amount", pa.array(["abc"]), r"amount column 'amount' is text, and row 0 .* 'abc'"),
        ("amount", pa.array([True]), r"amount column 'amount' has type bool"),
    ],
)
def test_wrong_column_type(name: str, values: pa.Array, message: str) -> None:
    table = orders({1: [(1, 1.0)]})
    table = table.set_column(table.schema.get_field_index(name), name, values)
    with pytest.raises(RFMError, match=message):
        score(table)


def test_wrong_order_column_type() -> None:
    table = orders({1: [(1, 1.0)]}).append_column("order", pa.array([1.0]))
    with pytest.raises(RFMError, match=r"order column 'order' has type double"):
        score(table, order="order")


@pytest.mark.parametrize("bins", [0, 1, 10, -5, True, 2.5, "5"])
def test_bins_out_of_range(bins) -> None:
    with pytest.raises(RFMError, match="bins must be"):
        score(orders({1: [(1, 1.0)]}), bins=bins, segments=None)


@pytest.mark.parametrize("bins", [2, 9])
def test_bins_at_the_limits(bins: int) -> None:
    table = orders({k: [(k, float(k))] * (k % 3 + 1) for k in range(12)})
    result = check(table, bins=bins)
    assert set(column(result, "R")) <= set(range(1, bins + 1))


def test_default_segments_need_five_bins() -> None:
    with pytest.raises(RFMError, match="default segment map is defined for 5 bins"):
        score(orders({1: [(1, 1.0)]}), bins=4)


@pytest.mark.parametrize(
    "options",
    [
        {"method": "quantile"},
        {"frequency": "weeks"},
        {"monetary": "median"},
        {"batch_rows": 0},
        {"thresholds": {"tenure": [1, 2, 3, 4]}},
        {"thresholds": {"recency": [1, 2, 3]}},
        {"thresholds": {"recency": [4, 3, 2, 1]}},
        {"thresholds": {"recency": [1, 2, math.nan, 4]}},
    ],
)
def test_bad_options(options: dict) -> None:
    with pytest.raises(RFMError):
        score(orders({1: [(1, 1.0)]}), **options)


@pytest.mark.parametrize("as_of", ["yesterday", "2024-13-01", "10/12/2011", "", 20240101])
def test_bad_as_of(as_of) -> None:
    with pytest.raises(RFMError, match="as_of"):
        score(orders({1: [(1, 1.0)]}), as_of=as_of)


def test_bad_as_of_text_says_what_is_expected() -> None:
    with pytest.raises(RFMError, match=r"cannot read as_of 'soon'.*ISO-8601"):
        score(orders({1: [(1, 1.0)]}), as_of="soon")


# --------------------------------------------------------------------------- amounts and sums


def test_quantity_times_unit_price() -> None:
    table = pa.table(
        {
            "customer": ["b", "a", "a", "b", "c"],
            "ts": pa.array([DAY] * 5, pa.date32()),
            "Quantity": pa.array([2, None, 3, -1, 4], pa.int32()),
            "UnitPrice": pa.array([1.25, 10.0, 0.5, 2.0, None]),
        }
    )
    result = check(table, amount="Quantity*UnitPrice", as_of=AS_OF, as_of_moment=AS_OF)
    assert column(result, "customer") == ["a", "b", "c"]
    assert column(result, "monetary") == [1.5, 0.5, 0.0]
    # a null amount is still a purchase; b's -2.0 is a return, netted but not a purchase
    assert column(result, "frequency") == [2, 1, 1]
    assert result.stats.null_amount == 2


def test_null_and_nan_amounts_are_not_summed_but_counted() -> None:
    table = pa.table(
        {
            "customer": [1, 1, 1, 2],
            "ts": pa.array([DAY] * 4, pa.date32()),
            "amount": pa.array([math.nan, None, 2.5, math.nan], from_pandas=False),
        }
    )
    result = check(table)
    assert column(result, "monetary") == [2.5, 0.0]
    assert column(result, "frequency") == [3, 1]
    assert result.stats.null_amount == 3


def test_negative_and_zero_amounts_are_netted() -> None:
    """As purchases, so that customer 2 (one return) is scored too (tests/core/test_returns.py
    has the other modes)."""
    table = orders({1: [(1, 10.0), (2, -3.5)], 2: [(1, -2.0)], 3: [(1, 0.0)], 4: [(1, -0.0)]})
    result = check(table, as_of=AS_OF, as_of_moment=AS_OF, returns="purchase")
    assert column(result, "monetary") == [6.5, -2.0, 0.0, 0.0]
    money = result.table.column("monetary").to_numpy()
    assert not np.signbit(money[money == 0]).any()  # no -0.0
    assert column(result, "M") == [4, 1, 2, 2]


@pytest.mark.parametrize(
    "amounts",
    [
        [-0.01],
        [-0.008165577990571786],
        [0.1, 0.2, 0.3],
        [2.0**52, 0.5, 2.0**-8 + 2.0**-60, -(2.0**-8)],  # one rounding, not two
        [1e15, -1e15, 0.1],
        [-(2.0**61), 2.0**-8, 0.75],
        [3.0, -0.1],
    ],
)
def test_sums_are_rounded_once(amounts: list[float]) -> None:
    """Amounts exact to 2**-60: the sum is the exact sum rounded once (math.fsum)."""
    table = pa.table(
        {
            "customer": [7] * len(amounts),
            "ts": pa.array([DAY] * len(amounts), pa.date32()),
            "amount": amounts,
        }
    )
    result = check(table, returns="purchase")  # (a single negative amount is a purchase)
    assert column(result, "monetary") == [math.fsum(amounts)]
    reverse = score(
        table.take(pa.array(range(len(amounts) - 1, -1, -1))), segments=None, returns="purchase"
    )
    assert column(reverse, "monetary") == [math.fsum(amounts)]


def test_decimal_amounts() -> None:
    import decimal

    values = [decimal.Decimal("10.25"), decimal.Decimal("-0.75"), None]
    table = pa.table(
        {
            "customer": ["x", "x", "y"],
            "ts": pa.array([DAY] * 3, pa.date32()),
            "amount": pa.array(values, pa.decimal128(10, 2)),
        }
    )
    result = check(table)
    assert column(result, "monetary") == [9.5, 0.0]


# --------------------------------------------------------------------------- rows and keys


def test_null_customer_and_timestamp_counted_once() -> None:
    t = dt.datetime(2024, 1, 10, 12)
    table = pa.table(
        {
            "customer": pa.array([1, None, None, 2, 2, 1], pa.int16()),
            "ts": pa.array([t, t, None, None, t, t - dt.timedelta(days=3)], pa.timestamp("ms")),
            "amount": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        }
    )
    result = check(table)
    dropped = {"null_customer": 2, "null_timestamp": 1, "after_as_of": 0, "returns": 0}
    assert result.stats.dropped == dropped
    assert result.stats.rows_used == 3
    assert column(result, "customer") == [1, 2]
    assert result.table.schema.field("customer").type == pa.int16()


def test_dictionary_with_a_null_entry() -> None:
    """An index pointing at a null dictionary value is a null customer."""
    keys = pa.DictionaryArray.from_arrays(
        pa.array([0, 1, 2, 1], pa.int8()), pa.array(["b", None, "a"])
    )
    table = pa.table(
        {"customer": keys, "ts": pa.array([DAY] * 4, pa.date32()), "amount": [1.0, 2.0, 3.0, 4.0]}
    )
    result = score(table, segments=None)
    assert column(result, "customer") == ["a", "b"]
    assert result.stats.dropped["null_customer"] == 2
    assert result.table.schema.field("customer").type == pa.string()


def test_keys_sort_by_value_and_code_point() -> None:
    big = [2**64 - 1, 2**63, 2**63 - 1, 0, 5]
    result = check(orders({k: [(1, 1.0)] for k in big}, key_type=pa.uint64()))
    assert column(result, "customer") == sorted(big)
    text = ["b", "", "a", "B", "é", "aa", "Z", "\U0001f600", "\uffff", "\x00"]
    result = check(orders({k: [(1, 1.0)] for k in text}, key_type=pa.string_view()))
    assert column(result, "customer") == sorted(text)
    assert result.table.schema.field("customer").type == pa.string()
    result = check(orders({k: [(1, 1.0)] for k in text}, key_type=pa.large_string()))
    assert result.table.schema.field("customer").type == pa.large_string()
    negative = [-(2**63), -1, 2**63 - 1, 0]
    result = check(orders({k: [(1, 1.0)] for k in negative}, key_type=pa.int64()))
    assert column(result, "customer") == sorted(negative)


def test_one_customer() -> None:
    result = check(orders({"only": [(3, 1.0), (1, 2.0)]}), as_of=AS_OF, as_of_moment=AS_OF)
    assert column(result, "rfm_cell") == ["111"]
    assert result.edges == {
        m: [-math.inf if m == "recency" else v] * 4
        for m, v in (("recency", 0), ("frequency", 2.0), ("monetary", 3.0))
    }


def test_empty_input_warns_and_keeps_every_column() -> None:
    table = orders({}).cast(
        pa.schema(
            [("customer", pa.string()), ("ts", pa.timestamp("ns", "UTC")), ("amount", pa.float64())]
        )
    )
    with pytest.warns(RFMWarning, match="no usable rows: 0 read"):
        result = score(table)
    assert result.table.num_rows == 0
    assert result.table.schema.field("first_purchase").type == pa.timestamp("ns", "UTC")
    assert result.stats.as_of is None
    assert all(math.isnan(e) for edges in result.edges.values() for e in edges)
    assert result.stats.empty_bins == {
        m: [1, 2, 3, 4, 5] for m in ("recency", "frequency", "monetary")
    }
    reader = pa.RecordBatchReader.from_batches(table.schema, [])
    with pytest.warns(RFMWarning):
        assert_same_result(score(reader), result)


def test_every_row_unusable_warns() -> None:
    table = orders({1: [(1, 1.0)], 2: [(2, 2.0)]})
    result = check(table, as_of=dt.date(2020, 1, 1), as_of_moment=dt.datetime(2020, 1, 1))
    assert result.stats.as_of == dt.datetime(2020, 1, 1)
    with pytest.warns(RFMWarning, match="2 read.* 2 after as_of"):
        score(table, as_of="2020-01-01")


# --------------------------------------------------------------------------- time and as_of


def test_as_of_row_exactly_at_as_of_is_used() -> None:
    t = dt.datetime(2024, 1, 10)
    table = pa.table(
        {
            "customer": [1, 1, 2, 3],
            "ts": pa.array(
                [
                    t,
                    t + dt.timedelta(days=2),
                    t - dt.timedelta(hours=1),
                    t + dt.timedelta(seconds=1),
                ],
                pa.timestamp("s"),
            ),
            "amount": [1.0, 100.0, 2.0, 3.0],
        }
    )
    result = check(table, as_of=t, as_of_moment=t)
    assert result.stats.dropped["after_as_of"] == 2
    assert column(result, "recency") == [0, 0]
    assert column(result, "monetary") == [1.0, 2.0]


def test_default_as_of_is_latest_plus_one_day_with_time_of_day() -> None:
    t = dt.datetime(2024, 1, 10, 13, 30)
    table = pa.table(
        {"customer": [1, 2], "ts": pa.array([t, t - dt.timedelta(hours=25)]), "amount": [1.0, 1.0]}
    )
    result = check(table)
    assert result.stats.as_of == dt.datetime(2024, 1, 11, 13, 30)
    assert column(result, "recency") == [1, 2]


@pytest.mark.parametrize(
    "as_of",
    [
        dt.datetime(2024, 3, 2, 8),
        "2024-03-02T08:00:00",
        "2024-03-02 08:00",
        np.datetime64("2024-03-02T08:00:00"),
        dt.datetime(2024, 3, 2, 8, tzinfo=zoneinfo.ZoneInfo("Europe/London")),
        "2024-03-02T09:00:00+01:00",
        dt.datetime(2024, 3, 2, 13, 30, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
    ],
)
def test_as_of_forms_on_a_zoned_column(as_of) -> None:
    """Naive as_of is wall clock in the column's zone; aware as_of is an instant."""
    ts = pa.array(
        [
            dt.datetime(2024, 3, 2, 7, 59, tzinfo=dt.UTC),
            dt.datetime(2024, 3, 2, 8, 0, 1, tzinfo=dt.UTC),
        ],
        pa.timestamp("us", "Europe/London"),
    )
    table = pa.table({"customer": [1, 2], "ts": ts, "amount": [1.0, 2.0]})
    result = score(table, as_of=as_of, segments=None)
    assert result.stats.dropped["after_as_of"] == 1
    assert result.stats.as_of == dt.datetime(2024, 3, 2, 8, tzinfo=dt.UTC)
    assert result.stats.as_of.utcoffset() == dt.timedelta(0)  # London is on GMT in March


def test_as_of_with_an_offset_on_a_naive_column_is_utc() -> None:
    ts = pa.array([dt.datetime(2024, 3, 2, 6), dt.datetime(2024, 3, 2, 8)], pa.timestamp("s"))
    table = pa.table({"customer": [1, 2], "ts": ts, "amount": [1.0, 2.0]})
    moment = dt.datetime(2024, 3, 2, 9, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    result = check(table, as_of=moment.isoformat(), as_of_moment=moment)
    assert result.stats.as_of == dt.datetime(2024, 3, 2, 7)
    assert result.stats.dropped["after_as_of"] == 1


def test_date_as_of_is_midnight() -> None:
    table = orders({1: [(0, 1.0)], 2: [(1, 1.0)]})
    result = check(table, as_of=AS_OF.date(), as_of_moment=AS_OF)
    assert column(result, "recency") == [0, 1]


def test_as_of_between_ticks_is_rounded_down() -> None:
    """A date32 column counts whole days: 13:00 on June 30 scores like June 30."""
    table = orders({1: [(0, 1.0)], 2: [(1, 1.0)], 3: [(-1, 1.0)]})
    noon = AS_OF + dt.timedelta(hours=13)
    result = check(table, as_of=noon, as_of_moment=noon)
    assert column(result, "recency") == [0, 1]
    assert result.stats.dropped["after_as_of"] == 1
    assert result.stats.as_of == AS_OF


def test_frequency_days_in_the_column_time_zone() -> None:
    # 23:30 and 00:30 in London summer time: two local days, one UTC day
    ts = pa.array(
        [
            dt.datetime(2024, 7, 1, 22, 30, tzinfo=dt.UTC),
            dt.datetime(2024, 7, 1, 23, 30, tzinfo=dt.UTC),
            dt.datetime(2024, 7, 1, 23, 45, tzinfo=dt.UTC),
        ],
        pa.timestamp("ns", "Europe/London"),
    )
    table = pa.table({"customer": [1, 1, 1], "ts": ts, "amount": [1.0, 2.0, 4.0]})
    result = check(table, frequency="days", monetary="mean")
    assert column(result, "frequency") == [2]
    assert column(result, "monetary") == [3.5]
    naive = table.set_column(1, "ts", ts.cast(pa.timestamp("ns")))
    assert column(check(naive, frequency="days"), "frequency") == [1]


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_time_before_1970(unit: str) -> None:
    """Negative ticks round down (towards the past), not towards zero."""
    ts = pa.array([dt.datetime(1969, 12, 31, 23), dt.datetime(1969, 12, 30, 1)], pa.timestamp(unit))
    table = pa.table({"customer": [1, 2], "ts": ts, "amount": [1.0, 1.0]})
    result = check(
        table,
        frequency="days",
        as_of="1970-01-01T00:30:00",
        as_of_moment=dt.datetime(1970, 1, 1, 0, 30),
    )
    assert column(result, "recency") == [0, 1]


def test_ns_as_of_is_reported_to_the_microsecond() -> None:
    """stats.as_of is a datetime, which holds microseconds: ns are rounded down there only."""
    ticks = pa.array([1_700_000_000_123_456_789], pa.int64()).view(pa.timestamp("ns"))
    table = pa.table({"customer": [1], "ts": ticks, "amount": [1.0]})
    result = check(table)
    assert result.stats.as_of.microsecond == 123_456
    assert column(result, "recency") == [1]


def test_orders_spread_over_rows_and_batches() -> None:
    table = pa.table(
        {
            "customer": [1, 1, 1, 1, 1, 2, 2, 1],
            "ts": pa.array([DAY] * 8, pa.date32()),
            "amount": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
            "order": pa.array(["A", "A", "B", None, None, "A", "A", "B"]).dictionary_encode(),
        }
    )
    result = check(table, order="order")
    assert column(result, "frequency") == [4, 1]
    for batch_rows in (1, 2, 3):
        assert_same_result(
            score(table, order="order", segments=None, batch_rows=batch_rows), result
        )
    ints = table.set_column(3, "order", pa.array([7, 7, 8, None, None, 7, 7, 8], pa.int8()))
    assert column(check(ints, order="order"), "frequency") == [4, 1]
    int_dictionary = ints.set_column(3, "order", ints.column("order").dictionary_encode())
    assert column(check(int_dictionary, order="order"), "frequency") == [4, 1]


# --------------------------------------------------------------------------- hash-table growth


@pytest.mark.slow
def test_growth_many_integer_customers_and_orders() -> None:
    """100k customers and 150k distinct orders: every hash table doubles many times, in the
    middle of batches."""
    rng = np.random.default_rng(7)
    n = 200_000
    keys = rng.permutation(np.arange(-50_000, 50_000) * 7919).repeat(2)
    ticks = rng.integers(0, 400 * 86_400, n) * 1_000_000
    table = pa.table(
        {
            CUSTOMER: pa.array(keys, pa.int64()),
            "ts": pa.array(ticks, pa.int64()).view(pa.timestamp("us")),
            "amount": pa.array(rng.integers(-400, 4000, n) / 4),
            "order": pa.array(rng.integers(0, 150_000, n), pa.int64()),
        }
    )
    case = Case(
        table,
        {
            "customer": CUSTOMER,
            "timestamp": "ts",
            "amount": "amount",
            "order": "order",
            "batch_rows": 65_537,
            "segments": None,
        },
    )
    result = assert_matches_reference(case)
    # customers whose rows are all returns are left out, and counted
    assert result.stats.customers + result.stats.customers_only_returns == 100_000
    assert result.stats.customers_only_returns > 0
    assert max(column(result, "frequency")) == 2


@pytest.mark.slow
def test_growth_long_unicode_customer_names_and_text_orders() -> None:
    """Long multi-byte keys make the string arena grow, one key beyond any doubling."""
    rng = np.random.default_rng(11)
    names = [f"клиент-{i:06d}-{'é' * (i % 40)}-顧客-\U0001f600" for i in range(60_000)]
    names[123] = "ß" * 300_000  # 600 kB: more than twice the initial 64 kB arena
    picks = np.concatenate([[123], rng.integers(0, len(names), 120_000)])  # the big key first
    table = pa.table(
        {
            CUSTOMER: pa.array([names[p] for p in picks], pa.large_string()),
            "ts": pa.array(rng.integers(0, 500, len(picks)), pa.int32()).view(pa.date32()),
            "amount": pa.array(rng.integers(-400, 4000, len(picks)) / 4),
            "order": pa.array([f"ordre-№{o}" for o in rng.integers(0, 80_000, len(picks))]),
        }
    )
    case = Case(
        table,
        {
            "customer": CUSTOMER,
            "timestamp": "ts",
            "amount": "amount",
            "order": "order",
            "batch_rows": 40_000,
            "segments": None,
            "method": "split",
        },
    )
    result = assert_matches_reference(case)
    stats = result.stats
    assert stats.customers + stats.customers_only_returns == len(set(picks.tolist()))


def test_numpy_layer_refuses_nan_metrics():
    from rfm_fast.core import arrays

    with pytest.raises(rfm_fast.RFMError, match="monetary has NaN at position 1"):
        arrays.score_metrics(np.array([1, 2, 3]), np.array([1, 2, 3]), np.array([1.0, np.nan, 2]))


# --------------------------------------------------------------------------- time at the edges
def _at(values: list, type_: pa.DataType) -> pa.Table:
    return pa.table(
        {
            "customer": list(range(len(values))),
            "ts": pa.array(values, type_),
            "amount": [1.0] * len(values),
        }
    )


@pytest.mark.parametrize(
    "values, type_",
    [
        ([dt.datetime(9999, 12, 31), dt.datetime(2020, 1, 1)], pa.timestamp("us")),
        ([dt.date(9999, 12, 31)], pa.date32()),
        ([np.datetime64("2262-04-11T12:00", "ns")], pa.timestamp("ns")),
    ],
)
def test_a_latest_timestamp_without_room_for_the_default_as_of(values, type_) -> None:
    with pytest.raises(RFMError, match=r"leaves no room for the default as_of.*placeholder"):
        score(_at(values, type_))
    with pytest.raises(RFMError, match="leaves no room"):
        rfm_fast.CustomerState.of(_at(values, type_), **BASE)


def test_a_placeholder_date_scores_with_an_as_of() -> None:
    table = _at([dt.datetime(9999, 12, 31), dt.datetime(2020, 1, 1)], pa.timestamp("us"))
    result = score(table, as_of="9999-12-31T12:00", segments=None)
    assert result.stats.as_of == dt.datetime(9999, 12, 31, 12)
    assert column(result, "recency")[0] == 0


@pytest.mark.parametrize("as_of", ["0001-01-01", np.datetime64("0001-01-01"), "2300-01-01"])
def test_an_as_of_that_the_column_cannot_hold(as_of) -> None:
    table = _at([np.datetime64("2020-01-01", "ns")], pa.timestamp("ns"))
    with pytest.raises(RFMError, match=r"outside what a timestamp\[ns\] column holds \(1677-09-21"):
        score(table, as_of=as_of)


@pytest.mark.parametrize("as_of", [np.datetime64("NaT"), np.datetime64("NaT", "ns")])
def test_as_of_nat_is_an_error(as_of) -> None:
    table = _at([dt.datetime(2020, 1, 1)], pa.timestamp("us"))
    with pytest.raises(RFMError, match="as_of is NaT"):
        score(table, as_of=as_of)
    with pytest.raises(RFMError, match="as_of is NaT"):
        arrays.aggregate(
            np.array([1]), np.array(["2024-01-01"], "datetime64[ns]"), np.ones(1), as_of=as_of
        )


def test_recency_that_would_not_fit_in_int64_is_an_error() -> None:
    earliest = -(2**63) + 5  # 1677-09-21 in ns
    table = _at([earliest, 2**62], pa.timestamp("ns"))
    with pytest.raises(RFMError, match=r"timestamps run from 1677-09-21.*more than"):
        score(table, as_of=np.datetime64(2**62 + 10, "ns"))
    fits = _at([-(2**62), 0], pa.timestamp("ns"))  # 146 years: within int64 nanoseconds
    assert column(score(fits, as_of=np.datetime64(10, "ns"), segments=None), "tenure")[0] > 0
