"""Hostile: no command replaces a database table that it reads, nor writes two outputs to one
table, whatever form the URIs and names take (issue 24, item 3, the database half).

The input and the output are resolved as the database resolves them: a SQLite URI of any form
(``sqlite:x.db``, ``sqlite:///x.db``, ``sqlite:./x.db``, absolute, ``file:``, a symlink, a hard
link) to one file, SQLite names without regard to ASCII case, PostgreSQL names by the server
(schemas, ``search_path``, quoted and plain names in a query), a query's tables by its plan
(views and partitions included). Each refusal is one line, exit code 1, and the tables are left
as they were. PostgreSQL runs at ``RFM_TEST_POSTGRES_URI`` (``.ci/postgres start DIR``).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from helpers import order_lines, require
from hypothesis import given, settings
from hypothesis import strategies as st
from rfm_fast_cli.main import app
from typer.testing import CliRunner

import rfm_fast
from rfm_fast.core.database import Database, check_different_tables, quoted, replace_tables

require("adbc_driver_manager")
sqlite_dbapi = require("adbc_driver_sqlite.dbapi")

POSTGRES_URI = os.environ.get("RFM_TEST_POSTGRES_URI")
COLUMNS = ["--customer", "customer", "--timestamp", "ordered_at", "--amount", "amount"]
ORDERS = order_lines(rows=400)
runner = CliRunner()


def _refused(result, *fragments: str) -> str:
    assert result.exit_code == 1, (result.output, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def _sqlite_rows(path: Path, table: str) -> int:
    with sqlite_dbapi.connect(str(path)) as connection, connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {quoted(table)}")
        return int(cursor.fetchone()[0])


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    """A SQLite file with the orders in ``orders``, ``day2`` and a view ``recent`` over
    ``day2``; beside it a symlink and a hard link to it."""
    folder = tmp_path_factory.mktemp("shop")
    path = folder / "shop.db"
    for name in ("orders", "day2"):
        replace_tables([(Database(f"sqlite:{path}", table=name), ORDERS)])
    with sqlite_dbapi.connect(str(path)) as connection, connection.cursor() as cursor:
        cursor.execute("CREATE VIEW recent AS SELECT * FROM day2 WHERE amount > 0")
        connection.commit()
    (folder / "link.db").symlink_to(path)
    os.link(path, folder / "hard.db")
    (folder / "sub").mkdir()
    return path


SQLITE_FORMS = {
    "bare": lambda p: f"sqlite:{p.name}",
    "three slashes": lambda p: f"sqlite:///{p.name}",
    "dot": lambda p: f"sqlite:./{p.name}",
    "dot dot": lambda p: f"sqlite:sub/../{p.name}",
    "absolute": lambda p: f"sqlite:{p}",
    "four slashes": lambda p: f"sqlite:///{p}",
    "upper scheme": lambda p: f"SQLITE:{p.name}",
    "symlink": lambda p: "sqlite:link.db",
    "hard link": lambda p: "sqlite:hard.db",
    "file uri": lambda p: f"sqlite:file:{p.name}",
    "file uri absolute": lambda p: f"sqlite:file://{p}?cache=private",
}
"""Every way of writing the same SQLite file (run in its folder)."""


def _case(name: str, flips: list[bool]) -> str:
    return "".join(
        c.upper() if flip else c for c, flip in zip(name, flips + [False] * len(name), strict=False)
    )


@settings(max_examples=40)
@given(
    input_form=st.sampled_from(sorted(SQLITE_FORMS)),
    output_form=st.sampled_from(sorted(SQLITE_FORMS)),
    flips=st.lists(st.booleans(), max_size=6),
    quote=st.booleans(),
)
def test_an_output_table_that_is_the_input_table_is_refused(
    shop: Path, monkeypatch_module, input_form, output_form, flips, quote
):
    name = _case("orders", flips)
    output_table = f'"{name}"' if quote else name
    source = SQLITE_FORMS[input_form](shop)
    target = SQLITE_FORMS[output_form](shop)
    done = runner.invoke(
        app,
        [
            "score",
            source,
            "--table",
            "orders",
            *COLUMNS,
            "-o",
            target,
            "--output-table",
            output_table,
        ],
    )
    _refused(done, "is the input table", "write to another table")
    assert _sqlite_rows(shop, "orders") == ORDERS.num_rows


@pytest.fixture(scope="module")
def monkeypatch_module(shop: Path) -> Iterator[None]:
    """The tests run in the folder of the SQLite file (its relative URIs)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(shop.parent)
        yield


