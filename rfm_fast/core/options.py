"""The options of a scoring run, checked once: what to read, and how to score it.

Every entry point (:func:`rfm_fast.score`, :class:`rfm_fast.CustomerState`, the partition
engine that Spark and Dask run, the command line) turns its keyword arguments into these
objects with a ``checked`` constructor; the steps after it take them as they are.

* :class:`Columns`: the input columns, with the one reading of ``amount="Quantity*UnitPrice"``;
* :class:`ReadOptions`: the columns and how to read them (``as_of``, ``frequency``,
  ``returns``, ``timestamp_format``, ``batch_rows``, ``threads``): what a
  :class:`rfm_fast.CustomerState` is built with;
* :class:`ScoreOptions`: how totals become scores (``bins``, ``method``, ``monetary``,
  ``segments``, ``thresholds``): what :meth:`rfm_fast.CustomerState.score` takes;
* :class:`ScoringOptions`: both, for a whole run.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from rfm_fast.core.option_table import (
    OPTION,
    READ_OPTION_NAMES,
    SCORE_OPTION_NAMES,
    checked_group,
)
from rfm_fast.errors import EXCERPT_CHARACTERS, RFMError

FREQUENCIES = OPTION["frequency"].choices
AMOUNT_FORMATS = (None, "currency")
RETURNS = OPTION["returns"].choices
"""How rows with a negative amount are taken; the first is the default (docs/semantics.md,
"Returns")."""
MONETARIES = OPTION["monetary"].choices


@dataclass(frozen=True)
class Columns:
    """The input columns of a run, as the user named them.

    ``amount`` is a column, or the product of two written ``"Quantity*UnitPrice"`` (unless a
    column has that very name).
    """

    customer: str
    timestamp: str
    amount: str
    order: str | None = None

    def amount_columns(self, available: Sequence[str]) -> tuple[str, ...]:
        """The amount's column, or the two factors of a product, among ``available``."""
        if self.amount in available or "*" not in self.amount:
            return (self.amount,)
        return tuple(part.strip() for part in self.amount.split("*"))

    def names_in(self, available: Sequence[str]) -> list[str]:
        """Every column a run reads, once each, in the order customer, timestamp, amount(s),
        order."""
        names = [self.customer, self.timestamp, *self.amount_columns(available)]
        if self.order is not None:
            names.append(self.order)
        return list(dict.fromkeys(names))

    def resolve(self, available: Sequence[str]) -> ResolvedColumns:
        """The columns checked against the input's ``available`` names.

        Raises
        ------
        RFMError
            Where a name is not a non-empty string, is not among ``available``, or a product
            is not written as two column names.
        """

        def need(role: str, name: str) -> str:
            if not isinstance(name, str) or not name:
                raise RFMError(f"the {role} column must be given as a column name; got {name!r}")
            if name not in available:
                close = closest_name(name, available)
                hint = f" (did you mean {close!r}?)" if close is not None else ""
                raise RFMError(
                    f"{role} column {name!r} not found{hint}; the input has columns: "
                    + ", ".join(repr(c) for c in available)
                )
            return name

        factors = self.amount_columns(available) if isinstance(self.amount, str) else ()
        if len(factors) > 1:
            if len(factors) != 2 or not all(factors):
                raise RFMError(
                    f"amount {self.amount!r}: a product is written as two column names, "
                    "'Quantity*UnitPrice'"
                )
            amounts = tuple(need("amount factor", f) for f in factors)
        else:
            amounts = (need("amount", self.amount),)
        return ResolvedColumns(
            need("customer", self.customer),
            need("timestamp", self.timestamp),
            amounts,
            None if self.order is None else need("order", self.order),
        )


@dataclass(frozen=True)
class ResolvedColumns:
    """The columns a run reads, found in the input (see :meth:`Columns.resolve`)."""

    customer: str
    timestamp: str
    amount: tuple[str, ...]
    """One column, or the two factors of a product."""
    order: str | None

    @property
    def names(self) -> list[str]:
        """Every column, once each."""
        names = [self.customer, self.timestamp, *self.amount]
        if self.order is not None:
            names.append(self.order)
        return list(dict.fromkeys(names))


