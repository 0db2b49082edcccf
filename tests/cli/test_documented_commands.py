"""Every `rfm` command shown in README.md and docs/*.md runs as it is written, from the
repository's root, after the commands before it in its block, and prints what the page says it
prints (its summary lines, warnings and errors). Commands on the larger files of ../shared/data
skip, with a reason, where those are not beside the repository. A page's Python block that
starts with ``# builds NAME`` (a database its commands read) runs first where a command names
NAME."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import REPOSITORY, SHARED_DATA
from rfm_fast_cli.main import app
from typer.testing import CliRunner

PAGES = [REPOSITORY / "README.md", *sorted((REPOSITORY / "docs").glob("*.md"))]
CHECKED = ("error:", "warning:", "rows read", "customers scored", "returns (negative", "wrote")
"""The printed lines a page's console block is compared on (tables and timings vary with the
terminal's width and the machine)."""
ELLIPSIS = re.compile(r"\(Here `\.\.\.` stands for `([^`]+)`\.\)", re.S)


@dataclass
class Command:
    page: str
    line: int
    args: list[str]
    expected: list[str]  # the printed lines shown below it (console blocks)
    files: dict[str, str]  # files a block writes first (`$ cat NAME` and its text)
    before: list[list[str]]  # the block's earlier commands (a state they build, a file)

    def __str__(self) -> str:
        return f"{self.page}:{self.line}"


def _commands(page: Path) -> list[Command]:
    text = page.read_text(encoding="utf-8")
    stands_for = ELLIPSIS.search(text)
    found: list[Command] = []
    in_block, language, start = False, "", 0
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip().startswith("```"):
            in_block = not in_block
            language, start = line.strip()[3:], i
            earlier: list[list[str]] = []
            i += 1
            continue
        stripped = line.strip()
        prompt = "$ " if language == "console" else ""
        if in_block and language in ("bash", "console") and stripped.startswith(prompt + "rfm"):
            first = i
            command = stripped[len(prompt) :]
            while command.endswith("\\"):
                i += 1
                command = command[:-1] + " " + lines[i].strip()
            expected = []
            j = i + 1
            while prompt and j < len(lines) and not lines[j].strip().startswith(("$ ", "```")):
                if lines[j].strip():
                    expected.append(lines[j].strip())
                j += 1
            if "..." in command and stands_for is not None:
                expansion = stands_for[1].split()
                if not command.split("...")[0].split()[2:]:  # no input of its own
                    command = command.replace("...", " ".join(expansion), 1)
                else:  # `rfm score nope.csv.gz ...`: the rest of the expansion
                    command = command.replace("...", " ".join(expansion[1:]), 1)
            if not ("..." in command or "[" in command.split("#")[0] or "INPUT" in command):
                args = shlex.split(command, comments=True)[1:]
                files = _cat_files(lines[start:first], prompt) if prompt else {}
                found.append(Command(page.name, first + 1, args, expected, files, list(earlier)))
                earlier.append(args)
        i += 1
    return found


def _cat_files(block: list[str], prompt: str) -> dict[str, str]:
    """The files a console block shows with ``$ cat NAME`` before its command."""
    files, name = {}, None
    for line in block[1:]:
        stripped = line.strip()
        if stripped.startswith(prompt + "cat "):
            name = stripped.split()[-1]
            files[name] = ""
        elif stripped.startswith(prompt):
            name = None
        elif name is not None:
            files[name] += stripped + "\n"
    return files


COMMANDS = [command for page in PAGES for command in _commands(page)]
BUILDS = re.compile(r"```python\n# builds ([^\s:]+)[^\n]*\n(.*?)```", re.S)


def _setup_blocks(page: Path) -> dict[str, str]:
    """The Python blocks of a page that build a file its commands read: name, code."""
    return {m[1]: m[0][len("```python") : -3] for m in BUILDS.finditer(page.read_text("utf-8"))}


SETUP = {page.name: _setup_blocks(page) for page in PAGES}


def test_the_pages_show_commands():
    assert len(COMMANDS) >= 30, [str(c) for c in COMMANDS]


@pytest.fixture
def root(tmp_path: Path, monkeypatch) -> Path:
    """A folder laid out like the repository's root, to run the commands from: its package
    data and test data, and ../shared beside it where the real one is."""
    work = tmp_path / "repository"
    work.mkdir()
    for name in ("rfm_fast", "tests", "docs", "pyproject.toml"):
        (work / name).symlink_to(REPOSITORY / name)
    if SHARED_DATA.exists():
        (tmp_path / "shared").symlink_to(SHARED_DATA.parent)
    monkeypatch.chdir(work)
    return work


@pytest.mark.parametrize("command", COMMANDS, ids=str)
def test_documented_command_runs_as_written(command: Command, root: Path):
    for name, text in command.files.items():
        (root / name).write_text(text, encoding="utf-8")
    named = " ".join(" ".join(args) for args in [*command.before, command.args])
    for name, code in SETUP[command.page].items():
        if name in named:
            exec(compile(code, f"{command.page} (builds {name})", "exec"), {})
    inputs = [a for a in command.args if a.startswith("../shared/")]
    if inputs and not (root / inputs[0]).parent.exists():
        pytest.skip(f"{inputs[0]} is not beside the repository")
    for args in command.before:  # in the block's order: what they write, this one reads
        done = CliRunner().invoke(app, args)
        assert done.exit_code in (0, 1), (args, done.output, done.stderr)
    result = CliRunner().invoke(app, command.args)
    shown = [line for line in command.expected if line.startswith(CHECKED)]
    if any(line.startswith("Error:") for line in command.expected):  # the parser's: exit 2
        assert result.exit_code == 2, (result.output, result.stderr)
        shown = [line for line in command.expected if line.startswith(("Usage:", "Error:"))]
    elif any(line.startswith("error:") for line in shown):
        assert result.exit_code == 1, (result.output, result.stderr)
    else:
        assert result.exit_code == 0, (result.output, result.stderr)
    printed = [line.strip() for line in (result.stdout + result.stderr).splitlines()]
    for line in shown:
        assert line in printed, (line, printed)
