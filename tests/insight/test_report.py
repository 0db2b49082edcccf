"""The HTML report: self-contained, in the order a marketer reads it, and rendered by a real
headless Chromium without errors.

The browser test needs Chromium from the OS packages (``/usr/bin/chromium``; CI installs it)
and Playwright's Python driver (in the test extras). Locally it is skipped without them; CI
sets ``RFM_REQUIRE_ENGINES=1`` and then fails instead. ``RFM_REPORT_SCREENSHOT=path`` also
saves a full-page screenshot (docs/report.png is made so).
"""

from __future__ import annotations

import datetime as dt
import html
import os
import re
import shutil

import pyarrow as pa
import pytest
from helpers import REPOSITORY, require
from rfm_fast_cli.main import app
from typer.testing import CliRunner

import rfm_fast
from rfm_fast.insight.report import (
    build_report,
    data_notes,
    movement,
    parse_currency,
    score_ranges,
    write_report,
)

COLUMNS = rfm_fast.datasets.EXAMPLE_COLUMNS
CHARTS = {"segment-sizes", "distributions", "heatmap-rf", "heatmap-rm"}
SECTIONS = ["headline", "segments", "movement", "charts", "detail"]
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HOSTILE = "<script>alert('x')</script> & $big$ spenders"


@pytest.fixture(scope="module")
def migration() -> rfm_fast.Migration:
    data = rfm_fast.datasets.load_example()
    return rfm_fast.migrate(data, as_of=("1998-01-01", "1998-07-01"), **COLUMNS)


@pytest.fixture(scope="module")
def document(migration) -> str:
    return build_report(migration.after, migration=migration, title="CDNOW <test>", currency="USD")


def _dropped_rows_input(customers: int = 40, missing: int = 20) -> pa.Table:
    """Orders of ``customers`` customers over a year, then ``missing`` rows without one."""
    day = dt.date(2024, 1, 1)
    ids = [k % customers for k in range(3 * customers)] + [None] * missing
    return pa.table(
        {
            "customer": pa.array(ids, pa.int64()),
            "timestamp": pa.array(
                [day + dt.timedelta(days=(7 * k) % 360) for k in range(len(ids))], pa.date32()
            ),
            "amount": pa.array([10.0 + k % 17 for k in range(len(ids))]),
        }
    )


def _section_ids(document: str) -> list[str]:
    return re.findall(r"<section id='([^']+)'>", document)


def test_report_is_self_contained(document):
    assert document.startswith("<!DOCTYPE html>")
    assert "CDNOW &lt;test&gt;" in document  # escaped
    ids = set(re.findall(r'<figure class="chart" id="([^"]+)"', document))
    assert ids == CHARTS | {"migration"}
    # nothing to fetch: no scripts, no links, no external images or fonts
    for pattern in ("<script", "<link", "<img", "@import", "url(http", 'href="http'):
        assert pattern not in document, pattern
    assert "Champions" in document and "indistinguishable from Hibernating" in document
    assert "Personalised win-back offer" in document  # At Risk's action
    assert "R 5, F 4-5: bought most recently, buy often" in document


def test_sections_in_the_order_a_marketer_reads_them(document):
    assert _section_ids(document) == SECTIONS
    headline = document[
        document.index("<section id='headline'>") : document.index("<section id='segments'>")
    ]
    # customers, revenue with its currency, as_of; the 3 biggest segments by revenue with
    # their actions; the segments of the first priority; the movement since the first date
    assert ">23,570<" in headline and "$2,500,315.63" in headline and "1998-07-01" in headline
    biggest = re.findall(r"<tr><td>([^<]+)</td>", headline)
    assert biggest[:3] == ["Champions", "Loyal Customers", "Hibernating"]
    assert "Reward them: loyalty perks" in headline
    assert "<b>Act first</b> (priority 1): <b>At Risk</b>" in headline
    assert "id='movement-summary'" in headline and "moved up" in headline
    assert "Champions &rarr; Loyal Customers" in headline
    assert "id='data-warning'" not in document  # CDNOW: nothing left out, as_of near the data
    # analyst detail is last: score ranges with units, quality in plain words, run statistics
    detail = document[document.index("<section id='detail'>") :]
    assert "0 to 141 days" in detail and "5 or more" in detail and "over $133.95" in detail
    assert "standard deviation" not in document
    assert "How varied" in detail and "id='run-statistics'" in detail
    assert "no customer id: 0" in detail


def test_movement_counts_every_customer_once(migration):
    counts = movement(migration)
    parts = ("stayed", "up", "down", "across", "new")
    assert sum(counts[k] for k in parts) == counts["customers"] == 23_570
    assert counts["flows"][0] == ("Champions", "Loyal Customers", 1557)
    assert [n for _, _, n in counts["flows"]] == sorted(
        (n for _, _, n in counts["flows"]), reverse=True
    )


