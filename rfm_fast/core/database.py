"""Databases as inputs and outputs, through Arrow-native ADBC drivers (PostgreSQL, SQLite).

A :class:`Database` names a database by its URI, and either a query or a table:

* as an input, the rows of ``query`` (the user's own SQL, run as given) or of ``table`` (only the
  columns a run needs are selected, their names quoted as identifiers) are streamed batch by
  batch from the driver's Arrow reader, never all in memory;
* as an output, ``table`` is replaced inside one transaction, so that a reader in another
  connection sees the old table or the new one, never half of it.

The URI's password never appears in a message: :func:`redacted` shows ``***`` in place of its
user and password, and the drivers' messages are scrubbed of both (:func:`scrubbed`).
Credentials can also come from the environment, as libpq reads them (``PGPASSWORD``,
``PGUSER``, ``~/.pgpass``, ...), so that the URI on a command line holds none.

The drivers are optional extras: ``pip install 'rfm_fast[postgres]'`` or
``'rfm_fast[sqlite]'``.
"""

from __future__ import annotations

import contextlib
import os
import re
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import pyarrow as pa
import pyarrow.compute as pc

from rfm_fast.credentials import scrub
from rfm_fast.errors import RFMError, folder_write_reason
from rfm_fast.optional import require

DRIVERS = {
    "postgresql": ("adbc_driver_postgresql.dbapi", "postgres"),
    "postgres": ("adbc_driver_postgresql.dbapi", "postgres"),
    "sqlite": ("adbc_driver_sqlite.dbapi", "sqlite"),
}
"""URI scheme: (the driver's DB-API module, the extra that installs it)."""

SECRET_PARAMETERS = ("password", "sslpassword", "passfile")
"""Query parameters of a URI whose values are never shown."""


def is_database_uri(text: Any) -> bool:
    """Whether ``text`` is a database URI :class:`Database` takes (``postgresql://``,
    ``postgres://``, ``sqlite:``), rather than a path.

    Examples
    --------
    >>> is_database_uri("postgresql://rfm@db.example.com/shop"), is_database_uri("sqlite:x.db")
    (True, True)
    >>> is_database_uri("orders.parquet")
    False
    """
    if not isinstance(text, str):
        return False
    scheme, colon, _ = text.partition(":")
    return bool(colon) and scheme.lower() in DRIVERS


def redacted(uri: str) -> str:
    """``uri`` with its user and password shown as ``***``, and the values of its password
    parameters too: what a message may show.

    Examples
    --------
    >>> redacted("postgresql://rfm:s3cret@db.example.com:5432/shop")
    'postgresql://***@db.example.com:5432/shop'
    >>> redacted("postgresql://db.example.com/shop?user=rfm&password=s3cret")
    'postgresql://db.example.com/shop?user=rfm&password=***'
    >>> redacted("sqlite:orders.db")
    'sqlite:orders.db'
    """
    uri = scrub(uri)  # user information up to the last @, whatever / ? # a password holds
    try:
        parts = urlsplit(uri)
    except ValueError:
        return f"{uri.partition(':')[0]}:***"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, "***" if k.lower() in SECRET_PARAMETERS else v) for k, v in pairs], safe="*"
        )
    shown = urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    if not netloc and uri[len(parts.scheme) :].startswith("://"):  # postgresql:///db
        shown = f"{parts.scheme}://{shown[len(parts.scheme) + 1 :]}"
    return scrub(shown)


def secrets_of(uri: str) -> list[str]:
    """The strings of ``uri`` that no message may show: the URI itself, its user information,
    and its passwords (as written and decoded)."""
    found = [uri]
    _, slashes, rest = uri.partition("://")
    if slashes and "@" in rest:  # as written, whatever urlsplit makes of / ? # in a password
        user_info = rest.rpartition("@")[0]
        password = user_info.partition(":")[2]
        found += [user_info, password, unquote(password)]
    with contextlib.suppress(ValueError):
        parts = urlsplit(uri)
        if "@" in parts.netloc:
            user_info = parts.netloc.rpartition("@")[0]
            found.append(user_info)
            if parts.password:
                found += [parts.password, unquote(parts.password)]
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key.lower() in SECRET_PARAMETERS and value:
                found += [value, unquote(value)]
    return sorted({s for s in found if s}, key=len, reverse=True)


def scrubbed(message: str, uri: str) -> str:
    """``message`` (a driver's, which may quote the URI) with the URI shown redacted, and its
    user information and passwords as ``***``; on one line.

    Examples
    --------
    >>> scrubbed("cannot parse postgresql://rfm:s3cret@db/shop", "postgresql://rfm:s3cret@db/shop")
    'cannot parse postgresql://***@db/shop'
    """
    shown = redacted(uri)
    for secret in secrets_of(uri):
        message = message.replace(secret, shown if secret == uri else "***")
    return scrub(" ".join(message.split()))


