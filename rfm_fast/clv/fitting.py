"""What the models share: the columns of a summary (:func:`column_values`), the inputs of a
prediction broadcast together (:func:`summary_inputs`, :class:`Inputs`), predictions keyed by
customer (:func:`keyed_table`), customers collapsed into weighted distinct profiles
(:func:`collapse`), and the optimizer over positive parameters (:func:`maximize`, scipy's
L-BFGS-B on their logs)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pyarrow as pa

from rfm_fast.core import arrow
from rfm_fast.core.aggregator import KeyTable
from rfm_fast.errors import RFMError, RFMWarning
from rfm_fast.optional import require

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


SUMMARY_COLUMNS = frozenset(
    {"frequency", "recency", "T", "monetary", "frequency_holdout", "monetary_holdout",
     "duration_holdout", "weights"}
)  # fmt: skip
"""The columns of :func:`rfm_fast.clv.summary` and :func:`rfm_fast.clv.calibration_holdout`
other than the customer."""


@dataclass(frozen=True)
class Inputs:
    """The inputs of a prediction, broadcast together as NumPy broadcasts: each as a flat
    float64 array, and the broadcast shape to give the result."""

    columns: tuple[np.ndarray, ...]
    shape: tuple[int, ...]

    def shaped(self, values: np.ndarray) -> float | np.ndarray:
        """``values`` (flat, one per broadcast element) in the broadcast shape: a float when
        every input was a scalar, else an array."""
        if self.shape == ():
            return float(values.reshape(-1)[0])
        return values.reshape(self.shape)


def scalar_or_array(values: Any) -> float | np.ndarray:
    """A 0-d result as a float, any other as an array: the return rule of the predictions."""
    return float(values) if np.ndim(values) == 0 else np.asarray(values)


def broadcast_inputs(values: Mapping[str, Any]) -> Inputs:
    """Numbers, lists or arrays (by name, for the messages) as float64, broadcast together.

    Raises
    ------
    RFMError
        Where a value is not numeric, or the shapes do not broadcast.
    """
    arrays = {}
    for name, value in values.items():
        given = np.asarray(value)
        try:
            if given.dtype.kind not in "iuf":  # text is not parsed, True is not 1
                raise TypeError
            arrays[name] = given.astype(np.float64)
        except (TypeError, ValueError):
            raise RFMError(
                f"{name} must be a number, a list or an array of numbers; got {value!r:.60}"
            ) from None
    try:
        shape = np.broadcast_shapes(*(a.shape for a in arrays.values()))
    except ValueError:
        found = ", ".join(f"{name} has shape {a.shape}" for name, a in arrays.items())
        raise RFMError(
            f"the inputs do not broadcast together ({found}): give scalars, or arrays whose "
            "shapes NumPy can broadcast"
        ) from None
    return Inputs(tuple(np.broadcast_to(a, shape).reshape(-1) for a in arrays.values()), shape)


def summary_inputs(
    summary: Any, given: Mapping[str, Any], extra: Mapping[str, Any] | None = None
) -> Inputs:
    """The columns named by ``given`` from ``summary``, or, without a summary, the values of
    ``given`` (the keyword form of the predictions), then ``extra`` (such as the horizon
    ``t``), broadcast together.

    Raises
    ------
    RFMError
        When both or neither of the summary and the keywords are given, or as
        :func:`column_values` and :func:`broadcast_inputs` do.
    """
    names = list(given)
    passed = [name for name, value in given.items() if value is not None]
    if summary is not None:
        if passed:
            raise RFMError(
                f"pass either a summary or {', '.join(names)} as keywords, not both "
                f"(got a summary and {', '.join(passed)})"
            )
        values = {name: column_values(summary, name) for name in names}
    else:
        missing = [name for name in names if given[name] is None]
        if missing:
            raise RFMError(
                f"pass a summary, or {', '.join(names)} as keywords; missing: " + ", ".join(missing)
            )
        values = dict(given)
    return broadcast_inputs({**values, **(extra or {})})


def customer_column(summary: Any) -> str | None:
    """The customer column of a summary: its first column, unless that is one of
    :data:`SUMMARY_COLUMNS` (a summary without customers, such as :func:`simulate` gives)."""
    names = getattr(summary, "column_names", None)
    if names is None:
        names = list(summary)
    if not names or names[0] in SUMMARY_COLUMNS:
        return None
    return str(names[0])


def keyed_table(summary: Any, predictions: Mapping[str, Any]) -> pa.Table:
    """The customer column of ``summary`` (under its name, in its order; none when the summary
    has none) followed by the ``predictions``, one value per customer.

    Raises
    ------
    RFMError
        Where the predictions are not one value per row (a summary of more than one
        dimension).
    """
    columns: dict[str, Any] = {}
    name = customer_column(summary)
    if name is not None:
        keys = summary[name]
        columns[name] = keys if isinstance(keys, pa.ChunkedArray | pa.Array) else pa.array(keys)
    for key, values in predictions.items():
        values = np.atleast_1d(values)
        if values.ndim != 1:
            raise RFMError(
                f"a table of predictions needs one row per customer; the inputs have shape "
                f"{values.shape}: call the prediction methods for arrays of other shapes"
            )
        columns[key] = values
    return pa.table(columns)


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

    def __repr__(self) -> str:
        return (
            f"Collapsed(customers={self.profile_of.shape[0]:,}, profiles={self.weight.shape[0]:,}"
            f", columns={len(self.values)})"
        )

    def column(self, k: int) -> np.ndarray:
        """Column ``k`` of each profile."""
        return self.values[k][self.at[k]]


def fit_weights(summary: Any, weights: Any, rows: int) -> np.ndarray | None:
    """The customers each row of a summary stands for: ``weights`` (a column name or values),
    else the summary's ``weights`` column where it has one, else None (one each).

    Raises
    ------
    RFMError
        Where the weights are not one finite number >= 0 per row.
    """
    if weights is None:
        names = getattr(summary, "column_names", None)
        if names is None:
            names = list(summary)
        if "weights" not in names:
            return None
        weights = "weights"
    if isinstance(weights, str):
        values = column_values(summary, weights)
    else:
        values = broadcast_inputs({"weights": weights}).columns[0]
    if values.shape != (rows,):
        raise RFMError(
            f"weights must give one number per row of the summary ({rows:,} rows); got "
            f"{values.shape[0]:,} values"
        )
    bad = ~(np.isfinite(values) & (values >= 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise RFMError(
            f"invalid weight in row {i}: {values[i]}; expected the number of customers of the "
            "row, a finite number >= 0"
        )
    return values


def collapse(*columns: np.ndarray, weights: np.ndarray | None = None) -> Collapsed:
    """Collapse customers with identical values in all ``columns`` into weighted profiles.

    Each column is factorized on its own, and the index tuples are combined into one integer
    key (sorting a 1-d integer array is much faster than sorting rows). A profile's weight is
    its number of rows, or the sum of their ``weights``.
    """
    collapsed = _collapse(*columns)
    if weights is None:
        return collapsed
    total = np.bincount(collapsed.profile_of, weights, minlength=collapsed.weight.shape[0])
    return Collapsed(collapsed.values, collapsed.at, total, collapsed.profile_of)


def _collapse(*columns: np.ndarray) -> Collapsed:
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


def scipy(module: str) -> ModuleType:
    """scipy's ``module`` (``"special"``, ``"optimize"``), imported; without scipy, the
    :class:`RFMError` that says how to install it (``pip install 'rfm_fast[clv]'``)."""
    return require(f"scipy.{module}", "clv", SCIPY_PURPOSE)


SCIPY_PURPOSE = "churn and lifetime value (rfm_fast.clv)"
"""What needs scipy, as the message of a missing scipy names it."""


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
    at_bound: np.ndarray
    """Per parameter: whether the search stopped at its bound (the data do not pin it down)."""


def maximize(
    loglik: Callable[[np.ndarray, np.ndarray], float], start: np.ndarray, n: float, name: str
) -> Fit:
    """Maximize a log-likelihood over positive parameters (optimized on their logs)."""
    minimize = scipy("optimize").minimize

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
        reason = str(result.message).strip().rstrip(":").strip()
        if reason.upper().startswith("ABNORMAL"):  # L-BFGS-B's word for a failed line search
            reason = "its line search failed"
        warnings.warn(
            f"{name}: the optimizer stopped before converging" + (f" ({reason})" if reason else ""),
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
    return Fit(
        params, value, _standard_errors(loglik, params), converged, int(result.nit), at_bound
    )


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
