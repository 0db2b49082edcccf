"""Kernels of the buy-till-you-die models: the first purchase day's spend, and the
log-likelihoods (with gradients) of BG/NBD and MBG/NBD, Pareto/NBD, BG/BB and Gamma-Gamma over
collapsed customer groups.

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
def bgnbd_loglik(
    x_at, tx_at, T_at, weight, x_values, tx_values, T_values, r, alpha, a, b, shift, grad
):
    """Weighted BG/NBD log-likelihood (Fader, Hardie & Lee 2005, eq. 6) of profiles (x repeat
    purchases, the last at t_x, observed for T), and its gradient in (r, alpha, a, b).

    ``shift`` 0 gives BG/NBD; 1 gives MBG/NBD (Batislam, Denizel & Filiztekin 2007), where a
    customer may also drop out right after the first purchase: b + x becomes b + x + 1 in the
    beta functions, and the dropout term is there for x = 0 too.

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
        bx = b + xv + shift
        lg_x[j] = base + math.lgamma(r + xv) + math.lgamma(bx) - math.lgamma(a + bx)
        dr_x[j] = digamma(r + xv) - psi_r + math.log(alpha)
        da_x[j] = psi_ab - digamma(a + bx)
        db_x[j] = psi_ab + digamma(bx) - psi_b - digamma(a + bx)
        log_odds_x[j] = math.log(a) - math.log(bx - 1) if xv + shift > 0 else 0.0
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
            if xv + shift > 0:
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
                d_b -= share / (b + xv + shift - 1)
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
    return block_total(partial, grad)


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
    return block_total(partial, grad)


GAUSS_NODES, GAUSS_WEIGHTS = np.polynomial.legendre.leggauss(8)
GAUSS_NODES = (GAUSS_NODES + 1.0) / 2.0  # on [0, 1]
GAUSS_WEIGHTS = GAUSS_WEIGHTS / 2.0
PANEL_DROP = 2.0
"""Each panel of the Pareto/NBD integral ends where the integrand has fallen by at most e^-2."""
MAX_PANELS = 400


@jit_inline
def pareto_nbd_integral(p, q, alpha, beta, t0, t1):
    """J = the integral over [t0, t1] of ((alpha+t0)/(alpha+tau))^p ((beta+t0)/(beta+tau))^q,
    and the integrals of the same times log((alpha+tau)/(alpha+t0)), log((beta+tau)/(beta+t0)),
    1/(alpha+tau) and 1/(beta+tau).

    The integrand is log-convex and decreasing; it is integrated by 8-point Gauss-Legendre
    panels, each as long as the integrand takes to fall by e^-2 at its rate at the panel's
    start (and no longer than its distance to the nearer pole), until t1 or until what is left
    is below 1e-17 of the sum. Every value is a ratio of powers at most 1: no overflow for any
    parameters.
    """
    ua, ub = alpha + t0, beta + t0
    total = j_la = j_lb = j_ia = j_ib = 0.0
    start = t0
    for _ in range(MAX_PANELS):
        if start >= t1:
            break
        rate = p / (alpha + start) + q / (beta + start)
        width = min(PANEL_DROP / rate, min(alpha, beta) + start)
        end = min(start + width, t1)
        length = end - start
        for k in range(GAUSS_NODES.shape[0]):
            tau = start + length * GAUSS_NODES[k]
            la = math.log1p((tau - t0) / ua)
            lb = math.log1p((tau - t0) / ub)
            g = math.exp(-p * la - q * lb) * length * GAUSS_WEIGHTS[k]
            total += g
            j_la += g * la
            j_lb += g * lb
            j_ia += g / (alpha + tau)
            j_ib += g / (beta + tau)
        left = math.exp(-p * math.log1p((end - t0) / ua) - q * math.log1p((end - t0) / ub))
        if left * (t1 - end) < 1e-17 * total:
            break
        start = end
    return total, j_la, j_lb, j_ia, j_ib


SERIES_TERMS = 60
"""At most this many terms of the Pareto/NBD series before the panels take over."""
SERIES_REACH = 0.5
"""The series is tried where (larger shift - smaller shift) / (larger shift + t_x) <= this."""


