"""Every accepted kind of input gives the same result as the Arrow table it holds."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.feather as feather
import pyarrow.ipc as pa_ipc
import pyarrow.parquet as pq
import pytest
from helpers import require
from hypothesis import given
from hypothesis import strategies as st

import rfm_fast
from rfm_fast.core import arrays
from rfm_fast.core.io import row_group_batches

KWARGS = dict(customer="customer", timestamp="ts", amount="amount", order="order")


@pytest.fixture(scope="module")
def table() -> pa.Table:
    rng = np.random.default_rng(7)
    n = 5_000
    return pa.table(
        {
            "customer": rng.integers(0, 400, n),
            "ts": pa.array(
                np.datetime64("2023-01-01T00:00:00") + rng.integers(0, 86_400 * 500, n),
                pa.timestamp("s"),
            ),
            "amount": rng.integers(-40, 400, n) / 4,
            "order": rng.integers(0, 2_000, n),
            "note": pa.array(["x"] * n),
        }
    )


@pytest.fixture(scope="module")
def expected(table: pa.Table) -> rfm_fast.RFMResult:
    return rfm_fast.score(table, **KWARGS)


def _common_time_unit(table: pa.Table) -> pa.Table:
    """Parquet has no second unit and polars none either: compare purchase times in us."""
    for name in ("first_purchase", "last_purchase"):
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, table.column(name).cast(pa.timestamp("us")))
    return table


def assert_same(result: rfm_fast.RFMResult, expected: rfm_fast.RFMResult) -> None:
    assert _common_time_unit(result.table).equals(_common_time_unit(expected.table))
    assert result.edges == expected.edges
    assert result.stats == expected.stats


def test_record_batch_and_reader(table, expected):
    assert_same(rfm_fast.score(table.combine_chunks().to_batches()[0], **KWARGS), expected)
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=333))
    assert_same(rfm_fast.score(reader, **KWARGS), expected)


def test_pandas_dataframe(table, expected):
    assert_same(rfm_fast.score(table.to_pandas(), **KWARGS), expected)


def test_polars_dataframe(table, expected):
    polars = require("polars")
    assert_same(rfm_fast.score(polars.from_arrow(table), **KWARGS), expected)


def test_mapping_of_numpy_arrays(table, expected):
    mapping = {name: table.column(name).to_numpy() for name in table.column_names}
    assert_same(rfm_fast.score(mapping, **KWARGS), expected)


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".csv.gz", ".arrow", ".feather", ".arrows"])
def test_files(tmp_path: Path, table, expected, suffix):
    path = tmp_path / f"orders{suffix}"
    if suffix == ".parquet":
        pq.write_table(table, path, row_group_size=1_000)
    elif suffix.startswith(".csv"):
        with (
            pa.CompressedOutputStream(path, "gzip")
            if suffix.endswith(".gz")
            else (pa.OSFile(str(path), "wb")) as sink
        ):
            pa_csv.write_csv(table, sink)
    elif suffix == ".feather":
        feather.write_feather(table, path)
    elif suffix == ".arrow":
        with pa_ipc.new_file(path, table.schema) as writer:
            writer.write_table(table, max_chunksize=700)
    else:
        with pa_ipc.new_stream(path, table.schema) as writer:
            writer.write_table(table)
    result = rfm_fast.score(path, batch_rows=900, **KWARGS)
    assert_same(result, expected)


@pytest.mark.parametrize("batch_rows", [1, 700, 1_000, 1_300, 2_500, 1 << 20])
def test_parquet_row_groups_of_any_size_read_in_any_batches(
    tmp_path: Path, table, expected, batch_rows
):
    path = tmp_path / "orders.parquet"
    with pq.ParquetWriter(path, table.schema) as writer:
        start = 0
        for size in (1_000, 1_000, 37, 1, 1_462, 1_500):  # 5,000 rows in uneven row groups
            writer.write_table(table.slice(start, size))
            start += size
    assert pq.ParquetFile(path).metadata.num_row_groups == 6
    assert_same(rfm_fast.score(path, batch_rows=batch_rows, **KWARGS), expected)


@given(
    group_rows=st.lists(st.integers(0, 50), max_size=30),
    batch_rows=st.integers(1, 60),
)
def test_row_group_batches_cover_every_row_group_once_in_batches_that_fit(group_rows, batch_rows):
    plan = row_group_batches(group_rows, batch_rows)
    assert [group for groups, _ in plan for group in groups] == list(range(len(group_rows)))
    for groups, size in plan:
        assert 1 <= size <= batch_rows
        rows = max(sum(group_rows[g] for g in groups), 1)
        if len(groups) > 1:  # row groups read together: one batch
            assert rows == size
        else:  # a row group alone: as few batches as batch_rows allows, of equal size
            assert -(-rows // size) == -(-rows // batch_rows)
            assert size - rows // -(-rows // size) <= 1


def test_progress_is_reported(tmp_path: Path, table):
    path = tmp_path / "orders.parquet"
    pq.write_table(table, path, row_group_size=1_000)
    seen = []
    rfm_fast.score(
        path, batch_rows=1_000, progress=lambda done, total: seen.append((done, total)), **KWARGS
    )
    assert seen[-1] == (table.num_rows, table.num_rows)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert len(seen) == 5


def test_text_timestamps_with_and_without_format(table):
    days = pa.array([dt.date(2024, 3, d) for d in (1, 2, 9)])
    base = pa.table({"customer": [1, 1, 2], "ts": days, "amount": [1.0, 2.0, 3.0]})
    kwargs = dict(customer="customer", timestamp="ts", amount="amount")
    expected = rfm_fast.score(base, **kwargs).table.drop_columns(
        ["first_purchase", "last_purchase"]
    )
    iso = base.set_column(1, "ts", pa.array(["2024-03-01", "2024-03-02", "2024-03-09"]))
    compact = base.set_column(1, "ts", pa.array(["01/03/2024", "02/03/2024", "09/03/2024"]))
    numbers = base.set_column(1, "ts", pa.array([20240301, 20240302, 20240309]))
    for data, fmt in ((iso, None), (compact, "%d/%m/%Y"), (numbers, "%Y%m%d")):
        got = rfm_fast.score(data, timestamp_format=fmt, **kwargs).table
        assert got.drop_columns(["first_purchase", "last_purchase"]).equals(expected)
    with pytest.raises(rfm_fast.RFMError, match="timestamp_format"):
        rfm_fast.score(compact, **kwargs)


def test_csv_with_timestamp_format(tmp_path: Path):
    path = tmp_path / "cdnow_like.csv"
    path.write_text(
        "id,day,usd\n1,19970101,11.77\n2,19970112,12.00\n1,19970302,3.5\n", encoding="utf-8"
    )
    result = rfm_fast.score(
        path,
        customer="id",
        timestamp="day",
        amount="usd",
        timestamp_format="%Y%m%d",
        bins=2,
        segments=None,
    )
    assert result.table["recency"].to_pylist() == [1, 50]
    assert result.stats.as_of == dt.datetime(1997, 3, 3)


def test_text_order_ids_in_csv_are_read_as_text(tmp_path: Path):
    """Invoice numbers look numeric until a cancellation ('C536379') shows up."""
    lines = (
        ["c,t,a,inv"]
        + [f"1,2024-01-01,1,{536365 + i}" for i in range(3)]
        + ["1,2024-01-02,-1,C536365"]
    )
    path = tmp_path / "invoices.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = rfm_fast.score(
        path, customer="c", timestamp="t", amount="a", order="inv", segments=None,
        returns="purchase",  # the cancellation counts as an order of its own
    )  # fmt: skip
    assert result.table["frequency"].to_pylist() == [4]


def test_unsupported_input_type():
    with pytest.raises(rfm_fast.RFMError, match="data must be"):
        rfm_fast.score([1, 2, 3], customer="c", timestamp="t", amount="a")


def test_unknown_file_suffix(tmp_path: Path):
    path = tmp_path / "orders.xlsx"
    path.write_bytes(b"")
    with pytest.raises(rfm_fast.RFMError, match="cannot tell the format"):
        rfm_fast.score(path, customer="c", timestamp="t", amount="a")


def test_numpy_layer_matches_score(table, expected):
    metrics = arrays.aggregate(
        table["customer"].to_numpy(),
        table["ts"].to_numpy(),
        table["amount"].to_numpy(),
        table["order"].to_numpy(),
    )
    t = expected.table
    np.testing.assert_array_equal(metrics.customer, t["customer"].to_numpy())
    np.testing.assert_array_equal(metrics.recency, t["recency"].to_numpy())
    np.testing.assert_array_equal(metrics.frequency, t["frequency"].to_numpy())
    np.testing.assert_array_equal(metrics.monetary, t["monetary"].to_numpy())
    np.testing.assert_array_equal(metrics.last, t["last_purchase"].to_numpy())
    scores = arrays.score_metrics(metrics.recency, metrics.frequency, metrics.monetary)
    np.testing.assert_array_equal(scores.R, t["R"].to_numpy())
    np.testing.assert_array_equal(scores.F, t["F"].to_numpy())
    np.testing.assert_array_equal(scores.M, t["M"].to_numpy())
    assert scores.edges == expected.edges


def test_numpy_layer_string_keys_and_errors():
    metrics = arrays.aggregate(
        np.array(["b", "a", "b"]),
        np.array(["2024-01-01", "2024-01-02", "2024-01-03"], dtype="datetime64[D]"),
        np.array([1, 2, 3]),
    )
    assert metrics.customer.tolist() == ["a", "b"]
    assert metrics.monetary.tolist() == [2.0, 4.0]
    with pytest.raises(rfm_fast.RFMError, match="datetime64"):
        arrays.aggregate(np.array([1]), np.array([1]), np.array([1.0]))
    with pytest.raises(rfm_fast.RFMError, match="same length"):
        arrays.aggregate(
            np.array([1, 2]), np.array(["2024-01-01"], "datetime64[D]"), np.array([1.0])
        )
    with pytest.raises(rfm_fast.RFMError, match="index 1"):
        arrays.aggregate(
            np.array([1, 2]), np.array(["2024-01-01"] * 2, "datetime64[D]"), np.array([1.0, np.inf])
        )


def test_empty_csv_cells_are_null_ids(tmp_path: Path):
    """An empty text customer is a null customer; empty order cells are orders of their own."""
    path = tmp_path / "gaps.csv"
    path.write_text(
        "c,t,a,inv\nx,2024-01-01,1,\nx,2024-01-02,1,\n,2024-01-03,1,A1\n", encoding="utf-8"
    )
    result = rfm_fast.score(
        path, customer="c", timestamp="t", amount="a", order="inv", segments=None
    )
    assert result.table["c"].to_pylist() == ["x"]
    assert result.table["frequency"].to_pylist() == [2]
    assert result.stats.dropped["null_customer"] == 1


def test_folder_and_glob_of_files(tmp_path: Path, table, expected):
    folder = tmp_path / "parts"
    folder.mkdir()
    for i, start in enumerate(range(0, table.num_rows, 1_500)):
        pq.write_table(table.slice(start, 1_500), folder / f"part-{i:03d}.parquet")
    (folder / "_SUCCESS").write_text("", encoding="utf-8")  # not a data file: ignored
    for data in (folder, str(folder / "part-*.parquet")):
        assert_same(rfm_fast.score(data, batch_rows=700, **KWARGS), expected)
    with pytest.raises(rfm_fast.RFMError, match="no input file matches"):
        rfm_fast.score(str(folder / "nothing-*.parquet"), **KWARGS)


def test_files_of_a_folder_must_agree(tmp_path: Path, table):
    pq.write_table(table.slice(0, 10), tmp_path / "a.parquet")
    pq.write_table(table.slice(10, 10).drop_columns(["note"]), tmp_path / "b.parquet")
    with pytest.raises(rfm_fast.RFMError, match="same columns"):
        rfm_fast.score(tmp_path, **KWARGS)
    pq.write_table(
        table.slice(10, 10).set_column(2, "amount", pa.array(range(10))), tmp_path / "b.parquet"
    )
    with pytest.raises(rfm_fast.RFMError, match="same types"):
        rfm_fast.score(tmp_path, **KWARGS)


def test_corrupt_row_group_is_reported_with_file_and_position(tmp_path: Path, table):
    path = tmp_path / "orders.parquet"
    pq.write_table(table, path, row_group_size=1_000, compression="snappy")
    meta = pq.ParquetFile(path).metadata
    column = meta.row_group(3).column(0)  # the customer column of the fourth row group
    raw = bytearray(path.read_bytes())
    middle = column.data_page_offset + column.total_compressed_size // 2
    raw[middle : middle + 64] = b"\xff" * 64
    path.write_bytes(bytes(raw))
    with pytest.raises(rfm_fast.RFMError) as caught:
        rfm_fast.score(path, batch_rows=1_000, **KWARGS)
    message = str(caught.value)
    assert str(path) in message
    assert "after 3,000 rows, in row group 3 of 5" in message


class ArrowStream:
    """Any object with only the Arrow PyCapsule stream interface (as DuckDB, ibis and
    nanoarrow objects have); it can export its stream more than once."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table
        self.exports = 0

    def __arrow_c_stream__(self, requested_schema=None):
        self.exports += 1
        return self.table.__arrow_c_stream__(requested_schema)