@dataclass(frozen=True)
class Database:
    """A database table or query, read as an input or written as an output.

    Parameters
    ----------
    uri : str
        ``postgresql://user:password@host:port/database`` (or ``postgres://``; the user and
        password may instead come from libpq's environment: ``PGUSER``, ``PGPASSWORD``,
        ``~/.pgpass``), or ``sqlite:PATH`` (``sqlite:///PATH``: PATH relative to the working
        folder, ``sqlite:////PATH``: absolute, as SQLAlchemy writes them).
    query : str, optional
        An input: the SQL whose rows are the orders, run as given. A run that reads its input
        twice (:func:`rfm_fast.migrate`) runs it twice: its result must not change in between.
    table : str, optional
        An input: the table whose rows are the orders (only the columns a run needs are read).
        An output: the table to replace. ``schema.table`` names a table in a schema
        (PostgreSQL; SQLite has none).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import pyarrow as pa
    >>> import rfm_fast
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> orders = rfm_fast.Database(f"sqlite:{folder}/shop.db", table="orders")
    >>> rfm_fast.core.database.replace_tables([(orders, pa.table({
    ...     "customer": [1, 1, 2], "timestamp": ["2024-01-05", "2024-03-01", "2024-02-10"],
    ...     "amount": [10.0, 20.0, 5.0]}))])
    >>> columns = dict(customer="customer", timestamp="timestamp", amount="amount")
    >>> rfm_fast.score(orders, **columns).table.column("frequency").to_pylist()
    [2, 1]
    >>> query = rfm_fast.Database(f"sqlite:{folder}/shop.db",
    ...                           query="SELECT * FROM orders WHERE amount > 6")
    >>> rfm_fast.score(query, **columns).stats.rows_read
    2
    """

    uri: str
    query: str | None = None
    table: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.uri, str) or not is_database_uri(self.uri):
            shown = redacted(self.uri) if isinstance(self.uri, str) else repr(self.uri)
            raise RFMError(
                f"a database URI starts with postgresql://, postgres:// or sqlite:; got {shown}"
            )
        if self.query is not None and self.table is not None:
            raise RFMError("give a database input a query or a table, not both")
        for what, value in (("query", self.query), ("table", self.table)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise RFMError(f"the {what} of a database must be non-empty text; got {value!r}")
        if self.table is not None and self.scheme == "sqlite" and len(_name_parts(self.table)) > 1:
            raise RFMError(
                f"table {self.table!r}: SQLite has no schemas; name the table alone, or write a "
                'name with a dot in double quotes ("a.b")'
            )

    def __repr__(self) -> str:
        what = f"table={self.table!r}" if self.table is not None else f"query={self.query!r}"
        return f"Database({redacted(self.uri)!r}, {what})"

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        """What messages call it: the table or "query", and the URI, redacted."""
        what = f"table {self.table}" if self.table is not None else "query"
        return f"{what} of {redacted(self.uri)}"

    @property
    def scheme(self) -> str:
        return self.uri.partition(":")[0].lower()


def database_input(text: str, query: str | None = None, table: str | None = None) -> Any:
    """An input given as text (the command line's INPUT): a :class:`Database` for a database
    URI with ``query`` or ``table``, else the path.

    Raises
    ------
    RFMError
        For a URI without a query or a table, or a query or a table with a path.

    Examples
    --------
    >>> database_input("orders.csv")
    PosixPath('orders.csv')
    >>> database_input("sqlite:shop.db", table="orders")
    Database('sqlite:shop.db', table='orders')
    """
    refuse_unknown_uri(text, "the input")
    if is_database_uri(text):
        if query is None and table is None:
            raise RFMError(
                f"the input {redacted(text)} is a database: give the rows with --query SQL "
                "or --table NAME"
            )
        return Database(text, query=query, table=table)
    if query is not None or table is not None:
        raise RFMError(
            "--query and --table read from a database: the input must be a database URI "
            f"(postgresql://..., sqlite:PATH); got {text}"
        )
    return Path(text)


def database_output(text: str | os.PathLike, table: str | None, option: str) -> Any:
    """An output given as text: a :class:`Database` for a database URI with ``table``, else
    the path.

    Raises
    ------
    RFMError
        For a URI without a table, or a table with a path (``option`` names the option that
        gives the table).

    Examples
    --------
    >>> database_output("scores.csv", None, "--output-table")
    PosixPath('scores.csv')
    >>> database_output("sqlite:shop.db", "rfm_scores", "--output-table")
    Database('sqlite:shop.db', table='rfm_scores')
    """
    text = str(text)
    refuse_unknown_uri(text, "the output")
    if is_database_uri(text):
        if table is None:
            raise RFMError(
                f"the output {redacted(text)} is a database: name the table with {option}"
            )
        return Database(text, table=table)
    if table is not None:
        raise RFMError(
            f"{option} writes to a database: the output must be a database URI; got {text}"
        )
    return Path(text)


_OTHER_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
_LIBPQ_KEYWORD = re.compile(
    r"(?i)(?:^|\s)(?:host|hostaddr|port|dbname|user|password|passfile|sslmode|service)\s*="
)


def refuse_unknown_uri(text: str, what: str) -> None:
    """Refuse ``text`` (an input or output given as text) where it is no file or folder but
    looks like a database address rfm_fast does not take: a URI of another scheme (such as
    ``mysql://`` or SQLAlchemy's ``postgresql+psycopg2://``) or a libpq keyword string
    (``host=... dbname=...``). The message shows it without its credentials.

    Raises
    ------
    RFMError
        Saying what rfm_fast takes instead.
    """
    if is_database_uri(text) or os.path.lexists(text):
        return
    shown = scrub(text)
    if (" " in text.strip() or "password" in text.lower()) and _LIBPQ_KEYWORD.search(text):
        raise RFMError(
            f"{what} is a libpq keyword string, which rfm_fast does not take: write it as a "
            "URI, postgresql://HOST:PORT/DBNAME (the user and password from PGUSER and "
            f"PGPASSWORD, or ~/.pgpass); got {shown}"
        )
    if _OTHER_URI.match(text):
        scheme = text.partition(":")[0]
        base, plus, driver = scheme.partition("+")
        if plus and base.lower() in DRIVERS:
            raise RFMError(
                f"{what} {shown}: rfm_fast connects with its own driver; write the URI as "
                f"{base}://... (without +{driver})"
            )
        raise RFMError(
            f"{what} {shown} is a URI of a scheme rfm_fast does not take ({scheme}): it reads "
            "and writes postgresql://, postgres:// and sqlite: databases, and files (export "
            "the orders to Parquet or CSV)"
        )


# --------------------------------------------------------------------------- connections


def _driver(db: Database) -> Any:
    module, extra = DRIVERS[db.scheme]
    return require(module, extra, f"reading or writing {redacted(db.uri)}")


def _sqlite_path(uri: str) -> str:
    rest = uri.partition(":")[2]
    if rest.startswith("///"):
        return rest[3:]
    if rest.startswith("//"):
        raise RFMError(
            "a SQLite URI is sqlite:PATH or sqlite:///PATH (a host has no meaning); got "
            f"{redacted(uri)}"
        )
    return rest


def _driver_error(db: Database) -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [pa.ArrowException]
    with contextlib.suppress(ImportError):
        import adbc_driver_manager

        errors.append(adbc_driver_manager.Error)
    return tuple(errors)


@contextlib.contextmanager
def connected(db: Database, what: str, must_exist: bool = True) -> Iterator[Any]:
    """A DB-API connection to ``db`` (autocommit off), closed on the way out; driver errors
    inside become one-line :class:`RFMError` that say ``what`` failed, with the credentials
    scrubbed."""
    driver = _driver(db)
    errors = _driver_error(db)
    try:
        if db.scheme == "sqlite":
            path = _sqlite_path(db.uri)
            file = _sqlite_file(db.uri) or path  # as SQLite opens it (file: URIs)
            if must_exist and not Path(file).is_file():
                raise RFMError(f"database file not found: {file} ({redacted(db.uri)})")
            if not must_exist and not Path(file).parent.is_dir():
                raise RFMError(f"output folder {Path(file).parent} does not exist")
            connection = driver.connect(path)
        else:
            connection = driver.connect(db.uri)
    except errors as exc:
        raise RFMError(
            f"cannot connect to {redacted(db.uri)}: {scrubbed(_text(exc), db.uri)}"
        ) from None
    try:
        yield connection
    except errors as exc:
        raise RFMError(f"cannot {what} {db.name}: {scrubbed(_text(exc), db.uri)}") from None
    finally:
        with contextlib.suppress(Exception):
            connection.close()


def _text(exc: BaseException) -> str:
    """A driver's message without its status prefix and the query it repeats."""
    text = str(exc).split("\nQuery was:")[0].split("\nLINE ")[0]
    for prefix in ("IO: ", "NOT_FOUND: ", "INVALID_ARGUMENT: ", "INTERNAL: ", "UNKNOWN: "):
        text = text.removeprefix(prefix)
    return text.strip()


def quoted(name: str) -> str:
    """``name`` as an SQL identifier: in double quotes, a double quote doubled; ``a.b`` is a
    table ``b`` in schema ``a``.

    Examples
    --------
    >>> quoted("orders"), quoted('my "odd" table'), quoted("sales.orders")
    ('"orders"', '"my ""odd"" table"', '"sales"."orders"')
    """
    return ".".join(_identifier(part) for part in _name_parts(name))


def _identifier(part: str) -> str:
    if "\x00" in part:
        raise RFMError(f"an SQL name cannot hold a NUL character; got {part!r}")
    return '"' + part.replace('"', '""') + '"'


def _name_parts(name: str) -> list[str]:
    """``schema.table`` as its two parts (a name with a dot in it: write it in double quotes)."""
    if name.startswith('"') and name.endswith('"') and len(name) > 1:
        return [name[1:-1].replace('""', '"')]
    return name.split(".", 1) if "." in name else [name]


# --------------------------------------------------------------------------- input


def database_reader(
    db: Database, batch_rows: int
) -> tuple[str, list[str], Callable[[list[str]], tuple[pa.Schema, Iterator[pa.RecordBatch]]]]:
    """The name, the column names and the opener of a database input (what
    :class:`rfm_fast.core.io.Source` holds). Each opening runs the query (or selects the
    columns of the table) again on a connection of its own, closed when the batches end."""
    if db.query is None and db.table is None:
        raise RFMError(f"a database input needs a query or a table: {db!r}")
    with connected(db, "read") as connection, contextlib.closing(connection.cursor()) as cursor:
        if db.table is not None:  # the names only: SQLite types come from the rows
            cursor.execute(f"SELECT * FROM {quoted(db.table)} WHERE 1 = 0")
            names = _names_of(cursor.fetch_record_batch())
        elif db.scheme != "sqlite":  # described, not run
            names = list(cursor.adbc_execute_schema(db.query).names)
        else:  # SQLite runs a query step by step: the first rows are all it reads here
            cursor.execute(db.query)
            names = _names_of(cursor.fetch_record_batch())

    def opener(columns: list[str]) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        return _opened(db, columns, batch_rows)

    return db.name, names, opener


def _names_of(reader: pa.RecordBatchReader) -> list[str]:
    names = list(reader.schema.names)
    reader.close()
    return names


def _opened(
    db: Database, columns: list[str], batch_rows: int
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """Run the query (or select ``columns`` of the table): the schema of ``columns`` and their
    batches, at most ``batch_rows`` rows each. The connection closes when the batches end, fail,
    or are dropped unread."""
    stack = contextlib.ExitStack()
    try:
        connection = stack.enter_context(connected(db, "read"))
        cursor = stack.enter_context(contextlib.closing(connection.cursor()))
        with connected_errors(db, lambda: "read"):
            _batch_options(db, cursor, batch_rows)
            if db.table is not None:
                listed = ", ".join(_identifier(c) for c in columns)
                cursor.execute(f"SELECT {listed} FROM {quoted(db.table)}")
            else:
                cursor.execute(db.query)
            reader = cursor.fetch_record_batch()
            stack.callback(reader.close)
            schema = pa.schema([_plain_field(reader.schema.field(c)) for c in columns])
            first = _first_rows(reader)
    except BaseException:
        stack.close()
        raise
    if first is None:  # no rows: the types are the driver's guesses (SQLite: int64)
        stack.close()
        return empty_result_schema(columns), iter(())
    return schema, _Batches(db, reader, columns, schema, batch_rows, stack, first)


def _first_rows(reader: pa.RecordBatchReader) -> pa.RecordBatch | None:
    """The first batch of ``reader`` that holds rows, or None when it has none."""
    for batch in iter(reader.read_next_batch, None):  # (ends with StopIteration)
        if batch.num_rows:
            return batch
    return None


def empty_result_schema(columns: list[str]) -> pa.Schema:
    """The schema of a query or table with no rows: every column of type null, whatever the
    driver guessed (SQLite guesses from the rows, and has none to guess from), so that it
    reads as an empty input of any types (see ``rfm_fast.core.pipeline.conformed_schema``)."""
    return pa.schema([pa.field(c, pa.null()) for c in columns])


class _Batches(Iterator[pa.RecordBatch]):
    """The batches of a query, ``batch_rows`` rows at most, in ``schema``; the connection
    (``resources``) is closed at the end, on an error, or when the iterator is dropped."""

    def __init__(
        self,
        db: Database,
        reader: pa.RecordBatchReader,
        columns: list[str],
        schema: pa.Schema,
        batch_rows: int,
        resources: contextlib.ExitStack,
        first: pa.RecordBatch | None = None,
    ) -> None:
        self._db, self._reader, self._columns = db, reader, columns
        self._schema, self._batch_rows = schema, batch_rows
        self._pending: list[pa.RecordBatch] = [] if first is None else self._split(first)
        self._rows = 0
        self._close = weakref.finalize(self, resources.close)

    def __next__(self) -> pa.RecordBatch:
        while not self._pending:
            if not self._close.alive:
                raise StopIteration
            try:
                batch = self._reader.read_next_batch()
            except StopIteration:
                self._close()
                raise
            except _driver_error(self._db) as exc:
                self._close()
                raise RFMError(
                    f"cannot read {self._db.name} (after {self._rows:,} rows): "
                    f"{scrubbed(_text(exc), self._db.uri)}"
                ) from None
            except BaseException:
                self._close()
                raise
            self._pending = self._split(batch)
        batch = self._pending.pop()
        self._rows += batch.num_rows
        return batch

    def _split(self, batch: pa.RecordBatch) -> list[pa.RecordBatch]:
        """``batch`` in the schema, in batches of ``batch_rows`` rows at most, last first."""
        batch = _plain_batch(batch.select(self._columns), self._schema)
        return pa.Table.from_batches([batch]).to_batches(max_chunksize=self._batch_rows)[::-1]


@contextlib.contextmanager
def connected_errors(db: Database, what: Callable[[], str]) -> Iterator[None]:
    """Driver errors inside become one-line :class:`RFMError` (credentials scrubbed)."""
    try:
        yield
    except _driver_error(db) as exc:
        raise RFMError(f"cannot {what()} {db.name}: {scrubbed(_text(exc), db.uri)}") from None


def _batch_options(db: Database, cursor: Any, batch_rows: int) -> None:
    """Ask the driver for batches of about ``batch_rows`` rows (the reader splits larger ones)."""
    if db.scheme == "sqlite":
        options = {"adbc.sqlite.query.batch_rows": str(batch_rows)}
    else:  # a hint in bytes: a guess of 64 bytes a row, at most the driver's default 16 MiB
        options = {"adbc.postgresql.batch_size_hint_bytes": str(min(batch_rows * 64, 1 << 24))}
    with contextlib.suppress(*_driver_error(db)):
        cursor.adbc_statement.set_options(**options)


def _plain_field(field: pa.Field) -> pa.Field:
    """The field as rfm_fast reads it: PostgreSQL ``numeric`` (an opaque extension type of
    text) as a decimal of its declared scale, or float64 when it declares none."""
    if isinstance(field.type, pa.BaseExtensionType):
        metadata = field.metadata or {}
        if metadata.get(b"POSTGRESQL:type") == b"numeric":
            typmod = int(metadata.get(b"POSTGRESQL:typmod", b"-1"))
            if typmod >= 4:
                precision, scale = (typmod - 4) >> 16, (typmod - 4) & 0xFFFF
                return pa.field(field.name, pa.decimal128(precision, scale))
            return pa.field(field.name, pa.float64())
        return pa.field(field.name, field.type.storage_type)
    return pa.field(field.name, field.type)


def _plain_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    arrays = []
    for column, field in zip(batch.columns, schema, strict=True):
        if column.type == field.type:
            arrays.append(column)
            continue
        if isinstance(column, pa.ExtensionArray):
            column = column.storage
        arrays.append(pc.cast(column, field.type) if column.type != field.type else column)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


# --------------------------------------------------------------------------- output


def check_database_output(db: Database) -> Database:
    """An output table, checked before any work: a table is named, the driver is installed,
    and the database can be reached.

    Raises
    ------
    RFMError
        Saying which of these does not hold.
    """
    if db.table is None:
        raise RFMError(f"name the table to write in {redacted(db.uri)}")
    file = _sqlite_file(db.uri) if db.scheme == "sqlite" else None
    if file is not None and not Path(file).exists():
        _driver(db)  # a new file: written only once there is something to write
        folder = Path(file).parent
        if not folder.is_dir():
            raise RFMError(f"output folder {folder} does not exist")
        if (reason := folder_write_reason(folder)) is not None:
            raise RFMError(f"cannot write to the output folder {folder}: {reason}")
        return db
    with connected(db, "write", must_exist=False):
        pass
    return db


def replace_tables(
    writes: Sequence[tuple[Database, pa.Table]],
    before_commit: Callable[[Database], None] | None = None,
) -> None:
    """Replace each table with its new rows: those of one database in one transaction, so that
    a reader in another connection sees every old table or every new one, never a table half
    written. Databases are written in the order given, each committed once all its tables are.

    An existing table with the same column names keeps its definition (its rows are deleted
    and the new ones inserted: readers are never blocked); otherwise it is dropped and created
    again with the new columns.

    ``before_commit(database)``, if given, is called once the tables of a database are written,
    before they are committed (what another connection sees then is the old tables).

    Raises
    ------
    RFMError
        When a table cannot be written (the database's tables are then left as they were),
        or for two writes to one table (:func:`check_different_tables`).
    """
    by_uri: dict[str, list[tuple[Database, pa.Table]]] = {}
    for db, table in writes:
        if db.table is None:
            raise RFMError(f"name the table to write in {redacted(db.uri)}")
        by_uri.setdefault(db.uri, []).append((db, table))
    check_different_tables([db for db, _ in writes])
    for group in by_uri.values():
        with connected(group[0][0], "write", must_exist=False) as connection:
            for db, table in group:
                with connected_errors(db, lambda: "write"):
                    _replace(connection, db, _ingestible(table))
            if before_commit is not None:
                before_commit(group[0][0])
            with connected_errors(group[0][0], lambda: "commit"):
                connection.commit()


def _replace(connection: Any, db: Database, table: pa.Table) -> None:
    name = quoted(db.table)
    parts = _name_parts(db.table)
    with contextlib.closing(connection.cursor()) as cursor:
        existing = _columns_of(connection, db.scheme, parts)
        if existing == table.column_names:
            cursor.execute(f"DELETE FROM {name}")
            cursor.adbc_ingest(parts[-1], table, mode="append", **_schema_of(parts))
            return
        if existing is not None:
            cursor.execute(f"DROP TABLE {name}")
        cursor.adbc_ingest(parts[-1], table, mode="create", **_schema_of(parts))


def _schema_of(parts: list[str]) -> dict[str, str]:
    return {"db_schema_name": parts[0]} if len(parts) == 2 else {}


def _columns_of(connection: Any, scheme: str, parts: list[str]) -> list[str] | None:
    """The column names of the table, or None where there is none (asked of the catalog: a
    failed statement would end the transaction)."""
    if scheme == "sqlite":
        sql = "SELECT name FROM pragma_table_info(?" + (", ?)" if len(parts) == 2 else ")")
        parameters = (parts[-1], parts[0]) if len(parts) == 2 else (parts[-1],)
    else:
        sql = (
            "SELECT column_name FROM information_schema.columns WHERE table_name = $1 AND "
            "table_schema = "
            + ("$2" if len(parts) == 2 else "current_schema()")
            + " ORDER BY ordinal_position"
        )
        parameters = (parts[-1], parts[0]) if len(parts) == 2 else (parts[-1],)
    with contextlib.closing(connection.cursor()) as cursor:
        cursor.execute(sql, parameters)
        names = [str(row[0]) for row in cursor.fetchall()]
    return names or None


def _ingestible(table: pa.Table) -> pa.Table:
    """Columns in types both drivers write: dictionaries decoded, unsigned integers widened to
    the next signed type (uint64 as decimal), large text as text."""
    columns = []
    for column in table.columns:
        type_ = column.type
        if pa.types.is_dictionary(type_):
            column, type_ = column.cast(type_.value_type), type_.value_type
        if pa.types.is_large_string(type_) or pa.types.is_string_view(type_):
            column = column.cast(pa.string())
        elif pa.types.is_unsigned_integer(type_):
            wider = {8: pa.int16(), 16: pa.int32(), 32: pa.int64()}.get(type_.bit_width)
            column = column.cast(wider or pa.decimal128(20, 0))
        columns.append(column)
    return pa.Table.from_arrays(columns, names=table.column_names)


# --------------------------------------------------------------------------- reads and writes
#
# An output table must not be one that an input of the same command reads (it would be replaced
# by the scores), nor the table of another output. Both sides are resolved as the database
# resolves them: a SQLite URI of any form to its file (symlinks and relative forms included),
# a SQLite name without regard to ASCII case (as SQLite compares them); a PostgreSQL name by
# the server itself (``to_regclass``: its schema, or the first of ``search_path`` that holds it),
# and a query's tables by its plan (PostgreSQL) or by SQLite's authorizer while it is prepared.


def check_not_read(target: Database, inputs: Sequence[Any]) -> Database:
    """``target`` (an output table), checked against the database inputs among ``inputs``:
    neither their table, nor a table that their query reads (through views too).

    Where the tables a query reads cannot be known for sure (a plan that cannot be asked for),
    a query that names the output table is refused too.

    Raises
    ------
    RFMError
        Naming the table, and saying how to fix it.
    """
    readers = [given for given in inputs if isinstance(given, Database)]
    if not readers or target.table is None:
        return target
    written = _written_table(target)
    for given in readers:
        read, named = _tables_read(given)
        if written[0] != read[0]:
            continue
        if given.table is not None and written in read[1]:
            through = _fold(given.scheme)(_name_parts(given.table)[-1], True) != written[-1]
            view = f" (through the view {given.table})" if through else ""
            raise RFMError(f"the output {target} is the input table{view}; write to another table")
        if written in read[1]:
            raise RFMError(
                f"the output {target} is read by the input query; write to another table"
            )
        if _named_in(written, named):
            raise RFMError(
                f"the output {target} may be read by the input query (it names "
                f"{written[-1]}); write to another table"
            )
    return target


def check_different_tables(targets: Sequence[Any]) -> None:
    """The database tables among ``targets`` (outputs of one command) are different tables,
    resolved as :func:`check_not_read` resolves them.

    Raises
    ------
    RFMError
        For two outputs that are one table.
    """
    seen: dict[Any, Database] = {}
    for target in targets:
        if not isinstance(target, Database) or target.table is None:
            continue
        written = _written_table(target)
        if written in seen:
            raise RFMError(
                f"two outputs are one table: {seen[written]} and {target}; write each to a "
                "table of its own"
            )
        seen[written] = target


def _written_table(db: Database) -> tuple[Any, ...]:
    """(the database, then the table as the database names it) of an output table: an
    existing PostgreSQL table as the server resolves it, a new one in the schema it will be
    made in."""
    assert db.table is not None
    parts = _name_parts(db.table)
    if db.scheme == "sqlite":
        return (_sqlite_identity(db.uri), _sqlite_folded(parts[-1], True))
    with connected(db, "find", must_exist=False) as connection:
        with contextlib.closing(connection.cursor()) as cursor:
            database = _postgres_identity(db, connection, cursor)
            cursor.execute(
                "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON "
                "n.oid = c.relnamespace WHERE c.oid = to_regclass($1)",
                (quoted(db.table),),
            )
            found = cursor.fetchall()
            if not found:
                cursor.execute("SELECT current_schema()")
                schema = parts[0] if len(parts) == 2 else cursor.fetchone()[0]
                found = [(schema, parts[-1])]
        connection.rollback()
    return (database, str(found[0][0]), str(found[0][1]))


def _tables_read(db: Database) -> tuple[tuple[Any, set[tuple[Any, ...]]], set[str] | None]:
    """((the database, the tables that reading ``db`` reads), the names its query's text holds,
    where the tables read may not be all: None where they are)."""
    statement = db.query if db.query is not None else f"SELECT * FROM {quoted(db.table or '')}"
    if db.scheme == "sqlite":
        database = _sqlite_identity(db.uri)
        read = _sqlite_tables_read(_sqlite_file(db.uri), statement)
        if read is None:
            return (database, set()), _names_in(statement, _sqlite_folded)
        return (database, {(database, name) for name in read}), None
    with connected(db, "read") as connection, contextlib.closing(connection.cursor()) as cursor:
        database = _postgres_identity(db, connection, cursor)
        read = _postgres_tables_read(db, connection, cursor, statement)
        connection.rollback()
    tables = {(database, schema, name) for schema, name in read}
    if db.query is None:  # a table's plan scans it, or the tables of its view
        return (database, tables), None
    # a plan leaves out what it knows it need not read (WHERE false, pruned partitions)
    return (database, tables), _names_in(statement, _postgres_folded)


def _named_in(written: tuple[Any, ...], named: set[str] | None) -> bool:
    return named is not None and written[-1] in named


def _sqlite_file(uri: str) -> str | None:
    """The file of a SQLite URI, as SQLite opens it (``file:`` URIs included); None for a
    database in memory."""
    path = _sqlite_path(uri)
    if path.startswith("file:"):
        parts = urlsplit(path)
        if dict(parse_qsl(parts.query)).get("mode") == "memory":
            return None
        path = unquote(parts.path)
    return None if path in ("", ":memory:") else path


def _sqlite_identity(uri: str) -> tuple[Any, ...]:
    """The file a SQLite URI opens, whatever its form: (device, inode) once it exists, else
    its real path (symlinks and ``..`` resolved)."""
    path = _sqlite_file(uri)
    if path is None:  # every connection has a memory database of its own
        return ("sqlite memory", object())
    try:
        found = os.stat(path)
    except OSError:
        return ("sqlite", os.path.realpath(path))
    return ("sqlite", found.st_dev, found.st_ino)


def _sqlite_folded(name: str, quoted_: bool = True) -> str:
    """A SQLite name as SQLite compares names, quoted or not: ASCII letters without case,
    others as they are."""
    return name.translate(_ASCII_LOWER)


def _postgres_folded(name: str, quoted_: bool = True) -> str:
    """A PostgreSQL name: a plain one with its ASCII letters folded to lower case (as the
    server folds them), a quoted one as it is."""
    return name if quoted_ else name.translate(_ASCII_LOWER)


def _fold(scheme: str) -> Callable[[str, bool], str]:
    return _sqlite_folded if scheme == "sqlite" else _postgres_folded


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _sqlite_tables_read(path: str | None, statement: str) -> set[str] | None:
    """The tables of the main database that SQLite reads for ``statement`` (through views
    too), as its authorizer sees them while the statement is prepared (never run); an empty
    set where the file does not exist (nothing can be read), None where SQLite cannot tell."""
    import sqlite3
    from urllib.parse import quote

    if path is None or not Path(path).is_file():
        return set()
    read: set[str] = set()

    def authorize(action: int, table: Any, column: Any, database: Any, view: Any) -> int:
        if action == sqlite3.SQLITE_READ and database in (None, "main") and table:
            read.add(_sqlite_folded(str(table), True))
        return sqlite3.SQLITE_OK

    try:
        uri = "file:" + quote(os.path.abspath(path)) + "?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as connection:
            connection.set_authorizer(authorize)
            connection.execute("EXPLAIN " + statement).fetchall()
    except sqlite3.Error:
        return None
    return read


def _postgres_identity(db: Database, connection: Any, cursor: Any) -> tuple[Any, ...]:
    """The server (its system identifier) and the database a PostgreSQL connection reaches;
    where the identifier may not be read, the database's name alone (two servers that hold
    databases of one name are then taken for one: a refusal too many, never one too few)."""
    try:
        cursor.execute("SELECT (SELECT system_identifier FROM pg_control_system())::text")
        system = cursor.fetchone()[0]
    except _driver_error(db):
        connection.rollback()
        system = None
    cursor.execute("SELECT current_database()")
    return ("postgres", system, str(cursor.fetchone()[0]))


_EXPLAIN = (
    "CREATE FUNCTION pg_temp.rfm_fast_explain(statement text) RETURNS SETOF json "
    "LANGUAGE plpgsql AS $rfm$ BEGIN RETURN QUERY EXECUTE "
    "'EXPLAIN (VERBOSE, FORMAT JSON) ' || statement; END $rfm$"
)
"""EXPLAIN as rows a driver can fetch (the PostgreSQL driver reads rows through COPY, which
takes no EXPLAIN); made in the connection's own temporary schema, and rolled back."""


def _postgres_tables_read(
    db: Database, connection: Any, cursor: Any, statement: str
) -> set[tuple[str, str]]:
    """(schema, table) of every relation the plan of ``statement`` scans, and of the
    partitioned tables above them; an empty set where there is no plan (the statement fails
    when it is run, before anything is written)."""
    import json

    try:
        cursor.execute(_EXPLAIN)
        cursor.execute("SELECT pg_temp.rfm_fast_explain($1)::text", (statement,))
        plans = [json.loads(row[0]) for row in cursor.fetchall()]
    except _driver_error(db):
        connection.rollback()
        return set()
    scanned: set[tuple[str, str]] = set()

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if "Relation Name" in node:
                scanned.add((str(node.get("Schema", "")), str(node["Relation Name"])))
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(plans)
    found: set[tuple[str, str]] = set()
    for schema, name in scanned:
        cursor.execute(
            "SELECT n.nspname, c.relname FROM pg_partition_ancestors(to_regclass($1)) a "
            "JOIN pg_class c ON c.oid = a.relid JOIN pg_namespace n ON n.oid = c.relnamespace",
            (quoted(f"{schema}.{name}") if schema else quoted(name),),
        )
        found |= {(str(s), str(t)) for s, t in cursor.fetchall()} | {(schema, name)}
    return found


_SQL_TOKEN = re.compile(
    r"""--[^\n]*|/\*.*?(?:\*/|\Z)|'(?:[^']|'')*'?|"((?:[^"]|"")*)"?|`([^`]*)`?|\[([^\]]*)\]?"""
    r"|([^\W\d]\w*)",
    re.DOTALL,
)
"""Comments and string literals (skipped), quoted names ("", `` and [] as SQLite also takes
them), and plain names."""


def _names_in(statement: str, fold: Callable[[str, bool], str]) -> set[str]:
    """Every name the text of ``statement`` holds, as the database would name the table it
    is: ``fold(name, quoted)``."""
    names: set[str] = set()
    for match in _SQL_TOKEN.finditer(statement):
        double, back, bracket, plain = match.groups()
        if double is not None:
            names.add(fold(double.replace('""', '"'), True))
        elif back is not None or bracket is not None:
            names.add(fold(back if back is not None else bracket, True))
        elif plain is not None:
            names.add(fold(plain, False))
    return names
