"""Returns (rows with a negative amount): ``returns="net"`` (the default), ``"purchase"`` and
``"drop"``, by hand on small tables and on the Online Retail slice; the property tests of
tests/core/test_engine_vs_reference.py, test_invariance.py and test_state.py draw the mode too."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
from helpers import RETAIL_OPTIONS, RETAIL_SLICE, Case, assert_matches_reference

import rfm_fast
from rfm_fast import CustomerState, RFMError, RFMWarning, arrays
from rfm_fast.clv import summary

COLUMNS = {"customer": "customer", "timestamp": "day", "amount": "amount"}


def day(d: int) -> dt.date:
    return dt.date(2024, 3, d)


# customer 1: bought on the 1st, returned part on the 9th (after the purchase)
# customer 2: only a return (of something bought before the data starts)
# customer 3: an order of two lines, one returned in the same order, and a later cancellation
ORDERS = pa.table(
    {
        "customer": [1, 1, 2, 3, 3, 3],
        "day": pa.array([day(1), day(9), day(4), day(2), day(2), day(20)], pa.date32()),
        "amount": [50.0, -20.0, -15.0, 30.0, -5.0, -30.0],
        "order": [10, 11, 20, 30, 30, 31],
    }
)


def scored(table: pa.Table = ORDERS, **options) -> dict:
    """Run the engine and the reference (they must agree); the engine's rows by customer."""
    case = Case(table, {**COLUMNS, "segments": None, **options})
    result = assert_matches_reference(case)
    return {row["customer"]: row for row in result.table.to_pylist()}, result.stats


@pytest.mark.parametrize("order", [None, "order"])
def test_net_returns_count_in_monetary_but_are_not_purchases(order) -> None:
    rows, stats = scored(order=order)
    assert sorted(rows) == [1, 3]  # customer 2 has no purchase
    assert rows[1]["monetary"] == 30.0 and rows[1]["frequency"] == 1
    assert rows[1]["last_purchase"] == day(1)  # the return on the 9th is not a purchase
    # Without orders the returned line is a row that is not counted; with orders, order 30
    # has a bought line, so it is a purchase, and order 31 (cancelled) is not.
    assert rows[3]["frequency"] == 1
    assert rows[3]["monetary"] == -5.0
    assert rows[3]["last_purchase"] == day(2)
    assert rows[3]["recency"] == 19  # as_of is the 21st: the cancellation on the 20th counts
    assert stats.returns == "net"
    assert stats.return_rows == 4
    assert stats.customers_only_returns == 1
    assert stats.dropped["returns"] == 0
    assert stats.rows_used == 6


def test_returns_as_purchases_is_the_old_behaviour() -> None:
    rows, stats = scored(returns="purchase")
    assert sorted(rows) == [1, 2, 3]
    assert rows[1]["frequency"] == 2 and rows[1]["last_purchase"] == day(9)
    assert rows[2]["monetary"] == -15.0
    assert rows[3]["frequency"] == 3
    assert stats.return_rows == 4 and stats.customers_only_returns == 0


def test_dropped_returns_are_left_out_and_counted() -> None:
    rows, stats = scored(returns="drop", order="order")
    assert sorted(rows) == [1, 3]
    assert rows[1]["monetary"] == 50.0
    assert rows[3]["monetary"] == 30.0 and rows[3]["frequency"] == 1
    assert stats.dropped["returns"] == 4 and stats.return_rows == 4
    assert stats.rows_used == 2
    # the latest timestamp counts the dropped returns too (the 20th): the mode does not move it
    assert stats.as_of == dt.datetime(2024, 3, 21)
    assert stats.as_of == scored(returns="net", order="order")[1].as_of


def test_frequency_in_days_counts_purchase_days_only() -> None:
    table = ORDERS.set_column(3, "order", pa.array([1] * 6))
    rows, _ = scored(table, frequency="days")
    assert rows[1]["frequency"] == 1 and rows[3]["frequency"] == 1


def test_a_null_or_nan_amount_is_a_purchase_and_zero_is_not_a_return() -> None:
    table = pa.table(
        {
            "customer": [1, 2, 3],
            "day": pa.array([day(1), day(2), day(3)], pa.date32()),
            "amount": pa.array([None, float("nan"), 0.0], pa.float64(), from_pandas=False),
        }
    )
    rows, stats = scored(table)
    assert [rows[c]["frequency"] for c in (1, 2, 3)] == [1, 1, 1]
    assert stats.return_rows == 0


