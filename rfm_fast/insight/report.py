"""A self-contained HTML report of a scored result: one file that needs no network to view.

Charts are drawn with matplotlib (``pip install 'rfm_fast[report]'``) and embedded as inline
SVG, so the file has no scripts, no fonts and no images to fetch. Sections: run statistics and
edges, the segment summary, segment sizes, score distributions with their edges, the R x F and
R x M heatmaps, segment quality, and, when a :class:`rfm_fast.Migration` is given, the
transitions between the two dates.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

import rfm_fast
from rfm_fast.core.io import check_output_path, write_atomically
from rfm_fast.core.scoring import RFMResult
from rfm_fast.errors import RFMError
from rfm_fast.insight.migration import Migration
from rfm_fast.insight.tables import grid, lifecycle_table, segment_quality, summarize

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1100px; color: #1f2933; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.2rem; margin-top: 2.2rem; border-bottom: 1px solid #d9e2ec; }
p.lead { color: #52606d; margin-top: 0; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.6rem 0; }
th, td { padding: 0.25rem 0.55rem; border-bottom: 1px solid #e4e7eb; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f5f7fa; }
figure.chart { margin: 0.8rem 0; }
figure.chart svg { max-width: 100%; height: auto; }
figcaption { font-size: 0.8rem; color: #52606d; }
.flag { color: #b44d12; font-weight: 600; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; }
"""


def _require_matplotlib():
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise RFMError(
            "the report draws its charts with matplotlib, which is not installed; "
            "install it with: pip install 'rfm_fast[report]'"
        ) from None
    return Figure


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


