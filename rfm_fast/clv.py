"""Customer lifetime value: who is still alive, how much each customer will buy, and what they
are worth, with the buy-till-you-die models BG/NBD and Gamma-Gamma.

* :func:`summary` (and :func:`calibration_holdout`) turn an order history into the model-ready
  summary of the BTYD literature, with the same kernels as :func:`rfm_fast.score`.
* :class:`BetaGeo` fits BG/NBD (Fader, Hardie & Lee 2005) by maximum likelihood: the
  log-likelihood and its gradient are a Numba kernel over customers collapsed into distinct
  (frequency, recency, T) profiles, and scipy's L-BFGS-B drives it.
* :class:`GammaGamma` fits the Gamma-Gamma spend model (Fader & Hardie 2013) the same way.

Needs scipy (``pip install 'rfm_fast[clv]'``). Definitions and the treatment of awkward inputs
are in docs/clv.md.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rfm_fast._kernels import aggregate as agg_kernels
from rfm_fast._kernels import btyd
from rfm_fast.core import arrow
from rfm_fast.core.aggregator import INT64_MAX, KeyTable
from rfm_fast.core.io import DEFAULT_BATCH_ROWS, require_rereadable
from rfm_fast.core.options import ReadOptions
from rfm_fast.core.pipeline import BatchColumns, output_keys, read_totals
from rfm_fast.errors import RFMError, RFMWarning

GRADIENT_TOLERANCE = 1e-6
"""A stop of the optimizer counts as converged when no gradient component exceeds this."""
LOG_BOUND = 12.0
"""Parameters are searched within e^-12 .. e^12, after scaling times and spend to their means."""
WARM_START_CUSTOMERS = 200_000
"""Above this many customers, BG/NBD starts from a fit on a sample of this size."""
UNITS = {"D": 1.0, "W": 7.0, "M": 365.25 / 12, "Y": 365.25}
"""Days per time unit of ``recency`` and ``T``."""


def _days_per_unit(unit: str | float) -> float:
    if isinstance(unit, str):
        if unit not in UNITS:
            raise RFMError(
                f"unit must be one of {', '.join(UNITS)} or a number of days; got {unit!r}"
            )
        return UNITS[unit]
    if not unit > 0:
        raise RFMError(f"unit must be a positive number of days; got {unit!r}")
    return float(unit)


class _FirstDaySpend:
    """Observer of the aggregation: each customer's first purchase day and its exact spend."""

    def __init__(self, key_kind: str) -> None:
        self.customers = KeyTable(key_kind)
        self.first_day = np.empty(0, dtype=np.int64)
        self.whole = np.empty(0, dtype=np.int64)
        self.fraction = np.empty(0, dtype=np.int64)

    def __call__(self, batch: BatchColumns) -> None:
        n = batch.ticks.shape[0]
        ids = np.empty(n, dtype=np.int64)
        self.customers.factorize(batch.customers, ids)
        grown = len(self.customers) - self.first_day.shape[0]
        if grown > 0:
            self.first_day = np.append(self.first_day, np.full(grown, INT64_MAX))
            self.whole = np.append(self.whole, np.zeros(grown, dtype=np.int64))
            self.fraction = np.append(self.fraction, np.zeros(grown, dtype=np.int64))
        keep = (ids >= 0) & batch.ticks_valid.mask(n) & (batch.ticks <= batch.as_of_limit)
        has_amount = batch.amounts_valid.mask(n)
        if batch.amounts.dtype.kind == "f":
            has_amount &= ~np.isnan(batch.amounts)
        btyd.first_day_sums(
            ids,
            batch.distinct.values.astype(np.int64, copy=False),
            keep,
            batch.amounts,
            has_amount,
            self.first_day,
            self.whole,
            self.fraction,
        )


def _key_kind(column: arrow.KeyColumn) -> str:
    """How a KeyTable hashes these keys: "int" or "string" (dictionaries by their entries)."""
    if isinstance(column, arrow.DictionaryColumn):
        return _key_kind(arrow.key_column(column.dictionary))
    return "int" if isinstance(column, arrow.IntColumn) else "string"


def _exact_difference(whole: np.ndarray, fraction: np.ndarray) -> np.ndarray:
    """(whole, fraction) words of a difference of exact sums, rounded once to float64."""
    carry = np.floor_divide(fraction, agg_kernels.FRACTION_ONE)
    whole = whole + carry
    fraction = fraction - carry * agg_kernels.FRACTION_ONE
    out = np.empty(whole.shape[0])
    agg_kernels.sums_to_float(whole, fraction, out)
    return out


@dataclass(frozen=True)
class _Profiles:
    """Per customer (sorted by key): purchase days and spend, as :func:`summary` needs them."""

    keys: pa.Array
    first_day: np.ndarray
    last_day: np.ndarray
    periods: np.ndarray
    total: np.ndarray  # exact sum of all amounts
    repeat: np.ndarray  # exact sum of the amounts after the first purchase day
    as_of_day: int | None
    rows_read: int
    rows_used: int


