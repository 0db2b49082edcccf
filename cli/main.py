"""The ``rfm`` command line: parses options, calls :mod:`rfm_fast`, prints what happened.

Every command is a few lines over a library call. Library errors become one line on stderr and
exit code 1; nothing prints a traceback unless ``RFM_DEBUG=1`` is set.
"""

from __future__ import annotations

import contextlib
import enum
import gc
import importlib
import os
import re
import signal
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

import rfm_fast
from rfm_fast.core.timing import PhaseTime
from rfm_fast.credentials import scrub
from rfm_fast.errors import os_error_reason


def _on_first_call(module: str, name: str) -> Callable[..., Any]:
    """The function ``name`` of ``module``, imported when it is first called: ``rfm --version``,
    ``rfm --help`` and a usage error import none of the engine (Numba, pyarrow)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    return call


database_input = _on_first_call("rfm_fast.core.database", "database_input")
database_output = _on_first_call("rfm_fast.core.database", "database_output")
check_output = _on_first_call("rfm_fast.core.io", "check_output")
check_output_path = _on_first_call("rfm_fast.core.io", "check_output_path")
write_table = _on_first_call("rfm_fast.core.io", "write_table")
write_outputs = _on_first_call("rfm_fast.core.io", "write_outputs")
check_distinct_outputs = _on_first_call("rfm_fast.core.io", "check_distinct_outputs")
check_different_tables = _on_first_call("rfm_fast.core.database", "check_different_tables")
check_state_target = _on_first_call("rfm_fast.daily.state", "check_state_target")


app = typer.Typer(
    name="rfm",
    help="Score customers by recency, frequency and monetary value (RFM), fast.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: nothing in it is markup, and it fits 80 columns
)


def _plain_usage_name(argument: Any) -> str:
    """``INPUT`` in the usage line, as Click and the docs write it (Typer writes ``{INPUT}``)."""
    name = argument.display_name_raw if argument.required else f"[{argument.display_name_raw}]"
    return name + ("..." if argument.nargs != 1 else "")


if hasattr(typer.core.TyperArgument, "_usage_display_name"):
    typer.core.TyperArgument._usage_display_name = _plain_usage_name
_CONTROL_CHARACTERS = re.compile(
    "[\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069]"
)
"""Characters that would steer the terminal or reorder the text: C0 and C1 controls (escape
sequences start with one), DEL, and the bidirectional marks and overrides."""


def printable(text: str, one_line: bool = False) -> str:
    """``text`` with its control characters written as escapes (``\\x1b``); newlines are kept,
    or escaped too with ``one_line`` (an error or a warning is one line, whatever it quotes)."""
    text = _CONTROL_CHARACTERS.sub(
        lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text
    )
    return text.replace("\n", "\\n") if one_line else text


class PlainConsole(Console):
    """A console that prints text as it is: no markup, no emoji codes, no highlighting, and
    control characters shown escaped, so that nothing a user wrote (a segment name, a column
    name, a path) is interpreted. The command's own styles are Text objects. Credentials are
    never shown (:func:`rfm_fast.credentials.scrub`)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(markup=False, emoji=False, highlight=False, **options)

    def render_str(self, text: str, **options: Any) -> Text:
        return super().render_str(printable(scrub(text)), **options)


out = PlainConsole()
err = PlainConsole(stderr=True)


class Method(enum.StrEnum):
    exact = "exact"
    split = "split"
    approx = "approx"


class Frequency(enum.StrEnum):
    orders = "orders"
    days = "days"


class Monetary(enum.StrEnum):
    sum = "sum"
    mean = "mean"


class Returns(enum.StrEnum):
    net = "net"
    purchase = "purchase"
    drop = "drop"


