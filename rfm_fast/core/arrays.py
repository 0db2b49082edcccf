"""The NumPy-level layer: plain arrays in, plain arrays out, no Arrow tables to build.

This is what Spark or Dask workers and other engines call when they already hold columns as NumPy
arrays. :func:`aggregate` folds orders into per-customer metrics; :func:`score_metrics` turns
metric arrays into scores and edges. :func:`rfm_fast.score` is built on the same pieces.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from rfm_fast.core import binning
from rfm_fast.core.aggregator import (
    INT64_MAX,
    SMALL_INPUT_ROWS,
    CustomerAggregator,
    CustomerTotals,
)
from rfm_fast.core.arrow import ALL_VALID, IntColumn, KeyColumn, TimeAxis, Validity, key_column
from rfm_fast.core.options import RETURNS
from rfm_fast.errors import RFMError

_TICKS_PER_DAY = {
    "D": 1,
    "h": 24,
    "m": 1_440,
    "s": 86_400,
    "ms": 86_400_000,
    "us": 86_400_000_000,
    "ns": 86_400_000_000_000,
}
CHUNK_ROWS = 1 << 20


@dataclass(frozen=True)
class CustomerMetrics:
    """Per-customer metrics from :func:`aggregate`, sorted by customer key.

    ``first`` and ``last`` are ``datetime64`` in the unit of the input timestamps.
    """

    customer: np.ndarray
    recency: np.ndarray
    frequency: np.ndarray
    monetary: np.ndarray
    first: np.ndarray
    last: np.ndarray
    tenure: np.ndarray
    as_of: np.datetime64 | None

    def __len__(self) -> int:
        return self.customer.shape[0]


@dataclass(frozen=True)
class Scores:
    """Scores 1..bins per metric (``int8``), the edges that reproduce them, the empty scores."""

    R: np.ndarray
    F: np.ndarray
    M: np.ndarray
    edges: dict[str, list[float]]
    empty_bins: dict[str, list[int]]


def _keys(values: np.ndarray, role: str) -> KeyColumn:
    values = np.asarray(values)
    if values.ndim != 1:
        raise RFMError(f"{role} must be a 1-D array; got shape {values.shape}")
    if values.dtype.kind in "iu":
        return IntColumn(values, ALL_VALID)
    if values.dtype.kind in "UOT":
        try:
            strings = pa.array(values, pa.large_string())
            if isinstance(strings, pa.ChunkedArray):
                strings = strings.combine_chunks()
            return key_column(strings)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise RFMError(f"{role} must hold integers or text: {exc}") from None
    raise RFMError(f"{role} must be an integer or text array; got dtype {values.dtype}")


def aggregate(
    customer: np.ndarray,
    timestamp: np.ndarray,
    amount: np.ndarray,
    order: np.ndarray | None = None,
    *,
    as_of: np.datetime64 | None = None,
    threads: int | None = None,
    returns: str = "net",
) -> CustomerMetrics:
    """Per-customer recency, frequency and monetary value from plain NumPy arrays.

    Parameters
    ----------
    customer : numpy.ndarray
        Integer ids (any width), or text (``str`` or object arrays; nulls are not allowed here:
        drop them first or use :func:`rfm_fast.score`).
    timestamp : numpy.ndarray of datetime64
        Purchase times in any unit from days to nanoseconds; ``NaT`` rows are dropped.
    amount : numpy.ndarray
        Integers or floats; NaN is left out of the sum.
    order : numpy.ndarray, optional
        Integer or text order ids: the frequency counts distinct orders instead of rows.
    as_of : numpy.datetime64, optional
        End of the window; default: the latest timestamp plus one day. Later rows are left out.
    threads : int, optional
        Aggregation threads (default: one per core); the result is the same for any number.
    returns : {"net", "purchase", "drop"}, default "net"
        How rows with a negative amount are taken, as in :func:`rfm_fast.score`; customers
        whose rows are all returns are left out.

    Returns
    -------
    CustomerMetrics

    Examples
    --------
    >>> import numpy as np
    >>> from rfm_fast import arrays
    >>> m = arrays.aggregate(
    ...     np.array([7, 3, 7]),
    ...     np.array(["2024-01-01", "2024-01-05", "2024-01-09"], dtype="datetime64[D]"),
    ...     np.array([10.0, 2.5, 5.0]),
    ... )
    >>> m.customer, m.recency, m.frequency, m.monetary
    (array([3, 7]), array([5, 1]), array([1, 2]), array([ 2.5, 15. ]))
    """
    timestamp, amount = _checked_arrays(customer, timestamp, amount, order)
    if returns not in RETURNS:
        raise RFMError(f"returns must be one of {', '.join(RETURNS)}; got {returns!r}")
    customers = _keys(customer, "customer")
    distinct = None if order is None else _keys(order, "order")
    ticks = timestamp.view(np.int64)
    nat = np.isnat(timestamp)
    ticks_valid = Validity(np.packbits(~nat, bitorder="little"), 0) if nat.any() else ALL_VALID
    unit, _ = np.datetime_data(timestamp.dtype)
    # (the axis of a NumPy unit: the same checked conversions as for Arrow columns)
    axis = TimeAxis(f"datetime64[{unit}]", unit, _TICKS_PER_DAY[unit], None)  # type: ignore[arg-type]
    limit = INT64_MAX
    if as_of is not None:
        limit = axis.ticks_of(np.datetime64(as_of))
    n = timestamp.shape[0]
    aggregator = CustomerAggregator(
        "int" if isinstance(customers, IntColumn) else "string",
        _kind(distinct),
        limit,
        threads=threads or os.cpu_count() or 1,
        partition_bits=0 if n < SMALL_INPUT_ROWS else None,
        expected_rows=n,
        returns=returns,
    )
    bad = _fold_arrays(aggregator, customers, ticks, ticks_valid, amount, distinct)
    if bad >= 0:
        raise RFMError(
            f"amount has an infinite or too large value ({amount[bad]}) at index {bad}; "
            "amounts must be finite and below 2**62 in absolute value"
        )
    counts = aggregator.row_counts()
    as_of_ticks = limit if as_of is not None else None
    if as_of_ticks is None and counts.max_timestamp is not None:
        as_of_ticks = axis.default_as_of(counts.max_timestamp)
    totals, _ = aggregator.finish().purchasers()
    return _metrics(totals, as_of_ticks, timestamp.dtype, np.asarray(customer).dtype)


def _checked_arrays(
    customer: np.ndarray, timestamp: np.ndarray, amount: np.ndarray, order: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """The timestamp and amount arrays, checked: types, the time unit, equal lengths."""
    timestamp = np.asarray(timestamp)
    if timestamp.dtype.kind != "M":
        raise RFMError(f"timestamp must be a datetime64 array; got dtype {timestamp.dtype}")
    unit, _ = np.datetime_data(timestamp.dtype)
    if unit not in _TICKS_PER_DAY:
        raise RFMError(f"timestamp unit {unit!r} is not supported; use D, h, m, s, ms, us or ns")
    amount = np.asarray(amount)
    if amount.dtype.kind not in "iuf":
        raise RFMError(f"amount must be an integer or float array; got dtype {amount.dtype}")
    lengths = {
        "customer": len(np.asarray(customer)),
        "timestamp": timestamp.shape[0],
        "amount": amount.shape[0],
    }
    if order is not None:
        lengths["order"] = len(np.asarray(order))
    if len(set(lengths.values())) > 1:
        raise RFMError(f"all arrays must have the same length; got {lengths}")
    return timestamp, amount


def _kind(column: KeyColumn | None) -> str | None:
    if column is None:
        return None
    return "int" if isinstance(column, IntColumn) else "string"


def _fold_arrays(
    aggregator: CustomerAggregator,
    customers: KeyColumn,
    ticks: np.ndarray,
    ticks_valid: Validity,
    amount: np.ndarray,
    distinct: KeyColumn | None,
) -> int:
    """Fold all the rows; returns the first row with a bad amount, or -1."""
    if not isinstance(customers, IntColumn) or not (
        distinct is None or isinstance(distinct, IntColumn)
    ):
        return aggregator.update(customers, ticks, ticks_valid, amount, ALL_VALID, distinct)
    # Integer columns are folded in slices: the scratch buffers stay small and warm.
    n = ticks.shape[0]
    for lo in range(0, max(n, 1), CHUNK_ROWS):
        hi = min(lo + CHUNK_ROWS, n)
        bad = aggregator.update(
            IntColumn(customers.values[lo:hi], ALL_VALID),
            ticks[lo:hi],
            Validity(ticks_valid.bitmap, lo) if ticks_valid.bitmap.shape[0] else ALL_VALID,
            amount[lo:hi],
            ALL_VALID,
            None if distinct is None else IntColumn(distinct.values[lo:hi], ALL_VALID),
        )
        if bad >= 0:
            return bad + lo
    return -1


def _metrics(
    totals: CustomerTotals, as_of_ticks: int | None, time_dtype: np.dtype, key_dtype: np.dtype
) -> CustomerMetrics:
    """The metrics of every customer from the aggregator's totals."""
    unit, _ = np.datetime_data(time_dtype)
    per_day = _TICKS_PER_DAY[unit]
    if as_of_ticks is None:
        recency = tenure = np.zeros(0, dtype=np.int64)
    else:
        recency = (as_of_ticks - totals.last) // per_day
        tenure = (as_of_ticks - totals.first) // per_day
    keys = totals.keys
    if isinstance(keys, pa.Array):
        keys = keys.to_numpy(zero_copy_only=False)
    else:
        keys = keys.astype(key_dtype)
    return CustomerMetrics(
        customer=keys,
        recency=recency,
        frequency=totals.rows if totals.distinct is None else totals.distinct,
        monetary=totals.monetary,
        first=totals.first.view(time_dtype),
        last=totals.last.view(time_dtype),
        tenure=tenure,
        as_of=None if as_of_ticks is None else np.datetime64(int(as_of_ticks), unit),
    )