def _profiles(
    data: Any,
    *,
    customer: str,
    timestamp: str,
    amount: str,
    as_of: Any,
    timestamp_format: str | None,
    batch_rows: int,
    threads: int | None,
) -> _Profiles:
    options = ReadOptions.checked(
        customer=customer,
        timestamp=timestamp,
        amount=amount,
        as_of=as_of,
        frequency="days",
        timestamp_format=timestamp_format,
        batch_rows=batch_rows,
        threads=threads,
    )
    observers: list[_FirstDaySpend] = []

    def observe(batch: BatchColumns) -> None:
        if not observers:
            observers.append(_FirstDaySpend(_key_kind(batch.customers)))
        observers[0](batch)

    aggregated = read_totals(data, options, keep_parts=True, observer=observe)
    totals, axis = aggregated.totals, aggregated.axis
    n = len(totals)
    keys = output_keys(totals.keys, aggregated.customer_type)
    first_day = np.zeros(n, dtype=np.int64)
    first_whole = np.zeros(n, dtype=np.int64)
    first_fraction = np.zeros(n, dtype=np.int64)
    if observers and n:
        seen = observers[0]
        used = np.flatnonzero(seen.first_day != INT64_MAX)
        ids_keys = seen.customers.keys()
        if isinstance(ids_keys, np.ndarray):
            sorted_keys = totals.keys
            lookup = ids_keys[used].view(sorted_keys.dtype)
            where = np.searchsorted(sorted_keys, lookup)
        else:
            where = pc.index_in(ids_keys.take(pa.array(used)), value_set=totals.keys)
            where = where.to_numpy(zero_copy_only=False).astype(np.int64)
        first_day[where] = seen.first_day[used]
        first_whole[where] = seen.whole[used]
        first_fraction[where] = seen.fraction[used]
    whole, fraction = totals.sums
    last_day = _local_days(axis, totals.last)
    as_of_day = None
    if aggregated.as_of_ticks is not None:
        as_of_day = int(_local_days(axis, np.array([aggregated.as_of_ticks]))[0])
    return _Profiles(
        keys=keys,
        first_day=first_day,
        last_day=last_day,
        periods=totals.distinct,
        total=_exact_difference(whole, fraction),
        repeat=_exact_difference(whole - first_whole, fraction - first_fraction),
        as_of_day=as_of_day,
        rows_read=aggregated.counts.rows_read,
        rows_used=aggregated.counts.rows_used,
    )


def _local_days(axis: arrow.TimeAxis, ticks: np.ndarray) -> np.ndarray:
    if ticks.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    return axis.local_days(axis.to_arrow(ticks))


def summary(
    data: Any,
    *,
    customer: str,
    timestamp: str,
    amount: str,
    as_of: Any = None,
    unit: str | float = "D",
    timestamp_format: str | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    threads: int | None = None,
) -> pa.Table:
    """The model-ready summary of an order history, one row per customer (BTYD convention).

    Purchases on the same calendar day (in the column's time zone for zoned columns) are one
    purchase: their amounts are added.

    Parameters
    ----------
    data, customer, timestamp, amount, timestamp_format, batch_rows, threads
        As for :func:`rfm_fast.score`.
    as_of : optional
        End of the observation period; rows after it are left out. Default: the latest
        timestamp plus one day, as for :func:`rfm_fast.score`.
    unit : {"D", "W", "M", "Y"} or float, default "D"
        Time unit of ``recency`` and ``T``: days, weeks, months (365.25 / 12 days), years, or
        a number of days.

    Returns
    -------
    pyarrow.Table
        Columns: the customer; ``frequency``, the number of repeat purchase days (purchase
        days minus one); ``recency``, the time from the first to the last purchase day;
        ``T``, the time from the first purchase day to the day of ``as_of``; ``monetary``, the
        mean spend of the repeat purchase days (0 without repeat purchases).

    Examples
    --------
    >>> import datetime as dt
    >>> import pyarrow as pa
    >>> from rfm_fast import clv
    >>> orders = pa.table({
    ...     "customer": [1, 1, 1, 2],
    ...     "day": pa.array([dt.date(2024, 1, d) for d in (1, 1, 8, 3)]),
    ...     "amount": [5.0, 5.0, 20.0, 7.0],
    ... })
    >>> clv.summary(orders, customer="customer", timestamp="day", amount="amount",
    ...             as_of="2024-01-15", unit="W").to_pylist()[0]
    {'customer': 1, 'frequency': 1, 'recency': 1.0, 'T': 2.0, 'monetary': 20.0}
    """
    days_per_unit = _days_per_unit(unit)
    profiles = _profiles(
        data,
        customer=customer,
        timestamp=timestamp,
        amount=amount,
        as_of=as_of,
        timestamp_format=timestamp_format,
        batch_rows=batch_rows,
        threads=threads,
    )
    return _summary_table(customer, profiles, days_per_unit)


def _summary_table(customer: str, p: _Profiles, days_per_unit: float) -> pa.Table:
    frequency = p.periods - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        monetary = np.where(frequency > 0, p.repeat / np.maximum(frequency, 1), 0.0)
    as_of_day = p.as_of_day if p.as_of_day is not None else 0
    return pa.table(
        {
            customer: p.keys,
            "frequency": pa.array(frequency, pa.int64()),
            "recency": (p.last_day - p.first_day) / days_per_unit,
            "T": (as_of_day - p.first_day) / days_per_unit,
            "monetary": monetary,
        }
    )