class PurchaseModelName(enum.StrEnum):
    """The names of ``rfm clv --model`` (those of :data:`rfm_fast.clv.PURCHASE_MODELS`)."""

    bgnbd = "bgnbd"
    mbgnbd = "mbgnbd"
    pareto_nbd = "pareto-nbd"
    auto = "auto"


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM (under the ``rfm`` command), so that the files
    being written are removed on the way out, as they are on Ctrl-C."""


TERMINATED = "terminated (SIGTERM); no output was written"
_working = False
"""True inside :func:`_reported_errors`: a SIGTERM then unwinds the work, removing what was
being written."""


def _terminate(signum: int, frame: Any) -> None:
    if _working:
        raise Terminated
    # Before the work (the options are still being parsed) nothing is being written, and Click
    # would turn the exception into its own exit code: end here, with the one line.
    err.print(Text.assemble(("error:", "bold red"), " ", TERMINATED))
    raise SystemExit(143)


def _written(path: Any) -> None:
    """The outputs are complete and in place: from here on SIGTERM ends the command at once, as it
    would any program (nothing is left to clean up, and "no output was written" would be
    wrong)."""
    if signal.getsignal(signal.SIGTERM) is _terminate:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _write(table: Any, path: Any) -> None:
    write_table(table, path)
    _written(path)


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(
        Text.assemble(("error:", "bold red"), " ", printable(scrub(message), one_line=True)),
        soft_wrap=True,
    )
    return typer.Exit(code)


@contextlib.contextmanager
def _reported_errors() -> Iterator[None]:
    """Turn library errors into one line on stderr and exit code 1; print the warnings of a run
    that succeeds (a failure is its one line only)."""
    global _working
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", rfm_fast.RFMWarning)
        _working = True
        try:
            yield
            _working = False
            _print_warnings(caught)
        except rfm_fast.RFMError as exc:
            raise _fail(str(exc)) from None
        except Terminated:
            raise _fail(TERMINATED, 143) from None
        except KeyboardInterrupt:
            raise _fail("interrupted; no output was written", 130) from None
        except typer.Exit as exit_:
            if exit_.exit_code == 0:
                _print_warnings(caught)
            raise
        except typer.Abort:
            raise
        except Exception as exc:
            if os.environ.get("RFM_DEBUG"):
                raise
            if isinstance(exc, OSError) and exc.errno is not None:  # disk full, read-only, ...
                where = f"{exc.filename}: " if exc.filename else ""
                raise _fail(where + os_error_reason(exc)) from None
            if isinstance(exc, ValueError) and str(exc) == "embedded null byte":  # (os.fspath)
                raise _fail(
                    "a path holds a NUL character (\\x00), which no file name can hold; give "
                    "the path without it"
                ) from None
            raise _fail(
                f"unexpected {type(exc).__name__}: {exc} (this is a bug in rfm_fast; run with "
                "RFM_DEBUG=1 for the traceback and report it)"
            ) from None
        finally:
            _working = False


def _print_warnings(caught: list[warnings.WarningMessage]) -> None:
    for warning in caught:
        warned = printable(scrub(str(warning.message)), one_line=True)
        err.print(Text.assemble(("warning:", "yellow"), " ", warned), soft_wrap=True)


@contextlib.contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[int, int | None], None] | None]:
    """A progress bar on stderr while input is read, when stderr is a terminal."""
    if not enabled or not err.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("reading"),
        BarColumn(),
        TextColumn("{task.completed:,} rows"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("read", total=None)

        def update(rows: int, total: int | None) -> None:
            bar.update(task, completed=rows, total=total)

        yield update


def _edges_option(text: str | None, metric: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise _fail(
            f"--{metric}-edges must be comma-separated numbers such as 30,90,180,365; got {text!r}"
        ) from None


def _user_edges(recency: str | None, frequency: str | None, monetary: str | None) -> dict:
    """``thresholds`` from ``--recency-edges``, ``--frequency-edges``, ``--monetary-edges``."""
    given = {"recency": recency, "frequency": frequency, "monetary": monetary}
    parsed = {metric: _edges_option(text, metric) for metric, text in given.items()}
    return {metric: values for metric, values in parsed.items() if values is not None}


def print_summary(result: rfm_fast.RFMResult, output: Any) -> None:
    """The run summary: rows, drops, customers, as_of, edges, empty scores, segments."""
    s = result.stats
    dropped = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in s.dropped.items())
    as_of = s.as_of.isoformat(sep=" ") if s.as_of else "-"
    out.print(
        f"rows read {s.rows_read:,}; used {s.rows_used:,}; dropped: {dropped}", soft_wrap=True
    )
    if s.null_amount:
        out.print(f"rows with a null or NaN amount (counted, not summed): {s.null_amount:,}")
    if s.return_rows:
        taken = {
            "net": "netted into monetary, not counted as purchases",
            "purchase": "counted as purchases",
            "drop": "dropped",
        }[s.returns]
        only = ""
        if s.customers_only_returns:
            only = f"; {s.customers_only_returns:,} customers with only returns left out"
        out.print(
            f"returns (negative amounts): {s.return_rows:,} rows, {taken} (--returns "
            f"{s.returns}){only}",
            soft_wrap=True,
        )
    window = "" if s.window is None else f"; window {s.window:,} days"
    line = f"customers scored {s.customers:,}; as_of {as_of}{window}; bins {s.bins}"
    out.print(f"{line}; method {s.method}", soft_wrap=True)
    edges = Table(title="Edges (score boundaries)", title_justify="left")
    edges.add_column("metric")
    edges.add_column("edges", overflow="fold")
    edges.add_column("empty scores")
    for metric, values in result.edges.items():
        empty = ", ".join(map(str, s.empty_bins[metric])) or "-"
        edges.add_row(metric, ", ".join(f"{v:.12g}" for v in values), empty)
    out.print(edges)
    segments = Table(title="Segments", title_justify="left")
    segments.add_column("segment")
    segments.add_column("customers", justify="right")
    segments.add_column("share", justify="right")
    for name, count in result.segment_counts():
        share = f"{100 * count / s.customers:.1f}%" if s.customers else "-"
        segments.add_row(name, f"{count:,}", share)
    out.print(segments)
    if output is not None:
        out.print(f"wrote {s.customers:,} customers to {output}", soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        out.print(f"rfm_fast {rfm_fast.__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Score customers by recency, frequency and monetary value (RFM), fast."""


