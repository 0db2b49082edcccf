"""``rfm segments``: the segments of an input described (size, revenue, playbook, lifecycle
stages, quality); with ``--list``, the built-in segment maps."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rfm_fast_cli.console import counted, out, print_table, printable
from rfm_fast_cli.errors import reported_errors
from rfm_fast_cli.options import CommandOptions, OptionalInputArg, reading_options
from rfm_fast_cli.run import check_output_path, database_input, write_output
from rich.text import Text

import rfm_fast


@reading_options("rfm segments")
def segments(
    input: OptionalInputArg = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Also write the summary: .parquet, .csv, .arrow."),
    ] = None,
    *,
    options: CommandOptions,
    as_of: Annotated[str | None, typer.Option("--as-of", help="End of the window.")] = None,
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
) -> None:
    """Score INPUT and describe its segments: size, revenue, typical customer, playbook,
    lifecycle stages, quality. With --list: the built-in segment maps."""
    if list_maps:
        with reported_errors():
            print_maps(segments, options["bins"])
        return
    if input is None:
        raise typer.BadParameter(
            "missing: give the orders to score, or --list to list the segment maps",
            param_hint="'INPUT'",
        )
    options = options.replaced(segments=segments or "default")
    with reported_errors():
        data = database_input(input, options["query"], options["table"])
        if output is not None:
            check_output_path(output, [data])
        result = rfm_fast.score(data, **options.keywords("score"), as_of=as_of)
        summary = rfm_fast.summarize(result)
        quality = rfm_fast.segment_quality(result)
        stage_table = rfm_fast.lifecycle_table(result, stages)
        if output is not None:
            write_output(summary, output)
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
        f"Segments: {counted(result.stats.customers, 'customer')}, as_of {result.stats.as_of}; "
        "shares of customers and revenue, medians of the metrics"
    )
    print_table(summary, columns, title, percent=("share", "revenue_share"))
    columns = {
        "segment": "segment",
        "priority": "priority",
        "description": "who",
        "action": "action",
    }
    print_table(summary, columns, "Playbook (priority 1 = act first)")
    columns = {name: name for name in stage_table.column_names}
    print_table(stage_table, columns, "Customers per segment and lifecycle stage (days)")
    columns = {
        "segment": "segment",
        "homogeneity": "homogeneity",
        "nearest_segment": "nearest segment",
        "separation": "separation",
    }
    print_table(quality.table, columns, "Segment quality")
    explained = ", ".join(f"{m} {100 * v:.0f}%" for m, v in quality.explained.items())
    out.print(f"variance explained by the segments: {explained}")
    for segment, flag in quality.flagged():
        out.print(Text.assemble(("flag:", "yellow"), " ", printable(f"{segment}: {flag}")))
    if output is not None:
        out.print(f"wrote the summary of {counted(summary.num_rows, 'segment')} to {output}")


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
        print_table(table.slice(0, len(rules)), columns, f"{name}: {MAP_DESCRIPTIONS[name]}")
    out.print(
        "Use one with --segments NAME; print one as a rules file to edit with "
        "rfm segments --list --segments NAME."
    )
