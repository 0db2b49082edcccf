"""Hostile: no credential in any output (issue 24, item 5).

Passwords are generated around a sentinel, with the characters that break naive parsing
(``@ : / ? # % & = ; ' "``, spaces, non-ASCII), written as they are or percent-encoded, in
URIs of every scheme (known or not), in query strings and in libpq keyword strings; the sentinel
must never appear in an exception, in what a command prints, or in a file it writes.
PostgreSQL runs at ``RFM_TEST_POSTGRES_URI`` (``.ci/postgres start DIR``); those tests skip
without it.
"""

from __future__ import annotations

import io
import os
import re
import sqlite3
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from helpers import order_lines, require
from hypothesis import given, settings
from hypothesis import strategies as st
from rfm_fast_cli.console import PlainConsole
from rfm_fast_cli.main import app
from rich.table import Table
from typer.testing import CliRunner

import rfm_fast
from rfm_fast.core.database import (
    Database,
    database_input,
    database_output,
    redacted,
    replace_tables,
    scrubbed,
)
from rfm_fast.credentials import scrub

require("adbc_driver_manager")
require("adbc_driver_sqlite.dbapi")

POSTGRES_URI = os.environ.get("RFM_TEST_POSTGRES_URI")
SENTINEL = "Zq9sentinelX"
HOST = "127.0.0.1:1"
"""Where the generated URIs point: a port where nothing listens (refused at once, no DNS)."""
COLUMNS = ["--customer", "customer", "--timestamp", "ordered_at", "--amount", "amount"]
ORDERS = order_lines(rows=300)
runner = CliRunner()

SPECIAL = "@:/?#%&=;'\"{}[] \\+ü€"
passwords = st.builds(
    lambda before, after: before + SENTINEL + after,
    st.text(alphabet=SPECIAL + "ab1", max_size=6),
    st.text(alphabet=SPECIAL + "ab1", max_size=6),
)
"""Passwords with the sentinel inside, among the characters that end or split URI parts."""
plain_passwords = passwords.filter(lambda p: not any(c.isspace() for c in p))
"""What a URI can hold unencoded (a URI has no spaces)."""
schemes = st.one_of(
    st.sampled_from(
        [
            "postgresql",
            "postgres",
            "sqlite",
            "mysql",
            "postgresql+psycopg2",
            "mssql+pyodbc",
            "jdbc:postgresql",
        ]
    ),
    st.from_regex(r"\A[a-z][a-z0-9+.\-]{0,10}\Z"),
)
users = st.text(alphabet="abcxyz_.-1", min_size=1, max_size=8)


def _keyword_value(password: str) -> str:
    """A libpq keyword value: in single quotes, with quotes and backslashes escaped."""
    return "'" + password.replace("\\", "\\\\").replace("'", "\\'") + "'"


@st.composite
def uris(draw) -> str:
    """A database address with the sentinel password in it, in one of the common forms."""
    scheme, user = draw(schemes), draw(users)
    form = draw(st.sampled_from(["raw", "encoded", "query", "keywords", "keywords plain"]))
    if form == "raw":
        return f"{scheme}://{user}:{draw(plain_passwords)}@{HOST}/shop"
    password = draw(passwords)
    encoded = quote(password, safe="")
    if form == "encoded":
        return f"{scheme}://{user}:{encoded}@{HOST}/shop"
    if form == "query":
        key = draw(st.sampled_from(["password", "PASSWORD", "sslpassword", "pwd"]))
        return f"{scheme}://{HOST}/shop?user={user}&{key}={encoded}&sslmode=require"
    if form == "keywords":
        return f"host=db.example.com user={user} password={_keyword_value(password)} dbname=shop"
    plain = draw(plain_passwords).replace("'", "").lstrip("{")
    return f"host=db.example.com port=5432 password = {plain} dbname=shop"


def _flat(text: str) -> str:
    """``text`` without spaces and table rules: a cell folded over lines is one string again."""
    return re.sub(r"[\s│┃|]", "", text)


def _hidden(*texts: str) -> None:
    for text in texts:
        assert SENTINEL not in _flat(text), text


# --------------------------------------------------------------------------- messages


