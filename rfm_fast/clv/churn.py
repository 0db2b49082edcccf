"""Churn risk as marketers use it: per customer, the probability of no purchase in the next N
days, banded low / medium / high, and when the next purchase is expected
(:func:`churn_risk`); per RFM segment, the revenue expected in those days and the revenue at
risk (:func:`churn_by_segment`).

The probability of no purchase in ``(T, T + t]`` is that of being dead at ``T`` plus that of
being alive and not buying:

* BG/NBD and MBG/NBD: a customer drops out only right after a purchase, so one who is alive at
  ``T`` and buys nothing stays alive; given alive, the purchase rate is
  gamma(r + x, alpha + T), and ``P(no purchase) = (1 - p_alive) + p_alive * ((alpha + T) /
  (alpha + T + t)) ** (r + x)``.
* Pareto/NBD: given alive at ``T``, the purchase rate is gamma(r + x, alpha + T) and the
  dropout rate gamma(s, beta + T), independent; the first purchase after ``T`` comes at
  ``T + tau`` with density ``E[lambda exp(-lambda tau)] E[exp(-mu tau)]``, so ``P(a purchase
  by T + t | alive) = integral over [0, t] of (r + x) / (alpha + T + tau) ((alpha + T) / (alpha
  + T + tau)) ** (r + x) ((beta + T) / (beta + T + tau)) ** s``, by Gauss-Legendre
  quadrature.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rfm_fast.clv.bgnbd import BetaGeo
from rfm_fast.clv.fitting import collapse, column_values, keyed_table
from rfm_fast.clv.pareto_nbd import ParetoNBD
from rfm_fast.clv.profiles import days_per_unit as unit_days
from rfm_fast.clv.purchase_model import PurchaseModel
from rfm_fast.errors import RFMError

if TYPE_CHECKING:
    from rfm_fast.clv.results import CLVResult

RISK_BANDS = (0.5, 0.8)
"""Thresholds of the risk bands on the probability of no purchase in the window: ``low``
below 0.5 (a purchase is more likely than not), ``medium`` from 0.5 to below 0.8, ``high``
from 0.8 (at most one chance in five of a purchase)."""

BAND_NAMES = ("low", "medium", "high")

QUADRATURE_NODES = 64
"""Gauss-Legendre nodes of the Pareto/NBD integral."""


def _check_days(days: float) -> float:
    if isinstance(days, bool) or not isinstance(days, int | float | np.integer | np.floating):
        raise RFMError(f"days must be one number; got {days!r:.60}")
    if not (np.isfinite(days) and days > 0):
        raise RFMError(f"days must be a positive, finite number of days; got {days!r}")
    return float(days)


def p_no_purchase_if_alive(model: PurchaseModel, summary: Any, t: float) -> np.ndarray:
    """Probability that a customer alive at ``T`` makes no purchase in the next ``t`` (in the
    unit of the fit), one value per row of ``summary``.

    Raises
    ------
    RFMError
        For a model other than BG/NBD, MBG/NBD and Pareto/NBD (BG/BB counts opportunities,
        not days), or one not fitted.
    """
    if not isinstance(model, BetaGeo | ParetoNBD):
        raise RFMError(
            "churn risk needs BG/NBD, MBG/NBD or Pareto/NBD (a model of purchase times); got "
            f"{type(model).__name__}"
        )
    if not model.params:
        raise RFMError("the model is not fitted yet: call .fit(summary) first")
    x = column_values(summary, "frequency")
    T = column_values(summary, "T")
    r, alpha = model.params["r"], model.params["alpha"]
    if isinstance(model, BetaGeo):
        return np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t)))
    s, beta = model.params["s"], model.params["beta"]
    profiles = collapse(x, T)  # the integral once per distinct (x, T)
    xs, Ts = profiles.column(0), profiles.column(1)
    nodes, weights = np.polynomial.legendre.leggauss(QUADRATURE_NODES)
    # tau = t u^2 puts nodes near 0, where the density of the next purchase is highest
    bought = np.zeros(xs.shape[0])
    for u, w in zip((nodes + 1) / 2, weights / 2, strict=True):
        tau = t * u * u
        log_density = (
            np.log(r + xs) - np.log(alpha + Ts + tau)
            + (r + xs) * (np.log(alpha + Ts) - np.log(alpha + Ts + tau))
            + s * (np.log(beta + Ts) - np.log(beta + Ts + tau))
        )  # fmt: skip
        bought += np.exp(log_density) * 2 * t * u * w
    return np.clip(1.0 - bought, 0.0, 1.0)[profiles.profile_of]


def days_to_next_purchase(model: PurchaseModel, summary: Any, days_per_unit: float) -> np.ndarray:
    """Median days to the next purchase of a customer who is alive and stays alive: given the
    history, the purchase rate is gamma(r + x, alpha + T), so the wait is Lomax and its
    median is ``(alpha + T) (2 ** (1 / (r + x)) - 1)`` (the same in BG/NBD, MBG/NBD and
    Pareto/NBD)."""
    x = column_values(summary, "frequency")
    T = column_values(summary, "T")
    r, alpha = model.params["r"], model.params["alpha"]
    return (alpha + T) * np.expm1(np.log(2.0) / (r + x)) * days_per_unit


def risk_band(p_no_purchase: np.ndarray) -> pa.Array:
    """``low``, ``medium`` or ``high`` per probability of no purchase (:data:`RISK_BANDS`)."""
    index = np.searchsorted(np.asarray(RISK_BANDS), p_no_purchase, side="right")
    return pa.array(np.asarray(BAND_NAMES, dtype=object)[index], pa.string())


def churn_risk(
    model: PurchaseModel,
    summary: Any,
    *,
    days: float = 90.0,
    unit: str | float = "W",
    as_of: Any = None,
) -> pa.Table:
    """Per customer: the probability of no purchase in the next ``days``, its risk band and
    the expected date of the next purchase.

    Parameters
    ----------
    model : PurchaseModel
        A fitted BG/NBD, MBG/NBD or Pareto/NBD model.
    summary : table
        The customers, as :func:`rfm_fast.clv.summary` gives them, in the unit of the fit.
    days : float, default 90.0
        The window, in days.
    unit : {"D", "W", "M", "Y"} or float, default "W"
        The time unit of the summary and the fit.
    as_of : date, datetime or ISO-8601 string, optional
        The end of the observation: with it, ``next_purchase`` is a date; without it, null.

    Returns
    -------
    pyarrow.Table
        The summary's customer column, then ``p_alive``, ``p_no_purchase`` (in the next
        ``days``), ``risk`` (``low`` below 0.5, ``medium`` below 0.8, else ``high``: see
        :data:`RISK_BANDS`), ``days_to_next_purchase`` (the median wait of a customer who is
        alive: conditional on being alive, so read it with ``p_alive``) and
        ``next_purchase`` (``as_of`` plus that wait, a date).

    Raises
    ------
    RFMError
        For BG/BB or an unfitted model, or bad ``days``, ``unit`` or ``as_of``.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from rfm_fast import clv
    >>> model = clv.BetaGeo.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
    >>> customers = pa.table({"id": ["ann", "bob"], "frequency": [5, 1],
    ...                       "recency": [37.0, 2.0], "T": [38.0, 38.0]})
    >>> risk = clv.churn_risk(model, customers, days=90, unit="W", as_of="1997-09-30")
    >>> risk["p_no_purchase"].to_numpy().round(3)
    array([0.342, 0.937])
    >>> risk["risk"].to_pylist(), risk["next_purchase"].to_pylist()[0]
    (['low', 'high'], datetime.date(1997, 11, 11))
    """
    days = _check_days(days)
    days_per_unit = unit_days(unit)
    when = _as_of_date(as_of)
    if_alive = p_no_purchase_if_alive(model, summary, days / days_per_unit)
    alive = np.asarray(model.p_alive(summary), dtype=float).reshape(-1)
    p_none = (1.0 - alive) + alive * if_alive
    wait = days_to_next_purchase(model, summary, days_per_unit)
    if when is None:
        next_purchase = pa.nulls(wait.shape[0], pa.date32())
    else:
        start = (when - dt.date(1970, 1, 1)).days
        finite = np.isfinite(wait) & (wait < 1e6)
        offsets = np.where(finite, np.round(np.where(finite, wait, 0.0)), 0).astype(np.int64)
        next_purchase = pa.array((start + offsets).astype(np.int32), pa.int32(), mask=~finite)
        next_purchase = next_purchase.cast(pa.date32())
    return keyed_table(
        summary,
        {
            "p_alive": alive,
            "p_no_purchase": p_none,
            "risk": risk_band(p_none),
            "days_to_next_purchase": wait,
            "next_purchase": next_purchase,
        },
    )


def _as_of_date(as_of: Any) -> dt.date | None:
    if as_of is None:
        return None
    if isinstance(as_of, dt.datetime):
        return as_of.date()
    if isinstance(as_of, dt.date):
        return as_of
    if isinstance(as_of, str):
        try:
            return dt.datetime.fromisoformat(as_of).date()
        except ValueError:
            pass
    raise RFMError(f"as_of must be a date or an ISO-8601 string; got {as_of!r:.60}")


def churn_by_segment(
    result: CLVResult, scores: Any, *, days: float = 90.0, as_of: Any = None
) -> pa.Table:
    """Per RFM segment: the customers, their risk bands, the revenue expected in the next
    ``days`` and the revenue at risk.

    Parameters
    ----------
    result : CLVResult
        The result of :func:`rfm_fast.clv.analyze` (its purchase model must be BG/NBD, MBG/NBD
        or Pareto/NBD).
    scores : RFMResult or table
        The result of :func:`rfm_fast.score` on the same data (or a table with the customer
        column first and a ``segment`` column); customers without a prediction are left out.
    days : float, default 90.0
        The window, in days.
    as_of : optional
        As for :func:`churn_risk` (the segments do not use it).

    Returns
    -------
    pyarrow.Table
        One row per segment, the largest expected revenue first: ``segment``, ``customers``,
        ``mean_p_alive``, ``high_risk`` (customers in the high band), ``expected_revenue``
        (the sum of the expected purchases in the window times the expected spend per
        purchase) and ``revenue_at_risk`` (the sum of ``(1 - p_alive)`` times the revenue a
        customer would bring in the window if alive: what is lost if the model is right
        about who has left).

    Examples
    --------
    >>> import rfm_fast
    >>> from rfm_fast import clv, datasets
    >>> data = datasets.load_example()
    >>> result = clv.analyze(data, **datasets.EXAMPLE_COLUMNS, as_of="1997-09-30")
    >>> scores = rfm_fast.score(data, **datasets.EXAMPLE_COLUMNS, as_of="1997-09-30")
    >>> table = clv.churn_by_segment(result, scores, days=90)
    >>> table.column_names
    ['segment', 'customers', 'mean_p_alive', 'high_risk', 'expected_revenue', 'revenue_at_risk']
    >>> table.num_rows == len(set(scores.table["segment"].to_pylist()))
    True
    """
    days = _check_days(days)
    summary_table = result.table
    risk = churn_risk(result.purchases, summary_table, days=days, unit=result.unit, as_of=as_of)
    days_per_unit = unit_days(result.unit)
    alive = risk.column("p_alive").to_numpy()
    expected = np.asarray(
        result.purchases.expected_purchases(days / days_per_unit, summary_table), dtype=float
    ).reshape(-1)
    spend = summary_table.column("expected_spend").to_numpy()
    revenue = expected * spend
    with np.errstate(divide="ignore", invalid="ignore"):
        if_alive = np.where(alive > 0, revenue / alive, 0.0)
    at_risk = (1.0 - alive) * if_alive
    table = getattr(scores, "table", scores)
    if "segment" not in table.column_names:
        raise RFMError(
            "scores need a 'segment' column (the result of rfm_fast.score); it has: "
            + ", ".join(table.column_names)
        )
    keys = summary_table.column(0).combine_chunks()
    where = pc.index_in(table.column(0), value_set=keys).to_numpy(zero_copy_only=False)
    matched = ~np.isnan(where.astype(float))
    rows = where[matched].astype(np.int64)
    segments = table.column("segment").combine_chunks().filter(pa.array(matched))
    high = pc.equal(risk.column("risk"), BAND_NAMES[2]).to_numpy(zero_copy_only=False)
    frame = pa.table(
        {
            "segment": segments.cast(pa.string()),
            "customers": np.ones(rows.shape[0], dtype=np.int64),
            "p_alive": alive[rows],
            "high_risk": np.asarray(high, dtype=bool)[rows].astype(np.int64),
            "expected_revenue": revenue[rows],
            "revenue_at_risk": at_risk[rows],
        }
    )
    grouped = frame.group_by("segment").aggregate(
        [
            ("customers", "sum"),
            ("p_alive", "mean"),
            ("high_risk", "sum"),
            ("expected_revenue", "sum"),
            ("revenue_at_risk", "sum"),
        ]
    )
    out = pa.table(
        {
            "segment": grouped.column("segment"),
            "customers": grouped.column("customers_sum"),
            "mean_p_alive": grouped.column("p_alive_mean"),
            "high_risk": grouped.column("high_risk_sum"),
            "expected_revenue": grouped.column("expected_revenue_sum"),
            "revenue_at_risk": grouped.column("revenue_at_risk_sum"),
        }
    )
    return out.sort_by([("expected_revenue", "descending")])
