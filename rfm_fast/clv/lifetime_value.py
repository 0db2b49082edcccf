"""Customer lifetime value: the expected purchases of BG/NBD in each step of a horizon,
times the expected spend of Gamma-Gamma, discounted per step."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from rfm_fast.errors import RFMError

if TYPE_CHECKING:
    from rfm_fast.clv.bgnbd import BetaGeo
    from rfm_fast.clv.gamma_gamma import GammaGamma


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
    expected spend (Gamma-Gamma), discounted by ``(1 + discount_rate) ** -k`` at step k.

    Parameters
    ----------
    purchases : BetaGeo
        The fitted purchase model.
    spend : GammaGamma
        The fitted spend model.
    summary : table
        The customers, as :func:`rfm_fast.clv.summary` gives them (in the unit of the fits).
    horizon : float
        How far ahead, in that unit.
    discount_rate : float, default 0.0
        Per step.
    step : float, default 1.0
        The length of a discounting step (the last one may be shorter).

    Returns
    -------
    numpy.ndarray
        One value per customer of ``summary``, in the currency of its amounts.

    Examples
    --------
    >>> from rfm_fast import clv, datasets
    >>> table = clv.summary(datasets.load_example(), **datasets.EXAMPLE_COLUMNS,
    ...                     as_of="1997-09-30", unit="W")
    >>> value = clv.customer_lifetime_value(clv.BetaGeo().fit(table), clv.GammaGamma().fit(table),
    ...                                     table, horizon=52, step=4)
    >>> value.shape == (table.num_rows,) and bool((value >= 0).all())
    True
    """
    times = discount_steps(horizon, step, discount_rate)
    _, curves = purchases.expected_purchases_curves(times, summary)
    return discounted_sum(curves, discount_rate) * spend.expected_spend(summary)


def discount_steps(horizon: float, step: float, discount_rate: float) -> list[float]:
    """The ends of the discounting steps (checked options)."""
    if not horizon > 0 or not step > 0:
        raise RFMError(f"horizon and step must be positive; got {horizon!r} and {step!r}")
    if discount_rate < 0:
        raise RFMError(f"discount_rate must be at least 0; got {discount_rate!r}")
    steps = math.ceil(horizon / step - 1e-9)
    return [min(k * step, horizon) for k in range(1, steps + 1)]


def discounted_sum(curves: list[np.ndarray], discount_rate: float) -> np.ndarray:
    """Discounted sum of the purchases expected in each step, from the cumulative curves."""
    total = np.zeros_like(curves[0])
    before = np.zeros_like(curves[0])
    for k, after in enumerate(curves, start=1):
        total += (after - before) / (1 + discount_rate) ** k
        before = after
    return total
