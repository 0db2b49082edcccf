"""The options that several commands share: their choices (``StrEnum``) and ``Annotated``
types, and :func:`scoring_options`, which picks the options of :func:`rfm_fast.score` out of a
command's parameters."""

from __future__ import annotations

import enum
from typing import Annotated, Any

import typer
from rfm_fast_cli.errors import fail


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
    typer.Option(
        help="CSV delimiter: one character, 'tab', or 'whitespace' (runs of spaces); guessed "
        "when not given (a guess other than a comma is printed)."
    ),
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


OptionalInputArg = Annotated[
    str | None,  # not a Path: that would turn postgresql://host into postgresql:/host
    typer.Argument(
        metavar="INPUT",
        help="Parquet, CSV or Arrow IPC file, a folder of them, a glob, or a database URI "
        "(postgresql://..., sqlite:PATH) with --query or --table.",
    ),
]


def _edges_option(text: str | None, metric: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise fail(
            f"--{metric}-edges must be comma-separated numbers such as 30,90,180,365; got {text!r}"
        ) from None


def user_edges(recency: str | None, frequency: str | None, monetary: str | None) -> dict:
    """``thresholds`` from ``--recency-edges``, ``--frequency-edges``, ``--monetary-edges``."""
    given = {"recency": recency, "frequency": frequency, "monetary": monetary}
    parsed = {metric: _edges_option(text, metric) for metric, text in given.items()}
    return {metric: values for metric, values in parsed.items() if values is not None}


def scoring_options(
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
    command's parameters: ``scoring_options(**locals())``."""
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