def test_only_returns_gives_the_empty_result_with_a_warning() -> None:
    table = ORDERS.filter(pa.compute.less(ORDERS["amount"], 0))
    with pytest.warns(RFMWarning, match=r"4 returns \(3 customers with only returns\)"):
        result = rfm_fast.score(table, **COLUMNS, segments=None)
    assert result.table.num_rows == 0
    assert result.stats.customers_only_returns == 3


def test_a_return_in_one_state_and_its_purchase_in_another_merge_exactly() -> None:
    """Customer 2's return comes first, its purchase in a later part: the merge sees both."""
    later = pa.table(
        {
            "customer": [2],
            "day": pa.array([day(3)], pa.date32()),
            "amount": [40.0],
            "order": [21],
        }
    )
    whole = pa.concat_tables([ORDERS, later])
    parts = [CustomerState.of(t, **COLUMNS, order="order") for t in (ORDERS, later)]
    merged = CustomerState.from_bytes((parts[0] + parts[1]).to_bytes())
    assert len(parts[0]) == 3  # customer 2 is kept, for its net sum
    got = merged.score(segments=None).table
    assert got.equals(rfm_fast.score(whole, **COLUMNS, order="order", segments=None).table)
    row = got.to_pylist()[1]
    assert (row["customer"], row["monetary"], row["frequency"]) == (2, 25.0, 1)


def test_states_with_different_returns_are_refused() -> None:
    net = CustomerState.of(ORDERS, **COLUMNS)
    dropped = CustomerState.of(ORDERS, **COLUMNS, returns="drop")
    with pytest.raises(RFMError, match="different returns: 'net' and 'drop'"):
        net + dropped


def test_an_unknown_mode_is_refused_with_the_choices() -> None:
    with pytest.raises(RFMError, match="returns must be one of net, purchase, drop; got 'keep'"):
        rfm_fast.score(ORDERS, **COLUMNS, returns="keep")


def test_numpy_layer_takes_the_same_modes() -> None:
    days = ORDERS["day"].to_numpy().astype("datetime64[D]")
    customers, amounts = ORDERS["customer"].to_numpy(), ORDERS["amount"].to_numpy()
    net = arrays.aggregate(customers, days, amounts)
    assert net.customer.tolist() == [1, 3] and net.frequency.tolist() == [1, 1]
    old = arrays.aggregate(customers, days, amounts, returns="purchase")
    assert old.customer.tolist() == [1, 2, 3] and old.frequency.tolist() == [2, 1, 3]
    with pytest.raises(RFMError, match="returns must be one of"):
        arrays.aggregate(customers, days, amounts, returns="none")


def test_btyd_summary_leaves_returns_out_of_the_purchase_days() -> None:
    table = summary(ORDERS, **COLUMNS, as_of=day(25)).to_pylist()
    assert [row["customer"] for row in table] == [1, 3]
    assert [row["frequency"] for row in table] == [0, 0]
    old = summary(ORDERS, **COLUMNS, as_of=day(25), returns="purchase").to_pylist()
    assert [row["frequency"] for row in old] == [1, 0, 1]


@pytest.mark.parametrize(
    "returns, frequency, monetary",
    [("net", 1, 0.0), ("purchase", 2, 0.0), ("drop", 1, 77183.6)],
)
def test_online_retail_customer_12346_bought_once_and_cancelled(returns, frequency, monetary):
    result = rfm_fast.score(RETAIL_SLICE, **RETAIL_OPTIONS, returns=returns)
    keys = result.table.column("CustomerID").to_numpy()
    row = result.table.slice(int(np.flatnonzero(keys == 12346)[0]), 1).to_pylist()[0]
    assert (row["frequency"], row["monetary"]) == (frequency, pytest.approx(monetary))
    assert result.stats.return_rows == 196  # the slice's cancellation lines


def test_a_tiny_negative_amount_is_a_return_everywhere() -> None:
    """-1e-19 splits to (0, 0) in units of 2**-60: the folds must test the amount itself."""
    table = pa.table(
        {
            "customer": [1, 1, 2, 3, 3],
            "day": pa.array([day(d) for d in (1, 5, 2, 3, 4)], pa.date32()),
            "amount": [10.0, -1e-19, 5.0, -1e-19, -3.0],
        }
    )
    rows, stats = scored(table)
    assert sorted(rows) == [1, 2] and rows[1]["frequency"] == 1
    assert stats.customers_only_returns == 1
