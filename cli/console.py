"""What the command line prints: a console that shows text as it is (:class:`PlainConsole`,
:data:`out`, :data:`err`), :func:`printable`, tables (:func:`print_table`) and the progress bar
(:func:`progress_bar`). Shared by the command modules; imports nothing of them."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from typing import Any

from rich import box
from rich.console import Console, ConsoleDimensions
from rich.table import Table
from rich.text import Text

from rfm_fast.credentials import scrub

_CONTROL_CHARACTERS = re.compile(
    "[\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069]"
)
"""Characters that would steer the terminal or reorder the text: C0 and C1 controls (escape
sequences start with one), DEL, and the bidirectional marks and overrides."""


def printable(text: str, one_line: bool = False) -> str:
    """``text`` with its control characters written as escapes (``\\x1b``); newlines are kept,
    or escaped too with ``one_line`` (an error or a warning is one line, whatever it quotes)."""
    text = _CONTROL_CHARACTERS.sub(
        lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text
    )
    return text.replace("\n", "\\n") if one_line else text


PIPED_WIDTH = 100_000
"""The width of a console whose output is not a terminal (a pipe, a file): wide enough that no
line or table cell wraps."""


class PlainConsole(Console):
    """A console that prints text as it is: no markup, no emoji codes, no highlighting, and
    control characters shown escaped, so that nothing a user wrote (a segment name, a column
    name, a path) is interpreted. The command's own styles are Text objects. Credentials are
    never shown (:func:`rfm_fast.credentials.scrub`).

    Where the output is not a terminal (``rfm score ... | grep``, ``> out.txt``), nothing wraps
    (no phrase or segment name split at column 80) and tables are Markdown tables: aligned
    plain text that another program or a document takes as it is. ``COLUMNS`` still sets the
    width where it is given.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(markup=False, emoji=False, highlight=False, **options)

    @property
    def size(self) -> ConsoleDimensions:
        # rich takes the width of whichever standard stream is a terminal (stdin, stderr), so
        # piped output would still wrap at the terminal's width
        dimensions = super().size
        if self._width is None and not self.is_terminal and "COLUMNS" not in os.environ:
            return ConsoleDimensions(PIPED_WIDTH, dimensions.height)
        return dimensions

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size

    def render_str(self, text: str, **options: Any) -> Text:
        return super().render_str(printable(scrub(text)), **options)

    def print(self, *objects: Any, **options: Any) -> None:
        if self.is_terminal or not any(isinstance(o, Table) for o in objects):
            super().print(*objects, **options)
            return
        for table in objects:
            if isinstance(table, Table):
                table.box = box.MARKDOWN
        with self.capture() as captured:
            super().print(*objects, **options)
        lines = [line.rstrip() for line in captured.get().splitlines()]
        super().print(Text("\n".join(line for line in lines if line)))


out = PlainConsole()
err = PlainConsole(stderr=True)


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """``1,204 customers``, ``1 customer``: a count with its noun in the right number."""
    return f"{number:,} {noun if number == 1 else plural or noun + 's'}"


@contextlib.contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[int, int | None], None] | None]:
    """A progress bar on stderr while input is read, when stderr is a terminal."""
    if not enabled or not err.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("reading"),
        BarColumn(),
        TextColumn("{task.completed:,} rows"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("read", total=None)

        def update(rows: int, total: int | None) -> None:
            bar.update(task, completed=rows, total=total)

        yield update


def print_table(table, columns: dict[str, str], title: str, percent=()) -> None:
    """Some columns of an Arrow table (name: header) as a terminal table."""
    import pyarrow as pa

    view = Table(title=title, title_justify="left")
    for name, header in columns.items():
        type_ = table.schema.field(name).type
        if (
            pa.types.is_string(type_)
            or pa.types.is_dictionary(type_)
            or pa.types.is_large_string(type_)
        ):
            # names wrap at word breaks if they must, and a long word (a file name) folds
            view.add_column(header, justify="left", overflow="fold")
        else:  # numbers, and their headers, stay whole
            view.add_column(header, justify="right", no_wrap=True, min_width=len(header))
    data = {c: table.column(c).to_pylist() for c in columns}
    for i in range(table.num_rows):
        cells = []
        for c in columns:
            value = data[c][i]
            if value is None or (isinstance(value, float) and value != value):
                cells.append("-")
            elif c in percent:
                cells.append(f"{100 * value:.1f}%")
            elif isinstance(value, float):
                cells.append(f"{value:,.2f}")
            elif isinstance(value, int):
                cells.append(f"{value:,}")
            else:
                cells.append(str(value))
        view.add_row(*cells)
    out.print(view)
