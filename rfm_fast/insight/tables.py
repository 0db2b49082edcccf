"""Segment analytics over a scored result: summary, quality, and score grids (heatmaps).

Every function takes an :class:`rfm_fast.RFMResult` and returns a small Arrow table (one row per
segment or per grid cell), so the numbers can be printed, written or charted. Definitions are
in docs/insight.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from rfm_fast.core.arrow import primitive_values
from rfm_fast.core.scoring import RFMResult
from rfm_fast.core.segments import OTHER, SegmentsSpec, assign_segments, playbook, resolve_rules
from rfm_fast.errors import RFMError

SCORES = ("R", "F", "M")
METRICS = ("recency", "frequency", "monetary")
DEFAULT_MIN_SHARE = 0.01
DEFAULT_MIN_SEPARATION = 0.25
QUALITY_COLUMNS = (
    "segment",
    "customers",
    "share",
    "revenue_share",
    "spread_recency",
    "spread_frequency",
    "spread_monetary",
    "homogeneity",
    "nearest_segment",
    "separation",
    "flags",
)
"""The columns of :attr:`SegmentQuality.table`."""


@dataclass(frozen=True)
class _Columns:
    """The result's columns as NumPy arrays, customers grouped by segment."""

    names: list[str]  # segment names in rule order, "Other" last
    starts: np.ndarray  # customers of segment s are rows starts[s]:starts[s+1] of the arrays
    scores: dict[str, np.ndarray]
    metrics: dict[str, np.ndarray]
    revenue: np.ndarray  # per customer: the sum of the amounts


def _columns(result: RFMResult) -> _Columns:
    table = result.table
    segment = table.column("segment").combine_chunks()
    names = [str(n) for n in segment.dictionary.to_pylist()]
    codes = primitive_values(segment.indices, segment.indices.type.to_pandas_dtype())
    codes = codes.astype(np.int64)
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(len(names) + 1))
    scores = {s: table.column(s).to_numpy()[order].astype(np.int64) for s in SCORES}
    metrics = {m: table.column(m).to_numpy()[order].astype(np.float64) for m in METRICS}
    revenue = metrics["monetary"]
    if result.stats.monetary == "mean":  # monetary is the mean per order: back to the sum
        revenue = revenue * metrics["frequency"]
    return _Columns(names, starts, scores, metrics, revenue)


def _stat(values: np.ndarray, how) -> float:
    return float(how(values)) if values.shape[0] else float("nan")


def summarize(result: RFMResult) -> pa.Table:
    """Per segment: size, revenue, and the mean and median of each score and metric.

    Parameters
    ----------
    result : RFMResult
        A result of :func:`rfm_fast.score`.

    Returns
    -------
    pyarrow.Table
        One row per segment in rule order (segments without customers included), with columns
        ``segment``, its playbook (``description, action, priority``: see
        :func:`rfm_fast.playbook`; nulls where a segment has none),
        ``customers, share, revenue, revenue_share``, ``mean_R, median_R`` (and F, M),
        ``mean_recency, median_recency`` (and frequency, monetary), ``average_order_value``
        (revenue / orders) and ``revenue_per_customer``. Shares are fractions of all customers
        and of all revenue; "revenue" is the sum of the amounts (``monetary`` times
        ``frequency`` when ``monetary="mean"``).

    Examples
    --------
    >>> import rfm_fast
    >>> result = rfm_fast.score(rfm_fast.datasets.load_example(),
    ...                         **rfm_fast.datasets.EXAMPLE_COLUMNS)
    >>> summary = rfm_fast.summarize(result)
    >>> row = summary.to_pylist()[0]
    >>> row["segment"], row["customers"], round(row["share"], 3)
    ('Champions', 4135, 0.175)
    """
    c = _columns(result)
    total_customers = c.starts[-1]
    total_revenue = float(c.revenue.sum())
    book = _playbook_of(result, c.names)
    rows: dict[str, list] = {"segment": c.names, **book, "customers": [], "share": []}
    for name in ("revenue", "revenue_share"):
        rows[name] = []
    for column in (*SCORES, *METRICS):
        rows[f"mean_{column}"], rows[f"median_{column}"] = [], []
    rows["average_order_value"], rows["revenue_per_customer"] = [], []
    for s in range(len(c.names)):
        part = slice(c.starts[s], c.starts[s + 1])
        n = int(c.starts[s + 1] - c.starts[s])
        revenue = float(c.revenue[part].sum())
        orders = float(c.metrics["frequency"][part].sum())
        rows["customers"].append(n)
        rows["share"].append(n / total_customers if total_customers else float("nan"))
        rows["revenue"].append(revenue)
        rows["revenue_share"].append(revenue / total_revenue if total_revenue else float("nan"))
        for column in SCORES:
            rows[f"mean_{column}"].append(_stat(c.scores[column][part], np.mean))
            rows[f"median_{column}"].append(_stat(c.scores[column][part], np.median))
        for column in METRICS:
            rows[f"mean_{column}"].append(_stat(c.metrics[column][part], np.mean))
            rows[f"median_{column}"].append(_stat(c.metrics[column][part], np.median))
        rows["average_order_value"].append(revenue / orders if orders else float("nan"))
        rows["revenue_per_customer"].append(revenue / n if n else float("nan"))
    types = {"customers": pa.int64(), "priority": pa.int16()}
    types.update(description=pa.string(), action=pa.string())
    return pa.table({k: pa.array(v, types.get(k)) for k, v in rows.items()})