def calibration_holdout(
    data: Any,
    *,
    customer: str,
    timestamp: str,
    amount: str,
    calibration_end: Any,
    holdout_end: Any = None,
    unit: str | float = "D",
    timestamp_format: str | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    threads: int | None = None,
) -> pa.Table:
    """The summary of a calibration period, with what each of its customers did afterwards.

    Customers are those with a purchase up to ``calibration_end``; their summary columns are
    :func:`summary` at ``calibration_end``. Added: ``frequency_holdout`` (purchase days after
    the calibration day, up to ``holdout_end``), ``monetary_holdout`` (their mean spend, 0
    without any) and ``duration_holdout`` (the holdout length in ``unit``).

    Examples
    --------
    >>> import datetime as dt
    >>> import pyarrow as pa
    >>> from rfm_fast import clv
    >>> orders = pa.table({
    ...     "customer": [1, 1, 1, 2],
    ...     "day": pa.array([dt.date(2024, 1, d) for d in (1, 8, 20, 25)]),
    ...     "amount": [5.0, 20.0, 9.0, 7.0],
    ... })
    >>> table = clv.calibration_holdout(orders, customer="customer", timestamp="day",
    ...     amount="amount", calibration_end="2024-01-10", holdout_end="2024-01-31")
    >>> table.select(["customer", "frequency", "frequency_holdout", "duration_holdout"]).to_pylist()
    [{'customer': 1, 'frequency': 1, 'frequency_holdout': 1, 'duration_holdout': 21.0}]
    """
    days_per_unit = _days_per_unit(unit)
    require_rereadable(data, "calibration_holdout")
    options = dict(
        customer=customer,
        timestamp=timestamp,
        amount=amount,
        timestamp_format=timestamp_format,
        batch_rows=batch_rows,
        threads=threads,
    )
    calibration = _profiles(data, as_of=calibration_end, **options)
    whole = _profiles(data, as_of=holdout_end, **options)
    if calibration.as_of_day is None:
        raise RFMError(f"no purchases up to calibration_end {calibration_end!r}")
    if whole.as_of_day is not None and whole.as_of_day <= calibration.as_of_day:
        raise RFMError("holdout_end must be after calibration_end")
    table = _summary_table(customer, calibration, days_per_unit)
    where = pc.index_in(calibration.keys, value_set=whole.keys).to_numpy(zero_copy_only=False)
    where = where.astype(np.int64)
    periods = whole.periods[where] - calibration.periods
    spend = whole.total[where] - calibration.total
    with np.errstate(invalid="ignore", divide="ignore"):
        monetary = np.where(periods > 0, spend / np.maximum(periods, 1), 0.0)
    holdout_days = (whole.as_of_day or calibration.as_of_day) - calibration.as_of_day
    return (
        table.append_column("frequency_holdout", pa.array(periods, pa.int64()))
        .append_column("monetary_holdout", pa.array(monetary))
        .append_column(
            "duration_holdout", pa.array(np.full(len(table), holdout_days / days_per_unit))
        )
    )


# ---------------------------------------------------------------------- fitting
def _column(table: Any, name: str) -> np.ndarray:
    try:
        column = table[name]
    except (KeyError, TypeError):
        raise RFMError(
            f"the summary needs a {name!r} column (see rfm_fast.clv.summary); it has: "
            + ", ".join(map(str, getattr(table, "column_names", None) or list(table)))
        ) from None
    if isinstance(column, pa.ChunkedArray | pa.Array):
        return column.to_numpy(zero_copy_only=False).astype(np.float64)
    return np.asarray(column, dtype=np.float64)


def _factorized(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values, index of each value among them), by the hash kernels of the
    aggregation (floats by their bits; the distinct values come in first-seen order)."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    table = KeyTable("int")
    at = np.empty(values.shape[0], dtype=np.int64)
    table.factorize(arrow.IntColumn(values.view(np.int64), arrow.ALL_VALID), at)
    return table.keys().view(np.float64), at


@dataclass(frozen=True)
class _Collapsed:
    """Customers collapsed into distinct profiles: per column, the distinct values and each
    profile's index into them; per profile, its weight (customers); per customer, its profile.
    """

    values: list[np.ndarray]
    at: list[np.ndarray]
    weight: np.ndarray
    profile_of: np.ndarray

    def column(self, k: int) -> np.ndarray:
        """Column ``k`` of each profile."""
        return self.values[k][self.at[k]]