QUERIES_OF_DAY2 = [
    "select * from day2",
    "SELECT * FROM DAY2",
    'select * from "Day2" where amount > 0',
    "select * from main.day2",
    "select o.* from orders o where exists (select 1 from day2 d where d.customer = o.customer)",
    "with x as (select * from day2) select * from x",
    "select * from recent",
    "select * from orders union all select * from recent",
    "select * from (select * from (select * from Day2))",
]


@pytest.mark.parametrize("query", QUERIES_OF_DAY2)
def test_an_output_table_that_the_query_reads_is_refused(shop, monkeypatch_module, query):
    done = runner.invoke(
        app,
        [
            "score",
            "sqlite:shop.db",
            "--query",
            query,
            *COLUMNS,
            "-o",
            "sqlite:///shop.db",
            "--output-table",
            "DAY2",
        ],
    )
    _refused(done, "is read by the input query", "DAY2")
    assert _sqlite_rows(shop, "day2") == ORDERS.num_rows


def test_a_view_input_does_not_replace_the_table_under_it(shop, monkeypatch_module):
    done = runner.invoke(
        app,
        [
            "score",
            "sqlite:shop.db",
            "--table",
            "recent",
            *COLUMNS,
            "-o",
            "sqlite:link.db",
            "--output-table",
            "day2",
        ],
    )
    _refused(done, "is the input table (through the view recent)")
    assert _sqlite_rows(shop, "day2") == ORDERS.num_rows


@pytest.mark.parametrize(
    "query",
    [
        "select * from orders",
        # a name of its own in the query, not the table: SQLite's authorizer tells them apart
        "with scores as (select * from orders) select * from scores",
        "select * from orders where 'scores' <> '' -- scores",
    ],
)
def test_a_query_that_does_not_read_the_output_writes_it(tmp_path, monkeypatch, query):
    monkeypatch.chdir(tmp_path)
    replace_tables([(Database("sqlite:shop.db", table="orders"), ORDERS)])
    replace_tables([(Database("sqlite:shop.db", table="scores"), pa.table({"a": [1]}))])
    done = runner.invoke(
        app,
        [
            "score",
            "sqlite:shop.db",
            "--query",
            query,
            *COLUMNS,
            "-o",
            "sqlite:shop.db",
            "--output-table",
            "scores",
        ],
    )
    assert done.exit_code == 0, (done.output, done.stderr)
    expected = rfm_fast.score(ORDERS, customer="customer", timestamp="ordered_at", amount="amount")
    assert _sqlite_rows(tmp_path / "shop.db", "scores") == expected.stats.customers
    assert _sqlite_rows(tmp_path / "shop.db", "orders") == ORDERS.num_rows


def test_the_same_table_name_in_another_file_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    replace_tables([(Database("sqlite:shop.db", table="orders"), ORDERS)])
    done = runner.invoke(
        app,
        [
            "score",
            "sqlite:shop.db",
            "--table",
            "orders",
            *COLUMNS,
            "-o",
            "sqlite:out.db",
            "--output-table",
            "ORDERS",
        ],
    )
    assert done.exit_code == 0, (done.output, done.stderr)
    assert _sqlite_rows(tmp_path / "shop.db", "orders") == ORDERS.num_rows


