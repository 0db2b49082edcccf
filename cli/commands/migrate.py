"""``rfm migrate``: an input scored at two dates, and who moved between segments."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rfm_fast_cli.console import counted, out, print_table
from rfm_fast_cli.errors import fail, outputs_written, reported_errors
from rfm_fast_cli.options import CommandOptions, InputArg, reading_options
from rfm_fast_cli.run import (
    check_distinct_outputs,
    check_output_path,
    database_input,
    write_outputs,
)

import rfm_fast

AsOfPair = Annotated[
    list[str],
    typer.Option("--as-of", help="A date (ISO-8601); give it twice, earlier first."),
]


@reading_options("rfm migrate")
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
    *,
    options: CommandOptions,
) -> None:
    """Score INPUT at two dates and show who moved between segments.

    Example: rfm migrate orders.parquet --as-of 2024-01-01 --as-of 2024-07-01
    --from Champions --to 'At Risk' --movers-output lost_champions.csv
    """
    if len(as_of) != 2:
        raise fail(f"give --as-of twice (first and second date); got {len(as_of)}")
    if (source is None) != (target is None) or (movers_output and source is None):
        raise fail("--from and --to go together (and --movers-output needs both)")
    with reported_errors():
        data = database_input(input, options["query"], options["table"])
        check_distinct_outputs([("--output", output), ("--movers-output", movers_output)])
        for path in (output, movers_output):
            if path is not None:
                check_output_path(path, [data])
        moved = rfm_fast.migrate(data, as_of=tuple(as_of), **options.keywords("score"))
        matrix = moved.matrix()
        movers = moved.movers(source, target) if source is not None else None
        written = {output: matrix, movers_output: movers}  # (both files, or neither)
        write_outputs({path: table for path, table in written.items() if path is not None})
        outputs_written(output or movers_output)
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
    print_table(busy, columns, f"Transitions {dates}", ("share_of_before",))
    if movers is not None:
        out.print(f"{counted(movers.num_rows, 'customer')} went from {source} to {target}")
        if movers_output is not None:
            out.print(f"wrote them to {movers_output}")
    if output is not None:
        out.print(f"wrote the transition matrix to {output}")
