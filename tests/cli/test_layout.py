"""The layout of the command line (docs/architecture.md): the modules of cli/ import each other
one way, with no circle, only public names, and every import at the top of its file."""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import REPOSITORY

CLI = REPOSITORY / "cli"


def module_name(path: Path) -> str:
    """``rfm_fast_cli.commands.score`` for cli/commands/score.py."""
    parts = path.relative_to(CLI).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(("rfm_fast_cli", *parts))


def cli_imports() -> dict[str, list[ast.ImportFrom | ast.Import]]:
    """Each module of cli/ and its imports of rfm_fast_cli, wherever they stand in the file."""
    found = {}
    for path in sorted(CLI.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found[module_name(path)] = [
            node
            for node in ast.walk(tree)
            if (isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rfm_fast_cli"))
            or (
                isinstance(node, ast.Import)
                and any(alias.name.startswith("rfm_fast_cli") for alias in node.names)
            )
        ]
    return found


def test_no_module_imports_a_private_name_of_another():
    private = [
        f"{module}: {alias.name} from {node.module}"
        for module, nodes in cli_imports().items()
        for node in nodes
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.name.startswith("_")
    ]
    assert private == []


def test_the_modules_of_the_command_line_form_no_circle():
    graph = {
        module: {node.module for node in nodes if isinstance(node, ast.ImportFrom)}
        | {alias.name for node in nodes if isinstance(node, ast.Import) for alias in node.names}
        for module, nodes in cli_imports().items()
    }
    assert graph["rfm_fast_cli.main"], "main registers the commands: it imports them"
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, " -> ".join((*path, module))
        if module in done:
            return
        for imported in graph.get(module, ()):
            visit(imported, (*path, module))
        done.add(module)

    for module in graph:
        visit(module, ())


def test_imports_stand_at_the_top_of_each_file():
    """No import below the code (``# noqa: E402``), and none of rfm_fast_cli inside a function
    but the entry point's: :func:`rfm_fast_cli.main` imports ``rfm_fast_cli.main`` at its call,
    so that ``rfm --version`` loads no typer."""
    misplaced = []
    for path in sorted(CLI.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        code = [
            node
            for node in tree.body
            if not isinstance(node, ast.Import | ast.ImportFrom)
            and not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
        ]
        first_code = code[0].lineno if code else float("inf")
        misplaced += [
            f"{path.relative_to(CLI)}:{node.lineno}"
            for node in tree.body
            if isinstance(node, ast.Import | ast.ImportFrom) and node.lineno > first_code
        ]
        if module_name(path) != "rfm_fast_cli":
            misplaced += [
                f"{path.relative_to(CLI)}:{node.lineno}"
                for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom)
                and (node.module or "").startswith("rfm_fast_cli")
                and node not in tree.body
            ]
    assert misplaced == []