# Options shared by the commands that score an input.
InputArg = Annotated[
    str,  # not a Path: that would turn postgresql://host into postgresql:/host
    typer.Argument(
        metavar="INPUT",
        help="Parquet, CSV or Arrow IPC file, a folder of them, a glob, or a database URI "
        "(postgresql://..., sqlite:PATH) with --query or --table.",
    ),
]
QueryOpt = Annotated[
    str | None, typer.Option("--query", help="INPUT is a database: the SQL that gives the rows.")
]
TableOpt = Annotated[
    str | None, typer.Option("--table", help="INPUT is a database: the table of the rows.")
]
CustomerOpt = Annotated[str, typer.Option(help="Customer id column.")]
TimestampOpt = Annotated[str, typer.Option(help="Purchase date/time column.")]
AmountOpt = Annotated[
    str, typer.Option(help="Amount column, or a product of two: 'Quantity*UnitPrice'.")
]
OrderOpt = Annotated[str | None, typer.Option(help="Order id column (distinct orders).")]
BinsOpt = Annotated[int, typer.Option(help="Number of scores per metric (2..9).")]
MethodOpt = Annotated[
    Method, typer.Option(help="exact: ties share a score; split: NTILE; approx: mergeable sketch.")
]
FrequencyOpt = Annotated[Frequency, typer.Option(help="Count orders or purchase days.")]
MonetaryOpt = Annotated[Monetary, typer.Option(help="Total spend, or mean per order.")]
ReturnsOpt = Annotated[
    Returns,
    typer.Option(
        help="Rows with a negative amount: net (off the spend, not a purchase), purchase, drop."
    ),
]
SegmentsOpt = Annotated[
    str,
    typer.Option(
        help="Segment rules: a map (default, value, compact, lifecycle), 'none', or a TOML "
        "rules file. List them: rfm segments --list."
    ),
]
DelimiterOpt = Annotated[
    str | None,
    typer.Option(help="CSV delimiter: one character, 'tab', or 'whitespace' (runs of spaces)."),
]
SchemaOpt = Annotated[
    str | None,
    typer.Option(help="CSV column types, e.g. 'CustomerID=string,Quantity=float64'."),
]
AmountFormatOpt = Annotated[
    str | None,
    typer.Option(help="Text amounts: 'currency' drops symbols and thousands separators."),
]
DecimalOpt = Annotated[str, typer.Option(help="Decimal separator of text amounts: . or ,")]
WindowOpt = Annotated[
    int | None,
    typer.Option(
        "--window",
        metavar="DAYS",
        help="Score only the rows of the last DAYS days before as_of (e.g. 365).",
    ),
]
FormatOpt = Annotated[
    str | None, typer.Option("--timestamp-format", help="strptime format, e.g. '%Y%m%d'.")
]


def _scoring(
    customer: str,
    timestamp: str,
    amount: str,
    order: str | None,
    bins: int,
    method: Method,
    frequency: Frequency,
    monetary: Monetary,
    returns: Returns,
    segments: str,
    timestamp_format: str | None,
    delimiter: str | None = None,
    schema: str | None = None,
    amount_format: str | None = None,
    decimal: str = ".",
    **_other_options: Any,
) -> dict[str, Any]:
    """The options of rfm_fast.score that every scoring command shares, picked out of a
    command's parameters: ``_scoring(**locals())``."""
    return {
        "customer": customer,
        "timestamp": timestamp,
        "amount": amount,
        "order": order,
        "bins": bins,
        "method": method.value,
        "frequency": frequency.value,
        "monetary": monetary.value,
        "returns": returns.value,
        "segments": segments,
        "timestamp_format": timestamp_format,
        "delimiter": "\t" if delimiter == "tab" else delimiter,
        "schema": schema,
        "amount_format": amount_format,
        "decimal": decimal,
    }


@app.command()
def score(
    input: InputArg,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="Scores file: .parquet, .csv, .arrow; or a database URI with --output-table.",
        ),
    ] = None,
    query: QueryOpt = None,
    table: TableOpt = None,
    output_table: Annotated[
        str | None,
        typer.Option(help="-o is a database: the table to replace with the scores."),
    ] = None,
    customer: CustomerOpt = "customer",
    timestamp: TimestampOpt = "timestamp",
    amount: AmountOpt = "amount",
    order: OrderOpt = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="End of the window (ISO-8601); default: latest + 1 day."),
    ] = None,
    bins: BinsOpt = 5,
    method: MethodOpt = Method.exact,
    frequency: FrequencyOpt = Frequency.orders,
    monetary: MonetaryOpt = Monetary.sum,
    returns: ReturnsOpt = Returns.net,
    segments: SegmentsOpt = "default",
    timestamp_format: FormatOpt = None,
    delimiter: DelimiterOpt = None,
    schema: SchemaOpt = None,
    amount_format: AmountFormatOpt = None,
    decimal: DecimalOpt = ".",
    window: WindowOpt = None,
    recency_edges: Annotated[str | None, typer.Option(help="e.g. 30,90,180,365 (days).")] = None,
    frequency_edges: Annotated[str | None, typer.Option(help="e.g. 1,2,4,8.")] = None,
    monetary_edges: Annotated[str | None, typer.Option(help="e.g. 50,100,250,1000.")] = None,
    threads: Annotated[
        int | None, typer.Option(help="Aggregation threads (default: one per core).")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar while reading.")] = True,
    p_alive: Annotated[
        bool,
        typer.Option(
            "--p-alive", help="Add p_alive, expected purchases and CLV (BG/NBD, in weeks)."
        ),
    ] = False,
    playbook: Annotated[
        bool,
        typer.Option("--playbook", help="Add the action and priority of each customer's segment."),
    ] = False,
    profile: Annotated[
        bool, typer.Option("--profile", help="Print wall and CPU seconds per phase.")
    ] = False,
) -> None:
    """Score every customer of INPUT and write one row per customer to OUTPUT.

    INPUT is a Parquet, CSV (.csv, .csv.gz) or Arrow IPC file, a folder of them, or a glob such
    as 'orders/*.parquet' (quoted). Files are read batch by batch, never whole.
    """
    edges = _user_edges(recency_edges, frequency_edges, monetary_edges)
    options = _scoring(**locals())
    with _reported_errors():
        if p_alive and window is not None:
            raise rfm_fast.RFMError(
                "--p-alive fits the BG/NBD model on the whole history, and --window scores "
                "only its last days: give one of them (rfm clv predicts from the whole history)"
            )
        data = database_input(input, query, table)
        target = None
        if output is not None:
            target = check_output(database_output(output, output_table, "--output-table"), [data])
        with _progress(progress) as on_batch:
            result = rfm_fast.score(
                data,
                **options,
                as_of=as_of,
                window=window,
                thresholds=edges or None,
                threads=threads,
                progress=on_batch,
                playbook=playbook,
            )
        if p_alive:
            from rfm_fast import clv

            result = clv.with_p_alive(result, _default_predictions(data, options, as_of))
        written = None
        if target is not None:
            started, cpu = time.perf_counter(), time.process_time()
            _write(result.table, target)
            written = PhaseTime(time.perf_counter() - started, time.process_time() - cpu)
        print_summary(result, target)
        if profile:
            print_profile(result, written)


