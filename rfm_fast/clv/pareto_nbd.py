"""Pareto/NBD (Schmittlein, Morrison & Colombo 1987; Fader & Hardie 2005): :class:`ParetoNBD`,
with p_alive and the expected purchases of each customer."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from rfm_fast._kernels import btyd
from rfm_fast.clv.fitting import Collapsed, collapse, off_one, scipy
from rfm_fast.clv.purchase_model import PurchaseModel

QUADRATURE_NODES = 64
"""Gauss-Legendre nodes per panel of the integral of :meth:`ParetoNBD.probability_of_purchases`."""


class ParetoNBD(PurchaseModel):
    """The Pareto/NBD model (Schmittlein, Morrison & Colombo 1987): while alive, purchases at a
    Poisson rate that is gamma(r, alpha) across customers; lifetimes exponential at a rate
    that is gamma(s, beta) across customers (a customer may drop out at any time).

    The likelihood (Fader & Hardie 2005, "A note on deriving the Pareto/NBD model") is
    written in its integral form: alive at ``T``, or dropped out at some time between the last
    purchase and ``T``. Where alpha and beta are within a factor of about 2 of each other
    (after adding t_x), the integral is the series behind the note's Gaussian hypergeometric
    terms, summed term by term with positive terms only (no difference of two
    hypergeometric functions); elsewhere, or where the series would need more than 60 terms,
    Gauss-Legendre panels integrate a ratio of powers that never exceeds 1. Neither overflows
    for any parameters. The gradient is analytic: the series differentiated term by term, or
    the integrals of the derivatives.

    Examples
    --------
    >>> from rfm_fast import clv
    >>> truth = clv.ParetoNBD.from_params(r=0.55, alpha=10.6, s=0.61, beta=11.7)
    >>> model = clv.ParetoNBD().fit(truth.simulate(20_000, T=52, seed=1))
    >>> {k: round(v, 1) for k, v in model.params.items()}  # simulated with 0.55, 10.6, 0.61, 11.7
    {'r': 0.5, 'alpha': 10.3, 's': 0.6, 'beta': 13.0}
    >>> round(model.p_alive(frequency=3, recency=10, T=52), 3)
    0.065
    >>> truth.expected_purchases_new([0, 39, 78]).round(3)
    array([0.   , 1.201, 1.888])
    >>> truth.probability_of_purchases([0, 1, 2], 39).round(4)
    array([0.5961, 0.1651, 0.082 ])
    """

    NAMES = ("r", "alpha", "s", "beta")
    LABEL = "Pareto/NBD"
    TIME_SCALED = ("alpha", "beta")

    def _likelihood(self, profiles: Collapsed) -> Callable[[np.ndarray, np.ndarray], float]:
        weight = profiles.weight
        (x_at, tx_at, T_at), (x_values, tx_values, T_values) = profiles.at, profiles.values

        def loglik(params: np.ndarray, grad: np.ndarray) -> float:
            r, alpha, s, beta = params
            return btyd.pareto_nbd_loglik(
                x_at, tx_at, T_at, weight, x_values, tx_values, T_values, r, alpha, s, beta,
                grad,
            )  # fmt: skip

        return loglik

    def _p_alive(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        r, alpha, s, beta = self._require_fit()
        profiles = collapse(x, t_x, T)  # the integral once per distinct customer
        out = np.empty(profiles.weight.shape[0])
        xs, txs, Ts = (profiles.column(k) for k in range(3))
        btyd.pareto_nbd_p_alive(xs, txs, Ts, r, alpha, s, beta, out)
        return out[profiles.profile_of]

    def _expected(
        self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, times: list[float | np.ndarray]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        # Fader & Hardie 2005 (the note), eq. 22: p_alive times the expected purchases of a
        # customer alive at T.
        r, alpha, s, beta = self._require_fit()
        alive = self._p_alive(x, t_x, T)
        s = off_one(s)
        head = (r + x) * (beta + T) / ((alpha + T) * (s - 1)) * alive
        results = [
            head * -np.expm1((s - 1) * (np.log(beta + T) - np.log(beta + T + t))) for t in times
        ]
        return alive, results

    def _expected_new(self, t: np.ndarray) -> np.ndarray:
        # Fader & Hardie 2005, the note, eq. 17
        r, alpha, s, beta = self._require_fit()
        s = off_one(s)
        tail = -np.expm1((s - 1) * (math.log(beta) - np.log(beta + t)))
        return r * beta / (alpha * (s - 1)) * tail + 0.0  # not -0.0

    def _probability(self, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        # Alive at t with x purchases, or dropped out at some tau < t after x purchases:
        # (beta / (beta + t))^s NBD(x; t) plus s beta^s times the integral over [0, t] of
        # NBD(x; tau) (beta + tau)^-(s+1), NBD(x; tau) the negative binomial probability of x
        # purchases in tau; the integral by Gauss-Legendre quadrature in log space.
        special = scipy("special")
        gammaln, xlogy = special.gammaln, special.xlogy

        r, alpha, s, beta = self._require_fit()
        pairs = collapse(x, t)
        xs, ts = pairs.column(0), pairs.column(1)

        def log_nbd(tau: np.ndarray) -> np.ndarray:
            return (
                gammaln(r + xs) - gammaln(r) - gammaln(xs + 1)
                + r * (math.log(alpha) - np.log(alpha + tau))
                + xlogy(xs, tau) - xs * np.log(alpha + tau)
            )  # fmt: skip

        alive = s * (math.log(beta) - np.log(beta + ts)) + log_nbd(ts)
        nodes, weights = np.polynomial.legendre.leggauss(QUADRATURE_NODES)
        # tau = t u^2 puts nodes near 0, where NBD(0; tau) and (beta+tau)^-(s+1) fall fastest
        logs = []
        for u, w in zip((nodes + 1) / 2, weights / 2, strict=True):
            tau = ts * u * u
            logs.append(
                math.log(s) + s * math.log(beta) - (s + 1) * np.log(beta + tau) + log_nbd(tau)
                + np.log(2 * ts * u * w)
            )  # fmt: skip
        with np.errstate(divide="ignore"):
            stacked = np.vstack([alive, *logs])
        top = stacked.max(axis=0)
        total = np.exp(top) * np.exp(stacked - top).sum(axis=0)
        total = np.where(ts > 0, total, (xs == 0).astype(float))
        return total[pairs.profile_of]

    def _draw(self, rng: np.random.Generator, T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # A purchase rate from gamma(r, alpha) and a dropout rate from gamma(s, beta);
        # purchases at that rate until an exponential lifetime at the dropout rate ends.
        r, alpha, s, beta = self._require_fit()
        customers = T.shape[0]
        rate = rng.gamma(r, 1 / alpha, customers)
        dropout = rng.gamma(s, 1 / beta, customers)
        until = np.minimum(rng.exponential(1.0, customers) / dropout, T)
        x = rng.poisson(rate * until)
        # Given n purchases in [0, until], the last is `until` times a beta(n, 1) variable.
        t_x = np.where(x > 0, until * rng.beta(np.maximum(x, 1), 1.0), 0.0)
        return x, t_x
