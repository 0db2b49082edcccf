"""Segment summary, quality and grids against plain pandas computations of the same numbers."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rfm_fast
from rfm_fast import RFMError, SegmentRule

EXAMPLE = rfm_fast.score(rfm_fast.datasets.load_example(), **rfm_fast.datasets.EXAMPLE_COLUMNS)


@st.composite
def results(draw) -> rfm_fast.RFMResult:
    n = draw(st.integers(1, 80))
    customers = draw(st.lists(st.integers(0, 25), min_size=n, max_size=n))
    days = draw(st.lists(st.integers(0, 400), min_size=n, max_size=n))
    amounts = draw(st.lists(st.integers(-50, 500), min_size=n, max_size=n))
    amounts[0] = abs(amounts[0])  # one purchase at least: all returns would score no one
    table = pa.table(
        {
            "c": customers,
            "d": pa.array([dt.date(2023, 1, 1) + dt.timedelta(days=x) for x in days]),
            "a": [float(a) for a in amounts],
        }
    )
    monetary = draw(st.sampled_from(["sum", "mean"]))
    return rfm_fast.score(table, customer="c", timestamp="d", amount="a", monetary=monetary)


@settings(max_examples=40)
@given(results())
def test_summary_matches_pandas(result: rfm_fast.RFMResult):
    frame = result.to_pandas()
    frame["segment"] = frame["segment"].astype(str)
    frame["revenue"] = frame["monetary"] * (
        frame["frequency"] if result.stats.monetary == "mean" else 1
    )
    summary = rfm_fast.summarize(result).to_pandas().set_index("segment")
    names = [name for name, _ in result.segment_counts()]
    assert list(summary.index) == names
    assert summary["customers"].sum() == len(frame)
    assert summary["share"].sum() == pytest.approx(1.0)
    for name, group in frame.groupby("segment"):
        row = summary.loc[name]
        assert row["customers"] == len(group)
        assert row["revenue"] == pytest.approx(group["revenue"].sum(), abs=1e-9)
        assert row["median_recency"] == group["recency"].median()
        assert row["mean_R"] == pytest.approx(group["R"].mean())
        assert row["median_monetary"] == pytest.approx(group["monetary"].median())
        orders = group["frequency"].sum()
        assert row["average_order_value"] == pytest.approx(group["revenue"].sum() / orders)
    empty = summary[summary["customers"] == 0]
    assert empty["median_recency"].isna().all()
    assert (empty["revenue"] == 0).all()


@settings(max_examples=40)
@given(results(), st.sampled_from([("R", "F"), ("R", "M"), ("F", "M"), ("M", "R")]))
def test_grid_matches_pandas(result: rfm_fast.RFMResult, pair: tuple[str, str]):
    rows, columns = pair
    cells = rfm_fast.grid(result, rows, columns).to_pandas()
    bins = result.stats.bins
    assert len(cells) == bins * bins
    frame = result.to_pandas()
    counts = frame.groupby([rows, columns]).size()
    for _, cell in cells.iterrows():
        key = (cell[rows], cell[columns])
        assert cell["customers"] == counts.get(key, 0)
    assert cells["customers"].sum() == len(frame)
    assert cells["share"].sum() == pytest.approx(1.0)


@settings(max_examples=40)
@given(results())
def test_quality_is_bounded_and_consistent(result: rfm_fast.RFMResult):
    quality = rfm_fast.segment_quality(result)
    for value in quality.explained.values():
        assert 0 <= value <= 1 + 1e-12
    table = quality.table.to_pandas()
    populated = table[table["customers"] > 0]
    assert (populated["spread_recency"] >= 0).all()
    assert ((populated["homogeneity"] <= 1) | populated["homogeneity"].isna()).all()
    for _, row in table[table["customers"] == 0].iterrows():
        assert list(row["flags"]) == ["empty"]


def test_quality_flags_on_real_data():
    flags = rfm_fast.segment_quality(EXAMPLE).flagged()
    assert ("Can't Lose Them", "tiny") in flags  # 11 of 23,570 customers
    assert ("New Customers", "empty") in flags  # nobody bought for the first time in the window
    # Both hold one-time buyers of long ago; they differ by under a quarter of a standard
    # deviation (recency 475 vs 513 days at the median).
    assert ("About To Sleep", "indistinguishable from Hibernating") in flags
    none = rfm_fast.segment_quality(EXAMPLE, min_share=0.0, min_separation=0.0).flagged()
    assert all(flag == "empty" for _, flag in none)


def test_well_separated_segments_explain_the_variance():
    n = 200
    days = [(i % 7) + (300 if i >= 100 else 0) for i in range(n)]
    table = pa.table(
        {
            "c": np.arange(n),
            "d": pa.array([dt.date(2024, 1, 1) - dt.timedelta(days=d) for d in days]),
            "a": np.full(n, 10.0),
        }
    )
    rules = [SegmentRule("recent", {"R": (2, 2)}), SegmentRule("lapsed", {"R": (1, 1)})]
    result = rfm_fast.score(table, customer="c", timestamp="d", amount="a", segments=rules, bins=2)
    quality = rfm_fast.segment_quality(result)
    assert dict(quality.flagged()) == {"Other": "empty"}
    assert quality.explained["recency"] > 0.99
    separation = quality.table.column("separation").to_pylist()
    assert separation[0] == separation[1] > 1.99  # two equal halves: centres 2 std apart


def test_single_customer():
    table = pa.table({"c": [7], "d": pa.array([dt.date(2024, 1, 1)]), "a": [5.0]})
    result = rfm_fast.score(table, customer="c", timestamp="d", amount="a")
    summary = rfm_fast.summarize(result).to_pandas()
    assert summary["customers"].sum() == 1
    quality = rfm_fast.segment_quality(result)
    assert quality.table.column("separation").to_pylist().count(None) == 0
    populated = [f for s, f in quality.flagged() if f != "empty"]
    assert populated == []  # one segment has the customer, and no neighbour to compare with
    assert rfm_fast.grid(result).column("customers").to_pylist().count(1) == 1


def test_grid_and_quality_errors():
    with pytest.raises(RFMError, match="among R, F, M"):
        rfm_fast.grid(EXAMPLE, "R", "X")
    with pytest.raises(RFMError, match="two different scores"):
        rfm_fast.grid(EXAMPLE, "F", "F")
    with pytest.raises(RFMError, match="min_share"):
        rfm_fast.segment_quality(EXAMPLE, min_share=2)


def test_example_numbers_by_hand():
    summary = rfm_fast.summarize(EXAMPLE).to_pandas().set_index("segment")
    frame = EXAMPLE.to_pandas()
    champions = frame[frame["segment"] == "Champions"]
    assert summary.loc["Champions", "customers"] == len(champions) == 4135
    assert summary.loc["Champions", "revenue_per_customer"] == pytest.approx(
        champions["monetary"].mean()
    )
    assert summary["revenue"].sum() == pytest.approx(frame["monetary"].sum())
    assert isinstance(summary, pd.DataFrame)