def _playbook_of(result: RFMResult, names: list[str]) -> dict[str, list]:
    """The description, action and priority of the segments ``names`` (by name, from the
    result's rules; "Other" and names without a rule have no action and priority)."""
    book = playbook(result.rules, result.stats.bins).to_pydict()
    at = {name: i for i, name in enumerate(book["segment"])}
    return {
        key: [book[key][at[n]] if n in at else None for n in names]
        for key in ("description", "action", "priority")
    }


def lifecycle_table(result: RFMResult, stages: SegmentsSpec = "lifecycle") -> pa.Table:
    """Customers per segment and lifecycle stage: how long ago each segment's customers first
    and last bought, in days rather than relative scores.

    Parameters
    ----------
    result : RFMResult
        A result of :func:`rfm_fast.score`.
    stages : str, path or sequence of SegmentRule, default "lifecycle"
        The stages: ordered rules as for ``segments`` (the built-in ``"lifecycle"`` map: New =
        first purchase within 30 days, Active = last purchase within 89 days, Lapsing = 90-180,
        Dormant = 181-365, Lost = over 365; or a rules file of your own, usually over
        ``recency`` and ``tenure`` in days).

    Returns
    -------
    pyarrow.Table
        One row per segment in rule order (as :func:`summarize`), column ``segment``, then the
        number of customers in each stage (int64), one column per stage in rule order, named
        after it, and ``Other`` last when some customer matches no stage.

    Examples
    --------
    >>> import rfm_fast
    >>> result = rfm_fast.score(rfm_fast.datasets.load_example(),
    ...                         **rfm_fast.datasets.EXAMPLE_COLUMNS)
    >>> table = rfm_fast.lifecycle_table(result)
    >>> table.column_names
    ['segment', 'New', 'Active', 'Lapsing', 'Dormant', 'Lost']
    >>> table.to_pylist()[0]
    {'segment': 'Champions', 'New': 0, 'Active': 2989, 'Lapsing': 1146, 'Dormant': 0, 'Lost': 0}
    """
    rules = resolve_rules(stages, result.stats.bins)
    if not rules:
        raise RFMError("stages must be at least one rule, e.g. the 'lifecycle' map")
    if "segment" in [rule.name for rule in rules]:
        raise RFMError("a stage may not be named 'segment' (the table's first column)")
    table = result.table
    segment = table.column("segment").combine_chunks()
    names = [str(n) for n in segment.dictionary.to_pylist()]
    codes = primitive_values(segment.indices, segment.indices.type.to_pandas_dtype())
    scores = {s: table.column(s).to_numpy() for s in SCORES}
    metrics = {m: table.column(m).to_numpy() for m in ("recency", "tenure", *METRICS[1:])}
    stage = assign_segments(rules, scores, metrics)
    stage_codes = stage.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    n_stages = len(rules) + 1
    counts = np.bincount(
        codes.astype(np.int64) * n_stages + stage_codes, minlength=len(names) * n_stages
    ).reshape(len(names), n_stages)
    columns: dict[str, pa.Array] = {"segment": pa.array(names, pa.string())}
    for k, rule in enumerate(rules):
        columns[rule.name] = pa.array(counts[:, k], pa.int64())
    if counts[:, -1].any():
        columns[OTHER] = pa.array(counts[:, -1], pa.int64())
    return pa.table(columns)


def _transformed(metrics: dict[str, np.ndarray]) -> np.ndarray:
    """The metrics on the scales that quality is measured on: recency in days, log(1 +
    frequency), and signed log(1 + |monetary|) (spend is heavy-tailed); one column each."""
    money = metrics["monetary"]
    return np.column_stack(
        [
            metrics["recency"],
            np.log1p(metrics["frequency"]),
            np.sign(money) * np.log1p(np.abs(money)),
        ]
    )


