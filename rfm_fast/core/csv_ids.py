"""Customer ids of CSV files: integers only where no two spellings of an id merge.

Arrow's CSV reader would read ``007``, ``07`` and ``7`` as the one integer 7 (and ``+7``,
`` 7`` and ``7.0`` too). The customer column of a CSV file is therefore read as text, and given
back as ``int64`` only when every value of the whole input follows one rule under which
different texts are different numbers (docs/semantics.md, "Customer ids in text files"):

* ``canonical``: an integer as Python writes it (``0``, ``17850``, ``-3``; no leading zero, no
  plus sign), within int64;
* ``width:N``: digits only, all ``N`` of them (a zero-padded code such as CDNOW's ``00001``);
* ``float``: a canonical integer of at most 16 digits and ``.0`` (``17850.0``: ids that went
  through a pandas float column).

Otherwise the ids stay text. The first batch decides the type; a later batch (or file) that
breaks every rule the earlier ones kept makes the input be read again with the ids as text
(:class:`rfm_fast.core.io.ReadAgain`), with a warning.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc

from rfm_fast.core.io import CsvReading, ReadAgain, Source
from rfm_fast.errors import RFMWarning

_CANONICAL = r"^(?:0|-?[1-9][0-9]{0,18})$"
_FLOAT = r"^(?:0|-?[1-9][0-9]{0,15})\.0$"
_DIGITS = r"^[0-9]+$"


def id_rules(values: pa.Array) -> frozenset[str] | None:
    """The rules (see the module) that every non-null text of ``values`` follows; None when
    there is no such value (every rule holds)."""
    values = pc.drop_null(values)
    if len(values) == 0:
        return None
    rules = set()
    if pc.all(pc.match_substring_regex(values, _CANONICAL)).as_py():
        rules.add("canonical")
    elif pc.all(pc.match_substring_regex(values, _FLOAT)).as_py():
        rules.add("float")
    if pc.all(pc.match_substring_regex(values, _DIGITS)).as_py():
        lengths = pc.min_max(pc.utf8_length(values)).as_py()
        if lengths["min"] == lengths["max"]:
            rules.add(f"width:{lengths['min']}")
    if rules and _as_integers(values) is None:
        return frozenset()  # beyond int64
    return frozenset(rules)


def _as_integers(values: pa.Array) -> pa.Array | None:
    """Text ids that follow a rule as int64, or None where one is beyond int64."""
    try:
        return pc.replace_substring_regex(values, r"\.0$", "").cast(pa.int64())
    except (pa.ArrowInvalid, OverflowError):
        return None


def integer_ids_source(source: Source, csv: CsvReading) -> Source:
    """``source`` (a CSV file read with ``csv``) with its id columns (``csv.ids`` that the user
    gave no type) read as text and given back as int64 where a rule allows (see the module)."""

    def opener(cols: list[str]) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        ids = [c for c in csv.ids if c in cols and c not in csv.given]
        for column in ids:
            csv.column_types.setdefault(column, pa.string())
        schema, batches = source.opener(cols)
        ids = [c for c in ids if csv.id_rules.get(c) != frozenset()]  # not text already
        if not ids:
            return schema, batches
        batches = iter(batches)
        first = next(batches, None)
        if first is not None:  # it decides, unless an earlier file or read saw integers
            ids = [c for c in ids if _narrowed(csv, c, first, source.name, c in csv.id_rules)]
        for column in ids:
            at = schema.get_field_index(column)
            schema = schema.set(at, schema.field(at).with_type(pa.int64()))
        if first is None:
            return schema, iter(())
        return schema, _converted(first, batches, ids, csv, source.name)

    return dataclasses.replace(source, opener=opener)


def _narrowed(
    csv: CsvReading, column: str, batch: pa.RecordBatch, name: str, restart: bool
) -> bool:
    """Whether ``column`` can still be read as integers after ``batch``; where it cannot and
    ``restart``, the input must be read again (:class:`ReadAgain`)."""
    rules = id_rules(batch.column(column))
    if rules is None:
        return True
    before = csv.id_rules.get(column)
    kept = rules if before is None else before & rules
    csv.id_rules[column] = kept
    if kept:
        return True
    if restart:
        warnings.warn(
            f"CSV column {column!r} of {name} looked like integer ids in its first rows, but "
            "not further on (ids such as C17, or 007 beside 7, are text, so that no two "
            "spellings merge): read the file again with the ids as text",
            RFMWarning,
            stacklevel=2,
        )
        raise ReadAgain(column)
    return False


def _converted(
    first: pa.RecordBatch,
    rest: Iterator[pa.RecordBatch],
    ids: list[str],
    csv: CsvReading,
    name: str,
) -> Iterator[pa.RecordBatch]:
    """The batches with the ``ids`` columns as int64; each batch after ``first`` is checked."""
    batch = first
    while True:
        arrays = list(batch.columns)
        for column in ids:
            index = batch.schema.get_field_index(column)
            arrays[index] = _as_integers(batch.column(index))
        yield pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)
        batch = next(rest, None)
        if batch is None:
            return
        for column in ids:
            _narrowed(csv, column, batch, name, restart=True)