def test_objects_that_export_an_arrow_stream(table, expected):
    stream = ArrowStream(table)
    assert_same(rfm_fast.score(stream, **KWARGS), expected)
    assert stream.exports == 1  # the schema and the batches come from one export
    rfm_fast.score(stream, **KWARGS)
    assert stream.exports == 2


def test_duckdb_relation(table, expected):
    duckdb = require("duckdb")
    relation = duckdb.from_arrow(table)
    assert_same(rfm_fast.score(relation, **KWARGS), expected)


def test_result_converts_to_polars_and_shows_a_summary_in_notebooks(expected):
    polars = require("polars")
    frame = expected.to_polars()
    assert isinstance(frame, polars.DataFrame)
    assert frame.columns == expected.table.column_names  # (polars has no second unit)
    for name in ("customer", "frequency", "monetary", "rfm_cell"):
        assert frame[name].to_list() == expected.table[name].to_pylist()
    shown = expected._repr_html_()
    assert f"{expected.stats.customers:,} customers" in shown
    assert shown.count("<tr>") == 1 + len(expected.segment_counts())  # not the whole table
    assert "customers=" in repr(expected) and "\n" not in repr(expected)


def test_segment_names_in_the_notebook_summary_are_escaped(table):
    rules = [rfm_fast.SegmentRule("<b>VIP</b> & co", {"R": (1, 5)})]
    shown = rfm_fast.score(table, **KWARGS, segments=rules)._repr_html_()
    assert "&lt;b&gt;VIP&lt;/b&gt; &amp; co" in shown and "<b>VIP" not in shown