@dataclass(frozen=True)
class SegmentQuality:
    """How good the segments are: see :func:`segment_quality`.

    Attributes
    ----------
    table : pyarrow.Table
        One row per segment: ``segment, customers, share, revenue_share``, the within-segment
        spread of each metric relative to all customers (``spread_recency``,
        ``spread_frequency``, ``spread_monetary``: 0 = all alike, 1 = as spread as all
        customers), ``homogeneity`` (1 minus their mean), ``nearest_segment``, ``separation``
        (distance to its centroid, in units of the overall standard deviation), and ``flags``.
    explained : dict of str to float
        Per metric, the share of its variance explained by the segments (between-segment
        variance over total variance, on the quality scales), from 0 to 1.
    """

    table: pa.Table
    explained: dict[str, float]

    def flagged(self) -> list[tuple[str, str]]:
        """(segment, flag) for every flag raised."""
        return [
            (segment, flag)
            for segment, flags in zip(
                self.table.column("segment").to_pylist(),
                self.table.column("flags").to_pylist(),
                strict=True,
            )
            for flag in flags
        ]


def segment_quality(
    result: RFMResult,
    *,
    min_share: float = DEFAULT_MIN_SHARE,
    min_separation: float = DEFAULT_MIN_SEPARATION,
) -> SegmentQuality:
    """Test the segments the way marketers test a segmentation: homogeneous inside, distinct
    from each other, and big enough to act on.

    Metrics are compared on scales that suit them (recency in days, ``log(1 + frequency)``,
    signed ``log(1 + |monetary|)``), each divided by its standard deviation over all customers.

    * **Homogeneity**: per segment and metric, the standard deviation inside the segment over
      that of all customers (``spread_*``); ``homogeneity`` is 1 minus their mean.
    * **Separation**: the distance from the segment's centroid (the mean of the three scaled
      metrics) to the nearest other segment's centroid.
    * **Size**: share of customers and of revenue.

    Flags: ``"empty"`` (no customers), ``"tiny"`` (share below ``min_share``), and
    ``"indistinguishable from X"`` (separation below ``min_separation``).

    Parameters
    ----------
    result : RFMResult
        A result of :func:`rfm_fast.score`.
    min_share : float, default 0.01
        Segments with a smaller share of customers are flagged as tiny.
    min_separation : float, default 0.25
        Segments whose centroid is closer than this to another's are flagged.

    Returns
    -------
    SegmentQuality

    Examples
    --------
    >>> import rfm_fast
    >>> result = rfm_fast.score(rfm_fast.datasets.load_example(),
    ...                         **rfm_fast.datasets.EXAMPLE_COLUMNS)
    >>> quality = rfm_fast.segment_quality(result)
    >>> {k: round(v, 2) for k, v in quality.explained.items()}
    {'recency': 0.9, 'frequency': 0.81, 'monetary': 0.59}
    >>> quality.flagged()[2]
    ('About To Sleep', 'indistinguishable from Hibernating')
    """
    if not 0 <= min_share < 1:
        raise RFMError(f"min_share must be a fraction from 0 to 1; got {min_share}")
    if min_separation < 0:
        raise RFMError(f"min_separation must be at least 0; got {min_separation}")
    c = _columns(result)
    scaled = _scaled_metrics(c.metrics)
    centroids, spreads = _segment_moments(scaled, c.starts)
    sizes = np.diff(c.starts)
    overall = scaled.mean(axis=0) if scaled.shape[0] else np.zeros(3)
    between = np.nansum(sizes[:, None] * (centroids - overall) ** 2, axis=0)
    within = np.nansum(sizes[:, None] * spreads**2, axis=0)
    explained = {
        m: float(between[k] / (between[k] + within[k])) if between[k] + within[k] else 0.0
        for k, m in enumerate(METRICS)
    }
    table = _quality_table(c, centroids, spreads, min_share, min_separation)
    return SegmentQuality(table, explained)


def _scaled_metrics(metrics: np.ndarray) -> np.ndarray:
    """The metrics on their comparison scales (:func:`_transformed`), each divided by its
    standard deviation over all customers."""
    values = _transformed(metrics)
    scale = values.std(axis=0) if values.shape[0] else np.ones(3)
    scale[scale == 0] = 1.0  # a metric on which every customer is equal: spreads are all 0
    return values / scale


