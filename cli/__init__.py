"""The `rfm` command line (installed as the `rfm_fast_cli` package)."""

import sys
from typing import Any


def main() -> Any:
    """The ``rfm`` command (:func:`rfm_fast_cli.main.main`).

    ``rfm --version`` is answered here, before the command line is built: importing typer and
    rich would triple the time of that process (docs/performance.md, "Start-up").
    """
    if sys.argv[1:] == ["--version"]:
        from rfm_fast import __version__

        print(f"rfm_fast {__version__}")
        return 0
    from rfm_fast_cli.main import main

    return main()