def print_profile(result: rfm_fast.RFMResult, written: PhaseTime | None) -> None:
    """Wall and CPU seconds of each phase of the run (and of writing the output)."""
    phases = dict(result.stats.timings)
    if written is not None:
        phases["write"] = written
    view = Table(title="Time per phase (seconds; CPU counts every thread)", title_justify="left")
    for header in ("phase", "wall (s)", "CPU (s)"):
        view.add_column(header, justify="left" if header == "phase" else "right")
    for name, spent in phases.items():
        view.add_row(name, f"{spent.wall_s:.3f}", f"{spent.cpu_s:.3f}")
    total = PhaseTime(sum(t.wall_s for t in phases.values()), sum(t.cpu_s for t in phases.values()))
    view.add_row("total", f"{total.wall_s:.3f}", f"{total.cpu_s:.3f}")
    out.print(view)


def _print_table(table, columns: dict[str, str], title: str, percent=()) -> None:
    """Some columns of an Arrow table (name: header) as a terminal table."""
    import pyarrow as pa

    view = Table(title=title, title_justify="left")
    for name, header in columns.items():
        type_ = table.schema.field(name).type
        if (
            pa.types.is_string(type_)
            or pa.types.is_dictionary(type_)
            or pa.types.is_large_string(type_)
        ):
            # names wrap at word breaks if they must, and a long word (a file name) folds
            view.add_column(header, justify="left", overflow="fold")
        else:  # numbers, and their headers, stay whole
            view.add_column(header, justify="right", no_wrap=True, min_width=len(header))
    data = {c: table.column(c).to_pylist() for c in columns}
    for i in range(table.num_rows):
        cells = []
        for c in columns:
            value = data[c][i]
            if value is None or (isinstance(value, float) and value != value):
                cells.append("-")
            elif c in percent:
                cells.append(f"{100 * value:.1f}%")
            elif isinstance(value, float):
                cells.append(f"{value:,.2f}")
            elif isinstance(value, int):
                cells.append(f"{value:,}")
            else:
                cells.append(str(value))
        view.add_row(*cells)
    out.print(view)


OptionalInputArg = Annotated[
    str | None,  # not a Path: that would turn postgresql://host into postgresql:/host
    typer.Argument(
        metavar="INPUT",
        help="Parquet, CSV or Arrow IPC file, a folder of them, a glob, or a database URI "
        "(postgresql://..., sqlite:PATH) with --query or --table.",
    ),
]


@app.command()
def segments(
    input: OptionalInputArg = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Also write the summary: .parquet, .csv, .arrow."),
    ] = None,
    customer: CustomerOpt = "customer",
    timestamp: TimestampOpt = "timestamp",
    amount: AmountOpt = "amount",
    order: OrderOpt = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="End of the window.")] = None,
    bins: BinsOpt = 5,
    method: MethodOpt = Method.exact,
    frequency: FrequencyOpt = Frequency.orders,
    monetary: MonetaryOpt = Monetary.sum,
    returns: ReturnsOpt = Returns.net,
    segments: Annotated[
        str | None,
        typer.Option(
            help="Segment rules: a map (default, value, compact, lifecycle), 'none', or a TOML "
            "rules file [default: default]."
        ),
    ] = None,
    stages: Annotated[
        str,
        typer.Option(help="Lifecycle stages for the stage table: 'lifecycle' or a rules file."),
    ] = "lifecycle",
    list_maps: Annotated[
        bool,
        typer.Option(
            "--list",
            help="List the built-in maps and their rules (no INPUT); with --segments, print "
            "those rules as a TOML rules file to edit.",
        ),
    ] = False,
    timestamp_format: FormatOpt = None,
    delimiter: DelimiterOpt = None,
    schema: SchemaOpt = None,
    amount_format: AmountFormatOpt = None,
    decimal: DecimalOpt = ".",
    window: WindowOpt = None,
    query: QueryOpt = None,
    table: TableOpt = None,
) -> None:
    """Score INPUT and describe its segments: size, revenue, typical customer, playbook,
    lifecycle stages, quality. With --list: the built-in segment maps."""
    if list_maps:
        with _reported_errors():
            print_maps(segments, bins)
        return
    if input is None:
        raise typer.BadParameter(
            "missing: give the orders to score, or --list to list the segment maps",
            param_hint="'INPUT'",
        )
    segments = segments or "default"
    options = _scoring(**locals())
    with _reported_errors():
        data = database_input(input, query, table)
        if output is not None:
            check_output_path(output, [data])
        result = rfm_fast.score(data, **options, as_of=as_of, window=window)
        summary = rfm_fast.summarize(result)
        quality = rfm_fast.segment_quality(result)
        stage_table = rfm_fast.lifecycle_table(result, stages)
        if output is not None:
            _write(summary, output)
    columns = {
        "segment": "segment",
        "customers": "customers",
        "share": "share",
        "revenue_share": "revenue",
        "median_recency": "recency",
        "median_frequency": "frequency",
        "median_monetary": "monetary",
    }
    title = (
        f"Segments: {result.stats.customers:,} customers, as_of {result.stats.as_of}; "
        "shares of customers and revenue, medians of the metrics"
    )
    _print_table(summary, columns, title, percent=("share", "revenue_share"))
    columns = {
        "segment": "segment",
        "priority": "priority",
        "description": "who",
        "action": "action",
    }
    _print_table(summary, columns, "Playbook (priority 1 = act first)")
    columns = {name: name for name in stage_table.column_names}
    _print_table(stage_table, columns, "Customers per segment and lifecycle stage (days)")
    columns = {
        "segment": "segment",
        "homogeneity": "homogeneity",
        "nearest_segment": "nearest segment",
        "separation": "separation",
    }
    _print_table(quality.table, columns, "Segment quality")
    explained = ", ".join(f"{m} {100 * v:.0f}%" for m, v in quality.explained.items())
    out.print(f"variance explained by the segments: {explained}")
    for segment, flag in quality.flagged():
        out.print(Text.assemble(("flag:", "yellow"), " ", printable(f"{segment}: {flag}")))
    if output is not None:
        out.print(f"wrote the summary of {summary.num_rows} segments to {output}")