def _collapse(*columns: np.ndarray) -> _Collapsed:
    """Collapse customers with identical values in all ``columns`` into weighted profiles.

    Each column is factorized on its own, and the index tuples are combined into one integer
    key (sorting a 1-d integer array is much faster than sorting rows).
    """
    factors = [_factorized(c) for c in columns]
    sizes = [f[0].shape[0] for f in factors]
    if math.prod(max(s, 1) for s in sizes) >= 2**62:  # keys would overflow: no collapse
        n = columns[0].shape[0]
        return _Collapsed(
            [f[0] for f in factors], [f[1] for f in factors], np.ones(n), np.arange(n)
        )
    key = np.zeros(columns[0].shape[0], dtype=np.int64)
    for (_, at), size in zip(factors, sizes, strict=True):
        key = key * size + at
    table = KeyTable("int")
    profile_of = np.empty(key.shape[0], dtype=np.int64)
    table.factorize(arrow.IntColumn(key, arrow.ALL_VALID), profile_of)
    # one customer of each profile (any: they share every value)
    example = np.empty(len(table), dtype=np.int64)
    example[profile_of] = np.arange(key.shape[0])
    return _Collapsed(
        [f[0] for f in factors],
        [f[1][example] for f in factors],
        np.bincount(profile_of, minlength=len(table)).astype(np.float64),
        profile_of,
    )


@dataclass(frozen=True)
class _Fit:
    params: np.ndarray
    log_likelihood: float
    standard_errors: np.ndarray
    converged: bool
    iterations: int


def _maximize(
    loglik: Callable[[np.ndarray, np.ndarray], float], start: np.ndarray, n: float, name: str
) -> _Fit:
    """Maximize a log-likelihood over positive parameters (optimized on their logs)."""
    from scipy.optimize import minimize

    grad = np.zeros(start.shape[0])

    def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        params = np.exp(log_params)
        value = loglik(params, grad)
        if not math.isfinite(value) or not np.isfinite(grad).all():
            return 1e300, np.zeros_like(log_params)
        return -value / n, -grad * params / n  # chain rule: d/dlog(p) = p d/dp

    result = minimize(
        objective,
        np.log(start),
        jac=True,
        method="L-BFGS-B",
        bounds=[(-LOG_BOUND, LOG_BOUND)] * start.shape[0],
        options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-9},
    )
    params = np.exp(result.x)
    value = loglik(params, grad)
    if not (np.isfinite(params).all() and math.isfinite(value)):
        raise RFMError(f"{name}: the fit did not reach finite parameters; check the summary")
    # L-BFGS-B can stop on a failed line search when the objective is flat to rounding; that
    # is an optimum all the same when the gradient (per customer, on log-parameters) is ~0.
    converged = bool(result.success) or float(np.max(np.abs(result.jac))) < GRADIENT_TOLERANCE
    if not converged:
        warnings.warn(
            f"{name}: the optimizer stopped before converging ({result.message})",
            RFMWarning,
            stacklevel=3,
        )
    at_bound = np.abs(result.x) >= LOG_BOUND - 1e-6
    if at_bound.any():
        converged = False
        warnings.warn(
            f"{name}: {int(at_bound.sum())} parameter(s) stopped at the edge of the search "
            f"(e^±{LOG_BOUND:g} after scaling): the data do not pin the model down, so treat "
            "the parameters as unreliable",
            RFMWarning,
            stacklevel=3,
        )
    return _Fit(params, value, _standard_errors(loglik, params), converged, int(result.nit))


def _standard_errors(loglik, params: np.ndarray) -> np.ndarray:
    """Standard errors from the inverse of the observed information (the Hessian of the
    log-likelihood by central differences of its analytic gradient)."""
    k = params.shape[0]
    hessian = np.zeros((k, k))
    grad_up, grad_down = np.zeros(k), np.zeros(k)
    for j in range(k):
        step = 1e-5 * max(abs(params[j]), 1e-3)
        up, down = params.copy(), params.copy()
        up[j] += step
        down[j] -= step
        loglik(up, grad_up)
        loglik(down, grad_down)
        hessian[:, j] = (grad_up - grad_down) / (2 * step)
    hessian = (hessian + hessian.T) / 2
    try:
        covariance = np.linalg.inv(-hessian)
    except np.linalg.LinAlgError:
        return np.full(k, np.nan)
    with np.errstate(invalid="ignore"):
        return np.sqrt(np.diag(covariance))


def _off_one(a: float) -> float:
    """``a``, moved off 1 by a relative 1e-9: the expectations divide by ``a - 1``, and their
    limit at ``a = 1`` is the value next to it."""
    return a if abs(a - 1) > 1e-9 else 1 + math.copysign(1e-9, a - 1 or 1.0)


