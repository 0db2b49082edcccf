"""Plain pandas reference implementation of ``docs/semantics.md``.

This module is slow on purpose: every step is written the most direct way, so that it can be
read against the contract line by line. The compiled engine is tested against it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from rfm_fast.optional import require

pd = require("pandas", "reference", "rfm_fast.reference (the pandas reference)")

Ranges = dict[str, tuple[int, int]]
Rule = tuple[str, Ranges]

DEFAULT_RULES: list[Rule] = [
    ("Champions", {"R": (5, 5), "F": (4, 5)}),
    ("Loyal Customers", {"R": (3, 4), "F": (4, 5)}),
    ("Potential Loyalists", {"R": (4, 5), "F": (2, 3)}),
    ("New Customers", {"R": (5, 5), "F": (1, 1)}),
    ("Promising", {"R": (4, 4), "F": (1, 1)}),
    ("Need Attention", {"R": (3, 3), "F": (3, 3)}),
    ("About To Sleep", {"R": (3, 3), "F": (1, 2)}),
    ("At Risk", {"R": (1, 2), "F": (3, 4)}),
    ("Can't Lose Them", {"R": (1, 2), "F": (5, 5)}),
    ("Hibernating", {"R": (1, 2), "F": (1, 2)}),
]

METRICS = ("recency", "frequency", "monetary")
# Higher is better for frequency and monetary; lower is better for recency.
HIGHER_IS_BETTER = {"recency": False, "frequency": True, "monetary": True}
DAY = pd.Timedelta(days=1)

__all__ = ["DEFAULT_RULES", "score"]


# --------------------------------------------------------------------------- validation


def _check_options(
    bins: int,
    method: str,
    frequency: str,
    monetary: str,
    thresholds: dict[str, list[float]] | None,
    rules: list[Rule] | None,
) -> None:
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or not 2 <= bins <= 9:
        raise ValueError(f"bins must be an integer from 2 to 9, got {bins!r}")
    if method not in ("exact", "split"):
        raise ValueError(f"method must be 'exact' or 'split', got {method!r}")
    if frequency not in ("orders", "days"):
        raise ValueError(f"frequency must be 'orders' or 'days', got {frequency!r}")
    if monetary not in ("sum", "mean"):
        raise ValueError(f"monetary must be 'sum' or 'mean', got {monetary!r}")
    for metric, edges in (thresholds or {}).items():
        if metric not in METRICS:
            raise ValueError(f"thresholds: unknown metric {metric!r}")
        values = [float(e) for e in edges]
        if len(values) + 1 != bins:
            raise ValueError(
                f"thresholds[{metric!r}] has {len(values)} edges, so {len(values) + 1} scores; "
                f"bins is {bins}"
            )
        if any(math.isnan(v) for v in values):
            raise ValueError(f"thresholds[{metric!r}] contains NaN")
        if any(b < a for a, b in itertools.pairwise(values)):
            raise ValueError(f"thresholds[{metric!r}] must be increasing, got {values}")
    if rules is None:
        return
    if bins != 5 and rules == DEFAULT_RULES:
        raise ValueError("the default segment map is defined for 5 bins only; pass rules")
    names: set[str] = set()
    for name, ranges in rules:
        if name in names:
            raise ValueError(f"duplicate segment name {name!r}")
        names.add(name)
        if not ranges or set(ranges) - {"R", "F", "M"}:
            raise ValueError(f"segment {name!r}: keys must be a non-empty subset of R, F, M")
        for key, (lo, hi) in ranges.items():
            if not 1 <= lo <= hi <= bins:
                raise ValueError(f"segment {name!r}: {key} range ({lo}, {hi}) not within 1..{bins}")


# --------------------------------------------------------------------------- input columns


def _as_float(column: pd.Series) -> np.ndarray:
    """Numeric (or Decimal / None object) column as float64, nulls as NaN."""
    if pd.api.types.is_numeric_dtype(column.dtype):
        return column.to_numpy(dtype="float64", na_value=np.nan)
    return np.array([np.nan if pd.isna(v) else float(v) for v in column], dtype="float64")


def _reject_infinite(values: np.ndarray, name: str) -> None:
    bad = np.flatnonzero(np.isinf(values))
    if bad.size:
        raise ValueError(f"amount column {name!r} has an infinite value at row {int(bad[0])}")


def _amounts(df: pd.DataFrame, amount: str) -> np.ndarray:
    """The amount of every input row (float64, NaN where null); infinite values raise."""
    if amount in df.columns:
        values = _as_float(df[amount])
        _reject_infinite(values, amount)
        return values
    names = amount.split("*")
    if len(names) != 2 or not all(n in df.columns for n in names):
        raise KeyError(f"amount {amount!r} is neither a column nor 'A*B' of two columns")
    left, right = (_as_float(df[n]) for n in names)
    _reject_infinite(left, names[0])
    _reject_infinite(right, names[1])
    with np.errstate(over="ignore"):
        product = left * right  # NaN if either factor is NaN
    _reject_infinite(product, amount)
    return product


def _timestamps(column: pd.Series) -> pd.Series:
    """datetime64 columns as they are; ``datetime.date`` objects become midnight datetime64."""
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        return column
    return pd.to_datetime(column)


def _customer_keys(keys: pd.Series) -> pd.Series:
    """Non-null customer keys as int64 / uint64 (integer keys) or str (text keys)."""
    if isinstance(keys.dtype, pd.CategoricalDtype):
        keys = keys.astype(keys.cat.categories.dtype)
    dtype = keys.dtype
    if pd.api.types.is_bool_dtype(dtype):
        raise ValueError("customer keys must be integers or text, not booleans")
    if pd.api.types.is_unsigned_integer_dtype(dtype) and dtype.itemsize == 8:
        return keys.astype("uint64")
    if pd.api.types.is_integer_dtype(dtype):
        return keys.astype("int64")
    if pd.api.types.is_float_dtype(dtype):  # integer keys that went through NaN
        values = keys.to_numpy(dtype="float64")
        if not np.array_equal(values, np.floor(values)):
            raise ValueError("customer keys must be integers or text")
        return keys.astype("int64")
    values = list(keys)
    if all(isinstance(v, str) for v in values):
        return pd.Series(values, index=keys.index, dtype="str")
    if all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in values):
        return pd.Series(values, index=keys.index, dtype="int64")
    raise ValueError("customer keys must be all integers or all text")


# --------------------------------------------------------------------------- scoring


def _exact_sum(values: pd.Series) -> float:
    """Correctly rounded sum of the non-null values (independent of their order); 0.0 if none."""
    array = values.to_numpy(dtype="float64")  # (not Series.dropna: 10x slower per group)
    return math.fsum(array[~np.isnan(array)]) + 0.0  # + 0.0 turns -0.0 into 0.0


def _exact_scores(values: np.ndarray, bins: int, higher_is_better: bool) -> np.ndarray:
    # rank "min" - 1 = number of customers with a strictly worse value.
    rank = pd.Series(values).rank(method="min", ascending=higher_is_better)
    less = rank.to_numpy(dtype="int64") - 1
    return 1 + (bins * less) // len(values)


def _split_scores(values: np.ndarray, bins: int, higher_is_better: bool) -> np.ndarray:
    # Values are in customer-key order, so the position breaks ties by key ascending.
    n = len(values)
    position = np.arange(n)
    worst_first = values if higher_is_better else -values
    ranked = np.lexsort((position, worst_first))  # customer indices, worst to best
    size, extra = divmod(n, bins)
    big = extra * (size + 1)  # customers in the first `extra` groups (of size + 1)
    group = np.where(
        position < big,
        position // (size + 1),
        extra + (position - big) // max(size, 1),
    )
    scores = np.empty(n, dtype="int64")
    scores[ranked] = 1 + group
    return scores


def _threshold_scores(values: np.ndarray, edges: list[float], higher_is_better: bool) -> np.ndarray:
    e = np.asarray(edges, dtype="float64")
    below = (e[np.newaxis, :] < values[:, np.newaxis]).sum(axis=1)
    return 1 + below if higher_is_better else len(e) + 1 - below


def _largest(values: np.ndarray, mask: np.ndarray) -> float:
    # No customer reaches the score (the best recency scores can stay empty): any value below
    # all values reproduces the scores, so the edge is -inf. No customers at all: NaN.
    if mask.any():
        return float(values[mask].max())
    return -math.inf if len(values) else math.nan


def _edges(
    values: np.ndarray, scores: np.ndarray, bins: int, higher_is_better: bool
) -> list[float]:
    if higher_is_better:
        return [_largest(values, scores <= j) for j in range(1, bins)]
    return [_largest(values, scores >= bins + 1 - j) for j in range(1, bins)]


def _segments(r: np.ndarray, f: np.ndarray, m: np.ndarray, rules: list[Rule] | None) -> list[str]:
    segment = np.full(len(r), "Other", dtype=object)
    taken = np.zeros(len(r), dtype=bool)
    by_key = {"R": r, "F": f, "M": m}
    for name, ranges in rules or []:
        match = ~taken
        for key, (lo, hi) in ranges.items():
            match &= (by_key[key] >= lo) & (by_key[key] <= hi)
        segment[match] = name
        taken |= match
    return list(segment)


# --------------------------------------------------------------------------- entry point


def score(
    df: pd.DataFrame,
    *,
    customer: str,
    timestamp: str,
    amount: str,
    order: str | None = None,
    as_of: pd.Timestamp | None = None,
    bins: int = 5,
    method: str = "exact",
    frequency: str = "orders",
    monetary: str = "sum",
    thresholds: dict[str, list[float]] | None = None,
    rules: list[Rule] | None = DEFAULT_RULES,
    returns: str = "net",
    window: int | None = None,
) -> tuple[pd.DataFrame, dict[str, list[float]], dict[str, Any]]:
    """Score customers by recency, frequency and monetary value, as ``docs/semantics.md`` says.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per order or order line.
    customer : str
        Customer key column (integers or text; null rows are dropped).
    timestamp : str
        Purchase time column: datetime64 of any unit, zoned or naive, or ``datetime.date``
        objects (midnight). Null rows are dropped.
    amount : str
        Amount column, or ``"A*B"`` for the product of columns ``A`` and ``B``. Nulls and NaN
        are left out of the sum; infinite values raise ``ValueError``.
    order : str, optional
        Order id column. Frequency counts distinct order ids per customer, and each row with a
        null order id as an order of its own. Without it, frequency counts rows.
    as_of : pandas.Timestamp, optional
        End of the observation window (zoned iff the timestamp column is). Defaults to the
        latest timestamp (of the rows with a customer, returns included) plus one day. Later
        rows are dropped.
    bins : int, default 5
        Number of scores per metric, 2 to 9.
    method : {"exact", "split"}, default "exact"
        ``"exact"``: ``1 + bins * less(v) // N`` (ties share a score). ``"split"``: NTILE
        groups, ties broken by customer key ascending.
    frequency : {"orders", "days"}, default "orders"
        Count orders, or distinct calendar days (in the column's time zone if zoned).
    monetary : {"sum", "mean"}, default "sum"
        Net sum of the amounts, or that sum divided by frequency.
    thresholds : dict of str to list of float, optional
        Explicit edges for ``"recency"``, ``"frequency"`` and/or ``"monetary"``, overriding
        `method` for those metrics. Each needs ``bins - 1`` non-decreasing edges.
    rules : list of (str, dict of str to (int, int)), optional
        Ordered segment rules; the first whose inclusive score ranges all match wins, else
        ``"Other"``. ``None`` makes every segment ``"Other"``. The default map needs ``bins=5``.
    returns : {"net", "purchase", "drop"}, default "net"
        A row with a negative amount is a return. ``"net"``: it adds to the sum, but is not a
        purchase (no frequency, first or last purchase); customers with only returns are left
        out. ``"purchase"``: a row like any other. ``"drop"``: left out, after the other
        reasons, and counted.
    window : int, optional
        Days: rows more than this before ``as_of`` (``timestamp < as_of - window days``) are
        left out, after the rows without customer or timestamp and before returns, and counted
        as ``dropped["before_window"]``.

    Returns
    -------
    table : pandas.DataFrame
        One row per customer, sorted by key, with columns ``<customer>, recency, frequency,
        monetary, first_purchase, last_purchase, tenure, R, F, M, rfm_cell, rfm_score,
        segment``.
    edges : dict of str to list of float
        Per metric, the ``bins - 1`` edges that reproduce the scores (``-inf`` where no
        customer reaches the score, NaN for every edge of an empty input).
    stats : dict
        ``rows_read``, ``rows_used``, ``dropped`` (``null_customer``, ``null_timestamp``,
        ``after_as_of``, ``returns``), ``null_amount``, ``customers``, ``as_of``,
        ``empty_bins``, ``return_rows`` and ``customers_only_returns``.

    Raises
    ------
    ValueError
        On invalid options, thresholds or rules, bad customer keys, or infinite amounts.
    """
    thresholds = thresholds or {}
    _check_options(bins, method, frequency, monetary, thresholds, rules)
    if returns not in ("net", "purchase", "drop"):
        raise ValueError(f"returns must be 'net', 'purchase' or 'drop', got {returns!r}")
    if window is not None and (not isinstance(window, int) or window < 1):
        raise ValueError(f"window must be a positive number of days, got {window!r}")
    used = _used_rows(df, customer, timestamp, amount, as_of, returns, window)
    all_customers = _per_customer(used, df, order, frequency, returns)
    per = all_customers[all_customers["frequency"] > 0] if returns == "net" else all_customers
    values = _metric_values(per, used.as_of, monetary)
    scores, edges = _scores_and_edges(values, bins, method, thresholds)
    table = _result_table(customer, used.keys.dtype, per, values, scores, rules)
    stats: dict[str, Any] = {
        "rows_read": len(df),
        "rows_used": int(used.keep.sum()),
        "dropped": {
            "null_customer": int(used.null_customer.sum()),
            "null_timestamp": int(used.null_timestamp.sum()),
            "after_as_of": int(used.after_as_of.sum()),
            "returns": int(used.dropped_returns.sum()),
            **({} if window is None else {"before_window": int(used.before_window.sum())}),
        },
        "null_amount": int(np.isnan(used.rows["amount"].to_numpy()).sum()),
        "return_rows": used.return_rows,
        "customers_only_returns": len(all_customers) - len(per),
        "customers": len(per),
        "as_of": used.as_of,
        "empty_bins": {
            metric: [s for s in range(1, bins + 1) if not (scores[metric] == s).any()]
            for metric in METRICS
        },
    }
    return table, edges, stats


@dataclass(frozen=True)
class _UsedRows:
    """The rows that count, and why the others do not."""

    rows: pd.DataFrame  # key, ts (unit and zone kept), amount
    keys: pd.Series
    keep: np.ndarray
    null_customer: np.ndarray
    null_timestamp: np.ndarray
    after_as_of: np.ndarray
    before_window: np.ndarray
    dropped_returns: np.ndarray
    return_rows: int  # rows with a negative amount, of those not dropped for another reason
    as_of: pd.Timestamp | None


def _used_rows(
    df: pd.DataFrame,
    customer: str,
    timestamp: str,
    amount: str,
    as_of: pd.Timestamp | None,
    returns: str,
    window: int | None = None,
) -> _UsedRows:
    """Drop null customers, then null timestamps, then rows after ``as_of`` (by default the
    latest timestamp plus one day), then returns with ``returns="drop"``. The default ``as_of``
    comes from the rows with a customer and a timestamp, returns included in every mode."""
    amounts = _amounts(df, amount)
    ts_all = _timestamps(df[timestamp])
    null_customer = df[customer].isna().to_numpy()
    null_timestamp = ts_all.isna().to_numpy() & ~null_customer
    keep = ~null_customer & ~null_timestamp
    negative = amounts < 0  # False for NaN
    after_as_of = np.zeros(len(df), dtype=bool)
    if as_of is not None:  # (no row is after the default as_of)
        after_as_of = keep & (ts_all > as_of).to_numpy()
    keep &= ~after_as_of
    if as_of is None and keep.any():
        as_of = ts_all[keep].max() + DAY
    before_window = np.zeros(len(df), dtype=bool)
    if window is not None and as_of is not None:
        as_of = pd.Timestamp(as_of)
        # as_of at the column's resolution: a column of dates counts whole days
        dates = not pd.api.types.is_datetime64_any_dtype(df[timestamp].dtype)
        end = as_of.floor("D") if dates else as_of
        before_window = keep & (ts_all < end - window * DAY).to_numpy()
    keep &= ~before_window
    return_rows = int((keep & negative).sum())
    dropped_returns = keep & negative if returns == "drop" else np.zeros(len(df), dtype=bool)
    keep &= ~dropped_returns
    keys = _customer_keys(df[customer][keep]).reset_index(drop=True)
    rows = pd.DataFrame(
        {"key": keys, "ts": ts_all[keep].reset_index(drop=True), "amount": amounts[keep]}
    )
    return _UsedRows(
        rows,
        keys,
        keep,
        null_customer,
        null_timestamp,
        after_as_of,
        before_window,
        dropped_returns,
        return_rows,
        as_of,
    )


def _per_customer(
    used: _UsedRows, df: pd.DataFrame, order: str | None, frequency: str, returns: str
) -> pd.DataFrame:
    """First and last purchase, exact sum and frequency per customer, sorted by key: numbers
    numerically, text by code point (= UTF-8 byte order). With ``returns="net"``, the first and
    last purchase and the frequency come from the purchases only (a customer with none has
    frequency 0), the sum from every row."""
    rows = used.rows
    if frequency == "days":
        wall = rows["ts"].dt.tz_localize(None) if rows["ts"].dt.tz is not None else rows["ts"]
        rows = rows.assign(day=wall.dt.floor("D"))
    if order is not None:
        orders = df[order][used.keep].reset_index(drop=True)
        rows = rows.assign(order=orders, order_is_null=orders.isna())
    sums = rows.groupby("key", sort=False)["amount"].agg(_exact_sum).astype("float64")
    purchases = rows[~(rows["amount"] < 0).to_numpy()] if returns == "net" else rows
    groups = purchases.groupby("key", sort=False)
    per = pd.DataFrame({"sum": sums})
    per["first_purchase"] = groups["ts"].min()
    per["last_purchase"] = groups["ts"].max()
    too_large = per.index[(per["sum"].abs() >= 2.0**63 - 2).to_numpy()]
    if len(too_large):
        raise ValueError(f"the amounts of customer {too_large[0]!r} sum past 2**63 - 2")
    if frequency == "days":
        per["frequency"] = groups["day"].nunique()
    elif order is not None:
        per["frequency"] = groups["order"].nunique() + groups["order_is_null"].sum()
    else:
        per["frequency"] = groups.size()
    per["frequency"] = per["frequency"].fillna(0).astype("int64")
    per = per[["first_purchase", "last_purchase", "sum", "frequency"]]
    found = list(per.index)
    return per.iloc[sorted(range(len(found)), key=found.__getitem__)]


def _metric_values(
    per: pd.DataFrame, as_of: pd.Timestamp | None, monetary: str
) -> dict[str, np.ndarray]:
    """Recency, frequency and monetary per customer, and tenure."""
    if len(per):
        recency = ((as_of - per["last_purchase"]) // DAY).to_numpy(dtype="int64")
        tenure = ((as_of - per["first_purchase"]) // DAY).to_numpy(dtype="int64")
    else:
        recency = tenure = np.zeros(0, dtype="int64")
    freq = per["frequency"].to_numpy(dtype="int64")
    money = per["sum"].to_numpy(dtype="float64")
    if monetary == "mean":
        money = money / freq
    return {"recency": recency, "frequency": freq, "monetary": money, "tenure": tenure}


def _scores_and_edges(
    values: dict[str, np.ndarray], bins: int, method: str, thresholds: dict[str, list[float]]
) -> tuple[dict[str, np.ndarray], dict[str, list[float]]]:
    """The scores of each metric, and the edges that reproduce them."""
    scores: dict[str, np.ndarray] = {}
    edges: dict[str, list[float]] = {}
    for metric in METRICS:
        v, better = values[metric], HIGHER_IS_BETTER[metric]
        if metric in thresholds:
            edges[metric] = [float(e) for e in thresholds[metric]]
            scores[metric] = _threshold_scores(v, edges[metric], better)
            continue
        if v.shape[0] == 0:
            scores[metric] = np.zeros(0, dtype="int64")
        elif method == "exact":
            scores[metric] = _exact_scores(v, bins, better)
        else:
            scores[metric] = _split_scores(v, bins, better)
        edges[metric] = _edges(v, scores[metric], bins, better)
    return scores, edges


def _result_table(
    customer: str,
    key_dtype: Any,
    per: pd.DataFrame,
    values: dict[str, np.ndarray],
    scores: dict[str, np.ndarray],
    rules: list[Rule] | None,
) -> pd.DataFrame:
    r, f, m = (scores[metric].astype("int8") for metric in METRICS)
    return pd.DataFrame(
        {
            customer: pd.Series(per.index, dtype=key_dtype),
            "recency": values["recency"],
            "frequency": values["frequency"],
            "monetary": values["monetary"],
            "first_purchase": per["first_purchase"].reset_index(drop=True),
            "last_purchase": per["last_purchase"].reset_index(drop=True),
            "tenure": values["tenure"],
            "R": r,
            "F": f,
            "M": m,
            "rfm_cell": pd.Series(
                [f"{a}{b}{c}" for a, b, c in zip(r, f, m, strict=True)], dtype="str"
            ),
            "rfm_score": r.astype("int64") + f.astype("int64") + m.astype("int64"),
            "segment": pd.Series(_segments(r, f, m, rules), dtype="str"),
        }
    )