@jit_inline
def pareto_nbd_series(p, q, big, small, t0, t1):
    """The five integrals of :func:`pareto_nbd_integral` with ``big`` >= ``small`` the shifts
    (``p`` the exponent of ``big + tau``, ``q`` that of ``small + tau``), by the series of
    Fader & Hardie's hypergeometric form, term by term, and a flag: False where it did not
    converge in :data:`SERIES_TERMS` terms.

    With z = (big - small) / (big + tau) < 1, (small + tau)^-q = (big + tau)^-q (1 - z)^-q =
    sum over k of (q)_k / k! z^k (big + tau)^-q, and each term integrates in closed form:
    (big + t0)^-(m+k) (1 - rho^(m+k)) / (m + k), m = p + q - 1, rho = (big + t0) / (big + t1).
    Every term is positive (1 - rho^(m+k) by a recurrence without cancellation), so there is
    no difference of two hypergeometric functions. The derivatives in the exponents are the
    series differentiated term by term (d/dq of (q)_k / k! is (q)_k / k! times the sum of
    1 / (q + j) for j < k).
    """
    ua = big + t0
    z0 = (big - small) / ua
    m = p + q - 1.0
    span = math.log1p((t1 - t0) / ua)  # -log(rho)
    rho = math.exp(-span)
    one_minus_rho = (t1 - t0) / (big + t1)
    e = -math.expm1(-m * span)  # 1 - rho^m
    s0 = s_ia = s_ib = s_log = s_h = 0.0
    c = c1 = zk = 1.0
    h = 0.0
    converged = False
    inv_n = 1.0 / m
    for k in range(SERIES_TERMS):
        inv_next = 1.0 / (m + k + 1.0)
        e_next = one_minus_rho + rho * e  # 1 - rho^(m + k + 1)
        base = c * zk
        term = base * e * inv_n
        s0 += term
        s_ia += base * e_next * inv_next
        base1 = c1 * zk
        s_ib += base1 * e_next * inv_next
        s_log += base * inv_n * (e * inv_n - (1.0 - e) * span)
        s_h += term * h
        inv_k = 1.0 / (k + 1.0)
        # past the largest term (ratio below 1/2), and the next terms negligible
        if z0 * (q + 1.0 + k) * inv_k < 0.5 and base1 * (1.0 + h) * inv_n <= 1e-17 * s0:
            converged = True
            break
        h += 1.0 / (q + k)
        c *= (q + k) * inv_k
        c1 *= (q + 1.0 + k) * inv_k
        zk *= z0
        e = e_next
        inv_n = inv_next
        if zk == 0.0:
            converged = True
            break
    # back to the scale of pareto_nbd_integral: divided by the integrand at t0
    scale = ua * math.exp(q * math.log1p(-z0))
    total = scale * s0
    j_lbig = scale * s_log
    j_lsmall = j_lbig - scale * s_h - math.log1p(-z0) * total
    return total, j_lbig, j_lsmall, scale * s_ia / ua, scale * s_ib / ua, converged


@jit_inline
def pareto_nbd_profile(x, tx, T, r, alpha, s, beta, log_aT, log_bT, log_atx, log_btx):
    """Pareto/NBD log-likelihood of one customer without the terms of the parameters alone
    (Fader & Hardie 2005, "A note on deriving the Pareto/NBD model", eq. 11 in its integral
    form), the share of the 'alive' term in it (p_alive), and its gradient in (r, alpha, s,
    beta).

    L = (alpha+T)^-(r+x) (beta+T)^-s + s * integral over [t_x, T] of (alpha+tau)^-(r+x)
    (beta+tau)^-(s+1): alive at T, or died at some tau after the last purchase. The logs of
    alpha + T, beta + T, alpha + t_x and beta + t_x come computed (once per distinct value).
    """
    rx = r + x
    alive = -rx * log_aT - s * log_bT
    d_r = -log_aT
    d_alpha = -rx / (alpha + T)
    d_s = -log_bT
    d_beta = -s / (beta + T)
    if tx >= T:
        return alive, 1.0, d_r, d_alpha, d_s, d_beta
    converged = False
    if alpha >= beta and (alpha - beta) <= SERIES_REACH * (alpha + tx):
        total, j_la, j_lb, j_ia, j_ib, converged = pareto_nbd_series(
            rx, s + 1.0, alpha, beta, tx, T
        )
    elif beta > alpha and (beta - alpha) <= SERIES_REACH * (beta + tx):
        total, j_lb, j_la, j_ib, j_ia, converged = pareto_nbd_series(
            s + 1.0, rx, beta, alpha, tx, T
        )
    if not converged:
        total, j_la, j_lb, j_ia, j_ib = pareto_nbd_integral(rx, s + 1.0, alpha, beta, tx, T)
    dead = math.log(s) - rx * log_atx - (s + 1.0) * log_btx + math.log(total)
    if dead > alive:
        e = math.exp(alive - dead)
        mix = dead + math.log1p(e)
        share = e / (1.0 + e)
    else:
        e = math.exp(dead - alive)
        mix = alive + math.log1p(e)
        share = 1.0 / (1.0 + e)
    other = 1.0 - share
    d_r = share * d_r + other * (-log_atx - j_la / total)
    d_alpha = share * d_alpha + other * (-rx * j_ia / total)
    d_s = share * d_s + other * (1.0 / s - log_btx - j_lb / total)
    d_beta = share * d_beta + other * (-(s + 1.0) * j_ib / total)
    return mix, share, d_r, d_alpha, d_s, d_beta


