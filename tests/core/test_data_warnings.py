"""Advice on results that are valid but look like a mistake (:class:`rfm_fast.RFMDataWarning`),
and CSV output at the precision of the amounts. When the warnings are given is also checked on
every generated case (tests/helpers.py, ``scored_warning_checked``); here, their text and the
CLI."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from helpers import RETAIL_OPTIONS, RETAIL_SLICE
from rfm_fast_cli.main import app
from typer.testing import CliRunner

import rfm_fast
from rfm_fast.core.io import decimals_of, write_table

COLUMNS = {"customer": "customer", "timestamp": "day", "amount": "amount", "segments": None}


def orders(customers: list[int | None], days: list[int] | None = None) -> pa.Table:
    days = days if days is not None else [1] * len(customers)
    return pa.table(
        {
            "customer": pa.array(customers, pa.int64()),
            "day": pa.array([dt.date(2024, 1, 1) + dt.timedelta(d) for d in days], pa.date32()),
            "amount": [10.0] * len(customers),
        }
    )


def data_warnings(table: pa.Table, **options) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rfm_fast.score(table, **COLUMNS, **options)
    assert all(w.category is rfm_fast.RFMDataWarning for w in caught), caught
    return [str(w.message) for w in caught]


def test_over_a_tenth_of_rows_without_a_customer_is_called_out():
    assert data_warnings(orders([1, 2, 3, 4, 5, 6, 7, 8, 9, None])) == []  # 10%: not over
    (message,) = data_warnings(orders([1, 2, 3, 4, 5, 6, 7, 8, None, None]))
    assert message.startswith("2 of 10 rows (20%) were left out: 2 without customer, 0 without")


def test_rows_left_out_by_a_choice_are_not_called_out():
    table = orders([1, 2, 3, 4], days=[1, 10, 30, 31])
    assert data_warnings(table, as_of="2024-01-15") == []  # half the rows are after as_of
    returns = table.set_column(2, "amount", pa.array([10.0, -1.0, -1.0, 5.0]))
    assert data_warnings(returns, returns="drop") == []


def test_an_as_of_beyond_the_data_span_is_called_out():
    table = orders([1, 2, 3], days=[0, 10, 20])  # 20 days of data, last on 2024-01-21
    assert data_warnings(table) == []  # default as_of: the next day
    assert data_warnings(table, as_of="2024-02-10") == []  # 20 days after: not more
    (message,) = data_warnings(table, as_of="2030-01-01")
    assert message.startswith("as_of 2030-01-01 is 2,172 days after the last purchase (2024-01-21)")
    assert "span of 20 days" in message and "R 5 for the most recent" in message
    fixed = {"recency": [30, 90, 180, 365]}
    assert data_warnings(table, as_of="2030-01-01", thresholds=fixed) == []


def test_one_day_of_data_warns_only_after_more_than_a_day():
    table = orders([1, 2])
    assert data_warnings(table, as_of="2024-01-03") == []
    assert len(data_warnings(table, as_of="2024-01-04")) == 1


def test_the_cli_prints_the_warning_on_success_only(tmp_path: Path):
    source = tmp_path / "orders.parquet"
    pq.write_table(orders([1, 2, None]), source)
    common = ["--customer", "customer", "--timestamp", "day", "--amount", "amount"]
    result = CliRunner().invoke(app, ["score", str(source), *common])
    assert result.exit_code == 0, result.output
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warned == [
        "warning: 1 of 3 rows (33%) were left out: 1 without customer, 0 without timestamp; check "
        "the customer and timestamp columns, or filter those rows out first if that is intended"
    ]
    failed = CliRunner().invoke(app, ["score", str(source), *common, "--bins", "1"])
    assert failed.exit_code == 1
    assert len(failed.stderr.strip().splitlines()) == 1, failed.stderr


# ---------------------------------------------------------------------- CSV output precision
def test_decimals_of_finds_the_precision_through_float_noise():
    assert decimals_of(np.array([1168.0600000000002, 0.30000000000000004, 7.0])) == 2
    assert decimals_of(np.array([3.0, -12.0, np.nan, np.inf])) == 0
    assert decimals_of(np.array([0.125])) == 3
    assert decimals_of(np.array([1e-9])) is None
    assert decimals_of(np.array([1 / 3, 2.5])) is None
    assert decimals_of(np.array([123456789.123])) == 3  # large values keep their decimals
    assert decimals_of(np.zeros(0)) == 0


def test_csv_output_writes_money_as_the_amounts_have_it(tmp_path: Path):
    table = pa.table(
        {
            "customer": [1, 1, 1, 2, 2, 2],
            "day": pa.array([dt.date(2024, 1, d) for d in (1, 2, 3, 1, 2, 3)], pa.date32()),
            "amount": [0.1, 0.2, 1167.76, 10.0, 10.0, 10.01],
        }
    )
    result = rfm_fast.score(table, **COLUMNS, monetary="mean")  # 389.3533... and 10.0033...
    csv_path, parquet_path = tmp_path / "scores.csv", tmp_path / "scores.parquet"
    result.write(csv_path)
    result.write(parquet_path)
    assert pa_csv.read_csv(csv_path).column("monetary").to_pylist() == [389.35, 10.0]
    assert pq.read_table(parquet_path).equals(result.table)  # Parquet keeps every bit

    noisy = pa.table({"customer": [1, 2], "frequency": [2, 1], "monetary": [0.1 + 0.2, 1168.06]})
    assert noisy.column("monetary").to_pylist()[0] == 0.30000000000000004
    write_table(noisy, csv_path)
    assert csv_path.read_text().splitlines()[1:] == ["1,2,0.3", "2,1,1168.06"]


def test_csv_output_keeps_values_finer_than_six_decimals(tmp_path: Path):
    table = pa.table({"customer": [1, 2], "p_alive": [1 / 3, 0.5]})
    path = tmp_path / "p.csv"
    write_table(table, path)
    assert pa_csv.read_csv(path).column("p_alive").to_pylist() == [1 / 3, 0.5]


@pytest.mark.parametrize("monetary", ["sum", "mean"])
def test_online_retail_csv_scores_have_cents(tmp_path: Path, monetary: str):
    result = rfm_fast.score(RETAIL_SLICE, **RETAIL_OPTIONS, monetary=monetary)
    path = tmp_path / "scores.csv"
    result.write(path)
    written = pa_csv.read_csv(path).column("monetary").to_numpy()
    exact = result.table.column("monetary").to_numpy()
    assert np.all(np.abs(written - exact) <= 0.005 + 1e-9)  # to the cent
    assert max(len(f"{v}".partition(".")[2]) for v in written) <= 2
