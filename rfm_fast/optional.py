"""Optional dependencies, imported when first needed: a missing one is one :class:`RFMError`
that names the package and the ``pip install 'rfm_fast[extra]'`` line that brings it (the
extras are in pyproject.toml), so that the command line prints it as its one line of error.

This module imports nothing heavy: checking for a package costs nothing until it is needed.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from rfm_fast.errors import RFMError

PACKAGES = {
    "adbc_driver_manager": "adbc-driver-manager",
    "adbc_driver_postgresql": "adbc-driver-postgresql",
    "adbc_driver_sqlite": "adbc-driver-sqlite",
}
"""Import names whose pip name differs (the others are installed under their import name)."""


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """The module ``module``, imported; where it (or a package it needs) is not installed, an
    :class:`RFMError` that says ``purpose`` needs it and how to install it.

    Parameters
    ----------
    module : str
        The module to import, such as ``"scipy.optimize"``.
    extra : str
        The extra of rfm_fast that installs it (``"clv"`` for scipy).
    purpose : str
        What needs it, the subject of the message (``"rfm_fast.clv"``).

    Raises
    ------
    RFMError
        ``"<purpose> needs <package>: install it with: pip install 'rfm_fast[<extra>]'"``.

    Examples
    --------
    >>> require("json", "none", "this example").dumps([1])
    '[1]'
    >>> require("no_such_package.sub", "clv", "the example")
    Traceback (most recent call last):
    ...
    rfm_fast.errors.RFMError: the example needs no_such_package: install it with: pip install 'rfm_fast[clv]'
    """  # noqa: E501
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = (exc.name or module).split(".")[0]
        package = PACKAGES.get(missing, missing)
        raise RFMError(
            f"{purpose} needs {package}: install it with: pip install 'rfm_fast[{extra}]'"
        ) from None
