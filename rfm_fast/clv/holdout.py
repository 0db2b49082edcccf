"""Checks of a fitted purchase model: simulation from the model (:func:`simulate`) and
predicted against actual purchases in a holdout period (:func:`evaluate_holdout`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from rfm_fast.clv.bgnbd import BetaGeo
from rfm_fast.clv.fitting import column_values, keyed_table
from rfm_fast.clv.purchase_model import PurchaseModel
from rfm_fast.errors import RFMError


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
    """A summary drawn from the BG/NBD model itself (for tests, benchmarks and checks): the
    :meth:`~rfm_fast.clv.BetaGeo.simulate` of a model with these parameters (each model has
    its own ``simulate``).

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
    model = BetaGeo.from_params(r=r, alpha=alpha, a=a, b=b)
    return model.simulate(customers, T=T, resolution=resolution, seed=seed)


@dataclass(frozen=True, repr=False)
class HoldoutEvaluation:
    """Predicted against actual purchases in a holdout period (see :func:`evaluate_holdout`).

    Attributes
    ----------
    customers : pyarrow.Table
        Per customer: the customer column of the table (under its name, in its order),
        ``frequency`` (calibration), ``predicted`` and ``actual`` holdout purchases.
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

    def __repr__(self) -> str:
        t = self.totals
        return (
            f"HoldoutEvaluation(customers={self.customers.num_rows:,}, "
            f"predicted={t['predicted']:,.1f}, actual={t['actual']:,.0f}, mae={t['mae']:.4g}, "
            f"rmse={t['rmse']:.4g}, correlation={t['correlation']:.3f})"
        )


def evaluate_holdout(
    model: PurchaseModel, calibration_and_holdout: Any, *, max_frequency: int = 7
) -> HoldoutEvaluation:
    """Compare a fitted purchase model's expected purchases in the holdout period with what each
    customer really bought.

    Parameters
    ----------
    model : PurchaseModel
        A model fitted on the calibration period (BetaGeo, ModifiedBetaGeo, ParetoNBD, ...).
    calibration_and_holdout : table
        The table of :func:`calibration_holdout`.
    max_frequency : int, default 7
        Customers with more repeat purchases in the calibration period are grouped with
        those of ``max_frequency`` in ``by_frequency``.

    Returns
    -------
    HoldoutEvaluation
        Per customer, per calibration frequency, and totals (predicted, actual, MAE, RMSE,
        correlation).

    Examples
    --------
    >>> from rfm_fast import clv, datasets
    >>> table = clv.calibration_holdout(datasets.load_example(), **datasets.EXAMPLE_COLUMNS,
    ...                                 calibration_end="1997-09-30", unit="W")
    >>> evaluation = clv.evaluate_holdout(clv.BetaGeo().fit(table), table)
    >>> round(evaluation.totals["predicted"] / evaluation.totals["actual"], 2)
    0.86
    >>> evaluation  # doctest: +ELLIPSIS
    HoldoutEvaluation(customers=..., predicted=..., actual=..., mae=..., rmse=..., correlation=...)
    """
    actual = column_values(calibration_and_holdout, "frequency_holdout")
    duration = column_values(calibration_and_holdout, "duration_holdout")
    if duration.shape[0] == 0:
        raise RFMError("the calibration/holdout table has no customers")
    predicted = model.expected_purchases(float(duration[0]), calibration_and_holdout)
    x = column_values(calibration_and_holdout, "frequency")
    group = np.minimum(x, max_frequency).astype(np.int64)
    count = np.bincount(group, minlength=max_frequency + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_actual = np.bincount(group, actual, max_frequency + 1) / count
        mean_predicted = np.bincount(group, predicted, max_frequency + 1) / count
    error = predicted - actual
    return HoldoutEvaluation(
        customers=keyed_table(
            calibration_and_holdout,
            {
                "frequency": x.astype(np.int64),
                "predicted": predicted,
                "actual": actual.astype(np.int64),
            },
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
