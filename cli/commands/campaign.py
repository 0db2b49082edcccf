"""``rfm campaign``: a campaign measured, treatment against control, per segment."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rfm_fast_cli.console import counted, out, printable
from rfm_fast_cli.errors import reported_errors
from rfm_fast_cli.options import CommandOptions, InputArg, reading_options
from rfm_fast_cli.run import check_output_path, database_input, write_output
from rich.table import Table

import rfm_fast


@reading_options("rfm campaign")
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
    *,
    options: CommandOptions,
) -> None:
    """Measure a campaign on INPUT: treatment against control, per segment at the send, over
    the N days after it (conversion, revenue and orders per customer, lift with 95% intervals,
    incremental revenue, ROI).

    Example: rfm campaign orders.parquet --campaign sent.csv --days 30 -o lift.csv
    """
    with reported_errors():
        data = database_input(input, options["query"], options["table"])
        if output is not None:
            check_output_path(output, [data, campaign_file])
        result = rfm_fast.campaign(data, campaign_file, days=days, **options.keywords("score"))
        if output is not None:
            write_output(result.table, output)
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
        measured = counted(len(rows), "row")
        out.print(f"wrote the measurement of {measured} to {output}", soft_wrap=True)
