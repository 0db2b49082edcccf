"""A self-contained HTML report of a scored result: one file that needs no network to view.

Written for the marketer who reads it first and the analyst who checks it after. Sections, in
order: a headline (customers, revenue, the biggest segments and what to do with them, the
movement since the first date when a :class:`rfm_fast.Migration` is given, and a warning box
when rows were left out or the data look wrong); the segments (definition, action, priority,
customers, revenue); the movement between the two dates; the charts; lifetime value (with
``clv``); and the analyst detail (score ranges in days, orders and money, segment quality in
plain words, the run statistics).

Charts are drawn with matplotlib (``pip install 'rfm_fast[report]'``) and embedded as inline
SVG, so the file has no scripts, no fonts and no images to fetch. Everything the user wrote
(segment names, actions, column names, the currency, the title) is escaped.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

import rfm_fast
from rfm_fast.core.io import check_output_path, write_atomically
from rfm_fast.core.scoring import RFMResult
from rfm_fast.core.segments import OTHER, playbook, recent_segments_long_silent
from rfm_fast.errors import RFMError
from rfm_fast.insight.migration import NEW, Migration
from rfm_fast.insight.tables import grid, lifecycle_table, segment_quality, summarize
from rfm_fast.optional import require

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1100px; color: #1f2933; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.25rem; margin-top: 2.4rem; border-bottom: 1px solid #d9e2ec; }
h3 { font-size: 1.0rem; margin-top: 1.6rem; }
p.lead { color: #52606d; margin-top: 0; }
p.note { color: #52606d; font-size: 0.85rem; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.6rem 0; }
th, td { padding: 0.25rem 0.55rem; border-bottom: 1px solid #e4e7eb; text-align: right;
         vertical-align: top; }
th:first-child, td:first-child { text-align: left; }
th.text, td.text { text-align: left; }
#segment-table { font-size: 0.8rem; }
td.text { min-width: 11rem; max-width: 22rem; }
th { background: #f5f7fa; }
figure.chart { margin: 0.8rem 0; }
figure.chart svg { max-width: 100%; height: auto; }
figcaption { font-size: 0.8rem; color: #52606d; }
.flag { color: #b44d12; font-weight: 600; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; }
.figures { display: flex; flex-wrap: wrap; gap: 0.8rem; margin: 1rem 0; }
.figure { background: #f5f7fa; border-radius: 6px; padding: 0.6rem 1rem; min-width: 9rem; }
.figure .value { font-size: 1.35rem; font-weight: 600; }
.figure .label { font-size: 0.8rem; color: #52606d; }
.warning { background: #fff4e5; border-left: 5px solid #d97706; padding: 0.6rem 1rem;
           margin: 1rem 0; }
.warning h3 { margin: 0 0 0.3rem 0; color: #8a4b08; }
.warning ul { margin: 0.2rem 0; padding-left: 1.2rem; }
"""

DROPPED_NOTE_SHARE = 0.05
"""The share of rows without a customer or a timestamp from which the report's headline warns
(the run itself warns from 10%: ``rfm_fast.core.pipeline.UNUSABLE_ROWS_WARNING``)."""

CURRENCY_SYMBOLS = {
    "USD": "$",
    "EUR": "€",
    "GBP": "£",
    "JPY": "¥",
    "CNY": "CN¥",
    "INR": "₹",
    "KRW": "₩",
    "BRL": "R$",
    "AUD": "A$",
    "CAD": "CA$",
    "NZD": "NZ$",
    "HKD": "HK$",
    "MXN": "MX$",
    "ILS": "₪",
    "VND": "₫",
    "PHP": "₱",
    "NGN": "₦",
}
"""ISO 4217 codes that the report writes as a symbol (``£1,234.56``); other codes are written
before the amount (``CHF 1,234.56``)."""


@dataclass(frozen=True)
class Currency:
    """The currency of the amounts, as the report writes it: see :func:`parse_currency`.

    Attributes
    ----------
    name : str
        An ISO 4217 code in capitals (``"GBP"``), or the symbol as given (``"R$"``).
    symbol : str or None
        The symbol written before amounts (``"£"``); None: the code is written, then a space.
    """

    name: str
    symbol: str | None

    def format(self, value: float, digits: int = 2) -> str:
        """``value`` as money, e.g. ``"£1,234.56"``, ``"-£3.00"`` or ``"CHF 1,234.56"``
        (plain text: escape it for HTML). NaN is ``"-"``.

        Examples
        --------
        >>> from rfm_fast.insight.report import parse_currency
        >>> parse_currency("gbp").format(-1234.5)
        '-£1,234.50'
        >>> parse_currency("CHF").format(1234.5, digits=0)
        'CHF 1,234'
        """
        if math.isnan(value):
            return "-"
        sign = "-" if value < 0 else ""
        amount = f"{abs(value):,.{digits}f}"
        if self.symbol is not None:
            return f"{sign}{self.symbol}{amount}"
        return f"{sign}{self.name} {amount}"

    @property
    def chart_label(self) -> str:
        """The name for chart labels: the code (charts draw ASCII text most reliably), or the
        symbol given, with ``$`` kept literal (matplotlib reads ``$...$`` as math)."""
        return self.name.replace("$", r"\$")


