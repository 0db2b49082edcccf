"""The import paths of rfm_fast 0.1, kept working: each old module name is an alias of the
module that now holds its code (``import rfm_fast.spark`` gives :mod:`rfm_fast.engines.spark`).

A finder on :data:`sys.meta_path` answers only for the names in :data:`MOVED`, and only when
they are imported: an old name costs nothing until it is used, and importing ``rfm_fast.spark``
does not import Dask.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
from types import ModuleType

MOVED = {
    "rfm_fast.aggregation": "rfm_fast.core.aggregator",
    "rfm_fast.arrays": "rfm_fast.core.arrays",
    "rfm_fast.arrow": "rfm_fast.core.arrow",
    "rfm_fast.binning": "rfm_fast.core.binning",
    "rfm_fast.buffered_partitions": "rfm_fast.core.partitions",
    "rfm_fast.dask": "rfm_fast.engines.dask",
    "rfm_fast.distributed": "rfm_fast.engines.distributed",
    "rfm_fast.io": "rfm_fast.core.io",
    "rfm_fast.migration": "rfm_fast.insight.migration",
    "rfm_fast.parallel": "rfm_fast.core.parallel",
    "rfm_fast.report": "rfm_fast.insight.report",
    "rfm_fast.scoring": "rfm_fast.core.scoring",
    "rfm_fast.segments": "rfm_fast.core.segments",
    "rfm_fast.sketch": "rfm_fast.core.sketch",
    "rfm_fast.spark": "rfm_fast.engines.spark",
    "rfm_fast.state": "rfm_fast.core.state",
    "rfm_fast.timing": "rfm_fast.core.timing",
}
"""Old module name -> the module that holds its code now."""


class _MovedModules:
    """A finder and loader (the import system asks for the methods, not the base classes of
    importlib.abc, whose import is a fifth of ``import rfm_fast``)."""

    def find_spec(self, name: str, path=None, target=None):
        if name not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(name, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(MOVED[spec.name])
        spec.loader_state = module.__spec__  # the import system sets __spec__ to the alias's
        return module

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run (the module was imported under its own name); its own spec back."""
        module.__spec__ = module.__spec__.loader_state


def install() -> None:
    """Put the finder on ``sys.meta_path`` (once)."""
    if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
        sys.meta_path.append(_MovedModules())