def test_float_ids_that_are_whole_numbers_are_read_as_integers(table, expected):
    pandas = pytest.importorskip("pandas")
    frame = table.to_pandas()
    frame["customer"] = frame["customer"].astype("float64")
    frame.loc[0, "customer"] = float("nan")  # a gap: the reason pandas made them floats
    result = rfm_fast.score(frame, **KWARGS)
    assert result.table.schema.field("customer").type == pa.int64()
    assert result.stats.dropped["null_customer"] == 1
    again = rfm_fast.score(table.slice(1), **KWARGS)
    assert result.table.equals(again.table)
    frame.loc[3, "customer"] = 17.5
    with pytest.raises(rfm_fast.RFMError, match=r"row 3 \(counting from 0\) has 17.5"):
        rfm_fast.score(frame, **KWARGS)
    del pandas


def test_a_csv_file_with_only_a_header_gives_the_empty_result(tmp_path: Path):
    path = tmp_path / "empty.csv"
    path.write_text("customer,ts,amount,order\n")
    with pytest.warns(rfm_fast.RFMWarning, match="no usable rows"):
        result = rfm_fast.score(path, **KWARGS)
    assert result.table.num_rows == 0 and result.stats.rows_read == 0


def test_a_column_of_nulls_only_drops_every_row_and_counts_them():
    table = pa.table({"customer": pa.nulls(3), "ts": pa.nulls(3), "amount": [1.0, 2.0, 3.0]})
    with pytest.warns(rfm_fast.RFMWarning, match="no usable rows"):
        result = rfm_fast.score(table, customer="customer", timestamp="ts", amount="amount")
    assert result.stats.dropped["null_customer"] == 3


