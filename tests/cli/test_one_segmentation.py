"""One segmentation everywhere (issue 27, item 1): every command that shows segments (score,
segments, report, export, migrate, clv, campaign, state) run on one line-level file with the
same reading and scoring options (``--order``: invoices, not lines) gives every customer the
same segment, or, where a command shows only the sizes of the segments, the same sizes."""

from __future__ import annotations

import collections
import html
import re
from pathlib import Path

import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from helpers import REPOSITORY
from rfm_fast_cli.main import app
from typer.testing import CliRunner

DATA = REPOSITORY / "tests" / "data"
LINES = DATA / "online_retail_slice.csv"  # 4,888 invoice lines of 60 customers
CAMPAIGN = DATA / "campaign_retail_slice.csv"  # the 60 customers, sent on 2011-09-01
AS_OF, SENT = "2011-12-10", "2011-09-01"
READING = ["--customer", "CustomerID", "--timestamp", "InvoiceDate"]
READING += ["--amount", "Quantity*UnitPrice", "--order", "InvoiceNo"]
runner = CliRunner()


def run(*args: object) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.stdout


def sizes(segments: dict[int, str]) -> dict[str, int]:
    return dict(collections.Counter(segments.values()))


def by_customer(table, customer: str = "CustomerID") -> dict[int, str]:
    customers, segments = table.column(customer), table.column("segment")
    return dict(zip(customers.to_pylist(), segments.to_pylist(), strict=True))


def scored(tmp_path: Path, as_of: str, *options: str) -> dict[int, str]:
    out = tmp_path / f"scores_{as_of}_{len(options)}.parquet"
    run("score", LINES, *READING, *options, "--as-of", as_of, "-o", out)
    return by_customer(pq.read_table(out))


CELL = re.compile(r"<t[dh][^>]*>.*?</t[dh]>", re.S)


def html_table(page: str, table_id: str) -> list[dict[str, str]]:
    """The rows of the table ``table_id`` of a report, by header."""
    table = re.search(rf"<table id=[\"']{table_id}[\"']>(.*?)</table>", page, re.S).group(1)
    rows = [
        [html.unescape(re.sub("<[^>]+>", "", cell)) for cell in CELL.findall(row)]
        for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)
    ]
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def printed_table(output: str) -> dict[str, int]:
    """segment -> customers of a table the command printed (first two columns)."""
    found = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in re.split("[│|]", line.strip().strip("│|"))]
        if len(cells) >= 2 and cells[1].replace(",", "").isdigit():
            found[cells[0]] = int(cells[1].replace(",", ""))
    return found


@pytest.fixture(scope="module")
def expected(tmp_path_factory) -> dict[str, dict[int, str]]:
    """rfm score's segments of every customer, at the two dates."""
    tmp_path = tmp_path_factory.mktemp("score")
    return {as_of: scored(tmp_path, as_of) for as_of in (SENT, AS_OF)}


def test_the_order_column_changes_segments_of_this_file(expected, tmp_path: Path):
    """Lines are not orders here: without --order the segments differ, so each comparison
    below would fail for a command that dropped --order."""
    lines = scored(tmp_path, AS_OF, "--order", "StockCode")  # (stock codes: about a line each)
    assert sizes(lines) != sizes(expected[AS_OF])


def test_export_and_state_give_each_customer_rfm_score_s_segment(expected, tmp_path: Path):
    listed = tmp_path / "list.csv"
    run("export", LINES, *READING, "--as-of", AS_OF, "-o", listed)
    assert by_customer(pa_csv.read_csv(listed)) == expected[AS_OF]

    state, scores = tmp_path / "orders.rfmstate", tmp_path / "state.parquet"
    run("state", "init", LINES, *READING, "-o", state, "--no-progress")
    run("state", "score", state, "--as-of", AS_OF, "-o", scores)
    assert by_customer(pq.read_table(scores)) == expected[AS_OF]


def test_segments_report_and_migrate_show_rfm_score_s_sizes(expected, tmp_path: Path):
    summary = tmp_path / "summary.csv"
    run("segments", LINES, *READING, "--as-of", AS_OF, "-o", summary)
    table = pa_csv.read_csv(summary)
    names, counts = table.column("segment").to_pylist(), table.column("customers").to_pylist()
    shown = dict(zip(names, counts, strict=True))
    assert {k: v for k, v in shown.items() if v} == sizes(expected[AS_OF])

    page = tmp_path / "report.html"
    run("report", LINES, *READING, "--as-of", AS_OF, "-o", page)
    rows = html_table(page.read_text(encoding="utf-8"), "segment-table")
    shown = {row["segment"]: int(row["customers"].replace(",", "")) for row in rows}
    assert {k: v for k, v in shown.items() if v} == sizes(expected[AS_OF])

    matrix = tmp_path / "matrix.csv"
    run("migrate", LINES, *READING, "--as-of", SENT, "--as-of", AS_OF, "-o", matrix)
    moves = pa_csv.read_csv(matrix).to_pylist()
    for side, as_of in (("segment_before", SENT), ("segment_after", AS_OF)):
        counted = collections.Counter()
        for move in moves:
            counted[move[side]] += move["customers"]
        counted.pop("(new)", None)
        assert {k: v for k, v in counted.items() if v} == sizes(expected[as_of]), side


def test_clv_shows_rfm_score_s_sizes(expected):
    printed = run(
        "clv", LINES, *READING, "--as-of", AS_OF, "--churn-days", "90", "--model", "bgnbd"
    )
    assert printed_table(printed) == sizes(expected[AS_OF])


def test_campaign_segments_at_the_send_are_rfm_score_s(expected, tmp_path: Path):
    measured = tmp_path / "lift.csv"
    run("campaign", LINES, *READING, "--campaign", CAMPAIGN, "--days", "30", "-o", measured)
    rows = [row for row in pa_csv.read_csv(measured).to_pylist() if row["segment"] != "All"]
    shown = {row["segment"]: row["treatment"] + row["control"] for row in rows}
    sent = pa_csv.read_csv(CAMPAIGN).column("customer").to_pylist()
    at_send = collections.Counter(expected[SENT].get(c, "New/unknown") for c in sent)
    assert {k: v for k, v in shown.items() if v} == dict(at_send)