def print_maps(segments: str | None, bins: int) -> None:
    """The built-in maps and their rules; or, for ``segments`` (a map, a rules file), those
    rules as a TOML rules file."""
    from rfm_fast.core.segments import MAP_DESCRIPTIONS, resolve_rules, rules_toml

    if segments is not None:
        rules = resolve_rules(segments, bins)
        title = (
            f"Segment rules '{segments}' ({MAP_DESCRIPTIONS.get(segments, 'a rules file')}).\n"
            "Rules are checked in order; the first that matches a customer wins, and a customer\n"
            "that none matches is Other. See docs/semantics.md, 'Segments'."
        )
        print(rules_toml(rules, title), end="")
        return
    for name, rules in rfm_fast.BUILTIN_MAPS.items():
        table = rfm_fast.playbook(rules)
        columns = {"segment": "segment", "conditions": "rules", "priority": "priority"}
        columns["action"] = "action"
        _print_table(table.slice(0, len(rules)), columns, f"{name}: {MAP_DESCRIPTIONS[name]}")
    out.print(
        "Use one with --segments NAME; print one as a rules file to edit with "
        "rfm segments --list --segments NAME."
    )


def _default_predictions(input: Any, options: dict[str, Any], as_of: str | None):
    """BG/NBD and Gamma-Gamma with the defaults of ``rfm clv`` (weeks, 52 ahead), for the
    columns of a scoring command; what the fits cannot be trusted with is printed."""
    from rfm_fast import clv

    columns = ("customer", "timestamp", "amount", "timestamp_format", "returns")
    columns += ("delimiter", "schema", "amount_format", "decimal")
    predictions = clv.analyze(input, as_of=as_of, **{k: options[k] for k in columns})
    for line in predictions.warnings:
        err.print(f"warning: {line}", soft_wrap=True)
    if not predictions.p_alive_identified:
        err.print("p_alive is left out of the output: it says nothing for this data")
    return predictions


AsOfPair = Annotated[
    list[str],
    typer.Option("--as-of", help="A date (ISO-8601); give it twice, earlier first."),
]


@app.command()
def migrate(
    input: InputArg,
    as_of: AsOfPair,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the transition matrix: .parquet, .csv, .arrow."),
    ] = None,
    source: Annotated[
        str | None, typer.Option("--from", help="Segment at the first date, e.g. Champions.")
    ] = None,
    target: Annotated[
        str | None, typer.Option("--to", help="Segment at the second date, e.g. 'At Risk'.")
    ] = None,
    movers_output: Annotated[
        Path | None,
        typer.Option("--movers-output", help="Write the customers who moved --from --to."),
    ] = None,
    customer: CustomerOpt = "customer",
    timestamp: TimestampOpt = "timestamp",
    amount: AmountOpt = "amount",
    order: OrderOpt = None,
    bins: BinsOpt = 5,
    method: MethodOpt = Method.exact,
    frequency: FrequencyOpt = Frequency.orders,
    monetary: MonetaryOpt = Monetary.sum,
    returns: ReturnsOpt = Returns.net,
    segments: SegmentsOpt = "default",
    timestamp_format: FormatOpt = None,
    delimiter: DelimiterOpt = None,
    schema: SchemaOpt = None,
    amount_format: AmountFormatOpt = None,
    decimal: DecimalOpt = ".",
    query: QueryOpt = None,
    table: TableOpt = None,
) -> None:
    """Score INPUT at two dates and show who moved between segments.

    Example: rfm migrate orders.parquet --as-of 2024-01-01 --as-of 2024-07-01
    --from Champions --to 'At Risk' --movers-output lost_champions.csv
    """
    if len(as_of) != 2:
        raise _fail(f"give --as-of twice (first and second date); got {len(as_of)}")
    if (source is None) != (target is None) or (movers_output and source is None):
        raise _fail("--from and --to go together (and --movers-output needs both)")
    options = _scoring(**locals())
    with _reported_errors():
        data = database_input(input, query, table)
        check_distinct_outputs([("--output", output), ("--movers-output", movers_output)])
        for path in (output, movers_output):
            if path is not None:
                check_output_path(path, [data])
        moved = rfm_fast.migrate(data, as_of=tuple(as_of), **options)
        matrix = moved.matrix()
        movers = moved.movers(source, target) if source is not None else None
        written = {output: matrix, movers_output: movers}  # (both files, or neither)
        write_outputs({path: table for path, table in written.items() if path is not None})
        _written(output or movers_output)
    import pyarrow.compute as pc

    busy = matrix.filter(pc.greater(matrix.column("customers"), 0))
    dates = f"{moved.before.stats.as_of} -> {moved.after.stats.as_of}"
    columns = {
        "segment_before": "from",
        "segment_after": "to",
        "customers": "customers",
        "share_of_before": "share of 'from'",
        "revenue_between": "revenue between",
    }
    _print_table(busy, columns, f"Transitions {dates}", ("share_of_before",))
    if movers is not None:
        out.print(f"{movers.num_rows:,} customers went from {source} to {target}")
        if movers_output is not None:
            out.print(f"wrote them to {movers_output}")
    if output is not None:
        out.print(f"wrote the transition matrix to {output}")


