"""BG/NBD (Fader, Hardie & Lee 2005): :class:`BetaGeo`, with p_alive and the expected
purchases of each customer."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rfm_fast._kernels import btyd
from rfm_fast.clv.fitting import Collapsed, Fit, collapse, column_values, maximize, off_one
from rfm_fast.errors import RFMError

WARM_START_CUSTOMERS = 200_000
"""Above this many customers, BG/NBD starts from a fit on a sample of this size."""


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
                    collapse(x[sample], t_x[sample], T[sample]), start
                ).params
        fit = self._fit_profiles(collapse(x, t_x, T), start)
        unscale = np.array([1.0, scale, 1.0, 1.0])
        self.params = dict(zip(self.NAMES, map(float, fit.params * unscale), strict=True))
        errors = fit.standard_errors * unscale
        self.standard_errors = dict(zip(self.NAMES, map(float, errors), strict=True))
        self.log_likelihood = fit.log_likelihood - math.log(scale) * float(x.sum())
        self.converged = fit.converged
        self.customers = int(x.shape[0])
        return self

    @staticmethod
    def _fit_profiles(profiles: Collapsed, start: np.ndarray) -> Fit:
        weight = profiles.weight
        n = weight.sum()
        (x_at, tx_at, T_at), (x_values, tx_values, T_values) = profiles.at, profiles.values

        def loglik(params: np.ndarray, grad: np.ndarray) -> float:
            r, alpha, a, b = params
            return btyd.bgnbd_loglik(
                x_at, tx_at, T_at, weight, x_values, tx_values, T_values, r, alpha, a, b, grad
            )

        return maximize(loglik, start, n, "BG/NBD")

    @staticmethod
    def _columns(summary: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x, t_x, T = (column_values(summary, c) for c in ("frequency", "recency", "T"))
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
        return self.expected_purchases_curves([t], summary)[1][0]

    def expected_purchases_curves(
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
        pairs = collapse(x, T)
        xs, Ts = pairs.column(0), pairs.column(1)
        alive = self.p_alive(summary)
        a = off_one(a)
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
        a = off_one(a)
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