def score_metrics(
    recency: np.ndarray,
    frequency: np.ndarray,
    monetary: np.ndarray,
    *,
    bins: int = 5,
    method: str = "exact",
    thresholds: dict[str, Sequence[float]] | None = None,
) -> Scores:
    """Scores 1..bins for per-customer metric arrays (in customer-key order for ``split``).

    Parameters
    ----------
    recency, frequency, monetary : numpy.ndarray
        One value per customer each, of one length; no NaN. Lower recency is better, higher
        frequency and monetary are.
    bins : int, default 5
        Scores run from 1 to ``bins`` (2..9).
    method : {"exact", "split"}, default "exact"
        As for :func:`rfm_fast.score` (``"approx"`` needs the sketch of a run).
    thresholds : dict of str to list of float, optional
        Explicit edges for some metrics.

    Returns
    -------
    Scores
        ``R``, ``F``, ``M`` (int8 arrays), the ``edges`` and the ``empty_bins`` per metric.

    Raises
    ------
    RFMError
        For bad options, arrays of different lengths, or a NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from rfm_fast import arrays
    >>> s = arrays.score_metrics(np.array([5, 1, 30]), np.array([1, 2, 1]),
    ...                          np.array([2.5, 15.0, 1.0]), bins=3)
    >>> s.R, s.F, s.M
    (array([2, 3, 1], dtype=int8), array([1, 3, 1], dtype=int8), array([2, 3, 1], dtype=int8))
    """
    bins = binning.check_bins(bins)
    method = binning.check_method(method)
    for name, values in (("recency", recency), ("frequency", frequency), ("monetary", monetary)):
        values = np.asarray(values)
        if values.dtype.kind == "f" and np.isnan(values).any():
            raise RFMError(
                f"{name} has NaN at position {int(np.flatnonzero(np.isnan(values))[0])}; every "
                "customer needs a value to be ranked (drop the customer, or fill it in)"
            )
    return score_checked(
        recency, frequency, monetary, bins, method, binning.check_thresholds(thresholds, bins)
    )


def score_checked(
    recency: np.ndarray,
    frequency: np.ndarray,
    monetary: np.ndarray,
    bins: int,
    method: str,
    user_edges: dict[str, np.ndarray],
) -> Scores:
    """:func:`score_metrics` for checked options: ``bins`` and ``method`` valid,
    ``user_edges`` the checked thresholds (:func:`rfm_fast.core.binning.check_thresholds`); the
    metrics are still checked to be of one length."""
    values = {"recency": recency, "frequency": frequency, "monetary": monetary}
    lengths = {k: np.asarray(v).shape for k, v in values.items()}
    if len(set(lengths.values())) > 1:
        raise RFMError(f"recency, frequency and monetary must have the same length; got {lengths}")
    scored = {
        metric: binning.score_metric(
            np.asarray(v),
            bins=bins,
            method=method,
            higher_is_better=metric != "recency",
            thresholds=user_edges.get(metric),
        )
        for metric, v in values.items()
    }
    return Scores(
        R=scored["recency"].scores,
        F=scored["frequency"].scores,
        M=scored["monetary"].scores,
        edges={k: s.edges for k, s in scored.items()},
        empty_bins={k: s.empty for k, s in scored.items()},
    )
