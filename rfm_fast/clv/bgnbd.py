"""BG/NBD (Fader, Hardie & Lee 2005) and MBG/NBD (Batislam, Denizel & Filiztekin 2007):
:class:`BetaGeo` and :class:`ModifiedBetaGeo`, with p_alive and the expected purchases of each
customer."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rfm_fast._kernels import btyd
from rfm_fast.clv.fitting import Collapsed, collapse, off_one, scipy
from rfm_fast.clv.purchase_model import WARM_START_CUSTOMERS, PurchaseModel

__all__ = ["WARM_START_CUSTOMERS", "BetaGeo", "ModifiedBetaGeo"]


class BetaGeo(PurchaseModel):
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
    LABEL = "BG/NBD"
    TIME_SCALED = ("alpha",)
    SHIFT = 0
    """1 where a customer may drop out right after the first purchase too (MBG/NBD)."""

    def _likelihood(self, profiles: Collapsed) -> Callable[[np.ndarray, np.ndarray], float]:
        weight = profiles.weight
        (x_at, tx_at, T_at), (x_values, tx_values, T_values) = profiles.at, profiles.values
        shift = float(self.SHIFT)

        def loglik(params: np.ndarray, grad: np.ndarray) -> float:
            r, alpha, a, b = params
            return btyd.bgnbd_loglik(
                x_at, tx_at, T_at, weight, x_values, tx_values, T_values, r, alpha, a, b, shift,
                grad,
            )  # fmt: skip

        return loglik

    def _p_alive(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        r, alpha, a, b = self._require_fit()
        shift = self.SHIFT
        with np.errstate(over="ignore"):
            ratio = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + t_x)))
            odds = np.where(x + shift > 0, a / np.maximum(b + x + shift - 1, 1e-300) * ratio, 0.0)
        return 1.0 / (1.0 + odds)

    def _expected(
        self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, times: list[float | np.ndarray]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        # Fader, Hardie & Lee 2005, eq. 10 (Batislam et al. 2007 for MBG/NBD: b + x + 1 in
        # place of b + x).
        hyp2f1 = scipy("special").hyp2f1

        r, alpha, a, b = self._require_fit()
        # The hypergeometric part depends on (x, T) and the horizon only: computed once per
        # distinct profile.
        per_customer = [t for t in times if np.ndim(t)]
        profiles = collapse(x, T, *per_customer)
        xs, Ts = profiles.column(0), profiles.column(1)
        alive = self._p_alive(x, t_x, T)
        a = off_one(a)
        bx = b + xs + self.SHIFT
        head = (a + bx - 1) / (a - 1)
        results = []
        k = 2
        for t in times:
            if np.ndim(t):
                t, k = profiles.column(k), k + 1
            z = t / (alpha + Ts + t)
            tail = 1 - ((alpha + Ts) / (alpha + Ts + t)) ** (r + xs) * hyp2f1(
                r + xs, bx, a + bx - 1, z
            )
            results.append((head * tail)[profiles.profile_of] * alive)
        return alive, results

    def _expected_new(self, t: np.ndarray) -> np.ndarray:
        # eq. 9. MBG/NBD: a customer who stays after the first purchase (probability 1 - p,
        # which turns beta(a, b) into b / (a + b) beta(a, b + 1)) is a BG/NBD customer.
        hyp2f1 = scipy("special").hyp2f1

        r, alpha, a, b = self._require_fit()
        a = off_one(a)
        stays = (b / (a + b)) ** self.SHIFT
        b = b + self.SHIFT
        z = t / (alpha + t)
        tail = 1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z)
        return stays * (a + b - 1) / (a - 1) * tail

    def _probability(self, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        # eq. 8 (MBG/NBD: b + x + 1 in place of b + x, and a dropout term for x = 0 too)
        special = scipy("special")
        betainc, betaln, gammaln, xlogy = (
            special.betainc,
            special.betaln,
            special.gammaln,
            special.xlogy,
        )

        r, alpha, a, b = self._require_fit()
        log_poisson = (
            gammaln(r + x) - gammaln(r) - gammaln(x + 1)
            + r * np.log(alpha / (alpha + t)) + xlogy(x, t / (alpha + t))
        )  # fmt: skip
        bx = b + x + self.SHIFT
        result = np.exp(betaln(a, bx) - betaln(a, b) + log_poisson)
        # Dropped out after the x-th purchase (for MBG/NBD also after the first, x = 0): B(a +
        # 1, b + x - 1) / B(a, b) times the probability of at least x purchases under the NBD,
        # which is the regularized incomplete beta I_{t/(alpha+t)}(x, r) (1 minus the sum of
        # the NBD terms below x, without the cancellation).
        dropped = x + self.SHIFT > 0
        xd, td = x[dropped], t[dropped]
        at_least = np.where(xd > 0, betainc(np.maximum(xd, 1), r, td / (alpha + td)), 1.0)
        result[dropped] += np.exp(betaln(a + 1, bx[dropped] - 1) - betaln(a, b)) * at_least
        return result

    def _draw(self, rng: np.random.Generator, T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # A purchase rate from gamma(r, alpha) and a dropout probability from beta(a, b); a
        # dropout after each repeat purchase (MBG/NBD: and after the first) with it.
        r, alpha, a, b = self._require_fit()
        customers = T.shape[0]
        rate = rng.gamma(r, 1 / alpha, customers)
        dropout = rng.beta(a, b, customers)
        arrivals = rng.poisson(rate * T)  # purchases up to T, had the customer stayed alive
        # repeat purchases before dropping out (MBG/NBD: one fewer, as it may drop at 0)
        lifetime = rng.geometric(np.clip(dropout, 1e-12, 1.0)) - self.SHIFT
        x = np.minimum(arrivals, lifetime)
        # Given n arrivals in [0, T], the k-th is T times a beta(k, n - k + 1) variable.
        t_x = np.where(x > 0, T * rng.beta(np.maximum(x, 1), np.maximum(arrivals - x + 1, 1)), 0.0)
        return x, t_x


class ModifiedBetaGeo(BetaGeo):
    """The MBG/NBD model (Batislam, Denizel & Filiztekin 2007; Wagner & Hoppe 2008): BG/NBD,
    except that a customer may also drop out right after the first purchase, so that a
    customer without repeat purchases is not certainly alive.

    Examples
    --------
    >>> from rfm_fast import clv
    >>> truth = clv.ModifiedBetaGeo.from_params(r=0.5, alpha=6.0, a=1.2, b=3.0)
    >>> model = clv.ModifiedBetaGeo().fit(truth.simulate(20_000, T=52, seed=1))
    >>> {k: round(v, 1) for k, v in model.params.items()}  # simulated with 0.5, 6, 1.2, 3
    {'r': 0.5, 'alpha': 6.1, 'a': 1.1, 'b': 2.6}
    >>> round(model.p_alive(frequency=0, recency=0, T=52), 3)  # below 1, unlike BG/NBD
    0.421
    >>> round(truth.expected_purchases_new(52), 3)
    1.543
    """

    LABEL = "MBG/NBD"
    SHIFT = 1
