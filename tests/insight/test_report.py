"""The HTML report: self-contained, and rendered by a real headless Chromium without errors.

The browser test needs Chromium from the OS packages (``/usr/bin/chromium``; CI installs it)
and Playwright's Python driver (in the test extras). Locally it is skipped without them; CI
sets ``RFM_REQUIRE_ENGINES=1`` and then fails instead. ``RFM_REPORT_SCREENSHOT=path`` also
saves a full-page screenshot (docs/report.png is made so).
"""

from __future__ import annotations

import os
import re
import shutil

import pyarrow as pa
import pytest
from helpers import REPOSITORY, require
from rfm_fast_cli.main import app
from typer.testing import CliRunner

import rfm_fast
from rfm_fast.insight.report import build_report, write_report

COLUMNS = rfm_fast.datasets.EXAMPLE_COLUMNS
CHARTS = {"segment-sizes", "distributions", "heatmap-rf", "heatmap-rm"}
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def migration() -> rfm_fast.Migration:
    data = rfm_fast.datasets.load_example()
    return rfm_fast.migrate(data, as_of=("1998-01-01", "1998-07-01"), **COLUMNS)


def test_report_is_self_contained(migration):
    document = build_report(migration.after, migration=migration, title="CDNOW <test>")
    assert document.startswith("<!DOCTYPE html>")
    assert "CDNOW &lt;test&gt;" in document  # escaped
    ids = set(re.findall(r'<figure class="chart" id="([^"]+)"', document))
    assert ids == CHARTS | {"migration"}
    # nothing to fetch: no scripts, no links, no external images or fonts
    for pattern in ("<script", "<link", "<img", "@import", "url(http", 'href="http'):
        assert pattern not in document, pattern
    assert "Champions" in document and "indistinguishable from Hibernating" in document
    assert "<h2>Playbook</h2>" in document and "<h2>Lifecycle stages</h2>" in document
    assert "Personalised win-back offer" in document  # At Risk's action
    assert "R 5, F 4-5: bought most recently, buy often" in document


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
    path = write_report(result, tmp_path / "empty.html")
    document = path.read_text()
    assert "0 customers" in document and "<figure" not in document


def test_cli_report(tmp_path):
    runner = CliRunner()
    output = tmp_path / "report.html"
    args = ["report", str(rfm_fast.datasets.example_path()), "-o", str(output)]
    args += ["--customer", "customer_id", "--timestamp", "date", "--amount", "dollar_value"]
    args += ["--as-of", "1998-01-01", "--as-of", "1998-07-01"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert 'id="migration"' in output.read_text()
    wrong = runner.invoke(app, [*args[:3], str(tmp_path / "report.pdf"), *args[4:]])
    assert wrong.exit_code == 1 and "name the output *.html" in wrong.stderr


def test_report_renders_in_headless_chromium(migration, tmp_path):
    if os.environ.get("RFM_REQUIRE_ENGINES") != "1" and shutil.which("chromium") is None:
        pytest.skip("needs chromium (apt-get install chromium)")
    sync_api = require("playwright.sync_api", program="chromium")
    path = write_report(migration.after, tmp_path / "report.html", migration=migration)
    problems, requests = [], []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS
        )
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("request", lambda request: requests.append(request.url))
        page.goto(path.as_uri(), wait_until="load")
        charts = page.evaluate(
            """[...document.querySelectorAll('figure.chart')].map(f => {
                const svg = f.querySelector('svg');
                const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
                return [f.id, box.width, box.height, svg ? svg.querySelectorAll('path').length : 0];
            })"""
        )
        title = page.title()
        screenshot = os.environ.get("RFM_REPORT_SCREENSHOT")
        if screenshot:
            page.screenshot(path=screenshot, full_page=True)
        browser.close()
    assert problems == []
    assert requests == [path.as_uri()]  # the file itself, nothing else
    assert title == "RFM report"
    assert {c[0] for c in charts} == CHARTS | {"migration"}
    for chart_id, width, height, paths in charts:
        assert width > 300 and height > 150, (chart_id, width, height)
        assert paths > 20, chart_id  # bars, cells and text drawn as paths


def test_screenshot_in_docs_exists():
    assert (REPOSITORY / "docs" / "report.png").stat().st_size > 50_000


def test_report_with_lifetime_value_section():
    from rfm_fast import clv

    data = rfm_fast.datasets.load_example()
    result = rfm_fast.score(data, **COLUMNS)
    predictions = clv.analyze(data, **COLUMNS)
    document = build_report(result, clv=predictions)
    assert 'id="p-alive"' in document and "Lifetime value" in document
    assert "mean p_alive" in document