def _segment_moments(scaled: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per segment (rows ``starts[s]..starts[s+1]-1``), the centroid and the standard
    deviation of each scaled metric; NaN for an empty segment."""
    n_segments = starts.shape[0] - 1
    centroids = np.full((n_segments, 3), np.nan)
    spreads = np.full((n_segments, 3), np.nan)
    for s in range(n_segments):
        part = scaled[starts[s] : starts[s + 1]]
        if part.shape[0]:
            centroids[s] = part.mean(axis=0)
            spread = part.std(axis=0)
            spreads[s] = np.where(spread < 1e-9, 0.0, spread)  # rounding noise of equal values
    return centroids, spreads


def _quality_table(
    c: _Columns,
    centroids: np.ndarray,
    spreads: np.ndarray,
    min_share: float,
    min_separation: float,
) -> pa.Table:
    """One row per segment: size, revenue share, spreads, homogeneity, nearest segment,
    separation and flags."""
    sizes = np.diff(c.starts)
    total = int(c.starts[-1])
    revenue_total = float(c.revenue.sum())
    rows: dict[str, list] = {name: [] for name in QUALITY_COLUMNS}
    for s, name in enumerate(c.names):
        n = int(sizes[s])
        share = n / total if total else 0.0
        revenue = float(c.revenue[c.starts[s] : c.starts[s + 1]].sum())
        nearest, separation = _nearest(c.names, centroids, s) if n else (None, float("nan"))
        flags = []
        if n == 0:
            flags.append("empty")
        elif share < min_share:
            flags.append("tiny")
        if nearest is not None and separation < min_separation:
            flags.append(f"indistinguishable from {nearest}")
        rows["segment"].append(name)
        rows["customers"].append(n)
        rows["share"].append(share)
        rows["revenue_share"].append(revenue / revenue_total if revenue_total else float("nan"))
        for k, metric in enumerate(METRICS):
            rows[f"spread_{metric}"].append(float(spreads[s, k]))
        rows["homogeneity"].append(float(1 - np.mean(spreads[s])) if n else float("nan"))
        rows["nearest_segment"].append(nearest)
        rows["separation"].append(separation)
        rows["flags"].append(flags)
    types = {"customers": pa.int64(), "nearest_segment": pa.string()}
    return pa.table({k: pa.array(v, types.get(k)) for k, v in rows.items()})


def _nearest(names: list[str], centroids: np.ndarray, s: int) -> tuple[str | None, float]:
    """The segment whose centroid is nearest to segment ``s``'s, and the distance (None and
    NaN when no other segment has customers)."""
    distances = np.linalg.norm(centroids - centroids[s], axis=1)
    distances[s] = np.nan
    if not np.isfinite(distances).any():
        return None, float("nan")
    k = int(np.nanargmin(distances))
    return names[k], float(distances[k])


def grid(result: RFMResult, rows: str = "R", columns: str = "F") -> pa.Table:
    """The classic RFM heatmap: customers, revenue and mean monetary per cell of two scores.

    Parameters
    ----------
    result : RFMResult
        A result of :func:`rfm_fast.score`.
    rows, columns : {"R", "F", "M"}, default "R" and "F"
        The two scores.

    Returns
    -------
    pyarrow.Table
        One row per cell, all ``bins x bins`` cells (empty ones with 0 customers and NaN
        means), in row-major order: the two scores (named after them), ``customers``,
        ``share``, ``revenue``, ``revenue_share`` and ``mean_monetary``.

    Examples
    --------
    >>> import rfm_fast
    >>> result = rfm_fast.score(rfm_fast.datasets.load_example(),
    ...                         **rfm_fast.datasets.EXAMPLE_COLUMNS)
    >>> cells = rfm_fast.grid(result, "R", "F")
    >>> cells.num_rows, cells.column_names[:3]
    (25, ['R', 'F', 'customers'])
    """
    for name in (rows, columns):
        if name not in SCORES:
            raise RFMError(f"grid scores must be among R, F, M; got {name!r}")
    if rows == columns:
        raise RFMError(f"grid needs two different scores; got {rows!r} twice")
    c = _columns(result)
    bins = result.stats.bins
    cell = (c.scores[rows] - 1) * bins + (c.scores[columns] - 1)
    customers = np.bincount(cell, minlength=bins * bins)
    revenue = np.bincount(cell, weights=c.revenue, minlength=bins * bins)
    money = np.bincount(cell, weights=c.metrics["monetary"], minlength=bins * bins)
    total_customers, total_revenue = customers.sum(), revenue.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_monetary = np.where(customers > 0, money / customers, np.nan)
        share = customers / total_customers if total_customers else np.full(bins * bins, np.nan)
        revenue_share = revenue / total_revenue if total_revenue else np.full(bins * bins, np.nan)
    return pa.table(
        {
            rows: pa.array(np.repeat(np.arange(1, bins + 1), bins), pa.int8()),
            columns: pa.array(np.tile(np.arange(1, bins + 1), bins), pa.int8()),
            "customers": pa.array(customers, pa.int64()),
            "share": share,
            "revenue": revenue,
            "revenue_share": revenue_share,
            "mean_monetary": mean_monetary,
        }
    )
