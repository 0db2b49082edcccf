"""Public names imported on first use (PEP 562), so that ``import rfm_fast`` and the start of the
``rfm`` command load neither Numba nor pyarrow, SciPy or pandas before something needs them.

A package lists what it exports, module by module, and takes its ``__getattr__`` and ``__dir__``
from :func:`lazy_exports`; the same names are imported under ``if TYPE_CHECKING:`` for type
checkers and the docs (``tests/test_startup.py`` checks that the two lists agree).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_exports(
    package: str,
    names: Mapping[str, Iterable[str]],
    submodules: Iterable[str] = (),
    aliases: Mapping[str, str] | None = None,
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``.

    Parameters
    ----------
    package
        The package's ``__name__``.
    names
        Module -> the names the package takes from it, as its ``from module import ...`` lines
        would: each is imported on its first access, then kept in the package's namespace (later
        accesses do not come back here).
    submodules
        Submodules that are public names of the package (``rfm_fast.datasets``).
    aliases
        Public name -> a module deeper in the package that it names (``rfm_fast.arrays`` is
        ``rfm_fast.core.arrays``): ``from package import name`` gives that module.
    """
    where = {name: module for module, exported in names.items() for name in exported}
    whole = {name: f"{package}.{name}" for name in submodules} | dict(aliases or {})

    def __getattr__(name: str) -> Any:
        if name in whole:  # a module
            value = importlib.import_module(whole[name])
        elif name in where:  # a name inside a module
            value = getattr(importlib.import_module(where[name]), name)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where) | set(whole))

    return __getattr__, __dir__
