"""Start-up: ``import rfm_fast`` and ``rfm --version`` / ``rfm --help`` load none of the heavy
modules (Numba, SciPy, pandas, matplotlib, pyarrow), and every public name still resolves.

Each check runs in a fresh interpreter (this process has imported everything already). How long
start-up takes is measured by ``benchmarks/startup.py``, not here.
"""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import rfm_fast
import rfm_fast.core

HEAVY = ("numba", "llvmlite", "scipy", "pandas", "matplotlib", "pyarrow")

LOADED = """
import contextlib, io, json, sys
{setup}
print(json.dumps(sorted(name for name in {heavy} if name in sys.modules)), file=sys.__stderr__)
"""

RUN_CLI = """
sys.argv = ["rfm", *{args}]
from rfm_fast_cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    main()
"""


def heavy_modules_loaded(setup: str) -> list[str]:
    """The heavy modules in ``sys.modules`` after ``setup`` runs in a fresh interpreter."""
    code = LOADED.format(setup=setup, heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stderr.strip().splitlines()[-1])


def test_import_rfm_fast_loads_no_heavy_module():
    assert heavy_modules_loaded("import rfm_fast") == []


@pytest.mark.parametrize(
    "args",
    [
        ["--version"],
        ["--help"],
        ["score", "--help"],
        ["state", "--help"],
        ["export", "--help"],
        [],  # no command: the usage
    ],
)
def test_cli_without_work_loads_no_heavy_module(args: list[str]):
    assert heavy_modules_loaded(RUN_CLI.format(args=args)) == []


@pytest.mark.slow
def test_scoring_loads_no_pandas():
    """A scoring command needs pyarrow and the kernels (Numba, unless the compiled kernels
    serve), not pandas, which pyarrow imports on its first NumPy conversion (``pa.array`` over
    an ndarray, ``to_numpy``): about a quarter of a second."""
    from rfm_fast._kernels import dispatch

    loaded = heavy_modules_loaded(RUN_CLI.format(args=["example"]))
    assert "pyarrow" in loaded
    assert ("numba" in loaded) is not dispatch.aot_serves()
    assert "pandas" not in loaded
    assert "matplotlib" not in loaded


def test_version_through_the_full_command_line_loads_no_heavy_module():
    """``rfm --version`` among other options goes through typer's own eager option."""
    setup = """
from rfm_fast_cli.main import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    main(["--version"])
"""
    assert heavy_modules_loaded(setup) == []


def test_version_as_a_process():
    for args in (["--version"], ["--version", "score"]):
        done = subprocess.run(
            [sys.executable, "-m", "rfm_fast_cli", *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert (done.returncode, done.stdout, done.stderr) == (
            0,
            f"rfm_fast {rfm_fast.__version__}\n",
            "",
        )


@pytest.mark.parametrize("package", [rfm_fast, rfm_fast.core])
def test_every_public_name_resolves(package):
    for name in package.__all__:
        assert getattr(package, name) is not None, name
        assert name in dir(package)
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        package.no_such_name  # noqa: B018


def test_public_names_are_the_objects_of_their_modules():
    assert rfm_fast.score is importlib.import_module("rfm_fast.core.scoring").score
    assert rfm_fast.campaign is importlib.import_module("rfm_fast.actions.campaign").campaign
    assert rfm_fast.datasets is importlib.import_module("rfm_fast.datasets")
    assert rfm_fast.core.score is rfm_fast.score
    assert rfm_fast.RFMError is importlib.import_module("rfm_fast.errors").RFMError


def _type_checking_imports(tree: ast.Module) -> dict[str, set[str]]:
    """module -> names, of the ``from module import ...`` lines under ``if TYPE_CHECKING:``."""
    imports: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for line in node.body:
                assert isinstance(line, ast.ImportFrom)
                imports.setdefault(line.module, set()).update(a.name for a in line.names)
    return imports


def _lazy_exports(tree: ast.Module, package: str) -> dict[str, set[str]]:
    """module -> names, as given to ``lazy_exports`` (submodules under the package's name)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "lazy_exports":
            names = ast.literal_eval(node.args[1])
            exports = {module: set(exported) for module, exported in names.items()}
            for keyword in node.keywords:
                assert keyword.arg in ("submodules", "aliases")
                if keyword.arg == "submodules":  # (aliases name modules: not in __all__)
                    exports[package] = set(ast.literal_eval(keyword.value))
            return exports
    raise AssertionError(f"{package} does not call lazy_exports")


@pytest.mark.parametrize("package", [rfm_fast, rfm_fast.core])
def test_type_checking_imports_match_the_lazy_exports(package):
    """Type checkers and the docs see the names the package gives at run time, and ``__all__``
    lists them all (with what the package defines itself)."""
    tree = ast.parse(Path(package.__file__).read_text(encoding="utf-8"))
    imported = _type_checking_imports(tree)
    assert imported == _lazy_exports(tree, package.__name__)
    defined = {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name) and not target.id.startswith("__")
    } | {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    own = {name for name in package.__all__ if name in defined or name == "__version__"}
    assert set(package.__all__) == set().union(*imported.values()) | own
