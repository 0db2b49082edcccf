"""Campaign measurement: the statistics on simulated campaigns with a known lift, segments at
the send, the outcome window, costs, the checks, and a campaign over Online Retail."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest
from helpers import RETAIL_SLICE

import rfm_fast
from rfm_fast import RFMError
from rfm_fast.actions import stats
from rfm_fast.actions.campaign import NEW_SEGMENT, TABLE_COLUMNS, measure

RETAIL = dict(
    customer="CustomerID", timestamp="InvoiceDate", amount="Quantity*UnitPrice", order="InvoiceNo"
)
DAY = dt.datetime(2024, 3, 1)


def test_statistics_match_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    for df in (1.0, 2.5, 7.0, 30.0, 1e4):
        assert stats.t_quantile(0.95, df) == pytest.approx(scipy_stats.t.ppf(0.975, df), 1e-9)
        for t in (0.1, 1.0, 2.5, 8.0):
            expected = 2 * scipy_stats.t.sf(t, df)
            assert stats.t_two_sided_p(t, df) == pytest.approx(expected, rel=1e-7, abs=1e-14)
    rng = np.random.default_rng(0)
    a, b = rng.lognormal(1, 1, 40), rng.lognormal(1.3, 0.5, 25)
    got = stats.welch(a, b)
    expected = scipy_stats.ttest_ind(a, b, equal_var=False)
    assert got.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    low, high = expected.confidence_interval(0.95)
    assert (got.low, got.high) == pytest.approx((low, high), rel=1e-9)
    # Wilson: the roots of (x/n - p)^2 = z^2 p (1 - p) / n
    x, n, z = 7, 30, scipy_stats.norm.ppf(0.975)
    roots = np.roots([1 + z * z / n, -(2 * x / n + z * z / n), (x / n) ** 2])
    assert stats.wilson_interval(x, n) == pytest.approx(tuple(sorted(roots)), rel=1e-12)


def test_small_and_degenerate_groups_give_no_interval():
    assert stats.wilson_interval(0, 0) is None
    assert stats.newcombe_interval(1, 0, 1, 3) is None
    assert stats.two_proportion_p_value(0, 50, 0, 60) is None
    assert stats.ratio_interval(0, 50, 3, 60) is None
    flat = stats.welch(np.zeros(5), np.zeros(7))
    assert flat.difference == 0.0 and flat.low is None and flat.p_value is None
    treated = np.array([True] * 5 + [False] * 30)
    row = measure("few", treated, np.ones(35, np.int64), np.ones(35), np.zeros(35))
    assert row["conversion_lift"] == 0.0 and row["conversion_lift_low"] is None
    assert "fewer than 10" in row["note"]
    row = measure(
        "none", np.repeat([True, False], 20), np.zeros(40, np.int64), np.zeros(40), None, False
    )
    assert row["conversion_p_value"] is None and row["revenue_lift_low"] is None
    assert (
        row["note"] == "no conversions in either group; revenue does not vary: no revenue interval"
    )
    assert row["cost"] is None and row["roi"] is None


def simulated_rows(rng, n_t: int, n_c: int, p_t: float, p_c: float, mu_t: float, mu_c: float):
    """One simulated campaign: conversions, 1-3 orders per converted customer, lognormal
    revenue per order."""
    treated = np.repeat([True, False], [n_t, n_c])
    p = np.where(treated, p_t, p_c)
    converted = rng.random(n_t + n_c) < p
    orders = np.where(converted, rng.integers(1, 4, n_t + n_c), 0)
    mu = np.where(treated, mu_t, mu_c)
    revenue = np.where(converted, orders * rng.lognormal(mu, 1.0), 0.0)
    return measure("sim", treated, orders, revenue, np.where(treated, 0.1, 0.0))


def test_intervals_cover_a_known_lift_at_about_the_nominal_rate():
    rng = np.random.default_rng(20241204)
    p_t, p_c, mu_t, mu_c = 0.14, 0.10, 3.2, 3.0
    # Expected revenue per customer: P(convert) * E[orders] * E[lognormal(mu, 1)]
    true_revenue_lift = 2.0 * (p_t * np.exp(mu_t + 0.5) - p_c * np.exp(mu_c + 0.5))
    covered_conversion = covered_revenue = 0
    runs = 200
    for _ in range(runs):
        row = simulated_rows(rng, 1500, 1500, p_t, p_c, mu_t, mu_c)
        covered_conversion += row["conversion_lift_low"] <= p_t - p_c <= row["conversion_lift_high"]
        covered_revenue += row["revenue_lift_low"] <= true_revenue_lift <= row["revenue_lift_high"]
        assert row["incremental_revenue"] == pytest.approx(row["revenue_lift"] * 1500)
    assert 0.90 * runs <= covered_conversion <= 0.99 * runs
    assert 0.88 * runs <= covered_revenue <= 0.99 * runs


def test_p_values_are_about_uniform_without_an_effect():
    rng = np.random.default_rng(7)
    conversion, revenue = [], []
    for _ in range(300):
        row = simulated_rows(rng, 800, 1200, 0.2, 0.2, 3.0, 3.0)
        conversion.append(row["conversion_p_value"])
        revenue.append(row["revenue_p_value"])
    for p_values in (np.array(conversion), np.array(revenue)):
        assert 0.02 <= np.mean(p_values < 0.05) <= 0.09
        deciles = np.histogram(p_values, bins=5, range=(0, 1))[0]
        assert deciles.min() >= 40 and deciles.max() <= 85  # 60 each, loosely


def test_a_strong_effect_is_found():
    row = simulated_rows(np.random.default_rng(3), 2000, 2000, 0.25, 0.10, 3.0, 3.0)
    assert row["conversion_p_value"] < 1e-6 and row["conversion_lift_low"] > 0.1
    assert row["conversion_relative_lift_low"] > 0.5
    assert row["revenue_p_value"] < 1e-6


def orders_table() -> pa.Table:
    """Customers 1-6 buy before the send; 7 never did; 8 only after it."""
    rows = [
        (1, DAY - dt.timedelta(days=3), 50.0, "a1"),
        (1, DAY - dt.timedelta(days=40), 20.0, "a2"),
        (2, DAY - dt.timedelta(days=200), 10.0, "b1"),
        (3, DAY - dt.timedelta(days=10), 30.0, "c1"),
        (3, DAY - dt.timedelta(days=11), 30.0, "c2"),
        (3, DAY - dt.timedelta(days=12), 30.0, "c3"),
        (4, DAY - dt.timedelta(days=90), 15.0, "d1"),
        (5, DAY - dt.timedelta(days=5), 5.0, "e1"),
        (6, DAY - dt.timedelta(days=300), 80.0, "f1"),
        # the window: DAY < timestamp <= DAY + 10 days
        (1, DAY, 99.0, "a3"),  # at the send: before it, not an outcome
        (1, DAY + dt.timedelta(seconds=1), 12.0, "a4"),
        (2, DAY + dt.timedelta(days=10), 7.0, "b2"),  # the last moment of the window
        (3, DAY + dt.timedelta(days=10, seconds=1), 70.0, "c4"),  # just after it
        (4, DAY + dt.timedelta(days=2), 25.0, "d2"),
        (4, DAY + dt.timedelta(days=2), 5.0, "d2"),  # a second line of the same order
        (4, DAY + dt.timedelta(days=3), -10.0, "d3"),  # a return: off the revenue
        (8, DAY + dt.timedelta(days=1), 40.0, "h1"),
    ]
    customer, ts, amount, order = zip(*rows, strict=True)
    return pa.table(
        {
            "customer": pa.array(customer, pa.int64()),
            "ts": pa.array(ts, pa.timestamp("s")),
            "amount": amount,
            "order": order,
        }
    )


def sends(**extra) -> dict:
    table = {
        "customer": [1, 2, 3, 4, 5, 6, 7, 8],
        "group": ["treatment", "control"] * 4,
        "sent_at": [DAY] * 8,
    }
    table.update(extra)
    return table


COLUMNS = dict(customer="customer", timestamp="ts", amount="amount", order="order")


def run(campaign_table=None, **options) -> rfm_fast.CampaignResult:
    options = {"days": 10, **COLUMNS, **options}
    return rfm_fast.campaign(orders_table(), campaign_table or sends(), **options)


def segments_at(as_of: dt.datetime) -> dict[int, str]:
    """Each customer's segment in rfm_fast.score(orders, as_of=as_of)."""
    table = rfm_fast.score(orders_table(), **COLUMNS, as_of=as_of).table
    names = table.column("segment").to_pylist()
    return dict(zip(table.column("customer").to_pylist(), names, strict=True))