def test_currency_in_tables_and_charts(migration):
    document = build_report(migration.after, currency="gbp")
    table = document[document.index('<table id="segment-table">') :]
    table = table[: table.index("</table>")]
    assert "£1,295,278.08" in table  # Champions' revenue, as_of 1998-07-01
    assert "over £133.95" in document  # score ranges
    assert "mean monetary in GBP" in document and "M: spend (GBP)" in document
    swiss = build_report(migration.after, currency="CHF")
    assert "CHF 1,295,278.08" in swiss
    plain = build_report(migration.after)
    assert "1,295,278.08" in plain and "give it with --currency" in plain


@pytest.mark.parametrize(
    ("given", "expected"),
    [("GBP", ("GBP", "£")), ("eur", ("EUR", "€")), ("XYZ", ("XYZ", None)), ("R$", ("R$", "R$"))],
)
def test_parse_currency(given, expected):
    currency = parse_currency(given)
    assert (currency.name, currency.symbol) == expected


@pytest.mark.parametrize("given", ["POUND", "GB", "12", "G B", "£££ ", "\n", "A1C"])
def test_wrong_currency_is_one_clear_error(given, tmp_path):
    result = rfm_fast.score(rfm_fast.datasets.load_example(), **COLUMNS)
    with pytest.raises(rfm_fast.RFMError, match="currency must be a 3-letter ISO code"):
        write_report(result, tmp_path / "report.html", currency=given)
    assert not (tmp_path / "report.html").exists()


def test_dropped_rows_are_a_visible_note():
    data = _dropped_rows_input()
    with pytest.warns(rfm_fast.RFMDataWarning, match="without customer"):
        result = rfm_fast.score(data, customer="customer", timestamp="timestamp", amount="amount")
    notes = data_notes(result)
    assert notes[0].startswith('20 of 140 rows (14%) have no customer id (column "customer"')
    document = build_report(result, currency="EUR")
    box = document[document.index("id='data-warning'") :]
    box = box[: box.index("</div>")]
    assert "20 of 140 rows (14%) have no customer id" in box and "left out" in box
    assert document.index("id='data-warning'") < document.index("<section id='segments'>")
    # a few rows without a customer (under 5%): no note
    few = _dropped_rows_input(missing=3)
    result = rfm_fast.score(few, customer="customer", timestamp="timestamp", amount="amount")
    assert data_notes(result) == []


def test_data_warnings_of_the_run_are_in_the_note():
    with pytest.warns(rfm_fast.RFMDataWarning):
        result = rfm_fast.score(rfm_fast.datasets.load_example(), **COLUMNS, as_of="2005-01-01")
    notes = data_notes(result)
    assert any("days after the last purchase" in n for n in notes)
    assert any("segments defined by recent purchases" in n for n in notes)
    assert "id='data-warning'" in build_report(result)


def test_segments_in_a_stable_order_everywhere(migration):
    from rfm_fast import clv

    result = migration.after
    order = [name for name, _ in result.segment_counts() if name != "Other"]
    document = build_report(result, clv=clv.analyze(rfm_fast.datasets.load_example(), **COLUMNS))
    assert _section_ids(document) == ["headline", "segments", "charts", "lifetime-value", "detail"]

    def names(table_id: str) -> list[str]:
        table = document[document.index(f'<table id="{table_id}">') :]
        found = re.findall(r"<tr><td>([^<]+)</td>", table[: table.index("</table>")])
        return [html.unescape(name) for name in found]

    assert names("segment-table") == order
    assert names("quality") == order
    assert names("clv") == [n for n, c in result.segment_counts() if c]  # rule order
    # the bars of the sizes chart: matplotlib writes each label's text in a comment
    chart = document[document.index('id="segment-sizes"') :]
    chart = chart[: chart.index("</figure>")]
    labels = [t for t in re.findall(r"<!-- (.+?) -->", chart) if t in order]
    assert labels == order


def test_hostile_names_and_currency_are_escaped():
    rules = [
        rfm_fast.SegmentRule(HOSTILE, {"R": (4, 5)}, action="<img src=x onerror=alert(1)>"),
        rfm_fast.SegmentRule("Rest", {"R": (1, 3)}, description="<b>bold</b>"),
    ]
    data = rfm_fast.datasets.load_example()
    result = rfm_fast.score(data, **COLUMNS, segments=rules)
    document = build_report(result, currency="<$>", title="<i>t</i>")
    assert "<script>" not in document and "<img" not in document and "<b>bold" not in document
    assert "<i>t</i>" not in document
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; $big$ spenders" in document
    assert "&lt;img src=x onerror=alert(1)&gt;" in document
    assert "&lt;$&gt;" in document  # the currency symbol, escaped
    assert "<$>" not in document


def test_report_without_migration_and_without_customers(tmp_path):
    empty = pa.table(
        {
            "c": pa.array([], pa.int64()),
            "t": pa.array([], pa.date32()),
            "a": pa.array([], pa.float64()),
        }
    )
    with pytest.warns(rfm_fast.RFMWarning):
        result = rfm_fast.score(empty, customer="c", timestamp="t", amount="a")
    path = write_report(result, tmp_path / "empty.html", currency="GBP")
    document = path.read_text()
    assert "0 customers" in document and "<figure" not in document
    assert "No customers were scored." in document
    assert _section_ids(document) == ["headline", "segments", "detail"]


