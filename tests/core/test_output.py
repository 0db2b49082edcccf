"""Output files are written atomically: a failed or interrupted write leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

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