def test_outcome_window_and_segments_at_the_send():
    result = run()
    got = {row["customer"]: row for row in result.customers.to_pylist()}
    assert {c: got[c]["orders"] for c in got} == {1: 1, 2: 1, 3: 0, 4: 1, 5: 0, 6: 0, 7: 0, 8: 1}
    revenue = {c: got[c]["revenue"] for c in got}
    assert revenue == {1: 12.0, 2: 7.0, 3: 0.0, 4: 20.0, 5: 0.0, 6: 0.0, 7: 0.0, 8: 40.0}
    assert [got[c]["converted"] for c in sorted(got)] == [True, True, False, True] + [False] * 3 + [
        True
    ]
    segments = segments_at(DAY)
    for customer, row in got.items():
        assert row["segment"] == segments.get(customer, NEW_SEGMENT)
    assert got[7]["segment"] == got[8]["segment"] == NEW_SEGMENT
    assert result.sent == [DAY]
    assert result.table.column_names == list(TABLE_COLUMNS)
    assert result.table.column("segment").to_pylist()[-1] == "All"
    total = result.row()
    assert (total["treatment"], total["control"]) == (4, 4)
    assert total["conversion_treatment"] == 0.25 and total["conversion_control"] == 0.75
    assert total["revenue_per_customer_treatment"] == pytest.approx((12 + 0 + 0 + 0) / 4)
    assert total["revenue_per_customer_control"] == pytest.approx((7 + 20 + 0 + 40) / 4)
    assert "fewer than 10" in total["note"]
    assert repr(result).startswith(
        "CampaignResult(treatment=4, control=4, sent=2024-03-01 00:00:00"
    )