@jit
def shifted_logs(values, shift, out):
    """``out[j] = log(shift + values[j])``."""
    for j in range(values.shape[0]):
        out[j] = math.log(shift + values[j])


@jit_parallel
def pareto_nbd_loglik(
    x_at, tx_at, T_at, weight, x_values, tx_values, T_values, r, alpha, s, beta, grad
):
    """Weighted Pareto/NBD log-likelihood of profiles (x repeat purchases, the last at t_x,
    observed for T; as for :func:`bgnbd_loglik`, indices into the distinct values of each),
    and its gradient in (r, alpha, s, beta)."""
    nx = x_values.shape[0]
    lg_x = np.empty(nx)  # lgamma(r + x)
    psi_x = np.empty(nx)  # digamma(r + x)
    for j in range(nx):
        lg_x[j] = math.lgamma(r + x_values[j])
        psi_x[j] = digamma(r + x_values[j])
    log_aT, log_bT = np.empty(T_values.shape[0]), np.empty(T_values.shape[0])
    shifted_logs(T_values, alpha, log_aT)
    shifted_logs(T_values, beta, log_bT)
    log_atx, log_btx = np.empty(tx_values.shape[0]), np.empty(tx_values.shape[0])
    shifted_logs(tx_values, alpha, log_atx)
    shifted_logs(tx_values, beta, log_btx)
    n = x_at.shape[0]
    blocks = (n + BLOCK - 1) // BLOCK
    partial = np.zeros((blocks, 5))
    base = -math.lgamma(r) + r * math.log(alpha) + s * math.log(beta)
    d_r0 = -digamma(r) + math.log(alpha)
    for k in numba.prange(blocks):
        ll = g_r = g_alpha = g_s = g_beta = 0.0
        for i in range(k * BLOCK, min(n, (k + 1) * BLOCK)):
            j, jt, jT = x_at[i], tx_at[i], T_at[i]
            w = weight[i]
            mix, _, d_r, d_alpha, d_s, d_beta = pareto_nbd_profile(
                x_values[j], tx_values[jt], T_values[jT], r, alpha, s, beta,
                log_aT[jT], log_bT[jT], log_atx[jt], log_btx[jt],
            )  # fmt: skip
            ll += w * (base + lg_x[j] + mix)
            g_r += w * (psi_x[j] + d_r0 + d_r)
            g_alpha += w * (r / alpha + d_alpha)
            g_s += w * (math.log(beta) + d_s)
            g_beta += w * (s / beta + d_beta)
        partial[k, 0] = ll
        partial[k, 1] = g_r
        partial[k, 2] = g_alpha
        partial[k, 3] = g_s
        partial[k, 4] = g_beta
    return block_total(partial, grad)


@jit_parallel
def pareto_nbd_p_alive(x, tx, T, r, alpha, s, beta, out):
    """P(alive at T) of each Pareto/NBD customer: the share of the 'alive' term of the
    likelihood."""
    for i in numba.prange(x.shape[0]):
        out[i] = pareto_nbd_profile(
            x[i], tx[i], T[i], r, alpha, s, beta, math.log(alpha + T[i]),
            math.log(beta + T[i]), math.log(alpha + tx[i]), math.log(beta + tx[i]),
        )[1]  # fmt: skip