@dataclass(frozen=True)
class ReadOptions:
    """What a run reads and how: the columns, ``as_of``, ``frequency`` and the batching.

    Build it with :meth:`checked`; the fields mean what the arguments of
    :func:`rfm_fast.score` of the same names mean.
    """

    columns: Columns
    as_of: Any
    frequency: str
    timestamp_format: str | None
    batch_rows: int
    threads: int
    """Resolved: the number of cores where the user gave none."""
    returns: str = RETURNS[0]
    delimiter: str | None = None
    """CSV files: one character or ``"whitespace"``; None: ``","`` (tab for ``.tsv``)."""
    column_types: dict[str, pa.DataType] = field(default_factory=dict)
    """CSV files: types to read columns as, instead of those inferred (``schema=``)."""
    amount_format: str | None = None
    """``"currency"``: text amounts lose currency symbols and thousands separators."""
    decimal: str = "."
    """The decimal separator of text amounts: ``"."`` or ``","``."""
    window: int | None = None
    """Days: only the rows at most this many days before ``as_of`` count (see
    :func:`check_window`); None: every row up to ``as_of``."""

    @classmethod
    def checked(cls, **options: Any) -> ReadOptions:
        """The options, checked: the reading options of the table
        (:data:`rfm_fast.core.option_table.OPTIONS`, group ``"read"``) by keyword, each
        through its check, the others at their defaults (the columns are checked against the
        input when it is opened: :meth:`Columns.resolve`).

        Raises
        ------
        RFMError
            For an unknown option or a missing column name, an unknown ``frequency`` or
            ``returns``, ``batch_rows`` or ``threads`` that are not positive integers, or a
            ``window`` that is not a number of days.

        Examples
        --------
        >>> from rfm_fast.core.options import ReadOptions
        >>> options = ReadOptions.checked(customer="c", timestamp="t", amount="a", threads=2)
        >>> options.columns.order, options.frequency, options.threads
        (None, 'orders', 2)
        """
        checked = checked_group("read", options)
        return cls(
            Columns(checked["customer"], checked["timestamp"], checked["amount"], checked["order"]),
            checked["as_of"],
            checked["frequency"],
            checked["timestamp_format"],
            checked["batch_rows"],
            checked["threads"],
            checked["returns"],
            checked["delimiter"],
            checked["schema"],
            checked["amount_format"],
            checked["decimal"],
            checked["window"],
        )

    @property
    def distinct_kind(self) -> str | None:
        """What the frequency counts beside rows: ``"days"``, ``"orders"`` or None (rows)."""
        if self.frequency == "days":
            return "days"
        return None if self.columns.order is None else "orders"


@dataclass(frozen=True)
class ScoreOptions:
    """How per-customer totals become scores and segments.

    Build it with :meth:`checked`. ``thresholds`` holds the user's edges as arrays (checked
    against ``bins``), ``rules`` the resolved segment rules (``segments``).
    """

    bins: int
    method: str
    monetary: str
    thresholds: dict[str, np.ndarray]
    rules: Any

    @classmethod
    def checked(cls, **options: Any) -> ScoreOptions:
        """The options, checked: the scoring options of the table
        (:data:`rfm_fast.core.option_table.OPTIONS`, group ``"score"``: ``bins``, ``method``,
        ``monetary``, ``segments``, ``thresholds``) by keyword, as :func:`rfm_fast.score`
        takes them.

        Raises
        ------
        RFMError
            For an unknown option, bins outside 2..9, an unknown method or monetary mode,
            thresholds that do not fit ``bins``, or invalid segment rules.

        Examples
        --------
        >>> from rfm_fast.core.options import ScoreOptions
        >>> options = ScoreOptions.checked(bins=3, thresholds={"recency": [30, 90]}, segments=None)
        >>> options.bins, options.thresholds["recency"].tolist()
        (3, [30.0, 90.0])
        """
        checked = checked_group("score", options)
        return cls(
            checked["bins"],
            checked["method"],
            checked["monetary"],
            checked["thresholds"],
            checked["segments"],
        )


@dataclass(frozen=True)
class ScoringOptions:
    """The options of a whole run: what to read (:class:`ReadOptions`) and how to score it
    (:class:`ScoreOptions`)."""

    reading: ReadOptions
    scoring: ScoreOptions

    @classmethod
    def checked(cls, **options: Any) -> ScoringOptions:
        """The keyword options of :func:`rfm_fast.score` (``customer``, ``timestamp`` and
        ``amount`` required), checked.

        Raises
        ------
        RFMError
            For an unknown or missing option, and as :meth:`ReadOptions.checked` and
            :meth:`ScoreOptions.checked` do.

        Examples
        --------
        >>> from rfm_fast.core.options import ScoringOptions
        >>> options = ScoringOptions.checked(customer="c", timestamp="t", amount="q*p", bins=4,
        ...                                  segments=None)
        >>> options.reading.columns.amount_columns(["c", "t", "q", "p"]), options.scoring.bins
        (('q', 'p'), 4)
        """
        unknown = sorted(set(options) - READ_OPTION_NAMES - SCORE_OPTION_NAMES)
        if unknown:
            raise RFMError(
                f"unknown option(s) {', '.join(map(repr, unknown))}; the options are: "
                + ", ".join(sorted(READ_OPTION_NAMES | SCORE_OPTION_NAMES))
            )
        missing = [name for name in ("customer", "timestamp", "amount") if name not in options]
        if missing:
            raise RFMError(f"missing option(s): {', '.join(missing)} (the column names)")
        return cls(
            ReadOptions.checked(**{k: v for k, v in options.items() if k in READ_OPTION_NAMES}),
            ScoreOptions.checked(**{k: v for k, v in options.items() if k in SCORE_OPTION_NAMES}),
        )


