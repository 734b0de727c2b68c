"""Compiled kernels of the hash-table indexes: probing the buckets near a query's keys.

A search walks, table by table, the buckets whose key lies within a radius of the query's key:
by flipping key bits (:func:`probe_level`, one open-addressing lookup per flip mask) for low
radii, by one pass over the table's bucket keys beyond (see :mod:`hashlearn.index._table_index`
for when and why). The items met are checked by their full Hamming distance and kept as result
keys (:mod:`hashlearn.codes.keys`) while the bound tightens. :func:`range_block` and
:func:`top_block` search a block of queries; the Python side is
:class:`~hashlearn.index._table_index.TableIndex`.
"""

from __future__ import annotations

import numba
import numpy as np

from hashlearn.codes.kernels import popcount64, row_distance
from hashlearn.codes.keys import key_distance, make_key
from hashlearn.index._bits import code_bits, first_mask, next_mask
from hashlearn.index._table_rerank import HAMMING, rank_by_features

__all__ = ["ALL", "build_slots", "extract_keys", "probe_level", "range_block", "top_block"]

ALL = np.iinfo(np.int64).max
"""``k`` of a search that keeps every candidate within its distance bound."""
# Fibonacci hashing multiplier (2**64 / golden ratio) for the open-addressing bucket lookup.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


# ---------------------------------------------------------------------------------------------
# Compiled kernels. What they read is passed as three tuples:
#
# db, the items and L tables over them (built by hashlearn.index._table_state.TableState):
#   words     uint64 (n, w)   the stored codes as words
#   rank      int64 (n,)      rank of each item's id in ascending id order
#   starts    int64 (L,)      first code bit of each table's key
#   keys      uint64 (NB,)    the non-empty buckets' keys, table by table, ascending in a table
#   bucket_lo int64 (L + 1,)  table t's buckets are keys[bucket_lo[t]:bucket_lo[t + 1]]
#   offsets   int64 (NB + 1,) bucket j holds positions[offsets[j]:offsets[j + 1]]
#   positions int64 (L * n,)  storage positions of the items, bucket by bucket
#   slots     int64 (S,)      open-addressing lookup: bucket number within its table, -1 = empty
#   slot_lo   int64 (L + 1,)  table t's slots are slots[slot_lo[t]:slot_lo[t + 1]] (a power of 2)
#   shifts    uint64 (L,)     64 - log2(number of slots of table t)
#
# search, what one call looks for (built by TableState.search):
#   width         key bits of every table
#   levels        int64 (L,): key distances 0 .. levels[t] - 1 are probed by enumerating bit
#                 flips, the rest (up to probe_radius) by scanning the bucket keys
#   probe_radius  largest key distance probed
#   k             the bound tightens to the distance within which k items were found (ALL: never)
#   max_distance  the first bound on the full Hamming distance
# and beside it n_found, room for the buckets of one enumerated level.
#
# query, the queries' words and a row of them, and scratch arrays (reused from query to query by
# a block): qwords (nq, w) uint64, q, qkeys (L,) uint64, state (3,) int64 = [bound, stored items
# within bound, stored items], within (64 w + 1,) int64 = stored items per distance
# ---------------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def extract_keys(words, start, width):  # pragma: no cover - compiled
    """The keys of every code of ``words``: its bits ``start .. start + width - 1``."""
    keys = np.empty(words.shape[0], dtype=np.uint64)
    for i in range(words.shape[0]):
        keys[i] = code_bits(words, i, start, width)
    return keys


@numba.njit(inline="always")
def _slot_of(key, shift):  # pragma: no cover - compiled
    return np.int64((key * _GOLDEN) >> shift)


@numba.njit(cache=True, nogil=True)
def build_slots(keys, n_slots, shift):  # pragma: no cover - compiled
    """The open-addressing lookup of one table's bucket ``keys``: ``n_slots`` (a power of 2,
    ``64 - shift`` bits of Fibonacci hash) slots, each the number of a bucket or -1."""
    slots = np.full(n_slots, -1, dtype=np.int64)
    mask = n_slots - 1
    for i in range(keys.shape[0]):
        h = _slot_of(keys[i], shift)
        while slots[h] >= 0:
            h = (h + 1) & mask
        slots[h] = i
    return slots


@numba.njit(inline="always")
def _lookup(key, keys, slots, shift):  # pragma: no cover - compiled
    """Number of the bucket of ``key`` among one table's ``keys``; -1 if there is none."""
    mask = slots.shape[0] - 1
    h = _slot_of(key, shift)
    while True:
        slot = slots[h]
        if slot < 0 or keys[slot] == key:
            return slot
        h = (h + 1) & mask