@jit_inline
def bgbb_profile(x, tx, n, alpha, beta, gamma, delta):
    """BG/BB log-likelihood of one customer (Fader, Hardie & Shang 2010, eq. 5) without the
    beta functions of the parameters alone, the log of its 'alive through n' term, and its
    gradient in (alpha, beta, gamma, delta).

    L = B(alpha+x, beta+n-x) B(gamma, delta+n) + sum over i < n - t_x of B(alpha+x,
    beta+t_x-x+i) B(gamma+1, delta+t_x+i): alive through n, or died after period t_x + i. The
    terms of the sum fall with i; each is the one before times two ratios, and their
    derivatives follow by the recurrence of the digamma function.
    """
    lg_ax = math.lgamma(alpha + x)
    psi_ax = digamma(alpha + x)
    alive = (
        lg_ax + math.lgamma(beta + n - x) - math.lgamma(alpha + beta + n)
        + math.lgamma(gamma) + math.lgamma(delta + n) - math.lgamma(gamma + delta + n)
    )  # fmt: skip
    psi_abn = digamma(alpha + beta + n)
    psi_gdn = digamma(gamma + delta + n)
    a_alpha = psi_ax - psi_abn
    a_beta = digamma(beta + n - x) - psi_abn
    a_gamma = digamma(gamma) - psi_gdn
    a_delta = digamma(delta + n) - psi_gdn
    terms = int(n - tx)
    if terms <= 0:
        return alive, alive, a_alpha, a_beta, a_gamma, a_delta
    # i = 0 of the sum, then by recurrence
    u, v = beta + tx - x, alpha + beta + tx  # B(alpha+x, u) has lgamma(u) - lgamma(v)
    c, d = delta + tx, gamma + delta + 1.0 + tx  # B(gamma+1, c) has lgamma(c) - lgamma(d)
    first = lg_ax + math.lgamma(u) - math.lgamma(v) + math.lgamma(gamma + 1.0)
    first += math.lgamma(c) - math.lgamma(d)
    psi_u, psi_v, psi_c, psi_d = digamma(u), digamma(v), digamma(c), digamma(d)
    psi_g1 = digamma(gamma + 1.0)
    top = max(alive, first)
    scale = math.exp(alive - top)
    total = scale
    s_alpha, s_beta = scale * a_alpha, scale * a_beta
    s_gamma, s_delta = scale * a_gamma, scale * a_delta
    term = math.exp(first - top)
    for _ in range(terms):
        total += term
        s_alpha += term * (psi_ax - psi_v)
        s_beta += term * (psi_u - psi_v)
        s_gamma += term * (psi_g1 - psi_d)
        s_delta += term * (psi_c - psi_d)
        term *= u / v * c / d
        psi_u += 1.0 / u
        psi_v += 1.0 / v
        psi_c += 1.0 / c
        psi_d += 1.0 / d
        u += 1.0
        v += 1.0
        c += 1.0
        d += 1.0
    mix = top + math.log(total)
    return mix, alive, s_alpha / total, s_beta / total, s_gamma / total, s_delta / total


@jit_parallel
def bgbb_loglik(x, tx, n, weight, alpha, beta, gamma, delta, grad):
    """Weighted BG/BB log-likelihood of profiles (x transactions in n opportunities, the last
    in period t_x), and its gradient in (alpha, beta, gamma, delta)."""
    m = x.shape[0]
    blocks = (m + BLOCK - 1) // BLOCK
    partial = np.zeros((blocks, 5))
    base = (
        math.lgamma(alpha + beta) - math.lgamma(alpha) - math.lgamma(beta)
        + math.lgamma(gamma + delta) - math.lgamma(gamma) - math.lgamma(delta)
    )  # fmt: skip
    psi_ab, psi_gd = digamma(alpha + beta), digamma(gamma + delta)
    b_alpha, b_beta = psi_ab - digamma(alpha), psi_ab - digamma(beta)
    b_gamma, b_delta = psi_gd - digamma(gamma), psi_gd - digamma(delta)
    for k in numba.prange(blocks):
        ll = g_alpha = g_beta = g_gamma = g_delta = 0.0
        for i in range(k * BLOCK, min(m, (k + 1) * BLOCK)):
            w = weight[i]
            mix, _, d_alpha, d_beta, d_gamma, d_delta = bgbb_profile(
                x[i], tx[i], n[i], alpha, beta, gamma, delta
            )
            ll += w * (base + mix)
            g_alpha += w * (b_alpha + d_alpha)
            g_beta += w * (b_beta + d_beta)
            g_gamma += w * (b_gamma + d_gamma)
            g_delta += w * (b_delta + d_delta)
        partial[k, 0] = ll
        partial[k, 1] = g_alpha
        partial[k, 2] = g_beta
        partial[k, 3] = g_gamma
        partial[k, 4] = g_delta
    return block_total(partial, grad)


@jit_parallel
def bgbb_log_terms(x, tx, n, alpha, beta, gamma, delta, log_likelihood, log_alive):
    """Per BG/BB customer: the log-likelihood and the log of its 'alive through n' term, both
    without the beta functions of the parameters alone."""
    for i in numba.prange(x.shape[0]):
        mix, alive, _, _, _, _ = bgbb_profile(x[i], tx[i], n[i], alpha, beta, gamma, delta)
        log_likelihood[i] = mix
        log_alive[i] = alive


@jit
def block_total(partial, grad):
    """Sum the per-block partial sums (log-likelihood, then the gradient) in block order: the
    same sums for any number of threads. Writes the gradient; returns the log-likelihood."""
    total = 0.0
    for j in range(grad.shape[0]):
        grad[j] = 0.0
    for k in range(partial.shape[0]):
        total += partial[k, 0]
        for j in range(grad.shape[0]):
            grad[j] += partial[k, j + 1]
    return total