@given(uri=uris(), words=st.text(max_size=20))
def test_scrub_hides_every_generated_password(uri, words):
    _hidden(scrub(f"{words} {uri} {words}"), scrub(repr(uri)), scrub(f"({uri})"))


@given(uri=uris())
def test_scrub_is_idempotent_and_keeps_what_holds_no_secret(uri):
    once = scrub(uri)
    assert scrub(once) == once
    assert scrub("sqlite:///data/shop.db and orders.csv") == "sqlite:///data/shop.db and orders.csv"


@given(user=users, password=plain_passwords, encode=st.booleans())
def test_a_known_uri_is_shown_without_its_password(user, password, encode):
    written = quote(password, safe="") if encode else password
    uri = f"postgresql://{user}:{written}@db.example.com:5432/shop"
    db = Database(uri, table="orders")
    _hidden(redacted(uri), repr(db), str(db), db.name)
    message = f"could not connect: {uri} ({password}, {written})"
    _hidden(scrubbed(message, uri))


@settings(max_examples=40)
@given(uri=uris())
def test_library_errors_never_hold_the_password(uri):
    calls = [
        lambda: database_input(uri, table="orders"),
        lambda: database_output(uri, "scores", "--output-table"),
        lambda: rfm_fast.score(uri, customer="c", timestamp="t", amount="a"),
        lambda: rfm_fast.score(Path(uri), customer="c", timestamp="t", amount="a"),
        lambda: rfm_fast.DailyState.open(uri),
    ]
    for call in calls:
        try:
            taken = call()  # a database input or output of a known scheme: not connected here
        except rfm_fast.RFMError as exc:
            _hidden(str(exc), repr(exc))
        else:
            assert isinstance(taken, Database)
            _hidden(repr(taken), str(taken))


def test_the_console_hides_passwords_in_text_and_table_cells():
    sink = io.StringIO()
    console = PlainConsole(file=sink, width=200)
    secret = f"mysql://u:{SENTINEL}@db/shop"
    console.print(f"source {secret}")
    table = Table()
    table.add_column("source")
    table.add_row(f"host=db password={SENTINEL}")
    console.print(table)
    _hidden(sink.getvalue())
    assert "mysql://***@db/shop" in sink.getvalue()


# --------------------------------------------------------------------------- the command line