def test_score_ranges_name_empty_scores():
    result = rfm_fast.score(rfm_fast.datasets.load_example(), **COLUMNS)
    ranges = score_ranges(result).to_pylist()
    assert [r["score"] for r in ranges] == [5, 4, 3, 2, 1]
    assert ranges[3]["frequency"] == "no customer"  # F 2: every repeat buyer has F 3 or more
    assert ranges[4]["monetary"] == "up to 15.36"


def test_cli_report(tmp_path):
    runner = CliRunner()
    output = tmp_path / "report.html"
    args = ["report", str(rfm_fast.datasets.example_path()), "-o", str(output)]
    args += ["--customer", "customer_id", "--timestamp", "date", "--amount", "dollar_value"]
    args += ["--as-of", "1998-01-01", "--as-of", "1998-07-01"]
    result = runner.invoke(app, [*args, "--currency", "USD"])
    assert result.exit_code == 0, result.output
    document = output.read_text()
    assert 'id="migration"' in document and "$1,295,278.08" in document
    wrong = runner.invoke(app, [*args[:3], str(tmp_path / "report.pdf"), *args[4:]])
    assert wrong.exit_code == 1 and "name the output *.html" in wrong.stderr
    output.unlink()
    currency = runner.invoke(app, [*args, "--currency", "dollars"])
    assert currency.exit_code == 1 and not output.exists()
    assert currency.stderr.startswith("error: currency must be a 3-letter ISO code")
    assert len(currency.stderr.strip().splitlines()) == 1


def _render(sync_api, pages: list, screenshot: str | None):
    """Open each report in one headless Chromium: (console problems, requests, facts per page)."""
    problems, requests, facts = [], [], []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS
        )
        for k, path in enumerate(pages):
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("request", lambda request: requests.append(request.url))
            page.goto(path.as_uri(), wait_until="load")
            facts.append(
                page.evaluate(
                    """() => ({
                    title: document.title,
                    charts: [...document.querySelectorAll('figure.chart')].map(f => {
                        const svg = f.querySelector('svg');
                        const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
                        return [f.id, box.width, box.height,
                                svg ? svg.querySelectorAll('path').length : 0];
                    }),
                    sections: [...document.querySelectorAll('section')].map(s => {
                        const box = s.getBoundingClientRect();
                        return [s.id, box.top + window.scrollY, box.height];
                    }),
                    warning: (() => {
                        const w = document.getElementById('data-warning');
                        if (!w) return null;
                        const box = w.getBoundingClientRect();
                        return [box.top + window.scrollY, box.width, box.height,
                                getComputedStyle(w).backgroundColor, w.innerText];
                    })(),
                    fontSize: getComputedStyle(document.querySelector('.figure .value')).fontSize,
                })"""
                )
            )
            if screenshot and k == 0:
                page.screenshot(path=screenshot, full_page=True)
            page.close()
        browser.close()
    return problems, requests, facts


def test_report_renders_in_headless_chromium(migration, tmp_path):
    if os.environ.get("RFM_REQUIRE_ENGINES") != "1" and shutil.which("chromium") is None:
        pytest.skip("needs chromium (apt-get install chromium)")
    sync_api = require("playwright.sync_api", program="chromium")
    main = write_report(
        migration.after, tmp_path / "report.html", migration=migration, currency="USD"
    )
    with pytest.warns(rfm_fast.RFMDataWarning):
        dropped = rfm_fast.score(
            _dropped_rows_input(), customer="customer", timestamp="timestamp", amount="amount"
        )
    noted = write_report(dropped, tmp_path / "dropped.html", currency="GBP")
    problems, requests, (facts, noted_facts) = _render(
        sync_api, [main, noted], os.environ.get("RFM_REPORT_SCREENSHOT")
    )
    assert problems == []
    assert requests == [main.as_uri(), noted.as_uri()]  # the files themselves, nothing else
    assert facts["title"] == "RFM report"
    # every section is drawn, one below the other, in the reading order
    assert [s[0] for s in facts["sections"]] == SECTIONS
    tops = [s[1] for s in facts["sections"]]
    assert tops == sorted(tops) and all(s[2] > 100 for s in facts["sections"])
    assert facts["fontSize"] == "21.6px"  # the CSS applied: headline figures at 1.35rem
    assert facts["warning"] is None
    assert {c[0] for c in facts["charts"]} == CHARTS | {"migration"}
    for chart_id, width, height, paths in facts["charts"]:
        assert width > 300 and height > 150, (chart_id, width, height)
        assert paths > 20, chart_id  # bars, cells and text drawn as paths
    # the warning box is visible near the top, above the segments
    top, width, height, color, text = noted_facts["warning"]
    segments_top = dict((s[0], s[1]) for s in noted_facts["sections"])["segments"]
    assert top < segments_top and width > 500 and height > 40
    assert color == "rgb(255, 244, 229)" and "20 of 140 rows (14%) have no customer id" in text


def test_screenshot_in_docs_exists():
    assert (REPOSITORY / "docs" / "report.png").stat().st_size > 50_000