def _state(tmp_path: Path) -> Path:
    path = tmp_path / "s.rfmstate"
    rfm_fast.DailyState.init(
        ORDERS.slice(0, 200), customer="customer", timestamp="ordered_at", amount="amount"
    ).save(path)
    return path


@settings(max_examples=20)
@given(
    scores_form=st.sampled_from(sorted(SQLITE_FORMS)),
    changes_form=st.sampled_from(sorted(SQLITE_FORMS)),
    flips=st.lists(st.booleans(), max_size=6),
)
def test_two_outputs_of_an_update_in_one_table_are_refused(
    shop, monkeypatch_module, tmp_path_factory, scores_form, changes_form, flips
):
    folder = tmp_path_factory.mktemp("state")
    scores = (SQLITE_FORMS[scores_form](shop), "scores")
    changes = (SQLITE_FORMS[changes_form](shop), _case("scores", flips))
    _two_outputs_refused(folder, scores, changes)
    assert sorted(p.name for p in folder.iterdir()) == ["new.parquet", "s.rfmstate"]


def _two_outputs_refused(folder: Path, scores: tuple[str, str], changes: tuple[str, str]) -> None:
    """``rfm state update`` with its scores and changes in the tables given (URI, table) is
    refused, and the state is left as it was."""
    state = _state(folder)
    before = state.read_bytes()
    new = folder / "new.parquet"
    ORDERS.slice(200).to_pandas().to_parquet(new)
    update = ["state", "update", str(state), str(new), "-o", scores[0]]
    update += ["--output-table", scores[1], "--changes", changes[0], "--changes-table", changes[1]]
    _refused(runner.invoke(app, update), "two outputs are one table")
    assert state.read_bytes() == before


def test_the_library_refuses_two_writes_to_one_table(shop, monkeypatch_module):
    one = Database("sqlite:shop.db", table="orders")
    other = Database("sqlite:link.db", table="Orders")
    with pytest.raises(rfm_fast.RFMError, match="two outputs are one table"):
        replace_tables([(one, pa.table({"a": [1]})), (other, pa.table({"a": [2]}))])
    assert _sqlite_rows(shop, "orders") == ORDERS.num_rows
    check_different_tables([one, Database("sqlite:shop.db", table="orders2"), Path("orders")])


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture
def postgres() -> Iterator[tuple[str, str]]:
    """(a URI whose search_path is a schema of its own, that schema), the schema dropped after
    the test; it holds ``orders`` and ``day2``, a view ``recent`` over ``day2``, and a table
    ``parted`` partitioned in two."""
    if POSTGRES_URI is None:
        if os.environ.get("RFM_REQUIRE_ENGINES") == "1":
            raise RuntimeError("RFM_REQUIRE_ENGINES=1, but RFM_TEST_POSTGRES_URI is not set")
        pytest.skip("no PostgreSQL server: set RFM_TEST_POSTGRES_URI (.ci/postgres start DIR)")
    pg = require("adbc_driver_postgresql.dbapi")
    schema = f"rfm_hostile_{secrets.token_hex(4)}"
    with pg.connect(POSTGRES_URI) as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA {schema}")
        connection.commit()
    separator = "&" if "?" in POSTGRES_URI else "?"
    uri = f"{POSTGRES_URI}{separator}options=-csearch_path%3D{schema}"
    for name in ("orders", "day2"):
        replace_tables([(Database(POSTGRES_URI, table=f"{schema}.{name}"), ORDERS)])
    with pg.connect(uri) as connection, connection.cursor() as cursor:
        cursor.execute("CREATE VIEW recent AS SELECT * FROM day2 WHERE amount > 0")
        cursor.execute(
            "CREATE TABLE parted (customer text, ordered_at timestamp, amount float8) "
            "PARTITION BY RANGE (ordered_at)"
        )
        cursor.execute(
            "CREATE TABLE parted_a PARTITION OF parted FOR VALUES FROM (MINVALUE) TO ('1970-06-01')"
        )
        cursor.execute(
            "CREATE TABLE parted_b PARTITION OF parted FOR VALUES FROM ('1970-06-01') TO (MAXVALUE)"
        )
        cursor.execute("INSERT INTO parted SELECT customer, ordered_at, amount FROM orders")
        connection.commit()
    yield uri, schema
    with pg.connect(POSTGRES_URI) as connection, connection.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA {schema} CASCADE")
        connection.commit()


