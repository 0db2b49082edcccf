"""``rfm report``: a self-contained HTML report of an input."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rfm_fast_cli.console import counted, out
from rfm_fast_cli.errors import fail, outputs_written, reported_errors
from rfm_fast_cli.options import CommandOptions, InputArg, reading_options
from rfm_fast_cli.run import check_output_path, database_input, default_predictions

import rfm_fast


@reading_options("rfm report")
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
    *,
    options: CommandOptions,
) -> None:
    """Score INPUT and write a self-contained HTML report (needs the extra: report)."""
    dates = as_of or []
    if len(dates) > 2:
        raise fail(f"give --as-of at most twice; got {len(dates)}")
    if output.suffix.lower() not in (".html", ".htm"):
        raise fail(f"the report is HTML: name the output *.html; got {output}")
    with reported_errors():
        from rfm_fast.insight.report import parse_currency, write_report

        if with_clv and options["window"] is not None:
            raise rfm_fast.RFMError(
                "--clv fits the models on the whole history, and --window scores only its last "
                "days: give one of them"
            )
        parse_currency(currency)  # a wrong currency fails before the input is read

        data = database_input(input, options["query"], options["table"])
        check_output_path(output, [data], suffixes=(".html", ".htm"))
        migration = None
        if len(dates) == 2:
            migration = rfm_fast.migrate(data, as_of=tuple(dates), **options.keywords("score"))
            result = migration.after
        else:
            as_of = dates[0] if dates else None
            result = rfm_fast.score(data, **options.keywords("score"), as_of=as_of)
        predictions = None
        if with_clv:
            predictions = default_predictions(data, options, dates[-1] if dates else None)
        title = title or f"RFM report: {data.name}"
        write_report(
            result, output, migration=migration, title=title, clv=predictions, currency=currency
        )
        outputs_written(output)
    out.print(f"wrote the report of {counted(result.stats.customers, 'customer')} to {output}")
