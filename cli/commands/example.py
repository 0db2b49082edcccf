"""``rfm example``: the built-in example scored."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rfm_fast_cli.console import out
from rfm_fast_cli.errors import reported_errors
from rfm_fast_cli.run import check_output_path, print_summary, write_output

import rfm_fast


def example(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Also write the scores to this file.")
    ] = None,
) -> None:
    """Score the built-in example: CDNOW, 69,659 purchases of 23,570 customers (1997-1998)."""
    with reported_errors():
        if output is not None:
            check_output_path(output)
        path = rfm_fast.datasets.example_path()
        out.print(f"scoring the built-in example {path.name} (CDNOW, 1997-01 .. 1998-06)")
        result = rfm_fast.score(path, **rfm_fast.datasets.EXAMPLE_COLUMNS)
        if output is not None:
            write_output(result.table, output)
        print_summary(result, output)
