"""The kernels compiled ahead of time (rfm_fast/_kernels/build.py) and their dispatch.

* every signature the workloads of ``python -m rfm_fast._kernels.record`` call is listed in
  ``signatures.txt``, and (with the compiled kernels built) each export gives bit for bit the
  results of its ``@jit`` function on the same arguments;
* with the compiled kernels built, the common commands never import Numba or llvmlite;
* the dispatch matches argument types exactly, and ``RFM_FAST_KERNELS`` chooses the side.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import REPOSITORY, SHARED_DATA

from rfm_fast._kernels import dispatch

AOT_BUILT = dispatch.compiled_module() is not None
needs_aot = pytest.mark.skipif(
    not AOT_BUILT,
    reason=f"the compiled kernels are not built ({dispatch._compiled.reason}): "
    f"run {dispatch.REBUILD} or pip install .",
)


def run_python(code: str, mode: str = "auto", timeout: int = 900) -> subprocess.CompletedProcess:
    environment = {**os.environ, dispatch.MODE_VARIABLE: mode}
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env=environment,
        cwd=REPOSITORY,
    )


@pytest.mark.slow
def test_signatures_are_recorded_and_exports_match_jit():
    """One run of the recording workloads: every signature is listed, and with the compiled
    kernels built every export is called beside its ``@jit`` twin and gives identical results."""
    arguments = ["--compare"] if AOT_BUILT else ["--check"]
    done = subprocess.run(
        [sys.executable, "-m", "rfm_fast._kernels.record", *arguments],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
        cwd=REPOSITORY,
    )
    assert done.returncode == 0, (
        f"{done.stdout}{done.stderr}\nIf signatures are missing, a kernel's arguments changed:"
        f" run `python -m rfm_fast._kernels.record`, commit signatures.txt, rebuild"
    )
    if AOT_BUILT:
        compared = int(done.stdout.split(" signatures compared")[0].split()[-1])
        assert compared == len(_listed_signatures())


def _listed_signatures() -> list[str]:
    from rfm_fast._kernels.record import read_listed

    return sorted(read_listed())


def _inputs(folder) -> dict[str, list[str]]:
    """Parquet files of 200K rows: integer ids, text ids, invoice lines (text invoice ids).
    80K customers: the sorts of the scores run on two threads (parallel.PARALLEL_SORT_MIN)."""
    rng = np.random.default_rng(5)
    rows = 200_000
    customers = rng.integers(0, 80_000, rows)
    moments = pa.array(1_600_000_000_000_000 + rng.integers(0, 10**13, rows), pa.timestamp("us"))
    amounts = np.round(rng.normal(40, 30, rows), 2)
    integer = {"customer_id": customers, "ordered_at": moments, "amount": amounts}
    text = {**integer, "customer_id": pa.array([f"C{c:06d}" for c in customers])}
    lines = {
        **text,
        "invoice": pa.array([f"INV{c}-{i // 5}" for i, c in enumerate(customers)]),
    }
    commands = {}
    for name, columns in (("int", integer), ("text", text), ("lines", lines)):
        path = folder / f"{name}.parquet"
        pq.write_table(pa.table(columns), path)
        command = ["score", str(path), "-o", str(folder / f"{name}-out.parquet")]
        command += ["--customer", "customer_id", "--timestamp", "ordered_at", "--amount", "amount"]
        if name == "lines":
            command += ["--order", "invoice"]
        commands[name] = command
    retail = SHARED_DATA / "online_retail" / "online_retail_I.csv.gz"
    if retail.exists():
        commands["online retail"] = [
            "score",
            str(retail),
            "--customer",
            "CustomerID",
            "--timestamp",
            "InvoiceDate",
            "--amount",
            "Quantity*UnitPrice",
            "--order",
            "InvoiceNo",
            "-o",
            str(folder / "retail-out.parquet"),
        ]
    return commands


COMMAND_THEN_MODULES = """
import contextlib, io, json, sys
from rfm_fast_cli.main import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main({command})
    except SystemExit as exit:
        assert not exit.code, exit.code
print(json.dumps(sorted(m for m in ("numba", "llvmlite") if m in sys.modules)))
"""


@needs_aot
@pytest.mark.slow
def test_common_commands_never_import_numba(tmp_path):
    commands = {"example": ["example"], **_inputs(tmp_path)}
    for name, command in commands.items():
        done = run_python(COMMAND_THEN_MODULES.format(command=command))
        assert done.returncode == 0, f"{name}: {done.stderr}"
        assert json.loads(done.stdout.strip().splitlines()[-1]) == [], name


def test_type_codes_follow_numba():
    numba = pytest.importorskip("numba")
    from rfm_fast._kernels.build import numba_type

    values = [
        np.zeros(3, np.int64),
        np.zeros((2, 3), np.float64),
        np.zeros((3, 2), np.int32)[::2],
        np.zeros((2, 3), np.uint8).T,
        np.frombuffer(b"abc", np.uint8),
        np.zeros(0, np.bool_),
        7,
        -(2**40),
        2**63,
        1.5,
        True,
        np.int32(3),
        np.uint64(5),
        np.float32(1),
        np.bool_(False),
    ]
    for value in values:
        assert numba_type(dispatch.type_code(value)) == numba.typeof(value), value
    assert dispatch.type_code(None) is None
    assert dispatch.type_code(2**64) is None
    assert dispatch.type_code("text") is None


def test_no_export_is_called_with_other_types(monkeypatch):
    """A layout or dtype the export was not built for goes to ``@jit``; under
    ``RFM_FAST_KERNELS=aot`` it is an error that names the kernel and the types."""
    kernel = dispatch.Kernel("binning", "ntile_scores")
    order = np.repeat(np.arange(5, dtype=np.int64), 2)[::2]  # 0..4, not contiguous: 'A'
    out = np.zeros(5, dtype=np.int8)
    monkeypatch.setenv(dispatch.MODE_VARIABLE, "aot")
    with pytest.raises(RuntimeError, match=r"binning\.ntile_scores\(int64:1A, int64, int8:1C\)"):
        kernel(order, 2, out)
    monkeypatch.setenv(dispatch.MODE_VARIABLE, "jit")
    kernel = dispatch.Kernel("binning", "ntile_scores")
    kernel(order, 2, out)
    assert out.tolist() == [1, 1, 1, 2, 2]


def test_a_wrong_mode_is_an_error(monkeypatch):
    monkeypatch.setenv(dispatch.MODE_VARIABLE, "fast")
    with pytest.raises(ValueError, match="RFM_FAST_KERNELS is 'fast': expected one of auto"):
        dispatch.kernel_mode()


@needs_aot
def test_exports_release_the_gil():
    """Two threads' calls of one export overlap in time: each call releases the GIL (with the
    GIL held for the call, the second thread could not even start its call before the first
    one returns)."""
    done = run_python(
        """
import threading, time, numpy as np
from rfm_fast._kernels import dispatch
n = 30_000_000
order = np.arange(n, dtype=np.int64)
kernel = dispatch.Kernel("binning", "ntile_scores")
outs = [np.zeros(n, np.int8) for _ in range(2)]
kernel(order[:10], 5, outs[0][:10])
spans = []
def call(out):
    start = time.perf_counter()
    kernel(order, 5, out)
    spans.append((start, time.perf_counter()))
threads = [threading.Thread(target=call, args=(out,)) for out in outs]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
(a0, a1), (b0, b1) = spans
print(int(a0 < b1 and b0 < a1))
""",
        mode="aot",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
