"""Every option of reading and scoring orders, declared once: :data:`OPTIONS`.

One row per option: its name (the keyword of :func:`rfm_fast.score`), what it belongs to
(``group``: reading, scoring, or the command line's database input), its type, default,
choices, help text and check, how the command line writes it, and which entry points take it
(:data:`ENTRY_POINTS`: the library's functions and the ``rfm`` commands; an entry point that
does not take an option it could says why, in ``not_taken_by``). From this table come:

* the checked option objects of :mod:`rfm_fast.core.options` (:class:`ReadOptions`,
  :class:`ScoreOptions`): their names, defaults and checks;
* the options of every ``rfm`` command that reads orders (the decorator
  ``rfm_fast_cli.options.reading_options``);
* the parity tests (tests/core/test_option_table.py for the library's functions,
  tests/cli/test_option_parity.py for the commands), which fail when an entry point takes an
  option the table does not give it, or lacks one without a reason;
* the table of options per command in docs/cli.md (:func:`options_per_command`).

The module imports nothing heavy (the command line builds its ``--help`` from it): the checks
that need NumPy, pyarrow or the segment rules import them when they run.

Examples
--------
>>> from rfm_fast.core.option_table import OPTION, taken_by
>>> OPTION["returns"].choices, OPTION["returns"].default
(('net', 'purchase', 'drop'), 'net')
>>> "delimiter" in taken_by("rfm clv"), "delimiter" in taken_by("spark")
(True, False)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rfm_fast.errors import RFMError


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""The default of an option that must be given (the column names, in the library)."""

Check = Callable[[Any, Mapping[str, Any]], Any]
"""A check: ``check(value, checked)`` returns the value to keep (possibly converted) or raises
:class:`~rfm_fast.errors.RFMError`; ``checked`` holds the options of the same group checked
before it, in table order (``segments`` and ``thresholds`` need ``bins``)."""


@dataclass(frozen=True)
class EntryPoint:
    """A function or a command that takes options of the table.

    ``groups``: the groups of options it takes (see :attr:`Option.group`); ``also``: single
    options of other groups it takes."""

    name: str
    groups: frozenset[str]
    what: str
    also: frozenset[str] = frozenset()


ENTRY_POINTS: dict[str, EntryPoint] = {
    entry.name: entry
    for entry in (
        EntryPoint("score", frozenset({"read", "score"}), "rfm_fast.score"),
        EntryPoint("DailyState.init", frozenset({"read", "score"}), "rfm_fast.DailyState.init"),
        EntryPoint("clv.analyze", frozenset({"read", "score"}), "rfm_fast.clv.analyze"),
        EntryPoint("spark", frozenset({"read", "score"}), "rfm_fast.engines.spark.score_result"),
        EntryPoint("dask", frozenset({"read", "score"}), "rfm_fast.engines.dask.score_result"),
        *(
            EntryPoint(f"rfm {name}", frozenset({"input", "read", "score"}), f"rfm {name}")
            for name in (
                "score",
                "segments",
                "report",
                "export",
                "migrate",
                "clv",
                "campaign",
                "state init",
            )
        ),
        EntryPoint(
            "rfm state update",
            frozenset({"input"}),
            "rfm state update (reads and scores with the options fixed by rfm state init)",
            also=frozenset({"as_of", "threads"}),
        ),
    )
}
"""Every entry point of the table, by name: ``rfm ...`` are the commands, the others the
library's functions (``rfm_fast.migrate`` and ``rfm_fast.campaign`` pass their keywords on to
:func:`rfm_fast.score` as they are, so they take whatever it takes)."""

LIBRARY = tuple(name for name in ENTRY_POINTS if not name.startswith("rfm "))
COMMANDS = tuple(name for name in ENTRY_POINTS if name.startswith("rfm "))


@dataclass(frozen=True)
class CommandLine:
    """How the command line writes an option: one parameter of a command, ``--flag``."""

    name: str
    """The parameter's name (the Python name of the command's argument)."""
    type: type
    default: Any
    help: str
    flag: str | None = None
    """Default: ``--`` and the name with dashes."""
    metavar: str | None = None

    @property
    def flags(self) -> tuple[str, ...]:
        return (self.flag or "--" + self.name.replace("_", "-"),)


