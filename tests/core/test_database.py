"""Databases as source and sink (rfm_fast.Database): SQLite in a temporary file, and PostgreSQL
at ``RFM_TEST_POSTGRES_URI`` (``.ci/postgres start`` starts one; CI sets it). Without that
variable the PostgreSQL tests skip, unless ``RFM_REQUIRE_ENGINES=1`` (CI), where they fail.

Scores from a table or a query equal those of the same rows as an Arrow table; the rows arrive
in batches; an output table is replaced inside one transaction; the password never shows."""

from __future__ import annotations

import os
import re
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest
from helpers import RETAIL_OPTIONS, RETAIL_SLICE, assert_same_result, order_lines, require
from rfm_fast_cli.main import app
from typer.testing import CliRunner

import rfm_fast
from rfm_fast.core.database import (
    Database,
    database_input,
    quoted,
    redacted,
    replace_tables,
    scrubbed,
)
from rfm_fast.core.io import open_source

require("adbc_driver_manager")
sqlite_dbapi = require("adbc_driver_sqlite.dbapi")

POSTGRES_URI = os.environ.get("RFM_TEST_POSTGRES_URI")
ORDERS = {"customer": "customer", "timestamp": "ordered_at", "amount": "amount"}
runner = CliRunner()


class Backend:
    """A database to test against: its URI, a fresh place for tables (a schema of its own in
    PostgreSQL, a file for SQLite), and a second connection for what others see."""

    def __init__(self, kind: str, uri: str, prefix: str) -> None:
        self.kind, self.uri, self.prefix = kind, uri, prefix

    def name(self, table: str) -> str:
        return f"{self.prefix}{table}"

    def connect(self):
        if self.kind == "sqlite":
            return sqlite_dbapi.connect(self.uri.removeprefix("sqlite:"))
        return require("adbc_driver_postgresql.dbapi").connect(self.uri)

    def rows(self, table: str) -> int:
        with self.connect() as connection, connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {quoted(self.name(table))}")
            return int(cursor.fetchone()[0])

    def load(self, table: str, data: pa.Table) -> Database:
        target = Database(self.uri, table=self.name(table))
        replace_tables([(target, data)])
        return target

    def query(self, sql: str) -> Database:
        return Database(self.uri, query=sql.replace("{prefix}", self.prefix))


def _postgres() -> Iterator[Backend]:
    """A schema of its own in the server at RFM_TEST_POSTGRES_URI, dropped after the test."""
    if POSTGRES_URI is None:
        if os.environ.get("RFM_REQUIRE_ENGINES") == "1":
            raise RuntimeError("RFM_REQUIRE_ENGINES=1, but RFM_TEST_POSTGRES_URI is not set")
        pytest.skip("no PostgreSQL server: set RFM_TEST_POSTGRES_URI (.ci/postgres start DIR)")
    pg = require("adbc_driver_postgresql.dbapi")
    schema = f"rfm_test_{secrets.token_hex(4)}"
    with pg.connect(POSTGRES_URI) as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA {schema}")
        connection.commit()
    yield Backend("postgres", POSTGRES_URI, f"{schema}.")
    with pg.connect(POSTGRES_URI) as connection, connection.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA {schema} CASCADE")
        connection.commit()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite", f"sqlite:{tmp_path / 'shop.db'}", "")
    else:
        yield from _postgres()


@pytest.fixture
def postgres() -> Iterator[Backend]:
    yield from _postgres()


def _retail() -> pa.Table:
    return pa_csv.read_csv(RETAIL_SLICE)


# --------------------------------------------------------------------------- reading


def test_scores_from_a_table_and_a_query_equal_those_of_the_arrow_table(backend: Backend):
    lines = order_lines()
    table = backend.load("orders", lines)
    options = {**ORDERS, "order": "order_id"}
    expected = rfm_fast.score(lines, **options)
    assert_same_result(rfm_fast.score(table, **options), expected)
    query = backend.query(
        'SELECT order_id, customer, ordered_at, amount FROM {prefix}"orders" ORDER BY amount'
    )
    assert_same_result(rfm_fast.score(query, **options), expected)
    # rows, not distinct orders: every row a purchase
    assert_same_result(rfm_fast.score(table, **ORDERS), rfm_fast.score(lines, **ORDERS))


