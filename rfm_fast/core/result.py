"""What a scoring run returns: :class:`RFMResult`, its :class:`RunStats`, and the one
definition of the result table's columns (:data:`RESULT_COLUMNS`, :func:`result_schema`)."""

from __future__ import annotations

import datetime as dt
import html
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from rfm_fast.core import arrow
from rfm_fast.core.database import Database
from rfm_fast.core.io import write_table
from rfm_fast.core.segments import SegmentRule, playbook_columns
from rfm_fast.core.timing import PhaseTime
from rfm_fast.optional import require

RESULT_COLUMNS = (
    "recency",
    "frequency",
    "monetary",
    "first_purchase",
    "last_purchase",
    "tenure",
    "R",
    "F",
    "M",
    "rfm_cell",
    "rfm_score",
    "segment",
)
"""The result table's columns after the customer column (which keeps its input name)."""


def result_schema(
    customer: str,
    customer_type: pa.DataType,
    time_type: pa.DataType,
    segment_type: pa.DataType,
) -> pa.Schema:
    """The schema of a result table.

    Parameters
    ----------
    customer : str
        The customer column's name (the input's).
    customer_type : pyarrow.DataType
        The customer keys' type in the output: the input's, dictionaries decoded and
        ``string_view`` as ``string``.
    time_type : pyarrow.DataType
        The input's timestamp type, that of ``first_purchase`` and ``last_purchase``.
    segment_type : pyarrow.DataType
        The type of ``segment``: dictionary-encoded text in :attr:`RFMResult.table`, text
        where an engine has no dictionaries (Spark).

    Returns
    -------
    pyarrow.Schema

    Examples
    --------
    >>> import pyarrow as pa
    >>> from rfm_fast.core.result import result_schema
    >>> result_schema("id", pa.int64(), pa.date32(), pa.string()).names[:4]
    ['id', 'recency', 'frequency', 'monetary']
    """
    types = (
        pa.int64(),
        pa.int64(),
        pa.float64(),
        time_type,
        time_type,
        pa.int64(),
        pa.int8(),
        pa.int8(),
        pa.int8(),
        pa.string(),
        pa.int16(),
        segment_type,
    )
    return pa.schema([(customer, customer_type), *zip(RESULT_COLUMNS, types, strict=True)])


@dataclass(frozen=True)
class RunStats:
    """What a run did: rows read, used and dropped by reason, customers, as_of, empty scores."""

    rows_read: int
    rows_used: int
    dropped: dict[str, int]
    null_amount: int
    customers: int
    as_of: dt.datetime | None
    empty_bins: dict[str, list[int]]
    bins: int
    method: str
    monetary: str = "sum"
    """``"sum"`` or ``"mean"``: what the ``monetary`` column holds."""
    returns: str = "net"
    """How rows with a negative amount were taken: ``"net"``, ``"purchase"`` or ``"drop"``."""
    return_rows: int = 0
    """Rows with a negative amount (netted, counted as purchases, or dropped: then also in
    ``dropped["returns"]``)."""
    customers_only_returns: int = 0
    """Customers whose rows were all returns (``returns="net"``): left out of the result."""
    window: int | None = None
    """Days: only the rows at most this many days before ``as_of`` were scored; the others
    are in ``dropped["before_window"]``. None: no window."""
    timings: dict[str, PhaseTime] = field(default_factory=dict, compare=False)
    """Wall and CPU seconds per phase (``read``, ``aggregate``, ``finish``, ``score``; see
    :mod:`rfm_fast.core.timing`). Not compared: two runs with equal results have equal stats."""
    delimiters_guessed: dict[str, str] = field(default_factory=dict, compare=False)
    """The delimiter guessed for each CSV file read without one (docs/semantics.md, "CSV
    delimiters"), by file name; empty when it was given or no CSV file was read."""

    def as_dict(self) -> dict[str, Any]:
        """A plain dict (``as_of`` as ISO-8601 text), e.g. for JSON."""
        return {
            "rows_read": self.rows_read,
            "rows_used": self.rows_used,
            "dropped": dict(self.dropped),
            "null_amount": self.null_amount,
            "customers": self.customers,
            "as_of": None if self.as_of is None else self.as_of.isoformat(),
            "empty_bins": {k: list(v) for k, v in self.empty_bins.items()},
            "bins": self.bins,
            "method": self.method,
            "monetary": self.monetary,
            "returns": self.returns,
            "return_rows": self.return_rows,
            "customers_only_returns": self.customers_only_returns,
            "window": self.window,
            "delimiters_guessed": dict(self.delimiters_guessed),
            "timings": {k: {"wall_s": t.wall_s, "cpu_s": t.cpu_s} for k, t in self.timings.items()},
        }


