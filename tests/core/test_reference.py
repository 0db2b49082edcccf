"""Hand-computed checks of the pandas reference implementation (rfm_fast.reference)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rfm_fast.core.result import RESULT_COLUMNS
from rfm_fast.reference import DEFAULT_RULES, score

AS_OF = pd.Timestamp("2024-06-30")
COLUMNS = ["customer", *RESULT_COLUMNS]


def orders(spec: dict[object, list[tuple[int, float | None]]]) -> pd.DataFrame:
    """One row per (days before AS_OF, amount) pair of each customer."""
    rows = [
        (key, AS_OF - pd.Timedelta(days=days), amount)
        for key, purchases in spec.items()
        for days, amount in purchases
    ]
    return pd.DataFrame(rows, columns=["customer", "ts", "amount"])


def run(df: pd.DataFrame, **kwargs: object) -> tuple[pd.DataFrame, dict, dict]:
    kwargs.setdefault("customer", "customer")
    kwargs.setdefault("timestamp", "ts")
    kwargs.setdefault("amount", "amount")
    return score(df, **kwargs)


def col(table: pd.DataFrame, name: str) -> list:
    return table[name].tolist()


# --------------------------------------------------------------------------- scores


def test_worked_example_of_semantics() -> None:
    freqs = [1, 1, 1, 1, 1, 1, 2, 2, 3, 7]
    df = orders({key: [(5, 1.0)] * f for key, f in enumerate(freqs)})
    table, edges, stats = run(df, as_of=AS_OF)
    assert col(table, "frequency") == freqs
    assert col(table, "F") == [1, 1, 1, 1, 1, 1, 4, 4, 5, 5]
    assert stats["empty_bins"]["frequency"] == [2, 3]
    assert edges["frequency"] == [1.0, 1.0, 1.0, 2.0]
    # monetary is frequency * 1.0 here, so it scores the same way
    assert col(table, "M") == col(table, "F")
    # all recencies tie: nobody is worse than anybody, everybody gets R = 1
    assert col(table, "R") == [1] * 10
    assert stats["empty_bins"]["recency"] == [2, 3, 4, 5]


def test_worked_example_edges_round_trip_as_thresholds() -> None:
    freqs = [1, 1, 1, 1, 1, 1, 2, 2, 3, 7]
    df = orders({key: [(5, 1.0)] * f for key, f in enumerate(freqs)})
    table, edges, _ = run(df, as_of=AS_OF)
    again, again_edges, _ = run(df, as_of=AS_OF, thresholds={"frequency": edges["frequency"]})
    assert col(again, "F") == col(table, "F")
    assert again_edges["frequency"] == edges["frequency"]


def test_recency_less_is_better_and_ties_share_the_score() -> None:
    # recencies 1, 1, 3, 10 -> customers strictly *larger* (worse): 2, 2, 1, 0
    df = orders({"a": [(1, 1.0)], "b": [(1, 1.0)], "c": [(3, 1.0)], "d": [(10, 1.0)]})
    table, edges, stats = run(df, as_of=AS_OF, bins=4, rules=None)
    assert col(table, "recency") == [1, 1, 3, 10]
    assert col(table, "R") == [3, 3, 2, 1]  # 1 + 4 * less // 4
    assert stats["empty_bins"]["recency"] == [4]
    # edge j = largest recency with R >= bins + 1 - j; nobody has R = 4, so the edge is -inf
    # (docs/semantics.md, "Edges returned")
    assert edges["recency"][0] == -math.inf
    assert edges["recency"][1:] == [1.0, 3.0]


def test_recency_distinct_values() -> None:
    df = orders({k: [(days, 1.0)] for k, days in enumerate([4, 0, 2, 3, 1])})
    table, edges, _ = run(df, as_of=AS_OF)
    assert col(table, "recency") == [4, 0, 2, 3, 1]
    assert col(table, "R") == [1, 5, 3, 2, 4]
    assert edges["recency"] == [0.0, 1.0, 2.0, 3.0]


def test_exact_with_fewer_customers_than_bins() -> None:
    df = orders({1: [(1, 5.0)], 2: [(2, 1.0), (3, 1.0)]})
    table, edges, stats = run(df, as_of=AS_OF)
    # less = 0 or 1 of N = 2: scores 1 and 1 + 5 // 2 = 3
    assert col(table, "F") == [1, 3]
    assert col(table, "M") == [3, 1]
    assert col(table, "R") == [3, 1]
    assert edges["frequency"] == [1.0, 1.0, 2.0, 2.0]
    assert stats["empty_bins"]["frequency"] == [2, 4, 5]


def test_split_breaks_ties_by_customer_key() -> None:
    # frequencies a=2, b=1, c=2, d=1, e=3; worst to best: b, d, a, c, e
    spec = {"c": 2, "e": 3, "a": 2, "d": 1, "b": 1}
    df = orders({key: [(1, 1.0)] * f for key, f in spec.items()})
    table, edges, _ = run(df, as_of=AS_OF, bins=2, method="split", rules=None)
    assert col(table, "customer") == ["a", "b", "c", "d", "e"]
    # N = 5, bins = 2: groups of 3 (worst) and 2
    assert col(table, "F") == [1, 1, 2, 1, 2]  # a and c tie on 2 but split
    assert edges["frequency"] == [2.0]


def test_split_recency_ties_by_key() -> None:
    # recencies 3, 3, 3, 0; worst first = largest recency first, then key ascending
    df = orders({4: [(0, 1.0)], 3: [(3, 1.0)], 1: [(3, 1.0)], 2: [(3, 1.0)]})
    table, edges, _ = run(df, as_of=AS_OF, bins=2, method="split", rules=None)
    assert col(table, "customer") == [1, 2, 3, 4]
    assert col(table, "R") == [1, 1, 2, 2]
    assert edges["recency"] == [3.0]


def test_split_group_sizes() -> None:
    # 7 tied customers, bins 3: sizes 3, 2, 2 in key order
    df = orders({key: [(1, 1.0)] for key in [16, 10, 13, 11, 15, 12, 14]})
    table, _, stats = run(df, as_of=AS_OF, bins=3, method="split", rules=None)
    assert col(table, "customer") == list(range(10, 17))
    assert col(table, "F") == [1, 1, 1, 2, 2, 3, 3]
    assert col(table, "R") == [1, 1, 1, 2, 2, 3, 3]
    assert stats["empty_bins"] == {"recency": [], "frequency": [], "monetary": []}


def test_split_fewer_customers_than_bins() -> None:
    df = orders({1: [(1, 1.0)], 2: [(1, 2.0)]})
    table, edges, stats = run(df, as_of=AS_OF, method="split")
    assert col(table, "M") == [1, 2]
    assert edges["monetary"] == [1.0, 2.0, 2.0, 2.0]
    assert stats["empty_bins"]["monetary"] == [3, 4, 5]


def test_thresholds() -> None:
    # (recency, frequency) per customer
    spec = {1: (0, 1), 2: (30, 2), 3: (31, 3), 4: (90, 10), 5: (400, 11)}
    df = orders({k: [(r, 1.0)] * f for k, (r, f) in spec.items()})
    thresholds = {"recency": [30, 90, 180, 365], "frequency": [1, 2, 5, 10]}
    table, edges, _ = run(df, as_of=AS_OF, thresholds=thresholds)
    assert col(table, "R") == [5, 5, 4, 4, 1]  # recency <= 30 is best
    assert col(table, "F") == [1, 2, 3, 4, 5]  # bins closed on the right
    assert edges["recency"] == [30.0, 90.0, 180.0, 365.0]
    assert edges["frequency"] == [1.0, 2.0, 5.0, 10.0]
    assert all(isinstance(e, float) for e in edges["recency"])
    # monetary (not given) is scored by `method`: 1, 2, 3, 10, 11 distinct -> 1..5
    assert col(table, "M") == [1, 2, 3, 4, 5]


def test_thresholds_must_match_bins_and_be_increasing() -> None:
    df = orders({1: [(1, 1.0)]})
    with pytest.raises(ValueError):
        run(df, thresholds={"recency": [30, 90, 180]})
    with pytest.raises(ValueError):
        run(df, thresholds={"frequency": [5, 4, 3, 2]})
    with pytest.raises(ValueError):
        run(df, thresholds={"tenure": [1, 2, 3, 4]})


# --------------------------------------------------------------------------- rows and metrics


def test_null_customer_and_timestamp_counting() -> None:
    t = pd.Timestamp("2024-01-10 12:00")
    df = pd.DataFrame(
        {
            "customer": [1.0, np.nan, np.nan, 2.0, 2.0, 1.0],
            "ts": [t, t, pd.NaT, pd.NaT, t, t - pd.Timedelta(days=3)],
            "amount": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        }
    )
    table, _, stats = run(df)
    assert stats["rows_read"] == 6
    assert stats["rows_used"] == 3
    # the row with both null counts once, as null_customer
    assert stats["dropped"] == {
        "null_customer": 2,
        "null_timestamp": 1,
        "after_as_of": 0,
        "returns": 0,
    }
    assert table["customer"].dtype == np.int64
    assert col(table, "customer") == [1, 2]
    assert col(table, "monetary") == [7.0, 5.0]
    assert col(table, "frequency") == [2, 1]
    assert stats["customers"] == 2


def test_nullable_integer_customer() -> None:
    t = pd.Timestamp("2024-01-10")
    df = pd.DataFrame(
        {
            "customer": pd.array([3, None, 1], dtype="Int64"),
            "ts": [t, t, t],
            "amount": [1.0, 1.0, 1.0],
        }
    )
    table, _, stats = run(df)
    assert col(table, "customer") == [1, 3]
    assert table["customer"].dtype == np.int64
    assert stats["dropped"]["null_customer"] == 1


def test_default_as_of_keeps_time_of_day() -> None:
    t = pd.Timestamp("2024-01-10 13:30")
    df = pd.DataFrame(
        {"customer": [1, 2], "ts": [t, t - pd.Timedelta(hours=25)], "amount": [1.0, 1.0]}
    )
    table, _, stats = run(df)
    assert stats["as_of"] == pd.Timestamp("2024-01-11 13:30")
    assert col(table, "recency") == [1, 2]  # 24 h and 49 h, rounded down
    assert col(table, "tenure") == [1, 2]


def test_after_as_of_rows_are_dropped_and_as_of_itself_is_used() -> None:
    as_of = pd.Timestamp("2024-01-10")
    df = pd.DataFrame(
        {
            "customer": [1, 1, 2, 3],
            "ts": pd.to_datetime(
                ["2024-01-10 00:00", "2024-01-12 00:00", "2024-01-09 23:00", "2024-02-01 00:00"]
            ),
            "amount": [1.0, 100.0, 2.0, 3.0],
        }
    )
    table, _, stats = run(df, as_of=as_of)
    assert stats["dropped"]["after_as_of"] == 2
    assert stats["rows_used"] == 2
    assert stats["as_of"] == as_of
    assert col(table, "customer") == [1, 2]
    assert col(table, "recency") == [0, 0]
    assert col(table, "monetary") == [1.0, 2.0]


def test_distinct_orders_and_null_order_ids() -> None:
    t = pd.Timestamp("2024-01-10")
    df = pd.DataFrame(
        {
            "customer": [1, 1, 1, 1, 1, 2, 2],
            "ts": [t] * 7,
            "amount": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
            "order": ["A", "A", "B", None, None, "A", "A"],
        }
    )
    table, _, _ = run(df, order="order")
    # customer 1: orders A, B plus two null-order rows; customer 2: one order A
    assert col(table, "frequency") == [4, 1]
    assert col(table, "monetary") == [15.0, 13.0]
    mean, _, _ = run(df, order="order", monetary="mean")
    assert col(mean, "monetary") == [3.75, 13.0]
    rows, _, _ = run(df)
    assert col(rows, "frequency") == [5, 2]


def test_frequency_days() -> None:
    df = pd.DataFrame(
        {
            "customer": [1, 1, 1, 2],
            "ts": pd.to_datetime(
                ["2024-01-01 08:00", "2024-01-01 23:59", "2024-01-02 00:01", "2024-01-03 00:00"]
            ),
            "amount": [1.0, 2.0, 3.0, 4.0],
        }
    )
    table, _, _ = run(df, frequency="days")
    assert col(table, "frequency") == [2, 1]
    mean, _, _ = run(df, frequency="days", monetary="mean")
    assert col(mean, "monetary") == [3.0, 4.0]


def test_negative_amounts_are_netted() -> None:
    df = orders({1: [(1, 10.0), (2, -3.5)], 2: [(1, -2.0)], 3: [(1, 0.0)]})
    table, _, _ = run(df, as_of=AS_OF, rules=None, returns="purchase")
    assert col(table, "monetary") == [6.5, -2.0, 0.0]
    assert col(table, "M") == [4, 1, 2]
    net, _, stats = run(df, as_of=AS_OF, rules=None)  # customer 2 only returned something
    assert col(net, "monetary") == [6.5, 0.0]
    assert col(net, "frequency") == [1, 1]
    assert (stats["return_rows"], stats["customers_only_returns"]) == (2, 1)


def test_all_null_amounts_give_zero() -> None:
    df = orders({1: [(1, None), (2, np.nan)], 2: [(1, 4.0), (2, None)]})
    table, _, stats = run(df, as_of=AS_OF)
    assert col(table, "monetary") == [0.0, 4.0]
    assert col(table, "frequency") == [2, 2]  # null amounts still count as purchases
    assert stats["null_amount"] == 3


def test_amount_product_of_two_columns() -> None:
    t = pd.Timestamp("2024-01-10")
    df = pd.DataFrame(
        {
            "customer": [1, 1, 2],
            "ts": [t, t, t],
            "Quantity": pd.array([2, None, 3], dtype="Int64"),
            "UnitPrice": [1.5, 10.0, -1.0],
        }
    )
    table, _, stats = run(df, amount="Quantity*UnitPrice", returns="purchase")
    assert col(table, "monetary") == [3.0, -3.0]
    assert stats["null_amount"] == 1


def test_infinite_amount_raises() -> None:
    df = orders({1: [(1, 1.0), (2, math.inf)]})
    with pytest.raises(ValueError, match="amount"):
        run(df, as_of=AS_OF)


def test_sum_does_not_depend_on_row_order() -> None:
    # naive left-to-right: 0.1 + 0.2 + 0.3 != 0.3 + 0.2 + 0.1
    df = orders({1: [(1, 0.1), (1, 0.2), (1, 0.3)], 2: [(1, 0.3), (1, 0.2), (1, 0.1)]})
    table, _, _ = run(df, as_of=AS_OF)
    assert col(table, "monetary") == [0.6, 0.6]
    assert col(table, "M") == [1, 1]


def test_tz_aware_timestamps() -> None:
    # 23:30 and 00:30 New York time: two local days, but one UTC day (04:30Z, 05:30Z)
    ts = pd.to_datetime(["2024-03-01 23:30", "2024-03-02 00:30"]).tz_localize("America/New_York")
    df = pd.DataFrame({"customer": [1, 1], "ts": ts, "amount": [1.0, 2.0]})
    table, _, stats = run(df, frequency="days")
    assert col(table, "frequency") == [2]
    assert stats["as_of"] == pd.Timestamp("2024-03-03 00:30", tz="America/New_York")
    assert col(table, "recency") == [1]  # exactly 24 h
    assert col(table, "tenure") == [1]  # 25 h
    assert table["first_purchase"].dtype == df["ts"].dtype
    assert table["first_purchase"][0] == ts[0]
    # as_of compared as an instant: 05:30Z is 00:30 in New York
    as_of = pd.Timestamp("2024-03-02 05:29", tz="UTC").tz_convert("America/New_York")
    _, _, stats = run(df, as_of=as_of)
    assert stats["dropped"]["after_as_of"] == 1


def test_date_objects_are_midnight() -> None:
    df = pd.DataFrame(
        {
            "customer": ["x", "x", "y", "y"],
            "ts": [dt.date(2024, 1, 1), dt.date(2024, 1, 5), None, dt.date(2024, 1, 3)],
            "amount": [1.0, 2.0, 3.0, 4.0],
        }
    )
    table, _, stats = run(df)
    assert stats["dropped"]["null_timestamp"] == 1
    assert stats["as_of"] == pd.Timestamp("2024-01-06")
    assert pd.api.types.is_datetime64_dtype(table["last_purchase"].dtype)
    assert col(table, "last_purchase") == [pd.Timestamp("2024-01-05"), pd.Timestamp("2024-01-03")]
    assert col(table, "recency") == [1, 3]
    assert col(table, "tenure") == [5, 3]


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_timestamp_unit_is_kept(unit: str) -> None:
    df = orders({1: [(1, 1.0)], 2: [(2, 1.0)]})
    df["ts"] = df["ts"].astype(f"datetime64[{unit}]")
    table, _, _ = run(df)
    assert table["first_purchase"].dtype == np.dtype(f"datetime64[{unit}]")
    assert table["last_purchase"].dtype == np.dtype(f"datetime64[{unit}]")
    assert col(table, "recency") == [1, 2]


def test_string_keys_sort_by_code_point() -> None:
    keys = ["b", "a", "B", "é", "aa", "Z"]
    df = orders({k: [(1, 1.0)] for k in keys})
    table, _, _ = run(df, as_of=AS_OF)
    assert col(table, "customer") == ["B", "Z", "a", "aa", "b", "é"]
    assert pd.api.types.is_string_dtype(table["customer"].dtype)


def test_integer_keys_sort_numerically() -> None:
    df = orders({10: [(1, 1.0)], 9: [(1, 1.0)], 100: [(1, 1.0)], -1: [(1, 1.0)]})
    table, _, _ = run(df, as_of=AS_OF)
    assert col(table, "customer") == [-1, 9, 10, 100]


# --------------------------------------------------------------------------- output


def test_output_columns_and_types() -> None:
    df = orders({7: [(0, 9.0), (1, 9.0)], 3: [(9, 1.0)]})
    df = df.rename(columns={"customer": "CustomerID"})
    table, _, _ = run(df, customer="CustomerID", as_of=AS_OF)
    assert list(table.columns) == ["CustomerID", *COLUMNS[1:]]
    assert isinstance(table.index, pd.RangeIndex)
    for name in ("recency", "frequency", "tenure", "rfm_score"):
        assert table[name].dtype == np.int64
    assert table["monetary"].dtype == np.float64
    for name in ("R", "F", "M"):
        assert table[name].dtype == np.int8
    assert col(table, "CustomerID") == [3, 7]
    assert col(table, "rfm_cell") == ["111", "333"]
    assert col(table, "rfm_score") == [3, 9]
    assert col(table, "segment") == ["Hibernating", "Need Attention"]


def test_segments() -> None:
    # recency 0..4 -> R 5..1; frequency 5..1 -> F 5..1 (customer 0 is 55x)
    df = orders({k: [(k, 1.0)] * (5 - k) for k in range(5)})
    table, _, _ = run(df, as_of=AS_OF)
    assert col(table, "R") == [5, 4, 3, 2, 1]
    assert col(table, "F") == [5, 4, 3, 2, 1]
    assert col(table, "segment") == [
        "Champions",
        "Loyal Customers",
        "Need Attention",
        "Hibernating",
        "Hibernating",
    ]
    plain, _, _ = run(df, as_of=AS_OF, rules=None)
    assert col(plain, "segment") == ["Other"] * 5
    rules = [("Top", {"M": (5, 5)}), ("Recent", {"R": (4, 5)}), ("Also top", {"M": (4, 5)})]
    custom, _, _ = run(df, as_of=AS_OF, rules=rules)
    assert col(custom, "segment") == ["Top", "Recent", "Other", "Other", "Other"]


def test_default_rules_cover_every_cell_once() -> None:
    for r in range(1, 6):
        for f in range(1, 6):
            matches = [
                name
                for name, ranges in DEFAULT_RULES
                if ranges["R"][0] <= r <= ranges["R"][1] and ranges["F"][0] <= f <= ranges["F"][1]
            ]
            assert len(matches) == 1, (r, f, matches)


def test_default_rules_need_five_bins() -> None:
    df = orders({1: [(1, 1.0)]})
    with pytest.raises(ValueError):
        run(df, bins=3)
    table, _, _ = run(df, bins=3, rules=None)
    assert col(table, "segment") == ["Other"]


def test_empty_input() -> None:
    df = orders({}).astype({"customer": "int64", "ts": "datetime64[ns]", "amount": "float64"})
    table, edges, stats = run(df)
    assert list(table.columns) == COLUMNS
    assert len(table) == 0
    assert table["customer"].dtype == np.int64
    assert table["first_purchase"].dtype == np.dtype("datetime64[ns]")
    assert table["R"].dtype == np.int8
    assert all(len(e) == 4 and all(math.isnan(x) for x in e) for e in edges.values())
    assert stats["customers"] == 0
    assert stats["as_of"] is None
    assert stats["rows_read"] == 0
    assert stats["rows_used"] == 0


def test_no_usable_rows() -> None:
    t = pd.Timestamp("2024-01-10")
    df = pd.DataFrame({"customer": [None, "a"], "ts": [t, pd.NaT], "amount": [1.0, 2.0]})
    table, edges, stats = run(df)
    assert list(table.columns) == COLUMNS
    assert len(table) == 0
    assert pd.api.types.is_string_dtype(table["customer"].dtype)
    assert stats["dropped"] == {
        "null_customer": 1,
        "null_timestamp": 1,
        "after_as_of": 0,
        "returns": 0,
    }
    assert stats["as_of"] is None
    assert stats["empty_bins"]["frequency"] == [1, 2, 3, 4, 5]
    assert math.isnan(edges["monetary"][0])


@pytest.mark.parametrize(
    "kwargs",
    [{"bins": 1}, {"bins": 10}, {"method": "qcut"}, {"frequency": "x"}, {"monetary": "median"}],
)
def test_bad_options(kwargs: dict) -> None:
    df = orders({1: [(1, 1.0)]})
    with pytest.raises(ValueError):
        run(df, rules=None, **kwargs)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 6), st.integers(0, 30), st.integers(-5, 20)),
        min_size=1,
        max_size=40,
    ),
    st.integers(2, 9),
)
def test_exact_edges_reproduce_frequency_and_monetary_scores(
    rows: list[tuple[int, int, int]], bins: int
) -> None:
    df = pd.DataFrame(rows, columns=["customer", "days", "amount"])
    df["ts"] = AS_OF - pd.to_timedelta(df["days"], unit="D")
    df["amount"] = df["amount"].astype("float64")
    options = dict(as_of=AS_OF, bins=bins, rules=None, returns="purchase")
    table, edges, _ = run(df, **options)
    thresholds = {"frequency": edges["frequency"], "monetary": edges["monetary"]}
    again, _, _ = run(df, **options, thresholds=thresholds)
    assert col(again, "F") == col(table, "F")
    assert col(again, "M") == col(table, "M")
    # shuffling the rows changes nothing
    shuffled, _, _ = run(df.iloc[::-1], **options)
    pd.testing.assert_frame_equal(shuffled, table)
