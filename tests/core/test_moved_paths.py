"""The module paths of rfm_fast 0.1 still import, as the very modules that hold the code now."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from rfm_fast import _moved


@pytest.mark.parametrize("old", sorted(_moved.MOVED))
def test_an_old_path_is_the_moved_module(old: str) -> None:
    module = importlib.import_module(old)
    assert module is importlib.import_module(_moved.MOVED[old])
    assert module.__name__ == module.__spec__.name == _moved.MOVED[old]


def test_names_import_from_old_paths() -> None:
    from rfm_fast.arrays import aggregate
    from rfm_fast.io import write_table
    from rfm_fast.scoring import RFMResult, score

    import rfm_fast
    from rfm_fast.core.arrays import aggregate as moved

    assert aggregate is moved
    assert score is rfm_fast.score and RFMResult is rfm_fast.RFMResult
    assert write_table.__module__ == "rfm_fast.core.io"


def test_old_paths_cost_nothing_until_imported() -> None:
    """Importing rfm_fast imports no engine; ``import rfm_fast.spark`` needs no pyspark."""
    code = (
        "import sys, rfm_fast, rfm_fast.spark; "
        "print(sorted(m for m in ('dask', 'pyspark', 'pandas') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_an_unknown_path_still_fails() -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("rfm_fast.no_such_module")