def test_a_table_is_read_in_batches_of_the_columns_asked_for(backend: Backend):
    table = backend.load("orders", order_lines(rows=5_000))
    source = open_source(table, batch_rows=1_000)
    assert source.column_names == ["customer", "ordered_at", "amount", "order_id"]
    assert source.total_rows is None and "orders" in source.name
    schema, batches = source.open(["amount", "customer"])
    sizes = [batch.num_rows for batch in batches]
    assert schema.names == ["amount", "customer"]
    assert (
        len(sizes) >= 5 and max(sizes) <= 1_000 and sum(sizes) == order_lines(rows=5_000).num_rows
    )


def test_postgres_streams_a_large_query_in_several_batches(postgres: Backend):
    query = postgres.query(
        "SELECT g % 5000 AS customer, timestamp '2024-01-01' + g * interval '1 minute' AS "
        "ordered_at, (g % 97)::numeric(10, 2) AS amount FROM generate_series(1, 300000) g"
    )
    schema, batches = open_source(query, batch_rows=20_000).open(["customer", "amount"])
    assert schema.field("amount").type == pa.decimal128(10, 2)
    sizes = [batch.num_rows for batch in batches]
    assert len(sizes) >= 15 and max(sizes) <= 20_000 and sum(sizes) == 300_000
    result = rfm_fast.score(query, **ORDERS, batch_rows=20_000)
    assert result.stats.rows_read == 300_000 and result.stats.customers == 5_000


def test_postgres_numeric_without_a_scale_is_read_as_float(postgres: Backend):
    postgres.load("orders", order_lines(rows=400))
    query = postgres.query(
        'SELECT customer, ordered_at, amount::numeric AS amount FROM {prefix}"orders"'
    )
    result = rfm_fast.score(query, **ORDERS)
    expected = rfm_fast.score(order_lines(rows=400), **ORDERS)
    assert result.table.column("monetary").to_pylist() == pytest.approx(
        expected.table.column("monetary").to_pylist()
    )


def test_a_database_input_can_be_read_twice(backend: Backend):
    table = backend.load("orders", order_lines(rows=2_000))
    moved = rfm_fast.migrate(table, as_of=("1970-06-01", "1971-06-01"), **ORDERS)
    expected = rfm_fast.migrate(
        order_lines(rows=2_000), as_of=("1970-06-01", "1971-06-01"), **ORDERS
    )
    assert moved.matrix().to_pandas().equals(expected.matrix().to_pandas())  # NaN shares


def test_names_are_quoted_as_identifiers(backend: Backend):
    odd = 'odd "name"; DROP TABLE x'
    lines = order_lines(rows=300).rename_columns([odd, "ordered_at", "amount", "order_id"])
    table = backend.load('we"ird table', lines)
    result = rfm_fast.score(table, customer=odd, timestamp="ordered_at", amount="amount")
    assert result.table.column_names[0] == odd
    assert result.stats.rows_read == lines.num_rows


# --------------------------------------------------------------------------- writing


def test_an_output_table_is_replaced_in_one_transaction(backend: Backend):
    target = Database(backend.uri, table=backend.name("rfm_scores"))
    first = rfm_fast.score(order_lines(rows=1_000), **ORDERS)
    first.write(target)
    assert backend.rows("rfm_scores") == first.stats.customers
    second = rfm_fast.score(order_lines(seed=5, rows=3_000), **ORDERS)
    assert second.stats.customers != first.stats.customers
    seen = []
    replace_tables(
        [(target, second.table)],
        before_commit=lambda db: seen.append(backend.rows("rfm_scores")),
    )
    assert seen == [first.stats.customers]  # another connection: the old table, whole
    assert backend.rows("rfm_scores") == second.stats.customers
    with backend.connect() as connection, connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {quoted(backend.name('rfm_scores'))}")
        written = cursor.fetch_arrow_table()
    assert written.column_names == second.table.column_names
    assert written.column("segment").to_pylist() == second.table.column("segment").to_pylist()


def test_an_output_with_other_columns_replaces_the_table(backend: Backend):
    target = Database(backend.uri, table=backend.name("out"))
    replace_tables([(target, pa.table({"a": [1, 2, 3]}))])
    replace_tables([(target, pa.table({"b": ["x"], "c": [1.5]}))])
    with backend.connect() as connection, connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {quoted(backend.name('out'))}")
        assert cursor.fetch_arrow_table().to_pydict() == {"b": ["x"], "c": [1.5]}


