"""Hostile inputs whose error used to be wrong or raw (issue 24, item 7): each is now one true
line on stderr with exit code 1, no traceback, and nothing left behind.

The cases are generated where the input can be: factors of an amount product beyond 2**53, ids
written with a sign or too long for int64, damaged version fields of a state file, system errors
of a write, timestamps with whitespace around them, and long ``--where`` conditions.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import os
import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rfm_fast_cli.main import app
from typer.testing import CliRunner

import rfm_fast
from rfm_fast.actions.campaign import matched_keys
from rfm_fast.actions.lists import parse_condition
from rfm_fast.daily import state_file

CASES = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
"""Each example runs the command line once: a few per property."""

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(result, *words: str) -> str:
    """The one error line of a failed command, checked: exit code 1, one line that starts with
    ``error:``, no traceback, no "this is a bug", and each of ``words`` in it."""
    assert result.exit_code == 1, (result.exit_code, result.output)
    assert "Traceback" not in result.output + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "this is a bug" not in lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def only_files(folder: Path, *names: str) -> None:
    """Nothing but ``names`` in ``folder``: no output, no temporary file."""
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)


def orders_table(n: int = 4) -> pa.Table:
    return pa.table(
        {
            "customer": list(range(1, n + 1)),
            "timestamp": pa.array(
                [dt.datetime(2024, 1, 1 + i) for i in range(n)], pa.timestamp("s")
            ),
            "amount": [10.0] * n,
        }
    )


# --------------------------------------------------------------------------- amount products


@CASES
@given(
    size=st.integers(2**53 + 1, 2**63 - 1),
    negative=st.booleans(),
    row=st.integers(0, 5),
    which=st.sampled_from(["Quantity", "UnitPrice"]),
)
def test_a_product_factor_beyond_2_53_names_column_row_and_value(
    tmp_path_factory, size: int, negative: bool, row: int, which: str
):
    folder = tmp_path_factory.mktemp("product")
    value = -size if negative else size
    factors = {"Quantity": [2] * 6, "UnitPrice": [3] * 6}
    factors[which][row] = value
    table = pa.table(
        {
            "customer": [1, 2, 3, 1, 2, 3],
            "timestamp": pa.array(
                [dt.datetime(2024, 1, d) for d in range(1, 7)], pa.timestamp("s")
            ),
            **{name: pa.array(values, pa.int64()) for name, values in factors.items()},
        }
    )
    pq.write_table(table, folder / "lines.parquet")
    result = run(
        "score", folder / "lines.parquet", "--amount", "Quantity*UnitPrice", "-o", folder / "o.csv"
    )
    one_line_error(result, f"'{which}'", f"row {row}", str(value), "2**53")
    only_files(folder, "lines.parquet")


def test_product_factors_up_to_2_53_are_multiplied(tmp_path: Path):
    table = orders_table(2).append_column("q", pa.array([2**53, -(2**53)], pa.int64()))
    table = table.append_column("p", pa.array([1, -1], pa.int8()))
    result = rfm_fast.score(table, customer="customer", timestamp="timestamp", amount="q*p")
    assert result.table.column("monetary").to_pylist() == [2.0**53, 2.0**53]


def test_an_unsigned_factor_beyond_2_53_is_refused():
    table = orders_table(2).append_column("q", pa.array([1, 2**64 - 1], pa.uint64()))
    with pytest.raises(rfm_fast.RFMError, match=r"'q' has 18446744073709551615 in row 1"):
        rfm_fast.score(table, customer="customer", timestamp="timestamp", amount="q*amount")


# --------------------------------------------------------------------------- campaign ids


@CASES
@given(ids=st.lists(st.integers(-(2**62), 2**62), min_size=1, max_size=8, unique=True))
def test_campaign_text_ids_with_a_sign_or_spaces_match_integer_orders(ids: list[int]):
    texts = [f" +{i} " if i >= 0 else f"{i} " for i in ids]
    assert matched_keys(pa.array(texts), pa.int64(), "customer").to_pylist() == ids


def test_a_campaign_id_written_plus_4_is_customer_4(tmp_path: Path):
    pq.write_table(orders_table(4), tmp_path / "orders.parquet")
    sends = pa.table(
        {
            "customer": ["+1", "+2", "+3", "+4"],
            "group": ["treatment", "control", "treatment", "control"],
            "sent_at": ["2024-01-03"] * 4,
        }
    )
    pq.write_table(sends, tmp_path / "sends.parquet")
    result = run(
        "campaign", tmp_path / "orders.parquet", "--campaign", tmp_path / "sends.parquet",
        "--days", 5, "-o", tmp_path / "lift.csv",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "this is a bug" not in result.stderr


@CASES
@given(
    id_=st.integers(2**63, 10**22),
    as_text=st.booleans(),
)
def test_a_campaign_id_beyond_int64_is_one_line(tmp_path_factory, id_: int, as_text: bool):
    folder = tmp_path_factory.mktemp("campaign")
    pq.write_table(orders_table(4), folder / "orders.parquet")
    (folder / "sends.csv").write_text(
        "customer,group,sent_at\n"
        + (f'"{id_}"' if as_text else str(id_))
        + ",treatment,2024-01-03\n2,control,2024-01-03\n"
    )
    result = run(
        "campaign", folder / "orders.parquet", "--campaign", folder / "sends.csv",
        "--days", 5, "-o", folder / "lift.csv",
    )  # fmt: skip
    one_line_error(result, "campaign", "row 1")
    only_files(folder, "orders.parquet", "sends.csv")


# --------------------------------------------------------------------------- state files


@pytest.fixture(scope="module")
def saved_state(tmp_path_factory) -> bytes:
    folder = tmp_path_factory.mktemp("state")
    pq.write_table(orders_table(4), folder / "orders.parquet")
    result = run("state", "init", folder / "orders.parquet", "-o", folder / "s.rfmstate")
    assert result.exit_code == 0, result.output
    return (folder / "s.rfmstate").read_bytes()


def _with_version(data: bytes, version: int, rehash: bool) -> bytes:
    """``data`` with another format version; ``rehash``: with the digest a release writing
    that version would write (the digest covers the version since format 3)."""
    header = data[:8] + struct.pack("<I", version) + data[12:20]
    digest = data[20:52]
    if rehash:
        digest = hashlib.sha256(struct.pack("<I", version) + data[12:20] + data[52:]).digest()
    return header + digest + data[52:]


@CASES
@given(version=st.integers(0, 2**32 - 1).filter(lambda v: v != state_file.FORMAT_VERSION))
def test_a_damaged_version_field_is_damage_not_a_newer_release(
    tmp_path_factory, saved_state: bytes, version: int
):
    folder = tmp_path_factory.mktemp("damaged")
    (folder / "s.rfmstate").write_bytes(_with_version(saved_state, version, rehash=False))
    line = one_line_error(run("state", "info", folder / "s.rfmstate"), "damaged")
    assert "newer" not in line.replace("not written by a newer release", "")
    only_files(folder, "s.rfmstate")


@CASES
@given(version=st.integers(state_file.FORMAT_VERSION + 1, 2**32 - 1))
def test_a_newer_format_says_upgrade(tmp_path_factory, saved_state: bytes, version: int):
    folder = tmp_path_factory.mktemp("newer")
    (folder / "s.rfmstate").write_bytes(_with_version(saved_state, version, rehash=True))
    one_line_error(run("state", "info", folder / "s.rfmstate"), f"format {version}", "upgrade")


def test_a_format_2_state_is_still_read(tmp_path: Path, saved_state: bytes):
    """Format 2 hashed the payload alone; its files are read as they are."""
    payload = saved_state[52:]
    old = saved_state[:8] + struct.pack("<I", 2) + saved_state[12:20]
    (tmp_path / "s.rfmstate").write_bytes(old + hashlib.sha256(payload).digest() + payload)
    result = run("state", "info", tmp_path / "s.rfmstate")
    assert result.exit_code == 0, result.output
    assert "customers 4" in result.stdout


# --------------------------------------------------------------------------- system errors


@pytest.mark.parametrize(
    "code, words",
    [
        (errno.ENOSPC, "the disk is full"),
        (errno.EDQUOT, "quota"),
        (errno.EROFS, "read-only"),
    ],
)
def test_a_write_that_fails_names_the_system_reason(
    tmp_path: Path, monkeypatch, code: int, words: str
):
    pq.write_table(orders_table(), tmp_path / "orders.parquet")

    def refuse(*args):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "replace", refuse)
    line = one_line_error(
        run("score", tmp_path / "orders.parquet", "-o", tmp_path / "out.csv"), "out.csv", words
    )
    assert "permission denied" not in line.lower()
    only_files(tmp_path, "orders.parquet")


@pytest.mark.parametrize("output", ["out.csv", "s.rfmstate"])
def test_a_read_only_folder_is_not_permission_denied(tmp_path: Path, monkeypatch, output: str):
    pq.write_table(orders_table(), tmp_path / "orders.parquet")
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: False)
    monkeypatch.setattr(os, "statvfs", lambda path: os.statvfs_result((0,) * 8 + (os.ST_RDONLY, 0)))
    command = ["score"] if output == "out.csv" else ["state", "init"]
    result = run(*command, tmp_path / "orders.parquet", "-o", tmp_path / output)
    line = one_line_error(result, "read-only")
    assert "permission denied" not in line
    only_files(tmp_path, "orders.parquet")


def test_a_system_error_the_library_did_not_foresee_is_not_a_bug(tmp_path: Path, monkeypatch):
    pq.write_table(orders_table(), tmp_path / "orders.parquet")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x"))

    monkeypatch.setattr(rfm_fast, "score", full)
    result = run("score", tmp_path / "orders.parquet", "-o", tmp_path / "out.csv")
    one_line_error(result, "the disk is full", str(tmp_path / "x"))
    only_files(tmp_path, "orders.parquet")


# --------------------------------------------------------------------------- long integer ids


@CASES
@given(ids=st.lists(st.integers(2**63, 10**20 - 1), min_size=1, max_size=4, unique=True))
def test_a_20_digit_csv_id_is_read_as_text_exactly(tmp_path_factory, ids: list[int]):
    """Ids beyond int64 in a CSV file are text ids (docs/semantics.md, "Customer ids in text
    files"): each kept exactly, none merged, no error and no --schema needed."""
    folder = tmp_path_factory.mktemp("ids")
    rows = "".join(f"{i},2024-01-0{n + 1},5\n" for n, i in enumerate(ids))
    (folder / "o.csv").write_text("CustomerID,timestamp,amount\n1,2024-01-05,3\n" + rows)
    args = ["score", folder / "o.csv", "--customer", "CustomerID", "-o", folder / "out.csv"]
    result = run(*args)
    assert result.exit_code == 0, result.output
    scored = pa_csv.read_csv(
        folder / "out.csv",
        convert_options=pa_csv.ConvertOptions(column_types={"CustomerID": pa.string()}),
    )
    assert set(scored.column("CustomerID").to_pylist()) == {"1", *map(str, ids)}


# --------------------------------------------------------------------------- timestamps


@CASES
@given(
    days=st.lists(st.integers(0, 3000), min_size=1, max_size=6),
    at=st.integers(0, 5),
    before=st.sampled_from(["", " ", "  ", "\t"]),
    after=st.sampled_from(["", " ", "\t"]),
)
def test_whitespace_around_a_timestamp_is_named_as_such(
    tmp_path_factory, days: list[int], at: int, before: str, after: str
):
    if not before and not after:
        before = " "
    folder = tmp_path_factory.mktemp("ts")
    stamps = [str(dt.datetime(2020, 1, 1, 8) + dt.timedelta(days=d)) for d in days]
    at %= len(stamps)
    stamps[at] = before + stamps[at] + after
    customers = list(range(len(stamps)))
    table = pa.table({"customer": customers, "timestamp": stamps, "amount": [1.0] * len(stamps)})
    pq.write_table(table, folder / "o.parquet")
    line = one_line_error(
        run("score", folder / "o.parquet", "-o", folder / "out.csv"), "whitespace"
    )
    assert "zone offset" not in line
    assert repr(stamps[at]) in line
    if before and not after:  # the format it suggests reads the column
        assert "--timestamp-format '%Y-%m-%d %H:%M:%S'" in line
        result = run(
            "score", folder / "o.parquet", "--timestamp-format", "%Y-%m-%d %H:%M:%S",
            "-o", folder / "out.csv",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    else:
        assert "remove the spaces" in line
        only_files(folder, "o.parquet")


def test_mixed_offsets_are_still_named_as_mixed(tmp_path: Path):
    stamps = ["2024-01-01 10:00:00+01:00", "2024-01-02 10:00:00"]
    table = pa.table({"customer": [1, 2], "timestamp": stamps, "amount": [1.0, 2.0]})
    pq.write_table(table, tmp_path / "o.parquet")
    one_line_error(run("score", tmp_path / "o.parquet", "-o", tmp_path / "o.csv"), "zone offset")
    only_files(tmp_path, "o.parquet")


# --------------------------------------------------------------------------- --where

LONG = 100_000

SHAPES = {
    "spaces, then": lambda c: " " * LONG + c,
    "comparisons, then": lambda c: "R >= 4 and " * (LONG // 11) + c,
    "repeated": lambda c: c * LONG,
    "R, whitespace, >= 4 x": lambda c: "R" + c * LONG + ">= 4 x",
}
LONG_CONDITIONS = st.one_of(
    st.tuples(st.just("spaces, then"), st.sampled_from(["x", "and", "R>=4 and", ""])),
    st.tuples(st.just("comparisons, then"), st.sampled_from(["Q", "R >", "and"])),
    st.tuples(st.just("repeated"), st.sampled_from(["a", "1", "=", " and", "and "])),
    st.tuples(st.just("R, whitespace, >= 4 x"), st.sampled_from([" ", "\t", "\n"])),
)
"""Conditions of about 100,000 characters that do not parse (a shape and what it repeats or
ends with, so that Hypothesis reports them briefly): long runs of spaces (which a
splitting regular expression backtracks over), many comparisons, one long word."""


@settings(max_examples=20, deadline=None)
@given(shape=LONG_CONDITIONS)
def test_a_long_condition_is_parsed_in_one_pass_and_quoted_short(shape: tuple[str, str]):
    text = SHAPES[shape[0]](shape[1])
    with pytest.raises(rfm_fast.RFMError) as raised:
        parse_condition(text)
    message = str(raised.value)
    assert len(message) < 600 and "\n" not in message
    assert f"({len(text):,} characters)" in message


def test_a_long_condition_that_holds_is_parsed_whole():
    comparisons = parse_condition("R >= 1   AND\tF >= 1 and " * 5_000 + "M <= 5")
    assert len(comparisons) == 10_001
    assert {c.name for c in comparisons} == {"R", "F", "M"}


@settings(max_examples=5, deadline=None)
@given(shape=LONG_CONDITIONS)
def test_export_quotes_an_excerpt_of_a_long_condition(tmp_path_factory, shape: tuple[str, str]):
    text = SHAPES[shape[0]](shape[1])
    folder = tmp_path_factory.mktemp("where")
    pq.write_table(orders_table(), folder / "o.parquet")
    result = run("export", folder / "o.parquet", "--where", text, "-o", folder / "out.csv")
    line = one_line_error(result, "characters)")
    assert len(line) < 600
    only_files(folder, "o.parquet")


@pytest.mark.parametrize("option", ["--segment", "--sort-by"])
def test_export_quotes_an_excerpt_of_a_long_name(tmp_path: Path, option: str):
    pq.write_table(orders_table(), tmp_path / "o.parquet")
    result = run("export", tmp_path / "o.parquet", option, "y" * LONG, "-o", tmp_path / "o.csv")
    line = one_line_error(result, "characters)")
    assert len(line) < 1000
    only_files(tmp_path, "o.parquet")


def test_no_id_is_lost_between_the_two_messages_of_float_ids():
    """A fraction is still named as a fraction, a huge whole float as a long id."""
    ts = pa.array([dt.datetime(2024, 1, 1)] * 2, pa.timestamp("s"))
    for ids, words in (([1.5, 2.0], "fix that row"), ([2.0**60, 2.0], "schema='c=string'")):
        table = pa.table({"c": np.array(ids), "t": ts, "a": [1.0, 2.0]})
        with pytest.raises(rfm_fast.RFMError, match=words):
            rfm_fast.score(table, customer="c", timestamp="t", amount="a")


# --------------------------------------------------------------------------- found by the sweep


@CASES
@given(
    option=st.sampled_from(["--segments", "-o"]),
    before=st.text(alphabet="abc_.", max_size=5),
    after=st.sampled_from([".csv", "x.csv", ".parquet"]),
)
def test_a_path_with_a_nul_character_is_one_line(
    tmp_path_factory, option: str, before: str, after: str
):
    """``os`` refuses such a path with a ValueError, which the command line used to call a bug
    (found by fuzzing every option of every command)."""
    folder = tmp_path_factory.mktemp("nul")
    pq.write_table(orders_table(), folder / "o.parquet")
    args = ["score", folder / "o.parquet", option, f"{folder}/{before}\x00{after}"]
    if option != "-o":
        args += ["-o", folder / "out.csv"]
    one_line_error(run(*args), "NUL character")
    only_files(folder, "o.parquet")


@CASES
@given(digits=st.integers(61, 10_000))
def test_a_huge_window_is_refused_without_writing_it_out(digits: int):
    """An int of over 4,300 digits cannot be converted to text (Python's limit): the message
    must not try, and must stay short for any size."""
    with pytest.raises(rfm_fast.RFMError, match="beyond 10\\*\\*60") as raised:
        rfm_fast.core.options.check_window(10 ** (digits - 1))
    assert len(str(raised.value)) < 200


def test_a_long_window_option_is_quoted_short(tmp_path: Path):
    pq.write_table(orders_table(), tmp_path / "o.parquet")
    result = run("score", tmp_path / "o.parquet", "--window", "1" * 400, "-o", tmp_path / "o.csv")
    line = one_line_error(result, "window must be", "10**60")
    assert len(line) < 300
    only_files(tmp_path, "o.parquet")
