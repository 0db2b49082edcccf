"""The error funnel: :func:`reported_errors` turns every failure of a command into one line on
stderr and an exit code (1; 130 on Ctrl-C, 143 on SIGTERM), with no traceback unless
``RFM_DEBUG=1``; :func:`fail` is that line for a check of the command line itself.

SIGTERM is handled here too (:func:`terminate`, installed by :func:`rfm_fast_cli.main.main`):
during the work it unwinds like Ctrl-C, so that the files being written are removed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import warnings
from collections.abc import Iterator
from typing import Any

import typer
from rfm_fast_cli.console import err, printable
from rich.text import Text

import rfm_fast
from rfm_fast.credentials import scrub
from rfm_fast.errors import os_error_reason


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM (under the ``rfm`` command), so that the files
    being written are removed on the way out, as they are on Ctrl-C."""


TERMINATED = "terminated (SIGTERM); no output was written"
_working = False
"""True inside :func:`reported_errors`: a SIGTERM then unwinds the work, removing what was
being written."""


def terminate(signum: int, frame: Any) -> None:
    """The SIGTERM handler of the ``rfm`` command: :class:`Terminated` during the work, else
    the one line and exit code 143."""
    if _working:
        raise Terminated
    # Before the work (the options are still being parsed) nothing is being written, and Click
    # would turn the exception into its own exit code: end here, with the one line.
    err.print(Text.assemble(("error:", "bold red"), " ", TERMINATED))
    raise SystemExit(143)


def outputs_written(path: Any) -> None:
    """The outputs are complete and in place: from here on SIGTERM ends the command at once, as it
    would any program (nothing is left to clean up, and "no output was written" would be
    wrong)."""
    if signal.getsignal(signal.SIGTERM) is terminate:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as the one ``error:`` line (control characters escaped, credentials
    scrubbed) and return the exit to raise."""
    err.print(
        Text.assemble(("error:", "bold red"), " ", printable(scrub(message), one_line=True)),
        soft_wrap=True,
    )
    return typer.Exit(code)


@contextlib.contextmanager
def reported_errors() -> Iterator[None]:
    """Turn library errors into one line on stderr and exit code 1; print the warnings of a run
    that succeeds (a failure is its one line only), and what the library guessed (a CSV
    delimiter) as a note."""
    global _working
    guesses = GuessNotes()
    logger = logging.getLogger("rfm_fast")
    logger.addHandler(guesses)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    with contextlib.ExitStack() as stack:
        stack.callback(logger.removeHandler, guesses)
        with _reported_failures():
            yield
        guesses.print()  # (a run that fails says its one line only)


class GuessNotes(logging.Handler):
    """Collects the guesses of the library's log (the CSV delimiter of a file read without
    ``--delimiter``) that are not the usual comma, to print once each, as ``note: ...`` on
    stderr, when the run succeeds."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.notes: dict[tuple[str, str], str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        path, delimiter = getattr(record, "path", None), getattr(record, "delimiter", None)
        if path is None or delimiter in (None, ","):
            return
        shown = {"\t": "tab"}.get(delimiter, delimiter)
        self.notes[(path, delimiter)] = (
            f"note: {printable(str(path))}: delimiter {shown!r} guessed (give --delimiter to "
            "choose another)"
        )

    def print(self) -> None:
        for note in self.notes.values():
            err.print(note, soft_wrap=True)


@contextlib.contextmanager
def _reported_failures() -> Iterator[None]:
    global _working
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", rfm_fast.RFMWarning)
        _working = True
        try:
            yield
            _working = False
            _print_warnings(caught)
        except rfm_fast.RFMError as exc:
            raise fail(str(exc)) from None
        except Terminated:
            raise fail(TERMINATED, 143) from None
        except KeyboardInterrupt:
            raise fail("interrupted; no output was written", 130) from None
        except typer.Exit as exit_:
            if exit_.exit_code == 0:
                _print_warnings(caught)
            raise
        except typer.Abort:
            raise
        except Exception as exc:
            if os.environ.get("RFM_DEBUG"):
                raise
            if isinstance(exc, OSError) and exc.errno is not None:  # disk full, read-only, ...
                where = f"{exc.filename}: " if exc.filename else ""
                raise fail(where + os_error_reason(exc)) from None
            if isinstance(exc, ValueError) and str(exc) == "embedded null byte":  # (os.fspath)
                raise fail(
                    "a path holds a NUL character (\\x00), which no file name can hold; give "
                    "the path without it"
                ) from None
            raise fail(
                f"unexpected {type(exc).__name__}: {exc} (this is a bug in rfm_fast; run with "
                "RFM_DEBUG=1 for the traceback and report it)"
            ) from None
        finally:
            _working = False


def _print_warnings(caught: list[warnings.WarningMessage]) -> None:
    for warning in caught:
        warned = printable(scrub(str(warning.message)), one_line=True)
        err.print(Text.assemble(("warning:", "yellow"), " ", warned), soft_wrap=True)
