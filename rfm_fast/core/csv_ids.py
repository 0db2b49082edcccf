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


def id_rules(values: pa.Array) -> frozenset[str] | None:
    """The rules (see the module) that every non-null text of ``values`` follows; None when
    there is no such value (every rule holds)."""
    if values.null_count == len(values):
        return None
    if pc.all(pc.ascii_is_decimal(values)).as_py():  # the common case, without a regex
        lengths = pc.min_max(pc.utf8_length(values)).as_py()
        rules = set()
        if lengths["min"] == lengths["max"]:
            rules.add(f"width:{lengths['min']}")
        if not pc.any(pc.starts_with(values, "0")).as_py() or _all_match(values, _CANONICAL):
            rules.add("canonical")
        return frozenset(rules)
    if _all_match(values, _CANONICAL):
        return frozenset({"canonical"})
    return frozenset({"float"}) if _all_match(values, _FLOAT) else frozenset()


def _all_match(values: pa.Array, pattern: str) -> bool:
    return bool(pc.all(pc.match_substring_regex(values, pattern)).as_py())


def _as_integers(values: pa.Array, rules: frozenset[str]) -> pa.Array | None:
    """Text ids that follow ``rules`` as int64, or None where one is beyond int64."""
    if "float" in rules:
        values = pc.utf8_slice_codeunits(values, 0, -2)  # the .0
    try:
        return values.cast(pa.int64())
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
        converted = {}
        if first is not None:  # it decides, unless an earlier file or read saw integers
            for column in ids:
                restart = column in csv.id_rules
                converted[column] = _narrowed(csv, column, first, source.name, restart)
            ids = [c for c in ids if converted[c] is not None]
        for column in ids:
            at = schema.get_field_index(column)
            schema = schema.set(at, schema.field(at).with_type(pa.int64()))
        if first is None:
            return schema, iter(())
        return schema, _converted(first, converted, batches, ids, csv, source.name)

    return dataclasses.replace(source, opener=opener)


def _narrowed(
    csv: CsvReading, column: str, batch: pa.RecordBatch, name: str, restart: bool
) -> pa.Array | None:
    """``column`` of ``batch`` as int64 where the rules kept so far and this batch allow, else
    None; where it is None and ``restart``, the input must be read again instead
    (:class:`ReadAgain`)."""
    values = batch.column(column)
    rules = id_rules(values)
    before = csv.id_rules.get(column)
    kept = rules if before is None else before if rules is None else before & rules
    integers = None if kept == frozenset() else _as_integers(values, kept or frozenset())
    if kept is not None:
        csv.id_rules[column] = kept if integers is not None else frozenset()
    if integers is not None or not restart:
        return integers
    warnings.warn(
        f"CSV column {column!r} of {name} looked like integer ids in its first rows, but "
        "not further on (ids such as C17, or 007 beside 7, are text, so that no two "
        "spellings merge): read the file again with the ids as text",
        RFMWarning,
        stacklevel=2,
    )
    raise ReadAgain(column)


def _converted(
    first: pa.RecordBatch,
    converted: dict[str, pa.Array | None],
    rest: Iterator[pa.RecordBatch],
    ids: list[str],
    csv: CsvReading,
    name: str,
) -> Iterator[pa.RecordBatch]:
    """The batches with the ``ids`` columns as int64 (``converted``: those of ``first``);
    each later batch is checked."""
    batch = first
    while True:
        arrays = list(batch.columns)
        for column in ids:
            arrays[batch.schema.get_field_index(column)] = converted[column]
        yield pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)
        batch = next(rest, None)
        if batch is None:
            return
        converted = {c: _narrowed(csv, c, batch, name, restart=True) for c in ids}
