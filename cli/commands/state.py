"""``rfm state``: a saved state that takes each day's orders (:class:`rfm_fast.DailyState`).

A few lines per command over the library; the shared options, error handling and printing
come from the shared modules of :mod:`rfm_fast_cli`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rfm_fast_cli.console import counted, err, out, print_table, printable, progress_bar
from rfm_fast_cli.errors import outputs_written, reported_errors
from rfm_fast_cli.options import CommandOptions, InputArg, reading_options
from rfm_fast_cli.run import (
    check_different_tables,
    check_distinct_outputs,
    check_output,
    check_output_path,
    check_state_target,
    database_input,
    database_output,
    print_summary,
)

import rfm_fast
from rfm_fast.daily.lock import DEFAULT_WAIT_SECONDS, state_lock

if TYPE_CHECKING:
    import pyarrow as pa

state_app = typer.Typer(
    name="state",
    help="A saved state that takes each day's orders: init, update, score, info.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

StateArg = Annotated[Path, typer.Argument(metavar="STATE", help="The state file.")]
AsOfOpt = Annotated[
    str | None,
    typer.Option("--as-of", help="Score as of (ISO-8601); default: latest order + 1 day."),
]
OutputsOpt = Annotated[
    str | None,
    typer.Option(
        "--output",
        "-o",
        help="Scores file: .parquet, .csv, .arrow; or a database URI with --output-table.",
    ),
]
OutputTableOpt = Annotated[
    str | None, typer.Option(help="-o is a database: the table to replace with the scores.")
]
WaitOpt = Annotated[
    float,
    typer.Option(
        "--wait",
        metavar="SECONDS",
        help="Wait this long for another command writing the state, then give up.",
    ),
]


@state_app.command("init")
@reading_options("rfm state init")
def init(
    input: InputArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="The state file to write.")],
    *,
    options: CommandOptions,
    orders_within_loads: Annotated[
        bool,
        typer.Option(
            "--orders-within-loads",
            help="Every order lies in one load: keep counts, not (customer, order) pairs.",
        ),
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar while reading.")] = True,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the file OUTPUT if it exists.")
    ] = False,
    wait: WaitOpt = DEFAULT_WAIT_SECONDS,
) -> None:
    """Build a state from the order history INPUT; its options are fixed from here on."""
    with reported_errors():
        data = database_input(input, options["query"], options["table"])
        check_output_path(output, [data, options["segments"]], suffixes=None)
        with state_lock(output, wait, _waiting):
            check_state_target(output, overwrite=force)
            with progress_bar(progress) as on_batch:
                state = rfm_fast.DailyState.init(
                    data,
                    **options.keywords("DailyState.init"),
                    orders_within_loads=orders_within_loads,
                    progress=on_batch,
                )
            state.save(output, overwrite=force)
        outputs_written(output)
    load = state.loads[-1]
    out.print(
        f"built {output}: {customer_count(state.info())} from {load.rows_read:,} rows "
        f"({_moment(load.first)} .. {_moment(load.last)}); scored as of {_moment(load.as_of)}",
        soft_wrap=True,
    )


@state_app.command("update")
@reading_options("rfm state update")
def update(
    state_path: StateArg,
    input: InputArg,
    as_of: AsOfOpt = None,
    output: OutputsOpt = None,
    changes: Annotated[
        str | None,
        typer.Option(
            help="Write the customers whose segment changed: .parquet, .csv, .arrow; or a "
            "database URI with --changes-table."
        ),
    ] = None,
    *,
    options: CommandOptions,
    output_table: OutputTableOpt = None,
    changes_table: Annotated[
        str | None,
        typer.Option(help="--changes is a database: the table to replace with the changes."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Apply a load that was applied before.")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar while reading.")] = True,
    wait: WaitOpt = DEFAULT_WAIT_SECONDS,
) -> None:
    """Fold the orders of INPUT into STATE, score every customer, and write the scores and the
    customers whose segment changed. STATE is replaced only once everything is written; no
    other command writes it meanwhile (a second one waits up to --wait seconds)."""
    with reported_errors():
        data = database_input(input, options["query"], options["table"])
        scores_to = changes_to = None
        if output is not None:
            scores_to = database_output(output, output_table, "--output-table")
            check_output(scores_to, [data, state_path])
        if changes is not None:
            changes_to = database_output(changes, changes_table, "--changes-table")
            check_output(changes_to, [data, state_path])
        check_distinct_outputs([("--output", scores_to), ("--changes", changes_to)])
        check_different_tables([scores_to, changes_to])
        with state_lock(state_path, wait, _waiting):  # (read in the lock: the latest save)
            state = rfm_fast.DailyState.open(state_path)
            with progress_bar(progress) as on_batch:
                done = state.update(
                    data, as_of=as_of, force=force, threads=options["threads"], progress=on_batch
                )
            written: dict[Any, pa.Table] = {}
            if scores_to is not None:
                written[scores_to] = done.result.table
            if changes_to is not None:
                written[changes_to] = done.changes
            state.save(state_path, outputs=written)
        outputs_written(state_path)
    print_summary(done.result, scores_to)
    out.print(
        f"load {len(state.loads)}: {counted(done.load.rows_read, 'row')} "
        f"({_moment(done.load.first)} .. "
        f"{_moment(done.load.last)}); {counted(done.changes.num_rows, 'customer')} changed segment",
        soft_wrap=True,
    )
    if changes_to is not None:
        out.print(f"wrote the changes to {changes_to}", soft_wrap=True)
    out.print(f"saved {state_path}", soft_wrap=True)


@state_app.command("score")
def score(
    state_path: StateArg,
    as_of: AsOfOpt = None,
    output: OutputsOpt = None,
    output_table: OutputTableOpt = None,
) -> None:
    """Score the customers of STATE again, as of another date, without new orders."""
    with reported_errors():
        scores_to = None
        if output is not None:
            scores_to = database_output(output, output_table, "--output-table")
            check_output(scores_to, [state_path])
        result = rfm_fast.DailyState.open(state_path).score(as_of=as_of)
        if scores_to is not None:
            result.write(scores_to)
            outputs_written(scores_to)
    print_summary(result, scores_to)


@state_app.command("info")
def info(state_path: StateArg) -> None:
    """Print what STATE holds: its options, customers, rows, time range and every load."""
    import pyarrow as pa

    with reported_errors():
        state = rfm_fast.DailyState.open(state_path)
    described = state.info()
    options = dict(described["options"])
    rules = options.pop("rules")
    shown = ", ".join(f"{name}={value}" for name, value in options.items() if value is not None)
    out.print(f"options: {shown}", soft_wrap=True)
    names = ", ".join(rule["name"] for rule in rules) or "none"
    out.print(f"segments: {len(rules)} rules ({names})", soft_wrap=True)
    span = f"{_moment(described['first_purchase'])} .. {_moment(described['last_purchase'])}"
    held = f"purchases {span}; {described['state_bytes']:,} bytes of totals"
    if described["rows_kept"] is not None:  # a window's: the rows it can still reach
        kept, size = described["rows_kept"], described["state_bytes"]
        held = f"{kept:,} rows kept for the window, {span} ({size:,} bytes)"
    out.print(
        f"{customer_count(described, label_first=True)}; "
        f"rows read {described['rows_read']:,}, used {described['rows_used']:,}; {held}",
        soft_wrap=True,
    )
    loads = pa.Table.from_pylist(
        [
            {
                "load": number,
                "source": load.source,
                "rows": load.rows_read,
                "first": _day(load.first),
                "last": _day(load.last),
                "as_of": _day(load.as_of),
                "moved": load.changed,
            }
            for number, load in enumerate(state.loads, start=1)
        ]
    )
    print_table(loads, {name: name for name in loads.column_names}, "Loads")
    recent = list(enumerate(state.loads, start=1))[-5:]
    segments = list(dict.fromkeys(name for _, load in recent for name in load.segments))
    sizes = pa.table(
        {
            "segment": segments,
            **{
                f"load {n}": [load.segments.get(name, 0) for name in segments] for n, load in recent
            },
        }
    )
    print_table(sizes, {name: name for name in sizes.column_names}, "Segment sizes after loads")


def _waiting(line: str) -> None:
    """Say on stderr that the command waits for another writer of the state."""
    err.print(printable(line, one_line=True), soft_wrap=True)


def customer_count(info: dict, label_first: bool = False) -> str:
    """The customers of a state's :meth:`~rfm_fast.DailyState.info`, with the ones its scores
    leave out and why: "4,372 customers (4,339 scored; 33 with only returns, not scored)", or
    "customers 4,372 (...)" with ``label_first``."""
    customers, left_out = info["customers"], info["customers_only_returns"]
    count = (
        f"customers {customers:,}"
        if label_first
        else f"{customers:,} {'customer' if customers == 1 else 'customers'}"
    )
    if not left_out:
        return count
    scored = info["customers_scored"]
    return f"{count} ({scored:,} scored; {left_out:,} with only returns, not scored)"


def _moment(text: str | None) -> str:
    """An ISO-8601 moment as a short cell: the date alone at midnight, else date and time."""
    if text is None:
        return "-"
    if text.endswith("T00:00:00") or text.endswith(" 00:00:00"):
        return text[:10]
    return text.replace("T", " ")


def _day(text: str | None) -> str:
    """The day of an ISO-8601 moment (the loads table: ``DailyState.info()`` has the times)."""
    return "-" if text is None else text[:10]
