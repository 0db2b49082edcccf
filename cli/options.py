"""The options that several commands share: the decorator :func:`reading_options`, which
gives a command the reading and scoring options of the library's table
(:data:`rfm_fast.core.option_table.OPTIONS`) and hands it their values as one
:class:`CommandOptions`; and the input argument.

A command that reads orders is written::

    @reading_options("rfm score")
    def score(input: InputArg, output: ... = None, *, options: CommandOptions, threads...):
        rfm_fast.score(data, **options.keywords("score"), as_of=as_of)

The parameter ``options`` stands where the table's options go in ``--help``; a parameter the
command declares itself under the name of one of them (``--segments`` of ``rfm segments``) is
its own, and stays out of ``options``.
"""

from __future__ import annotations

import enum
import functools
import inspect
import typing
from collections.abc import Callable, Iterable
from typing import Annotated, Any, TypeVar

import typer
from rfm_fast_cli.errors import fail

from rfm_fast.core.option_table import OPTIONS, CommandLine, Option, taken_by
from rfm_fast.errors import RFMError

Command = TypeVar("Command", bound=Callable[..., Any])


class PurchaseModelName(enum.StrEnum):
    """The names of ``rfm clv --model`` (those of :data:`rfm_fast.clv.PURCHASE_MODELS`)."""

    bgnbd = "bgnbd"
    mbgnbd = "mbgnbd"
    pareto_nbd = "pareto-nbd"
    auto = "auto"


InputArg = Annotated[
    str,  # not a Path: that would turn postgresql://host into postgresql:/host
    typer.Argument(
        metavar="INPUT",
        help="Parquet, CSV or Arrow IPC file, a folder of them, a glob, or a database URI "
        "(postgresql://..., sqlite:PATH) with --query or --table.",
    ),
]


OptionalInputArg = Annotated[
    str | None,  # not a Path: that would turn postgresql://host into postgresql:/host
    typer.Argument(
        metavar="INPUT",
        help="Parquet, CSV or Arrow IPC file, a folder of them, a glob, or a database URI "
        "(postgresql://..., sqlite:PATH) with --query or --table.",
    ),
]


class CommandOptions:
    """The reading and scoring options a command was given, by the library's names (``order``,
    ``thresholds``, ``delimiter`` with ``tab`` read as a tab), with the values the library
    takes (text, not the command line's choices).

    Examples
    --------
    >>> options = CommandOptions({"customer": "c", "order": None, "bins": 4})
    >>> options["bins"], options.keywords("clv.analyze")
    (4, {'customer': 'c'})
    """

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = dict(values)

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __repr__(self) -> str:
        return f"CommandOptions({self._values!r})"

    def keywords(self, entry: str, leave_out: Iterable[str] = ()) -> dict[str, Any]:
        """The options that the library's ``entry`` (``"score"``, ``"clv.analyze"``,
        ``"DailyState.init"``) takes, as its keywords; none of ``leave_out``."""
        left_out = set(leave_out)
        return {
            name: self._values[name]
            for name in taken_by(entry)
            if name in self._values and name not in left_out
        }

    def replaced(self, **values: Any) -> CommandOptions:
        """These options with some values replaced (or added)."""
        return CommandOptions({**self._values, **values})


_CHOICES: dict[str, type[enum.StrEnum]] = {}


def _choices(option: Option) -> type[enum.StrEnum]:
    """The choices of ``option`` as the ``StrEnum`` that Typer shows as ``<a|b|c>`` (one class
    per option)."""
    if option.name not in _CHOICES:
        name = "".join(part.title() for part in option.name.split("_"))
        _CHOICES[option.name] = enum.StrEnum(name, {c: c for c in option.choices})
    return _CHOICES[option.name]


def _parameter(option: Option, line: CommandLine) -> inspect.Parameter:
    """The Typer parameter of one command-line form of ``option``."""
    kind: Any = line.type
    default = line.default
    if option.choices:
        kind = _choices(option)
        default = kind(default)
    if default is None:
        kind = kind | None
    typer_option = typer.Option(*line.flags, help=line.help, metavar=line.metavar)
    return inspect.Parameter(
        line.name,
        inspect.Parameter.KEYWORD_ONLY,
        default=default,
        annotation=Annotated[kind, typer_option],
    )


def _library_value(option: Option, given: dict[str, Any]) -> Any:
    """The library's value of ``option`` from the command's parameters ``given``."""
    values = [given.pop(line.name) for line in option.cli_parameters()]
    values = [value.value if isinstance(value, enum.Enum) else value for value in values]
    if option.from_command_line is not None:
        try:
            return option.from_command_line(*values)
        except RFMError as error:
            raise fail(str(error)) from None
    return values[0]


def reading_options(command: str) -> Callable[[Command], Command]:
    """Give the command ``command`` (``"rfm score"``: a key of
    :data:`~rfm_fast.core.option_table.ENTRY_POINTS`) every option of the table that it takes.

    The decorated function has a keyword-only parameter ``options``: in ``--help`` the
    table's options stand in its place, in table order, and the function is called with a
    :class:`CommandOptions` of their values there. Options the table says each command
    declares itself (``as_of``) must be parameters of the function.

    Raises
    ------
    TypeError
        At import, when the function has no ``options`` or lacks one the command must declare.
    """

    def decorate(function: Command) -> Command:
        own = inspect.signature(function, eval_str=True)
        if "options" not in own.parameters:
            raise TypeError(f"{function.__name__}: no parameter 'options' to hold the options")
        rows = [option for option in OPTIONS if option.takes(command)]
        for option in rows:
            if option.command_line == "own" and option.name not in own.parameters:
                raise TypeError(f"{function.__name__}: {command} takes {option.name}: declare it")
        # The table's options stand where "options" stands, in table order: those the command
        # declares itself (--as-of, or its own form of one: rfm segments --segments) too.
        built: list[Option] = []
        table_part: list[inspect.Parameter] = []
        for option in rows:
            lines = option.cli_parameters()
            if option.command_line == "own":
                table_part.append(own.parameters[option.name])
            elif any(line.name in own.parameters for line in lines):
                table_part += [own.parameters[line.name] for line in lines]
            else:
                built.append(option)
                table_part += [_parameter(option, line) for line in lines]
        placed = {parameter.name for parameter in table_part}
        parameters: list[inspect.Parameter] = []
        for name, parameter in own.parameters.items():
            if name == "options":
                parameters += table_part
            elif name not in placed:
                parameters.append(parameter)
        # (keyword-only, all of them: Click passes keywords, and the order is --help's)
        parameters = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in parameters]

        @functools.wraps(function)
        def run(**given: Any) -> Any:
            values = {option.name: _library_value(option, given) for option in built}
            return function(**given, options=CommandOptions(values))

        run.__signature__ = own.replace(parameters=parameters)
        run.__annotations__ = {p.name: p.annotation for p in parameters}
        return typing.cast(Command, run)

    return decorate
