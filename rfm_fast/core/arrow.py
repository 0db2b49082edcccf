"""Arrow arrays -> kernel-ready NumPy views (zero-copy where the layout allows), and time units.

The kernels read Arrow buffers directly: values, string offsets and data, and validity bitmaps
(``bitmap``, ``bit_offset``; an empty bitmap means "no nulls"). This module is the only place
that knows Arrow's physical layout.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rfm_fast.errors import RFMError, excerpt

NO_BITMAP = np.empty(0, dtype=np.uint8)
EPOCH = dt.datetime(1970, 1, 1)


@dataclass(frozen=True)
class Validity:
    """An Arrow validity bitmap as the kernels take it."""

    bitmap: np.ndarray
    bit_offset: int

    def mask(self, n: int) -> np.ndarray:
        """The validity of ``n`` values as a boolean array (True: valid)."""
        if self.bitmap.shape[0] == 0:
            return np.ones(n, dtype=bool)
        bits = np.unpackbits(self.bitmap, bitorder="little")
        return bits[self.bit_offset : self.bit_offset + n].astype(bool)


ALL_VALID = Validity(NO_BITMAP, 0)
"""The validity of a column without nulls (no bitmap)."""


@dataclass(frozen=True)
class IntColumn:
    """Integer keys or values of one array chunk."""

    values: np.ndarray
    validity: Validity


@dataclass(frozen=True)
class StringColumn:
    """The offsets and data buffers of one string array chunk."""

    offsets: np.ndarray
    data: np.ndarray
    validity: Validity

    def __len__(self) -> int:
        return self.offsets.shape[0] - 1


@dataclass(frozen=True)
class DictionaryColumn:
    """A dictionary array: indices (nulls as ``len(dictionary)``) and its dictionary."""

    indices: np.ndarray
    dictionary: pa.Array

    def __len__(self) -> int:
        return self.indices.shape[0]


KeyColumn = IntColumn | StringColumn | DictionaryColumn


def validity(array: pa.Array) -> Validity:
    """The validity bitmap of ``array`` (empty when it has no nulls)."""
    if array.null_count == 0:
        return Validity(NO_BITMAP, 0)
    buffer = array.buffers()[0]
    return Validity(np.frombuffer(buffer, dtype=np.uint8), array.offset)


def primitive_values(array: pa.Array, dtype: np.dtype | type) -> np.ndarray:
    """Zero-copy NumPy view of the values buffer of a fixed-width array (nulls hold garbage)."""
    buffer = array.buffers()[1]
    if buffer is None or len(array) == 0:
        return np.empty(0, dtype=dtype)
    values = np.frombuffer(buffer, dtype=dtype)
    return values[array.offset : array.offset + len(array)]


def from_numpy(values: np.ndarray, type_: pa.DataType | None = None) -> pa.Array:
    """A null-free Arrow array over a 1-D numeric or boolean NumPy array, without a copy where
    it is contiguous, cast to ``type_`` when given.

    ``pa.array`` does the same, but it first asks whether the array is a pandas object, which
    imports pandas where it is installed: a quarter of a second at every start-up.
    """
    values = np.ascontiguousarray(values)
    if values.dtype == np.bool_:
        bits = np.packbits(values, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])
    own = pa.from_numpy_dtype(values.dtype)
    array = pa.Array.from_buffers(own, len(values), [None, pa.py_buffer(values)])
    return array if type_ is None or type_ == own else array.cast(type_)


def from_strings(texts: list[str]) -> pa.Array:
    """A null-free Arrow string array of ``texts``, built from its buffers (see
    :func:`from_numpy` for why not ``pa.array``)."""
    encoded = [text.encode("utf-8") for text in texts]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    np.cumsum([len(chunk) for chunk in encoded], out=offsets[1:])
    data = pa.py_buffer(b"".join(encoded))
    return pa.Array.from_buffers(pa.string(), len(encoded), [None, pa.py_buffer(offsets), data])


def take_rows(table: pa.Table, positions: pa.Array) -> pa.Table:
    """``table.take(positions)``, also for ``string_view`` columns (Arrow has no take kernel
    for them: they go through ``large_string`` and back, so the types stay)."""
    columns = []
    for column in table.columns:
        if pa.types.is_string_view(column.type):
            column = column.cast(pa.large_string()).take(positions).cast(column.type)
        else:
            column = column.take(positions)
        columns.append(column)
    return pa.table(columns, schema=table.schema)


def is_key_type(type_: pa.DataType) -> bool:
    """Whether ``type_`` can be a customer or order key."""
    if pa.types.is_dictionary(type_):
        return is_key_type(type_.value_type)
    return pa.types.is_integer(type_) or is_text_type(type_)


def is_text_type(type_: pa.DataType) -> bool:
    return (
        pa.types.is_string(type_)
        or pa.types.is_large_string(type_)
        or pa.types.is_string_view(type_)
    )


def key_column(array: pa.Array) -> KeyColumn:
    """Kernel-ready form of one chunk of a key column (customer or order)."""
    type_ = array.type
    if pa.types.is_dictionary(type_):
        size = len(array.dictionary)
        indices = array.indices.fill_null(size).cast(pa.int64())
        return DictionaryColumn(primitive_values(indices, np.int64), array.dictionary)
    if pa.types.is_integer(type_):
        return IntColumn(primitive_values(array, type_.to_pandas_dtype()), validity(array))
    if pa.types.is_string_view(type_):
        array = array.cast(pa.large_string())
        type_ = array.type
    offset_dtype = np.int64 if pa.types.is_large_string(type_) else np.int32
    _, offsets_buffer, data_buffer = array.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=offset_dtype)
    offsets = offsets[array.offset : array.offset + len(array) + 1]
    data = (
        np.frombuffer(data_buffer, dtype=np.uint8)
        if data_buffer is not None
        else np.empty(0, dtype=np.uint8)
    )
    return StringColumn(offsets, data, validity(array))


def key_kind(type_: pa.DataType) -> str:
    """``"int"`` or ``"string"``: how keys of this type are hashed."""
    if pa.types.is_dictionary(type_):
        return key_kind(type_.value_type)
    return "int" if pa.types.is_integer(type_) else "string"


# --------------------------------------------------------------------------- amounts


def is_amount_type(type_: pa.DataType) -> bool:
    return pa.types.is_integer(type_) or pa.types.is_floating(type_) or pa.types.is_decimal(type_)


def amount_values(array: pa.Array) -> tuple[np.ndarray, Validity]:
    """Values of an amount column: integers and float32/64 as they are, others as float64."""
    type_ = array.type
    if pa.types.is_decimal(type_) or pa.types.is_float16(type_):
        array = array.cast(pa.float64())
        type_ = array.type
    return primitive_values(array, type_.to_pandas_dtype()), validity(array)


def first_infinite(array: pa.Array) -> int:
    """Index of the first infinite value of an amount array, or -1 (integers and decimals
    cannot be infinite)."""
    if not pa.types.is_floating(array.type):
        return -1
    found = pc.indices_nonzero(pc.is_inf(array))  # (pc.index's scalar would import pandas)
    return found[0].as_py() if len(found) else -1


FLOAT_EXACT = 2**53
"""Integers up to this size (in absolute value) convert to float64 exactly; larger ones may not."""


def first_beyond_float(array: pa.Array) -> int:
    """Index of the first integer of ``array`` larger than :data:`FLOAT_EXACT` in absolute value
    (it would not convert to float64 exactly), or -1 (only 64-bit integers can be so large)."""
    if array.type not in (pa.int64(), pa.uint64()):
        return -1
    beyond = pc.greater(array, pa.scalar(FLOAT_EXACT, array.type))
    if array.type == pa.int64():
        beyond = pc.or_(beyond, pc.less(array, pa.scalar(-FLOAT_EXACT, pa.int64())))
    return pc.index(beyond, True).as_py()


def product_of(left: pa.Array, right: pa.Array) -> pa.Array:
    """``left * right`` as float64 (null where either is null), e.g. Quantity*UnitPrice."""
    return pc.multiply(left.cast(pa.float64()), right.cast(pa.float64()))


# --------------------------------------------------------------------------- time

_TICKS_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_OFFSET_ZONE = re.compile(r"^([+-])(\d{2}):?(\d{2})$")


def is_time_type(type_: pa.DataType) -> bool:
    return pa.types.is_timestamp(type_) or pa.types.is_date(type_)


def zone(name: str) -> dt.tzinfo:
    """The tzinfo of an Arrow time zone string (IANA name or fixed offset such as ``+01:00``)."""
    match = _OFFSET_ZONE.match(name)
    if match:
        sign = -1 if match.group(1) == "-" else 1
        return dt.timezone(sign * dt.timedelta(hours=int(match.group(2)), minutes=int(match[3])))
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise RFMError(
            f"unknown time zone {name!r} on the timestamp column; expected an IANA name such as "
            "'Europe/London' or an offset such as '+01:00'"
        ) from exc


_NANOSECONDS = {
    "D": 86_400 * 10**9,
    "h": 3_600 * 10**9,
    "m": 60 * 10**9,
    "s": 10**9,
    "ms": 10**6,
    "us": 10**3,
    "ns": 1,
}
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_LAST_MOMENT = np.datetime64("9999-12-31T23:59:59.999999", "us")
_FIRST_MOMENT = np.datetime64("0001-01-01T00:00:00", "us")
_BELOW_NANOSECOND = {"ps": 1_000, "fs": 1_000_000, "as": 1_000_000_000}
"""The last moment a Python datetime holds (``RunStats.as_of`` is one)."""


@dataclass(frozen=True)
class TimeAxis:
    """How the int64 values of a time column map to instants and days."""

    type: pa.DataType
    unit: str  # NumPy unit of one tick: D, ms, s, us or ns
    ticks_per_day: int
    tz: str | None

    @classmethod
    def of(cls, type_: pa.DataType) -> TimeAxis:
        if pa.types.is_date32(type_):
            return cls(type_, "D", 1, None)
        if pa.types.is_date64(type_):
            return cls(type_, "ms", 86_400_000, None)
        return cls(type_, type_.unit, 86_400 * _TICKS_PER_SECOND[type_.unit], type_.tz)

    def ticks(self, array: pa.Array) -> tuple[np.ndarray, Validity]:
        """The raw values of one chunk (days, or ticks of the unit; instants for zoned data)."""
        dtype = np.int32 if pa.types.is_date32(self.type) else np.int64
        return primitive_values(array, dtype), validity(array)

    def local_days(self, array: pa.Array) -> np.ndarray:
        """Calendar day number of each value, in the column's time zone for zoned columns."""
        if self.tz is not None:
            array = pc.local_timestamp(array)
        values, _ = TimeAxis.of(array.type).ticks(array)
        return values.astype(np.int64) // self.ticks_per_day

    def ticks_of(self, when: Any) -> int:
        """``when`` (datetime, date, numpy datetime64 or ISO-8601 text) in ticks, rounded down.

        Raises
        ------
        RFMError
            For NaT, or a moment this type cannot hold (``timestamp[ns]`` holds 1677-09-21 to
            2262-04-11).
        """
        if isinstance(when, np.datetime64) and self.tz is None:
            if np.isnat(when):
                raise RFMError("as_of is NaT; expected a date or time")
            unit, count = np.datetime_data(when.dtype)
            if unit in _BELOW_NANOSECOND:  # ps, fs, as: whole nanoseconds, rounded down
                value = int(when.astype(np.int64)) * count // _BELOW_NANOSECOND[unit]
                return self._checked(value // _NANOSECONDS[self.unit], when)
            if unit not in _NANOSECONDS:  # years, months, weeks: whole days
                when, unit, count = when.astype("datetime64[D]"), "D", 1
            nanoseconds = int(when.astype(np.int64)) * count * _NANOSECONDS[unit]  # exact
            return self._checked(nanoseconds // _NANOSECONDS[self.unit], when)
        return self._checked(self._ticks_of_moment(parse_moment(when)), when)

    def _checked(self, ticks: int, when: Any) -> int:
        last = int(_LAST_MOMENT.astype(np.int64)) * 1_000 // _NANOSECONDS[self.unit]
        first = int(_FIRST_MOMENT.astype(np.int64)) * 1_000 // _NANOSECONDS[self.unit]
        if not first <= ticks <= last:
            raise RFMError(
                f"as_of {when!s} is outside the years 0001 to 9999; give an as_of within them"
            )
        if not INT64_MIN < ticks <= INT64_MAX:
            first, last = (self.moment_text(t) for t in (INT64_MIN + 1, INT64_MAX))
            raise RFMError(
                f"as_of {when!s} is outside what a {self.type} column holds ({first} to {last}); "
                "give an as_of within it, or cast the column to a coarser unit"
            )
        return ticks

    def moment_text(self, ticks: int) -> str:
        """``ticks`` as ISO-8601 text, also beyond the years of Python's datetime."""
        return str(np.datetime64(int(ticks), self.unit))

    def default_as_of(self, latest: int) -> int:
        """The default ``as_of``: the latest timestamp plus one day, checked.

        Raises
        ------
        RFMError
            When that day is past what the column's type, or a datetime, can hold: the latest
            timestamp is then most likely a placeholder such as 9999-12-31.
        """
        as_of = latest + self.ticks_per_day
        last = int(_LAST_MOMENT.astype(np.int64)) * 1_000 // _NANOSECONDS[self.unit]
        if as_of > min(INT64_MAX, last):  # (Python ints)
            raise RFMError(
                f"the latest timestamp, {self.moment_text(latest)}, leaves no room for the "
                "default as_of (one day later): give as_of (--as-of), or leave out rows with "
                "placeholder dates such as 9999-12-31"
            )
        return as_of

    def _ticks_of_moment(self, moment: dt.datetime) -> int:
        if self.tz is not None and moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone(self.tz))
        if moment.tzinfo is not None:
            moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
        delta = moment - EPOCH
        micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        if self.unit == "D":
            return micros // 86_400_000_000
        per_second = _TICKS_PER_SECOND[self.unit]
        if per_second >= 1_000_000:
            return micros * (per_second // 1_000_000)
        return micros // (1_000_000 // per_second)

    def to_datetime(self, ticks: int) -> dt.datetime:
        """The moment of ``ticks``: aware in the column's zone for zoned data, else naive."""
        moment = np.datetime64(int(ticks), self.unit).astype("datetime64[us]").item()
        if isinstance(moment, dt.date) and not isinstance(moment, dt.datetime):
            moment = dt.datetime(moment.year, moment.month, moment.day)
        if self.tz is not None:
            return moment.replace(tzinfo=dt.UTC).astimezone(zone(self.tz))
        return moment

    def to_arrow(self, ticks: np.ndarray) -> pa.Array:
        """An array of the column's own type from int64 ticks."""
        if pa.types.is_date32(self.type):
            return from_numpy(ticks.astype(np.int32)).view(self.type)
        return from_numpy(ticks.astype(np.int64, copy=False)).view(self.type)


def parse_moment(when: Any) -> dt.datetime:
    """A datetime from a datetime, date, numpy datetime64 or ISO-8601 text."""
    if isinstance(when, dt.datetime):
        return when
    if isinstance(when, dt.date):
        return dt.datetime(when.year, when.month, when.day)
    if isinstance(when, np.datetime64):
        if np.isnat(when):
            raise RFMError("as_of is NaT; expected a date or time")
        value = when.astype("datetime64[us]").item()
        return value if isinstance(value, dt.datetime) else parse_moment(value)
    if isinstance(when, str):
        try:
            return dt.datetime.fromisoformat(when.strip())
        except ValueError:
            raise RFMError(
                f"cannot read as_of {when!r}: expected an ISO-8601 date or time such as "
                "'2011-12-10', '2011-12-10 08:00' or '2011-12-10T08:00:00+01:00'"
            ) from None
    raise RFMError(
        f"as_of must be a datetime, date, numpy.datetime64 or ISO-8601 text; got "
        f"{type(when).__name__} {when!r}"
    )


def parse_text_timestamps(
    array: pa.Array, column: str, format_: str | None, like: pa.DataType | None = None
) -> pa.Array:
    """Text timestamps -> ``timestamp[us]`` (UTC when the text carries offsets).

    Integers such as ``20240131`` are parsed as their decimal text when a format is given.
    ``like``: the type an earlier batch of the column parsed to; a batch of values with zone
    offsets after one without (or the other way round) is refused as one batch that mixes them
    is, with the same message.

    Raises
    ------
    RFMError
        Showing the first value that does not parse, and the formats that would read the
        column's values (``%m/%d/%Y %H:%M`` for ``03/15/2011 14:30``).
    """
    if pa.types.is_integer(array.type):
        array = array.cast(pa.string())
    try:
        if format_ is not None:
            parsed = pc.strptime(array, format=format_, unit="us", error_is_null=False)
        else:
            try:
                parsed = array.cast(pa.timestamp("us"))
            except pa.ArrowInvalid:
                parsed = array.cast(pa.timestamp("us", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise _timestamp_error(array, column, format_) from None
    if (
        like is not None
        and (like.tz is None) != (parsed.type.tz is None)
        and parsed.null_count < len(parsed)
    ):
        raise _timestamp_error(array, column, format_, offsets_mixed=True)
    return parsed


TIMESTAMP_FORMATS = (
    "%m/%d/%Y %H:%M",
    "%d/%m/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M:%S",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%Y%m%d",
    "%d-%m-%Y",
    "%m-%d-%Y",
    "%d %b %Y",
    "%b %d %Y",
)
"""Formats tried on a column that is not ISO-8601, to suggest the one that reads it."""


def _timestamp_error(
    array: pa.Array, column: str, format_: str | None, offsets_mixed: bool = False
) -> RFMError:
    """The error for a text timestamp column that does not parse: the first bad value, its row
    in the batch, and the formats that read the first thousand values (``offsets_mixed``: the
    values parse, but some batches carry zone offsets and some do not)."""
    how = f"with the format {format_!r}" if format_ else "as ISO-8601 (such as 2011-03-15 14:30)"
    if offsets_mixed:
        row = -1
    elif format_:
        parsed = pc.strptime(array, format=format_, unit="us", error_is_null=True)
        row = pc.index(pc.and_(pc.is_null(parsed), pc.is_valid(array)), True).as_py()
    else:
        row = _first_not_iso(array)
    sample = pc.drop_null(array).slice(0, 1_000)
    fitting = formats_that_read(sample, exclude=format_)
    if format_ and len(sample) and _reads_as_iso(sample):
        hint = (
            "its values are ISO-8601, which is read without a format: leave timestamp_format "
            "out (CLI: --timestamp-format)"
        )
    elif not fitting:
        hint = "pass timestamp_format= (CLI: --timestamp-format) with its strptime format"
    elif len(fitting) > 1 and fitting[0].startswith("%m/%d") and fitting[1].startswith("%d/%m"):
        hint = (
            f"it reads with timestamp_format={fitting[0]!r} (month first) and, as far as the "
            f"first values show, {fitting[1]!r} (day first): pass the one the file uses "
            "(CLI: --timestamp-format)"
        )
    else:
        hint = (
            f"it reads with timestamp_format={fitting[0]!r} "
            f"(CLI: --timestamp-format '{fitting[0]}')"
        )
        if len(fitting) > 1:
            hint += f" (its first values also read with {', '.join(map(repr, fitting[1:]))})"
    if row < 0:  # each value parses alone: some carry a zone offset and some do not
        where = "some values carry a zone offset (such as +01:00) and some do not"
    else:
        value = array[row].as_py()
        where = (
            f"{excerpt(value) if isinstance(value, str) else repr(value)} (row {row} of its batch)"
        )
        if isinstance(value, str) and value != value.strip():
            where += f" has {_spaces_around(value)}, which a timestamp may not have"
            hint = _whitespace_hint(sample)
    return RFMError(f"cannot read timestamp column {column!r} {how}: {where}; {hint}")


def formats_that_read(values: pa.Array, exclude: str | None = None) -> list[str]:
    """Of :data:`TIMESTAMP_FORMATS` and the ISO-8601 formats, those with which ``strptime``
    reads every one of ``values`` (text), in that order; none for no values.

    Examples
    --------
    >>> import pyarrow as pa
    >>> formats_that_read(pa.array(["31.12.2024", "01.02.2025"]))
    ['%d.%m.%Y']
    >>> formats_that_read(pa.array(["2024-12-31 23:59:00"]))
    ['%Y-%m-%d %H:%M:%S']
    """
    if not len(values):
        return []
    return [
        f
        for f in (*TIMESTAMP_FORMATS, *_ISO_FORMATS)
        if f != exclude
        and pc.all(
            pc.is_valid(pc.strptime(values, format=f, unit="us", error_is_null=True))
        ).as_py()
    ]


def _first_not_iso(array: pa.Array) -> int:
    """The first value that Arrow does not read as ISO-8601 text on its own, or -1 when each
    does (then naive values and values with an offset are mixed). The error path only: the
    first block that does not read is tried value by value."""
    block = 4096
    for start in range(0, len(array), block):
        values = array.slice(start, block)
        if _reads_as_iso(values):
            continue
        for row in range(len(values)):
            if values[row].is_valid and not _reads_as_iso(values.slice(row, 1)):
                return start + row
        return -1
    return -1


def _reads_as_iso(values: pa.Array) -> bool:
    for type_ in (pa.timestamp("us"), pa.timestamp("us", tz="UTC")):
        try:
            values.cast(type_)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        return True
    return False


def _spaces_around(text: str) -> str:
    """``whitespace before it``, ``after it`` or ``before and after it``."""
    before, after = text != text.lstrip(), text != text.rstrip()
    return "whitespace " + (
        "before and after it" if before and after else "before it" if before else "after it"
    )


_ISO_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")


def _whitespace_hint(sample: pa.Array) -> str:
    """The fix for timestamps with spaces around them: an ISO format read with strptime
    (which skips spaces before a value) where one reads the sample, else removing the spaces."""
    for format_ in _ISO_FORMATS:
        parsed = pc.strptime(sample, format=format_, unit="us", error_is_null=True)
        if pc.all(pc.is_valid(parsed)).as_py():
            return (
                f"remove the spaces in the file, or read the column with "
                f"timestamp_format={format_!r} (CLI: --timestamp-format '{format_}'), which "
                "skips spaces before a value"
            )
    return "remove the spaces around the timestamps in the file"
