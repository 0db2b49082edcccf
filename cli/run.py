"""What the commands share around a library call: the library's I/O functions, imported on
their first call (:func:`_on_first_call`), writing an output (:func:`write_output`), the
summary of a scoring run (:func:`print_summary`) and the default predictions behind ``--clv``
and ``--p-alive`` (:func:`default_predictions`)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from rfm_fast_cli.console import counted, err, out
from rfm_fast_cli.errors import outputs_written
from rfm_fast_cli.options import CommandOptions
from rich.table import Table

import rfm_fast


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


def write_output(table: Any, path: Any) -> None:
    """Write ``table`` to ``path`` (a file or a database target), then :func:`outputs_written`."""
    write_table(table, path)
    outputs_written(path)


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
            n = s.customers_only_returns
            only = f"; {n:,} {'customer' if n == 1 else 'customers'} with only returns left out"
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
        out.print(f"wrote {counted(s.customers, 'customer')} to {output}", soft_wrap=True)


def default_predictions(input: Any, options: CommandOptions, as_of: str | None):
    """BG/NBD and Gamma-Gamma with the defaults of ``rfm clv`` (weeks, 52 ahead), read with
    the options of a scoring command that :func:`rfm_fast.clv.analyze` takes; what the fits
    cannot be trusted with is printed."""
    from rfm_fast import clv

    predictions = clv.analyze(input, as_of=as_of, **options.keywords("clv.analyze"))
    for line in predictions.warnings:
        err.print(f"warning: {line}", soft_wrap=True)
    if not predictions.p_alive_identified:
        err.print("p_alive is left out of the output: it says nothing for this data")
    return predictions