SEGMENT_HEADERS = {
    "segment": "segment",
    "customers": "customers",
    "share": "share",
    "revenue": "revenue",
    "revenue_share": "revenue share",
    "mean_R": "mean R",
    "mean_F": "mean F",
    "mean_M": "mean M",
    "median_recency": "median recency (days)",
    "median_frequency": "median frequency",
    "median_monetary": "median monetary",
    "average_order_value": "average order value",
    "revenue_per_customer": "revenue per customer",
}
"""The columns of :func:`rfm_fast.summarize` the report shows, and their headings."""
QUALITY_HEADERS = {
    "segment": "segment",
    "customers": "customers",
    "share": "share",
    "spread_recency": "spread recency",
    "spread_frequency": "spread frequency",
    "spread_monetary": "spread monetary",
    "homogeneity": "homogeneity",
    "nearest_segment": "nearest segment",
    "separation": "separation",
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
PLAYBOOK_HEADERS = {
    "segment": "segment",
    "priority": "priority (1 = act first)",
    "customers": "customers",
    "description": "who is in it",
    "action": "recommended action",
}
"""The playbook columns of :func:`rfm_fast.summarize` the report shows, and their headings."""
CLV_HEADERS = {
    "segment": "segment",
    "customers": "customers",
    "mean_p_alive": "mean p_alive",
    "expected": "expected purchases",
    "clv": "lifetime value",
}


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


def _table(table: pa.Table, headers: dict[str, str], pct: Sequence[str] = ()) -> str:
    """An HTML table of ``table``'s columns named in ``headers`` (column -> heading), shares in
    ``pct`` as percentages, lists (flags) joined."""
    columns = list(headers)
    rows = [
        "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in headers.values()) + "</tr>",
    ]
    data = {c: table.column(c).to_pylist() for c in columns}
    for i in range(table.num_rows):
        cells = []
        for c in columns:
            value = data[c][i]
            if c in pct and isinstance(value, float) and not math.isnan(value):
                cells.append(f"<td>{100 * value:.1f}%</td>")
            elif isinstance(value, list):
                flags = ", ".join(html.escape(v) for v in value)
                cells.append(f'<td class="flag">{flags}</td>' if flags else "<td></td>")
            else:
                cells.append(f"<td>{_number(value)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return "<table>" + "".join(rows) + "</table>"


def _stats_section(result: RFMResult) -> str:
    s = result.stats
    dropped = ", ".join(f"{k.replace('_', ' ')}: {v:,}" for k, v in s.dropped.items())
    items = [
        ("rows read", f"{s.rows_read:,}"),
        ("rows used", f"{s.rows_used:,}"),
        ("rows dropped", dropped),
        ("rows with a null amount (not summed)", f"{s.null_amount:,}"),
        ("customers scored", f"{s.customers:,}"),
        ("as_of", s.as_of.isoformat(sep=" ") if s.as_of else "-"),
        ("bins, method, monetary", f"{s.bins}, {s.method}, {s.monetary}"),
    ]
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in items)
    edge_rows = "".join(
        f"<tr><td>{m}</td><td>{', '.join(f'{e:.6g}' for e in edges)}</td>"
        f"<td>{', '.join(map(str, s.empty_bins[m])) or '-'}</td></tr>"
        for m, edges in result.edges.items()
    )
    return (
        f"<h2>Run</h2><table>{rows}</table>"
        "<table><tr><th>metric</th><th>edges</th><th>empty scores</th></tr>"
        f"{edge_rows}</table>"
    )


def _sizes_chart(Figure, summary: pa.Table) -> str:
    names = summary.column("segment").to_pylist()
    share = np.nan_to_num(np.array(summary.column("share").to_pylist(), dtype=float))
    revenue = np.nan_to_num(np.array(summary.column("revenue_share").to_pylist(), dtype=float))
    figure = Figure(figsize=(9, 0.45 * len(names) + 1))
    axes = figure.subplots()
    y = np.arange(len(names))
    axes.barh(y - 0.2, 100 * share, height=0.4, label="customers", color="#3e7cb1")
    axes.barh(y + 0.2, 100 * revenue, height=0.4, label="revenue", color="#f0a202")
    axes.set_yticks(y, names)
    axes.invert_yaxis()
    axes.set_xlabel("share (%)")
    axes.legend(loc="lower right")
    return _chart("segment-sizes", figure, "Share of customers and of revenue per segment.")


def _distribution_charts(Figure, result: RFMResult) -> str:
    figure = Figure(figsize=(11, 3.2))
    panels = figure.subplots(1, 3)
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
        axes.set_title(metric)
        axes.set_ylabel("customers")
    return _chart(
        "distributions",
        figure,
        "Distribution of each metric over customers; red lines are the score edges.",
    )


def _heatmap(Figure, result: RFMResult, rows: str, columns: str) -> str:
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
    return _chart(
        f"heatmap-{rows}{columns}".lower(),
        figure,
        f"{rows} x {columns}: customers per cell (color and first line), mean monetary "
        "(second line).",
    )


def _migration_section(Figure, migration: Migration) -> str:
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
    axes.set_xticks(np.arange(len(targets)), targets, rotation=40, ha="right")
    axes.set_yticks(np.arange(keep.sum()), [s for s, k in zip(sources, keep, strict=True) if k])
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
        "<h2>Migration</h2>"
        f"<p>From {migration.before.stats.as_of:%Y-%m-%d} to "
        f"{migration.after.stats.as_of:%Y-%m-%d}: {migration.customers.num_rows:,} customers, "
        f"of whom {(migration.customers.column('segment_before').to_pylist()).count('(new)'):,} "
        "are new.</p>"
        + _chart(
            "migration",
            figure,
            "Transition matrix: share of each first-date segment that went to each segment "
            "(numbers are customers).",
        )
        + "<p>Largest moves between segments:</p>"
        + _table(top, MIGRATION_HEADERS, pct=("share_of_before",))
    )


