"""The ``rfm`` command line: parses options, calls :mod:`rfm_fast`, prints what happened.

Every command is a few lines over a library call. Library errors become one line on stderr and
exit code 1; nothing prints a traceback unless ``RFM_DEBUG=1`` is set.
"""

from __future__ import annotations

import contextlib
import enum
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import rfm_fast
from rfm_fast.io import check_output_path, write_table

app = typer.Typer(
    name="rfm",
    help="Score customers by recency, frequency and monetary value (RFM), fast.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


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


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    return typer.Exit(code)


@contextlib.contextmanager
def _reported_errors() -> Iterator[None]:
    """Turn library errors into one line on stderr and exit code 1; print warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", rfm_fast.RFMWarning)
        try:
            yield
        except rfm_fast.RFMError as exc:
            raise _fail(str(exc)) from None
        except KeyboardInterrupt:
            raise _fail("interrupted; no output was written", 130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            if os.environ.get("RFM_DEBUG"):
                raise
            raise _fail(
                f"unexpected {type(exc).__name__}: {exc} (this is a bug in rfm_fast; run with "
                "RFM_DEBUG=1 for the traceback and report it)"
            ) from None
        finally:
            for warning in caught:
                err.print(f"[yellow]warning:[/] {warning.message}", soft_wrap=True)


@contextlib.contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[int, int | None], None] | None]:
    """A progress bar on stderr while input is read, when stderr is a terminal."""
    if not enabled or not err.is_terminal:
        yield None
        return
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


def print_summary(result: rfm_fast.RFMResult, output: Path | None) -> None:
    """The run summary: rows, drops, customers, as_of, edges, empty scores, segments."""
    s = result.stats
    dropped = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in s.dropped.items())
    as_of = s.as_of.isoformat(sep=" ") if s.as_of else "-"
    out.print(
        f"rows read {s.rows_read:,}; used {s.rows_used:,}; dropped: {dropped}", soft_wrap=True
    )
    if s.null_amount:
        out.print(f"rows with a null or NaN amount (counted, not summed): {s.null_amount:,}")
    out.print(f"customers scored {s.customers:,}; as_of {as_of}; bins {s.bins}; method {s.method}")
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
        out.print(f"wrote {s.customers:,} customers to {output}")


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


@app.command()
def score(
    input: Annotated[
        Path, typer.Argument(help="Parquet, CSV or Arrow IPC file, a folder of them, or a glob.")
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Scores file: .parquet, .csv, .arrow.")
    ] = None,
    customer: Annotated[str, typer.Option(help="Customer id column.")] = "customer",
    timestamp: Annotated[str, typer.Option(help="Purchase date/time column.")] = "timestamp",
    amount: Annotated[
        str, typer.Option(help="Amount column, or a product of two: 'Quantity*UnitPrice'.")
    ] = "amount",
    order: Annotated[str | None, typer.Option(help="Order id column (distinct orders).")] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="End of the window (ISO-8601); default: latest + 1 day."),
    ] = None,
    bins: Annotated[int, typer.Option(help="Number of scores per metric (2..9).")] = 5,
    method: Annotated[
        Method,
        typer.Option(help="exact: ties share a score; split: NTILE; approx: mergeable sketch."),
    ] = (Method.exact),
    frequency: Annotated[Frequency, typer.Option(help="Count orders or purchase days.")] = (
        Frequency.orders
    ),
    monetary: Annotated[Monetary, typer.Option(help="Total spend, or mean per order.")] = (
        Monetary.sum
    ),
    segments: Annotated[
        str, typer.Option(help="Segment rules: 'default', 'none', or a TOML rules file.")
    ] = "default",
    timestamp_format: Annotated[
        str | None, typer.Option("--timestamp-format", help="strptime format, e.g. '%Y%m%d'.")
    ] = None,
    recency_edges: Annotated[str | None, typer.Option(help="e.g. 30,90,180,365 (days).")] = None,
    frequency_edges: Annotated[str | None, typer.Option(help="e.g. 1,2,4,8.")] = None,
    monetary_edges: Annotated[str | None, typer.Option(help="e.g. 50,100,250,1000.")] = None,
    threads: Annotated[
        int | None, typer.Option(help="Aggregation threads (default: one per core).")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar while reading.")] = True,
) -> None:
    """Score every customer of INPUT and write one row per customer to OUTPUT.

    INPUT is a Parquet, CSV (.csv, .csv.gz) or Arrow IPC file, a folder of them, or a glob such
    as 'orders/*.parquet' (quoted). Files are read batch by batch, never whole.
    """
    edges = {
        metric: values
        for metric, values in (
            ("recency", _edges_option(recency_edges, "recency")),
            ("frequency", _edges_option(frequency_edges, "frequency")),
            ("monetary", _edges_option(monetary_edges, "monetary")),
        )
        if values is not None
    }
    with _reported_errors():
        if output is not None:
            check_output_path(output)
        with _progress(progress) as on_batch:
            result = rfm_fast.score(
                input,
                customer=customer,
                timestamp=timestamp,
                amount=amount,
                order=order,
                as_of=as_of,
                bins=bins,
                method=method.value,
                frequency=frequency.value,
                monetary=monetary.value,
                segments=segments,
                thresholds=edges or None,
                timestamp_format=timestamp_format,
                threads=threads,
                progress=on_batch,
            )
        if output is not None:
            write_table(result.table, output)
        print_summary(result, output)


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
            write_table(result.table, output)
        print_summary(result, output)


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the ``rfm`` command."""
    return app(args=argv, prog_name="rfm") if argv is not None else app(prog_name="rfm")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