def test_segments_follow_the_scoring_options():
    result = run(bins=3, segments=None)
    assert set(result.customers.column("segment").to_pylist()) == {"Other", NEW_SEGMENT}
    assert result.scores[0].stats.bins == 3


def test_each_send_time_is_scored_on_its_own():
    later = DAY + dt.timedelta(days=5)
    result = run(sends(sent_at=[DAY] * 4 + [later] * 4), days=5)
    assert result.sent == [DAY, later]
    got = {row["customer"]: row for row in result.customers.to_pylist()}
    # customer 8's purchase (day 1) is before its send (day 5): not an outcome, a segment
    assert got[8]["orders"] == 0 and got[8]["segment"] != NEW_SEGMENT
    segments = segments_at(later)
    for customer in (5, 6, 7, 8):
        assert got[customer]["segment"] == segments.get(customer, NEW_SEGMENT)


def test_cost_and_return_on_spend():
    result = run(sends(cost=[2.0, 1.0] * 4))
    total = result.row()
    assert total["cost"] == 8.0  # the treatment customers' only
    incremental = total["incremental_revenue"]
    assert incremental == pytest.approx((3.0 - 67 / 4) * 4)
    assert total["roi"] == pytest.approx((incremental - 8.0) / 8.0)
    assert run().row()["cost"] is None


def test_ids_as_text_are_matched_with_integer_orders():
    as_text = run(sends(customer=[" 1", "2", "3", "4", "5", "6", "7", "8"]))
    assert as_text.customers.equals(run().customers)
    with pytest.raises(RFMError, match=r"text such as 'x9' \(row 2\)"):
        run(sends(customer=["1", "x9", "3", "4", "5", "6", "7", "8"]))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"group": ["treatment", "Control"] * 4}, "found 'Control' (4 rows)"),
        ({"group": ["treatment"] * 8}, "no control customers"),
        ({"customer": [1, 2, 3, 4, 5, 6, 7, 1]}, "more than once (such as 1, 2 times)"),
        ({"customer": [1, 2, None, 4, 5, 6, 7, 8]}, "1 null customer ids (the first in row 3)"),
        ({"sent_at": [DAY] * 7 + [None]}, "null send times (the first in row 8)"),
        ({"sent_at": ["2024-03-01"] * 7 + ["soon"]}, "cannot read 'soon' (row 8)"),
        ({"cost": [1.0] * 7 + [-1.0]}, "0 or more; found -1.0 in row 8"),
        ({"cost": ["a"] * 8}, "must hold numbers"),
        ({"customer": [1.5, 2, 3, 4, 5, 6, 7, 8]}, "fractions, such as 1.5 (row 1)"),
    ],
)
def test_bad_campaigns_are_refused(change, message):
    with pytest.raises(RFMError) as caught:
        run(sends(**change))
    assert message in str(caught.value)


