"""`rfm state init|update|score|info`: a week of daily loads of the CDNOW example through the
command line, and its one-line errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from helpers import one_line_error
from rfm_fast_cli.main import app
from typer.testing import CliRunner

import rfm_fast

runner = CliRunner()
COLUMNS = {"customer": "customer_id", "timestamp": "date", "amount": "dollar_value"}
ARGS = ["--customer", "customer_id", "--timestamp", "date", "--amount", "dollar_value"]


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def week(tmp_path: Path) -> tuple[Path, list[Path], pa.Table]:
    """The CDNOW example up to 1998-01-01 as the history, and the next 7 days as daily files."""
    table = rfm_fast.datasets.load_example()
    dates = table.column("date")
    history = table.filter(pc.less(dates, pa.scalar(dt.date(1998, 1, 1), pa.date32())))
    pq.write_table(history, tmp_path / "history.parquet")
    days = []
    for offset in range(7):
        day = pa.scalar(dt.date(1998, 1, 1) + dt.timedelta(days=offset), pa.date32())
        path = tmp_path / f"day{offset + 1}.parquet"
        pq.write_table(table.filter(pc.equal(dates, day)), path)
        days.append(path)
    end = pa.scalar(dt.date(1998, 1, 8), pa.date32())
    return tmp_path / "history.parquet", days, table.filter(pc.less(dates, end))


def test_a_week_of_daily_loads_scores_like_one_run(tmp_path: Path, week):
    history, days, whole = week
    state = tmp_path / "cdnow.rfmstate"
    result = run("state", "init", history, "-o", state, *ARGS)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"built {state}: 23,570 customers from 56,902 rows")
    for number, day in enumerate(days, start=2):
        scores, changes = tmp_path / f"scores{number}.parquet", tmp_path / f"changes{number}.csv"
        result = run("state", "update", state, day, "-o", scores, "--changes", changes)
        assert result.exit_code == 0, result.output
        assert f"load {number}: " in result.stdout and f"saved {state}" in result.stdout
        assert pa_csv.read_csv(changes).num_rows > 0
    expected = rfm_fast.score(whole, **COLUMNS)
    assert pq.read_table(scores).equals(expected.table)

    rescored = tmp_path / "rescored.parquet"
    result = run("state", "score", state, "--as-of", "1998-03-01", "-o", rescored)
    assert result.exit_code == 0, result.output
    assert pq.read_table(rescored).equals(
        rfm_fast.score(whole, **COLUMNS, as_of="1998-03-01").table
    )

    result = run("state", "info", state)
    assert result.exit_code == 0, result.output
    assert "options: customer=customer_id, timestamp=date, amount=dollar_value" in result.stdout
    assert f"customers 23,570; rows read {whole.num_rows:,}" in result.stdout
    assert "purchases 1997-01-01 .. 1998-01-07" in result.stdout
    assert "day7.parquet" in result.stdout and "Segment sizes after loads" in result.stdout


def test_a_load_applied_twice_is_refused_unless_forced(tmp_path: Path, week):
    history, days, _ = week
    state = tmp_path / "s.rfmstate"
    assert run("state", "init", history, "-o", state, *ARGS).exit_code == 0
    assert run("state", "update", state, days[0]).exit_code == 0
    saved = state.read_bytes()
    one_line_error(run("state", "update", state, days[0]), "applied before", "--force")
    assert state.read_bytes() == saved
    result = run("state", "update", state, days[0], "--force")
    assert result.exit_code == 0, result.output


def test_state_errors_are_one_line_and_leave_nothing(tmp_path: Path, week):
    history, days, _ = week
    state = tmp_path / "s.rfmstate"
    one_line_error(run("state", "update", state, days[0]), "state file not found")
    one_line_error(run("state", "init", history, "-o", history, *ARGS), "is the input file")
    wrong = ["--customer", "nope", *ARGS[2:]]
    one_line_error(run("state", "init", history, "-o", state, *wrong), "'nope'")
    assert not state.exists()
    assert run("state", "init", history, "-o", state, *ARGS).exit_code == 0
    one_line_error(run("state", "update", state, days[0], "-o", days[0]), "is the input file")
    one_line_error(run("state", "update", state, days[0], "-o", state), "output format")
    one_line_error(run("state", "score", state, "--as-of", "1997-06-01"), "before the state's")
    one_line_error(run("state", "update", state, history), "applied before")
    state.write_bytes(state.read_bytes()[:-1])
    one_line_error(run("state", "info", state), "damaged or truncated")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_state_counts_say_who_the_scores_leave_out(tmp_path: Path) -> None:
    """Issue 27, item 4: init, info and the scores agree on the customers, or say which are
    left out and why (customers whose every row is a return are held, not scored)."""
    orders = tmp_path / "orders.csv"
    orders.write_text(
        "customer,ts,amount\n"
        "1,2024-01-01,10\n1,2024-01-05,-4\n2,2024-01-02,5\n"
        "3,2024-01-03,-7\n"  # only a return
    )
    state = tmp_path / "orders.state"
    options = ["--customer", "customer", "--timestamp", "ts", "--amount", "amount"]
    result = run("state", "init", orders, "-o", state, *options)
    assert result.exit_code == 0, result.output
    held = "3 customers (2 scored; 1 with only returns, not scored)"
    assert f"built {state}: {held} from 4 rows" in result.stdout
    result = run("state", "info", state)
    assert result.exit_code == 0, result.output
    assert "customers 3 (2 scored; 1 with only returns, not scored); rows read 4" in result.stdout
    result = run("score", orders, *options)
    assert result.exit_code == 0, result.output
    assert "; 1 customer with only returns left out" in result.stdout
    assert "customers scored 2;" in result.stdout
    info = rfm_fast.DailyState.open(state).info()
    counts = [info[k] for k in ("customers", "customers_scored", "customers_only_returns")]
    assert counts == [3, 2, 1]