UNWRITABLE = {"sqlite": "sqlite_changes", "postgres": "no_such_schema.changes"}
"""A table that cannot be made: under a name SQLite keeps for its own tables (SQLite has no
schemas), or in a PostgreSQL schema that does not exist."""


def test_a_failed_write_leaves_every_table_of_the_database_as_it_was(backend: Backend):
    scores = Database(backend.uri, table=backend.name("scores"))
    changes = Database(backend.uri, table=backend.name("changes"))
    replace_tables([(scores, pa.table({"a": [1, 2]})), (changes, pa.table({"a": [1]}))])
    bad = UNWRITABLE[backend.kind]
    nowhere = Database(backend.uri, table=bad)
    with pytest.raises(rfm_fast.RFMError, match=f"cannot write table {re.escape(bad)}"):
        replace_tables([(scores, pa.table({"a": [7, 8, 9]})), (nowhere, pa.table({"a": [1]}))])
    assert backend.rows("scores") == 2 and backend.rows("changes") == 1


# --------------------------------------------------------------------------- daily state


def test_daily_state_from_a_database_writes_its_tables_with_the_state(
    backend: Backend, tmp_path: Path
):
    retail = _retail()
    orders = backend.load("orders", retail)
    day = "2011-12-01"
    history = backend.query('SELECT * FROM {prefix}"orders" WHERE "InvoiceDate" < ' + f"'{day}'")
    update = backend.query('SELECT * FROM {prefix}"orders" WHERE "InvoiceDate" >= ' + f"'{day}'")
    state = rfm_fast.DailyState.init(history, **RETAIL_OPTIONS)
    path = tmp_path / "retail.rfmstate"
    state.save(path)
    done = state.update(update)
    outputs = {
        Database(backend.uri, table=backend.name("rfm_scores")): done.result.table,
        Database(backend.uri, table=backend.name("rfm_changes")): done.changes,
    }
    state.save(path, outputs=outputs)
    assert backend.rows("rfm_scores") == done.result.stats.customers
    assert backend.rows("rfm_changes") == done.changes.num_rows
    assert state.loads[-1].source == f"query of {redacted(backend.uri)}"
    whole = rfm_fast.score(orders, **RETAIL_OPTIONS, as_of=done.result.stats.as_of)
    assert rfm_fast.DailyState.open(path).score().table.equals(whole.table)
    assert done.result.table.equals(whole.table)
    with pytest.raises(rfm_fast.RFMError, match="applied before"):
        rfm_fast.DailyState.open(path).update(update)


def test_a_table_that_cannot_be_written_leaves_the_state_unchanged(
    backend: Backend, tmp_path: Path
):
    lines = order_lines(rows=1_000)
    state = rfm_fast.DailyState.init(lines.slice(0, 600), **ORDERS)
    path = tmp_path / "s.rfmstate"
    state.save(path)
    before = path.read_bytes()
    done = state.update(lines.slice(600))
    outputs = {
        tmp_path / "scores.csv": done.result.table,
        Database(backend.uri, table=UNWRITABLE[backend.kind]): done.changes,
    }
    with pytest.raises(rfm_fast.RFMError, match="cannot write table"):
        state.save(path, outputs=outputs)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.rfmstate"] + (
        ["shop.db"] if backend.kind == "sqlite" else []
    )


# --------------------------------------------------------------------------- credentials


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("postgresql://rfm:pw@db:5432/shop", "postgresql://***@db:5432/shop"),
        ("postgres://rfm@db/shop", "postgres://***@db/shop"),
        ("postgresql://db/shop?user=u&password=pw", "postgresql://db/shop?user=u&password=***"),
        ("postgresql:///shop", "postgresql:///shop"),
        ("sqlite:/data/shop.db", "sqlite:/data/shop.db"),
    ],
)
def test_uris_are_shown_without_credentials(uri: str, shown: str):
    assert redacted(uri) == shown
    assert "pw" not in repr(Database(uri, table="t")) and "pw" not in str(Database(uri, query="q"))


def test_driver_messages_are_scrubbed():
    uri = "postgresql://rfm:p%40ss@db/shop"
    message = "could not parse postgresql://rfm:p%40ss@db/shop: p@ss\nrfm:p%40ss"
    assert scrubbed(message, uri) == "could not parse postgresql://***@db/shop: *** ***"