def test_misnamed_columns_and_options_are_refused():
    table = sends()
    table["sent"] = table.pop("sent_at")
    with pytest.raises(RFMError, match="no column 'sent_at'; did you mean 'sent'"):
        run(table)
    table = sends()
    table["Cost"] = [1.0] * 8
    with pytest.raises(RFMError, match="a column 'Cost' but no 'cost'"):
        run(table)
    for days in (0, -3, 2.5, True):
        with pytest.raises(RFMError, match="days must be a positive whole number"):
            run(days=days)
    with pytest.raises(RFMError, match="leave out as_of"):
        run(as_of=DAY)
    with pytest.raises(RFMError, match="customer column 'who' not found"):
        run(customer="who")


def test_campaign_customer_column_may_be_named_as_the_orders():
    table = sends()
    table["id"] = table.pop("customer")
    renamed = orders_table().rename_columns(["id", "ts", "amount", "order"])
    result = rfm_fast.campaign(
        renamed, table, days=10, customer="id", timestamp="ts", amount="amount", order="order"
    )
    assert result.customers.column("id").to_pylist() == list(range(1, 9))


def test_synthetic_campaign_over_online_retail(tmp_path):
    lines = pa_csv.read_csv(RETAIL_SLICE)
    ids = sorted({c for c in lines.column("CustomerID").to_pylist() if c is not None})
    rng = np.random.default_rng(11)
    group = rng.permutation(
        np.repeat(["treatment", "control"], [len(ids) // 2, len(ids) - len(ids) // 2])
    )
    sent = pa.table({"customer": ids, "group": group, "sent_at": ["2011-09-01"] * len(ids)})
    result = rfm_fast.campaign(RETAIL_SLICE, sent, days=30, **RETAIL)
    frame = lines.to_pandas()
    frame["InvoiceDate"] = pd.to_datetime(frame["InvoiceDate"])
    frame["amount"] = frame["Quantity"] * frame["UnitPrice"]
    start, end = pd.Timestamp("2011-09-01"), pd.Timestamp("2011-10-01")
    window = frame[(frame["InvoiceDate"] > start) & (frame["InvoiceDate"] <= end)]
    window = window.dropna(subset=["CustomerID"])
    revenue = window.groupby("CustomerID")["amount"].sum()
    # net returns: an invoice counts as an order when it nets above zero
    invoices = window.groupby(["CustomerID", "InvoiceNo"])["amount"].sum()
    orders = (invoices > 0).groupby("CustomerID").sum()
    got = result.customers.to_pandas().set_index("CustomerID")
    assert got["revenue"].to_numpy() == pytest.approx(
        revenue.reindex(got.index).fillna(0).to_numpy()
    )
    assert (got["orders"] == orders.reindex(got.index).fillna(0)).all()
    total = result.row()
    assert total["treatment"] + total["control"] == len(ids) == 60
    treated = got["group"] == "treatment"
    assert total["conversion_treatment"] == pytest.approx((got["orders"][treated] > 0).mean())
    assert total["revenue_lift"] == pytest.approx(
        got["revenue"][treated].mean() - got["revenue"][~treated].mean()
    )
    assert total["conversion_lift_low"] < total["conversion_lift"] < total["conversion_lift_high"]
    at_send = rfm_fast.score(RETAIL_SLICE, as_of="2011-09-01", **RETAIL).table.to_pandas()
    segments = at_send.set_index("CustomerID")["segment"].astype(str)
    assert (got["segment"] == segments.reindex(got.index).fillna(NEW_SEGMENT)).all()
    sizes = result.table.to_pandas().set_index("segment")
    assert sizes.drop("All")[["treatment", "control"]].sum().tolist() == [30, 30]
    written = result.write(tmp_path / "lift.parquet")
    assert pa.parquet.read_table(written).num_rows == result.table.num_rows


def test_a_window_past_the_latest_order_is_warned_about():
    with pytest.warns(rfm_fast.RFMWarning, match=r"ends at 2024-03-31 00:00:00, after the latest"):
        result = run(days=30)
    assert result.row()["treatment"] == 4
