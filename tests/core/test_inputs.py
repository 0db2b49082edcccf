"""Every accepted kind of input gives the same result as the Arrow table it holds."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.feather as feather
import pyarrow.ipc as pa_ipc
import pyarrow.parquet as pq
import pytest

import rfm_fast
from rfm_fast.core import arrays

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
    polars = pytest.importorskip("polars")
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
    duckdb = pytest.importorskip("duckdb")
    relation = duckdb.from_arrow(table)
    assert_same(rfm_fast.score(relation, **KWARGS), expected)


def test_result_converts_to_polars_and_shows_a_summary_in_notebooks(expected):
    polars = pytest.importorskip("polars")
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
