"""What `pip install .` installs: every package of the source tree is listed in pyproject.toml
(the list is explicit; a package left out is missing from a plain install, while the tests,
run from the repository, would still find it)."""

from __future__ import annotations

import tomllib

from helpers import REPOSITORY


def test_every_package_is_installed():
    project = tomllib.loads((REPOSITORY / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(project["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(REPOSITORY).parts)
        for init in (REPOSITORY / "rfm_fast").rglob("__init__.py")
    }
    data = {"rfm_fast.data"}  # package data only, no __init__.py
    command_line = {  # the folder cli/, installed as rfm_fast_cli
        ".".join(("rfm_fast_cli", *init.parent.relative_to(REPOSITORY / "cli").parts))
        for init in (REPOSITORY / "cli").rglob("__init__.py")
    }
    assert found | data | command_line == listed
