"""Real inputs that are valid are read, whole: a folder of Parquet files in Hive-style
subfolders (with its partition columns), a database query or table with no rows (an empty load,
whatever types the driver guesses), and text timestamps that mix offsets and naive values are
refused with one message however they fall into batches."""

from __future__ import annotations

import datetime as dt
import sqlite3
import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from helpers import assert_same_result
from hypothesis import given, settings
from hypothesis import strategies as st
from rfm_fast_cli.main import app
from typer.testing import CliRunner

import rfm_fast
from rfm_fast import DailyState, Database, RFMError
from rfm_fast.core.io import open_source

COLUMNS = {"customer": "customer", "timestamp": "ts", "amount": "amount"}


def quietly(run, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rfm_fast.RFMWarning)  # empty loads warn
        return run(*args, **kwargs)


def part(rows: list[tuple[int, int, int]], customer: pa.DataType, amount: pa.DataType) -> pa.Table:
    """(customer, hour of 2024, cents) rows, with the customer and amount types given."""
    customers, hours, cents = zip(*rows, strict=True) if rows else ([], [], [])
    start = dt.datetime(2024, 1, 1)
    values = [c / 100 for c in cents] if pa.types.is_floating(amount) else list(cents)
    return pa.table(
        {
            "customer": pa.array(customers, customer),
            "ts": pa.array([start + dt.timedelta(hours=h) for h in hours], pa.timestamp("us")),
            "amount": pa.array(values, amount),
        }
    )


ROWS = st.lists(
    st.tuples(st.integers(1, 9), st.integers(0, 24 * 365), st.integers(-500, 9_000)), max_size=20
)
LAYOUT = st.lists(  # a partition: its (year, month) folder and its files' rows
    st.tuples(
        st.integers(2020, 2024),
        st.integers(1, 12),
        st.lists(
            st.tuples(ROWS.filter(bool), st.sampled_from([pa.int32(), pa.int64()])),
            min_size=1,
            max_size=3,
        ),
    ),
    min_size=1,
    max_size=5,
    unique_by=lambda p: p[:2],
)


@settings(max_examples=25)
@given(layout=LAYOUT, float_amounts=st.booleans())
def test_a_hive_folder_is_read_whole_with_its_partition_columns(
    layout, float_amounts: bool, tmp_path_factory
):
    folder = tmp_path_factory.mktemp("lake") / "orders"
    amount = pa.float64() if float_amounts else pa.int64()
    whole, expected_keys = [], []
    widest = pa.int64() if any(t == pa.int64() for *_, f in layout for _, t in f) else pa.int32()
    for year, month, files in layout:
        where = folder / f"year={year}" / f"month={month:02d}"
        where.mkdir(parents=True)
        for k, (rows, customer) in enumerate(files):
            table = part(rows, customer, amount)
            pq.write_table(table, where / f"part-{k}.parquet")
            whole.append(table.cast(part([], widest, amount).schema))  # as unified
            expected_keys += [(year, month, c) for c, _, _ in rows]
    (folder / "_SUCCESS").touch()  # (as Spark writes it: not data)
    one_file = folder.parent / "all.parquet"
    pq.write_table(pa.concat_tables(whole), one_file)

    from_folder = quietly(rfm_fast.score, folder, **COLUMNS)
    assert_same_result(from_folder, quietly(rfm_fast.score, one_file, **COLUMNS))

    source = open_source(folder)
    assert {"year", "month"} <= set(source.column_names)
    _, batches = source.open(["year", "month", "customer"])
    got = [row for b in batches for row in zip(*b.to_pydict().values(), strict=True)]
    assert sorted(got) == sorted(expected_keys)


def test_a_hive_folder_with_types_that_widen_is_read_as_one(tmp_path: Path):
    folder = tmp_path / "orders"
    (folder / "day=1").mkdir(parents=True)
    (folder / "day=2").mkdir()
    pq.write_table(part([(1, 1, 150)], pa.int32(), pa.int64()), folder / "day=1" / "a.parquet")
    pq.write_table(part([(2, 30, 275)], pa.int64(), pa.float64()), folder / "day=2" / "b.parquet")
    result = rfm_fast.score(folder, **COLUMNS, bins=2, segments=None)
    assert result.table.column("monetary").to_pylist() == [150.0, 2.75]
    assert result.table.schema.field("customer").type == pa.int64()