@dataclass(frozen=True)
class RFMResult:
    """The result of :func:`rfm_fast.score`.

    Attributes
    ----------
    table : pyarrow.Table
        One row per customer, sorted by customer key: the customer column under its input name,
        then ``recency, frequency, monetary, first_purchase, last_purchase, tenure, R, F, M,
        rfm_cell, rfm_score, segment`` (:data:`RESULT_COLUMNS`).
    edges : dict of str to list of float
        Per metric (``recency``, ``frequency``, ``monetary``), the ``bins - 1`` edges that
        reproduce the scores (see docs/semantics.md, "Edges returned").
    stats : RunStats
        Rows read, used and dropped by reason, customers, ``as_of`` and the empty scores.
    rules : tuple of SegmentRule
        The segment rules that gave ``segment``, with their playbook (description, action,
        priority); empty for ``segments=None``. Not compared: the table holds their effect.
    """

    table: pa.Table
    edges: dict[str, list[float]]
    stats: RunStats
    rules: tuple[SegmentRule, ...] = field(default=(), compare=False)

    def to_pandas(self):
        """The table as a pandas DataFrame (needs pandas: ``pip install 'rfm_fast[reference]'``)."""
        require("pandas", "reference", "RFMResult.to_pandas()")
        return self.table.to_pandas()

    def to_polars(self):
        """The table as a polars DataFrame, sharing the Arrow buffers (needs polars:
        ``pip install 'rfm_fast[polars]'``)."""
        return require("polars", "polars", "RFMResult.to_polars()").from_arrow(self.table)

    def write(self, path: str | os.PathLike | Database) -> Path | Database:
        """Write the table to ``path``, as ``rfm score -o`` does: the format from the suffix
        (``.parquet``, ``.csv``, ``.arrow`` or ``.feather``), atomically (a failed write leaves
        no file). CSV writes float columns at the decimals their values have, so monetary
        shows ``1168.06``, not ``1168.0600000000002``; the other formats keep every bit.
        ``path`` may also be a database table (``rfm_fast.Database(uri, table=...)``),
        replaced inside one transaction.

        Returns
        -------
        pathlib.Path or Database
            The path (or table) written.

        Examples
        --------
        >>> import tempfile, pathlib, rfm_fast
        >>> result = rfm_fast.score(rfm_fast.datasets.example_path(), customer="customer_id",
        ...                         timestamp="date", amount="dollar_value")
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> result.write(folder / "scores.csv").name
        'scores.csv'
        """
        return write_table(self.table, path)

    def _repr_html_(self) -> str:
        """A short summary for notebooks: the counts and customers per segment, not the table
        (segment names are escaped: they are the user's text)."""
        s = self.stats
        rows = "".join(
            f"<tr><td>{html.escape(name)}</td><td style='text-align:right'>{count:,}</td></tr>"
            for name, count in self.segment_counts()
        )
        as_of = html.escape(s.as_of.isoformat(sep=" ")) if s.as_of else "-"
        return (
            f"<div><b>RFMResult</b>: {s.customers:,} customers from {s.rows_used:,} of "
            f"{s.rows_read:,} rows; as_of {as_of}; {s.bins} bins, method "
            f"{html.escape(s.method)}; returns {html.escape(s.returns)}"
            f"<table><tr><th>segment</th><th>customers</th></tr>{rows}</table>"
            "<small><code>.table</code> holds one row per customer</small></div>"
        )

    def with_playbook(self) -> RFMResult:
        """This result with the playbook of each customer's segment as columns after
        ``segment``: ``action`` (dictionary-encoded text) and ``priority`` (int16, 1 = act
        first); nulls for ``"Other"`` and for segments without them. Descriptions are per
        segment, in :func:`rfm_fast.summarize` and :func:`rfm_fast.playbook`.

        Examples
        --------
        >>> import rfm_fast
        >>> result = rfm_fast.score(rfm_fast.datasets.load_example(),
        ...                         **rfm_fast.datasets.EXAMPLE_COLUMNS, segments="compact")
        >>> row = result.with_playbook().table.to_pylist()[0]
        >>> row["segment"], row["priority"], row["action"]
        ('Lost', 4, 'Low-cost reactivation at most; then suppress them from paid campaigns.')
        """
        table = self.table
        if "action" in table.column_names:
            return self
        at = table.column_names.index("segment") + 1
        for offset, (name, column) in enumerate(
            playbook_columns(self.rules, table.column("segment")).items()
        ):
            table = table.add_column(at + offset, name, column)
        return replace(self, table=table)

    def segment_counts(self) -> list[tuple[str, int]]:
        """(segment, customers) for every segment name, in rule order, then "Other"."""
        column = self.table.column("segment").combine_chunks()
        codes = arrow.primitive_values(column.indices, column.indices.type.to_pandas_dtype())
        counts = np.bincount(codes, minlength=len(column.dictionary))
        return [
            (str(name), int(c))
            for name, c in zip(column.dictionary.to_pylist(), counts, strict=True)
        ]

    def __repr__(self) -> str:
        s = self.stats
        return (
            f"RFMResult(customers={s.customers}, rows_used={s.rows_used}, "
            f"as_of={s.as_of.isoformat() if s.as_of else None}, bins={s.bins}, "
            f"method={s.method!r})"
        )
