"""Customer lists: the customers of some segments (or of a condition), with the columns a CRM or
an e-mail tool imports, most valuable first (:func:`customer_list`).

A condition (``where="monetary >= 1000 and R >= 4"``) is parsed, never evaluated: comparisons
of one metric or score with a number, joined by ``and``. Nothing a user writes runs as code.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rfm_fast.core.io import check_output_path, table_writer, write_together
from rfm_fast.core.options import closest_name
from rfm_fast.core.result import RFMResult
from rfm_fast.errors import EXCERPT_CHARACTERS, RFMError, excerpt, os_error_reason

LIST_FORMATS = ("csv", "parquet")

LIST_COLUMNS = (
    "segment",
    "action",
    "priority",
    "R",
    "F",
    "M",
    "rfm_cell",
    "recency",
    "frequency",
    "monetary",
    "tenure",
    "first_purchase",
    "last_purchase",
)
"""The columns of a list after the customer column (then ``p_alive``, ``expected_purchases``
and ``clv`` where the result has them)."""
PREDICTION_COLUMNS = ("p_alive", "expected_purchases", "clv")
CONDITION_NAMES = (
    "recency",
    "tenure",
    "frequency",
    "monetary",
    "R",
    "F",
    "M",
    "rfm_score",
    *PREDICTION_COLUMNS,
)
"""What a condition may test."""
_COMPARISON = re.compile(
    r"^\s*(?P<name>[A-Za-z_]+)\s*(?P<op>>=|<=|==|!=|=|>|<)\s*"
    r"(?P<value>[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?)\s*$"
)
_OPERATORS = {
    ">=": np.greater_equal,
    "<=": np.less_equal,
    ">": np.greater,
    "<": np.less,
    "=": np.equal,
    "==": np.equal,
    "!=": np.not_equal,
}


@dataclass(frozen=True)
class Comparison:
    """One parsed comparison of a condition: ``name op value``."""

    name: str
    op: str
    value: float

    def mask(self, table: pa.Table) -> np.ndarray:
        """The customers of ``table`` it holds for (a null value never does)."""
        column = table.column(self.name).combine_chunks()
        values = column.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
        with np.errstate(invalid="ignore"):
            return _OPERATORS[self.op](values, self.value) & ~np.isnan(values)


def parse_condition(text: str) -> list[Comparison]:
    """The comparisons of ``text``: ``NAME OP NUMBER`` joined by ``and`` (any case), with
    ``OP`` one of ``>= <= > < = == !=`` and ``NAME`` one of :data:`CONDITION_NAMES`.

    Raises
    ------
    RFMError
        Naming the part that is not a comparison, an unknown name (with the closest one), or
        an empty condition.

    Examples
    --------
    >>> parse_condition("monetary >= 1000 and R>=4")
    [Comparison(name='monetary', op='>=', value=1000.0), Comparison(name='R', op='>=', value=4.0)]
    """
    if not isinstance(text, str) or not text.strip():
        shown = excerpt(text) if isinstance(text, str) else repr(text)[:EXCERPT_CHARACTERS]
        raise RFMError(
            f"a condition compares a metric with a number, such as 'monetary >= 1000'; got {shown}"
        )
    comparisons = []
    for part in _condition_parts(text):
        found = _COMPARISON.match(part)
        if found is None:
            raise RFMError(
                f"condition {excerpt(text)}: {excerpt(part)} is not a comparison; write NAME OP "
                "NUMBER, such as 'monetary >= 1000' or 'R = 5', joined by 'and' "
                "(OP: >= <= > < = !=)"
            )
        name = found["name"]
        if name not in CONDITION_NAMES:
            close = closest_name(name, CONDITION_NAMES)
            hint = f" (did you mean {close!r}?)" if close else ""
            raise RFMError(
                f"condition {excerpt(text)}: unknown name {excerpt(name)}{hint}; a condition may "
                "test " + ", ".join(CONDITION_NAMES)
            )
        value = float(found["value"])
        if not math.isfinite(value) or (value == 0 and re.search("[1-9]", found["value"])):
            raise RFMError(
                f"condition {excerpt(text)}: {excerpt(found['value'])} is out of range (a number "
                "is at most about 1e308 and at least about 1e-308 in size)"
            )
        comparisons.append(Comparison(name, found["op"], value))
    return comparisons


def _condition_parts(text: str) -> list[str]:
    """The comparisons of a condition as text: its words split at each ``and`` (any case),
    rejoined with one space. One pass over the text (``str.split``), so that a long condition
    costs linear time; a regular expression that splits at ``\\s+and\\s+`` backtracks over
    every run of spaces, quadratic in its length."""
    parts: list[list[str]] = [[]]
    for word in text.split():
        if word.casefold() == "and":
            parts.append([])
        else:
            parts[-1].append(word)
    return [" ".join(words) for words in parts]


def customer_list(
    result: RFMResult,
    *,
    segments: Sequence[str] | None = None,
    where: str | None = None,
    sort_by: str | None = None,
) -> pa.Table:
    """The customers of ``segments`` (all when None) for whom ``where`` holds, with the columns a
    CRM or an e-mail tool imports, most valuable first.

    Parameters
    ----------
    result : RFMResult
        A scoring result (with ``p_alive`` and ``clv`` columns when
        :func:`rfm_fast.clv.with_p_alive` added them).
    segments : sequence of str, optional
        Segment names of the result's rules. Default: every segment.
    where : str, optional
        A condition, such as ``"monetary >= 1000 and recency <= 90"``
        (:func:`parse_condition`): parsed, never evaluated.
    sort_by : str, optional
        The column to sort by, largest first (ties by customer, ascending). Default: ``clv``
        where the result has it, else ``monetary``.

    Returns
    -------
    pyarrow.Table
        The customer column (under its input name), then :data:`LIST_COLUMNS` (the playbook's
        ``action`` and ``priority`` of each customer's segment included), then the predictions
        where the result has them.

    Raises
    ------
    RFMError
        For a segment that the rules do not name (with the closest name), a condition that does
        not parse, or a ``sort_by`` that is not a numeric column of the list.

    Examples
    --------
    >>> import rfm_fast
    >>> from rfm_fast.actions import customer_list
    >>> result = rfm_fast.score(rfm_fast.datasets.load_example(),
    ...                         **rfm_fast.datasets.EXAMPLE_COLUMNS)
    >>> vips = customer_list(result, segments=["Champions"], where="monetary >= 1000")
    >>> vips.num_rows, vips.column_names[:4]
    (178, ['customer_id', 'segment', 'action', 'priority'])
    >>> vips.column("monetary")[0].as_py() >= vips.column("monetary")[1].as_py()
    True
    """
    scored = result.with_playbook()
    table = scored.table
    customer = table.column_names[0]
    keep = np.ones(table.num_rows, dtype=bool)
    if segments is not None:
        keep &= _in_segments(table, segments)
    if where is not None:
        for comparison in parse_condition(where):
            if comparison.name not in table.column_names:
                raise RFMError(
                    f"condition {excerpt(where)} tests {comparison.name}, which this result has "
                    "not: fit the models first (rfm export --clv; rfm_fast.clv.with_p_alive)"
                )
            keep &= comparison.mask(table)
    predictions = [name for name in PREDICTION_COLUMNS if name in table.column_names]
    chosen = table.filter(pa.array(keep)).select([customer, *LIST_COLUMNS, *predictions])
    return _sorted(chosen, sort_by or ("clv" if "clv" in predictions else "monetary"))


def write_lists(
    customers: pa.Table,
    folder: str | os.PathLike,
    file_format: str = "csv",
    segments: Sequence[str] | None = None,
    inputs: Sequence[Any] = (),
) -> dict[str, tuple[Path, int]]:
    """Write a :func:`customer_list` as one file per segment into ``folder`` (made if missing,
    its parent must exist), named after the segment (``Can't Lose Them`` ->
    ``cant_lose_them.csv``); all files are written, or none (the files it replaced are put
    back, and a folder it made is removed). No file is one of ``inputs`` (the files read).

    ``segments`` names the files to write, an empty one for a segment without customers in the
    list (default: the segments of the list, in its order).

    Returns
    -------
    dict of str to (pathlib.Path, int)
        Per segment: the file and its customers.

    Raises
    ------
    RFMError
        For an unknown format, a folder that cannot be made, or a file that cannot be written.

    Examples
    --------
    >>> import tempfile, rfm_fast
    >>> result = rfm_fast.score(rfm_fast.datasets.load_example(),
    ...                         **rfm_fast.datasets.EXAMPLE_COLUMNS, segments="compact")
    >>> customers = customer_list(result, segments=["VIP", "At Risk"])
    >>> written = write_lists(customers, tempfile.mkdtemp(), segments=["VIP", "At Risk"])
    >>> {name: (path.name, rows) for name, (path, rows) in written.items()}
    {'VIP': ('vip.csv', 6314), 'At Risk': ('at_risk.csv', 8051)}
    """
    if file_format not in LIST_FORMATS:
        raise RFMError(f"format must be one of {', '.join(LIST_FORMATS)}; got {file_format!r}")
    folder = Path(folder)
    made = not folder.is_dir()
    if made:
        if not folder.parent.is_dir():
            raise RFMError(f"cannot make the folder {folder}: {folder.parent} does not exist")
        try:
            folder.mkdir()
        except OSError as exc:
            raise RFMError(f"cannot make the folder {folder}: {os_error_reason(exc)}") from None
    try:
        return _write_lists(customers, folder, file_format, segments, inputs)
    except BaseException:
        if made:
            with contextlib.suppress(OSError):
                folder.rmdir()  # (empty: every file written was removed)
        raise


def _write_lists(
    customers: pa.Table,
    folder: Path,
    file_format: str,
    segments: Sequence[str] | None,
    inputs: Sequence[Any],
) -> dict[str, tuple[Path, int]]:
    segment = customers.column("segment").combine_chunks()
    if pa.types.is_dictionary(segment.type):
        segment = segment.cast(pa.string())
    names = list(dict.fromkeys(segment.to_pylist() if segments is None else segments))
    tables: dict[str, tuple[Path, pa.Table]] = {}
    taken: set[str] = set()
    for name in names:
        stem = re.sub(r"[^a-z0-9]+", "_", name.lower().replace("'", "")).strip("_") or "segment"
        base, number = stem, 2
        while stem in taken:  # two names that read alike: number them
            stem, number = f"{base}_{number}", number + 1
        taken.add(stem)
        path = folder / f"{stem}.{file_format}"
        check_output_path(path, inputs, suffixes=None)
        tables[name] = (path, customers.filter(pc.equal(segment, name)))
    write_together([(path, table_writer(table, path)) for path, table in tables.values()])
    return {name: (path, table.num_rows) for name, (path, table) in tables.items()}


def check_segment_names(segments: Sequence[str], names: Sequence[str]) -> None:
    """Raise RFMError, with the closest name and every name, for each of ``segments`` that is
    not among the segment ``names`` of the rules (before any work: a typo fails at once)."""
    for name in segments:
        if name not in names:
            close = closest_name(name, names)
            hint = f" (did you mean {close!r}?)" if close else ""
            raise RFMError(
                f"no segment {excerpt(name)}{hint}; the segments of these rules are: "
                + ", ".join(repr(n) for n in names)
            )


def _in_segments(table: pa.Table, segments: Sequence[str]) -> np.ndarray:
    if isinstance(segments, str):
        segments = [segments]
    column = table.column("segment").combine_chunks()
    names = column.dictionary.to_pylist()
    check_segment_names(segments, names)
    wanted = np.isin(np.arange(len(names)), [names.index(name) for name in segments])
    return wanted[column.indices.to_numpy(zero_copy_only=False)]


def _sorted(table: pa.Table, sort_by: str) -> pa.Table:
    numeric = [
        name
        for name in table.column_names[1:]
        if pa.types.is_integer(table.schema.field(name).type)
        or pa.types.is_floating(table.schema.field(name).type)
    ]
    if sort_by not in numeric:
        raise RFMError(
            f"cannot sort a customer list by {excerpt(sort_by)}; sort by one of "
            + ", ".join(numeric)
        )
    order = pc.sort_indices(
        table,
        sort_keys=[(sort_by, "descending"), (table.column_names[0], "ascending")],
    )  # (nulls last: the default)
    return table.take(order)