def parse_currency(currency: str | None) -> Currency | None:
    """Check the currency of a report: a 3-letter ISO 4217 code (any case: ``"gbp"`` is GBP)
    or a symbol of 1 to 3 characters that are neither letters nor digits nor spaces
    (``"£"``, ``"R$"``).

    Parameters
    ----------
    currency : str or None
        The currency; None (or empty): amounts are shown as plain numbers.

    Returns
    -------
    Currency or None

    Raises
    ------
    RFMError
        For anything else, with what was found.

    Examples
    --------
    >>> from rfm_fast.insight.report import parse_currency
    >>> parse_currency("GBP")
    Currency(name='GBP', symbol='£')
    >>> parse_currency("chf")
    Currency(name='CHF', symbol=None)
    >>> parse_currency("R$")
    Currency(name='R$', symbol='R$')
    """
    if currency is None or currency == "":
        return None
    if not isinstance(currency, str):
        raise RFMError(f"currency must be text such as 'GBP'; got {type(currency).__name__}")
    if re.fullmatch(r"[A-Za-z]{3}", currency):
        code = currency.upper()
        return Currency(code, CURRENCY_SYMBOLS.get(code))
    if (
        1 <= len(currency) <= 3
        and currency.isprintable()
        and not any(c.isspace() or c.isdigit() for c in currency)
        and not currency.isalpha()
    ):
        return Currency(currency, currency)
    raise RFMError(
        f"currency must be a 3-letter ISO code such as GBP or EUR, or a symbol of 1 to 3 "
        f"characters such as £ or R$; got {currency!r}"
    )


def _require_matplotlib():
    return require("matplotlib.figure", "report", "the HTML report (its charts)").Figure


def _svg(figure) -> str:
    """The figure as an inline <svg> element (text as paths: no fonts needed)."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "rfm_fast"}):
        figure.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _chart(chart_id: str, figure, caption: str) -> str:
    return (
        f'<figure class="chart" id="{chart_id}">{_svg(figure)}'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _plain(text: str) -> str:
    """User text for a chart label: ``$`` kept literal (matplotlib reads ``$...$`` as math)."""
    return text.replace("$", r"\$")


SEGMENT_HEADERS = {
    "segment": "segment",
    "definition": "who is in it",
    "action": "recommended action",
    "priority": "priority",
    "customers": "customers",
    "share": "share of customers",
    "revenue": "revenue",
    "revenue_share": "share of revenue",
    "average_order_value": "average order value",
    "revenue_per_customer": "revenue per customer",
}
"""The columns of the report's segment table (from :func:`rfm_fast.summarize`, with the
definition of each segment), and their headings."""
TOP_HEADERS = {
    "segment": "segment",
    "customers": "customers",
    "share": "share of customers",
    "revenue": "revenue",
    "revenue_share": "share of revenue",
    "action": "what to do",
}
"""The columns of the headline's biggest segments, and their headings."""
QUALITY_HEADERS = {
    "segment": "segment",
    "customers": "customers",
    "share": "share",
    "spread_recency": "how varied: recency",
    "spread_frequency": "how varied: frequency",
    "spread_monetary": "how varied: spend",
    "homogeneity": "alike overall",
    "nearest_segment": "nearest segment",
    "separation": "distance to it",
    "flags": "flags",
}
"""The columns of :func:`rfm_fast.segment_quality` the report shows, and their headings."""
MIGRATION_HEADERS = {
    "segment_before": "from",
    "segment_after": "to",
    "customers": "customers",
    "share_of_before": "share of 'from'",
    "revenue_between": "revenue between the dates",
}
CLV_HEADERS = {
    "segment": "segment",
    "customers": "customers",
    "mean_p_alive": "mean p_alive (chance still active)",
    "expected": "expected purchases",
    "clv": "lifetime value",
}
DROP_REASONS = {
    "null_customer": "no customer id",
    "null_timestamp": "no timestamp",
    "after_as_of": "after as_of",
    "before_window": "before the window",
    "returns": "returns (dropped by choice)",
}
"""The reasons of :attr:`rfm_fast.RunStats.dropped` in words."""


