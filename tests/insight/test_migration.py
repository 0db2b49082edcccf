"""Migration between two dates: customers, matrix, movers, and the awkward inputs."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import rfm_fast
from rfm_fast import RFMError, SegmentRule, clv

COLUMNS = rfm_fast.datasets.EXAMPLE_COLUMNS
EXAMPLE = rfm_fast.datasets.load_example()
DATES = ("1998-01-01", "1998-07-01")


@pytest.fixture(scope="module")
def moved() -> rfm_fast.Migration:
    return rfm_fast.migrate(EXAMPLE, as_of=DATES, **COLUMNS)


def test_each_date_is_scored_as_a_run_on_that_day(moved):
    on_first_day = rfm_fast.score(EXAMPLE, as_of=DATES[0], **COLUMNS)
    assert moved.before.table.equals(on_first_day.table)
    assert moved.before.stats.dropped["after_as_of"] > 0


def test_matrix_adds_up(moved):
    matrix = moved.matrix().to_pandas()
    before = dict(moved.before.segment_counts())
    sizes = matrix.groupby("segment_before", sort=False)["customers"].sum()
    for name, count in before.items():
        assert sizes[name] == count
    assert sizes["(new)"] == 0  # CDNOW's cohort bought first in early 1997
    after = matrix.groupby("segment_after", sort=False)["customers"].sum()
    assert dict(after) == dict(moved.after.segment_counts())
    shares = matrix[matrix["customers"] > 0].groupby("segment_before")["share_of_before"].sum()
    assert shares.to_numpy() == pytest.approx(1.0)
    spent = moved.customers.column("revenue_between").to_numpy()
    assert matrix["revenue_between"].sum() == pytest.approx(spent.sum())
    assert (spent >= -1e-9).all()  # CDNOW has no returns: nobody spends less than nothing


def test_movers(moved, tmp_path):
    movers = moved.movers("Champions", "Loyal Customers")
    assert movers.num_rows == 1557
    assert set(movers.column("segment_before").to_pylist()) == {"Champions"}
    assert set(movers.column("segment_after").to_pylist()) == {"Loyal Customers"}
    path = rfm_fast.core.io.write_table(movers, tmp_path / "movers.csv")
    assert path.read_text().count("\n") == 1558
    with pytest.raises(RFMError, match="unknown segment 'Champs'"):
        moved.movers("Champs", "At Risk")


def _orders(rows: list[tuple[int, str, float]]) -> pa.Table:
    return pa.table(
        {
            "c": [r[0] for r in rows],
            "d": pa.array([dt.date.fromisoformat(r[1]) for r in rows]),
            "a": [r[2] for r in rows],
        }
    )


ORDER_COLUMNS = {"customer": "c", "timestamp": "d", "amount": "a"}
RULES = [SegmentRule("active", {"R": (2, 2)}), SegmentRule("quiet", {"R": (1, 1)})]


def test_new_customers_and_segments_missing_at_one_date():
    orders = _orders([(1, "2024-01-05", 10.0), (2, "2024-01-06", 5.0), (3, "2024-03-01", 7.0)])
    moved = rfm_fast.migrate(
        orders, as_of=("2024-02-01", "2024-04-01"), **ORDER_COLUMNS, bins=2, segments=RULES
    )
    customers = moved.customers.to_pylist()
    assert [c["segment_before"] for c in customers] == ["quiet", "active", "(new)"]
    assert customers[2]["R_before"] is None and customers[2]["revenue_before"] == 0
    assert customers[2]["revenue_between"] == 7.0
    matrix = moved.matrix()
    assert matrix.num_rows == 4 * 3  # from: active, quiet, Other, (new); to: the three
    new_rows = matrix.filter(pc.equal(matrix["segment_before"], "(new)"))
    assert sum(new_rows.column("customers").to_pylist()) == 1
    other = matrix.filter(pc.equal(matrix["segment_before"], "Other"))
    assert sum(other.column("customers").to_pylist()) == 0  # a segment nobody was in


def test_single_customer_and_no_rows_before_the_first_date():
    orders = _orders([(9, "2024-03-01", 7.0)])
    with pytest.warns(rfm_fast.RFMWarning, match="no usable rows"):
        moved = rfm_fast.migrate(orders, as_of=("2024-02-01", "2024-04-01"), **ORDER_COLUMNS)
    assert moved.before.stats.customers == 0
    assert moved.customers.column("segment_before").to_pylist() == ["(new)"]


def test_dates_must_be_two_and_in_order():
    orders = _orders([(1, "2024-01-05", 10.0)])
    with pytest.raises(RFMError, match="must be earlier than the second"):
        rfm_fast.migrate(orders, as_of=("2024-04-01", "2024-02-01"), **ORDER_COLUMNS)
    with pytest.raises(RFMError, match="a pair of dates"):
        rfm_fast.migrate(orders, as_of=("2024-04-01",), **ORDER_COLUMNS)
    with pytest.raises(RFMError, match="a pair of dates"):
        rfm_fast.migrate(orders, as_of="2024-04-01", **ORDER_COLUMNS)


def test_one_shot_readers_are_refused_not_read_half():
    reader = pa.RecordBatchReader.from_batches(EXAMPLE.schema, EXAMPLE.to_batches())
    with pytest.raises(RFMError, match="migrate reads its input twice"):
        rfm_fast.migrate(reader, as_of=DATES, **COLUMNS)
    reader = pa.RecordBatchReader.from_batches(EXAMPLE.schema, EXAMPLE.to_batches())
    with pytest.raises(RFMError, match="calibration_holdout reads its input twice"):
        clv.calibration_holdout(reader, **COLUMNS, calibration_end=DATES[0])