def _postgres_rows(uri: str, table: str) -> int:
    pg = require("adbc_driver_postgresql.dbapi")
    with pg.connect(uri) as connection, connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")
        return int(cursor.fetchone()[0])


def test_postgres_resolves_schemas_and_search_path(postgres):
    uri, schema = postgres
    plain = POSTGRES_URI.replace("postgresql://", "postgres://", 1)
    cases = [
        (uri, "orders", uri, "orders"),
        (uri, "orders", POSTGRES_URI, f"{schema}.orders"),  # search_path against the schema
        (POSTGRES_URI, f"{schema}.orders", uri, '"orders"'),
        (uri, f"{schema}.orders", plain, f"{schema}.ORDERS".lower()),
    ]
    for source, table, target, output_table in cases:
        done = runner.invoke(
            app,
            [
                "score",
                source,
                "--table",
                table,
                *COLUMNS,
                "-o",
                target,
                "--output-table",
                output_table,
            ],
        )
        _refused(done, "is the input table")
    assert _postgres_rows(uri, "orders") == ORDERS.num_rows


@pytest.mark.parametrize(
    ("query", "output_table"),
    [
        ("select * from day2", "day2"),
        ("SELECT * FROM DAY2", "day2"),  # a plain name is folded to lower case
        ("select * from recent", "day2"),  # through a view
        ("select * from day2 where false", "day2"),  # planned away: named in the text
        ("select * from parted", "parted_b"),  # a partition of the table read
        ("select * from parted_a", "parted"),  # the table above the partition read
        ("select * from orders o join recent r using (customer)", "day2"),
    ],
)
def test_postgres_refuses_an_output_table_that_the_query_reads(postgres, query, output_table):
    uri, _ = postgres
    done = runner.invoke(
        app, ["score", uri, "--query", query, *COLUMNS, "-o", uri, "--output-table", output_table]
    )
    _refused(done, output_table, "write to another table")
    assert _postgres_rows(uri, output_table) > 0


def test_postgres_writes_a_table_the_query_does_not_read(postgres):
    uri, _ = postgres
    for query, output_table in [
        ("select * from orders", "Day2"),  # quoted by rfm_fast: the table "Day2", not day2
        ("select * from day2", "scores"),
    ]:
        done = runner.invoke(
            app,
            ["score", uri, "--query", query, *COLUMNS, "-o", uri, "--output-table", output_table],
        )
        assert done.exit_code == 0, (done.output, done.stderr)
    assert _postgres_rows(uri, "day2") == ORDERS.num_rows
    assert _postgres_rows(uri, '"Day2"') == _postgres_rows(uri, "scores")


def test_postgres_two_outputs_in_one_table_are_refused(postgres, tmp_path):
    uri, schema = postgres
    _two_outputs_refused(tmp_path, (uri, "scores"), (POSTGRES_URI, f"{schema}.scores"))


@pytest.mark.parametrize("option", ["--output-table", "--changes-table"])
def test_an_update_never_replaces_a_table_its_query_reads(
    shop, monkeypatch_module, option, tmp_path
):
    state = _state(tmp_path)
    before = state.read_bytes()
    update = ["state", "update", str(state), "sqlite:shop.db", "--query", "select * from recent"]
    if option == "--output-table":
        update += ["-o", "sqlite:./shop.db", "--output-table", "Day2"]
    else:
        update += ["--changes", "sqlite:hard.db", "--changes-table", "DAY2"]
    _refused(runner.invoke(app, update), "is read by the input query")
    assert state.read_bytes() == before
    assert _sqlite_rows(shop, "day2") == ORDERS.num_rows
