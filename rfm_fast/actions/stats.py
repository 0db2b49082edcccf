"""The statistics of a campaign's measurement, in plain Python (no SciPy): Wilson intervals for
a proportion, Newcombe's interval for a difference of two, the two-proportion z-test, the Katz
interval for a ratio of two, and Welch's t-interval and test for a difference of two means
(with Student's t distribution computed from the regularized incomplete beta function).

Each function takes counts or summary figures and returns plain floats; where a figure is not
defined (an empty group, no variation) it returns None instead of a number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

CONFIDENCE = 0.95
"""The confidence level of every interval."""

_NORMAL = NormalDist()


def normal_quantile(confidence: float = CONFIDENCE) -> float:
    """The two-sided normal critical value: 1.96 for 95%.

    Examples
    --------
    >>> round(normal_quantile(0.95), 4)
    1.96
    """
    return _NORMAL.inv_cdf(0.5 + confidence / 2)


def wilson_interval(
    successes: int, n: int, confidence: float = CONFIDENCE
) -> tuple[float, float] | None:
    """Wilson's score interval for a proportion ``successes / n`` (None when ``n`` is 0).

    Examples
    --------
    >>> low, high = wilson_interval(0, 20)
    >>> low, round(high, 4)
    (0.0, 0.1611)
    """
    if n <= 0:
        return None
    z = normal_quantile(confidence)
    p = successes / n
    denominator = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, center - half), min(1.0, center + half)


def newcombe_interval(
    x1: int, n1: int, x2: int, n2: int, confidence: float = CONFIDENCE
) -> tuple[float, float] | None:
    """Newcombe's hybrid score interval (his method 10, from two Wilson intervals) for the
    difference of proportions ``x1/n1 - x2/n2``; None when a group is empty.

    Unlike the Wald interval it stays inside [-1, 1] and keeps its coverage near 0 and 1.

    Examples
    --------
    >>> low, high = newcombe_interval(56, 70, 48, 80)   # Newcombe (1998), example (a)
    >>> round(low, 4), round(high, 4)
    (0.0524, 0.3339)
    """
    first, second = wilson_interval(x1, n1, confidence), wilson_interval(x2, n2, confidence)
    if first is None or second is None:
        return None
    p1, p2 = x1 / n1, x2 / n2
    (l1, u1), (l2, u2) = first, second
    difference = p1 - p2
    low = difference - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = difference + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return low, high


def two_proportion_p_value(x1: int, n1: int, x2: int, n2: int) -> float | None:
    """The two-sided p-value of the pooled two-proportion z-test of ``x1/n1 == x2/n2``; None
    when a group is empty or no one (or everyone) converted in both groups.

    Examples
    --------
    >>> round(two_proportion_p_value(56, 70, 48, 80), 4)
    0.008
    """
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (x1 + x2) / (n1 + n2)
    if pooled <= 0 or pooled >= 1:
        return None
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (x1 / n1 - x2 / n2) / se
    return 2 * _NORMAL.cdf(-abs(z))


def ratio_interval(
    x1: int, n1: int, x2: int, n2: int, confidence: float = CONFIDENCE
) -> tuple[float, float] | None:
    """Katz's log interval for the ratio of proportions ``(x1/n1) / (x2/n2)``; None when
    either count of successes is 0 (the ratio or its log is then not bounded).

    Examples
    --------
    >>> low, high = ratio_interval(56, 70, 48, 80)
    >>> round(low, 3), round(high, 3)
    (1.077, 1.651)
    """
    if x1 <= 0 or x2 <= 0 or n1 <= 0 or n2 <= 0:
        return None
    z = normal_quantile(confidence)
    log_ratio = math.log((x1 / n1) / (x2 / n2))
    se = math.sqrt(1 / x1 - 1 / n1 + 1 / x2 - 1 / n2)
    return math.exp(log_ratio - z * se), math.exp(log_ratio + z * se)


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        for numerator in (
            m * (b - m) * x / ((a + m2 - 1) * (a + m2)),
            -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1)),
        ):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return h


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b).

    Examples
    --------
    >>> round(incomplete_beta(2.0, 3.0, 0.4), 6)   # 1 - (0.6**4 + 4 * 0.4 * 0.6**3)
    0.5248
    """
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1 - math.exp(log_front) * _beta_fraction(b, a, 1 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` degrees of freedom (any positive ``df``).

    Examples
    --------
    >>> round(t_two_sided_p(2.228139, 10), 4)
    0.05
    """
    if math.isinf(t):
        return 0.0
    return incomplete_beta(df / 2, 0.5, df / (df + t * t))


def t_quantile(confidence: float, df: float) -> float:
    """The two-sided critical value of Student's t: ``q`` with P(|T| <= q) = ``confidence``.

    Examples
    --------
    >>> round(t_quantile(0.95, 10), 4), round(t_quantile(0.95, 1e9), 4)
    (2.2281, 1.96)
    """
    alpha = 1 - confidence
    low, high = normal_quantile(confidence), normal_quantile(confidence)
    while t_two_sided_p(high, df) > alpha:
        high *= 2
    for _ in range(200):
        middle = (low + high) / 2
        if t_two_sided_p(middle, df) > alpha:
            low = middle
        else:
            high = middle
        if high - low < 1e-12 * high:
            break
    return (low + high) / 2


@dataclass(frozen=True)
class MeanDifference:
    """Welch's comparison of two means: the difference, its interval, the p-value."""

    difference: float
    low: float | None
    high: float | None
    p_value: float | None
    df: float | None


def welch(first: np.ndarray, second: np.ndarray, confidence: float = CONFIDENCE) -> MeanDifference:
    """Welch's t-interval and t-test for ``mean(first) - mean(second)``, without assuming equal
    variances. The interval and p-value are None when a group has fewer than 2 values or neither
    group varies.

    Examples
    --------
    >>> import numpy as np
    >>> result = welch(np.array([3.0, 4.0, 5.0, 6.0]), np.array([1.0, 2.0, 3.0]))
    >>> result.difference, round(result.low, 3), round(result.high, 3), round(result.p_value, 4)
    (2.5, 0.268, 4.732, 0.0346)
    """
    n1, n2 = len(first), len(second)
    difference = float(np.mean(first) - np.mean(second)) if n1 and n2 else math.nan
    if n1 < 2 or n2 < 2:
        return MeanDifference(difference, None, None, None, None)
    v1, v2 = float(np.var(first, ddof=1)) / n1, float(np.var(second, ddof=1)) / n2
    se2 = v1 + v2
    if se2 <= 0:
        return MeanDifference(difference, None, None, None, None)
    df = se2 * se2 / (v1 * v1 / (n1 - 1) + v2 * v2 / (n2 - 1))
    se = math.sqrt(se2)
    margin = t_quantile(confidence, df) * se
    p_value = t_two_sided_p(difference / se, df)
    return MeanDifference(difference, difference - margin, difference + margin, p_value, df)
