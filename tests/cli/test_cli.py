"""The `rfm` command line: outputs, the summary, and one-line errors with exit code 1."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from rfm_fast_cli.main import app
from typer.testing import CliRunner

import rfm_fast

runner = CliRunner()
EXAMPLE = rfm_fast.datasets.example_path()
EXAMPLE_ARGS = ["--customer", "customer_id", "--timestamp", "date", "--amount", "dollar_value"]


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output + result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def orders(tmp_path: Path) -> Path:
    table = pa.table(
        {
            "customer": [1, 1, 2, 3, None],
            "timestamp": pa.array(
                [dt.datetime(2024, 1, d, 12) for d in (1, 20, 5, 30, 2)], pa.timestamp("s")
            ),
            "amount": [10.0, 15.0, 7.5, 20.0, 1.0],
        }
    )
    path = tmp_path / "orders.parquet"
    pq.write_table(table, path)
    return path


def test_example_prints_summary_and_segments():
    result = run("example")
    assert result.exit_code == 0, result.output
    assert "rows read 69,659; used 69,659" in result.output
    assert "customers scored 23,570" in result.output
    assert "Champions" in result.output and "Hibernating" in result.output
    assert "frequency" in result.output  # the edges table


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".arrow", ".feather"])
def test_score_writes_every_format(tmp_path: Path, suffix: str):
    output = tmp_path / f"scores{suffix}"
    result = run("score", EXAMPLE, "-o", output, *EXAMPLE_ARGS, "--no-progress")
    assert result.exit_code == 0, result.output
    expected = rfm_fast.score(EXAMPLE, **rfm_fast.datasets.EXAMPLE_COLUMNS).table
    if suffix == ".parquet":
        written = pq.read_table(output)
    elif suffix == ".csv":
        written = pa_csv.read_csv(output)
    else:
        written = feather.read_table(output)
    assert written.num_rows == expected.num_rows == 23_570
    assert written.column_names == expected.column_names
    assert written.column("customer_id").to_pylist() == expected.column("customer_id").to_pylist()
    assert written.column("rfm_cell").cast(pa.string()).to_pylist() == (
        expected.column("rfm_cell").to_pylist()
    )
    assert written.column("segment").cast(pa.string()).to_pylist() == (
        expected.column("segment").cast(pa.string()).to_pylist()
    )
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_score_options_reach_the_library(orders: Path, tmp_path: Path):
    output = tmp_path / "out.parquet"
    result = run(
        "score",
        orders,
        "-o",
        output,
        "--bins",
        "3",
        "--method",
        "split",
        "--segments",
        "none",
        "--as-of",
        "2024-01-25",
        "--recency-edges",
        "5,10",
    )
    assert result.exit_code == 0, result.output
    table = pq.read_table(output)
    expected = rfm_fast.score(
        orders,
        customer="customer",
        timestamp="timestamp",
        amount="amount",
        bins=3,
        method="split",
        segments=None,
        as_of="2024-01-25",
        thresholds={"recency": [5, 10]},
    ).table
    assert table.equals(expected)
    assert "after as of 1" in result.output
    assert "null customer 1" in result.output


def test_score_window_scores_the_last_days_and_counts_the_rest(orders: Path, tmp_path: Path):
    output = tmp_path / "out.parquet"
    result = run("score", orders, "-o", output, "--segments", "none", "--window", "12")
    assert result.exit_code == 0, result.output
    expected = rfm_fast.score(
        orders,
        customer="customer",
        timestamp="timestamp",
        amount="amount",
        segments=None,
        window=12,
    )
    assert pq.read_table(output).equals(expected.table)
    assert expected.table.column("customer").to_pylist() == [1, 3]  # 2024-01-20 and -30 only
    assert "before window 2" in result.output
    assert "window 12 days" in result.output


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--window", "0"], "window must be a whole number of days"),
        (["--window", "12", "--p-alive"], "--p-alive fits the BG/NBD model on the whole history"),
    ],
)
def test_score_window_errors_are_one_line(orders: Path, args: list[str], fragment: str):
    assert_one_line_error(run("score", orders, *args), fragment)


def score_with_rules(orders: Path, tmp_path: Path, rules_toml: str):
    """``rfm score`` with a rules file of this text and 3 bins: the result and the output."""
    rules = tmp_path / "rules.toml"
    rules.write_text(rules_toml, encoding="utf-8")
    output = tmp_path / "out.csv"
    result = run("score", orders, "-o", output, "--bins", "3", "--segments", rules)
    assert result.exit_code == 0, result.output
    return result, pa_csv.read_csv(output).column("segment").to_pylist()


def test_segments_file(orders: Path, tmp_path: Path):
    _, segments = score_with_rules(orders, tmp_path, '[[segment]]\nname = "Best"\nR = "3"\n')
    assert set(segments) <= {"Best", "Other"}


@pytest.mark.parametrize("name", ["[/x]", "[[segment]]", "[bold]Best[/bold]", ":smile:"])
def test_segment_names_print_as_written(orders: Path, tmp_path: Path, name: str):
    """A segment name is text, never Rich markup or an emoji code."""
    result, segments = score_with_rules(
        orders, tmp_path, f"[[segment]]\nname = '{name}'\nR = '3'\n"
    )
    assert name in result.output
    assert name in segments


def test_control_characters_reach_the_terminal_escaped(orders: Path, tmp_path: Path):
    """An escape sequence in a segment name is shown as text, not sent to the terminal."""
    toml = '[[segment]]\nname = "Best\\u001b[31m"\nR = "3"\n'
    result, segments = score_with_rules(orders, tmp_path, toml)
    assert "\x1b" not in result.output
    assert "Best\\x1b[31m" in result.output
    assert "Best\x1b[31m" in segments


@pytest.mark.parametrize("column", ["[/x]", "[bold]c[/]", "c\x1b[2J"])
def test_user_text_in_an_error_is_one_plain_line(orders: Path, column: str):
    result = run("score", orders, "--customer", column)
    assert_one_line_error(result, "not found")
    assert "\x1b" not in result.stderr
    assert column.replace("\x1b", "\\x1b") in result.stderr or repr(column)[1:-1] in result.stderr


def test_no_usable_rows_gives_empty_output_and_a_warning(tmp_path: Path):
    path = tmp_path / "nulls.parquet"
    pq.write_table(
        pa.table(
            {
                "customer": pa.array([None, None], pa.int64()),
                "timestamp": pa.array([1, 2], pa.timestamp("s")),
                "amount": [1.0, 2.0],
            }
        ),
        path,
    )
    output = tmp_path / "out.parquet"
    result = run("score", path, "-o", output)
    assert result.exit_code == 0, result.output
    assert "warning: no usable rows" in result.stderr
    table = pq.read_table(output)
    assert table.num_rows == 0
    assert table.column_names[0] == "customer" and "segment" in table.column_names


def _corrupt(tmp_path: Path) -> Path:
    path = tmp_path / "corrupt.parquet"
    path.write_bytes(b"PAR1 this is not a parquet file PAR1")
    return path


def _rules(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("make_args", "fragments"),
    [
        (lambda d, o: [d / "missing.parquet"], ["input file not found"]),
        (lambda d, o: [_corrupt(d)], ["cannot read", "as Parquet"]),
        (lambda d, o: [o, "--customer", "client"], ["'client' not found", "'customer'"]),
        (lambda d, o: [o, "--amount", "timestamp"], ["amount column 'timestamp'", "timestamp"]),
        (lambda d, o: [o, "--bins", "12"], ["bins must be from 2 to 9"]),
        (lambda d, o: [o, "--as-of", "yesterday-ish"], ["cannot read as_of 'yesterday-ish'"]),
        (lambda d, o: [o, "--segments", _rules(d, "[[segment]\n")], ["not valid TOML"]),
        (
            lambda d, o: [o, "--segments", _rules(d, '[[segment]]\nname="x"\nR="7"\n')],
            ["outside the scores 1..5"],
        ),
        (
            lambda d, o: [o, "--segments", _rules(d, '[[segment]]\nname="x"\nQ=1\n')],
            ["unknown key(s) Q"],
        ),
        (lambda d, o: [o, "--recency-edges", "a,b"], ["--recency-edges"]),
        (lambda d, o: [o, "--recency-edges", "1,2"], ["2 edges make 3 scores"]),
    ],
)
def test_bad_input_is_one_line_exit_1_and_no_output(orders: Path, tmp_path, make_args, fragments):
    output = tmp_path / "out.parquet"
    args = make_args(tmp_path, orders)
    result = run("score", *args, "-o", output)
    assert_one_line_error(result, *fragments)
    assert not output.exists()


def test_infinite_amount_names_column_and_row(tmp_path: Path):
    path = tmp_path / "inf.csv"
    path.write_text("c,t,a\n1,2024-01-01,1.5\n2,2024-01-02,inf\n", encoding="utf-8")
    output = tmp_path / "out.parquet"
    result = run(
        "score", path, "-o", output, "--customer", "c", "--timestamp", "t", "--amount", "a"
    )
    assert_one_line_error(result, "amount column 'a'", "row 1")
    assert not output.exists()


def test_unknown_output_suffix_fails_before_reading(orders: Path, tmp_path: Path):
    result = run("score", orders, "-o", tmp_path / "out.xlsx")
    assert_one_line_error(result, "output format")


def test_entry_point_runs_as_a_real_process(orders: Path, tmp_path: Path):
    """The installed console script: real stderr, real exit codes."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    ok = subprocess.run(
        [sys.executable, "-m", "rfm_fast_cli", "score", str(orders), "-o", str(tmp_path / "s.csv")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "rfm_fast_cli", "score", str(tmp_path / "nope.csv")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == [f"error: input file not found: {tmp_path}/nope.csv"]


def test_segments_prints_summary_quality_and_writes_it(tmp_path):
    output = tmp_path / "summary.csv"
    result = run("segments", EXAMPLE, *EXAMPLE_ARGS, "-o", output)
    assert result.exit_code == 0, result.output
    assert "Champions" in result.output and "17.5%" in result.output
    assert "flag: About To Sleep: indistinguishable from Hibernating" in result.output
    assert "variance explained by the segments: recency 90%" in result.output
    summary = pa_csv.read_csv(output)
    assert summary.column("customers").to_pylist()[0] == 4135


def test_migrate_prints_matrix_and_writes_movers(tmp_path):
    movers, matrix = tmp_path / "movers.csv", tmp_path / "matrix.parquet"
    args = ["--as-of", "1998-01-01", "--as-of", "1998-07-01", "-o", matrix]
    args += ["--from", "Champions", "--to", "Loyal Customers", "--movers-output", movers]
    result = run("migrate", EXAMPLE, *EXAMPLE_ARGS, *args)
    assert result.exit_code == 0, result.output
    assert "1,557 customers went from Champions to Loyal Customers" in result.output
    assert pa_csv.read_csv(movers).num_rows == 1557
    assert pq.read_table(matrix).num_rows == 12 * 11  # 11 segments and "(new)", to 11


def test_migrate_needs_two_dates_and_both_segments():
    once = run("migrate", EXAMPLE, *EXAMPLE_ARGS, "--as-of", "1998-01-01")
    assert_one_line_error(once, "give --as-of twice")
    half = run("migrate", EXAMPLE, *EXAMPLE_ARGS, "--as-of", "1998-01-01", "--as-of", "1998-07-01",
               "--from", "Champions")  # fmt: skip
    assert_one_line_error(half, "--from and --to go together")
    unknown = run("migrate", EXAMPLE, *EXAMPLE_ARGS, "--as-of", "1998-01-01",
                  "--as-of", "1998-07-01", "--from", "Champs", "--to", "At Risk")  # fmt: skip
    assert_one_line_error(unknown, "unknown segment 'Champs'")


def test_clv_writes_predictions_and_prints_the_fits(tmp_path):
    output = tmp_path / "clv.parquet"
    result = run("clv", EXAMPLE, *EXAMPLE_ARGS, "--as-of", "1997-09-30", "-o", output)
    assert result.exit_code == 0, result.output
    assert "BG/NBD: r 0.2516" in result.output
    assert "expected purchases in the next 52 weeks" in " ".join(result.output.split())
    table = pq.read_table(output)
    assert table.num_rows == 23_570
    assert {"p_alive", "expected_purchases", "expected_spend", "clv"} <= set(table.column_names)


@pytest.mark.parametrize(
    ("model", "label"), [("mbgnbd", "MBG/NBD: r "), ("pareto-nbd", "Pareto/NBD: r ")]
)
def test_clv_fits_the_model_asked_for(model, label):
    result = run("clv", EXAMPLE, *EXAMPLE_ARGS, "--as-of", "1997-09-30", "--model", model)
    assert result.exit_code == 0, result.output
    assert label in result.output and "BG/NBD: r" not in result.output.replace("MBG/NBD", "")
    assert run("clv", EXAMPLE, *EXAMPLE_ARGS, "--model", "bgbb").exit_code != 0


def test_score_can_carry_p_alive(tmp_path):
    output = tmp_path / "scores.parquet"
    result = run("score", EXAMPLE, *EXAMPLE_ARGS, "--p-alive", "-o", output)
    assert result.exit_code == 0, result.output
    table = pq.read_table(output)
    assert table.column_names[-3:] == ["p_alive", "expected_purchases", "clv"]
    assert table.column("p_alive").null_count == 0


def test_clv_errors_are_one_line():
    assert_one_line_error(
        run("clv", EXAMPLE, *EXAMPLE_ARGS, "--unit", "fortnight"), "unit must be one of"
    )


def test_clv_unit_can_be_a_number_of_days():
    result = run("clv", EXAMPLE, *EXAMPLE_ARGS, "--as-of", "1997-09-30", "--unit", "14")
    assert result.exit_code == 0, result.output
    assert "expected purchases in the next 52 units of 14.0 days" in " ".join(result.output.split())


# ---------------------------------------------------------------------- files and signals
def test_output_equal_to_the_input_is_refused_before_any_work(orders: Path):
    before = orders.read_bytes()
    result = run("score", orders, "-o", orders)
    assert_one_line_error(result, "is the input file")
    assert orders.read_bytes() == before


@pytest.mark.parametrize("command", ["score", "report"])
def test_output_that_is_a_folder_is_refused(orders: Path, tmp_path: Path, command: str):
    folder = tmp_path / ("out.html" if command == "report" else "out.parquet")
    folder.mkdir()
    assert_one_line_error(run(command, orders, "-o", folder), "is a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["orders.parquet", folder.name]


def test_a_write_that_fails_says_why_and_leaves_nothing(orders: Path, tmp_path: Path, monkeypatch):
    def refuse(*args):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    result = run("score", orders, "-o", tmp_path / "out.csv")
    assert_one_line_error(result, "cannot write", "out.csv", "Permission denied")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["orders.parquet"]


def test_concurrent_writers_have_their_own_temporary_files(tmp_path: Path):
    from rfm_fast.core.io import write_atomically

    target = tmp_path / "report.html"
    names = []

    def inner(temporary: Path) -> None:
        names.append(temporary.name)
        write_atomically(target, lambda other: names.append(other.name))

    write_atomically(target, inner)
    assert len(set(names)) == 2 and all(n.startswith(".report.html.") for n in names)
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_an_interrupted_write_leaves_nothing(tmp_path: Path):
    from rfm_fast.core.io import write_atomically

    def interrupted(temporary: Path) -> None:
        temporary.write_text("partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomically(tmp_path / "out.csv", interrupted)
    assert list(tmp_path.iterdir()) == []


def _wait_for_sigterm_handler(pid: int, timeout: float = 60.0) -> None:
    """Until process ``pid`` catches SIGTERM (Linux: the SigCgt mask of /proc/PID/status):
    then ``rfm`` is past its imports and in its command."""
    status = Path(f"/proc/{pid}/status")
    if not status.exists():  # pragma: no cover - not Linux
        pytest.skip("needs /proc to see when the command catches SIGTERM")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        caught = next(line for line in status.read_text().splitlines() if line.startswith("SigCgt"))
        if int(caught.split()[1], 16) & (1 << (signal.SIGTERM - 1)):
            return
        time.sleep(0.01)
    raise AssertionError("the command never installed its SIGTERM handler")


@pytest.mark.parametrize("after", [0.0, 0.2])
def test_sigterm_is_one_line_exit_143_and_no_output(tmp_path: Path, after: float):
    """A real process killed as soon as it handles SIGTERM (still parsing its options, or at
    work) and while it works: the message, the code, and no file left."""
    n = 3_000_000
    big = tmp_path / "big.parquet"
    pq.write_table(
        pa.table(
            {
                "customer": pa.array(range(n)),
                "timestamp": pa.array([dt.datetime(2024, 1, 1)] * n, pa.timestamp("s")),
                "amount": pa.array([1.0] * n),
            }
        ),
        big,
        row_group_size=50_000,
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "rfm_fast_cli", "score", str(big), "-o", str(tmp_path / "o.csv")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for_sigterm_handler(process.pid)
    time.sleep(after)  # 0.2 s: at work, reading or loading Numba
    process.terminate()
    _, stderr = process.communicate(timeout=60)
    if process.returncode == 0:  # pragma: no cover - finished before the signal
        pytest.skip("the command finished before SIGTERM came")
    if process.returncode == -signal.SIGTERM:  # came after the output was in place
        assert pa_csv.read_csv(tmp_path / "o.csv").num_rows == n  # complete
        assert sorted(p.name for p in tmp_path.iterdir()) == ["big.parquet", "o.csv"]
        return
    assert process.returncode == 143, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines == ["error: terminated (SIGTERM); no output was written"], stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.parquet"]


RETAIL_SLICE = Path(__file__).resolve().parents[1] / "data" / "online_retail_slice.csv"
RETAIL_CAMPAIGN = RETAIL_SLICE.with_name("campaign_retail_slice.csv")
RETAIL_ARGS = ["--customer", "CustomerID", "--timestamp", "InvoiceDate"]
RETAIL_ARGS += ["--amount", "Quantity*UnitPrice", "--order", "InvoiceNo"]


def test_campaign_prints_the_measurement_and_writes_it(tmp_path):
    output = tmp_path / "lift.csv"
    result = run(
        "campaign",
        RETAIL_SLICE,
        "--campaign",
        RETAIL_CAMPAIGN,
        "--days",
        30,
        *RETAIL_ARGS,
        "-o",
        output,
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "campaign: 60 customers (30 treatment, 30 control)"
    assert lines[1] == "sent 2011-09-01 00:00:00; outcomes in the 30 days after the send"
    # piped: Markdown tables, nothing wrapped (a segment name stays on its line)
    assert any(line.startswith("|Potential Loyalists ") for line in lines)
    assert any(line.startswith("|All ") and "1.000" not in line for line in lines)
    assert lines[-1] == f"wrote the measurement of 10 rows to {output}"
    written = pa_csv.read_csv(output)
    expected = rfm_fast.campaign(
        str(RETAIL_SLICE),
        str(RETAIL_CAMPAIGN),
        days=30,
        customer="CustomerID",
        timestamp="InvoiceDate",
        amount="Quantity*UnitPrice",
        order="InvoiceNo",
    ).table
    assert written.column("segment").to_pylist() == expected.column("segment").to_pylist()
    assert written.column("cost").to_pylist() == pytest.approx(expected.column("cost").to_pylist())


@pytest.mark.parametrize(
    ("text", "extra", "fragments"),
    [
        (
            "customer,group,sent_at\n1,treatment,2024-01-01\n2,holdout,2024-01-01\n",
            [],
            ["'treatment' or 'control'", "found 'holdout' (1 row)"],
        ),
        (
            "customer,grp,sent_at\n1,treatment,2024-01-01\n",
            [],
            ["no column 'group'; did you mean 'grp'?"],
        ),
        (
            "customer,group,sent_at\n1,treatment,2024-01-01\n1,control,2024-01-01\n",
            [],
            ["more than once"],
        ),
        (
            "customer,group,sent_at\n1,treatment,2024-01-01\n2,control,\n",
            [],
            ["1 null send times (the first in row 2)"],
        ),
        (
            "customer,group,sent_at\n1,treatment,2024-01-01\n2,control,2024-01-01\n",
            ["--days", "0"],
            ["days must be a positive whole number"],
        ),
    ],
)
def test_campaign_errors_are_one_line(orders, tmp_path, text, extra, fragments):
    sent = tmp_path / "sent.csv"
    sent.write_text(text, encoding="utf-8")
    days = extra or ["--days", "7"]
    result = run("campaign", orders, "--campaign", sent, *days)
    assert_one_line_error(result, *fragments)


def test_campaign_needs_a_readable_campaign_file(orders, tmp_path):
    result = run("campaign", orders, "--campaign", tmp_path / "nope.csv", "--days", "7")
    assert_one_line_error(result, "nope.csv")


def test_segments_list_shows_every_map_without_input():
    result = run("segments", "--list")
    assert result.exit_code == 0, result.output
    for name in rfm_fast.BUILTIN_MAPS:
        assert f"{name}: " in result.output
    assert "High-spending New" in result.output and "recency 90-180" in result.output


@pytest.mark.parametrize("name", list(rfm_fast.BUILTIN_MAPS))
def test_segments_list_prints_a_map_as_a_rules_file_that_reads_back(tmp_path, name):
    result = run("segments", "--list", "--segments", name)
    assert result.exit_code == 0, result.output
    path = tmp_path / "map.toml"
    path.write_text(result.stdout)
    assert rfm_fast.load_rules(path, 5) == rfm_fast.BUILTIN_MAPS[name]


def test_segments_needs_input_or_list():
    result = run("segments")
    assert result.exit_code == 2
    assert "--list" in result.output


def test_segments_prints_playbook_and_lifecycle_tables():
    result = run("segments", EXAMPLE, *EXAMPLE_ARGS, "--segments", "compact")
    assert result.exit_code == 0, result.output
    assert "Playbook (priority 1 = act first)" in result.output
    assert "Customers per segment and lifecycle stage" in result.output
    assert "Dormant" in result.output and "VIP" in result.output


def test_score_playbook_adds_action_and_priority(tmp_path):
    output = tmp_path / "scores.parquet"
    result = run("score", EXAMPLE, *EXAMPLE_ARGS, "--playbook", "-o", output)
    assert result.exit_code == 0, result.output
    names = pq.read_table(output).column_names
    assert names[-3:] == ["segment", "action", "priority"]
    plain = tmp_path / "plain.parquet"
    assert run("score", EXAMPLE, *EXAMPLE_ARGS, "-o", plain).exit_code == 0
    assert pq.read_table(plain).column_names[-1] == "segment"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('[[segment]]\nname="x"\nrecency="0-30"\n', "write recency_min and/or recency_max"),
        ('[[segment]]\nname="x"\nrecency_min=9\nrecency_max=3\n', "above recency_max = 3"),
        ('[[segment]]\nname="x"\nR=5\npriority="high"\n', "priority must be a whole number"),
    ],
)
def test_bad_raw_metric_rules_are_one_line(tmp_path, text, fragment):
    result = run("score", EXAMPLE, *EXAMPLE_ARGS, "--segments", _rules(tmp_path, text))
    assert_one_line_error(result, fragment)


def test_unknown_map_name_is_one_line():
    result = run("score", EXAMPLE, *EXAMPLE_ARGS, "--segments", "valeu")
    assert_one_line_error(result, "not found: valeu", "default, value, compact, lifecycle")


def test_clv_auto_prints_the_comparison_and_the_churn_bands(tmp_path):
    output = tmp_path / "clv.parquet"
    result = run(
        "clv", EXAMPLE, *EXAMPLE_ARGS, "--as-of", "1998-06-30", "--model", "auto",
        "--calibration-end", "1997-09-30", "--churn-days", "90", "-o", output,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for label in ("BG/NBD", "MBG/NBD", "Pareto/NBD", "BIC", "MAE"):
        assert label in result.output
    assert result.output.count(" *\n") == 1
    assert "churn risk (no purchase in the window): low" in result.output
    assert "Per segment, the next 90 days (revenue at risk: if the model is right)" in (
        result.output
    )
    for header in ("high risk", "expected revenue", "at risk", "Champions", "Hibernating"):
        assert header in result.output
    table = pq.read_table(output)
    assert {"p_no_purchase", "risk", "next_purchase"} <= set(table.column_names)
    default_split = run("clv", EXAMPLE, *EXAMPLE_ARGS, "--model", "auto")
    assert default_split.exit_code == 0, default_split.output
    assert "models on the holdout after 1997-12-31" in default_split.stdout


def test_a_guessed_delimiter_is_noted_once_when_not_a_comma(tmp_path):
    semicolons = tmp_path / "orders.csv"
    semicolons.write_text(
        "customer;timestamp;amount\n1;2024-01-01;5,5\n2;2024-01-03;7\n1;2024-01-05;2\n"
    )
    result = run("score", semicolons, "--decimal", ",")
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert notes == [
        f"note: {semicolons}: delimiter ';' guessed (give --delimiter to choose another)"
    ]
    commas = tmp_path / "commas.csv"
    commas.write_text("customer,timestamp,amount\n1,2024-01-01,5\n2,2024-01-03,7\n")
    quiet = run("score", commas)
    assert quiet.exit_code == 0 and "note:" not in quiet.stderr


def test_piped_output_is_plain_text_that_does_not_wrap(tmp_path, monkeypatch):
    """Issue 27, item 7: where the output is not a terminal, tables are Markdown tables and no
    line wraps (a long segment name or phrase stays whole), whatever the terminal's width."""
    monkeypatch.delenv("COLUMNS", raising=False)
    rules = tmp_path / "rules.toml"
    long_name = "Customers who bought recently and often, and should be thanked personally"
    rules.write_text(f'[[segment]]\nname = "{long_name}"\nR = "1-5"\n')
    result = run("score", RETAIL_SLICE, *RETAIL_ARGS, "--segments", rules)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(line.startswith(f"| {long_name} ") for line in lines)
    assert "| segment " in result.stdout and "┃" not in result.stdout
    assert all(line == line.rstrip() for line in lines)