def _number(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return html.escape(str(value))


def _money(value: Any, currency: Currency | None, digits: int = 2) -> str:
    """``value`` as money, escaped for HTML (plain numbers without a currency)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if currency is None:
        return f"{float(value):,.{digits}f}"
    return html.escape(currency.format(float(value), digits))


def _table(
    table: pa.Table,
    headers: dict[str, str],
    *,
    pct: Sequence[str] = (),
    money: Sequence[str] = (),
    text: Sequence[str] = (),
    currency: Currency | None = None,
    table_id: str | None = None,
) -> str:
    """An HTML table of ``table``'s columns named in ``headers`` (column -> heading): shares in
    ``pct`` as percentages, ``money`` with the currency, ``text`` left-aligned, lists (flags)
    joined; every value escaped."""
    columns = list(headers)
    rows = [
        "<tr>"
        + "".join(
            f"<th class='text'>{html.escape(h)}</th>" if c in text else f"<th>{html.escape(h)}</th>"
            for c, h in headers.items()
        )
        + "</tr>",
    ]
    data = {c: table.column(c).to_pylist() for c in columns}
    for i in range(table.num_rows):
        cells = []
        for c in columns:
            value = data[c][i]
            if c in pct and isinstance(value, float) and not math.isnan(value):
                cells.append(f"<td>{100 * value:.1f}%</td>")
            elif c in money:
                cells.append(f"<td>{_money(value, currency)}</td>")
            elif isinstance(value, list):
                flags = ", ".join(html.escape(v) for v in value)
                cells.append(f'<td class="text flag">{flags}</td>' if flags else "<td></td>")
            elif c in text:
                shown = "-" if value is None else html.escape(str(value))
                cells.append(f'<td class="text">{shown}</td>')
            else:
                cells.append(f"<td>{_number(value)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    opening = f'<table id="{table_id}">' if table_id else "<table>"
    return opening + "".join(rows) + "</table>"


def data_notes(result: RFMResult) -> list[str]:
    """What a reader of the report must know about the data before trusting its numbers, in
    plain words (text, not HTML): many rows left out for a missing customer or timestamp
    (from :data:`DROPPED_NOTE_SHARE` of the rows read), an ``as_of`` further beyond the last
    purchase than the data's own span, segments that their rules call recent holding
    long-silent customers (the run's :class:`rfm_fast.RFMDataWarning`), and customers that
    match no rule.

    Parameters
    ----------
    result : RFMResult
        A result of :func:`rfm_fast.score`.

    Returns
    -------
    list of str
        One note per finding; empty when there is nothing to say.

    Examples
    --------
    >>> import warnings
    >>> import pyarrow as pa, rfm_fast
    >>> from rfm_fast.insight.report import data_notes
    >>> orders = pa.table({
    ...     "customer": [1, None, 2, None],
    ...     "day": pa.array(["2024-01-02", "2024-01-03", "2024-01-05", "2024-01-05"]),
    ...     "amount": [10.0, 5.0, 20.0, 7.5],
    ... })
    >>> with warnings.catch_warnings(action="ignore"):
    ...     result = rfm_fast.score(orders, customer="customer", timestamp="day",
    ...                             amount="amount")
    >>> print(data_notes(result)[0][:66])
    2 of 4 rows (50%) have no customer id (column "customer" is empty)
    """
    s = result.stats
    notes = []
    missing = s.dropped.get("null_customer", 0) + s.dropped.get("null_timestamp", 0)
    if s.rows_read and missing >= DROPPED_NOTE_SHARE * s.rows_read:
        customer = result.table.column_names[0]
        parts = []
        if s.dropped.get("null_customer", 0):
            parts.append(
                f"{s.dropped['null_customer']:,} of {s.rows_read:,} rows "
                f"({s.dropped['null_customer'] / s.rows_read:.0%}) have no customer id "
                f'(column "{customer}" is empty)'
            )
        if s.dropped.get("null_timestamp", 0):
            parts.append(
                f"{s.dropped['null_timestamp']:,} of {s.rows_read:,} rows "
                f"({s.dropped['null_timestamp'] / s.rows_read:.0%}) have no timestamp"
            )
        notes.append(
            " and ".join(parts) + ": they were left out, so their sales are in no figure of "
            "this report. Rows without a customer are often guest check-outs or sales of "
            "other channels; if they should belong to customers, check the input."
        )
    if s.customers:
        recency = result.table.column("recency").to_numpy()
        tenure = result.table.column("tenure").to_numpy()
        silent, span = int(recency.min()), int(tenure.max() - recency.min())
        if silent > max(span, 1):
            notes.append(
                f"as_of ({s.as_of:%Y-%m-%d}) is {silent:,} days after the last purchase, more "
                f"than the {span:,} days that the data span: every customer has been silent "
                "that long, yet quantile scores still rank them against each other (the most "
                f"recent get R {s.bins}). Read the segments as relative, or score with an "
                "as_of near the data."
            )
        found = recent_segments_long_silent(
            result.rules, result.table.column("segment"), recency, s.bins
        )
        if found:
            listed = ", ".join(f"{name} ({days:,.0f} days)" for name, days in found)
            notes.append(
                "segments defined by recent purchases hold customers silent for over a year "
                f"(median days since the last purchase: {listed}): their R scores rank them "
                "against each other, not against the calendar. See the lifecycle stages below."
            )
        others = dict(result.segment_counts()).get(OTHER, 0)
        if others:
            notes.append(
                f"{others:,} customers ({others / s.customers:.0%}) match no segment rule and "
                f'are in "{OTHER}".'
            )
    return notes


def _shown(summary: pa.Table) -> pa.Table:
    """The summary without "Other" when no customer is in it (a map that covers every cell)."""
    keep = [
        not (name == OTHER and n == 0)
        for name, n in zip(
            summary.column("segment").to_pylist(),
            summary.column("customers").to_pylist(),
            strict=True,
        )
    ]
    return summary.filter(pa.array(keep))


def _definitions(result: RFMResult, names: list[str]) -> list[str]:
    """Each segment's definition: its conditions on the scores, then who that is in words."""
    book = playbook(result.rules, result.stats.bins).to_pydict()
    at = {name: i for i, name in enumerate(book["segment"])}
    found = []
    for name in names:
        if name not in at:
            found.append("")
            continue
        conditions, words = book["conditions"][at[name]], book["description"][at[name]]
        if conditions and not words.startswith(conditions):
            words = f"{conditions}: {words}"
        found.append(words)
    return found


def _figure_box(label: str, value: str) -> str:
    """A headline figure: ``value`` is HTML (escaped already), ``label`` plain text."""
    return (
        f"<div class='figure'><div class='value'>{value}</div>"
        f"<div class='label'>{html.escape(label)}</div></div>"
    )


def _headline(
    result: RFMResult,
    summary: pa.Table,
    currency: Currency | None,
    migration: Migration | None,
) -> str:
    s = result.stats
    revenue = float(np.nansum(summary.column("revenue").to_numpy(zero_copy_only=False)))
    orders = int(result.table.column("frequency").to_numpy().sum()) if s.customers else 0
    figures = [
        _figure_box("customers", f"{s.customers:,}"),
        _figure_box("revenue", _money(revenue, currency)),
        _figure_box("orders", f"{orders:,}"),
        _figure_box(
            "average order value", _money(revenue / orders if orders else math.nan, currency)
        ),
        _figure_box("as of", html.escape(f"{s.as_of:%Y-%m-%d}") if s.as_of else "-"),
    ]
    if s.window is not None:
        figures.append(_figure_box("window", f"the last {s.window:,} days"))
    parts = ["<section id='headline'><h2>At a glance</h2>"]
    parts.append("<div class='figures'>" + "".join(figures) + "</div>")
    if currency is None:
        parts.append(
            "<p class='note'>Amounts are in the input's currency (give it with --currency, "
            "e.g. GBP, to show it).</p>"
        )
    notes = data_notes(result)
    if notes:
        items = "".join(f"<li>{html.escape(note)}</li>" for note in notes)
        parts.append(
            f"<div class='warning' id='data-warning' role='note'><h3>Read this first</h3>"
            f"<ul>{items}</ul></div>"
        )
    parts.append(_biggest_segments(summary, currency))
    if migration is not None:
        parts.append(_movement_headline(migration))
    parts.append("</section>")
    return "".join(parts)


def _biggest_segments(summary: pa.Table, currency: Currency | None) -> str:
    """The 3 segments with the most revenue (ties: in rule order) and what to do with them;
    then the segments of the first priority that are not among them."""
    rows = [r for r in summary.to_pylist() if r["customers"]]
    if not rows:
        return "<p>No customers were scored.</p>"
    top = sorted(rows, key=lambda r: -r["revenue"])[:3]  # sorted() is stable: rule order
    text = (
        f"<p>The {len(top)} segments with the most revenue, and what to do with them:</p>"
        + _table(
            pa.Table.from_pylist(top),
            TOP_HEADERS,
            pct=("share", "revenue_share"),
            money=("revenue",),
            text=("action",),
            currency=currency,
            table_id="biggest-segments",
        )
    )
    priorities = [r["priority"] for r in rows if r["priority"] is not None]
    listed = {r["segment"] for r in top}
    first = [
        r
        for r in rows
        if priorities and r["priority"] == min(priorities) and r["segment"] not in listed
    ]
    for r in first:
        text += (
            f"<p><b>Act first</b> (priority {r['priority']}): "
            f"<b>{html.escape(r['segment'])}</b>, {r['customers']:,} customers, "
            f"{_money(r['revenue'], currency)}. {html.escape(r['action'] or '')}</p>"
        )
    return text


def movement(migration: Migration) -> dict[str, Any]:
    """How the customers moved between the two dates of ``migration``, in counts.

    A customer who changed segment moved **up** when the sum of the scores (R + F + M) rose,
    **down** when it fell, and **across** when it stayed the same.

    Parameters
    ----------
    migration : Migration
        A result of :func:`rfm_fast.migrate`.

    Returns
    -------
    dict
        ``customers``, ``stayed``, ``up``, ``down``, ``across`` and ``new`` (customers whose
        first purchase came after the first date), and ``flows``: (from, to, customers) of
        the moves between segments (new customers left out), the largest first, ties in the
        order of the transition matrix.

    Examples
    --------
    >>> import rfm_fast
    >>> from rfm_fast.insight.report import movement
    >>> moved = rfm_fast.migrate(rfm_fast.datasets.load_example(),
    ...     as_of=("1998-01-01", "1998-07-01"), **rfm_fast.datasets.EXAMPLE_COLUMNS)
    >>> counts = movement(moved)
    >>> counts["customers"] == counts["stayed"] + counts["up"] + counts["down"] \\
    ...     + counts["across"] + counts["new"]
    True
    """
    c = migration.customers
    before = np.array(c.column("segment_before").to_pylist(), dtype=object)
    after = np.array(c.column("segment_after").to_pylist(), dtype=object)
    new = before == NEW
    changed = (before != after) & ~new

    def total(suffix: str) -> np.ndarray:
        scores = [c.column(f"{s}_{suffix}").fill_null(0).to_numpy().astype(np.int64) for s in "RFM"]
        return scores[0] + scores[1] + scores[2]

    then, now = total("before"), total("after")
    matrix = migration.matrix()
    moved = matrix.filter(
        pa.compute.and_(
            pa.compute.and_(
                pa.compute.not_equal(matrix["segment_before"], matrix["segment_after"]),
                pa.compute.not_equal(matrix["segment_before"], NEW),
            ),
            pa.compute.greater(matrix["customers"], 0),
        )
    ).sort_by([("customers", "descending")])
    return {
        "customers": int(c.num_rows),
        "stayed": int((~changed & ~new).sum()),
        "up": int((changed & (now > then)).sum()),
        "down": int((changed & (now < then)).sum()),
        "across": int((changed & (now == then)).sum()),
        "new": int(new.sum()),
        "flows": list(
            zip(
                moved["segment_before"].to_pylist(),
                moved["segment_after"].to_pylist(),
                moved["customers"].to_pylist(),
                strict=True,
            )
        ),
    }


def _movement_headline(migration: Migration) -> str:
    counts = movement(migration)
    first = migration.before.stats.as_of
    since = f"{first:%Y-%m-%d}" if first else "the first date"
    text = (
        f"<p id='movement-summary'><b>Since {html.escape(since)}</b>: of "
        f"{counts['customers']:,} customers, {counts['stayed']:,} stayed in their segment, "
        f"{counts['up']:,} moved up (to a higher R + F + M), {counts['down']:,} moved down"
    )
    if counts["across"]:
        text += f", {counts['across']:,} changed segment at the same total score"
    text += f", and {counts['new']:,} are new.</p>"
    if counts["flows"]:
        items = "".join(
            f"<li>{html.escape(a)} &rarr; {html.escape(b)}: {n:,} customers</li>"
            for a, b, n in counts["flows"][:3]
        )
        text += f"<p>The biggest moves:</p><ul>{items}</ul>"
    return text


def _segments_section(
    result: RFMResult, summary: pa.Table, currency: Currency | None, stages: pa.Table
) -> str:
    shown = _shown(summary)
    names = shown.column("segment").to_pylist()
    table = shown.append_column("definition", pa.array(_definitions(result, names), pa.string()))
    keep = pa.array([name in names for name in stages.column("segment").to_pylist()])
    units = f" in {currency.name}" if currency is not None else ""
    return (
        "<section id='segments'><h2>Segments</h2>"
        "<p>Every customer is in exactly one segment: the first rule of the map that matches "
        f"their scores. R (recency), F (frequency) and M (monetary) are scores from 1 to "
        f"{result.stats.bins}, {result.stats.bins} being the best: the most recent, most "
        "frequent, highest spending customers. Priority 1: act on it first. What each score "
        "means in days, orders and "
        f"money{html.escape(units)} is under <a href='#score-ranges'>score ranges</a>.</p>"
        + _table(
            table,
            SEGMENT_HEADERS,
            pct=("share", "revenue_share"),
            money=("revenue", "average_order_value", "revenue_per_customer"),
            text=("definition", "action"),
            currency=currency,
            table_id="segment-table",
        )
        + "<h3>How long ago they bought</h3>"
        "<p>Scores rank customers against each other: R 5 is the most recent fifth, however "
        "long ago that was. These stages count the customers of each segment in days before "
        "as_of: New = first purchase within 30 days; Active = last purchase within 89 days; "
        "Lapsing = 90-180; Dormant = 181-365; Lost = over 365.</p>"
        + _table(stages.filter(keep), {name: name for name in stages.column_names})
        + "</section>"
    )


def _sizes_chart(Figure, summary: pa.Table, currency: Currency | None) -> str:
    names = summary.column("segment").to_pylist()
    share = np.nan_to_num(np.array(summary.column("share").to_pylist(), dtype=float))
    revenue = np.nan_to_num(np.array(summary.column("revenue_share").to_pylist(), dtype=float))
    figure = Figure(figsize=(9, 0.45 * len(names) + 1))
    axes = figure.subplots()
    y = np.arange(len(names))
    axes.barh(y - 0.2, 100 * share, height=0.4, label="customers", color="#3e7cb1")
    axes.barh(y + 0.2, 100 * revenue, height=0.4, label="revenue", color="#f0a202")
    axes.set_yticks(y, [_plain(n) for n in names])
    axes.invert_yaxis()
    axes.set_xlabel("share (%)")
    axes.legend(loc="lower right")
    total = float(np.nansum(summary.column("revenue").to_numpy(zero_copy_only=False)))
    money = currency.format(total) if currency is not None else f"{total:,.2f}"
    return _chart(
        "segment-sizes",
        figure,
        f"Share of customers and of revenue ({money} in all) per segment, in the map's order.",
    )


def _distribution_charts(Figure, result: RFMResult, currency: Currency | None) -> str:
    figure = Figure(figsize=(11, 3.2))
    panels = figure.subplots(1, 3)
    money = f" ({currency.chart_label})" if currency is not None else ""
    labels = {
        "recency": "recency: days since the last purchase",
        "frequency": "frequency: orders",
        "monetary": f"monetary: spend{money}",
    }
    for axes, metric in zip(panels, ("recency", "frequency", "monetary"), strict=True):
        values = result.table.column(metric).to_numpy().astype(float)
        log = metric != "recency"
        if log:  # heavy-tailed: a log axis, non-positive values left out of the picture
            values = values[values > 0]
        if values.shape[0]:
            bins = (
                np.geomspace(values.min(), values.max(), 40)
                if log and values.min() < values.max()
                else 40
            )
            axes.hist(values, bins=bins, color="#829ab1")
        if log:
            axes.set_xscale("log")
        for edge in result.edges[metric]:
            if math.isfinite(edge) and (edge > 0 or not log):
                axes.axvline(edge, color="#d64545", linewidth=1.2)
        axes.set_title(labels[metric], fontsize=10)
        axes.set_ylabel("customers")
    return _chart(
        "distributions",
        figure,
        "Distribution of each metric over customers; red lines are the score edges "
        "(frequency and spend on a log scale).",
    )


def _heatmap(Figure, result: RFMResult, rows: str, columns: str, currency: Currency | None) -> str:
    cells = grid(result, rows, columns)
    bins = result.stats.bins
    counts = cells.column("customers").to_numpy().reshape(bins, bins)
    money = np.nan_to_num(cells.column("mean_monetary").to_numpy().reshape(bins, bins))
    figure = Figure(figsize=(5.2, 4.4))
    axes = figure.subplots()
    image = axes.imshow(counts, cmap="YlGnBu", origin="lower")
    figure.colorbar(image, ax=axes, label="customers")
    for i in range(bins):
        for j in range(bins):
            axes.text(
                j,
                i,
                f"{counts[i, j]:,}\n{money[i, j]:,.0f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if counts[i, j] > counts.max() / 2 else "black",
            )
    ticks = np.arange(bins)
    axes.set_xticks(ticks, ticks + 1)
    axes.set_yticks(ticks, ticks + 1)
    axes.set_xlabel(columns)
    axes.set_ylabel(rows)
    unit = f" in {currency.name}" if currency is not None else ""
    return _chart(
        f"heatmap-{rows}{columns}".lower(),
        figure,
        f"{rows} x {columns}: customers per cell (color and first line), mean monetary{unit} "
        "(second line).",
    )


def _charts_section(Figure, result: RFMResult, summary: pa.Table, currency: Currency | None) -> str:
    if not result.stats.customers:
        return ""
    return "".join(
        [
            "<section id='charts'><h2>Charts</h2>",
            _sizes_chart(Figure, _shown(summary), currency),
            "<h3>Distributions</h3>",
            _distribution_charts(Figure, result, currency),
            "<h3>Heatmaps</h3><div class='grid2'>",
            _heatmap(Figure, result, "R", "F", currency),
            _heatmap(Figure, result, "R", "M", currency),
            "</div></section>",
        ]
    )


def _migration_section(Figure, migration: Migration, currency: Currency | None) -> str:
    matrix = migration.matrix()
    sources = list(dict.fromkeys(matrix.column("segment_before").to_pylist()))
    targets = list(dict.fromkeys(matrix.column("segment_after").to_pylist()))
    counts = matrix.column("customers").to_numpy().reshape(len(sources), len(targets))
    keep = counts.sum(axis=1) > 0  # rows of segments that had customers at the first date
    shares = np.nan_to_num(matrix.column("share_of_before").to_numpy()).reshape(counts.shape)
    figure = Figure(figsize=(10, 0.5 * keep.sum() + 2.5))
    axes = figure.subplots()
    image = axes.imshow(100 * shares[keep], cmap="Purples", vmin=0, vmax=100, aspect="auto")
    figure.colorbar(image, ax=axes, label="% of the segment at the first date")
    for i, row in enumerate(np.flatnonzero(keep)):
        for j in range(len(targets)):
            if counts[row, j]:
                axes.text(j, i, f"{counts[row, j]:,}", ha="center", va="center", fontsize=7)
    axes.set_xticks(np.arange(len(targets)), [_plain(t) for t in targets], rotation=40, ha="right")
    axes.set_yticks(
        np.arange(keep.sum()), [_plain(s) for s, k in zip(sources, keep, strict=True) if k]
    )
    axes.set_xlabel(f"segment at {migration.after.stats.as_of:%Y-%m-%d}")
    axes.set_ylabel(f"segment at {migration.before.stats.as_of:%Y-%m-%d}")
    moved = matrix.filter(
        pa.compute.and_(
            pa.compute.not_equal(matrix.column("segment_before"), matrix.column("segment_after")),
            pa.compute.greater(matrix.column("customers"), 0),
        )
    ).sort_by([("customers", "descending")])
    top = moved.slice(0, 12)
    return (
        "<section id='movement'><h2>Movement between the dates</h2>"
        f"<p>From {migration.before.stats.as_of:%Y-%m-%d} to "
        f"{migration.after.stats.as_of:%Y-%m-%d}: {migration.customers.num_rows:,} customers, "
        f"of whom {(migration.customers.column('segment_before').to_pylist()).count(NEW):,} "
        "are new. Scores are relative: a customer can move down without doing anything, "
        "as others buy and time passes.</p>"
        + _chart(
            "migration",
            figure,
            "Transition matrix: share of each first-date segment that went to each segment "
            "(numbers are customers).",
        )
        + "<p>Largest moves between segments:</p>"
        + _table(
            top,
            MIGRATION_HEADERS,
            pct=("share_of_before",),
            money=("revenue_between",),
            currency=currency,
            table_id="largest-moves",
        )
        + "</section>"
    )


def _clv_section(Figure, result: RFMResult, predictions, currency: Currency | None) -> str:
    from rfm_fast.clv import with_p_alive

    joined = with_p_alive(result, predictions, ("p_alive", "expected_purchases", "clv")).table
    segment = joined.column("segment").combine_chunks()
    names = [str(n) for n in segment.dictionary.to_pylist()]  # rule order, "Other" last
    codes = segment.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    p_alive = joined.column("p_alive").to_numpy(zero_copy_only=False)
    expected = joined.column("expected_purchases").to_numpy(zero_copy_only=False)
    value = joined.column("clv").to_numpy(zero_copy_only=False)
    rows: dict[str, list] = {
        "segment": [],
        "customers": [],
        "mean_p_alive": [],
        "expected": [],
        "clv": [],
    }
    for k, name in enumerate(names):
        inside = codes == k
        if not inside.any():
            continue
        rows["segment"].append(name)
        rows["customers"].append(int(inside.sum()))
        rows["mean_p_alive"].append(float(np.nanmean(p_alive[inside])))
        rows["expected"].append(float(np.nansum(expected[inside])))
        rows["clv"].append(float(np.nansum(value[inside])))
    label = predictions.purchases.LABEL
    identified = predictions.p_alive_identified
    headers = dict(CLV_HEADERS)
    if not identified:  # p_alive says nothing here: not shown, and the box below says why
        del rows["mean_p_alive"], headers["mean_p_alive"]
    params = ", ".join(f"{k} = {v:.4g}" for k, v in predictions.purchases.params.items())
    spend = ", ".join(f"{k} = {v:.4g}" for k, v in predictions.spend.params.items())
    parts = [
        "<section id='lifetime-value'><h2>Lifetime value</h2>"
        f"<p>Predictions for the next {predictions.horizon:g} "
        f"{html.escape(_unit_words(predictions.unit))}, discount rate "
        f"{predictions.discount_rate:g} per step, per segment in the map's order. Models: "
        f"{html.escape(label)} ({html.escape(params)}) and Gamma-Gamma ({html.escape(spend)})."
        "</p>"
    ]
    if predictions.warnings:
        items = "".join(f"<li>{html.escape(line)}</li>" for line in predictions.warnings)
        parts.append(
            "<div class='warning' id='clv-warning' role='note'><h3>Treat these predictions "
            f"with care</h3><ul>{items}</ul></div>"
        )
    parts.append(_table(pa.table(rows), headers, money=("clv",), currency=currency, table_id="clv"))
    if identified:
        figure = Figure(figsize=(9, 3.2))
        axes = figure.subplots()
        axes.hist(p_alive[np.isfinite(p_alive)], bins=40, color="#3e7cb1")
        axes.set_xlabel("p_alive")
        axes.set_ylabel("customers")
        caption = f"Probability that each customer is still active ({label})."
        parts.append(_chart("p-alive", figure, caption))
    parts.append("</section>")
    return "".join(parts)


_UNITS_IN_WORDS = {"D": "days", "W": "weeks", "M": "months", "Y": "years"}


def _unit_words(unit: str | float) -> str:
    """A time unit of the CLV models in words: ``"W"`` -> ``"weeks"``, 14 -> ``"periods of 14
    days"``."""
    if isinstance(unit, str):
        return _UNITS_IN_WORDS.get(unit, unit)
    return f"periods of {unit:g} days"


def score_ranges(result: RFMResult, currency: str | Currency | None = None) -> pa.Table:
    """What each score means in the metrics' own units: days since the last purchase, orders,
    and money, from the edges of ``result``.

    A range includes its upper end: with recency edges ``[141, 432, ...]``, R 5 is 0 to 141
    days and R 4 is 142 to 432 days. Scores that no customer has say so.

    Parameters
    ----------
    result : RFMResult
        A result of :func:`rfm_fast.score`.
    currency : str or Currency, optional
        The currency of the amounts (see :func:`parse_currency`).

    Returns
    -------
    pyarrow.Table
        One row per score, the best first: ``score``, ``recency``, ``frequency``,
        ``monetary`` (text).

    Examples
    --------
    >>> import rfm_fast
    >>> from rfm_fast.insight.report import score_ranges
    >>> result = rfm_fast.score(rfm_fast.datasets.load_example(),
    ...                         **rfm_fast.datasets.EXAMPLE_COLUMNS)
    >>> score_ranges(result, "USD").to_pylist()[0]
    {'score': 5, 'recency': '0 to 141 days', 'frequency': '5 or more', 'monetary': 'over $133.95'}
    """
    money = currency if isinstance(currency, Currency) else parse_currency(currency)
    bins = result.stats.bins
    columns: dict[str, list] = {"score": list(range(bins, 0, -1))}
    for metric in ("recency", "frequency", "monetary"):
        edges = list(result.edges.get(metric, []))
        empty = set(result.stats.empty_bins.get(metric, []))
        texts = []
        for score in range(bins, 0, -1):
            if score in empty:
                texts.append("no customer")
                continue
            # Rank k from the worst side: frequency and monetary rise with the score, recency
            # falls; edges[j] is the top of rank j (0-based), read from the better end for R.
            k = bins - score if metric == "recency" else score - 1
            low = edges[k - 1] if k > 0 else None
            high = edges[k] if k < bins - 1 else None
            texts.append(_range_text(metric, low, high, money))
        columns[metric] = texts
    return pa.table(
        {k: pa.array(v, pa.int64() if k == "score" else pa.string()) for k, v in columns.items()}
    )


def _range_text(metric: str, low: float | None, high: float | None, money: Currency | None) -> str:
    """The values above ``low`` up to ``high`` (either open) in words and units."""
    if any(v is not None and math.isnan(v) for v in (low, high)):
        return "-"
    if low is not None and low == -math.inf:
        low = None
    if high is not None and high == -math.inf:
        return "no customer"
    if metric == "monetary":

        def amount(v: float) -> str:
            return money.format(v) if money is not None else f"{v:,.2f}"

        if low is None:
            return f"up to {amount(high)}" if high is not None else "any"
        if high is None:
            return f"over {amount(low)}"
        return f"over {amount(low)} up to {amount(high)}"
    unit = " days" if metric == "recency" else ""
    first = 0 if metric == "recency" else 1
    start = first if low is None else max(first, math.floor(low) + 1)
    if high is None:
        return f"{start:,} or more{unit}"
    end = math.floor(high)
    if end < start:
        return "no customer"
    if end == start:
        return f"{start:,}{unit}"
    return f"{start:,} to {end:,}{unit}"


def _detail_section(result: RFMResult, currency: Currency | None, quality: Any) -> str:
    s = result.stats
    money = f" ({currency.name})" if currency is not None else ""
    ranges = score_ranges(result, currency)
    headers = {
        "score": "score",
        "recency": "R: days since the last purchase",
        "frequency": "F: orders",
        "monetary": f"M: spend{money}" if s.monetary == "sum" else f"M: spend per order{money}",
    }
    method_note = {
        "split": " With method split, customers tied on an edge may sit on both sides of it.",
        "approx": " With method approx, the edges come from a sketch: see its error bound.",
    }.get(s.method, "")
    raw = "; ".join(
        f"{m} {', '.join(f'{e:.6g}' for e in edges)}" for m, edges in result.edges.items()
    )
    explained = ", ".join(
        f"{ {'monetary': 'spend'}.get(m, m) } {100 * v:.0f}%" for m, v in quality.explained.items()
    )
    dropped = ", ".join(
        f"{DROP_REASONS.get(k, k.replace('_', ' '))}: {v:,}" for k, v in s.dropped.items()
    )
    items = [
        ("rows read", f"{s.rows_read:,}"),
        ("rows used", f"{s.rows_used:,}"),
        ("rows left out, by reason", dropped),
        ("rows with a null amount (counted, not summed)", f"{s.null_amount:,}"),
        ("rows with a negative amount (returns)", f"{s.return_rows:,}, taken as: {s.returns}"),
        ("customers whose rows were all returns (left out)", f"{s.customers_only_returns:,}"),
        ("customers scored", f"{s.customers:,}"),
        ("as_of", s.as_of.isoformat(sep=" ") if s.as_of else "-"),
        ("window", f"{s.window:,} days" if s.window is not None else "none: all rows up to as_of"),
        ("bins, method, monetary", f"{s.bins}, {s.method}, {s.monetary}"),
        ("rfm_fast", rfm_fast.__version__),
    ]
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td class='text'>{html.escape(v)}</td></tr>"
        for k, v in items
    )
    return (
        "<section id='detail'><h2>Analyst detail</h2>"
        "<h3 id='score-ranges'>Score ranges</h3>"
        "<p>What each score means in days, orders and money: the edges between the scores, "
        "with their units. A range includes its upper end."
        + html.escape(method_note)
        + "</p>"
        + _table(ranges, headers, text=("recency", "frequency", "monetary"), table_id="ranges")
        + f"<p class='note'>Raw edges (result.edges): {html.escape(raw)}.</p>"
        "<h3>Segment quality</h3>"
        "<p>A segment is worth acting on when its customers are alike, it differs from the "
        "other segments, and it is big enough. <b>How varied</b> compares a segment with all "
        "customers on one measure: 0% means its customers are all the same, 100% as varied "
        "as the whole customer base. <b>Alike overall</b> is 100% minus the average of the "
        "three. <b>Distance to it</b> is how far the segment's typical customer is from that "
        "of the nearest segment, where 1 is the usual difference between customers; below "
        "0.25 the two are hard to tell apart, and are flagged. Frequency and spend are "
        "compared on a log scale, so that a few big buyers do not decide. Together the "
        f"segments account for this much of the differences between customers: "
        f"{html.escape(explained)}.</p>"
        + _table(
            _shown(quality.table),
            QUALITY_HEADERS,
            pct=("share", "spread_recency", "spread_frequency", "spread_monetary", "homogeneity"),
            text=("nearest_segment", "flags"),
            table_id="quality",
        )
        + f"<h3>Run statistics</h3><table id='run-statistics'>{rows}</table>"
        + "</section>"
    )


def build_report(
    result: RFMResult,
    *,
    migration: Migration | None = None,
    title: str | None = None,
    clv: Any = None,
    currency: str | None = None,
) -> str:
    """The report as one HTML document (a string).

    Sections, in order (their ``id`` in brackets): the headline (``headline``), segments
    (``segments``), the movement between the dates (``movement``, with ``migration``), charts
    (``charts``, when there are customers), lifetime value (``lifetime-value``, with ``clv``)
    and the analyst detail (``detail``).

    Parameters
    ----------
    result : RFMResult
        A result of :func:`rfm_fast.score` (with ``migration``: usually ``migration.after``).
    migration : Migration, optional
        Adds the movement since the first date (see :func:`rfm_fast.migrate`).
    title : str, optional
        The heading; default "RFM report".
    clv : rfm_fast.clv.CLVResult, optional
        Adds p_alive and lifetime value per segment (see :func:`rfm_fast.clv.analyze`).
    currency : str, optional
        The currency of the amounts: an ISO code (``"GBP"``, shown as ``£1,234.56``; codes
        without a known symbol as ``CHF 1,234.56``) or a symbol (see :func:`parse_currency`).
        None: amounts are plain numbers.

    Returns
    -------
    str
        A complete HTML document with inline CSS and SVG charts: no scripts, no external
        resources.

    Examples
    --------
    >>> import rfm_fast
    >>> from rfm_fast.insight.report import build_report
    >>> result = rfm_fast.score(rfm_fast.datasets.load_example(),
    ...                         **rfm_fast.datasets.EXAMPLE_COLUMNS)
    >>> document = build_report(result, currency="USD")
    >>> document.startswith("<!DOCTYPE html>"), "$2,500,315.63" in document
    (True, True)
    """
    money = parse_currency(currency)
    Figure = _require_matplotlib()
    summary = summarize(result)
    quality = segment_quality(result)
    stages = lifecycle_table(result)
    title = title or "RFM report"
    made = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='lead'>{result.stats.customers:,} customers, made by rfm_fast "
        f"{rfm_fast.__version__} on {made}.</p>",
        _headline(result, summary, money, migration),
        _segments_section(result, summary, money, stages),
    ]
    if migration is not None:
        parts.append(_migration_section(Figure, migration, money))
    parts.append(_charts_section(Figure, result, summary, money))
    if clv is not None and result.stats.customers:
        parts.append(_clv_section(Figure, result, clv, money))
    parts.append(_detail_section(result, money, quality))
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p)


def write_report(
    result: RFMResult,
    path: str | os.PathLike,
    *,
    migration: Migration | None = None,
    title: str | None = None,
    clv: Any = None,
    currency: str | None = None,
) -> Path:
    """Write :func:`build_report` to ``path`` (atomically: a temporary file, then a rename).

    Parameters
    ----------
    result, migration, title, clv, currency
        As for :func:`build_report`.
    path : str or PathLike
        The HTML file to write (replaced if it exists).

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> import pathlib, tempfile, rfm_fast
    >>> from rfm_fast.insight.report import write_report
    >>> result = rfm_fast.score(rfm_fast.datasets.load_example(),
    ...                         **rfm_fast.datasets.EXAMPLE_COLUMNS)
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_report(result, folder / "report.html", currency="USD").name
    'report.html'
    """
    parse_currency(currency)  # before the output is checked: the error names the option
    target = check_output_path(path, suffixes=(".html", ".htm"))
    document = build_report(result, migration=migration, title=title, clv=clv, currency=currency)
    return write_atomically(target, lambda temporary: temporary.write_text(document, "utf-8"))
