"""The install's one build step: compile the kernels ahead of time (rfm_fast/_kernels/build.py).

Everything else is in pyproject.toml. ``build_py`` runs ``rfm_fast._kernels.build`` after
copying the package, writing ``rfm_fast/_kernels/_compiled.*.so`` beside the kernels (in the
source tree for an editable install). Where it fails (no C compiler, say) the install still
succeeds: the reason goes to ``_compiled_error.txt``, and the kernels compile with Numba on
first use, with a one-line note (rfm_fast/_kernels/dispatch.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent
ERROR_FILE = "_compiled_error.txt"


class BuildWithCompiledKernels(build_py):
    """``build_py``, then the compiled kernels."""

    def run(self) -> None:
        super().run()
        editable = getattr(self, "editable_mode", False)
        target = HERE if editable else Path(self.build_lib)
        kernels = target / "rfm_fast" / "_kernels"
        for stale in kernels.glob("_compiled*"):  # an earlier build's module, or its error
            stale.unlink()
        # A process of its own, with the source tree first on the path: the kernels are
        # imported from the sources, and a failure (even a crash) cannot fail the install.
        done = subprocess.run(
            [sys.executable, "-m", "rfm_fast._kernels.build", "--output-dir", str(kernels)],
            cwd=HERE,
            capture_output=True,
            text=True,
        )
        if done.returncode == 0:
            print(done.stdout.strip())
            return
        lines = [line for line in (done.stderr or done.stdout).strip().splitlines() if line]
        reason = f"the build failed: {lines[-1] if lines else f'exit code {done.returncode}'}"
        print(f"rfm_fast: compiled kernels are not built ({reason})", file=sys.stderr)
        print(done.stderr, file=sys.stderr)
        (kernels / ERROR_FILE).write_text(reason + "\n")

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        kernels = Path(self.build_lib) / "rfm_fast" / "_kernels"
        built = [str(path) for path in kernels.glob("_compiled*") if path.is_file()]
        return [*super().get_outputs(include_bytecode), *built]


class PlatformDistribution(Distribution):
    """The wheel holds a compiled module: tag it for the platform, not ``py3-none-any``."""

    def has_ext_modules(self) -> bool:
        return True


setup(cmdclass={"build_py": BuildWithCompiledKernels}, distclass=PlatformDistribution)