def refusal(folder: Path, *fragments: str) -> None:
    with pytest.raises(RFMError) as refused:
        rfm_fast.score(folder, **COLUMNS)
    message = str(refused.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_hive_folders_that_cannot_be_read_whole_are_refused(tmp_path: Path):
    good = part([(1, 1, 100)], pa.int64(), pa.float64())

    mixed = tmp_path / "mixed"
    (mixed / "day=1").mkdir(parents=True)
    (mixed / "day=2").mkdir()
    pq.write_table(good, mixed / "day=1" / "a.parquet")
    pa_csv.write_csv(good, mixed / "day=2" / "b.csv")
    refusal(mixed, "day=2/b.csv is not Parquet")

    clash = tmp_path / "clash"
    (clash / "day=1").mkdir(parents=True)
    (clash / "day=2").mkdir()
    pq.write_table(good, clash / "day=1" / "a.parquet")
    text_ids = good.set_column(0, "customer", pa.array(["x"]))
    pq.write_table(text_ids, clash / "day=2" / "b.parquet")
    refusal(clash, "day=2/b.parquet in input folder", "cast them to one type")

    missing = tmp_path / "missing"
    (missing / "day=1").mkdir(parents=True)
    (missing / "day=2").mkdir()
    pq.write_table(good, missing / "day=1" / "a.parquet")
    pq.write_table(good.drop_columns(["amount"]), missing / "day=2" / "b.parquet")
    refusal(missing, "day=2/b.parquet in input folder", "has no column 'amount'")

    delta = tmp_path / "delta"
    (delta / "_delta_log").mkdir(parents=True)
    (delta / "day=1").mkdir()
    pq.write_table(good, delta / "day=1" / "a.parquet")
    refusal(delta, "is a Delta Lake table")


def test_linked_partitions_are_read_once(tmp_path: Path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    pq.write_table(part([(2, 5, 300)], pa.int64(), pa.float64()), elsewhere / "b.parquet")
    folder = tmp_path / "orders"
    (folder / "day=1").mkdir(parents=True)
    pq.write_table(part([(1, 1, 100)], pa.int64(), pa.float64()), folder / "day=1" / "a.parquet")
    (folder / "day=2").symlink_to(elsewhere, target_is_directory=True)
    result = rfm_fast.score(folder, **COLUMNS, bins=2, segments=None)
    assert result.table.column("monetary").to_pylist() == [1.0, 3.0]

    (folder / "day=3").symlink_to(elsewhere, target_is_directory=True)  # the same rows again
    refusal(folder, "twice", "remove the link")
    (folder / "day=3").unlink()
    (folder / "day=2" / "loop").symlink_to(folder, target_is_directory=True)
    refusal(folder, "twice", "remove the link")


def test_a_refused_folder_is_one_line_and_exit_code_1(tmp_path: Path):
    folder = tmp_path / "orders"
    (folder / "day=1").mkdir(parents=True)
    pa_csv.write_csv(part([(1, 1, 100)], pa.int64(), pa.float64()), folder / "day=1" / "a.csv")
    args = ["score", str(folder), *(f"--{k}={v}" for k, v in COLUMNS.items()), "--no-progress"]
    result = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "out.csv")])
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert not (tmp_path / "out.csv").exists()


# --------------------------------------------------------------------------- empty results


@pytest.fixture
def shop(tmp_path: Path) -> str:
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE orders (customer TEXT, ts TEXT, amount REAL)")
        connection.execute("CREATE TABLE no_orders (customer TEXT, ts TEXT, amount REAL)")
        connection.executemany(
            "INSERT INTO orders VALUES (?, ?, ?)",
            [("a", "2024-01-01 10:00:00", 10.5), ("b", "2024-01-02 11:00:00", 3.0)],
        )
    connection.close()
    return f"sqlite:{path}"


EMPTY_INPUTS = [
    {"query": "SELECT * FROM orders WHERE 0"},
    {"query": "SELECT customer, ts, amount FROM orders WHERE customer = 'nobody'"},
    {"table": "no_orders"},
]


@pytest.mark.parametrize("window", [None, 30], ids=["totals", "window"])
@pytest.mark.parametrize("empty", EMPTY_INPUTS, ids=["where 0", "no match", "empty table"])
def test_an_empty_query_or_table_is_an_empty_load(shop: str, empty: dict, window: int | None):
    state = DailyState.init(
        Database(shop, table="orders"), **COLUMNS, window=window, bins=2, segments=None
    )
    before = state.score().table

    update = quietly(state.update, Database(shop, **empty))

    assert update.load.rows_read == 0
    assert len(state.loads) == 2
    assert state.score().table.equals(before)
    assert quietly(state.update, Database(shop, **empty)).load.rows_read == 0  # never refused


