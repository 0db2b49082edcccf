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
import importlib
import os
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import pyarrow as pa
import pyarrow.compute as pc

from rfm_fast.errors import RFMError, folder_write_reason

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
    return shown


def secrets_of(uri: str) -> list[str]:
    """The strings of ``uri`` that no message may show: the URI itself, its user information,
    and its passwords (as written and decoded)."""
    found = [uri]
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
    return " ".join(message.split())


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


# --------------------------------------------------------------------------- connections


def _driver(db: Database) -> Any:
    module, extra = DRIVERS[db.scheme]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise RFMError(
            f"reading or writing {redacted(db.uri)} needs the ADBC driver {module.split('.')[0]}: "
            f"pip install 'rfm_fast[{extra}]'"
        ) from None


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
            if must_exist and not Path(path).is_file():
                raise RFMError(f"database file not found: {path} ({redacted(db.uri)})")
            if not must_exist and not Path(path).parent.is_dir():
                raise RFMError(f"output folder {Path(path).parent} does not exist")
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
    except BaseException:
        stack.close()
        raise
    return schema, _Batches(db, reader, columns, schema, batch_rows, stack)


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
    ) -> None:
        self._db, self._reader, self._columns = db, reader, columns
        self._schema, self._batch_rows = schema, batch_rows
        self._pending: list[pa.RecordBatch] = []
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
            batch = _plain_batch(batch.select(self._columns), self._schema)
            self._pending = pa.Table.from_batches([batch]).to_batches(
                max_chunksize=self._batch_rows
            )[::-1]
        batch = self._pending.pop()
        self._rows += batch.num_rows
        return batch


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
    if db.scheme == "sqlite" and not Path(_sqlite_path(db.uri)).exists():
        _driver(db)  # a new file: written only once there is something to write
        folder = Path(_sqlite_path(db.uri)).parent
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
        When a table cannot be written (the database's tables are then left as they were).
    """
    by_uri: dict[str, list[tuple[Database, pa.Table]]] = {}
    for db, table in writes:
        if db.table is None:
            raise RFMError(f"name the table to write in {redacted(db.uri)}")
        by_uri.setdefault(db.uri, []).append((db, table))
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
