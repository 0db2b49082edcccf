"""The engine against the pandas reference on the real data sets in ../shared/data."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from helpers import SHARED_DATA, assert_same_as_reference

import rfm_fast
from rfm_fast import reference
from rfm_fast.datasets import read_cdnow

CDNOW_MASTER = SHARED_DATA / "cdnow" / "CDNOW_master.txt"
ONLINE_RETAIL = SHARED_DATA / "online_retail" / "online_retail_I.csv.gz"

pytestmark = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason="../shared/data is not beside the repository"
)


def test_shipped_example_is_the_cdnow_master_file():
    assert pq.read_table(rfm_fast.datasets.example_path()).equals(read_cdnow(CDNOW_MASTER))


def test_cdnow_matches_reference():
    table = read_cdnow(CDNOW_MASTER)
    result = rfm_fast.score(table, **rfm_fast.datasets.EXAMPLE_COLUMNS)
    expected, edges, stats = reference.score(
        table.to_pandas(), customer="customer_id", timestamp="date", amount="dollar_value"
    )
    assert_same_as_reference(result, expected, edges, stats)
    assert result.stats.customers == 23_570
    assert str(result.stats.as_of) == "1998-07-01 00:00:00"


def test_cdnow_distinct_days_differ_from_rows():
    """About 2,000 rows are a second purchase by the same customer on the same day."""
    table = read_cdnow(CDNOW_MASTER)
    rows = rfm_fast.score(table, **rfm_fast.datasets.EXAMPLE_COLUMNS)
    days = rfm_fast.score(table, frequency="days", **rfm_fast.datasets.EXAMPLE_COLUMNS)
    extra = int(pa.compute.sum(rows.table["frequency"]).as_py()) - int(
        pa.compute.sum(days.table["frequency"]).as_py()
    )
    assert 1_500 < extra < 2_500


@pytest.fixture(scope="module")
def online_retail() -> pa.Table:
    return pa_csv.read_csv(ONLINE_RETAIL)


def test_online_retail_line_level_matches_reference(online_retail: pa.Table):
    kwargs = dict(
        customer="CustomerID",
        timestamp="InvoiceDate",
        amount="Quantity*UnitPrice",
        order="InvoiceNo",
    )
    result = rfm_fast.score(ONLINE_RETAIL, **kwargs)
    expected, edges, stats = reference.score(online_retail.to_pandas(), **kwargs)
    assert_same_as_reference(result, expected, edges, stats)
    # The data set's README: 541,909 lines, 135,080 without a CustomerID.
    assert result.stats.rows_read == 541_909
    assert result.stats.dropped["null_customer"] == 135_080
    # 4,372 customers, of whom 33 only cancelled (orders placed before the data starts): with
    # the default returns="net" they have no purchase and are left out, and counted.
    assert result.stats.customers + result.stats.customers_only_returns == 4_372
    assert result.stats.customers == 4_339
    assert result.stats.return_rows == 8_905  # the cancellation lines that have a customer
    # Cancellations are not orders (frequency counts invoices with a purchase); returns net.
    by_customer = dict(
        zip(
            result.table["CustomerID"].to_pylist(),
            result.table["monetary"].to_pylist(),
            strict=True,
        )
    )
    assert by_customer[12346] == pytest.approx(0.0, abs=1e-9)  # bought 74,215 and returned them


def test_online_retail_from_file_equals_in_memory(online_retail: pa.Table):
    kwargs = dict(
        customer="CustomerID",
        timestamp="InvoiceDate",
        amount="Quantity*UnitPrice",
        order="InvoiceNo",
        as_of="2011-12-01",
    )
    from_file = rfm_fast.score(ONLINE_RETAIL, batch_rows=50_000, **kwargs)
    in_memory = rfm_fast.score(online_retail, **kwargs)
    assert from_file.table.equals(in_memory.table)
    assert from_file.edges == in_memory.edges
    assert from_file.stats == in_memory.stats
    assert from_file.stats.dropped["after_as_of"] > 0