class BetaGeo:
    """The BG/NBD model (Fader, Hardie & Lee 2005): repeat purchases at a Poisson rate that is
    gamma(r, alpha) across customers; after each purchase a customer drops out with a
    probability that is beta(a, b) across customers.

    Examples
    --------
    >>> from rfm_fast import clv
    >>> summary = clv.simulate(20_000, r=0.5, alpha=6.0, a=1.2, b=3.0, T=52, seed=1)
    >>> model = clv.BetaGeo().fit(summary)
    >>> {k: round(v, 1) for k, v in model.params.items()}  # simulated with 0.5, 6, 1.2, 3
    {'r': 0.5, 'alpha': 6.0, 'a': 1.1, 'b': 2.7}
    """

    NAMES = ("r", "alpha", "a", "b")

    def __init__(self) -> None:
        self.params: dict[str, float] = {}
        self.standard_errors: dict[str, float] = {}
        self.log_likelihood = float("nan")
        self.converged = False
        self.customers = 0

    def fit(self, summary: Any) -> BetaGeo:
        """Fit by maximum likelihood to a summary with ``frequency``, ``recency`` and ``T``.

        Customers with identical (frequency, recency, T) are collapsed into one weighted
        profile first. Raises RFMError when no customer made a repeat purchase (the dropout
        parameters cannot be estimated then) or when the summary is invalid.
        """
        x, t_x, T = self._columns(summary)
        if (x > 0).sum() == 0:
            raise RFMError(
                "BG/NBD needs customers with repeat purchases (frequency > 0); every customer "
                "has a single purchase day, so the dropout process cannot be estimated"
            )
        # Times are fitted in units of their mean, so that alpha (a time scale) is near 1
        # whatever the unit; the likelihood is equivariant: alpha scales back, and the
        # log-likelihood shifts by -log(scale) per repeat purchase.
        scale = float(T.mean()) if T.mean() > 0 else 1.0
        t_x, T = t_x / scale, T / scale
        start = np.ones(4)
        if x.shape[0] > WARM_START_CUSTOMERS:
            # A fit on a fixed sample of customers is a close start: the fit on all of them
            # then needs a few iterations instead of dozens.
            sample = np.random.default_rng(0).choice(
                x.shape[0], WARM_START_CUSTOMERS, replace=False
            )
            if (x[sample] > 0).any():
                start = self._fit_profiles(
                    _collapse(x[sample], t_x[sample], T[sample]), start
                ).params
        fit = self._fit_profiles(_collapse(x, t_x, T), start)
        unscale = np.array([1.0, scale, 1.0, 1.0])
        self.params = dict(zip(self.NAMES, map(float, fit.params * unscale), strict=True))
        errors = fit.standard_errors * unscale
        self.standard_errors = dict(zip(self.NAMES, map(float, errors), strict=True))
        self.log_likelihood = fit.log_likelihood - math.log(scale) * float(x.sum())
        self.converged = fit.converged
        self.customers = int(x.shape[0])
        return self

    @staticmethod
    def _fit_profiles(profiles: _Collapsed, start: np.ndarray) -> _Fit:
        weight = profiles.weight
        n = weight.sum()
        (x_at, tx_at, T_at), (x_values, tx_values, T_values) = profiles.at, profiles.values

        def loglik(params: np.ndarray, grad: np.ndarray) -> float:
            r, alpha, a, b = params
            return btyd.bgnbd_loglik(
                x_at, tx_at, T_at, weight, x_values, tx_values, T_values, r, alpha, a, b, grad
            )

        return _maximize(loglik, start, n, "BG/NBD")

    @staticmethod
    def _columns(summary: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x, t_x, T = (_column(summary, c) for c in ("frequency", "recency", "T"))
        bad = ~(np.isfinite(x) & np.isfinite(t_x) & np.isfinite(T))
        bad |= (x < 0) | (x != np.floor(x)) | (t_x < 0) | (t_x > T) | ((x == 0) & (t_x != 0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise RFMError(
                f"invalid summary row {i}: frequency={x[i]}, recency={t_x[i]}, T={T[i]}; "
                "expected a whole frequency >= 0, 0 <= recency <= T, and recency 0 when "
                "frequency is 0"
            )
        return x, t_x, T

    def _require_fit(self) -> tuple[float, float, float, float]:
        if not self.params:
            raise RFMError("the model is not fitted yet: call .fit(summary) first")
        return tuple(self.params[n] for n in self.NAMES)

    def p_alive(self, summary: Any) -> np.ndarray:
        """Probability that each customer is still alive at the end of the observation."""
        r, alpha, a, b = self._require_fit()
        x, t_x, T = self._columns(summary)
        with np.errstate(over="ignore"):
            ratio = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + t_x)))
            odds = np.where(x > 0, a / np.maximum(b + x - 1, 1e-300) * ratio, 0.0)
        return 1.0 / (1.0 + odds)

    def expected_purchases(self, t: float, summary: Any) -> np.ndarray:
        """Expected purchases of each customer in the next ``t`` time units (conditional on
        the customer's history; Fader, Hardie & Lee 2005, eq. 10)."""
        return self._expected_purchases([t], summary)[1][0]

    def _expected_purchases(
        self, times: list[float], summary: Any
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """(:meth:`p_alive`, :meth:`expected_purchases` for each of several horizons), sharing
        the work that does not depend on the horizon."""
        from scipy.special import hyp2f1

        r, alpha, a, b = self._require_fit()
        for t in times:
            if not t >= 0:
                raise RFMError(f"t must be a non-negative time; got {t!r}")
        x, _, T = self._columns(summary)
        # The hypergeometric part depends on (x, T) only: computed once per distinct pair.
        pairs = _collapse(x, T)
        xs, Ts = pairs.column(0), pairs.column(1)
        alive = self.p_alive(summary)
        a = _off_one(a)
        head = (a + b + xs - 1) / (a - 1)
        results = []
        for t in times:
            z = t / (alpha + Ts + t)
            tail = 1 - ((alpha + Ts) / (alpha + Ts + t)) ** (r + xs) * hyp2f1(
                r + xs, b + xs, a + b + xs - 1, z
            )
            results.append((head * tail)[pairs.profile_of] * alive)
        return alive, results

    def expected_purchases_new(self, t: float | np.ndarray) -> np.ndarray:
        """Expected purchases of a new customer in a period of length ``t`` (eq. 9)."""
        from scipy.special import hyp2f1

        r, alpha, a, b = self._require_fit()
        a = _off_one(a)
        t = np.asarray(t, dtype=float)
        z = t / (alpha + t)
        return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z))

    def probability_of_purchases(self, x: int | np.ndarray, t: float) -> np.ndarray:
        """P(X(t) = x): the probability that a new customer makes ``x`` purchases in a period
        of length ``t`` (Fader, Hardie & Lee 2005, eq. 8)."""
        from scipy.special import betaln, gammaln, xlogy

        r, alpha, a, b = self._require_fit()
        if not t >= 0:
            raise RFMError(f"t must be a non-negative time; got {t!r}")
        x = np.asarray(x, dtype=float)
        log_poisson = (
            gammaln(r + x) - gammaln(r) - gammaln(x + 1)
            + r * np.log(alpha / (alpha + t)) + xlogy(x, t / (alpha + t))
        )  # fmt: skip
        first = np.exp(betaln(a, b + x) - betaln(a, b) + log_poisson)
        # 1 - sum_{j < x} of the NBD terms, for x > 0
        result = first.copy()
        for k, xi in np.ndenumerate(x):
            if xi > 0:
                j = np.arange(int(xi))
                terms = np.exp(
                    gammaln(r + j) - gammaln(r) - gammaln(j + 1)
                    + r * np.log(alpha / (alpha + t)) + xlogy(j, t / (alpha + t))
                )  # fmt: skip
                result[k] += np.exp(betaln(a + 1, b + xi - 1) - betaln(a, b)) * (1 - terms.sum())
        return result


