"""The options of the commands against the option table (rfm_fast/core/option_table.py): every
command that reads orders takes exactly the reading and scoring options the table gives it (a
command that lacks one says why in the table), with the table's help and default."""

from __future__ import annotations

import re

import click
import pytest
from helpers import REPOSITORY
from rfm_fast_cli.main import app
from typer.main import get_command

from rfm_fast.core.option_table import COMMANDS, OPTIONS, options_per_command, taken_by

PARAMETER_OF = {
    line.name: option.name for option in OPTIONS for line in option.cli_parameters()
} | {option.name: option.name for option in OPTIONS if option.command_line == "own"}
"""The table's option of each parameter name of a command (``recency_edges`` is one of
``thresholds``)."""


def command_of(entry: str) -> click.Command:
    """The Click command of ``rfm state init`` and the like."""
    command = get_command(app)
    for word in entry.split()[1:]:
        command = command.commands[word]
    return command


def table_options(command: click.Command) -> set[str]:
    return {PARAMETER_OF[p.name] for p in command.params if p.name in PARAMETER_OF}


def test_every_command_that_reads_orders_is_in_the_table():
    """A command with the table's column options is an entry point of the table."""
    found = []
    for name, command in get_command(app).commands.items():
        subcommands = getattr(command, "commands", {name: command})
        for sub, leaf in subcommands.items():
            names = {p.name for p in leaf.params}
            if {"customer", "query"} & names:
                found.append(f"rfm {name}" if sub == name else f"rfm {name} {sub}")
    assert sorted(found) == sorted(COMMANDS)


@pytest.mark.parametrize("entry", COMMANDS)
def test_each_command_takes_what_the_table_gives_it(entry: str):
    assert table_options(command_of(entry)) == set(taken_by(entry))


def test_rfm_clv_takes_the_options_that_shape_segments():
    """rfm clv shows segments (--churn-days): it takes --order and the scoring options, as
    rfm score does (issue 27, item 1)."""
    clv = table_options(command_of("rfm clv"))
    score = table_options(command_of("rfm score"))
    assert score - clv == {"window"}  # the models fit the whole history
    assert {"order", "bins", "method", "frequency", "monetary", "segments"} <= clv


@pytest.mark.parametrize("entry", COMMANDS)
def test_the_table_s_options_keep_its_help_and_default(entry: str):
    command = command_of(entry)
    for option in OPTIONS:
        for line in option.cli_parameters():
            params = [p for p in command.params if p.name == line.name]
            if not params or (entry, line.name) == ("rfm segments", "segments"):
                continue  # (rfm segments --segments: no default, for --list)
            (param,) = params
            assert param.help == line.help, (entry, line.name)
            assert param.opts == list(line.flags), (entry, line.name)
            default = option.default if option.cli_default is None else option.cli_default
            assert param.default in (default, None if default is None else default), line.name


def test_docs_show_the_table_of_options_per_command():
    """docs/cli.md's table of options per command is the one the option table gives (run
    ``python -c "from rfm_fast.core.option_table import options_per_command as o; print(o())"``
    and paste it between the markers to update it)."""
    text = (REPOSITORY / "docs" / "cli.md").read_text(encoding="utf-8")
    start = text.index("\n", text.index("<!-- generated from rfm_fast/core/option_table.py")) + 1
    end = text.index("<!-- end of the generated table -->")
    assert text[start:end] == options_per_command()


def test_docs_describe_every_option_of_rfm_score():
    """The option table of `rfm score` in docs/cli.md has a row for each of its options."""
    text = (REPOSITORY / "docs" / "cli.md").read_text(encoding="utf-8")
    section = text[text.index("## `rfm score`") : text.index("## Reading and scoring options")]
    rows = {re.match(r"\| `(--[\w-]+)", line).group(1) for line in section.splitlines()
            if re.match(r"\| `--", line)}  # fmt: skip
    flags = {flag for p in command_of("rfm score").params if p.name in PARAMETER_OF
             for flag in p.opts}  # fmt: skip
    assert flags - rows == set()