def _failed(result) -> str:
    assert result.exit_code == 1, (result.output, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    _hidden(result.stdout, result.stderr)
    return lines[0]


@settings(max_examples=30)
@given(uri=uris(), where=st.sampled_from(["input", "output", "changes", "state output"]))
def test_commands_refuse_a_uri_without_showing_its_password(uri, where, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    orders = folder / "orders.parquet"
    ORDERS.to_pandas().to_parquet(orders)
    state = folder / "s.rfmstate"
    rfm_fast.DailyState.init(
        ORDERS.slice(0, 100), customer="customer", timestamp="ordered_at", amount="amount"
    ).save(state)
    before = state.read_bytes()
    if where == "input":
        args = ["score", uri, "--table", "orders", *COLUMNS]
    elif where == "output":
        args = ["score", str(orders), *COLUMNS, "-o", uri, "--output-table", "scores"]
    elif where == "changes":
        args = ["state", "update", str(state), str(orders), "--changes", uri]
        args += ["--changes-table", "changes"]
    else:
        args = ["state", "score", str(state), "-o", uri, "--output-table", "scores"]
    _failed(runner.invoke(app, args))
    assert state.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["orders.parquet", "s.rfmstate"]


def test_a_state_records_its_sources_without_passwords(tmp_path):
    """A SQLite file whose name holds ``?password=`` (the form of a URI's query): the state
    file, ``rfm state info`` and the update's messages show it as ``***``."""
    path = tmp_path / f"shop.db?password={SENTINEL}"
    with sqlite3.connect(path):
        pass
    uri = f"sqlite:{path}"
    replace_tables([(Database(uri, table="orders"), ORDERS)])
    state = tmp_path / "s.rfmstate"
    init = ["state", "init", uri, "--query", "SELECT * FROM orders WHERE amount < 20"]
    done = runner.invoke(app, [*init, *COLUMNS, "-o", str(state)])
    assert done.exit_code == 0, (done.output, done.stderr)
    update = ["state", "update", str(state), uri, "--query", "SELECT * FROM orders"]
    done = runner.invoke(app, [*update, "--as-of", "1971-06-01", "--force"])
    assert done.exit_code == 0, (done.output, done.stderr)
    info = runner.invoke(app, ["state", "info", str(state)])
    assert info.exit_code == 0, (info.output, info.stderr)
    assert "password=***" in info.stdout
    _hidden(done.stdout, done.stderr, info.stdout, info.stderr)
    assert SENTINEL.encode() not in state.read_bytes()
    _hidden(*(load.source for load in rfm_fast.DailyState.open(state).loads))


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="module")
def server() -> tuple[str, str]:
    """(the test server's URI, its password)."""
    if POSTGRES_URI is None:
        if os.environ.get("RFM_REQUIRE_ENGINES") == "1":
            raise RuntimeError("RFM_REQUIRE_ENGINES=1, but RFM_TEST_POSTGRES_URI is not set")
        pytest.skip("no PostgreSQL server: set RFM_TEST_POSTGRES_URI (.ci/postgres start DIR)")
    require("adbc_driver_postgresql.dbapi")
    password = urlsplit(POSTGRES_URI).password
    assert password
    return POSTGRES_URI, password


@settings(max_examples=10)
@given(password=passwords)
def test_postgres_connection_errors_never_show_the_password(server, password):
    uri, _ = server
    parts = urlsplit(uri)
    wrong = uri.replace(f":{parts.password}@", f":{quote(password, safe='')}@")
    refused = wrong.replace(f":{parts.port}/", ":1/")
    for target in (wrong, refused):
        _failed(runner.invoke(app, ["score", target, "--table", "orders", *COLUMNS]))
        line = _failed(
            runner.invoke(
                app, ["state", "score", "missing.rfmstate", "-o", target, "--output-table", "t"]
            )
        )
        assert "missing.rfmstate" in line or "connect" in line


def test_postgres_errors_and_state_files_never_show_the_password(server, tmp_path):
    uri, password = server
    table = "rfm_secrets_orders"
    replace_tables([(Database(uri, table=table), ORDERS)])
    try:
        outputs = [
            runner.invoke(app, ["score", uri, "--table", "no_such_table", *COLUMNS]),
            runner.invoke(app, ["score", uri, "--query", "SELECT nope FROM nowhere", *COLUMNS]),
            runner.invoke(app, ["score", uri, "--query", "SELEC broken", *COLUMNS]),
            runner.invoke(app, ["score", uri, "--table", table, "--customer", "nope"]),
            runner.invoke(app, ["score", uri, "--table", table, *COLUMNS, "-o", uri]),
            runner.invoke(
                app, ["score", uri, "--table", table, *COLUMNS, "-o", uri, "--output-table", table]
            ),
        ]
        for done in outputs:
            _failed(done)
            assert password not in _flat(done.stdout + done.stderr)
        state = tmp_path / "s.rfmstate"
        done = runner.invoke(
            app, ["state", "init", uri, "--table", table, *COLUMNS, "-o", str(state)]
        )
        assert done.exit_code == 0, (done.output, done.stderr)
        info = runner.invoke(app, ["state", "info", str(state)])
        assert info.exit_code == 0
        assert password.encode() not in state.read_bytes()
        assert password not in _flat(done.stdout + info.stdout)
        assert rfm_fast.DailyState.open(state).loads[0].source.endswith("***@" + uri.split("@")[1])
    finally:
        with require("adbc_driver_postgresql.dbapi").connect(uri) as connection:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {table}")
            connection.commit()


def test_a_password_in_the_environment_is_never_shown(server, monkeypatch):
    uri, password = server
    parts = urlsplit(uri)
    monkeypatch.setenv("PGPASSWORD", password)
    bare = uri.replace(f"{parts.username}:{password}@", f"{parts.username}@")
    done = runner.invoke(app, ["score", bare, "--table", "no_such_table", *COLUMNS])
    _failed(done)
    assert password not in _flat(done.stdout + done.stderr)