def _clv_section(Figure, result: RFMResult, predictions) -> str:
    from rfm_fast.clv import with_p_alive

    joined = with_p_alive(result, predictions).table
    segment = joined.column("segment").cast(pa.string()).to_pylist()
    p_alive = joined.column("p_alive").to_numpy(zero_copy_only=False)
    expected = joined.column("expected_purchases").to_numpy(zero_copy_only=False)
    value = joined.column("clv").to_numpy(zero_copy_only=False)
    names = list(dict.fromkeys(segment))
    rows: dict[str, list] = {
        "segment": [],
        "customers": [],
        "mean_p_alive": [],
        "expected": [],
        "clv": [],
    }
    codes = np.array([names.index(s) for s in segment])
    for k, name in enumerate(names):
        inside = codes == k
        rows["segment"].append(name)
        rows["customers"].append(int(inside.sum()))
        rows["mean_p_alive"].append(float(np.nanmean(p_alive[inside])))
        rows["expected"].append(float(np.nansum(expected[inside])))
        rows["clv"].append(float(np.nansum(value[inside])))
    figure = Figure(figsize=(9, 3.2))
    axes = figure.subplots()
    axes.hist(p_alive[np.isfinite(p_alive)], bins=40, color="#3e7cb1")
    axes.set_xlabel("p_alive")
    axes.set_ylabel("customers")
    params = ", ".join(f"{k} = {v:.4g}" for k, v in predictions.purchases.params.items())
    spend = ", ".join(f"{k} = {v:.4g}" for k, v in predictions.spend.params.items())
    return (
        "<h2>Lifetime value</h2>"
        f"<p>BG/NBD: {html.escape(params)}. Gamma-Gamma: {html.escape(spend)}. Predictions "
        f"for the next {predictions.horizon:g} {html.escape(str(predictions.unit))}, "
        f"discount rate {predictions.discount_rate:g} per step.</p>"
        + _chart("p-alive", figure, "Probability that each customer is still active (BG/NBD).")
        + _table(pa.table(rows), CLV_HEADERS)
    )


def build_report(
    result: RFMResult,
    *,
    migration: Migration | None = None,
    title: str | None = None,
    clv: Any = None,
) -> str:
    """The report as one HTML document (a string).

    Parameters
    ----------
    result : RFMResult
        A result of :func:`rfm_fast.score` (with ``migration``: usually ``migration.after``).
    migration : Migration, optional
        Adds the transitions between two dates (see :func:`rfm_fast.migrate`).
    clv : rfm_fast.clv.CLVResult, optional
        Adds p_alive and lifetime value per segment (see :func:`rfm_fast.clv.analyze`).
    title : str, optional
        The heading; default "RFM report".

    Returns
    -------
    str
        A complete HTML document with inline CSS and SVG charts: no scripts, no external
        resources.
    """
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
        _stats_section(result),
        "<h2>Segments</h2>",
        _table(summary, SEGMENT_HEADERS, pct=("share", "revenue_share")),
        "<h2>Playbook</h2>",
        _table(summary, PLAYBOOK_HEADERS),
        "<h2>Lifecycle stages</h2>",
        "<p>Customers of each segment by lifecycle stage, in days before as_of: New = first "
        "purchase within 30 days; Active = last purchase within 89 days; Lapsing = 90-180; "
        "Dormant = 181-365; Lost = over 365. Scores are relative; these stages are not.</p>",
        _table(stages, {name: name for name in stages.column_names}),
    ]
    if result.stats.customers:
        parts += [
            _sizes_chart(Figure, summary),
            "<h2>Distributions</h2>",
            _distribution_charts(Figure, result),
            "<h2>Heatmaps</h2><div class='grid2'>",
            _heatmap(Figure, result, "R", "F"),
            _heatmap(Figure, result, "R", "M"),
            "</div>",
        ]
    explained = ", ".join(f"{m} {100 * v:.0f}%" for m, v in quality.explained.items())
    parts += [
        "<h2>Segment quality</h2>",
        "<p>Spread: standard deviation inside the segment relative to all customers (0 = all "
        "alike, 1 = as spread as everyone). Separation: distance to the nearest segment's "
        "centre, in standard deviations. Variance explained by the segments: "
        f"{html.escape(explained)}.</p>",
        _table(quality.table, QUALITY_HEADERS, pct=("share",)),
    ]
    if migration is not None:
        parts.append(_migration_section(Figure, migration))
    if clv is not None and result.stats.customers:
        parts.append(_clv_section(Figure, result, clv))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(
    result: RFMResult,
    path: str | os.PathLike,
    *,
    migration: Migration | None = None,
    title: str | None = None,
    clv: Any = None,
) -> Path:
    """Write :func:`build_report` to ``path`` (atomically: a temporary file, then a rename).

    Parameters
    ----------
    result, migration, title, clv
        As for :func:`build_report`.
    path : str or PathLike
        The HTML file to write (replaced if it exists).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    target = check_output_path(path, suffixes=(".html", ".htm"))
    document = build_report(result, migration=migration, title=title, clv=clv)
    return write_atomically(target, lambda temporary: temporary.write_text(document, "utf-8"))