@numba.njit(cache=True, nogil=True)
def probe_level(qkey, width, d, keys, lo, slots, shift, found):  # pragma: no cover - compiled
    """Store in ``found`` the buckets (numbered from ``lo``) whose key differs from ``qkey`` in
    exactly ``d`` of its ``width`` bits; return how many there are.

    The ``C(width, d)`` flip masks are enumerated in increasing order (:func:`next_mask`), from
    the lowest ``d`` bits to the highest ``d`` bits of the key.
    """
    flip = first_mask(d)
    last = flip << np.uint64(width - d) if d > 0 else flip
    n_found = 0
    while True:
        j = _lookup(qkey ^ flip, keys, slots, shift)
        if j >= 0:
            found[n_found] = lo + j
            n_found += 1
        if flip == last:
            return n_found
        flip = next_mask(flip)


@numba.njit(inline="always")
def _found_before(words, p, t, starts, width, qkeys, probe_radius):  # pragma: no cover
    """Whether a table before ``t`` holds item ``p`` in a bucket probed for the query."""
    for u in range(t):
        apart = np.int64(popcount64(code_bits(words, p, starts[u], width) ^ qkeys[u]))
        if apart <= probe_radius:
            return True
    return False


@numba.njit(inline="always")
def _next_near_bucket(keys, qkey, i, last, min_key_distance, key_bound):  # pragma: no cover
    """The first bucket of ``i .. last - 1`` whose key distance is within
    ``[min_key_distance, key_bound]``; ``last`` when there is none."""
    while i < last:
        apart = np.int64(popcount64(keys[i] ^ qkey))
        if apart >= min_key_distance and apart <= key_bound:
            return i
        i += 1
    return last


@numba.njit(cache=True, nogil=True)
def _visit_buckets(query, t, db, search, buckets, first, candidates):  # pragma: no cover
    """Store in ``candidates`` the items of table ``t``'s ``buckets`` from ``first`` on that lie
    within the bound and that no earlier table yielded, as result keys; tighten the bound.

    ``buckets = (scan, found, start, last, min_key_distance)``: ``found[start:last]``, or when
    ``scan`` the buckets ``start:last`` whose key distance is at least ``min_key_distance`` and
    within the probe radius and the bound. Returns the first bucket not visited because
    ``candidates`` has no room for it (``last`` when all were). Kept free of array reassignment:
    numba then compiles the loop without reference counting, several times faster.
    """
    qwords, q, qkeys, state, within = query
    words, rank, starts, keys, _lo, offsets, positions, _slots, _slot_lo, _shifts = db
    width, _levels, probe_radius, k, _max_distance = search
    scan, found, _start, last, min_key_distance = buckets
    qkey = qkeys[t]
    key_bound = min(probe_radius, state[0])
    i = first
    while i < last:
        if scan:
            i = _next_near_bucket(keys, qkey, i, last, min_key_distance, key_bound)
            if i == last:
                break
            j = i
        else:
            j = found[i]
        if state[2] + offsets[j + 1] - offsets[j] > candidates.shape[0]:
            return i
        for s in range(offsets[j], offsets[j + 1]):
            p = positions[s]
            distance = row_distance(words, p, qwords, q)
            if distance > state[0]:
                continue
            if t > 0 and _found_before(words, p, t, starts, width, qkeys, probe_radius):
                continue
            candidates[state[2]] = make_key(distance, rank[p])
            state[2] += 1
            within[distance] += 1
            state[1] += 1
            while state[0] > 0 and state[1] - within[state[0]] >= k:
                state[1] -= within[state[0]]
                state[0] -= 1
        key_bound = min(probe_radius, state[0])
        i += 1
    return last


@numba.njit(cache=True, nogil=True)
def _visit_all(query, t, db, search, buckets, candidates):  # pragma: no cover - compiled
    """:func:`_visit_buckets`, growing ``candidates`` as needed; returns the (new) buffer."""
    offsets, state = db[5], query[3]
    scan, found, first, last, _min_key_distance = buckets
    while True:
        first = _visit_buckets(query, t, db, search, buckets, first, candidates)
        if first == last:
            return candidates
        j = first if scan else found[first]
        size = max(2 * candidates.shape[0], state[2] + offsets[j + 1] - offsets[j])
        grown = np.empty(size, dtype=np.int64)
        grown[: state[2]] = candidates[: state[2]]
        candidates = grown