@dataclass(frozen=True)
class Option:
    """One option of reading or scoring: see the module's docstring."""

    name: str
    group: str
    """``"read"`` (:class:`~rfm_fast.core.options.ReadOptions`), ``"score"``
    (:class:`~rfm_fast.core.options.ScoreOptions`), or ``"input"`` (the command line's
    database input: the library takes a database input object instead)."""
    type: str
    """The library's type, as its signatures write it."""
    default: Any
    help: str
    """The command line's help text (the library's is in its docstrings)."""
    check: Check | None = None
    choices: tuple[str, ...] = ()
    command_line: tuple[CommandLine, ...] | str = ()
    """The parameters of a command: () for one built from the row (name, type, default,
    choices, help); or a reason why no command has it, or ``"own"`` where each command declares
    it itself (``--as-of``: one date, or two)."""
    cli_default: Any = None
    """The default of a command where it differs from the library's (the column names)."""
    metavar: str | None = None
    """What ``--help`` shows for the value (default: its type)."""
    from_command_line: Callable[..., Any] | None = None
    """The library's value from the command's parameters (default: the one parameter, as it
    is)."""
    not_taken_by: Mapping[str, str] = field(default_factory=dict)
    """Entry points that take the option's group but not the option: why."""

    def cli_parameters(self) -> tuple[CommandLine, ...]:
        """The parameters that the decorator of the command line builds: none where each
        command declares its own or none takes it."""
        if isinstance(self.command_line, str):
            return ()
        if self.command_line:
            return self.command_line
        default = self.default if self.cli_default is None else self.cli_default
        kind = {"int": int, "int | None": int}.get(self.type, str)
        return (CommandLine(self.name, kind, default, self.help, metavar=self.metavar),)

    def checked(self, value: Any, checked: Mapping[str, Any]) -> Any:
        """``value`` through the check (and among the choices, where the option has them)."""
        if self.choices and value not in self.choices:
            raise RFMError(f"{self.name} must be one of {', '.join(self.choices)}; got {value!r}")
        return value if self.check is None else self.check(value, checked)

    def takes(self, entry: str) -> bool:
        """Whether the entry point ``entry`` (a key of :data:`ENTRY_POINTS`) takes the option."""
        point = ENTRY_POINTS[entry]
        if entry in self.not_taken_by or (entry in COMMANDS and self.off_the_command_line):
            return False
        return self.group in point.groups or self.name in point.also

    @property
    def off_the_command_line(self) -> str | None:
        """Why no command takes the option; None where the commands take it."""
        line = self.command_line
        return line if isinstance(line, str) and line != "own" else None


# ------------------------------------------------------------------------------ checks
def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _positive_int(value: Any, checked: Mapping[str, Any]) -> int:
    if not _is_positive_int(value):
        raise RFMError(f"batch_rows must be a positive integer; got {value!r}")
    return value


def _threads(value: Any, checked: Mapping[str, Any]) -> int:
    if value is None:
        value = os.cpu_count() or 1
    if not _is_positive_int(value):
        raise RFMError(f"threads must be a positive integer; got {value!r}")
    return value


def _delimiter(value: Any, checked: Mapping[str, Any]) -> str | None:
    if value not in (None, "whitespace") and (
        not isinstance(value, str) or len(value) != 1 or value in '\r\n"'
    ):
        raise RFMError(
            f"delimiter must be one character (such as ';' or a tab) or 'whitespace'; got {value!r}"
        )
    return value


def _amount_format(value: Any, checked: Mapping[str, Any]) -> str | None:
    if value not in (None, "currency"):
        raise RFMError(f"amount_format must be 'currency' or None; got {value!r}")
    return value


def _decimal(value: Any, checked: Mapping[str, Any]) -> str:
    if value not in (".", ","):
        raise RFMError(f"decimal must be '.' or ','; got {value!r}")
    return value


def _schema(value: Any, checked: Mapping[str, Any]) -> Any:
    from rfm_fast.core.options import column_types_of

    return column_types_of(value)


def _window(value: Any, checked: Mapping[str, Any]) -> int | None:
    from rfm_fast.core.options import check_window

    return check_window(value)


def _bins(value: Any, checked: Mapping[str, Any]) -> int:
    from rfm_fast.core.binning import check_bins

    return check_bins(value)


def _segments(value: Any, checked: Mapping[str, Any]) -> Any:
    from rfm_fast.core.segments import resolve_rules

    return resolve_rules(value, checked["bins"])


def _thresholds(value: Any, checked: Mapping[str, Any]) -> Any:
    from rfm_fast.core.binning import check_thresholds

    return check_thresholds(value, checked["bins"])


# ------------------------------------------------------------- command-line conversions
def _delimiter_from_command_line(delimiter: str | None) -> str | None:
    """``--delimiter tab`` is a tab."""
    return "\t" if delimiter == "tab" else delimiter