def test_a_missing_driver_says_which_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "adbc_driver_postgresql.dbapi", None)
    with pytest.raises(rfm_fast.RFMError, match=r"pip install 'rfm_fast\[postgres\]'"):
        open_source(Database("postgresql://rfm:pw@db/shop", table="orders"))


def test_text_inputs():
    assert database_input("orders.csv") == Path("orders.csv")
    with pytest.raises(rfm_fast.RFMError, match="give the rows with --query SQL or --table"):
        database_input("postgresql://u:pw@h/d")
    with pytest.raises(rfm_fast.RFMError, match="must be a database URI"):
        database_input("orders.csv", table="orders")
    with pytest.raises(rfm_fast.RFMError, match="a query or a table, not both"):
        Database("sqlite:x.db", query="SELECT 1", table="t")
    with pytest.raises(rfm_fast.RFMError, match="SQLite has no schemas"):
        Database("sqlite:x.db", table="main.scores")
    assert Database("sqlite:x.db", table='"main.scores"').table == '"main.scores"'


def test_a_sqlite_uri_with_a_host_is_refused_without_its_credentials():
    with pytest.raises(rfm_fast.RFMError) as caught:
        open_source(Database("sqlite://user:s3cret@host/x.db", table="orders"))
    assert "a host has no meaning" in str(caught.value)
    assert "s3cret" not in str(caught.value) and "user" not in str(caught.value)


