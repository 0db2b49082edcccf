"""``rfm export``: the customers of some segments, or of a condition, as a list a CRM or an
e-mail tool imports (:func:`rfm_fast.customer_list`).

A few lines over the library; the shared options, error handling and printing come from
the shared modules of :mod:`rfm_fast_cli`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rfm_fast_cli.console import counted, out, printable
from rfm_fast_cli.errors import outputs_written, reported_errors
from rfm_fast_cli.options import CommandOptions, InputArg, reading_options
from rfm_fast_cli.run import check_output_path, database_input, default_predictions, write_output

import rfm_fast


@reading_options("rfm export")
def export(
    input: InputArg,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="The list: .csv or .parquet; with --per-segment, a folder of one file each.",
        ),
    ],
    segment: Annotated[
        list[str] | None,
        typer.Option("--segment", help="A segment to export (repeat for several; default: all)."),
    ] = None,
    where: Annotated[
        str | None,
        typer.Option(
            help="Only customers for whom this holds, e.g. 'monetary >= 1000 and R >= 4'."
        ),
    ] = None,
    sort_by: Annotated[
        str | None,
        typer.Option(help="Sort by this column, largest first [default: clv, else monetary]."),
    ] = None,
    per_segment: Annotated[
        bool, typer.Option("--per-segment", help="One file per segment in the folder OUTPUT.")
    ] = False,
    file_format: Annotated[
        str, typer.Option("--format", help="With --per-segment: csv or parquet.")
    ] = "csv",
    with_clv: Annotated[
        bool,
        typer.Option("--clv", help="Add p_alive, expected purchases and CLV; sort by CLV."),
    ] = False,
    *,
    options: CommandOptions,
    as_of: Annotated[str | None, typer.Option("--as-of", help="End of the window.")] = None,
) -> None:
    """Score INPUT and write the customers of some segments (or of a condition) with their
    segment, action, scores, metrics and last purchase, most valuable first."""
    from rfm_fast.actions.lists import (
        LIST_FORMATS,
        check_segment_names,
        parse_condition,
        write_lists,
    )
    from rfm_fast.core.segments import resolve_rules

    with reported_errors():
        if with_clv and options["window"] is not None:
            raise rfm_fast.RFMError(
                "--clv fits the models on the whole history, and --window scores only its last "
                "days: give one of them"
            )
        rules = resolve_rules(options["segments"], options["bins"])
        check_segment_names(segment or [], [rule.name for rule in rules] + ["Other"])
        if where is not None:
            parse_condition(where)
        data = database_input(input, options["query"], options["table"])
        if per_segment:
            if file_format not in LIST_FORMATS:
                raise rfm_fast.RFMError(
                    f"--format must be one of {', '.join(LIST_FORMATS)}; got {file_format!r}"
                )
        else:
            check_output_path(output, [data], suffixes=tuple(f".{f}" for f in LIST_FORMATS))
        options = options.replaced(segments=rules)  # (resolved once: a file is read once)
        result = rfm_fast.score(data, **options.keywords("score"), as_of=as_of)
        if with_clv:
            from rfm_fast import clv

            result = clv.with_p_alive(result, default_predictions(data, options, as_of))
        customers = rfm_fast.customer_list(result, segments=segment, where=where, sort_by=sort_by)
        if per_segment:
            chosen = segment or [name for name, _ in result.segment_counts()]
            files = write_lists(customers, output, file_format, segments=chosen, inputs=[data])
            for name, (path, rows) in files.items():
                written = counted(rows, "customer")
                out.print(f"wrote {written} of {printable(name)} to {path}", soft_wrap=True)
        else:
            write_output(customers, output)
            outputs_written(output)
    if not per_segment:
        which = ", ".join(printable(name) for name in segment) if segment else "every segment"
        condition = f" where {printable(where)}" if where else ""
        out.print(
            f"wrote {counted(customers.num_rows, 'customer')} ({which}{condition}) to {output}",
            soft_wrap=True,
        )