COLUMN_TYPES = {
    "string": pa.string(),
    "text": pa.string(),
    "int64": pa.int64(),
    "integer": pa.int64(),
    "float64": pa.float64(),
    "float": pa.float64(),
    "double": pa.float64(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
}
"""The types ``schema=`` (CLI: ``--schema``) names."""


def column_types_of(schema: Mapping[str, Any] | str | None) -> dict[str, pa.DataType]:
    """``schema=``: a mapping of column to type (a name of :data:`COLUMN_TYPES` or a
    ``pyarrow.DataType``), or the text ``"customer=string,amount=float64"``.

    Examples
    --------
    >>> column_types_of("CustomerID=string, Quantity=float64")
    {'CustomerID': DataType(string), 'Quantity': DataType(double)}
    """
    if schema is None:
        return {}
    if isinstance(schema, str):
        pairs = {}
        for part in filter(None, (p.strip() for p in schema.split(","))):
            name, sep, type_ = part.partition("=")
            if not sep or not name.strip():
                raise RFMError(
                    f"schema must be written column=type, comma-separated (such as "
                    f"'customer=string,amount=float64'); got {part!r}"
                )
            pairs[name.strip()] = type_.strip()
        schema = pairs
    if not isinstance(schema, Mapping):
        raise RFMError(f"schema must be a mapping of column to type; got {type(schema).__name__}")
    types = {}
    for name, type_ in schema.items():
        if isinstance(type_, pa.DataType):
            types[str(name)] = type_
        elif isinstance(type_, str) and type_.lower() in COLUMN_TYPES:
            types[str(name)] = COLUMN_TYPES[type_.lower()]
        else:
            raise RFMError(
                f"schema: unknown type {type_!r} for column {name!r}; the types are "
                + ", ".join(COLUMN_TYPES)
            )
    return types


def closest_name(name: str, available: Sequence[str]) -> str | None:
    """The column of ``available`` that ``name`` most likely means, or None: the same name
    apart from case, spaces, ``_`` and ``-`` (``customer_id`` for ``CustomerID``), else the
    closest spelling (:func:`difflib.get_close_matches`).

    Examples
    --------
    >>> closest_name("customer_id", ["InvoiceNo", "CustomerID"])
    'CustomerID'
    >>> closest_name("amout", ["amount", "ts"]), closest_name("x", ["amount"])
    ('amount', None)
    """

    def folded(text: str) -> str:
        return "".join(c for c in text.casefold() if c not in " _-")

    names = [c for c in available if isinstance(c, str)]
    same = [c for c in names if folded(c) == folded(name)]
    if same:
        return same[0]
    by_folded = {folded(c): c for c in names}
    close = difflib.get_close_matches(folded(name), list(by_folded), n=1, cutoff=0.75)
    return by_folded[close[0]] if close else None


MAX_WINDOW_DAYS = 3_660_000
"""The longest window: ten thousand years, longer than any timestamp type spans."""


def check_window(window: Any) -> int | None:
    """``window=`` (CLI: ``--window``): None, or a whole number of days from 1 to
    :data:`MAX_WINDOW_DAYS`.

    A run with a window of ``n`` days scores only the rows at most ``n`` days before
    ``as_of`` (``as_of - n days <= timestamp <= as_of``): exactly what a run over those rows
    alone gives. The rows before the window are left out and counted.

    Raises
    ------
    RFMError
        For anything else, saying what was found.

    Examples
    --------
    >>> check_window(365), check_window(None)
    (365, None)
    """
    if window is None:
        return None
    if isinstance(window, np.integer):
        window = int(window)
    if not _is_positive_int(window) or window > MAX_WINDOW_DAYS:
        raise RFMError(
            f"window must be a whole number of days from 1 to {MAX_WINDOW_DAYS:,} (such as 365 "
            f"for the last year); got {_shown_number(window)}"
        )
    return window


def _shown_number(value: Any) -> str:
    """``value`` for a message, cut short: a whole number beyond 10**60 is not written out (an
    int of over 4,300 digits cannot even be converted to text)."""
    if isinstance(value, int) and abs(value) >= 10**60:
        return "a whole number beyond 10**60"
    shown = repr(value)
    return shown if len(shown) <= EXCERPT_CHARACTERS else shown[:EXCERPT_CHARACTERS] + "..."


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1
