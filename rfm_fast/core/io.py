"""Inputs (Arrow, pandas, polars, NumPy, Parquet/CSV/IPC files, database queries and tables) as
streams of record batches, and outputs written atomically (files renamed into place, database
tables replaced inside a transaction).

Every input becomes a :class:`Source`: its column names, and a way to stream the columns a run
needs as Arrow record batches. Files and databases are read batch by batch, never whole.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import queue
import re
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.ipc as pa_ipc
import pyarrow.parquet as pq

from rfm_fast.core.database import (
    Database,
    check_database_output,
    check_not_read,
    database_reader,
    refuse_unknown_uri,
    replace_tables,
)
from rfm_fast.core.timing import PhaseTimer
from rfm_fast.errors import (
    RFMError,
    RFMWarning,
    excerpt,
    folder_write_reason,
    os_error_reason,
)

DEFAULT_BATCH_ROWS = 1 << 20
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst", ".tsv", ".txt")
IPC_SUFFIXES = (".arrow", ".feather", ".ipc", ".arrows")
OUTPUT_SUFFIXES = (".parquet", ".csv", ".csv.gz", ".csv.zst", ".arrow", ".feather")
COMPRESSED_CSV = {".csv.gz": "gzip", ".csv.zst": "zstd"}
"""Compressed CSV outputs: suffix -> the Arrow codec written."""

Opener = Callable[[list[str]], tuple[pa.Schema, Iterator[pa.RecordBatch]]]


@dataclass
class Source:
    """An input: a name for messages, its columns, its size if known, and a batch reader."""

    name: str
    column_names: list[str]
    total_rows: int | None
    opener: Opener
    estimated_rows: int | None = None
    """Where ``total_rows`` is not known, an upper estimate of it (a CSV file's: from its size),
    to size the aggregation's partitions; not a count to report."""

    @property
    def expected_rows(self) -> int | None:
        """The row count, else its estimate, else None."""
        return self.total_rows if self.total_rows is not None else self.estimated_rows

    def open(self, columns: list[str]) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """The schema of ``columns`` and an iterator over record batches holding just them."""
        return self.opener(columns)


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in (*PARQUET_SUFFIXES, *CSV_SUFFIXES, *IPC_SUFFIXES):
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


def open_source(
    data: Any,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    text_columns: tuple[str, ...] = (),
    timestamp_format: str | None = None,
    timestamp_column: str | None = None,
    csv: CsvReading | None = None,
) -> Source:
    """Wrap any supported input as a :class:`Source`: its column names, its row count where
    known, and a way to open a stream of batches of some of its columns.

    Parameters
    ----------
    data : table, data frame, mapping or path
        Any input :func:`rfm_fast.score` takes: an Arrow Table, RecordBatch or
        RecordBatchReader, a pandas or polars DataFrame, a mapping of names to arrays, a
        Parquet, CSV or Arrow IPC file, a folder of them, or a glob, or a database query or
        table (:class:`rfm_fast.Database`).
    batch_rows : int, default 1048576
        Rows per batch, for inputs that are not already in batches.
    text_columns : tuple of str, default ()
        Columns read as text from CSV files (order ids, whose type inference from the first
        block could fail on a later one).
    timestamp_format : str, optional
        The ``strptime`` format given to the CSV reader for ``timestamp_column``.
    timestamp_column : str, optional
        The timestamp column of a CSV file.

    Returns
    -------
    Source

    Raises
    ------
    RFMError
        For an input of another kind, a missing or unreadable file, or an empty glob.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from rfm_fast.core.io import open_source
    >>> source = open_source(pa.table({"c": [1, 2], "a": [1.0, 2.0]}), batch_rows=1)
    >>> source.column_names, source.total_rows
    (['c', 'a'], 2)
    >>> schema, batches = source.open(["a"])
    >>> [batch.num_rows for batch in batches]
    [1, 1]
    """
    if isinstance(data, str | os.PathLike):
        refuse_unknown_uri(os.fspath(data), "the input")
        if Path(data).is_dir():
            from rfm_fast.core.folders import partitioned_source  # (it imports this module)

            if (partitioned := partitioned_source(data, batch_rows)) is not None:
                return partitioned  # a folder with data files in subfolders: one dataset
        csv = CsvReading() if csv is None else csv
        sources = [
            _file_source(f, batch_rows, text_columns, timestamp_format, timestamp_column, csv)
            for f in _expand(data)
        ]
        return sources[0] if len(sources) == 1 else _many_files_source(sources, str(data))
    if isinstance(data, Database):
        name, columns, opener = database_reader(data, batch_rows)
        return Source(name, columns, None, opener)
    if isinstance(data, pa.Table):
        return _table_source("Arrow table", data, batch_rows)
    if isinstance(data, pa.RecordBatch):
        return _table_source("Arrow record batch", pa.Table.from_batches([data]), batch_rows)
    if isinstance(data, pa.RecordBatchReader):
        return _reader_source(data)
    module = type(data).__module__.split(".")[0]
    if module == "pandas" and hasattr(data, "columns"):
        return _pandas_source(data, batch_rows)
    if module == "polars" and hasattr(data, "to_arrow"):
        columns = [str(c) for c in data.columns]
        return Source(
            "polars DataFrame",
            columns,
            len(data),
            lambda cols: _stream_table(data.select(cols).to_arrow(), batch_rows),
        )
    if hasattr(data, "__arrow_c_stream__"):
        return _capsule_source(data)
    if isinstance(data, Mapping):
        return _mapping_source(data, batch_rows)
    raise RFMError(
        "data must be a pyarrow Table, RecordBatch or RecordBatchReader, a pandas or polars "
        "DataFrame, any object that exports an Arrow stream (__arrow_c_stream__: DuckDB, "
        "ibis, nanoarrow, ...), a mapping of column name to NumPy array, a path to a "
        "Parquet, CSV or Arrow IPC file, or an rfm_fast.Database; "
        f"got {type(data).__module__}.{type(data).__name__}"
    )


def _capsule_source(data: Any) -> Source:
    """An object that exports an Arrow C stream (the Arrow PyCapsule interface): its batches
    are read as they come, without a copy. Each :meth:`Source.open` asks for a new stream, so
    the object can be read twice where it can export twice (DuckDB relations, data frames)."""
    name = f"{type(data).__module__.split('.')[0]} {type(data).__name__} (Arrow stream)"
    try:
        first = [pa.RecordBatchReader.from_stream(data)]  # read by the first open
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise RFMError(f"cannot read the Arrow stream of the {name}: {exc}") from None
    schema = first[0].schema

    def opener(cols: list[str]):
        reader = first.pop() if first else pa.RecordBatchReader.from_stream(data)
        return pa.schema([reader.schema.field(c) for c in cols]), (
            batch.select(cols) for batch in reader
        )

    return Source(name, schema.names, None, opener)


def _stream_table(table: pa.Table, batch_rows: int) -> tuple[pa.Schema, Iterator]:
    return table.schema, iter(table.to_batches(max_chunksize=batch_rows))


def _table_source(name: str, table: pa.Table, batch_rows: int) -> Source:
    return Source(
        name,
        table.column_names,
        table.num_rows,
        lambda cols: _stream_table(table.select(cols), batch_rows),
    )


def _reader_source(reader: pa.RecordBatchReader) -> Source:
    def opener(cols: list[str]):
        schema = pa.schema([reader.schema.field(c) for c in cols])
        return schema, (batch.select(cols) for batch in reader)

    return Source("Arrow record batch reader", reader.schema.names, None, opener)


def _pandas_source(frame: Any, batch_rows: int) -> Source:
    columns = [str(c) for c in frame.columns]

    def opener(cols: list[str]):
        try:
            table = pa.Table.from_pandas(frame[cols], preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise RFMError(f"cannot convert the pandas DataFrame to Arrow: {exc}") from None
        return _stream_table(table, batch_rows)

    return Source("pandas DataFrame", columns, len(frame), opener)


def _mapping_source(mapping: Mapping, batch_rows: int) -> Source:
    columns = [str(c) for c in mapping]

    def opener(cols: list[str]):
        arrays = {}
        for col in cols:
            values = mapping[col]
            try:
                arrays[col] = (
                    values
                    if isinstance(values, pa.Array | pa.ChunkedArray)
                    else (pa.array(np.asarray(values)))
                )
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
                raise RFMError(f"cannot convert column {col!r} to Arrow: {exc}") from None
        lengths = {len(a) for a in arrays.values()}
        if len(lengths) > 1:
            raise RFMError(
                "the arrays of a mapping input must all have the same length; got "
                + ", ".join(f"{c}: {len(a)}" for c, a in arrays.items())
            )
        return _stream_table(pa.table(arrays), batch_rows)

    first = next(iter(mapping.values()), None)
    return Source("mapping of arrays", columns, None if first is None else len(first), opener)


# --------------------------------------------------------------------------- files


def _guarded(
    name: str,
    kind: str,
    batches: Iterator[pa.RecordBatch],
    row_groups: list[int] | None = None,
    recover: Callable[[Exception], None] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Re-raise read errors in the middle of a file as one-line :class:`RFMError` that say
    where (rows read before the error, and the Parquet row group); ``recover`` sees the error
    first, and may raise :class:`ReadAgain` instead."""
    rows = 0
    try:
        for batch in batches:
            rows += batch.num_rows
            yield batch
    except (pa.ArrowException, OSError) as exc:
        if recover is not None:
            recover(exc)
        where = f"after {rows:,} rows"
        if row_groups:
            group = int(np.searchsorted(np.cumsum(row_groups), rows, side="right"))
            where += f", in row group {group} of {len(row_groups)}"
        raise RFMError(f"cannot read {name} as {kind} ({where}): {exc}") from None


def guarded_batches(
    name: str, kind: str, batches: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """``batches`` of the input ``name`` read as ``kind`` (``"Parquet"``), with read errors in
    the middle as one-line :class:`RFMError` that say after how many rows (for the sources of
    other modules, such as :mod:`rfm_fast.core.folders`)."""
    return _guarded(name, kind, batches)


def _expand(data: str | os.PathLike) -> list[Path]:
    """The files of an input path: the file itself, a directory's data files, or a glob."""
    path = Path(data)
    if path.is_dir():
        files = sorted(
            p
            for p in path.iterdir()
            if p.is_file()
            and not p.name.startswith(".")
            and _suffix(p) in PARQUET_SUFFIXES + CSV_SUFFIXES + IPC_SUFFIXES
        )
        if not files:
            raise RFMError(f"input folder {path} holds no Parquet, CSV or Arrow IPC files")
        return files
    if not path.exists() and glob.has_magic(str(data)):
        files = sorted(Path(p) for p in glob.glob(str(data)) if Path(p).is_file())
        if not files:
            raise RFMError(f"no input file matches {data}")
        return files
    return [path]


def _many_files_source(sources: list[Source], name: str) -> Source:
    """Several files read one after the other as one input; they must share the columns."""
    first = sources[0]
    for source in sources[1:]:
        if source.column_names != first.column_names:
            raise RFMError(
                f"{source.name} has columns {source.column_names}, but {first.name} has "
                f"{first.column_names}; every file of {name} must have the same columns"
            )
    totals = [s.total_rows for s in sources]

    def opener(cols: list[str]):
        schema, _ = first.open(cols)

        def batches():
            for source in sources:
                file_schema, file_batches = source.open(cols)
                if not file_schema.equals(schema):
                    raise RFMError(
                        f"{source.name} has column types {file_schema}, but {first.name} has "
                        f"{schema}; every file of {name} must have the same types"
                    )
                yield from file_batches

        return schema, batches()

    total = None if None in totals else sum(totals)
    expected = [source.expected_rows for source in sources]
    estimate = None if None in expected else sum(expected)
    return Source(f"{name} ({len(sources)} files)", first.column_names, total, opener, estimate)


def _file_source(
    path: Path,
    batch_rows: int,
    text_columns: tuple[str, ...],
    timestamp_format: str | None,
    timestamp_column: str | None,
    csv: CsvReading,
) -> Source:
    if not path.exists():
        raise RFMError(f"input file not found: {path}")
    suffix = _suffix(path)
    name = str(path)
    if suffix in PARQUET_SUFFIXES:
        return _parquet_source(path, name, batch_rows)
    if suffix in CSV_SUFFIXES:
        source = _csv_source(
            path, name, batch_rows, text_columns, timestamp_format, timestamp_column, csv
        )
        if csv.ids:
            from rfm_fast.core.csv_ids import integer_ids_source  # it builds on this module

            source = integer_ids_source(source, csv)
        return source
    if suffix in IPC_SUFFIXES:
        return _ipc_source(path, name)
    raise RFMError(
        f"cannot tell the format of {name} from its suffix {suffix or '(none)'}; expected one "
        f"of {', '.join(PARQUET_SUFFIXES + CSV_SUFFIXES + IPC_SUFFIXES)}"
    )


def _parquet_source(path: Path, name: str, batch_rows: int) -> Source:
    try:
        # pre_buffer=False: with it, Arrow reads ahead every row group at once (GBs of RSS).
        parquet = pq.ParquetFile(path, pre_buffer=False)
        schema = parquet.schema_arrow
    except (pa.ArrowException, OSError) as exc:
        raise RFMError(f"cannot read {name} as Parquet: {exc}") from None

    groups = [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)]

    def opener(cols: list[str]):
        selected = pa.schema([schema.field(c) for c in cols])
        batches = (
            batch
            for row_groups, batch_size in row_group_batches(groups, batch_rows)
            for batch in parquet.iter_batches(
                batch_size=batch_size, row_groups=row_groups, columns=cols, use_threads=False
            )
        )
        return selected, _guarded(name, "Parquet", batches, groups)

    return Source(name, schema.names, parquet.metadata.num_rows, opener)


def row_group_batches(group_rows: list[int], batch_rows: int) -> list[tuple[list[int], int]]:
    """How to read row groups of ``group_rows`` rows in batches of at most ``batch_rows``, no
    batch across the edge of a row group that is read alone: runs of consecutive row groups
    that fit in a batch together, each read as one batch, and larger row groups alone, cut into
    batches of equal size. Each item is (row groups, batch size).

    A batch that takes the end of one row group and the start of the next costs Arrow a
    reallocation of every column: reading the three columns of a 10M-row file of 1M-row groups
    in batches of 2**20 rows took 0.31 CPU-s against 0.19 in batches of the row groups.

    >>> row_group_batches([1_000_000, 1_000_000, 300], 1 << 20)
    [([0], 1000000), ([1, 2], 1000300)]
    >>> row_group_batches([10, 10, 10], 4)
    [([0], 4), ([1], 4), ([2], 4)]
    """
    plan: list[tuple[list[int], int]] = []
    run: list[int] = []
    run_rows = 0
    for group, rows in enumerate(group_rows):
        if run and run_rows + rows > batch_rows:
            plan.append((run, max(run_rows, 1)))
            run, run_rows = [], 0
        if rows > batch_rows:
            pieces = -(-rows // batch_rows)
            plan.append(([group], -(-rows // pieces)))
        else:
            run.append(group)
            run_rows += rows
    if run:
        plan.append((run, max(run_rows, 1)))
    return plan


@dataclass
class CsvReading:
    """How CSV files are read, and what a read learned that the next one must know.

    ``delimiter``: one character, or ``"whitespace"`` (any run of spaces and tabs, as in the
    CDNOW master file); None is ``","`` (``"\t"`` for ``.tsv``). ``column_types``: types to
    read columns as (the user's, and those a read found it needed). ``newlines_in_values``:
    quoted values may hold line breaks.
    """

    delimiter: str | None = None
    column_types: dict[str, pa.DataType] = field(default_factory=dict)
    newlines_in_values: bool = False
    given: frozenset[str] = frozenset()
    """The columns whose type the user gave: never widened behind their back."""
    ids: tuple[str, ...] = ()
    """Customer id columns: read as text, and as int64 only where that merges no two spellings
    (:mod:`rfm_fast.core.csv_ids`)."""
    id_rules: dict[str, frozenset[str]] = field(default_factory=dict)
    """What the batches read so far allow of each of ``ids`` (empty: text)."""
    guessed: dict[str, str] = field(default_factory=dict)
    """The delimiter guessed for each file read without one (:func:`sniff_delimiter`), by
    file name."""


CSV_BLOCK_BYTES = 1 << 20
"""Bytes of CSV text Arrow parses at a time (1 MiB). Arrow parses (and, for ``.gz``, inflates) a
whole block to open a reader, and its streaming reader overlaps inflating with parsing only
between blocks: reading the Online Retail file's five columns took 0.18-0.24 s in 1 MiB blocks,
0.24-0.33 s in 4 MiB and 0.35-0.58 s in 16 MiB blocks; opening it for its header alone took
0.3-0.7 s of a 2 s run with 16 MiB. A file whose first row is longer is read in
:data:`CSV_LONG_ROW_BLOCK_BYTES` blocks."""
CSV_LONG_ROW_BLOCK_BYTES = 1 << 24
"""The block of a CSV file whose first row does not fit :data:`CSV_BLOCK_BYTES` (16 MiB)."""


CSV_BYTES_PER_ROW = 24
"""The fewest bytes a CSV row of orders is taken to have (``7,2024-01-01,5.00`` and its line
end): a file's size over this is an upper estimate of its rows."""
COMPRESSION_RATIO = 8
"""How many times its size a compressed CSV file is taken to inflate to (the Online Retail
file: 7.5 MB of gzip, 46 MB of text)."""


def _estimated_csv_rows(path: Path) -> int | None:
    """An upper estimate of the rows of the CSV file ``path``, from its size."""
    try:
        size = path.stat().st_size
    except OSError:
        return None
    if path.name.lower().endswith((".gz", ".bz2", ".zst")):
        size *= COMPRESSION_RATIO
    return size // CSV_BYTES_PER_ROW


class ReadAgain(Exception):
    """A CSV file must be read from its start again: a value far into it did not fit the types
    Arrow inferred from its first block (or a quoted value held a line break). The
    :class:`CsvReading` that was passed in now says how."""


def _csv_source(
    path: Path,
    name: str,
    batch_rows: int,
    text_columns: tuple[str, ...],
    timestamp_format: str | None,
    timestamp_column: str | None,
    csv: CsvReading,
) -> Source:
    delimiter = csv.delimiter or ("\t" if path.name.lower().endswith(".tsv") else None)
    if delimiter is None:
        delimiter = csv.guessed[name] = sniff_delimiter(_text_sample(path, name))
        guess = {"path": name, "delimiter": delimiter}  # for a front end's own words
        _log.info("%s: delimiter %r (guessed)", name, delimiter, extra=guess)
    whitespace = delimiter == "whitespace"

    def reader(
        convert: pa_csv.ConvertOptions, block_size: int = CSV_BLOCK_BYTES
    ) -> pa_csv.CSVStreamingReader:
        if whitespace:  # one text column of whole lines, split below
            parse = pa_csv.ParseOptions(delimiter="\x1f", quote_char=False)
            convert = pa_csv.ConvertOptions(column_types={"line": pa.string()})
            read = pa_csv.ReadOptions(block_size=block_size, column_names=["line"])
        else:
            parse = pa_csv.ParseOptions(
                delimiter=delimiter, newlines_in_values=csv.newlines_in_values
            )
            read = pa_csv.ReadOptions(block_size=block_size)
        try:
            return pa_csv.open_csv(
                path, read_options=read, parse_options=parse, convert_options=convert
            )
        except (pa.ArrowException, OSError) as exc:
            raise RFMError(f"cannot read {name} as CSV: {exc}") from None

    if whitespace:
        return _whitespace_source(path, name, batch_rows, reader, csv)
    header_types = pa_csv.ConvertOptions(column_types={c: pa.string() for c in text_columns})
    block_size = CSV_BLOCK_BYTES
    try:
        header = reader(header_types, block_size)
    except RFMError:  # a first row longer than the block
        block_size = CSV_LONG_ROW_BLOCK_BYTES
        header = reader(header_types, block_size)
    names = header.schema.names
    header.close()
    if len(names) == 1 and name not in csv.guessed:
        _refuse_one_column(name, delimiter, _text_sample(path, name))

    def opener(cols: list[str]):
        types = {c: pa.string() for c in text_columns if c in cols}
        types.update({c: t for c, t in csv.column_types.items() if c in cols})
        parsers = [timestamp_format] if timestamp_format else None
        if timestamp_format and timestamp_column in cols and timestamp_column not in types:
            types[timestamp_column] = pa.timestamp("us")

        def convert() -> pa_csv.ConvertOptions:
            # strings_can_be_null: an empty text cell is a null customer or order id, not "".
            return pa_csv.ConvertOptions(
                include_columns=cols,
                column_types=types,
                timestamp_parsers=parsers,
                strings_can_be_null=True,
            )

        try:
            stream = reader(convert(), block_size)
        except RFMError as exc:
            if not _timestamps_failed(exc, names, timestamp_column, types, csv):
                raise
            # The first block's timestamps do not parse with the format: read them as text,
            # so that the error names the column, the value and the formats that read it
            # (rfm_fast.core.arrow.parse_text_timestamps).
            types[timestamp_column] = pa.string()
            stream = reader(convert(), block_size)
        recover = _csv_recovery(name, names, csv)
        return stream.schema, _guarded(name, "CSV", _rebatched(stream, batch_rows), None, recover)

    return Source(name, names, None, opener, estimated_rows=_estimated_csv_rows(path))


_CONVERSION_ERROR = re.compile(
    r"In CSV column #(\d+): (?:Row #(\d+): )?CSV conversion error to ([^:]+): invalid value '(.*)'"
)


_ZONE_ERROR = re.compile(
    r"In CSV column #(\d+): (?:Row #(\d+): )?CSV conversion error to (timestamp[^:]*): "
    r"expected (?:no|a) zone offset in '([^']*)'"
)
"""A timestamp column whose first block has zone offsets and a later one not (or the other way
round): read again as text, it is refused as text that mixes them is, with the same message."""


SNIFF_BYTES = 1 << 16
"""How much of the start of a CSV file (decompressed) :func:`sniff_delimiter` looks at."""
SNIFFED_DELIMITERS = (",", ";", "\t", "|")
"""The delimiters a CSV file read without one may have, the first winning ties; else
``"whitespace"`` (runs of spaces and tabs), else ``","``."""
_log = logging.getLogger("rfm_fast")


def _text_sample(path: Path, name: str) -> str:
    """The first :data:`SNIFF_BYTES` of ``path`` as text (decompressed by its suffix), cut
    after its last whole line when the file is longer."""
    try:
        with pa.input_stream(str(path), compression="detect") as stream:
            data = stream.read(SNIFF_BYTES + 1)
    except (pa.ArrowException, OSError) as exc:
        raise RFMError(f"cannot read {name} as CSV: {exc}") from None
    if len(data) > SNIFF_BYTES:
        data = data[: data.rfind(b"\n", 0, SNIFF_BYTES) + 1] or data[:SNIFF_BYTES]
    return data.decode("utf-8", errors="replace").removeprefix("\ufeff")


def _records(sample: str) -> list[str]:
    """The non-blank records of ``sample``: lines, where a line break inside double quotes
    does not end one."""
    records, start, quoted = [], 0, False
    for i, char in enumerate(sample):
        if char == '"':
            quoted = not quoted
        elif char == "\n" and not quoted:
            records.append(sample[start:i])
            start = i + 1
    records.append(sample[start:])
    return [r.rstrip("\r") for r in records if r.strip()]


def _count_outside_quotes(record: str, delimiter: str) -> int:
    return sum(part.count(delimiter) for part in record.split('"')[::2])


def sniff_delimiter(sample: str) -> str:
    r"""The delimiter of a CSV file that starts with ``sample``: of
    :data:`SNIFFED_DELIMITERS`, the one that splits the most records into as many values as
    the first record (the header) has, outside double quotes; ties go to the first (``,``).
    With none in the header, ``"whitespace"`` where every record has the header's number
    (2 or more) of words; else ``","`` (a file of one column).

    Examples
    --------
    >>> sniff_delimiter("id;day;amount\n1;2024-01-02;3,50\n")
    ';'
    >>> sniff_delimiter('id,"name; first",amount\n1,"a; b",2\n')
    ','
    >>> sniff_delimiter("id  day       amount\n1   19970101  29.33\n")
    'whitespace'
    >>> sniff_delimiter("customer\n12\n")
    ','
    """
    records = _records(sample)
    if not records:
        return ","
    best, best_share = ",", 0.0
    for delimiter in SNIFFED_DELIMITERS:
        expected = _count_outside_quotes(records[0], delimiter)
        if expected == 0:
            continue
        share = sum(_count_outside_quotes(r, delimiter) == expected for r in records)
        share /= len(records)
        if share > best_share:
            best, best_share = delimiter, share
    if best_share > 0:
        return best
    words = len(records[0].split())
    if words >= 2 and all(len(r.split()) == words for r in records):
        return "whitespace"
    return ","


def _refuse_one_column(name: str, delimiter: str, sample: str) -> None:
    """A file read as one column whose lines another delimiter would split: an error that
    names that delimiter, never a silent one-column read."""
    found = sniff_delimiter(sample)
    records = _records(sample)
    if (
        found != delimiter
        and records
        and (found == "whitespace" or _count_outside_quotes(records[0], found) > 0)
    ):
        raise RFMError(
            f"{name} read with the delimiter {delimiter!r} has one column, "
            f"{excerpt(records[0])}, but its lines look separated by {found!r}: give "
            f"delimiter={found!r} (--delimiter), or leave it out to have it guessed"
        )


def _timestamps_failed(
    exc: RFMError,
    names: list[str],
    column: str | None,
    types: dict[str, pa.DataType],
    csv: CsvReading,
) -> bool:
    """Whether ``exc`` is Arrow's failure to read the timestamp ``column`` of a CSV file with
    the format the run gave it (not a type the user gave in the schema)."""
    if column not in names or column in csv.column_types or types.get(column) is None:
        return False
    return f"In CSV column #{names.index(column)}: " in str(exc) and "to timestamp" in str(exc)


def _csv_recovery(name: str, names: list[str], csv: CsvReading) -> Callable[[Exception], None]:
    """What a CSV read can recover from: a value that does not fit its column's inferred type,
    or a line break in a quoted value. ``csv`` is widened and :class:`ReadAgain` raised."""

    def recover(exc: Exception) -> None:
        text = str(exc)
        found = _CONVERSION_ERROR.search(text) or _ZONE_ERROR.search(text)
        if found is not None:
            column, value = names[int(found[1])], found[4]
            if column in csv.given:
                raise RFMError(
                    f"CSV column {column!r} of {name} was given the type {found[3]} (schema=), "
                    f"but has {value!r}; give it a type that holds that value"
                ) from None
            wider = pa.float64() if _is_number(value) and "int" in found[3] else pa.string()
            if csv.column_types.get(column) != wider:
                csv.column_types[column] = wider
                warnings.warn(
                    f"CSV column {column!r} of {name} looked like {found[3]} in its first rows "
                    f"but has {value!r} further on: read the file again with it as {wider}",
                    RFMWarning,
                    stacklevel=2,
                )
                raise ReadAgain(column) from None
        line_break = "columns, got" in text or "newlines_in_values" in text
        if line_break and not csv.newlines_in_values:
            csv.newlines_in_values = True  # a quoted line break at a block boundary
            raise ReadAgain("newlines") from None

    return recover


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _whitespace_source(
    path: Path,
    name: str,
    batch_rows: int,
    reader: Callable[[pa_csv.ConvertOptions], pa_csv.CSVStreamingReader],
    csv: CsvReading,
) -> Source:
    """A file of whitespace-separated columns (``delimiter="whitespace"``): its first line
    names the columns; each value is read as an integer, a float or text, the narrowest that
    holds the whole column of a batch (the first batch decides, as for CSV)."""
    first = reader(pa_csv.ConvertOptions())
    try:
        head = first.read_next_batch()
    except StopIteration:
        raise RFMError(f"{name} is empty: expected a first line naming the columns") from None
    finally:
        first.close()
    names = head.column("line")[0].as_py().split()
    if not names:
        raise RFMError(f"the first line of {name} is blank: expected the column names")
    if len(names) == 1 and name not in csv.guessed:
        _refuse_one_column(name, "whitespace", _text_sample(path, name))

    def columns_of(lines: pa.Array, cols: list[str], first_row: int) -> pa.RecordBatch:
        fields = pc.utf8_split_whitespace(pc.utf8_trim_whitespace(lines))
        counts = pc.list_value_length(fields)
        wrong = pc.and_(pc.not_equal(counts, len(names)), pc.greater(counts, 0))
        bad = pc.index(wrong, True).as_py()
        if bad >= 0:
            raise RFMError(
                f"line {first_row + bad + 1} of {name} has {counts[bad].as_py()} values; the "
                f"first line names {len(names)} columns"
            )
        fields = pc.if_else(pc.equal(counts, 0), None, fields)  # blank lines: null rows
        arrays = []
        for column in cols:
            values = pc.list_element(fields, names.index(column))
            wanted = csv.column_types.get(column)
            if wanted is None:
                arrays.append(_narrowest(values))
                continue
            try:
                arrays.append(values.cast(wanted))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                if column in csv.given:
                    raise RFMError(
                        f"column {column!r} of {name} was given the type {wanted} (schema=), "
                        "but a value in it does not fit; give a type that holds its values"
                    ) from None
                csv.column_types[column] = pa.string()  # float64 did not hold it either
                raise ReadAgain(column) from None
        return pa.RecordBatch.from_arrays(arrays, names=cols)

    def opener(cols: list[str]):
        stream = reader(pa_csv.ConvertOptions())

        def batches() -> Iterator[pa.RecordBatch]:
            row = 0
            for batch in _rebatched(stream, batch_rows):
                lines = batch.column("line")
                if row == 0:
                    lines = lines.slice(1)  # the header
                yield columns_of(lines, cols, row + (1 if row == 0 else 0))
                row += batch.num_rows

        iterator = batches()
        try:
            peek = next(iterator)
        except StopIteration:
            return pa.schema([(c, pa.string()) for c in cols]), iter(())
        schema = peek.schema

        def all_batches() -> Iterator[pa.RecordBatch]:
            yield peek
            for batch in iterator:
                if batch.schema != schema:
                    yield _same_types(batch, schema, name, csv)
                else:
                    yield batch

        return schema, _guarded(name, "whitespace-separated text", all_batches())

    return Source(name, names, None, opener)


def _same_types(
    batch: pa.RecordBatch, schema: pa.Schema, name: str, csv: CsvReading
) -> pa.RecordBatch:
    """A later batch of a whitespace-separated file in the first batch's types; a column that
    does not fit is widened in ``csv`` and the file read again (:class:`ReadAgain`)."""
    arrays = []
    for column, field_ in zip(batch.schema.names, schema, strict=True):
        values = batch.column(column)
        if values.type == field_.type:
            arrays.append(values)
            continue
        try:
            arrays.append(values.cast(field_.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            csv.column_types[column] = values.type  # float64, or text
            warnings.warn(
                f"column {column!r} of {name} looked like {field_.type} in its first rows, "
                f"but not further on: read it again as {values.type}",
                RFMWarning,
                stacklevel=2,
            )
            raise ReadAgain(column) from None
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _narrowest(values: pa.Array) -> pa.Array:
    """Text values as int64, else float64, else the text itself."""
    for type_ in (pa.int64(), pa.float64()):
        try:
            return values.cast(type_)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return values


def _rebatched(batches: Iterator[pa.RecordBatch], batch_rows: int) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        yield from pa.Table.from_batches([batch]).to_batches(max_chunksize=batch_rows)


def _ipc_source(path: Path, name: str) -> Source:
    try:
        source = pa.memory_map(str(path))
        try:
            file_reader = pa_ipc.open_file(source)
            schema = file_reader.schema
            total = sum(
                file_reader.get_batch(i).num_rows for i in range(file_reader.num_record_batches)
            )

            def batches(cols):
                for i in range(file_reader.num_record_batches):
                    yield file_reader.get_batch(i).select(cols)
        except pa.ArrowInvalid:
            source = pa.memory_map(str(path))
            stream_reader = pa_ipc.open_stream(source)
            schema, total = stream_reader.schema, None

            def batches(cols):
                for batch in stream_reader:
                    yield batch.select(cols)
    except (pa.ArrowException, OSError) as exc:
        raise RFMError(f"cannot read {name} as Arrow IPC: {exc}") from None

    def opener(cols: list[str]):
        selected = pa.schema([schema.field(c) for c in cols])
        return selected, _guarded(name, "Arrow IPC", batches(cols))

    return Source(name, schema.names, total, opener)


def prefetched(
    batches: Iterator[pa.RecordBatch], depth: int = 2, timer: PhaseTimer | None = None
) -> Iterator[pa.RecordBatch]:
    """Read (and decode) up to ``depth`` batches ahead in a thread while the caller works.

    Arrow releases the GIL while it decodes, so reading overlaps with aggregation. Errors of the
    reader are raised in the caller, at the batch where they happened. ``timer`` gets the phase
    ``read``: the caller's wait for batches (wall) and the reader thread's CPU time.
    """
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()
    reader_cpu = [0.0]

    def produce() -> None:
        try:
            for batch in _cpu_timed(batches, reader_cpu):
                while not stop.is_set():
                    try:
                        slots.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(done)
        except BaseException as exc:  # handed to the consumer
            slots.put(exc)

    reader = threading.Thread(target=produce, name="rfm_fast-reader", daemon=True)
    reader.start()
    waited = 0.0
    try:
        while True:
            started = time.perf_counter()
            item = slots.get()
            waited += time.perf_counter() - started
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while reader.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(queue.Empty):
                slots.get(timeout=0.1)
        if timer is not None:
            timer.add("read", waited, reader_cpu[0])


def _cpu_timed(batches: Iterator[pa.RecordBatch], cpu: list[float]) -> Iterator[pa.RecordBatch]:
    """``batches``, adding the CPU time this thread spends producing them to ``cpu[0]``."""
    while True:
        started = time.thread_time()
        batch = next(batches, None)
        cpu[0] += time.thread_time() - started
        if batch is None:
            return
        yield batch


# --------------------------------------------------------------------------- output


def output_suffix(path: str | os.PathLike) -> str:
    """The suffix that names ``path``'s output format: ``.csv.gz`` and ``.csv.zst`` whole, else
    the last suffix (lower case)."""
    name = Path(path).name.lower()
    return next((s for s in COMPRESSED_CSV if name.endswith(s)), Path(name).suffix)


def check_output_path(
    path: str | os.PathLike,
    inputs: Sequence[Any] = (),
    suffixes: Sequence[str] | None = OUTPUT_SUFFIXES,
) -> Path:
    """The output path, checked before any work: its suffix names a format we write (any, for
    ``suffixes=None``), it is not a folder nor one of the ``inputs`` (paths; other inputs are
    ignored), and its folder exists and can be written to.

    Raises
    ------
    RFMError
        Saying which of these does not hold.
    """
    path = Path(path)
    if suffixes is not None and output_suffix(path) not in suffixes:
        raise RFMError(
            f"cannot tell the output format of {path} from its suffix; use one of "
            f"{', '.join(suffixes)}"
        )
    if path.is_dir():
        raise RFMError(f"the output {path} is a folder; give the name of a file to write")
    folder = path.parent
    if not folder.is_dir():
        raise RFMError(f"output folder {folder} does not exist")
    if (reason := folder_write_reason(folder)) is not None:
        raise RFMError(f"cannot write to the output folder {folder}: {reason}")
    for given in inputs:
        if not isinstance(given, str | os.PathLike):
            continue
        for read in _files_read(given):
            if same_path(path, read):
                named = "" if str(read) == str(path) else f" {read}"
                raise RFMError(
                    f"the output {path} is the input file{named}; write the result to another file"
                )
    return path


def check_distinct_outputs(outputs: Sequence[tuple[str, Any]]) -> None:
    """Refuse two outputs of one command that name one file (``y.csv`` and ``./y.csv``, a
    symlink and its target, ...): the second would replace the first. ``outputs`` holds each
    output as (its option such as ``"--changes"``, or ``""``; its path, or None where not
    given); database tables are left to :func:`check_output`.

    Raises
    ------
    RFMError
        Naming both outputs.
    """
    given = [(o, Path(p)) for o, p in outputs if isinstance(p, str | os.PathLike)]
    for i, (option, path) in enumerate(given):
        for other, other_path in given[:i]:
            if same_path(path, other_path):
                raise RFMError(
                    f"{other or 'the output'} {other_path} and {option or 'the output'} {path} "
                    f"are one file: the second would replace the first; give "
                    f"{option or 'each output'} another file"
                )


def same_path(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether ``a`` and ``b`` name one file as the operating system resolves them: the same
    file (hard links, case-insensitive file systems) where both exist, else the same real path
    (relative forms, ``./``, ``..``, doubled slashes and symbolic links resolved).

    >>> same_path("out/scores.csv", "out//./scores.csv")
    True
    """
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def _files_read(given: str | os.PathLike) -> list[Path]:
    """The files an input reads: itself, or those of a folder or a glob (none that does not
    exist: a run cannot read it)."""
    try:
        named = [Path(given)] if Path(given).is_file() else _expand(given)
    except (RFMError, OSError):
        return []
    return [path for path in named if path.exists()]


def check_output(
    target: str | os.PathLike | Database,
    inputs: Sequence[Any] = (),
    suffixes: Sequence[str] | None = OUTPUT_SUFFIXES,
) -> Path | Database:
    """:func:`check_output_path` for a file; for a database table (:class:`Database`), that the
    driver is installed, the database can be reached, and the table is not an input's.

    Raises
    ------
    RFMError
        Saying what does not hold.
    """
    if not isinstance(target, Database):
        return check_output_path(target, inputs, suffixes)
    return check_not_read(check_database_output(target), inputs)


def write_atomically(
    path: str | os.PathLike, write: Callable[[Path], None], durable: bool = False
) -> Path:
    """Call ``write(temporary)`` on a new temporary file beside ``path``, then rename it over
    ``path``: readers see the old file or the complete new one, and a failed or interrupted
    write (an exception, Ctrl-C, or SIGTERM under the ``rfm`` command) leaves nothing behind.
    Each call has a temporary name of its own, so concurrent writers do not collide.

    ``durable=True`` also survives a crash of the machine: the temporary file is flushed to
    disk (fsync) before the rename, and the folder after it, so the new name never points at
    data that is not on disk yet.

    Raises
    ------
    RFMError
        When the file cannot be written, saying why (permission, disk full, ...).
    """
    return write_together([(Path(path), write)], durable=durable)[0]


def write_together(
    writes: Sequence[tuple[str | os.PathLike, Callable[[Path], None]]],
    durable: bool = False,
    before_renames: Callable[[], None] | None = None,
) -> list[Path]:
    """Write several files as :func:`write_atomically` writes one: every ``write(temporary)``
    first, and only once all have succeeded, the renames, in the order given (put the file
    that records the others' work, such as a state, last). All or nothing: a failure or
    interruption before the renames leaves every path as it was, and one during the renames
    puts back the files already replaced (each is kept aside, as a hard link or a copy, until
    every rename has succeeded).

    A path that is a symbolic link is written through: the file it points to is replaced (its
    temporary file beside that file), and the link stays.

    ``before_renames`` is called once every temporary file is written, before the first rename
    (database tables are committed there): if it fails, no file is renamed.

    Raises
    ------
    RFMError
        When a file cannot be written, saying which and why.
    """
    temporaries: list[Path] = []
    kept: list[tuple[Path, Path | None]] = []  # (target, its old content aside, or None: new)
    done = False
    try:
        targets = [write_target(path) for path, _ in writes]
        for (path, write), target in zip(writes, targets, strict=True):
            temporary = _temporary_beside(target)
            temporaries.append(temporary)
            try:
                write(temporary)
                if durable:
                    _fsync(temporary)
            except OSError as exc:
                raise RFMError(f"cannot write {path}: {os_error_reason(exc)}") from None
        if before_renames is not None:
            before_renames()
        for (path, _), target, temporary in zip(writes, targets, temporaries, strict=True):
            try:
                if len(writes) > 1:  # (one file alone has nothing to put back)
                    kept.append((target, _kept_aside(target)))
                os.replace(temporary, target)
                if durable:
                    _fsync(target.parent)
            except OSError as exc:
                raise RFMError(f"cannot write {path}: {os_error_reason(exc)}") from None
        done = True
        return [Path(path) for path, _ in writes]
    except BaseException:
        for temporary in temporaries:
            with contextlib.suppress(OSError):
                temporary.unlink()
        raise
    finally:
        _settle(kept, done, durable)


def write_target(path: str | os.PathLike) -> Path:
    """The file a write to ``path`` replaces: ``path`` itself, or the file a symbolic link at
    ``path`` points to (through every link), so that the link stays."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _kept_aside(target: Path) -> Path | None:
    """A hard link to (or, where links cannot be made, a copy of) the file at ``target``, beside
    it, before it is replaced; None when there is no file there."""
    if not target.is_file():
        return None
    aside = _temporary_beside(target)
    try:
        aside.unlink()
        os.link(target, aside)
    except OSError:
        shutil.copy2(target, aside)
    return aside


def _settle(kept: list[tuple[Path, Path | None]], done: bool, durable: bool) -> None:
    """After the renames of :func:`write_together`: drop the old files kept aside, or (when a
    rename failed) put them back, and remove the new files that replaced nothing."""
    for target, aside in reversed(kept):
        with contextlib.suppress(OSError):
            if done:
                if aside is not None:
                    aside.unlink()
            elif aside is not None:
                os.replace(aside, target)
            elif target.is_file():
                target.unlink()
            if durable and not done:
                _fsync(target.parent)


def _temporary_beside(path: Path) -> Path:
    """A new empty file of its own beside ``path``, with the mode ``path`` has (or would get)."""
    try:
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise RFMError(f"cannot write {path}: {os_error_reason(exc)}") from None
    os.close(handle)
    temporary = Path(name)
    try:  # mkstemp makes the file private (0600); an output gets the usual mode
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask()
        os.chmod(temporary, mode)
    except OSError:
        pass
    return temporary


def _fsync(path: Path) -> None:
    """Flush the file or folder at ``path`` to disk."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_table(table: pa.Table, path: str | os.PathLike | Database) -> Path | Database:
    """Write ``table`` in the format of the suffix, atomically (:func:`write_atomically`), or
    to a database table (a :class:`Database`), replaced inside one transaction."""
    target = check_output(path)
    if isinstance(target, Database):
        replace_tables([(target, table)])
        return target
    return write_atomically(target, table_writer(table, target))


def write_outputs(
    outputs: Mapping[str | os.PathLike | Database, pa.Table],
    last: tuple[Path, Callable[[Path], None]] | None = None,
    inputs: Sequence[Any] = (),
    durable: bool = False,
) -> list[Path | Database]:
    """Write tables to files and database tables, and ``last`` (a path and its writer, such as
    a state) after them: the files are written to temporary files, then the database tables
    are replaced (one transaction per database), then the files renamed into place, ``last``
    at the end. A failure before the renames (a table that cannot be written included) leaves
    every file as it was.

    Raises
    ------
    RFMError
        When an output cannot be written, saying which and why.
    """
    files: list[tuple[Path, Callable[[Path], None]]] = []
    tables: list[tuple[Database, pa.Table]] = []
    targets: list[Path | Database] = []
    check_distinct_outputs([("", path) for path in [*outputs, *(last or ())[:1]]])
    for given, table in outputs.items():
        target = check_output(given, inputs)
        targets.append(target)
        if isinstance(target, Database):
            tables.append((target, table))
        else:
            files.append((target, table_writer(table, target)))
    if last is not None:
        files.append(last)
        targets.append(last[0])
    write_together(
        files, durable=durable, before_renames=(lambda: replace_tables(tables)) if tables else None
    )
    return targets


def table_writer(table: pa.Table, path: str | os.PathLike) -> Callable[[Path], None]:
    """The function that writes ``table`` to a temporary file in the format of ``path``'s suffix
    (Parquet, CSV at the decimals of its money columns, gzip- or zstd-compressed CSV, or Arrow
    IPC)."""
    suffix = output_suffix(path)

    def write(temporary: Path) -> None:
        if suffix == ".parquet":
            pq.write_table(table, temporary, use_dictionary=dictionary_columns(table))
        elif suffix == ".csv":
            pa_csv.write_csv(_money_rounded(_decoded(table)), temporary)
        elif suffix in COMPRESSED_CSV:
            with pa.CompressedOutputStream(str(temporary), COMPRESSED_CSV[suffix]) as stream:
                pa_csv.write_csv(_money_rounded(_decoded(table)), stream)
        else:
            with pa_ipc.new_file(temporary, table.schema) as writer:
                writer.write_table(table)

    return write


DICTIONARY_SAMPLE_ROWS = 4096
"""Rows of a column that :func:`dictionary_columns` looks at (evenly spaced)."""
TEXT_SAMPLE_BYTES = 32
"""Bytes of each sampled text that :func:`dictionary_columns` compares."""


def dictionary_columns(table: pa.Table) -> list[str]:
    """The columns of ``table`` that a Parquet file should dictionary-encode: those with few
    distinct values (at most half of a sample of :data:`DICTIONARY_SAMPLE_ROWS` evenly spaced
    rows), dictionary columns, and columns of other types than numbers, times and text. A
    column of unique values, such as the customer key of a result, is written plain, as
    DuckDB writes it.

    Arrow tries a dictionary for every column and falls back to plain encoding only once the
    dictionary passes 1 MiB: writing the result of 492K customers took 0.21 CPU-s with a
    dictionary for every column, 0.11 with this choice, into a smaller file.

    >>> dictionary_columns(pa.table({"key": range(1000), "score": [1, 2] * 500}))
    ['score']
    """
    rows = table.num_rows
    step = max(1, rows // DICTIONARY_SAMPLE_ROWS)
    sample = np.arange(0, rows, step, dtype=np.int64)[:DICTIONARY_SAMPLE_ROWS]
    chosen = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        distinct = distinct_in_sample(column, sample)
        if distinct is None or 2 * distinct <= sample.shape[0]:
            chosen.append(name)
    return chosen


def distinct_in_sample(column: pa.ChunkedArray, sample: np.ndarray) -> int | None:
    """Distinct values of ``column`` at the rows ``sample`` (null slots count as whatever
    they hold), for columns of numbers, times or text; None for other types. NumPy, not
    Arrow's hash kernels: their first call costs a tenth of a second."""
    type_ = column.type
    fixed = pa.types.is_integer(type_) or pa.types.is_floating(type_) or pa.types.is_temporal(type_)
    if not (fixed or pa.types.is_string(type_) or pa.types.is_large_string(type_)):
        return None
    if not sample.shape[0]:
        return 0
    array = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    if fixed:
        if type_.bit_width % 8:
            return None
        values = np.frombuffer(array.buffers()[1], dtype=f"u{type_.bit_width // 8}")
        return _distinct_count(values[array.offset + sample])
    offsets_type = np.int64 if pa.types.is_large_string(type_) else np.int32
    offsets = np.frombuffer(array.buffers()[1], dtype=offsets_type)[array.offset :]
    data = array.buffers()[2]
    data = np.empty(0, np.uint8) if data is None else np.frombuffer(data, dtype=np.uint8)
    starts = offsets[sample].astype(np.int64)
    lengths = offsets[sample + 1] - starts
    width = min(int(lengths.max()), TEXT_SAMPLE_BYTES)
    # each sampled text hashed from its length and first bytes (an estimate: texts that
    # differ only past TEXT_SAMPLE_BYTES count once, and so would a rare collision)
    at = np.minimum(starts[:, None] + np.arange(width), max(data.shape[0] - 1, 0))
    texts = np.where(np.arange(width) < lengths[:, None], data[at], 0).astype(np.uint64)
    hashes = lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    if width:
        hashes += texts @ _BYTE_MULTIPLIERS[:width]
    return _distinct_count(hashes)


def _distinct_count(values: np.ndarray) -> int:
    ordered = np.sort(values)
    return int(np.count_nonzero(ordered[1:] != ordered[:-1])) + 1


_BYTE_MULTIPLIERS = np.random.default_rng(25).integers(
    1, 1 << 63, TEXT_SAMPLE_BYTES, dtype=np.uint64
) | np.uint64(1)


CSV_MAX_DECIMALS = 6
"""The most decimals :func:`decimals_of` looks for; values finer than that are written as they
are."""


def decimals_of(values: np.ndarray) -> int | None:
    """The fewest decimals (0 to :data:`CSV_MAX_DECIMALS`) that every finite value has, up to
    the float64 noise of sums and products (256 units in the last place), or None.

    >>> decimals_of(np.array([1168.0600000000002, 3.5, 0.30000000000000004]))
    2
    >>> decimals_of(np.array([1 / 3])) is None
    True
    """
    finite = values[np.isfinite(values)]
    for decimals in range(CSV_MAX_DECIMALS + 1):
        scaled = finite * 10.0**decimals
        noise = 256 * np.finfo(np.float64).eps * np.maximum(np.abs(scaled), 1.0)
        if np.all(np.abs(scaled - np.rint(scaled)) <= noise):
            return decimals
    return None


def _money_rounded(table: pa.Table) -> pa.Table:
    """Float columns rounded to the decimals their values have (:func:`decimals_of`), so that
    CSV shows ``1168.06``, not ``1168.0600000000002``. A ``monetary`` column next to a
    ``frequency`` column takes the decimals of the sums (monetary times frequency): a mean per
    order is written at the precision of the amounts. Values with more decimals are kept."""
    names = table.column_names
    for i, column in enumerate(table.schema):
        if not pa.types.is_floating(column.type):
            continue
        values = table.column(i).to_numpy(zero_copy_only=False).astype(np.float64)
        if column.name == "monetary" and "frequency" in names:
            frequency = table.column("frequency").to_numpy(zero_copy_only=False)
            decimals = decimals_of(values * frequency.astype(np.float64))
        else:
            decimals = decimals_of(values)
        if decimals is not None:
            # rint(x * 10**d) / 10**d: the division by an exact power of ten gives the double
            # nearest the decimal (pyarrow's round multiplies by 10**-d, which is not exact)
            scale = 10.0**decimals
            nulls = table.column(i).is_null().to_numpy(zero_copy_only=False)
            rounded = pa.array(np.rint(values * scale) / scale, column.type, mask=nulls)
            table = table.set_column(i, column.name, rounded)
    return table


def _decoded(table: pa.Table) -> pa.Table:
    """Dictionary columns decoded to their values (CSV has no dictionaries)."""
    for i, column in enumerate(table.schema):
        if pa.types.is_dictionary(column.type):
            table = table.set_column(i, column.name, table.column(i).cast(column.type.value_type))
    return table


def require_rereadable(data: Any, what: str, other_fix: str = "") -> None:
    """Raise RFMError for inputs that can be read only once (record batch readers, iterators),
    for functions that read their input twice; ``other_fix`` starts the advice."""
    if isinstance(data, pa.RecordBatchReader | Iterator):
        fix = f"{other_fix} " if other_fix else ""
        raise RFMError(
            f"{what} reads its input twice, and a {type(data).__name__} can be read only once; "
            f"{fix}pass a file, a folder, a table or a data frame (or call reader.read_all() "
            "first)"
        )


def table_to_ipc(table: pa.Table) -> bytes:
    """``table`` as the bytes of one Arrow IPC stream (states and summaries travel so)."""
    return table_to_ipc_buffer(table).to_pybytes()


def table_to_ipc_buffer(table: pa.Table) -> pa.Buffer:
    """:func:`table_to_ipc` without the copy into ``bytes``: the Arrow buffer itself.

    The stream's size is counted first and the buffer allocated once: a growing
    ``BufferOutputStream`` copies a large table several times as it doubles (a 4.9M-customer
    state: 0.7-1.6 s against 0.05 s)."""
    counted = pa.MockOutputStream()
    with pa_ipc.new_stream(counted, table.schema) as writer:
        writer.write_table(table)
    buffer = pa.allocate_buffer(counted.size())
    with pa_ipc.new_stream(pa.FixedSizeBufferWriter(buffer), table.schema) as writer:
        writer.write_table(table)
    return buffer


def table_from_ipc(data: bytes | memoryview) -> pa.Table:
    """The table that :func:`table_to_ipc` wrote."""
    return pa_ipc.open_stream(pa.py_buffer(data)).read_all()