def _edges_of(text: str | None, metric: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise RFMError(
            f"--{metric}-edges must be comma-separated numbers such as 30,90,180,365; got {text!r}"
        ) from None


def thresholds_from_command_line(
    recency_edges: str | None, frequency_edges: str | None, monetary_edges: str | None
) -> dict[str, list[float]] | None:
    """``thresholds`` from ``--recency-edges``, ``--frequency-edges``, ``--monetary-edges``
    (None where none is given).

    Examples
    --------
    >>> thresholds_from_command_line("30,90", None, None)
    {'recency': [30.0, 90.0]}
    """
    given = {"recency": recency_edges, "frequency": frequency_edges, "monetary": monetary_edges}
    parsed = {metric: _edges_of(text, metric) for metric, text in given.items()}
    return {metric: edges for metric, edges in parsed.items() if edges is not None} or None


# ------------------------------------------------------------------------------ the table
_DATAFRAME = "the input is a DataFrame, never a CSV file"
_ACROSS_PARTITIONS = "each task of the partitions runs one thread"
_STATE_AS_OF = (
    "a state is first scored as of its latest order plus a day; each update has its as_of"
)
_BTYD = "the purchase models count purchase days and fit no RFM scores"

OPTIONS: tuple[Option, ...] = (
    Option(
        "customer",
        "read",
        "str",
        REQUIRED,
        "Customer id column.",
        cli_default="customer",
    ),
    Option(
        "timestamp",
        "read",
        "str",
        REQUIRED,
        "Purchase date/time column.",
        cli_default="timestamp",
    ),
    Option(
        "amount",
        "read",
        "str",
        REQUIRED,
        "Amount column, or a product of two: 'Quantity*UnitPrice'.",
        cli_default="amount",
    ),
    Option(
        "order",
        "read",
        "str | None",
        None,
        "Order id column (distinct orders).",
        not_taken_by={
            "clv.analyze": "the purchase models count purchase days: the orders of a day are "
            "one purchase (rfm clv takes --order for its segments)"
        },
    ),
    Option(
        "as_of",
        "read",
        "Any",
        None,
        "End of the window (ISO-8601).",
        command_line="own",
        not_taken_by={
            "rfm campaign": "the segments are scored as of each customer's send (sent_at)",
            "DailyState.init": _STATE_AS_OF,
            "rfm state init": _STATE_AS_OF,
        },
    ),
    Option(
        "bins",
        "score",
        "int",
        5,
        "Number of scores per metric (2..9).",
        check=_bins,
        not_taken_by={"clv.analyze": _BTYD},
    ),
    Option(
        "method",
        "score",
        "str",
        "exact",
        "exact: ties share a score; split: NTILE; approx: mergeable sketch.",
        choices=("exact", "split", "approx"),
        not_taken_by={"clv.analyze": _BTYD},
    ),
    Option(
        "frequency",
        "read",
        "str",
        "orders",
        "Count orders or purchase days.",
        choices=("orders", "days"),
        not_taken_by={"clv.analyze": _BTYD},
    ),
    Option(
        "monetary",
        "score",
        "str",
        "sum",
        "Total spend, or mean per order.",
        choices=("sum", "mean"),
        not_taken_by={"clv.analyze": _BTYD},
    ),
    Option(
        "returns",
        "read",
        "str",
        "net",
        "Rows with a negative amount: net (off the spend, not a purchase), purchase, drop.",
        choices=("net", "purchase", "drop"),
    ),
    Option(
        "segments",
        "score",
        "SegmentsSpec",
        "default",
        "Segment rules: a map (default, value, compact, lifecycle), 'none', or a TOML rules "
        "file. List them: rfm segments --list.",
        check=_segments,
        not_taken_by={"clv.analyze": _BTYD},
    ),
    Option(
        "timestamp_format",
        "read",
        "str | None",
        None,
        "strptime format, e.g. '%Y%m%d'.",
    ),
    Option(
        "delimiter",
        "read",
        "str | None",
        None,
        "CSV delimiter: one character, 'tab', or 'whitespace' (runs of spaces); guessed when "
        "not given (a guess other than a comma is printed).",
        check=_delimiter,
        from_command_line=_delimiter_from_command_line,
        not_taken_by={"spark": _DATAFRAME, "dask": _DATAFRAME},
    ),
    Option(
        "schema",
        "read",
        "Mapping[str, Any] | str | None",
        None,
        "CSV column types, e.g. 'CustomerID=string,Quantity=float64'.",
        check=_schema,
        not_taken_by={"spark": _DATAFRAME, "dask": _DATAFRAME},
    ),
    Option(
        "amount_format",
        "read",
        "str | None",
        None,
        "Text amounts: 'currency' drops symbols and thousands separators.",
        check=_amount_format,
    ),
    Option(
        "decimal",
        "read",
        "str",
        ".",
        "Decimal separator of text amounts: . or ,",
        check=_decimal,
    ),
    Option(
        "window",
        "read",
        "int | None",
        None,
        "Score only the rows of the last DAYS days before as_of (e.g. 365).",
        check=_window,
        metavar="DAYS",
        not_taken_by={
            "clv.analyze": "the purchase models fit the whole history",
            "rfm clv": "the purchase models fit the whole history",
            "spark": "not available across partitions yet: filter the rows first",
            "dask": "not available across partitions yet: filter the rows first",
        },
    ),
    Option(
        "thresholds",
        "score",
        "dict[str, Sequence[float]] | None",
        None,
        "Explicit edges for some metrics.",
        check=_thresholds,
        command_line=(
            CommandLine("recency_edges", str, None, "e.g. 30,90,180,365 (days)."),
            CommandLine("frequency_edges", str, None, "e.g. 1,2,4,8."),
            CommandLine("monetary_edges", str, None, "e.g. 50,100,250,1000."),
        ),
        from_command_line=thresholds_from_command_line,
        not_taken_by={"clv.analyze": _BTYD},
    ),
    Option(
        "threads",
        "read",
        "int | None",
        None,
        "Aggregation threads (default: one per core).",
        check=_threads,
        not_taken_by={"spark": _ACROSS_PARTITIONS, "dask": _ACROSS_PARTITIONS},
    ),
    Option(
        "batch_rows",
        "read",
        "int",
        1 << 20,
        "Rows per batch when reading files and large tables.",
        check=_positive_int,
        command_line="the command line reads in the library's batches",
        not_taken_by={"spark": "Spark hands each partition over in its own Arrow batches"},
    ),
    Option(
        "query",
        "input",
        "str | None",
        None,
        "INPUT is a database: the SQL that gives the rows.",
    ),
    Option(
        "table",
        "input",
        "str | None",
        None,
        "INPUT is a database: the table of the rows.",
    ),
)
"""Every option of reading and scoring, in the order the commands list them."""

OPTION: dict[str, Option] = {option.name: option for option in OPTIONS}
"""The rows of :data:`OPTIONS` by name."""

READ_OPTION_NAMES = frozenset(o.name for o in OPTIONS if o.group == "read")
SCORE_OPTION_NAMES = frozenset(o.name for o in OPTIONS if o.group == "score")


def taken_by(entry: str) -> tuple[str, ...]:
    """The options that the entry point ``entry`` takes, in table order."""
    if entry not in ENTRY_POINTS:
        raise RFMError(
            f"unknown entry point {entry!r}; the entry points are: {', '.join(ENTRY_POINTS)}"
        )
    return tuple(option.name for option in OPTIONS if option.takes(entry))


def given_options(entry: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The options that ``entry`` takes, picked out of its ``arguments`` (its ``locals()`` at
    the top of its body): what it passes on to the checks.

    Examples
    --------
    >>> given_options("clv.analyze", {"customer": "c", "unit": "W", "returns": "net"})
    {'customer': 'c', 'returns': 'net'}
    """
    return {name: arguments[name] for name in taken_by(entry) if name in arguments}


def checked_group(group: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """The options of ``group`` checked, in table order: each given value (else its default)
    through its check. Every name of ``given`` must be an option of the group.

    Raises
    ------
    RFMError
        For an unknown option, a missing required one (a column), and as the checks do.
    """
    rows = [option for option in OPTIONS if option.group == group]
    unknown = sorted(set(given) - {option.name for option in rows})
    if unknown:
        raise RFMError(
            f"unknown option(s) {', '.join(map(repr, unknown))}; the options are: "
            + ", ".join(sorted(option.name for option in rows))
        )
    checked: dict[str, Any] = {}
    for option in rows:
        value = given.get(option.name, option.default)
        if value is REQUIRED:
            raise RFMError(f"missing option: {option.name} (a column name)")
        checked[option.name] = option.checked(value, checked)
    return checked


def options_per_command() -> str:
    """The table of docs/cli.md, "Reading and scoring options": which command takes which
    option (``rfm state update`` takes those of its state), and why a command leaves one out.

    Examples
    --------
    >>> print(options_per_command().splitlines()[2])
    | `--customer` | yes | yes | yes | yes | yes | yes | yes | yes |
    """
    commands = [entry for entry in COMMANDS if entry != "rfm state update"]
    header = ["option", *(f"`{entry}`" for entry in commands)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    reasons = []
    for option in OPTIONS:
        if option.off_the_command_line:
            continue
        names = (
            [option.name]
            if option.command_line == "own"
            else [line.name for line in option.cli_parameters()]
        )
        flags = ", ".join(f"`--{name.replace('_', '-')}`" for name in names)
        cells = []
        for entry in commands:
            if option.takes(entry):
                cells.append("yes")
            else:
                cells.append("no")
                reasons.append(f"* {flags} in `{entry}`: {option.not_taken_by[entry]}.")
        lines.append(f"| {flags} | " + " | ".join(cells) + " |")
    return "\n".join([*lines, "", "Left out:", "", *reasons]) + "\n"
