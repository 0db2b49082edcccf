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
    """
    where = {name: module for module, exported in names.items() for name in exported}
    where.update({name: f"{package}.{name}" for name in submodules})

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = importlib.import_module(module)
        if module != f"{package}.{name}":
            value = getattr(value, name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__
