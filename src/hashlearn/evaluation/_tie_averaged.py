"""Tie-averaged metrics: expected values over every order of items at equal Hamming distance.

Items at one Hamming distance are tied; "tie-averaged" metrics are their expected values over
all orders of tied items, each equally likely (McSherry & Najork, "Computing information
retrieval performance measures efficiently in the presence of tied scores", ECIR 2008). They
need only the per-distance histograms of :func:`hashlearn.evaluation._passes.run_passes`
(``position=False``). Take a tie group of n items, r of them relevant, ranked after N items of
which R are relevant. A position N + i of the group holds a relevant item with probability
r / n, and given that, the expected number of relevant items in the i - 1 positions before it
within the group is (i - 1)(r - 1)/(n - 1). Linearity of expectation gives the group's expected
share of the average-precision sum in closed form with harmonic numbers H::

    (r / n) * ((R + 1) * S0 + (r - 1)/(n - 1) * S1),
    S0 = H(N + n) - H(N),  S1 = sum_i (i - 1)/(N + i) = n - (N + 1) * S0.
"""

from __future__ import annotations

import math

import numba

__all__ = ["tie_averaged"]


@numba.njit(nogil=True, cache=True)
def _harmonic_span(low, high):
    """``H(high) - H(low)`` = sum of 1/i for low < i <= high (exact summation for short spans)."""
    if high - low <= 64:
        total = 0.0
        for i in range(low + 1, high + 1):
            total += 1.0 / i
        return total
    return _harmonic(high) - _harmonic(low)


@numba.njit(nogil=True, cache=True)
def _harmonic(m):
    if m <= 64:
        total = 0.0
        for i in range(1, m + 1):
            total += 1.0 / i
        return total
    x = float(m)
    inv2 = 1.0 / (x * x)
    return (
        math.log(x)
        + 0.5772156649015329
        + 0.5 / x
        - inv2 * (1.0 / 12.0 - inv2 * (1.0 / 120.0 - inv2 / 252.0))
    )


@numba.njit(nogil=True, cache=True)
def _group_share(N, R, n, r):
    """Expected sum of (relevant ranked so far) / rank over the relevant items of a tie group."""
    if r == 0 or n == 0:
        return 0.0
    s0 = _harmonic_span(N, N + n)
    if n == 1:
        return (R + 1.0) * s0
    s1 = n - (N + 1.0) * s0
    return (r / n) * ((R + 1.0) * s0 + (r - 1.0) / (n - 1.0) * s1)


@numba.njit(nogil=True, cache=True)
def _log_choose(a, b):
    return math.lgamma(a + 1.0) - math.lgamma(b + 1.0) - math.lgamma(a - b + 1.0)


@numba.njit(nogil=True, cache=True)
def tie_averaged(
    count,
    relevant,
    gain_sum,
    multilabel,
    ks,
    map_ks,
    ndcg_ks,
    ideal_dcg,
    ap,
    ap_at,
    hits_at,
    dcg_at,
):
    """Tie-averaged metrics of every query from its pass-1 histograms, written into
    ``ap[q]`` (full-ranking average precision), ``ap_at[q, i]`` (AP@``map_ks[i]``),
    ``hits_at[q, i]`` (expected relevant items in the top ``ks[i]``) and ``dcg_at[q, i]``
    (expected DCG@``ndcg_ks[i]`` divided by ``ideal_dcg[q, i]``)."""
    nq, n_dist = count.shape
    for q in range(nq):
        n_relevant = 0
        for d in range(n_dist):
            n_relevant += relevant[q, d]
        # full-ranking AP
        N = 0
        R = 0
        total = 0.0
        for d in range(n_dist):
            total += _group_share(N, R, count[q, d], relevant[q, d])
            N += count[q, d]
            R += relevant[q, d]
        ap[q] = total / n_relevant if n_relevant > 0 else 0.0
        # P@k / R@k: expected relevant items in the top k
        for i in range(ks.shape[0]):
            hits_at[q, i] = _expected_hits(count[q], relevant[q], ks[i])
        for i in range(map_ks.shape[0]):
            ap_at[q, i] = _expected_ap_at(count[q], relevant[q], map_ks[i])
        for i in range(ndcg_ks.shape[0]):
            dcg = _expected_dcg(count[q], relevant[q], gain_sum[q], multilabel, ndcg_ks[i])
            ideal = ideal_dcg[q, i]
            dcg_at[q, i] = dcg / ideal if ideal > 0 else 0.0


@numba.njit(nogil=True, cache=True)
def _expected_hits(count, relevant, k):
    N = 0
    hits = 0.0
    for d in range(count.shape[0]):
        n = count[d]
        if N + n >= k:
            if n > 0:
                hits += (k - N) * relevant[d] / n
            return hits
        hits += relevant[d]
        N += n
    return hits


@numba.njit(nogil=True, cache=True)
def _expected_dcg(count, relevant, gain_sum, multilabel, k):
    """Expected DCG@k: every position of a tie group holds the group's mean gain in expectation."""
    N = 0
    dcg = 0.0
    for d in range(count.shape[0]):
        n = count[d]
        if n == 0:
            continue
        mean_gain = (gain_sum[d] if multilabel else relevant[d]) / n
        take = min(n, k - N)
        for i in range(take):
            dcg += mean_gain / math.log2(N + i + 2.0)
        N += take
        if N >= k:
            break
    return dcg


@numba.njit(nogil=True, cache=True)
def _expected_ap_at(count, relevant, k):
    """Expected AP@k = E[(sum over relevant in top k of P@rank) / (relevant in top k)].

    The groups wholly inside the top k contribute a random sum independent of the boundary
    group; the boundary group contributes t = k - N of its n items, m of them relevant with a
    hypergeometric probability, uniformly placed among those t positions.
    """
    N = 0
    R = 0
    full = 0.0
    for d in range(count.shape[0]):
        n = count[d]
        r = relevant[d]
        if N + n < k:
            full += _group_share(N, R, n, r)
            N += n
            R += r
            continue
        t = k - N
        if n == 0 or t == 0:
            break
        expected = 0.0
        lo = max(0, t - (n - r))
        hi = min(t, r)
        log_total = _log_choose(n, t)
        for m in range(lo, hi + 1):
            if R + m == 0:
                continue
            p = math.exp(_log_choose(r, m) + _log_choose(n - r, t - m) - log_total)
            partial = 0.0
            if m > 0:
                s0 = _harmonic_span(N, N + t)
                if t == 1:
                    partial = (R + 1.0) * s0
                else:
                    s1 = t - (N + 1.0) * s0
                    partial = (m / t) * ((R + 1.0) * s0 + (m - 1.0) / (t - 1.0) * s1)
            expected += p * (full + partial) / (R + m)
        return expected
    # fewer than k items in the database: every group was whole
    return full / R if R > 0 else 0.0