# ---------------------------------------------------------------------- real files as they are
def _write(path: Path, header: str, lines: list[str]) -> Path:
    path.write_text(header + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


COLUMNS = dict(customer="customer", timestamp="ts", amount="amount", segments=None)


@pytest.mark.parametrize(
    "late, column, wider",
    [("C17,2024-02-01,3", "customer", pa.string()), ("7,2024-02-01,2.5", "amount", pa.float64())],
)
def test_a_csv_whose_type_changes_far_into_the_file_is_read_again(tmp_path, late, column, wider):
    """Arrow infers types from the first 16 MB block: a later value of another type must not
    fail the run (it is read again, with a warning)."""
    lines = [f"{i % 5000},2024-01-{1 + i % 28:02d},{i % 100}" for i in range(1_200_000)]
    path = _write(tmp_path / "late.csv", "customer,ts,amount", [*lines, late])
    assert path.stat().st_size > 1 << 24
    with pytest.warns(rfm_fast.RFMWarning, match=f"CSV column '{column}'.*read the file again"):
        result = rfm_fast.score(path, **COLUMNS)
    assert result.stats.rows_read == 1_200_001
    if column == "customer":
        assert result.table.schema.field("customer").type == wider
        assert "C17" in result.table.column("customer").to_pylist()
    else:
        assert (
            pa.compute.sum(result.table["monetary"]).as_py()
            == sum(i % 100 for i in range(1_200_000)) + 2.5
        )


def test_schema_gives_the_types_at_once(tmp_path):
    path = _write(tmp_path / "s.csv", "customer,ts,amount", ["1,2024-01-01,5", "C2,2024-01-02,1"])
    result = rfm_fast.score(path, **COLUMNS, schema="customer=string,amount=float64")
    assert result.table.column("customer").to_pylist() == ["1", "C2"]
    with pytest.raises(rfm_fast.RFMError, match=r"unknown type 'int128'.*the types are string"):
        rfm_fast.score(path, **COLUMNS, schema={"amount": "int128"})


def test_quoted_line_breaks_across_a_block_boundary(tmp_path):
    lines = [
        f'{i % 5000},2024-01-{1 + i % 28:02d},{i % 100},"line one\nline two"'
        for i in range(700_000)
    ]
    path = _write(tmp_path / "notes.csv", "customer,ts,amount,note", lines)
    assert path.stat().st_size > 1 << 24
    assert rfm_fast.score(path, **COLUMNS).stats.rows_read == 700_000


def test_whitespace_separated_columns_as_in_the_cdnow_master_file(tmp_path):
    text = (
        " customer_id  date number_of_cds  dollar_value\r\n"
        " 00001 19970101  1   11.77\r\n 00002 19970112  1   12.00\r\n"
        " 00002 19970112  5   77.00\r\n\r\n 00003 19970102  2   20.76\r\n"
    )
    path = tmp_path / "CDNOW_master.txt"
    path.write_bytes(text.encode())
    result = rfm_fast.score(
        path, customer="customer_id", timestamp="date", amount="dollar_value",
        delimiter="whitespace", timestamp_format="%Y%m%d", segments=None,
    )  # fmt: skip
    assert result.table.column("customer_id").to_pylist() == [1, 2, 3]
    assert result.table.column("monetary").to_pylist() == [11.77, 89.0, 20.76]
    with pytest.raises(rfm_fast.RFMError, match="has 1 values; the first line names 4 columns"):
        path.write_bytes(text.encode() + b" 00004\r\n")
        rfm_fast.score(path, customer="customer_id", timestamp="date", amount="dollar_value",
                       delimiter="whitespace", timestamp_format="%Y%m%d")  # fmt: skip


def test_a_semicolon_delimiter(tmp_path):
    path = _write(
        tmp_path / "eu.csv", "customer;ts;amount", ['1;2024-01-01;"12,50"', "2;2024-01-02;3"]
    )
    result = rfm_fast.score(path, **COLUMNS, delimiter=";", decimal=",")
    assert result.table.column("monetary").to_pylist() == [12.5, 3.0]
    with pytest.raises(rfm_fast.RFMError, match="delimiter must be one character"):
        rfm_fast.score(path, **COLUMNS, delimiter=";;")


@pytest.mark.parametrize(
    "values, options, expected",
    [
        (["$1,234.50", "$3.00", "(12.00)"], {"amount_format": "currency"}, [1234.5, -9.0]),
        (
            ["1.234,50 €", "3,00 €", "-1,00 €"],
            {"amount_format": "currency", "decimal": ","},
            [1234.5, 2.0],
        ),
        (["12.5", "3", ""], {}, [12.5, 3.0]),
    ],
)
def test_text_amounts(values, options, expected):
    table = pa.table(
        {"customer": [1, 2, 2], "ts": pa.array([dt.date(2024, 1, 1)] * 3), "amount": values}
    )
    result = rfm_fast.score(table, **{**COLUMNS, "timestamp": "ts"}, returns="purchase", **options)
    assert result.table.column("monetary").to_pylist() == expected


@pytest.mark.parametrize(
    "value, hint",
    [("$12.50", "--amount-format currency"), ("12,50", "--decimal ,"), ("n/a", "--amount-format")],
)
def test_an_amount_that_is_not_a_number_shows_the_value_its_row_and_the_option(value, hint):
    table = pa.table(
        {"customer": [1, 2], "ts": pa.array([dt.date(2024, 1, 1)] * 2), "amount": ["1", value]}
    )
    with pytest.raises(
        rfm_fast.RFMError,
        match=rf"row 1 \(counting from 0\) has '{re.escape(value)}'.*{re.escape(hint)}",
    ):
        rfm_fast.score(table, **COLUMNS)


@pytest.mark.parametrize(
    "texts, fragment",
    [
        (["03/15/2011 14:30", "03/16/2011 09:00"], "'%m/%d/%Y %H:%M' (CLI: --timestamp-format"),
        (["15/03/2011 14:30"], "'%d/%m/%Y %H:%M'"),
        (["03/11/2011 14:30"], "(month first) and, as far as the first values show, '%d/%m/%Y"),
    ],
)
def test_a_timestamp_that_is_not_iso_suggests_the_format_that_reads_it(texts, fragment):
    table = pa.table(
        {"customer": list(range(len(texts))), "ts": texts, "amount": [1.0] * len(texts)}
    )
    with pytest.raises(rfm_fast.RFMError) as error:
        rfm_fast.score(table, **COLUMNS)
    message = str(error.value)
    assert f"{texts[0]!r} (row 0 of its batch)" in message and fragment in message
    assert "assume_timezone" not in message  # no text of Arrow's


@pytest.mark.parametrize(
    "text, value",
    [("$(12.00)", -12.0), ("$ (12.00)", -12.0), ("Rs. 1,200", 1200.0), ("(1,234.50) USD", -1234.5)],
)
def test_currency_text_keeps_its_sign_and_its_magnitude(text, value):
    from rfm_fast.core.pipeline import amount_numbers

    assert amount_numbers(pa.array([text]), "a", 0, "currency", ".").to_pylist() == [value]


def test_a_type_given_in_the_schema_is_not_widened(tmp_path):
    lines = [f"{i},2024-01-01,{i}" for i in range(1_200_000)] + ["7,2024-01-02,2.5"]
    path = _write(tmp_path / "given.csv", "customer,ts,amount", lines)
    with pytest.raises(rfm_fast.RFMError, match=r"was given the type int64 \(schema=\).*'2.5'"):
        rfm_fast.score(path, **COLUMNS, schema="amount=int64")


def test_outputs_get_the_usual_file_mode(tmp_path, table):
    from rfm_fast.core.io import write_table

    mask = os.umask(0o022)
    try:
        write_table(table, tmp_path / "out.parquet")
    finally:
        os.umask(mask)
    assert (tmp_path / "out.parquet").stat().st_mode & 0o777 == 0o644


def test_csv_header_longer_than_the_header_block_reads(tmp_path: Path) -> None:
    """The column names are read from a small first block; a first row longer than that block
    is read again with the full block size, not refused."""
    from rfm_fast.core.io import CSV_BLOCK_BYTES

    padding = [f"unused_column_{i:07d}" for i in range(CSV_BLOCK_BYTES // 20 + 1)]
    header = ",".join(["customer", "ts", "amount", *padding])
    assert len(header) > CSV_BLOCK_BYTES
    filler = "," * len(padding)
    path = tmp_path / "wide.csv"
    path.write_text(
        f"{header}\n7,2024-01-01,5{filler}\n7,2024-01-03,6{filler}\n8,2024-01-02,1{filler}\n"
    )
    result = rfm_fast.score(path, customer="customer", timestamp="ts", amount="amount")
    assert result.table.column("customer").to_pylist() == [7, 8]
    assert result.table.column("frequency").to_pylist() == [2, 1]
