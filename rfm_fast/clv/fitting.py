"""Maximum-likelihood fitting shared by the models: customers collapsed into weighted
distinct profiles (:func:`collapse`), and the optimizer over positive parameters
(:func:`maximize`, scipy's L-BFGS-B on their logs)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from rfm_fast.core import arrow
from rfm_fast.core.aggregator import KeyTable
from rfm_fast.errors import RFMError, RFMWarning

GRADIENT_TOLERANCE = 1e-6
"""A stop of the optimizer counts as converged when no gradient component exceeds this."""
LOG_BOUND = 12.0
"""Parameters are searched within e^-12 .. e^12, after scaling times and spend to their means."""


def column_values(table: Any, name: str) -> np.ndarray:
    """Column ``name`` of a summary (an Arrow table, a pandas frame or a mapping) as float64.

    Raises
    ------
    RFMError
        Where the summary has no such column; the message lists the columns it has.
    """
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
class Collapsed:
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


def collapse(*columns: np.ndarray) -> Collapsed:
    """Collapse customers with identical values in all ``columns`` into weighted profiles.

    Each column is factorized on its own, and the index tuples are combined into one integer
    key (sorting a 1-d integer array is much faster than sorting rows).
    """
    factors = [_factorized(c) for c in columns]
    sizes = [f[0].shape[0] for f in factors]
    if math.prod(max(s, 1) for s in sizes) >= 2**62:  # keys would overflow: no collapse
        n = columns[0].shape[0]
        return Collapsed([f[0] for f in factors], [f[1] for f in factors], np.ones(n), np.arange(n))
    key = np.zeros(columns[0].shape[0], dtype=np.int64)
    for (_, at), size in zip(factors, sizes, strict=True):
        key = key * size + at
    table = KeyTable("int")
    profile_of = np.empty(key.shape[0], dtype=np.int64)
    table.factorize(arrow.IntColumn(key, arrow.ALL_VALID), profile_of)
    # one customer of each profile (any: they share every value)
    example = np.empty(len(table), dtype=np.int64)
    example[profile_of] = np.arange(key.shape[0])
    return Collapsed(
        [f[0] for f in factors],
        [f[1][example] for f in factors],
        np.bincount(profile_of, minlength=len(table)).astype(np.float64),
        profile_of,
    )


@dataclass(frozen=True)
class Fit:
    """The outcome of :func:`maximize`: parameters, the log-likelihood at them, their standard
    errors (from the numerical Hessian), and whether and after how many iterations the
    optimizer converged."""

    params: np.ndarray
    log_likelihood: float
    standard_errors: np.ndarray
    converged: bool
    iterations: int


def maximize(
    loglik: Callable[[np.ndarray, np.ndarray], float], start: np.ndarray, n: float, name: str
) -> Fit:
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
    return Fit(params, value, _standard_errors(loglik, params), converged, int(result.nit))


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


def off_one(a: float) -> float:
    """``a``, moved off 1 by a relative 1e-9: the expectations divide by ``a - 1``, and their
    limit at ``a = 1`` is the value next to it."""
    return a if abs(a - 1) > 1e-9 else 1 + math.copysign(1e-9, a - 1 or 1.0)
