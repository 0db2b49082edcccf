"""``rfm score``: every customer of an input scored, written and summed up."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rfm_fast_cli.console import out, progress_bar
from rfm_fast_cli.errors import reported_errors
from rfm_fast_cli.options import CommandOptions, InputArg, reading_options
from rfm_fast_cli.run import (
    check_output,
    database_input,
    database_output,
    default_predictions,
    print_summary,
    write_output,
)
from rich.table import Table

import rfm_fast
from rfm_fast.core.timing import PhaseTime


@reading_options("rfm score")
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
    output_table: Annotated[
        str | None,
        typer.Option(help="-o is a database: the table to replace with the scores."),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="End of the window (ISO-8601); default: latest + 1 day."),
    ] = None,
    *,
    options: CommandOptions,
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
    with reported_errors():
        if p_alive and options["window"] is not None:
            raise rfm_fast.RFMError(
                "--p-alive fits the BG/NBD model on the whole history, and --window scores "
                "only its last days: give one of them (rfm clv predicts from the whole history)"
            )
        data = database_input(input, options["query"], options["table"])
        target = None
        if output is not None:
            target = check_output(database_output(output, output_table, "--output-table"), [data])
        with progress_bar(progress) as on_batch:
            result = rfm_fast.score(
                data,
                **options.keywords("score"),
                as_of=as_of,
                progress=on_batch,
                playbook=playbook,
            )
        if p_alive:
            from rfm_fast import clv

            result = clv.with_p_alive(result, default_predictions(data, options, as_of))
        written = None
        if target is not None:
            started, cpu = time.perf_counter(), time.process_time()
            write_output(result.table, target)
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