def test_rfm_state_update_records_an_empty_query(shop: str, tmp_path: Path):
    state = tmp_path / "s.rfmstate"
    options = [f"--{k}={v}" for k, v in COLUMNS.items()] + ["--no-progress"]
    runner = CliRunner()
    init = runner.invoke(
        app, ["state", "init", shop, "--table", "orders", "-o", str(state), *options]
    )
    assert init.exit_code == 0, init.output
    query = "SELECT * FROM orders WHERE 0"
    update = runner.invoke(app, ["state", "update", str(state), shop, "--query", query])
    assert update.exit_code == 0, update.output
    assert [load.rows_read for load in DailyState.open(state).loads] == [2, 0]


# --------------------------------------------------------------------------- mixed offsets


MIXED = (
    "cannot read timestamp column 'ts' as ISO-8601 (such as 2011-03-15 14:30): some values "
    "carry a zone offset (such as +01:00) and some do not"
)


@settings(max_examples=30)
@given(
    zoned=st.lists(st.booleans(), min_size=2, max_size=30).filter(lambda z: len(set(z)) == 2),
    batch_rows=st.integers(1, 31),
    window=st.sampled_from([None, 30]),
    nulls=st.integers(0, 4),
)
def test_mixed_offsets_are_refused_alike_in_one_batch_or_several(
    zoned: list[bool], batch_rows: int, window: int | None, nulls: int, tmp_path_factory
):
    lines = ["customer,ts,amount"] + [f"{i},,1.0" for i in range(nulls)]  # no timestamp first
    for i, offset in enumerate(zoned):
        lines.append(f"{i % 4},2024-03-{1 + i:02d} 10:00:00{'+01:00' if offset else ''},1.5")
    path = tmp_path_factory.mktemp("csv") / "orders.csv"
    path.write_text("\n".join(lines) + "\n")

    with pytest.raises(RFMError) as refused:
        quietly(rfm_fast.score, path, **COLUMNS, batch_rows=batch_rows)
    assert MIXED in str(refused.value)
    with pytest.raises(RFMError) as refused:
        quietly(DailyState.init, path, **COLUMNS, window=window, batch_rows=batch_rows)
    assert MIXED in str(refused.value)


@pytest.mark.parametrize(
    ("first", "later"),
    [
        ("2024-03-01 10:00:00", "2024-03-02 10:00:00+01:00"),
        ("2024-03-01 10:00:00+01:00", "2024-03-02 10:00:00"),
        ("2024-03-01", "2024-03-02 10:00:00+01:00"),
    ],
    ids=["naive then offsets", "offsets then naive", "dates then offsets"],
)
def test_mixed_offsets_in_later_csv_blocks_are_refused_alike(
    first: str, later: str, tmp_path: Path, monkeypatch
):
    """The CSV reader infers the column's type from its first block (16 MB); blocks of 200
    bytes here, so that the values of the other kind come blocks later."""
    blocks = pa_csv.ReadOptions

    def small_blocks(**options):
        return blocks(**{**options, "block_size": 200})

    monkeypatch.setattr(pa_csv, "ReadOptions", small_blocks)
    path = tmp_path / "orders.csv"
    rows = [f"{i % 7},{first},1.5" for i in range(200)] + [f"1,{later},2.5"]
    path.write_text("customer,ts,amount\n" + "\n".join(rows) + "\n")
    with pytest.raises(RFMError) as refused:
        quietly(rfm_fast.score, path, **COLUMNS)
    assert MIXED in str(refused.value)
    with pytest.raises(RFMError) as refused:
        quietly(DailyState.init, path, **COLUMNS, window=30)
    assert MIXED in str(refused.value)


def test_offsets_after_batches_without_timestamps_are_read():
    table = pa.table(
        {
            "customer": [0, 1, 2, 3, 1],
            "ts": pa.array([None] * 4 + ["2024-03-01 10:00:00+01:00"], pa.string()),
            "amount": [1.0, 1.0, 1.0, 1.0, 2.5],
        }
    )
    result = quietly(rfm_fast.score, table, **COLUMNS, batch_rows=2)
    last = result.table.column("last_purchase")
    assert last.type == pa.timestamp("us", tz="UTC")
    assert last.to_pylist() == [dt.datetime(2024, 3, 1, 9, tzinfo=dt.UTC)]
    state = quietly(DailyState.init, table, **COLUMNS, window=30, batch_rows=2)
    assert state.info()["rows_used"] == 1