@app.command()
def campaign(
    input: InputArg,
    campaign_file: Annotated[
        Path,
        typer.Option(
            "--campaign",
            metavar="FILE",
            help="Campaign table: customer, group (treatment/control), sent_at, optional cost.",
        ),
    ],
    days: Annotated[
        int, typer.Option("--days", metavar="N", help="Outcome window: N days after the send.")
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the measurement: .parquet, .csv, .arrow."),
    ] = None,
    customer: CustomerOpt = "customer",
    timestamp: TimestampOpt = "timestamp",
    amount: AmountOpt = "amount",
    order: OrderOpt = None,
    bins: BinsOpt = 5,
    method: MethodOpt = Method.exact,
    frequency: FrequencyOpt = Frequency.orders,
    monetary: MonetaryOpt = Monetary.sum,
    returns: ReturnsOpt = Returns.net,
    segments: SegmentsOpt = "default",
    timestamp_format: FormatOpt = None,
    delimiter: DelimiterOpt = None,
    schema: SchemaOpt = None,
    amount_format: AmountFormatOpt = None,
    decimal: DecimalOpt = ".",
    window: WindowOpt = None,
) -> None:
    """Measure a campaign on INPUT: treatment against control, per segment at the send, over
    the N days after it (conversion, revenue and orders per customer, lift with 95% intervals,
    incremental revenue, ROI).

    Example: rfm campaign orders.parquet --campaign sent.csv --days 30 -o lift.csv
    """
    options = _scoring(**locals())
    with _reported_errors():
        if output is not None:
            check_output_path(output, [input, campaign_file])
        result = rfm_fast.campaign(input, campaign_file, days=days, **options, window=window)
        if output is not None:
            _write(result.table, output)
    print_campaign(result, output)


def _points(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.1f}"


def _money(value: float | None, sign: str = "") -> str:
    return "-" if value is None else f"{value:{sign},.2f}"


def _number(value: float | None, form: str) -> str:
    return "-" if value is None else format(value, form)


def _margin(row: dict[str, Any], name: str, form: str) -> str:
    """The half-width of a symmetric (Welch) interval."""
    low, high = row[f"{name}_low"], row[f"{name}_high"]
    return "-" if low is None else format((high - low) / 2, form)


def _p_value(value: float | None) -> str:
    return "-" if value is None else ("<0.001" if value < 0.001 else f"{value:.3f}")


def _compact_table(title: str, headers: list[str], rows: list[list[str]]) -> None:
    """A table without borders (the first column text, the others numbers), to fit 80
    columns."""
    view = Table(
        title=title,
        title_justify="left",
        box=None,
        padding=(0, 1),
        pad_edge=False,
        collapse_padding=True,
    )
    for k, header in enumerate(headers):
        if k == 0:
            view.add_column(header, justify="left", overflow="fold")
        else:
            view.add_column(header, justify="right", no_wrap=True)
    for row in rows:
        view.add_row(*row)
    out.print(view)


def print_campaign(result: rfm_fast.CampaignResult, output: Path | None) -> None:
    """The measurement: groups, conversion, revenue and orders per customer, lifts."""
    rows = result.table.to_pylist()
    total = result.row("All")
    sent = ", ".join(moment.isoformat(sep=" ") for moment in result.sent)
    out.print(
        f"campaign: {total['treatment'] + total['control']:,} customers "
        f"({total['treatment']:,} treatment, {total['control']:,} control)"
    )
    out.print(f"sent {sent}; outcomes in the {result.days} days after the send", soft_wrap=True)

    def interval(row: dict, name: str, form: Callable[[float | None], str]) -> str:
        low, high = row[f"{name}_low"], row[f"{name}_high"]
        return "-" if low is None else f"{form(low)}..{form(high)}"

    _compact_table(
        "Conversion (share with an order; lift in percentage points)",
        ["segment", "treated", "control", "conv T", "conv C", "lift", "95% CI", "p"],
        [
            [
                printable(r["segment"]),
                f"{r['treatment']:,}",
                f"{r['control']:,}",
                "-"
                if r["conversion_treatment"] is None
                else f"{100 * r['conversion_treatment']:.1f}%",
                "-" if r["conversion_control"] is None else f"{100 * r['conversion_control']:.1f}%",
                _points(r["conversion_lift"]),
                interval(r, "conversion_lift", _points),
                _p_value(r["conversion_p_value"]),
            ]
            for r in rows
        ],
    )
    _compact_table(
        "Revenue per customer (Welch 95% CI: lift +- margin)",
        ["segment", "treated", "control", "lift", "+-95%", "p"],
        [
            [
                printable(r["segment"]),
                _money(r["revenue_per_customer_treatment"]),
                _money(r["revenue_per_customer_control"]),
                _money(r["revenue_lift"], "+"),
                _margin(r, "revenue_lift", ",.2f"),
                _p_value(r["revenue_p_value"]),
            ]
            for r in rows
        ],
    )
    costed = total["cost"] is not None
    _compact_table(
        "Orders per customer, incremental revenue" + (", cost and ROI" if costed else ""),
        ["segment", "orders T", "orders C", "incremental", "+-95%"]
        + (["cost", "ROI"] if costed else []),
        [
            [
                printable(r["segment"]),
                _number(r["orders_per_customer_treatment"], ".2f"),
                _number(r["orders_per_customer_control"], ".2f"),
                _number(r["incremental_revenue"], "+,.0f"),
                _margin(r, "incremental_revenue", ",.0f"),
            ]
            + ([_money(r["cost"]), _number(r["roi"], "+.2f")] if costed else [])
            for r in rows
        ],
    )
    for r in rows:
        if r["note"]:
            out.print(printable(f"note: {r['segment']}: {r['note']}"), soft_wrap=True)
    if output is not None:
        out.print(f"wrote the measurement of {len(rows)} rows to {output}", soft_wrap=True)


