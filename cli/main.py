"""The ``rfm`` command line: the Typer app, its commands, ``--version`` and :func:`main`, the
entry point (which installs the SIGTERM handler).

Each command lives in a module of :mod:`rfm_fast_cli.commands` and is registered here, in the
order ``rfm --help`` lists them. The commands take what they share from :mod:`.console`
(printing), :mod:`.errors` (the error funnel), :mod:`.options` (the shared options) and
:mod:`.run` (the library calls around a command); imports run one way, from here down. Library
errors become one line on stderr and exit code 1; nothing prints a traceback unless
``RFM_DEBUG=1`` is set.
"""

from __future__ import annotations

import gc
import signal
import sys
from typing import Annotated, Any

import typer
from rfm_fast_cli.commands.campaign import campaign
from rfm_fast_cli.commands.clv import clv_command
from rfm_fast_cli.commands.example import example
from rfm_fast_cli.commands.export import export
from rfm_fast_cli.commands.migrate import migrate
from rfm_fast_cli.commands.report import report
from rfm_fast_cli.commands.score import score
from rfm_fast_cli.commands.segments import segments
from rfm_fast_cli.commands.state import state_app
from rfm_fast_cli.console import out
from rfm_fast_cli.errors import terminate

import rfm_fast

app = typer.Typer(
    name="rfm",
    help="Score customers by recency, frequency and monetary value (RFM), fast.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: nothing in it is markup, and it fits 80 columns
)


def _plain_usage_name(argument: Any) -> str:
    """``INPUT`` in the usage line, as Click and the docs write it (Typer writes ``{INPUT}``)."""
    name = argument.display_name_raw if argument.required else f"[{argument.display_name_raw}]"
    return name + ("..." if argument.nargs != 1 else "")


# Typer writes a required argument as {INPUT} in the usage line, from the private method
# TyperArgument._usage_display_name: typer.Argument takes no class of its own, and a command's
# public cls= would mean subclassing typer.core.TyperCommand (as private) for every command to
# rebuild the whole usage line. So the method is replaced, where this Typer has it.
if hasattr(typer.core.TyperArgument, "_usage_display_name"):
    typer.core.TyperArgument._usage_display_name = _plain_usage_name


def _version(value: bool) -> None:
    if value:
        out.print(f"rfm_fast {rfm_fast.__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Score customers by recency, frequency and monetary value (RFM), fast."""


app.command()(score)
app.command()(segments)
app.command()(migrate)
app.command()(campaign)
app.command()(report)
app.command("clv")(clv_command)
app.command()(example)
app.command("export")(export)
app.add_typer(state_app)


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the ``rfm`` command; ``argv`` (default: the process's arguments) lets a
    caller run a command in its own process.

    As the ``rfm`` command, the objects that exist once everything is imported (Numba's typing
    and lowering registries among them, over 100,000) are moved out of the garbage collector's
    reach with :func:`gc.freeze`, before the command and again after it: a full collection
    traverses them all, and the interpreter runs one at exit (measured: 0.5-0.7 s of a 4 s
    command). A caller that passes ``argv`` keeps its collector as it was.
    """
    if argv is not None:
        return app(args=argv, prog_name="rfm")
    signal.signal(signal.SIGTERM, terminate)
    gc.freeze()
    try:
        return app(prog_name="rfm")
    finally:
        gc.freeze()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