@numba.njit(cache=True, nogil=True)
def _walk(query, db, search, found, candidates):  # pragma: no cover - compiled
    """Store in ``candidates`` the items of one query that lie in a bucket within the probe
    radius of the query's key in some table, and within the bound (once each); returns the
    buffer (grown if needed). ``query``'s ``state`` ends as [bound, items stored within the
    bound, items stored].

    Per table, the key distances ``d = 0, 1, ...`` below ``levels[t]`` are probed by bit flips;
    after level ``d`` every item within full distance ``d`` has been seen (its key in this table is
    within ``d``), so the walk ends once ``d`` reaches the bound. Otherwise one pass over the table's
    remaining bucket keys visits those within the probe radius and the bound (no item is closer to
    the query than its bucket's key).
    """
    qwords, q, qkeys, state, within = query
    _words, _rank, starts, keys, bucket_lo, _offsets, _positions, slots, slot_lo, shifts = db
    width, levels, probe_radius, _k, max_distance = search
    state[0], state[1], state[2] = max_distance, 0, 0
    within[: max_distance + 1] = 0
    for t in range(starts.shape[0]):
        qkeys[t] = code_bits(qwords, q, starts[t], width)
    for t in range(starts.shape[0]):
        lo, hi = bucket_lo[t], bucket_lo[t + 1]
        table_keys, table_slots = keys[lo:hi], slots[slot_lo[t] : slot_lo[t + 1]]
        visited = 0
        for d in range(min(levels[t], probe_radius + 1)):
            n_found = probe_level(qkeys[t], width, d, table_keys, lo, table_slots, shifts[t], found)
            buckets = (False, found, 0, n_found, 0)
            candidates = _visit_all(query, t, db, search, buckets, candidates)
            if d >= state[0]:
                return candidates
            visited += n_found
            if visited == hi - lo:
                break
        if visited < hi - lo and levels[t] <= probe_radius:
            buckets = (True, found, lo, hi, levels[t])
            candidates = _visit_all(query, t, db, search, buckets, candidates)
    return candidates


@numba.njit(inline="always")
def _block_scratch(db, n_found):  # pragma: no cover - compiled
    """Scratch arrays of a block of queries: ``(qkeys, state, within, found, candidates)``."""
    words, starts = db[0], db[2]
    return (
        np.empty(starts.shape[0], dtype=np.uint64),
        np.empty(3, dtype=np.int64),
        np.empty(64 * words.shape[1] + 1, dtype=np.int64),
        np.empty(n_found, dtype=np.int64),
        np.empty(64, dtype=np.int64),
    )


@numba.njit(inline="always")
def _sort_within_bound(candidates, state):  # pragma: no cover - compiled
    """Move the stored keys within the final bound to the front, sorted; return their number."""
    m = 0
    for i in range(state[2]):
        if key_distance(candidates[i]) <= state[0]:
            candidates[m] = candidates[i]
            m += 1
    candidates[:m].sort()
    return m


@numba.njit(cache=True, nogil=True)
def range_block(db, search, n_found, qwords):  # pragma: no cover - compiled
    """``(counts (nq,), keys)``: the sorted result keys of each query, one after the other."""
    qkeys, state, within, found, candidates = _block_scratch(db, n_found)
    counts = np.empty(qwords.shape[0], dtype=np.int64)
    out = np.empty(64, dtype=np.int64)
    n_out = 0
    for q in range(qwords.shape[0]):
        candidates = _walk((qwords, q, qkeys, state, within), db, search, found, candidates)
        m = _sort_within_bound(candidates, state)
        if n_out + m > out.shape[0]:
            grown = np.empty(max(2 * out.shape[0], n_out + m), dtype=np.int64)
            grown[:n_out] = out[:n_out]
            out = grown
        out[n_out : n_out + m] = candidates[:m]
        counts[q] = m
        n_out += m
    return counts, out[:n_out]


@numba.njit(cache=True, nogil=True)
def top_block(db, search, n_found, rerank, qwords, qfeatures, out):  # pragma: no cover
    """The first ``k = out.shape[1]`` result keys of each query into ``out`` (-1 pads): Hamming
    keys, or feature keys when ``rerank``'s metric is not ``HAMMING`` (see
    :func:`~hashlearn.index._table_rerank.rank_by_features`)."""
    qkeys, state, within, found, candidates = _block_scratch(db, n_found)
    bits = np.empty(1, dtype=np.float32)
    k = out.shape[1]
    for q in range(qwords.shape[0]):
        candidates = _walk((qwords, q, qkeys, state, within), db, search, found, candidates)
        if rerank[3] == HAMMING:
            m = _sort_within_bound(candidates, state)
        else:
            m = state[2]
            rank_by_features(candidates[:m], qfeatures[q], rerank, bits)
        kk = min(k, m)
        out[q, :kk] = candidates[:kk]
        out[q, kk:] = -1