class GammaGamma:
    """The Gamma-Gamma model of spend per transaction (Fader & Hardie 2013): a customer's
    transaction values are gamma(p, nu), and nu is gamma(q, gamma) across customers.

    Fitted on customers with at least one repeat purchase and a positive mean repeat spend;
    the others are left out of the fit and counted in ``.excluded``.
    """

    NAMES = ("p", "q", "gamma")

    def __init__(self) -> None:
        self.params: dict[str, float] = {}
        self.standard_errors: dict[str, float] = {}
        self.log_likelihood = float("nan")
        self.converged = False
        self.customers = 0
        self.excluded = 0

    def fit(self, summary: Any) -> GammaGamma:
        """Fit by maximum likelihood to a summary with ``frequency`` and ``monetary``."""
        x = _column(summary, "frequency")
        m = _column(summary, "monetary")
        usable = (x > 0) & (m > 0) & np.isfinite(m)
        self.excluded = int((~usable).sum())
        if not usable.any():
            raise RFMError(
                "Gamma-Gamma needs customers with repeat purchases of positive mean value; "
                "this summary has none"
            )
        profiles = _collapse(x[usable], m[usable])
        xs, ms, weight = profiles.column(0), profiles.column(1), profiles.weight
        n = weight.sum()

        def loglik(params: np.ndarray, grad: np.ndarray) -> float:
            p, q, gamma = params
            return btyd.gamma_gamma_loglik(xs, ms, weight, p, q, gamma, grad)

        # Spend is fitted in units of its mean, so that gamma (a money scale) is near 1
        # whatever the currency; gamma scales back, and the log-likelihood shifts by
        # -log(scale) per customer.
        scale = float(np.average(ms, weights=weight))
        ms = ms / scale
        fit = _maximize(loglik, np.array([1.0, 2.0, 1.0]), n, "Gamma-Gamma")
        unscale = np.array([1.0, 1.0, scale])
        self.params = dict(zip(self.NAMES, map(float, fit.params * unscale), strict=True))
        errors = fit.standard_errors * unscale
        self.standard_errors = dict(zip(self.NAMES, map(float, errors), strict=True))
        self.log_likelihood = fit.log_likelihood - math.log(scale) * n
        self.converged = fit.converged
        self.customers = int(n)
        return self

    def _require_fit(self) -> tuple[float, float, float]:
        if not self.params:
            raise RFMError("the model is not fitted yet: call .fit(summary) first")
        return tuple(self.params[n] for n in self.NAMES)

    @property
    def population_mean(self) -> float:
        """Mean spend per transaction across customers, ``gamma * p / (q - 1)`` (infinite when
        q <= 1)."""
        p, q, gamma = self._require_fit()
        return gamma * p / (q - 1) if q > 1 else math.inf

    def expected_spend(self, summary: Any) -> np.ndarray:
        """Expected spend per transaction of each customer (eq. 4 of the note): a weighted
        mean of the population mean and the customer's own mean repeat spend. Customers left
        out of the fit (no repeat purchase, or a mean repeat spend of 0 or less) get the
        population mean."""
        p, q, gamma = self._require_fit()
        x = _column(summary, "frequency")
        m = _column(summary, "monetary")
        usable = (x > 0) & (m > 0) & np.isfinite(m)
        own = (gamma + x * np.where(usable, m, 0)) * p / (p * x + q - 1)
        return np.where(usable, own, self.population_mean)

    def clv(
        self,
        purchases: BetaGeo,
        summary: Any,
        *,
        horizon: float,
        discount_rate: float = 0.0,
        step: float = 1.0,
    ) -> np.ndarray:
        """Lifetime value of each customer with this spend model and the fitted BG/NBD
        ``purchases``: see :func:`customer_lifetime_value`."""
        return customer_lifetime_value(
            purchases, self, summary, horizon=horizon, discount_rate=discount_rate, step=step
        )


