"""Output files are written atomically: a failed or interrupted write leaves nothing behind."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rfm_fast.core import io


def test_failed_write_leaves_no_file_and_no_temporary(tmp_path: Path, monkeypatch):
    target = tmp_path / "scores.parquet"
    pq.write_table(pa.table({"x": [1]}), target)  # an older result that must survive

    def half_write(table, where, **kwargs):
        Path(where).write_bytes(b"PAR1 half a file")
        raise KeyboardInterrupt  # as if Ctrl-C arrived mid-write

    monkeypatch.setattr(io.pq, "write_table", half_write)
    with pytest.raises(KeyboardInterrupt):
        io.write_table(pa.table({"x": [1, 2, 3]}), target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.parquet"]
    assert pq.read_table(target).num_rows == 1


def test_write_replaces_the_file_whole(tmp_path: Path):
    target = tmp_path / "scores.csv"
    target.write_text("old", encoding="utf-8")
    io.write_table(pa.table({"x": [1, 2]}), target)
    assert target.read_text(encoding="utf-8").splitlines() == ['"x"', "1", "2"]
    assert [p.name for p in tmp_path.iterdir()] == ["scores.csv"]


@pytest.mark.parametrize("suffix", [".csv.gz", ".csv.zst"])
def test_compressed_csv_output_holds_the_csv_output(tmp_path: Path, suffix: str):
    """``-o scores.csv.gz`` (or ``.csv.zst``) writes the CSV output, compressed (issue 27,
    item 7); a compression we do not write is refused by name before any work."""
    import pyarrow.csv as pa_csv

    table = pa.table({"customer": [3, 1], "monetary": [1.005, 20.5], "segment": ["A", "B"]})
    io.write_table(table, tmp_path / "plain.csv")
    io.write_table(table, tmp_path / f"packed{suffix}")
    plain = pa_csv.read_csv(tmp_path / "plain.csv")
    packed = pa_csv.read_csv(tmp_path / f"packed{suffix}")  # Arrow infers the codec
    assert packed.equals(plain)
    assert io.output_suffix(tmp_path / "SCORES.CSV.GZ") == ".csv.gz"
    with pytest.raises(io.RFMError, match=r"\.csv\.gz, \.csv\.zst"):
        io.check_output_path(tmp_path / "scores.csv.bz2")


def test_parquet_output_encodes_unique_columns_plain_and_reads_back_the_same(tmp_path: Path):
    rng = np.random.default_rng(3)
    n = 20_000
    table = pa.table(
        {
            "customer": rng.permutation(n).astype(np.int64) * 7919,  # unique
            "name": pa.array([f"customer {i:07d}" for i in range(n)]),  # unique text
            "recency": rng.integers(0, 900, n),
            "cell": pa.array([f"{i % 5 + 1}{i % 3 + 1}1" for i in range(n)]),
            "segment": pa.array(["Champions", "Other"] * (n // 2)).dictionary_encode(),
            "monetary": rng.random(n),
        }
    )
    target = tmp_path / "scores.parquet"
    io.write_table(table, target)
    assert pq.read_table(target).equals(table)
    chunks = pq.ParquetFile(target).metadata.row_group(0)
    encodings = {
        chunks.column(i).path_in_schema: chunks.column(i).encodings
        for i in range(chunks.num_columns)
    }
    for plain in ("customer", "name", "monetary"):
        assert "RLE_DICTIONARY" not in encodings[plain], encodings
    for dictionary in ("recency", "cell", "segment"):
        assert "RLE_DICTIONARY" in encodings[dictionary], encodings


@given(
    st.one_of(
        st.tuples(st.lists(st.text(max_size=40), max_size=300), st.just(pa.string())),
        st.tuples(st.lists(st.text(max_size=40), max_size=300), st.just(pa.large_string())),
        st.tuples(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=300), st.just(pa.int64())),
        st.tuples(st.lists(st.integers(0, 255), max_size=300), st.just(pa.uint8())),
        st.tuples(st.lists(st.floats(allow_nan=True), max_size=300), st.just(pa.float64())),
    ),
    st.integers(0, 20),
)
def test_distinct_values_of_a_sample_are_counted_as_python_counts_them(values_and_type, offset):
    values, type_ = values_and_type
    column = pa.chunked_array([pa.array(values, type_)]).slice(min(offset, len(values)))
    if pa.types.is_floating(column.type):  # NaN and -0.0 count by their bits
        expected = len({struct.pack("<d", v) for v in column.to_pylist()})
    else:
        expected = len(set(column.to_pylist()))
    if not pa.types.is_integer(column.type) and not pa.types.is_floating(
        column.type
    ):  # texts are told apart by length and first bytes
        encoded = [v.encode() for v in column.to_pylist()]
        expected = len({(len(v), v[: io.TEXT_SAMPLE_BYTES]) for v in encoded})
    sample = np.arange(len(column), dtype=np.int64)
    assert io.distinct_in_sample(column, sample) == expected
