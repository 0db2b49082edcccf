"""Customer lifetime value: the expected purchases of a purchase model (BG/NBD, MBG/NBD,
Pareto/NBD or BG/BB) in each step of a horizon,
times the expected spend of Gamma-Gamma, discounted per step (:func:`customer_lifetime_value`),
and every prediction on a summary keyed by customer (:func:`predict`)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pyarrow as pa
from numpy.typing import ArrayLike

from rfm_fast.clv.fitting import keyed_table, scalar_or_array
from rfm_fast.errors import RFMError

if TYPE_CHECKING:
    from rfm_fast.clv.purchase_model import PurchaseModel


class SpendModel(Protocol):
    """What lifetime value needs of a spend model (:class:`~rfm_fast.clv.GammaGamma` is one):
    the expected spend per purchase of each customer. A protocol, so that this module does not
    import the spend model that calls it."""

    def expected_spend(
        self,
        summary: Any = None,
        *,
        frequency: ArrayLike | None = None,
        monetary: ArrayLike | None = None,
    ) -> float | np.ndarray: ...


def customer_lifetime_value(
    purchases: PurchaseModel,
    spend: SpendModel,
    summary: Any = None,
    *,
    horizon: float,
    discount_rate: float = 0.0,
    step: float = 1.0,
    frequency: ArrayLike | None = None,
    recency: ArrayLike | None = None,
    T: ArrayLike | None = None,
    monetary: ArrayLike | None = None,
) -> float | np.ndarray:
    """Expected discounted value of a customer's purchases over the next ``horizon`` time
    units: per step of length ``step``, the expected purchases in it (any purchase model) times the
    expected spend (Gamma-Gamma), discounted by ``(1 + discount_rate) ** -k`` at step k.

    Parameters
    ----------
    purchases : PurchaseModel
        The fitted purchase model: BetaGeo, ModifiedBetaGeo, ParetoNBD or BetaGeoBetaBinom.
    spend : GammaGamma
        The fitted spend model.
    summary : table, optional
        The customers, as :func:`rfm_fast.clv.summary` gives them (in the unit of the fits).
    horizon : float
        How far ahead, in that unit.
    discount_rate : float, default 0.0
        Per step.
    step : float, default 1.0
        The length of a discounting step (the last one may be shorter).
    frequency, recency, T, monetary : number, list or array, optional
        Instead of ``summary``: the columns, broadcast together as NumPy broadcasts.

    Returns
    -------
    float or numpy.ndarray
        In the currency of the amounts: a float when every input is a scalar, else an array
        of the broadcast shape (one value per customer of ``summary``). :func:`predict` gives
        a table keyed by customer.

    Examples
    --------
    >>> from rfm_fast import clv, datasets
    >>> table = clv.summary(datasets.load_example(), **datasets.EXAMPLE_COLUMNS,
    ...                     as_of="1997-09-30", unit="W")
    >>> value = clv.customer_lifetime_value(clv.BetaGeo().fit(table), clv.GammaGamma().fit(table),
    ...                                     table, horizon=52, step=4)
    >>> value.shape == (table.num_rows,) and bool((value >= 0).all())
    True
    >>> round(clv.customer_lifetime_value(clv.BetaGeo().fit(table), clv.GammaGamma().fit(table),
    ...       frequency=3, recency=30.0, T=38.0, monetary=40.0, horizon=52, step=4), 2)
    91.56
    """
    times = discount_steps(horizon, step, discount_rate)
    _, curves = purchases.expected_purchases_curves(
        times, summary, frequency=frequency, recency=recency, T=T
    )
    spend_per_purchase = spend.expected_spend(summary, frequency=frequency, monetary=monetary)
    return scalar_or_array(discounted_sum(curves, discount_rate) * spend_per_purchase)


def predict(
    purchases: PurchaseModel,
    spend: SpendModel,
    summary: Any,
    *,
    horizon: float,
    discount_rate: float = 0.0,
    step: float | None = None,
) -> pa.Table:
    """Every prediction on a summary, keyed by customer: p_alive, the expected purchases and
    spend, and the lifetime value.

    Parameters
    ----------
    purchases : PurchaseModel
        The fitted purchase model: BetaGeo, ModifiedBetaGeo, ParetoNBD or BetaGeoBetaBinom.
    spend : GammaGamma
        The fitted spend model.
    summary : table
        The customers, as :func:`rfm_fast.clv.summary` gives them (in the unit of the fits).
    horizon : float
        How far ahead, in that unit.
    discount_rate : float, default 0.0
        Per step.
    step : float, optional
        The length of a discounting step. Default: ``horizon / 12``, as for
        :func:`rfm_fast.clv.analyze`.

    Returns
    -------
    pyarrow.Table
        The summary's customer column (under its name, in its order; left out when the
        summary has none), then ``p_alive``, ``expected_purchases`` (in the next
        ``horizon``), ``expected_spend`` (per purchase) and ``clv``.

    Examples
    --------
    >>> from rfm_fast import clv, datasets
    >>> table = clv.summary(datasets.load_example(), **datasets.EXAMPLE_COLUMNS,
    ...                     as_of="1997-09-30", unit="W")
    >>> predictions = clv.predict(clv.BetaGeo().fit(table), clv.GammaGamma().fit(table), table,
    ...                           horizon=52, discount_rate=0.01)
    >>> predictions.column_names
    ['customer_id', 'p_alive', 'expected_purchases', 'expected_spend', 'clv']
    >>> predictions["customer_id"].equals(table["customer_id"])
    True
    """
    if step is None and isinstance(horizon, int | float | np.integer | np.floating):
        step = horizon / 12
    # One pass of the predictions: p_alive and the expected purchases at every step's end
    # (and at the horizon, the last step's end unless rounding moved it).
    times = discount_steps(horizon, step, discount_rate)
    wanted = times if times[-1] == horizon else [*times, horizon]
    alive, curves = purchases.expected_purchases_curves(wanted, summary)
    spend_per_purchase = spend.expected_spend(summary)
    value = discounted_sum(curves[: len(times)], discount_rate) * spend_per_purchase
    return keyed_table(
        summary,
        {
            "p_alive": alive,
            "expected_purchases": curves[-1],
            "expected_spend": spend_per_purchase,
            "clv": value,
        },
    )


def discount_steps(horizon: float, step: float, discount_rate: float) -> list[float]:
    """The ends of the discounting steps (checked options)."""
    for name, value in (("horizon", horizon), ("step", step), ("discount_rate", discount_rate)):
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            raise RFMError(f"{name} must be one number; got {value!r:.60}")
        if not math.isfinite(value):
            raise RFMError(f"{name} must be a finite number; got {value!r}")
    if not horizon > 0 or not step > 0:
        raise RFMError(f"horizon and step must be positive; got {horizon!r} and {step!r}")
    if discount_rate < 0:
        raise RFMError(f"discount_rate must be at least 0; got {discount_rate!r}")
    steps = math.ceil(horizon / step - 1e-9)
    return [min(k * step, horizon) for k in range(1, steps + 1)]


def discounted_sum(curves: list[float | np.ndarray], discount_rate: float) -> np.ndarray:
    """Discounted sum of the purchases expected in each step, from the cumulative curves."""
    total = np.zeros(np.shape(curves[0]))
    before = np.zeros(np.shape(curves[0]))
    for k, after in enumerate(curves, start=1):
        total += (after - before) / (1 + discount_rate) ** k
        before = after
    return total