def customer_lifetime_value(
    purchases: BetaGeo,
    spend: GammaGamma,
    summary: Any,
    *,
    horizon: float,
    discount_rate: float = 0.0,
    step: float = 1.0,
) -> np.ndarray:
    """Expected discounted value of each customer's purchases over the next ``horizon`` time
    units: per step of length ``step``, the expected purchases in it (BG/NBD) times the
    expected spend (Gamma-Gamma), discounted by ``(1 + discount_rate) ** -k`` at step k."""
    times = _steps(horizon, step, discount_rate)
    _, curves = purchases._expected_purchases(times, summary)
    return _discounted(curves, discount_rate) * spend.expected_spend(summary)


def _steps(horizon: float, step: float, discount_rate: float) -> list[float]:
    """The ends of the discounting steps (checked options)."""
    if not horizon > 0 or not step > 0:
        raise RFMError(f"horizon and step must be positive; got {horizon!r} and {step!r}")
    if discount_rate < 0:
        raise RFMError(f"discount_rate must be at least 0; got {discount_rate!r}")
    steps = math.ceil(horizon / step - 1e-9)
    return [min(k * step, horizon) for k in range(1, steps + 1)]


def _discounted(curves: list[np.ndarray], discount_rate: float) -> np.ndarray:
    """Discounted sum of the purchases expected in each step, from the cumulative curves."""
    total = np.zeros_like(curves[0])
    before = np.zeros_like(curves[0])
    for k, after in enumerate(curves, start=1):
        total += (after - before) / (1 + discount_rate) ** k
        before = after
    return total


def simulate(
    customers: int,
    *,
    r: float,
    alpha: float,
    a: float,
    b: float,
    T: float | np.ndarray,
    resolution: float | None = None,
    seed: int | None = None,
) -> pa.Table:
    """A summary drawn from the BG/NBD model itself (for tests, benchmarks and checks).

    Each customer gets a purchase rate from gamma(r, alpha) and a dropout probability from
    beta(a, b), makes a first purchase at time 0, then repeat purchases at that rate, and drops
    out after each repeat purchase with that probability; observed until ``T``.

    Parameters
    ----------
    customers : int
        How many customers.
    r, alpha, a, b : float
        The BG/NBD parameters.
    T : float or array
        Observation length of each customer.
    resolution : float, optional
        Round ``recency`` down to and ``T`` to multiples of this (e.g. ``1 / 7`` for days
        counted in weeks), as real purchase dates are.
    seed : int, optional
        Seed of the random numbers.

    Returns
    -------
    pyarrow.Table
        ``frequency``, ``recency`` and ``T`` (no customer column, no monetary).
    """
    rng = np.random.default_rng(seed)
    T = np.broadcast_to(np.asarray(T, dtype=float), (customers,)).copy()
    rate = rng.gamma(r, 1 / alpha, customers)
    dropout = rng.beta(a, b, customers)
    arrivals = rng.poisson(rate * T)  # purchases up to T, had the customer stayed alive
    lifetime = rng.geometric(np.clip(dropout, 1e-12, 1.0))  # repeat purchases before dropping
    x = np.minimum(arrivals, lifetime)
    # Given n arrivals in [0, T], the k-th is T times a beta(k, n - k + 1) variable.
    t_x = np.where(x > 0, T * rng.beta(np.maximum(x, 1), np.maximum(arrivals - x + 1, 1)), 0.0)
    if resolution:
        T = np.round(T / resolution) * resolution
        t_x = np.minimum(np.floor(t_x / resolution) * resolution, T)
    return pa.table({"frequency": x.astype(np.int64), "recency": t_x, "T": T})


@dataclass(frozen=True)
class HoldoutEvaluation:
    """Predicted against actual purchases in a holdout period (see :func:`evaluate_holdout`).

    Attributes
    ----------
    customers : pyarrow.Table
        Per customer: ``frequency`` (calibration), ``predicted`` and ``actual`` holdout
        purchases.
    by_frequency : pyarrow.Table
        Per calibration frequency (the last row gathers ``max_frequency`` and more):
        ``customers``, ``actual`` and ``predicted`` mean holdout purchases (the "conditional
        expectations" of Fader, Hardie & Lee 2005, figure 4).
    totals : dict of str to float
        ``predicted`` and ``actual`` total purchases, and per customer the mean absolute error
        ``mae``, root mean squared error ``rmse`` and the correlation ``correlation``.
    """

    customers: pa.Table
    by_frequency: pa.Table
    totals: dict[str, float]