@app.command()
def report(
    input: InputArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write.")],
    as_of: Annotated[
        list[str] | None,
        typer.Option(
            "--as-of", help="End of the window; give it twice to add the migration between them."
        ),
    ] = None,
    title: Annotated[str | None, typer.Option(help="Heading of the report.")] = None,
    currency: Annotated[
        str | None,
        typer.Option(
            help="Currency of the amounts, shown in the tables and charts: an ISO code such as "
            "GBP (shown as £1,234.56) or a symbol."
        ),
    ] = None,
    with_clv: Annotated[
        bool, typer.Option("--clv", help="Add p_alive and lifetime value (BG/NBD, Gamma-Gamma).")
    ] = False,
    customer: CustomerOpt = "customer",
    timestamp: TimestampOpt = "timestamp",
    amount: AmountOpt = "amount",
    order: OrderOpt = None,
    bins: BinsOpt = 5,
    method: MethodOpt = Method.exact,
    frequency: FrequencyOpt = Frequency.orders,
    monetary: MonetaryOpt = Monetary.sum,
    returns: ReturnsOpt = Returns.net,
    segments: SegmentsOpt = "default",
    timestamp_format: FormatOpt = None,
    delimiter: DelimiterOpt = None,
    schema: SchemaOpt = None,
    amount_format: AmountFormatOpt = None,
    decimal: DecimalOpt = ".",
    query: QueryOpt = None,
    table: TableOpt = None,
) -> None:
    """Score INPUT and write a self-contained HTML report (needs the extra: report)."""
    dates = as_of or []
    if len(dates) > 2:
        raise _fail(f"give --as-of at most twice; got {len(dates)}")
    if output.suffix.lower() not in (".html", ".htm"):
        raise _fail(f"the report is HTML: name the output *.html; got {output}")
    options = _scoring(**locals())
    with _reported_errors():
        from rfm_fast.insight.report import parse_currency, write_report

        parse_currency(currency)  # a wrong currency fails before the input is read

        data = database_input(input, query, table)
        check_output_path(output, [data], suffixes=(".html", ".htm"))
        migration = None
        if len(dates) == 2:
            migration = rfm_fast.migrate(data, as_of=tuple(dates), **options)
            result = migration.after
        else:
            result = rfm_fast.score(data, **options, as_of=dates[0] if dates else None)
        predictions = None
        if with_clv:
            predictions = _default_predictions(data, options, dates[-1] if dates else None)
        title = title or f"RFM report: {data.name}"
        write_report(
            result, output, migration=migration, title=title, clv=predictions, currency=currency
        )
        _written(output)
    out.print(f"wrote the report of {result.stats.customers:,} customers to {output}")


@app.command("clv")
def clv_command(
    input: InputArg,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Predictions file: .parquet, .csv, .arrow."),
    ] = None,
    customer: CustomerOpt = "customer",
    timestamp: TimestampOpt = "timestamp",
    amount: AmountOpt = "amount",
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="End of the observation (ISO-8601).")
    ] = None,
    unit: Annotated[
        str, typer.Option(help="Time unit: D, W, M, Y, or a number of days (e.g. 14).")
    ] = "W",
    horizon: Annotated[float, typer.Option(help="Prediction horizon, in --unit.")] = 52.0,
    discount_rate: Annotated[float, typer.Option(help="Discount rate per step.")] = 0.0,
    step: Annotated[
        float | None, typer.Option(help="Discounting step, in --unit (default: horizon / 12).")
    ] = None,
    returns: ReturnsOpt = Returns.net,
    timestamp_format: FormatOpt = None,
    delimiter: DelimiterOpt = None,
    schema: SchemaOpt = None,
    amount_format: AmountFormatOpt = None,
    decimal: DecimalOpt = ".",
    model: Annotated[
        PurchaseModelName,
        typer.Option(
            help="Purchase model: BG/NBD, MBG/NBD, Pareto/NBD, or auto: the best of them on "
            "the holdout after --calibration-end."
        ),
    ] = PurchaseModelName.bgnbd,
    calibration_end: Annotated[
        str | None,
        typer.Option(
            "--calibration-end",
            help="With --model auto: end of the calibration period (ISO-8601); the holdout "
            "runs from there to --as-of. Default: two thirds of the way from the first "
            "purchase to --as-of.",
        ),
    ] = None,
    churn_days: Annotated[
        float | None,
        typer.Option(
            "--churn-days",
            help="Add the churn risk in the next N days: p_no_purchase, risk (low/medium/"
            "high), days_to_next_purchase, next_purchase.",
        ),
    ] = None,
    query: QueryOpt = None,
    table: TableOpt = None,
) -> None:
    """Fit a purchase model (BG/NBD unless --model) and Gamma-Gamma to INPUT and predict
    p_alive, purchases, spend and CLV per customer (needs the extra: clv)."""
    with _reported_errors():
        data = database_input(input, query, table)
        if output is not None:
            check_output_path(output, [data])
        from rfm_fast import clv

        result = clv.analyze(
            data,
            customer=customer,
            timestamp=timestamp,
            amount=amount,
            as_of=as_of,
            unit=_unit(unit),
            horizon=horizon,
            discount_rate=discount_rate,
            step=step,
            timestamp_format=timestamp_format,
            returns=returns.value,
            delimiter="\t" if delimiter == "tab" else delimiter,
            schema=schema,
            amount_format=amount_format,
            decimal=decimal,
            model=model.value,
            calibration_end=calibration_end,
            churn_days=churn_days,
        )
        by_segment = None
        if churn_days is not None:  # per RFM segment (the default map), on the same rows
            scores = rfm_fast.score(
                data,
                customer=customer,
                timestamp=timestamp,
                amount=amount,
                as_of=as_of,
                timestamp_format=timestamp_format,
                returns=returns.value,
                delimiter="\t" if delimiter == "tab" else delimiter,
                schema=schema,
                amount_format=amount_format,
                decimal=decimal,
            )
            by_segment = clv.churn_by_segment(result, scores, days=churn_days)
        if output is not None:
            _write(result.table, output)
    print_clv_summary(result, output)
    if by_segment is not None:
        columns = {
            "segment": "segment",
            "customers": "customers",
            "mean_p_alive": "p_alive",
            "high_risk": "high risk",
            "expected_revenue": "expected revenue",
            "revenue_at_risk": "at risk",
        }
        title = (
            f"Per segment, the next {churn_days:g} days (revenue at risk: if the model is right)"
        )
        if not result.p_alive_identified:  # p_alive and what rests on it say nothing here
            for name in ("mean_p_alive", "revenue_at_risk"):
                del columns[name]
            title = (
                f"Per segment, the next {churn_days:g} days (high risk: likely to buy nothing "
                "in them; p_alive and revenue at risk not shown: the fit cannot tell who "
                "stopped buying)"
            )
        _print_table(by_segment, columns, title)


