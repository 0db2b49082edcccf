"""The engine against the pandas reference on the real data that ships with the tests: a slice
of UCI Online Retail (tests/data/online_retail_slice.csv, every line of 60 customers and 200
lines without a customer; see data/README.md). It runs in a plain clone, where the full files
of ../shared/data are absent."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest
from helpers import TEST_DATA, assert_same_as_reference

import rfm_fast
from rfm_fast import reference

SLICE = TEST_DATA / "online_retail_slice.csv"
LINE_LEVEL = dict(
    customer="CustomerID", timestamp="InvoiceDate", amount="Quantity*UnitPrice", order="InvoiceNo"
)


@pytest.fixture(scope="module")
def lines() -> pa.Table:
    return pa_csv.read_csv(SLICE)


def test_the_slice_is_what_its_readme_says(lines: pa.Table):
    assert lines.num_rows == 4_888
    assert lines.column("CustomerID").null_count == 200
    assert len(pa.compute.unique(lines.column("CustomerID").drop_null())) == 60


def test_line_level_slice_matches_reference(lines: pa.Table):
    result = rfm_fast.score(SLICE, **LINE_LEVEL)
    expected, edges, stats = reference.score(lines.to_pandas(), **LINE_LEVEL)
    assert_same_as_reference(result, expected, edges, stats)
    assert result.stats.rows_read == 4_888
    assert result.stats.dropped["null_customer"] == 200
    assert result.stats.customers == 60


@pytest.mark.parametrize("frequency", ["orders", "days"])
def test_slice_from_file_in_small_batches_equals_in_memory(lines: pa.Table, frequency: str):
    options = dict(LINE_LEVEL, as_of="2011-09-01", frequency=frequency)
    from_file = rfm_fast.score(SLICE, batch_rows=333, **options)
    in_memory = rfm_fast.score(lines, **options)
    assert from_file.table.equals(in_memory.table)
    assert from_file.edges == in_memory.edges
    assert from_file.stats == in_memory.stats
    assert from_file.stats.dropped["after_as_of"] > 0
