"""Kernels of the buy-till-you-die models: the first purchase day's spend, and the
log-likelihoods (with gradients) of BG/NBD and Gamma-Gamma over collapsed customer groups.

The likelihood kernels take one row per distinct customer profile with a weight (the number of
customers sharing it), add up the weighted log-likelihood, and write its gradient with respect
to the parameters into ``grad``. Work is split into blocks that run on all cores (``prange``);
each block writes its own partial sums, which are added in a fixed order, so the result does
not depend on the number of threads.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from rfm_fast._kernels.config import JIT_OPTIONS, jit, jit_inline
from rfm_fast._kernels.totals import amount_parts, exact_sum

jit_parallel = numba.njit(parallel=True, **JIT_OPTIONS)
BLOCK = 4096
"""Profiles per block of the likelihood sums."""


@jit
def first_day_sums(ids, days, keep, amounts, has_amount, first_day, first_whole, first_fraction):
    """Per customer id, the earliest purchase day and the exact sum of the amounts on it.

    ``first_day`` starts at INT64_MAX and the sums at 0; rows with ``keep[i]`` False are left
    out, and rows without an amount count as a purchase of 0. The result does not depend on
    the row order.
    """
    for i in range(ids.shape[0]):
        if not keep[i]:
            continue
        g = ids[i]
        day = days[i]
        whole, fraction = np.int64(0), np.int64(0)
        if has_amount[i]:
            whole, fraction = amount_parts(amounts[i])
        if day < first_day[g]:
            first_day[g] = day
            first_whole[g], first_fraction[g] = whole, fraction
        elif day == first_day[g]:
            total = exact_sum(first_whole[g], first_fraction[g], whole, fraction)
            first_whole[g], first_fraction[g] = total


@jit_inline
def digamma(x):
    """The digamma function for x > 0: recurrence up to x >= 6, then the asymptotic series."""
    result = 0.0
    while x < 6.0:
        result -= 1.0 / x
        x += 1.0
    inverse = 1.0 / x
    inverse2 = inverse * inverse
    series = inverse2 * (
        1.0 / 12 - inverse2 * (1.0 / 120 - inverse2 * (1.0 / 252 - inverse2 * (1.0 / 240)))
    )
    return result + math.log(x) - 0.5 * inverse - series


@jit_parallel
def bgnbd_loglik(x_at, tx_at, T_at, weight, x_values, tx_values, T_values, r, alpha, a, b, grad):
    """Weighted BG/NBD log-likelihood (Fader, Hardie & Lee 2005, eq. 6) of profiles (x repeat
    purchases, the last at t_x, observed for T), and its gradient in (r, alpha, a, b).

    Profile i is (x_values[x_at[i]], tx_values[tx_at[i]], T_values[T_at[i]]): the terms that
    depend on one of the three only (log-gammas of x, logs of alpha + T, ...) are computed
    once per distinct value, which leaves a few arithmetic operations per profile.
    """
    nx, ntx, nT = x_values.shape[0], tx_values.shape[0], T_values.shape[0]
    # per distinct x: the parts of A1, A2 and their derivatives
    lg_x = np.empty(nx)  # lgamma(r+x) - lgamma(r) + r log(alpha) + A2
    dr_x = np.empty(nx)  # digamma(r+x) - digamma(r) + log(alpha)
    da_x = np.empty(nx)  # digamma(a+b) - digamma(a+b+x)
    db_x = np.empty(nx)  # digamma(a+b) + digamma(b+x) - digamma(b) - digamma(a+b+x)
    log_odds_x = np.empty(nx)  # log(a) - log(b+x-1), for x > 0
    base = -math.lgamma(r) + r * math.log(alpha) + math.lgamma(a + b) - math.lgamma(b)
    psi_r, psi_b, psi_ab = digamma(r), digamma(b), digamma(a + b)
    for j in range(nx):
        xv = x_values[j]
        lg_x[j] = base + math.lgamma(r + xv) + math.lgamma(b + xv) - math.lgamma(a + b + xv)
        dr_x[j] = digamma(r + xv) - psi_r + math.log(alpha)
        da_x[j] = psi_ab - digamma(a + b + xv)
        db_x[j] = psi_ab + digamma(b + xv) - psi_b - digamma(a + b + xv)
        log_odds_x[j] = math.log(a) - math.log(b + xv - 1) if xv > 0 else 0.0
    log_T = np.empty(nT)
    inv_T = np.empty(nT)
    for j in range(nT):
        log_T[j] = math.log(alpha + T_values[j])
        inv_T[j] = 1.0 / (alpha + T_values[j])
    log_tx = np.empty(ntx)
    inv_tx = np.empty(ntx)
    for j in range(ntx):
        log_tx[j] = math.log(alpha + tx_values[j])
        inv_tx[j] = 1.0 / (alpha + tx_values[j])

    n = x_at.shape[0]
    blocks = (n + BLOCK - 1) // BLOCK
    partial = np.zeros((blocks, 5))
    for k in numba.prange(blocks):
        ll = g_r = g_alpha = g_a = g_b = 0.0
        for i in range(k * BLOCK, min(n, (k + 1) * BLOCK)):
            j, jT, jt = x_at[i], T_at[i], tx_at[i]
            xv, w = x_values[j], weight[i]
            rx = r + xv
            a3 = -rx * log_T[jT]
            d_r = dr_x[j]
            d_alpha = r / alpha
            d_a = da_x[j]
            d_b = db_x[j]
            if xv > 0:
                a4 = log_odds_x[j] - rx * log_tx[jt]
                # log(e^a3 + e^a4), and the share of the a4 term, without overflow
                if a4 > a3:
                    e = math.exp(a3 - a4)
                    mix = a4 + math.log1p(e)
                    share = 1.0 / (1.0 + e)
                else:
                    e = math.exp(a4 - a3)
                    mix = a3 + math.log1p(e)
                    share = e / (1.0 + e)
                d_r -= (1 - share) * log_T[jT] + share * log_tx[jt]
                d_alpha -= rx * ((1 - share) * inv_T[jT] + share * inv_tx[jt])
                d_a += share / a
                d_b -= share / (b + xv - 1)
            else:
                mix = a3
                d_r -= log_T[jT]
                d_alpha -= rx * inv_T[jT]
            ll += w * (lg_x[j] + mix)
            g_r += w * d_r
            g_alpha += w * d_alpha
            g_a += w * d_a
            g_b += w * d_b
        partial[k, 0] = ll
        partial[k, 1] = g_r
        partial[k, 2] = g_alpha
        partial[k, 3] = g_a
        partial[k, 4] = g_b
    total = 0.0
    for j in range(4):
        grad[j] = 0.0
    for k in range(blocks):  # in block order: the same sum for any number of threads
        total += partial[k, 0]
        for j in range(4):
            grad[j] += partial[k, j + 1]
    return total


@jit_parallel
def gamma_gamma_loglik(x, m, weight, p, q, gamma, grad):
    """Weighted Gamma-Gamma log-likelihood (Fader & Hardie 2013) of profiles (x repeat
    purchases of mean value m > 0), and its gradient in (p, q, gamma)."""
    n = x.shape[0]
    blocks = (n + BLOCK - 1) // BLOCK
    partial = np.zeros((blocks, 4))
    base = -math.lgamma(q) + q * math.log(gamma)
    psi_q = digamma(q)
    log_gamma = math.log(gamma)
    for k in numba.prange(blocks):
        ll = g_p = g_q = g_gamma = 0.0
        for i in range(k * BLOCK, min(n, (k + 1) * BLOCK)):
            xi, mi, w = x[i], m[i], weight[i]
            px = p * xi
            spend = xi * mi + gamma
            log_spend = math.log(spend)
            ll += w * (
                math.lgamma(px + q)
                - math.lgamma(px)
                + base
                + (px - 1) * math.log(mi)
                + px * math.log(xi)
                - (px + q) * log_spend
            )
            psi_pxq = digamma(px + q)
            g_p += w * xi * (psi_pxq - digamma(px) + math.log(mi) + math.log(xi) - log_spend)
            g_q += w * (psi_pxq - psi_q + log_gamma - log_spend)
            g_gamma += w * (q / gamma - (px + q) / spend)
        partial[k, 0] = ll
        partial[k, 1] = g_p
        partial[k, 2] = g_q
        partial[k, 3] = g_gamma
    total = 0.0
    for j in range(3):
        grad[j] = 0.0
    for k in range(blocks):
        total += partial[k, 0]
        for j in range(3):
            grad[j] += partial[k, j + 1]
    return total