_UNIT_NAMES = {"D": "days", "W": "weeks", "M": "months", "Y": "years"}


def _unit(text: str) -> str | float:
    """--unit: a letter, or a number of days such as 14."""
    try:
        return float(text)
    except ValueError:
        return text


def print_clv_summary(result, output: Path | None) -> None:
    """Parameters, fit quality and the totals of the predictions (and the comparison of the
    models, and the risk bands, where the result has them)."""
    table = result.table
    if result.comparison is not None:
        from rfm_fast.clv.model_choice import format_comparison

        out.print(
            f"models on the holdout after {result.calibration_end} (best by "
            f"{result.comparison.criterion}, marked *; refitted on all the purchases):"
        )
        for line in format_comparison(result.comparison):
            out.print(line, soft_wrap=True)
    for name, model in ((result.purchases.LABEL, result.purchases), ("Gamma-Gamma", result.spend)):
        params = ", ".join(
            f"{k} {v:.4g} (se {model.standard_errors[k]:.2g})" for k, v in model.params.items()
        )
        out.print(f"{name}: {params}; log-likelihood {model.log_likelihood:,.1f}")
    out.print(
        f"Gamma-Gamma fitted on {result.spend.customers:,} customers with repeat purchases; "
        f"{result.spend.excluded:,} others get the mean spend per purchase "
        f"{result.spend.population_mean:,.2f}"
    )
    for line in result.warnings:
        err.print(f"warning: {line}", soft_wrap=True)
    p_alive = table.column("p_alive").to_numpy()
    shown = f"{p_alive.mean():.3f}" if result.p_alive_identified else "not identifiable"
    unit = _UNIT_NAMES.get(result.unit, f"units of {result.unit} days")
    out.print(
        f"customers {table.num_rows:,}; mean p_alive {shown}; "
        f"expected purchases in the next {result.horizon:g} {unit}: "
        f"{table.column('expected_purchases').to_numpy().sum():,.0f}; "
        f"total CLV {table.column('clv').to_numpy().sum():,.2f}"
    )
    if "risk" in table.column_names:
        bands = table.column("risk").to_pylist()
        counts = ", ".join(f"{band} {bands.count(band):,}" for band in ("low", "medium", "high"))
        what = "no purchase in the window"
        if not result.p_alive_identified:
            what += "; a quiet spell only, not a customer lost"
        out.print(f"churn risk ({what}): {counts}")
    if output is not None:
        out.print(f"wrote {table.num_rows:,} customers to {output}")


@app.command()
def example(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Also write the scores to this file.")
    ] = None,
) -> None:
    """Score the built-in example: CDNOW, 69,659 purchases of 23,570 customers (1997-1998)."""
    with _reported_errors():
        if output is not None:
            check_output_path(output)
        path = rfm_fast.datasets.example_path()
        out.print(f"scoring the built-in example {path.name} (CDNOW, 1997-01 .. 1998-06)")
        result = rfm_fast.score(path, **rfm_fast.datasets.EXAMPLE_COLUMNS)
        if output is not None:
            _write(result.table, output)
        print_summary(result, output)


# `rfm export` and `rfm state ...`: their modules take the shared options and helpers from this one
from rfm_fast_cli.lists import export  # noqa: E402
from rfm_fast_cli.state import state_app  # noqa: E402

app.command("export")(export)
app.add_typer(state_app)


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the ``rfm`` command; ``argv`` (default: the process's arguments) lets a
    caller run a command in its own process.

    As the ``rfm`` command, the objects that exist once everything is imported (Numba's typing
    and lowering registries among them, over 100,000) are moved out of the garbage collector's
    reach with :func:`gc.freeze`, before the command and again after it: a full collection
    traverses them all, and the interpreter runs one at exit (measured: 0.5-0.7 s of a 4 s
    command). A caller that passes ``argv`` keeps its collector as it was.
    """
    if argv is not None:
        return app(args=argv, prog_name="rfm")
    signal.signal(signal.SIGTERM, _terminate)
    gc.freeze()
    try:
        return app(prog_name="rfm")
    finally:
        gc.freeze()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
