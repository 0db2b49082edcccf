"""``benchmarks/compare.py`` runs end to end on a small file: each engine in its own process, the
floors of the phases beside rfm_fast's phases, and the same customers from every engine. Timings
are printed, not asserted (speed is measured in ``benchmarks/``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "compare.py"


@pytest.fixture
def orders(tmp_path: Path) -> Path:
    rng = np.random.default_rng(7)
    rows = 5_000
    path = tmp_path / "orders.parquet"
    pq.write_table(
        pa.table(
            {
                "customer_id": rng.integers(0, 300, rows),
                "order_id": rng.integers(0, 2_000, rows),
                "ordered_at": pa.array(rng.integers(0, 10**15, rows), type=pa.timestamp("us")),
                "amount": rng.lognormal(3, 1, rows).round(2),
            }
        ),
        path,
    )
    return path


def test_compare_reports_process_wall_phases_and_floors(orders: Path, tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            str(orders),
            "--engines",
            "rfm_fast,floor_read,floor_pass,floor_write",
            "--modes",
            "rows,distinct",
            "--repeat",
            "1",
            "--no-warmup",
            "--json",
            str(results),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    saved = json.loads(results.read_text())["results"]
    assert {(r["engine"], r["mode"]) for r in saved} == {
        (engine, mode)
        for engine in ("rfm_fast", "floor_read", "floor_pass", "floor_write")
        for mode in ("rows", "distinct")
    }
    assert not [r for r in saved if "error" in r]
    customers = pq.read_table(orders)["customer_id"].unique()
    for r in saved:
        assert r["process_wall_s"] >= r["wall_s"] > 0
        if r["engine"] in ("rfm_fast", "floor_write"):
            assert r["customers"] == len(customers)
        if r["engine"] in ("floor_read", "floor_pass"):
            assert r["rows"] == 5_000
    ours = next(r for r in saved if r["engine"] == "rfm_fast" and r["mode"] == "rows")
    assert set(ours["phases"]) >= {"read", "aggregate", "finish", "score", "write"}
    rows = {
        cells[1]: cells[2:]
        for line in done.stdout.splitlines()
        if (cells := [c.strip() for c in line.strip("|").split("|")])[0] == "rows"
    }
    for phase in ("read", "aggregate", "write"):  # each phase's floor sits beside it
        assert all(float(value) >= 0 for value in rows[phase]), rows[phase]
        assert len(rows[phase]) == 4
    assert "| rows | interpreter start and exit |" in done.stdout