def evaluate_holdout(
    model: BetaGeo, calibration_and_holdout: Any, *, max_frequency: int = 7
) -> HoldoutEvaluation:
    """Compare a fitted BG/NBD model's expected purchases in the holdout period with what each
    customer really bought (a table of :func:`calibration_holdout`)."""
    actual = _column(calibration_and_holdout, "frequency_holdout")
    duration = _column(calibration_and_holdout, "duration_holdout")
    if duration.shape[0] == 0:
        raise RFMError("the calibration/holdout table has no customers")
    predicted = model.expected_purchases(float(duration[0]), calibration_and_holdout)
    x = _column(calibration_and_holdout, "frequency")
    group = np.minimum(x, max_frequency).astype(np.int64)
    count = np.bincount(group, minlength=max_frequency + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_actual = np.bincount(group, actual, max_frequency + 1) / count
        mean_predicted = np.bincount(group, predicted, max_frequency + 1) / count
    error = predicted - actual
    return HoldoutEvaluation(
        customers=pa.table(
            {
                "frequency": x.astype(np.int64),
                "predicted": predicted,
                "actual": actual.astype(np.int64),
            }
        ),
        by_frequency=pa.table(
            {
                "frequency": np.arange(max_frequency + 1),
                "customers": count,
                "actual": mean_actual,
                "predicted": mean_predicted,
            }
        ),
        totals={
            "predicted": float(predicted.sum()),
            "actual": float(actual.sum()),
            "mae": float(np.abs(error).mean()),
            "rmse": float(np.sqrt((error**2).mean())),
            "correlation": float(np.corrcoef(predicted, actual)[0, 1]),
        },
    )


@dataclass(frozen=True)
class CLVResult:
    """The result of :func:`analyze`.

    Attributes
    ----------
    table : pyarrow.Table
        The summary (customer, ``frequency``, ``recency``, ``T``, ``monetary``) with
        ``p_alive``, ``expected_purchases`` (in the next ``horizon`` time units),
        ``expected_spend`` (per purchase) and ``clv`` (the discounted value of those purchases).
    purchases : BetaGeo
        The fitted BG/NBD model.
    spend : GammaGamma
        The fitted Gamma-Gamma model.
    horizon, discount_rate, step : float
        The options the predictions were made with; ``unit`` the time unit.
    """

    table: pa.Table
    purchases: BetaGeo
    spend: GammaGamma
    unit: str | float
    horizon: float
    discount_rate: float
    step: float


def analyze(
    data: Any,
    *,
    customer: str,
    timestamp: str,
    amount: str,
    as_of: Any = None,
    unit: str | float = "W",
    horizon: float = 52.0,
    discount_rate: float = 0.0,
    step: float | None = None,
    timestamp_format: str | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    threads: int | None = None,
) -> CLVResult:
    """Summary, both fits and every prediction in one call (what ``rfm clv`` runs).

    ``horizon`` and ``step`` are in ``unit`` (default: weeks; 52 weeks ahead in steps of a
    month, ``52 / 12``); ``discount_rate`` is per step.

    Examples
    --------
    >>> from rfm_fast import clv, datasets
    >>> result = clv.analyze(datasets.load_example(), **datasets.EXAMPLE_COLUMNS,
    ...                      as_of="1997-09-30")
    >>> sorted(result.table.column_names)[:4]
    ['T', 'clv', 'customer_id', 'expected_purchases']
    >>> {k: round(v, 3) for k, v in result.purchases.params.items()}
    {'r': 0.252, 'alpha': 4.789, 'a': 0.723, 'b': 2.161}
    """
    if step is None:
        step = horizon / 12
    table = summary(
        data,
        customer=customer,
        timestamp=timestamp,
        amount=amount,
        as_of=as_of,
        unit=unit,
        timestamp_format=timestamp_format,
        batch_rows=batch_rows,
        threads=threads,
    )
    purchases = BetaGeo().fit(table)
    spend = GammaGamma().fit(table)
    # One pass of the predictions: p_alive and the expected purchases at every step's end
    # (and at the horizon, the last step's end unless rounding moved it).
    times = _steps(horizon, step, discount_rate)
    wanted = times if times[-1] == horizon else [*times, horizon]
    alive, curves = purchases._expected_purchases(wanted, table)
    spend_per_purchase = spend.expected_spend(table)
    value = _discounted(curves[: len(times)], discount_rate) * spend_per_purchase
    table = (
        table.append_column("p_alive", pa.array(alive))
        .append_column("expected_purchases", pa.array(curves[-1]))
        .append_column("expected_spend", pa.array(spend_per_purchase))
        .append_column("clv", pa.array(value))
    )
    return CLVResult(table, purchases, spend, unit, float(horizon), float(discount_rate), step)


def with_p_alive(result: Any, predictions: CLVResult) -> Any:
    """An :class:`rfm_fast.RFMResult` whose table also has ``p_alive`` (and
    ``expected_purchases`` and ``clv``), matched by customer; customers without a prediction
    get nulls."""
    from rfm_fast.core.scoring import RFMResult

    customer = result.table.column_names[0]
    keys = predictions.table.column(predictions.table.column_names[0])
    where = pc.index_in(result.table.column(customer), value_set=keys.combine_chunks())
    table = result.table
    for name in ("p_alive", "expected_purchases", "clv"):
        column = predictions.table.column(name).combine_chunks()
        table = table.append_column(name, column.take(where))
    return RFMResult(table, result.edges, result.stats)