def _one_line_error(result, *fragments: str, secret: str | None = None) -> str:
    assert result.exit_code == 1, (result.output, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    if secret is not None:
        assert secret not in result.stdout + result.stderr
    return lines[0]


def _password(uri: str) -> str | None:
    from urllib.parse import urlsplit

    return urlsplit(uri).password


def test_errors_are_one_line_without_the_password(backend: Backend):
    backend.load("orders", order_lines(rows=300))
    uri, secret = backend.uri, _password(backend.uri)
    orders = backend.name("orders")
    cols = ["--customer", "customer", "--timestamp", "ordered_at", "--amount", "amount"]

    def run(*args):
        return runner.invoke(app, ["score", *args])

    _one_line_error(run(uri, "--table", backend.name("nope"), *cols), "nope", secret=secret)
    _one_line_error(run(uri, "--query", "SELECT nope FROM nowhere", *cols), "query", secret=secret)
    _one_line_error(
        run(uri, "--table", orders, "--customer", "client", "--timestamp", "ordered_at"),
        "'client' not found",
        secret=secret,
    )
    _one_line_error(run(uri, *cols), "--query SQL or --table NAME", secret=secret)
    _one_line_error(run(uri, "--table", orders, *cols, "-o", uri), "--output-table", secret=secret)
    _one_line_error(
        run(uri, "--table", orders, *cols, "-o", uri, "--output-table", orders),
        "is the input table",
        secret=secret,
    )
    if backend.kind == "postgres":
        wrong = uri.replace(f":{secret}@", ":wrong-password@")
        _one_line_error(
            run(wrong, "--table", orders, *cols), "password authentication failed", secret=secret
        )
        line = _one_line_error(run(wrong, "--table", orders, *cols), "cannot connect")
        assert "wrong-password" not in line
        host, port = uri.rsplit("@", 1)[1].split("/")[0].rsplit(":", 1)
        unreachable = uri.replace(f"{host}:{port}", f"{host}:1")
        _one_line_error(run(unreachable, "--table", orders, *cols), "cannot connect", secret=secret)
    else:
        _one_line_error(run("sqlite:nowhere/x.db", "--table", "t", *cols), "not found")


# --------------------------------------------------------------------------- command line


def test_rfm_score_reads_a_table_or_a_query_and_writes_a_table(backend: Backend, tmp_path: Path):
    backend.load("orders", _retail())
    args = ["--customer", "CustomerID", "--timestamp", "InvoiceDate"]
    args += ["--amount", "Quantity*UnitPrice", "--order", "InvoiceNo"]
    from_file = runner.invoke(
        app, ["score", str(RETAIL_SLICE), *args, "-o", str(tmp_path / "a.parquet")]
    )
    assert from_file.exit_code == 0, from_file.output
    table = backend.name("orders")
    output = ["-o", backend.uri, "--output-table", backend.name("rfm_scores")]
    done = runner.invoke(app, ["score", backend.uri, "--table", table, *args, *output])
    assert done.exit_code == 0, (done.output, done.stderr)
    assert (
        f"wrote 60 customers to table {backend.name('rfm_scores')} of {redacted(backend.uri)}"
        in done.stdout
    )
    secret = _password(backend.uri)
    assert secret is None or secret not in done.stdout
    summary = [line for line in from_file.stdout.splitlines() if line.startswith("rows read")]
    assert summary[0] in done.stdout
    query = f"SELECT * FROM {quoted(table)} WHERE \"Country\" <> 'France'"
    done = runner.invoke(app, ["score", backend.uri, "--query", query, *args])
    assert done.exit_code == 0, (done.output, done.stderr)
    expected = rfm_fast.score(
        _retail().filter(pa.compute.not_equal(_retail().column("Country"), "France")),
        **RETAIL_OPTIONS,
    )
    assert f"customers scored {expected.stats.customers:,};" in done.stdout


def test_rfm_state_from_a_database_to_tables(backend: Backend, tmp_path: Path):
    retail = _retail()
    backend.load("orders", retail)
    table = quoted(backend.name("orders"))
    args = ["--customer", "CustomerID", "--timestamp", "InvoiceDate"]
    args += ["--amount", "Quantity*UnitPrice", "--order", "InvoiceNo"]
    state = str(tmp_path / "retail.rfmstate")
    history = f"SELECT * FROM {table} WHERE \"InvoiceDate\" < '2011-12-01'"
    done = runner.invoke(
        app, ["state", "init", backend.uri, "--query", history, "-o", state, *args]
    )
    assert done.exit_code == 0, (done.output, done.stderr)
    day = f"SELECT * FROM {table} WHERE \"InvoiceDate\" >= '2011-12-01'"
    update = ["state", "update", state, backend.uri, "--query", day]
    update += ["-o", backend.uri, "--output-table", backend.name("scores")]
    update += ["--changes", backend.uri, "--changes-table", backend.name("changes")]
    done = runner.invoke(app, update)
    assert done.exit_code == 0, (done.output, done.stderr)
    assert f"wrote the changes to table {backend.name('changes')}" in done.stdout
    assert backend.rows("scores") == 60
    again = runner.invoke(app, update)
    _one_line_error(again, "applied before", secret=_password(backend.uri))
    info = runner.invoke(app, ["state", "info", state])
    secret = _password(backend.uri)
    assert info.exit_code == 0 and (secret is None or secret not in info.stdout)
    rescored = ["state", "score", state, "--as-of", "2011-12-31"]
    rescored += ["-o", backend.uri, "--output-table", backend.name("later")]
    done = runner.invoke(app, rescored)
    assert done.exit_code == 0, (done.output, done.stderr)
    assert backend.rows("later") == 60


def test_other_commands_read_a_database(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Backend("sqlite", "sqlite:shop.db", "").load("orders", _retail())
    args = ["--customer", "CustomerID", "--timestamp", "InvoiceDate"]
    args += ["--amount", "Quantity*UnitPrice", "--order", "InvoiceNo"]
    for uri in ("sqlite:shop.db", "sqlite:///shop.db", f"sqlite:///{tmp_path}/shop.db"):
        done = runner.invoke(app, ["segments", uri, "--table", "orders", *args])
        assert done.exit_code == 0, (done.output, done.stderr)
        assert "Segments: 60 customers" in done.stdout
    moved = ["migrate", "sqlite:shop.db", "--query", "SELECT * FROM orders", *args]
    done = runner.invoke(app, [*moved, "--as-of", "2011-06-01", "--as-of", "2011-12-01"])
    assert done.exit_code == 0, (done.output, done.stderr)
    assert "Transitions 2011-06-01 00:00:00 -> 2011-12-01 00:00:00" in done.stdout


def test_the_password_can_come_from_the_environment(postgres: Backend, monkeypatch):
    from urllib.parse import urlsplit

    parts = urlsplit(postgres.uri)
    postgres.load("orders", order_lines(rows=300))
    bare = postgres.uri.replace(f"{parts.username}:{parts.password}@", "")
    monkeypatch.setenv("PGUSER", parts.username)
    monkeypatch.setenv("PGPASSWORD", parts.password)
    table = Database(bare, table=postgres.name("orders"))
    assert rfm_fast.score(table, **ORDERS).stats.rows_read == order_lines(rows=300).num_rows
