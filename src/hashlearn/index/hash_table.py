"""Hash-table indexes: buckets keyed by code bits, searched by multi-probing nearby buckets.

:class:`HashTableIndex` keys one hash table by the first ``key_bits`` bits of each code (faiss'
``IndexBinaryHash``); :class:`MultiTableIndex` keeps ``L`` independent tables, each keyed by its
own slice of a concatenated code (the multiple-table scheme of Gionis, Indyk & Motwani, "Similarity
Search in High Dimensions via Hashing", VLDB 1999). Both probe every bucket whose key lies within a
Hamming radius of the query's key (multi-probe search, Lv et al., "Multi-Probe LSH", VLDB 2007),
then rank the candidates exactly by the Hamming distance of the full codes or by the distance of
stored real-valued features (cosine or L2), as in hash-table retrieval with re-ranking.

Key facts used throughout
-------------------------
* The Hamming distance of two keys (a subset of the bits) never exceeds that of the full codes.
  So probing every bucket within key distance ``r`` and keeping candidates whose *full* distance is
  ``<= r`` finds every item within ``r``: :meth:`HashTableIndex.range_search` is exact, and growing
  ``r`` until ``k`` items lie within it makes :meth:`HashTableIndex.search` exact too.
* With ``L`` tables covering disjoint bit ranges of the code, the full distance is the sum of the
  ``L`` per-table distances; an item within ``r`` of the query is within ``floor(r / L)`` of it in
  at least one table (pigeonhole), so :meth:`MultiTableIndex.range_search` is exact as well.
* The buckets within key radius ``r`` are enumerated by flipping up to ``r`` bits of the query key,
  ``sum_{i <= r} C(key_bits, i)`` probes. When that exceeds the number of non-empty buckets
  (divided by 8, the cost of one random probe relative to reading one key in order, measured on
  random codes), the bucket keys are scanned instead (``popcount(key ^ query_key) <= r``): a large
  radius costs at most one pass over the buckets, and never more memory.

The tables are built lazily: the first search after an ``add`` or ``remove_ids`` sorts the keys,
``O(n log n)`` per table; later searches reuse them. They are not stored in index files but rebuilt
on the first search after loading.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numba
import numpy as np
from numba import prange
from numpy.typing import NDArray

from hashlearn._validation import _as_numeric_array, _check_finite, check_int
from hashlearn.codes import MAX_BITS, _as_words, check_codes, n_bytes
from hashlearn.exceptions import FileFormatError, InvalidInputError, UnknownNameError
from hashlearn.index._format import IndexFile
from hashlearn.index._kernels import popcount64
from hashlearn.index.base import PAD_DISTANCE, PAD_ID, BinaryIndex, _as_id_array, _IdMap

__all__ = ["HashTableIndex", "MultiTableIndex", "concatenate_codes"]

METRICS = ("cosine", "l2")
"""Feature distances :meth:`HashTableIndex.search_rerank` ranks by."""

MAX_KEY_BITS = 64
"""Most bits a table key holds (one ``uint64``)."""

# A Hamming result key is ``distance << _RANK_BITS | rank of the id``: sorting sorts by (distance,
# id). A feature result key is ``float32 bits of the distance << _FEATURE_RANK_BITS | rank``
# (non-negative float32 values order like their bit patterns), so these indexes hold < 2**32 items.
_RANK_BITS = 40
_RANK_MASK = (1 << _RANK_BITS) - 1
_FEATURE_RANK_BITS = 32
_FEATURE_RANK_MASK = (1 << _FEATURE_RANK_BITS) - 1
_MAX_ITEMS = 1 << _FEATURE_RANK_BITS
_MIN_CAPACITY = 16
# A probe (a random access to the bucket lookup table) costs about as much as scanning this many
# bucket keys in order: bit flips are enumerated while probes * _PROBE_COST <= buckets.
_PROBE_COST = 8
# Fewer queries than this are searched on the calling thread alone (see _run).
_MIN_PARALLEL_QUERIES = 8
# Fibonacci hashing multiplier (2**64 / golden ratio) for the open-addressing bucket lookup.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


# ---------------------------------------------------------------------------------------------
# Compiled kernels. A set of L tables is passed as one tuple ``tables``:
#   starts    int64 (L,)      first code bit of each table's key
#   keys      uint64 (NB,)    the non-empty buckets' keys, table by table, ascending in a table
#   bucket_lo int64 (L + 1,)  table t's buckets are keys[bucket_lo[t]:bucket_lo[t + 1]]
#   offsets   int64 (NB + 1,) bucket j holds positions[offsets[j]:offsets[j + 1]]
#   positions int64 (L * n,)  storage positions of the items, bucket by bucket
#   slots     int64 (S,)      open-addressing lookup: bucket number within its table, -1 = empty
#   slot_lo   int64 (L + 1,)  table t's slots are slots[slot_lo[t]:slot_lo[t + 1]] (a power of 2)
#   shifts    uint64 (L,)     64 - log2(number of slots of table t)
# ---------------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def _key_of(row, start, width):  # pragma: no cover - compiled
    """Bits ``[start, start + width)`` of a code given as ``uint64`` words, as a ``uint64``."""
    w0 = start >> 6
    shift = start & 63
    value = row[w0] >> np.uint64(shift)
    if shift != 0 and shift + width > 64:
        value |= row[w0 + 1] << np.uint64(64 - shift)
    if width < 64:
        value &= (np.uint64(1) << np.uint64(width)) - np.uint64(1)
    return value


@numba.njit(cache=True, nogil=True)
def _extract_keys(words, start, width):  # pragma: no cover - compiled
    keys = np.empty(words.shape[0], dtype=np.uint64)
    for i in range(words.shape[0]):
        keys[i] = _key_of(words[i], start, width)
    return keys


@numba.njit(cache=True, nogil=True)
def _slot_of(key, shift):  # pragma: no cover - compiled
    return np.int64((key * _GOLDEN) >> shift)


@numba.njit(cache=True, nogil=True)
def _build_slots(keys, n_slots, shift):  # pragma: no cover - compiled
    slots = np.full(n_slots, -1, dtype=np.int64)
    mask = n_slots - 1
    for i in range(keys.shape[0]):
        h = _slot_of(keys[i], shift)
        while slots[h] >= 0:
            h = (h + 1) & mask
        slots[h] = i
    return slots


@numba.njit(cache=True, nogil=True)
def _lookup(key, keys, lo, slots, slot_lo, mask, shift):  # pragma: no cover - compiled
    """Global bucket number of ``key`` in the table whose buckets start at ``lo``; -1 if absent."""
    h = _slot_of(key, shift)
    while True:
        slot = slots[slot_lo + h]
        if slot < 0:
            return -1
        if keys[lo + slot] == key:
            return lo + slot
        h = (h + 1) & mask


@numba.njit(cache=True, nogil=True)
def _probe_level(
    qkey, width, d, keys, lo, slots, slot_lo, mask, shift, out, n_out
):  # pragma: no cover
    """Append to ``out`` the buckets at key distance exactly ``d``, found by flipping ``d`` bits.

    The ``C(width, d)`` bit sets are enumerated in lexicographic order of their positions.
    Returns the new number of entries of ``out``.
    """
    if d == 0:
        j = _lookup(qkey, keys, lo, slots, slot_lo, mask, shift)
        if j >= 0:
            out[n_out] = j
            n_out += 1
        return n_out
    one = np.uint64(1)
    bits = np.arange(d)
    while True:
        flip = np.uint64(0)
        for i in range(d):
            flip |= one << np.uint64(bits[i])
        j = _lookup(qkey ^ flip, keys, lo, slots, slot_lo, mask, shift)
        if j >= 0:
            out[n_out] = j
            n_out += 1
        i = d - 1
        while i >= 0 and bits[i] == width - d + i:
            i -= 1
        if i < 0:
            return n_out
        bits[i] += 1
        for m in range(i + 1, d):
            bits[m] = bits[m - 1] + 1


@numba.njit(cache=True, nogil=True)
def _hamming_row(qrow, words, p):  # pragma: no cover - compiled
    total = np.int64(0)
    for w in range(qrow.shape[0]):
        total += np.int64(popcount64(qrow[w] ^ words[p, w]))
    return total


@numba.njit(cache=True, nogil=True)
def _collect(
    qrow,
    words,
    rank,
    tables,
    width,
    enumerate_flags,
    probe_radius,
    max_distance,
    bucket_capacity,
    dedup,
    ordered,
):  # pragma: no cover - compiled
    """Keys ``distance << 40 | rank`` of the items in buckets within ``probe_radius`` of the
    query's key in some table whose full Hamming distance is ``<= max_distance``; sorted when
    ``ordered`` or ``dedup`` (an item found in several tables is kept once)."""
    starts, keys, bucket_lo, offsets, positions, slots, slot_lo, shifts = tables
    found = np.empty(bucket_capacity, dtype=np.int64)
    n_found = 0
    for t in range(starts.shape[0]):
        qkey = _key_of(qrow, starts[t], width)
        lo, hi = bucket_lo[t], bucket_lo[t + 1]
        if enumerate_flags[t]:
            mask = slot_lo[t + 1] - slot_lo[t] - 1
            for d in range(min(probe_radius, width) + 1):
                n_found = _probe_level(
                    qkey, width, d, keys, lo, slots, slot_lo[t], mask, shifts[t], found, n_found
                )
        else:
            for j in range(lo, hi):
                if np.int64(popcount64(keys[j] ^ qkey)) <= probe_radius:
                    found[n_found] = j
                    n_found += 1
    total = 0
    for i in range(n_found):
        total += offsets[found[i] + 1] - offsets[found[i]]
    result = np.empty(total, dtype=np.int64)
    m = 0
    for i in range(n_found):
        j = found[i]
        for s in range(offsets[j], offsets[j + 1]):
            p = positions[s]
            distance = _hamming_row(qrow, words, p)
            if distance <= max_distance:
                result[m] = (distance << 40) | rank[p]
                m += 1
    if not (ordered or dedup):
        return result[:m]
    result = np.sort(result[:m])
    if dedup and m > 1:  # an item found in several tables appears once per table
        u = 1
        for i in range(1, m):
            if result[i] != result[u - 1]:
                result[u] = result[i]
                u += 1
        result = result[:u]
    return result


@numba.njit(cache=True, nogil=True, parallel=True)
def _range_kernel(
    qwords,
    words,
    rank,
    tables,
    width,
    enumerate_flags,
    probe_radius,
    max_distance,
    bucket_capacity,
    dedup,
    fill,
    lims,
    out,
):  # pragma: no cover - compiled
    """``fill=False``: result counts into ``lims[1:]``; ``fill=True``: results into ``out``."""
    for q in prange(qwords.shape[0]):
        result = _collect(
            qwords[q],
            words,
            rank,
            tables,
            width,
            enumerate_flags,
            probe_radius,
            max_distance,
            bucket_capacity,
            dedup,
            fill,
        )
        if fill:
            out[lims[q] : lims[q + 1]] = result
        else:
            lims[q + 1] = result.shape[0]


@numba.njit(cache=True, nogil=True, parallel=True)
def _top_k_kernel(
    qwords,
    words,
    rank,
    tables,
    width,
    enumerate_flags,
    probe_radius,
    max_distance,
    bucket_capacity,
    dedup,
    out,
):  # pragma: no cover - compiled
    """The first ``k = out.shape[1]`` keys of each query's candidates; -1 pads."""
    k = out.shape[1]
    for q in prange(qwords.shape[0]):
        result = _collect(
            qwords[q],
            words,
            rank,
            tables,
            width,
            enumerate_flags,
            probe_radius,
            max_distance,
            bucket_capacity,
            dedup,
            True,
        )
        kk = min(k, result.shape[0])
        out[q, :kk] = result[:kk]
        out[q, kk:] = -1


@numba.njit(cache=True, nogil=True)
def _n_comb(n, r):  # pragma: no cover - compiled
    """``C(n, r)`` for the small values a probe level has (no overflow below 2**57)."""
    c = 1
    for i in range(r):
        c = c * (n - i) // (i + 1)
    return c


@numba.njit(cache=True, nogil=True)
def _visit(
    qrow, words, rank, offsets, positions, j, k, state, within, candidates
):  # pragma: no cover
    """Store bucket ``j``'s items within the running bound in ``candidates``; tighten the bound.

    ``state`` holds ``[bound, items stored with distance <= bound, items stored]``; ``bound`` is
    the smallest distance within which ``k`` items were stored (at first the caller's limit).
    ``candidates`` must have room for the whole bucket.
    """
    for s in range(offsets[j], offsets[j + 1]):
        p = positions[s]
        distance = _hamming_row(qrow, words, p)
        if distance > state[0]:
            continue
        candidates[state[2]] = (distance << 40) | rank[p]
        state[2] += 1
        within[distance] += 1
        state[1] += 1
        while state[0] > 0 and state[1] - within[state[0]] >= k:
            state[1] -= within[state[0]]
            state[0] -= 1


@numba.njit(cache=True, nogil=True)
def _visit_buckets(
    qrow,
    qkey,
    words,
    rank,
    keys,
    offsets,
    positions,
    found,
    first,
    last,
    min_key_distance,
    k,
    state,
    within,
    candidates,
):  # pragma: no cover - compiled
    """Visit buckets ``found[first:last]`` (or, when ``found`` is empty, buckets ``first:last`` of
    the table whose key distance is in ``[min_key_distance, bound]``).

    Returns the first bucket not visited because ``candidates`` has no room for it (``last`` when
    all were). Kept free of array reassignment: numba then compiles the loop without reference
    counting, several times faster.
    """
    scan = found.shape[0] == 0
    for i in range(first, last):
        if scan:
            j = i
            key_distance = np.int64(popcount64(keys[j] ^ qkey))
            if key_distance < min_key_distance or key_distance > state[0]:
                continue
        else:
            j = found[i]
        if state[2] + offsets[j + 1] - offsets[j] > candidates.shape[0]:
            return i
        _visit(qrow, words, rank, offsets, positions, j, k, state, within, candidates)
    return last


@numba.njit(cache=True, nogil=True)
def _visit_all(
    qrow,
    qkey,
    words,
    rank,
    keys,
    offsets,
    positions,
    found,
    first,
    last,
    min_key_distance,
    k,
    state,
    within,
    candidates,
):  # pragma: no cover - compiled
    """:func:`_visit_buckets`, growing ``candidates`` as needed; returns the (new) buffer."""
    while first < last:
        first = _visit_buckets(
            qrow,
            qkey,
            words,
            rank,
            keys,
            offsets,
            positions,
            found,
            first,
            last,
            min_key_distance,
            k,
            state,
            within,
            candidates,
        )
        if first < last:
            j = found[first] if found.shape[0] else first
            size = max(2 * candidates.shape[0], state[2] + offsets[j + 1] - offsets[j])
            grown = np.empty(size, dtype=np.int64)
            grown[: state[2]] = candidates[: state[2]]
            candidates = grown
    return candidates


@numba.njit(cache=True, nogil=True)
def _grow_query(
    qrow, words, rank, tables, width, scan_from, max_distance, out_row
):  # pragma: no cover
    """Exact k-NN of one query in one table (``k = out_row.shape[0]``), by growing radius.

    Levels ``d = 0, 1, ...`` below ``scan_from`` probe the buckets at key distance ``d`` by bit
    flips; after level ``d`` every item within full distance ``d`` has been seen (its key is within
    ``d``). Meanwhile ``bound``, the smallest distance within which ``k`` items were seen (at first
    ``max_distance``), only decreases; the search ends once ``d >= bound``. Otherwise one pass over
    the remaining bucket keys visits those within ``bound`` of the query's key (no item is closer to
    the query than its bucket's key, so the skipped buckets hold no result).
    """
    starts, keys, _, offsets, positions, slots, _, shifts = tables
    k = out_row.shape[0]
    n_buckets = keys.shape[0]
    mask = slots.shape[0] - 1
    qkey = _key_of(qrow, starts[0], width)
    within = np.zeros(qrow.shape[0] * 64 + 1, dtype=np.int64)  # stored candidates per distance
    state = np.array([max_distance, 0, 0], dtype=np.int64)
    candidates = np.empty(max(64, 2 * k), dtype=np.int64)
    visited = 0
    d = 0
    done = False
    while d < scan_from:
        found = np.empty(max(1, _n_comb(width, d)), dtype=np.int64)
        n_found = _probe_level(qkey, width, d, keys, 0, slots, 0, mask, shifts[0], found, 0)
        candidates = _visit_all(
            qrow,
            qkey,
            words,
            rank,
            keys,
            offsets,
            positions,
            found,
            0,
            n_found,
            0,
            k,
            state,
            within,
            candidates,
        )
        visited += n_found
        if d >= state[0] or visited == n_buckets:
            done = True
            break
        d += 1
    if not done:  # buckets at key distance scan_from .. bound, in one pass over the keys
        candidates = _visit_all(
            qrow,
            qkey,
            words,
            rank,
            keys,
            offsets,
            positions,
            np.empty(0, dtype=np.int64),
            0,
            n_buckets,
            scan_from,
            k,
            state,
            within,
            candidates,
        )
    bound = state[0]
    m = 0
    for i in range(state[2]):
        if (candidates[i] >> 40) <= bound:
            candidates[m] = candidates[i]
            m += 1
    result = np.sort(candidates[:m])
    kk = min(k, m)
    out_row[:kk] = result[:kk]
    out_row[kk:] = -1


@numba.njit(cache=True, nogil=True, parallel=True)
def _grow_kernel(
    qwords, words, rank, tables, width, scan_from, max_distance, out
):  # pragma: no cover
    """:func:`_grow_query` for every query; ``k = out.shape[1]``."""
    for q in prange(qwords.shape[0]):
        _grow_query(qwords[q], words, rank, tables, width, scan_from, max_distance, out[q])


@numba.njit(cache=True, nogil=True)
def _row_norms(features):  # pragma: no cover - compiled
    """float64 Euclidean norm of each row, summed left to right."""
    norms = np.empty(features.shape[0], dtype=np.float64)
    for i in range(features.shape[0]):
        total = 0.0
        for j in range(features.shape[1]):
            value = np.float64(features[i, j])
            total += value * value
        norms[i] = np.sqrt(total)
    return norms


@numba.njit(cache=True, nogil=True, parallel=True)
def _rerank_kernel(
    qwords,
    qfeatures,
    words,
    rank,
    position_of_rank,
    features,
    norms,
    tables,
    width,
    enumerate_flags,
    probe_radius,
    max_distance,
    bucket_capacity,
    dedup,
    cosine,
    out,
):  # pragma: no cover - compiled
    """Candidates as in :func:`_collect`, ordered by feature distance (float32), then id."""
    k = out.shape[1]
    d_features = features.shape[1]
    for q in prange(qwords.shape[0]):
        result = _collect(
            qwords[q],
            words,
            rank,
            tables,
            width,
            enumerate_flags,
            probe_radius,
            max_distance,
            bucket_capacity,
            dedup,
            False,
        )
        m = result.shape[0]
        qf = qfeatures[q]
        q_norm = 0.0
        if cosine:
            for j in range(d_features):
                value = np.float64(qf[j])
                q_norm += value * value
            q_norm = np.sqrt(q_norm)
        distances = np.empty(m, dtype=np.float32)
        ranks = result & _RANK_MASK
        for i in range(m):
            p = position_of_rank[ranks[i]]
            total = 0.0
            if cosine:
                for j in range(d_features):
                    total += np.float64(qf[j]) * np.float64(features[p, j])
                if q_norm == 0.0 or norms[p] == 0.0:
                    value = 1.0
                else:
                    value = 1.0 - total / (q_norm * norms[p])
                    if value < 0.0:
                        value = 0.0
            else:
                for j in range(d_features):
                    diff = np.float64(qf[j]) - np.float64(features[p, j])
                    total += diff * diff
                value = np.sqrt(total)
            distances[i] = np.float32(value)
        order_keys = (distances.view(np.uint32).astype(np.int64) << 32) | ranks
        order_keys.sort()
        kk = min(k, m)
        out[q, :kk] = order_keys[:kk]
        out[q, kk:] = -1


# ---------------------------------------------------------------------------------------------
# Python side
# ---------------------------------------------------------------------------------------------


def _n_probes(width: int, radius: int) -> int:
    """Keys within Hamming distance ``radius`` of a ``width``-bit key: ``sum_{i<=r} C(width, i)``."""
    return sum(math.comb(width, i) for i in range(min(radius, width) + 1))


class _BucketTables:
    """``L`` hash tables over the same stored codes; table ``t`` is keyed by the ``width`` code bits
    from ``starts[t]`` on and stored in CSR form (sorted keys, offsets, positions sorted by key).

    Building costs ``O(L n log n)`` (one stable argsort of the keys per table).
    """

    __slots__ = ("n_buckets", "tables", "width")

    def __init__(self, words: NDArray[np.uint64], starts: list[int], width: int) -> None:
        n = len(words)
        self.width = width
        key_parts, offset_parts, position_parts, slot_parts = [], [], [], []
        shifts, n_buckets = [], []
        for t, start in enumerate(starts):
            keys = _extract_keys(words, start, width)
            order = np.argsort(keys, kind="stable")
            sorted_keys = keys[order]
            firsts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]) if n else []
            firsts = np.asarray(firsts, dtype=np.int64)
            bucket_keys = np.ascontiguousarray(sorted_keys[firsts])
            log_slots = max(1, (2 * len(bucket_keys) - 1).bit_length())  # >= 2 * buckets, >= 2
            shift = np.uint64(64 - log_slots)
            key_parts.append(bucket_keys)
            offset_parts.append(firsts + t * n)
            position_parts.append(order.astype(np.int64))
            slot_parts.append(_build_slots(bucket_keys, 1 << log_slots, shift))
            shifts.append(shift)
            n_buckets.append(len(bucket_keys))
        offset_parts.append(np.array([len(starts) * n], dtype=np.int64))
        self.n_buckets = n_buckets
        self.tables = (
            np.asarray(starts, dtype=np.int64),
            np.concatenate(key_parts).astype(np.uint64),
            np.concatenate([[0], np.cumsum(n_buckets)]).astype(np.int64),
            np.concatenate(offset_parts).astype(np.int64),
            np.concatenate(position_parts).astype(np.int64),
            np.concatenate(slot_parts).astype(np.int64),
            np.concatenate([[0], np.cumsum([len(s) for s in slot_parts])]).astype(np.int64),
            np.asarray(shifts, dtype=np.uint64),
        )

    def probe_plan(self, radius: int) -> tuple[NDArray[np.bool_], int]:
        """Per table: enumerate bit flips (True) or scan the bucket keys (False) for ``radius``;
        and how many buckets a query may find in all (the size of its bucket buffer)."""
        probes = _n_probes(self.width, radius)
        flags = np.array([probes * _PROBE_COST <= nb for nb in self.n_buckets], dtype=np.bool_)
        capacity = sum(min(probes, nb) for nb in self.n_buckets)
        return flags, capacity

    def scan_from(self) -> int:
        """First radius whose cumulative number of probes, times ``_PROBE_COST``, exceeds the number
        of buckets (of table 0): from there on a k-NN search scans the bucket keys."""
        total = 0
        for d in range(self.width + 1):
            total += math.comb(self.width, d)
            if total * _PROBE_COST > self.n_buckets[0]:
                return d
        return self.width + 1


class _SearchState:
    """Everything a search needs, derived from the stored items; rebuilt after each change."""

    __slots__ = ("norms", "position_of_rank", "rank", "sorted_ids", "tables", "words")

    def __init__(self, index: _TableIndex) -> None:
        n = index.ntotal
        self.words = _as_words(np.asarray(index._codes[:n]))
        self.sorted_ids, self.rank = index._ids_in_order()
        self.position_of_rank = np.ascontiguousarray(index._id_map.sorted()[1], dtype=np.int64)
        starts, width = index._layout()
        self.tables = _BucketTables(self.words, starts, width)
        self.norms = (
            _row_norms(np.asarray(index._features[:n])) if index._features is not None else None
        )


class _TableIndex(BinaryIndex):
    """Storage shared by the hash-table indexes: codes, ids and optional float32 features in
    insertion order (grown by doubling), and the lazily built tables of :meth:`_layout`."""

    def __init__(self, n_bits: int) -> None:
        super().__init__(n_bits)
        self._ntotal = 0
        self._codes: NDArray[np.uint8] = np.empty((0, self.code_size), dtype=np.uint8)
        self._id_store: NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self._features: NDArray[np.float32] | None = None
        self._has_features: bool | None = None  # fixed by the first add, cleared by reset
        self._n_features = 0
        self._state: _SearchState | None = None

    def _layout(self) -> tuple[list[int], int]:
        """First key bit of each table, and the key width."""
        raise NotImplementedError

    # ------------------------------------------------------------------ properties
    @property
    def ntotal(self) -> int:
        """Number of items in the index."""
        return self._ntotal

    @property
    def ids(self) -> NDArray[np.int64]:
        """Ids of the items in insertion order, ``int64`` of shape ``(ntotal,)`` (a copy)."""
        return np.array(self._id_store[: self._ntotal], dtype=np.int64)

    @property
    def has_features(self) -> bool:
        """Whether the items carry features (for :meth:`search_rerank`)."""
        return bool(self._has_features)

    @property
    def n_features(self) -> int:
        """Number of feature values per item (0 when the index holds no features)."""
        return self._n_features if self._has_features else 0

    # ------------------------------------------------------------------ adding and removing
    def add(self, codes: NDArray[np.uint8], features: Any = None) -> None:
        """Add codes (and their features) with sequential ids ``ntotal, ntotal + 1, ...``.

        Parameters
        ----------
        codes : numpy.ndarray of uint8, shape (n, code_size)
        features : array-like of float, shape (n, d), optional
            Real-valued features of the items, stored as ``float32`` for :meth:`search_rerank`.
            Either every add passes features (of the same ``d``) or none does.

        Raises
        ------
        CodeFormatError
            ``codes`` is not a ``uint8`` array of shape ``(n, code_size)``.
        InvalidInputError
            A sequential id is already present, or ``features`` are missing, unexpected, of the
            wrong shape or not finite.
        """
        codes = self._check_codes(codes)
        features = self._check_item_features(features, len(codes))
        self._append(codes, self._sequential_ids(len(codes)), features)

    def add_with_ids(self, codes: NDArray[np.uint8], ids: Any, features: Any = None) -> None:
        """Add codes (and their features) with caller-chosen ids.

        Parameters
        ----------
        codes : numpy.ndarray of uint8, shape (n, code_size)
        ids : array-like of integers, shape (n,)
            Non-negative, unique within the call and absent from the index.
        features : array-like of float, shape (n, d), optional
            As in :meth:`add`.

        Raises
        ------
        CodeFormatError
            ``codes`` is not a ``uint8`` array of shape ``(n, code_size)``.
        InvalidInputError
            Bad ids (not integers, not 1-D, not ``n`` long, negative, repeated, present) or bad
            features (as in :meth:`add`).
        """
        codes = self._check_codes(codes)
        features = self._check_item_features(features, len(codes))
        self._append(codes, self._check_new_ids(ids, len(codes)), features)

    def _check_item_features(self, features: Any, n: int) -> NDArray[np.float32] | None:
        if features is None:
            if self._has_features:
                raise InvalidInputError(
                    f"this index stores {self._n_features} features per item; pass features= "
                    "with the codes (every add must, once the first did)"
                )
            return None
        if self._has_features is False:
            raise InvalidInputError(
                "this index stores no features (the first add passed none); add codes without "
                "features, or start a new index"
            )
        array = _as_numeric_array(features, "features")
        if array.ndim != 2 or array.shape[1] == 0:
            raise InvalidInputError(
                f"features must be a 2-D array (n, d) with d >= 1, got shape {array.shape}"
            )
        if len(array) != n:
            raise InvalidInputError(f"features has {len(array)} rows but there are {n} codes")
        if self._has_features and array.shape[1] != self._n_features:
            raise InvalidInputError(
                f"features have {array.shape[1]} values per item, but this index stores "
                f"{self._n_features}"
            )
        _check_finite(array, "features")
        with np.errstate(over="ignore"):
            array = np.ascontiguousarray(array, dtype=np.float32)
        _check_finite(array, "features (as float32)")
        return array

    def _append(
        self,
        codes: NDArray[np.uint8],
        ids: NDArray[np.int64],
        features: NDArray[np.float32] | None,
    ) -> None:
        n = len(codes)
        if n == 0:
            return
        if self._has_features is None:
            self._has_features = features is not None
            self._n_features = features.shape[1] if features is not None else 0
        start, end = self._ntotal, self._ntotal + n
        if end >= _MAX_ITEMS:
            raise InvalidInputError(f"a {type(self).__name__} holds fewer than 2**32 items")
        if end > len(self._id_store):
            capacity = max(end, 2 * len(self._id_store), _MIN_CAPACITY)
            new_codes = np.empty((capacity, self.code_size), dtype=np.uint8)
            new_codes[:start] = self._codes[:start]
            new_ids = np.empty(capacity, dtype=np.int64)
            new_ids[:start] = self._id_store[:start]
            self._codes, self._id_store = new_codes, new_ids
            if features is not None:
                new_features = np.empty((capacity, self._n_features), dtype=np.float32)
                if self._features is not None:
                    new_features[:start] = self._features[:start]
                self._features = new_features
        self._codes[start:end] = codes
        self._id_store[start:end] = ids
        if features is not None:
            assert self._features is not None
            self._features[start:end] = features
        self._id_map.add(ids, np.arange(start, end, dtype=np.int64))
        self._ntotal = end
        self._changed()

    def remove_ids(self, ids: Any) -> int:
        """Remove the items (and their features) with the given ids; unknown ids are ignored.

        Parameters
        ----------
        ids : array-like of integers, shape (m,)

        Returns
        -------
        int
            Number of items removed.
        """
        wanted = _as_id_array(ids, "ids")
        positions = self._id_map.lookup(wanted)
        positions = np.unique(positions[positions >= 0])
        if not len(positions):
            return 0
        keep = np.ones(self._ntotal, dtype=bool)
        keep[positions] = False
        # Fresh arrays (not an in-place compaction): the storage may be a read-only memory map.
        self._codes = np.asarray(self._codes[: self._ntotal])[keep]
        self._id_store = np.asarray(self._id_store[: self._ntotal])[keep]
        if self._features is not None:
            self._features = np.asarray(self._features[: self._ntotal])[keep]
        self._ntotal = len(self._id_store)
        self._id_map = _IdMap.from_ids(self._id_store)
        self._changed()
        return len(positions)

    def reset(self) -> None:
        """Remove every item; ``n_bits`` and the table layout are kept, the feature mode is not."""
        self._ntotal = 0
        self._codes = np.empty((0, self.code_size), dtype=np.uint8)
        self._id_store = np.empty(0, dtype=np.int64)
        self._features = None
        self._has_features = None
        self._n_features = 0
        self._id_map = _IdMap()
        self._changed()

    def _changed(self) -> None:
        super()._changed()
        self._state = None

    def _search_state(self) -> _SearchState:
        state = self._state
        if state is None:
            state = _SearchState(self)
            self._state = state
        return state

    # ------------------------------------------------------------------ search helpers
    def _range(
        self, queries: NDArray[np.uint8], probe_radius: int, max_distance: int, dedup: bool
    ) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.int64]]:
        nq = len(queries)
        lims = np.zeros(nq + 1, dtype=np.int64)
        if nq == 0 or self._ntotal == 0:
            return lims, np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int64)
        state = self._search_state()
        probe_radius = min(probe_radius, state.tables.width)
        flags, capacity = state.tables.probe_plan(probe_radius)
        qwords = _as_words(queries)
        args = (
            qwords,
            state.words,
            state.rank,
            state.tables.tables,
            state.tables.width,
            flags,
            probe_radius,
            min(max_distance, self.n_bits),
            capacity,
            dedup,
        )
        out = np.empty(0, dtype=np.int64)
        _run(_range_kernel, nq, *args, False, lims, out)  # counts, then results: two passes
        np.cumsum(lims, out=lims)
        out = np.empty(int(lims[-1]), dtype=np.int64)
        _run(_range_kernel, nq, *args, True, lims, out)
        return lims, (out >> _RANK_BITS).astype(np.int32), state.sorted_ids[out & _RANK_MASK]

    def _top_k(
        self, queries: NDArray[np.uint8], k: int, probe_radius: int, dedup: bool
    ) -> tuple[NDArray[np.int32], NDArray[np.int64]]:
        nq = len(queries)
        if nq == 0 or self._ntotal == 0:
            return _padded(nq, k)
        state = self._search_state()
        probe_radius = min(probe_radius, state.tables.width)
        flags, capacity = state.tables.probe_plan(probe_radius)
        out = np.empty((nq, k), dtype=np.int64)
        _run(
            _top_k_kernel,
            nq,
            _as_words(queries),
            state.words,
            state.rank,
            state.tables.tables,
            state.tables.width,
            flags,
            probe_radius,
            self.n_bits,
            capacity,
            dedup,
            out,
        )
        return _decode_hamming(out, state.sorted_ids)

    def _check_query_features(self, query_features: Any, nq: int) -> NDArray[np.float32]:
        if not self._has_features:
            raise InvalidInputError(
                "this index stores no features: pass features= to add / add_with_ids to re-rank"
            )
        array = _as_numeric_array(query_features, "query_features")
        if array.ndim != 2 or array.shape[0] != nq or array.shape[1] != self._n_features:
            raise InvalidInputError(
                f"query_features must have shape ({nq}, {self._n_features}) (one row per query, "
                f"as many values as the stored features), got {array.shape}"
            )
        _check_finite(array, "query_features")
        with np.errstate(over="ignore"):
            array = np.ascontiguousarray(array, dtype=np.float32)
        _check_finite(array, "query_features (as float32)")
        return array

    def _rerank(
        self,
        queries: NDArray[np.uint8],
        query_features: Any,
        k: Any,
        metric: Any,
        probe_radius: int,
        max_distance: int,
        dedup: bool,
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        if not isinstance(metric, str) or metric not in METRICS:
            raise UnknownNameError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
        nq = len(queries)
        k = self._check_k(k)
        query_features = self._check_query_features(query_features, nq)
        distances = np.full((nq, k), np.inf, dtype=np.float32)
        labels = np.full((nq, k), PAD_ID, dtype=np.int64)
        if nq == 0 or self._ntotal == 0:
            return distances, labels
        state = self._search_state()
        probe_radius = min(probe_radius, state.tables.width)
        flags, capacity = state.tables.probe_plan(probe_radius)
        assert self._features is not None and state.norms is not None
        out = np.empty((nq, k), dtype=np.int64)
        _run(
            _rerank_kernel,
            nq,
            _as_words(queries),
            query_features,
            state.words,
            state.rank,
            state.position_of_rank,
            np.asarray(self._features[: self._ntotal]),
            state.norms,
            state.tables.tables,
            state.tables.width,
            flags,
            probe_radius,
            min(max_distance, self.n_bits),
            capacity,
            dedup,
            metric == "cosine",
            out,
        )
        valid = out >= 0
        keys = out[valid]
        distances[valid] = (keys >> _FEATURE_RANK_BITS).astype(np.uint32).view(np.float32)
        labels[valid] = state.sorted_ids[keys & _FEATURE_RANK_MASK]
        return distances, labels

    # ------------------------------------------------------------------ persistence
    def _save(self, path: str | os.PathLike[str], params: dict[str, Any]) -> None:
        n = self._ntotal
        extra = {"features": self._features[:n]} if self._features is not None else None
        params = {**params, "has_features": self._has_features, "n_features": self._n_features}
        self._write(path, self._codes[:n], self._id_store[:n], extra_arrays=extra, params=params)

    def _restore(self, file: IndexFile) -> None:
        """Fill a fresh index with a file's items (codes, ids and features) after checking them."""
        id_map = self._id_map_from_file(file)
        has_features = file.params.get("has_features")
        n_features = file.params.get("n_features", 0)
        if (
            has_features not in (True, False, None)
            or isinstance(n_features, bool)
            or not (isinstance(n_features, int) and n_features >= 0)
        ):
            raise FileFormatError(
                f"the index file has invalid feature parameters: has_features={has_features!r}, "
                f"n_features={n_features!r}"
            )
        features = file.arrays.get("features")
        if has_features:
            expected = (file.ntotal, n_features)
            if features is None or features.dtype != np.float32 or features.shape != expected:
                found = "none" if features is None else f"{features.dtype} {features.shape}"
                raise FileFormatError(
                    f"the index file should hold float32 features of shape {expected}, found {found}"
                )
            if n_features == 0 or not np.isfinite(features).all():
                raise FileFormatError("the index file holds empty or non-finite features")
        elif features is not None or (has_features is None and file.ntotal):
            raise FileFormatError(
                "the index file's features do not match its has_features parameter"
            )
        self._codes = file.arrays["codes"]
        self._id_store = file.arrays["ids"]
        self._ntotal = file.ntotal
        self._id_map = id_map
        self._has_features = has_features
        self._n_features = n_features if has_features else 0
        self._features = features if has_features else None


def _run(kernel: Any, nq: int, *args: Any) -> None:
    """Call a query-parallel kernel; below _MIN_PARALLEL_QUERIES queries on the calling thread only
    (waking the other threads would cost more than it saves, and on a busy machine much more)."""
    if nq >= _MIN_PARALLEL_QUERIES:
        kernel(*args)
        return
    previous = numba.get_num_threads()
    numba.set_num_threads(1)  # per calling thread: other threads' searches are not affected
    try:
        kernel(*args)
    finally:
        numba.set_num_threads(previous)


def _padded(nq: int, k: int) -> tuple[NDArray[np.int32], NDArray[np.int64]]:
    return (
        np.full((nq, k), PAD_DISTANCE, dtype=np.int32),
        np.full((nq, k), PAD_ID, dtype=np.int64),
    )


def _decode_hamming(
    out: NDArray[np.int64], sorted_ids: NDArray[np.int64]
) -> tuple[NDArray[np.int32], NDArray[np.int64]]:
    """``(D, I)`` from result keys ``distance << 40 | rank`` (-1 = padding)."""
    distances, labels = _padded(*out.shape)
    valid = out >= 0
    keys = out[valid]
    distances[valid] = keys >> _RANK_BITS
    labels[valid] = sorted_ids[keys & _RANK_MASK]
    return distances, labels


def _param_int(file: IndexFile, name: str) -> int:
    value = file.params.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise FileFormatError(f"the index file's parameter {name!r} is missing or not an integer")
    return value


class HashTableIndex(_TableIndex):
    """One hash table keyed by the first ``key_bits`` bits of each code, searched by multi-probing.

    Parameters
    ----------
    n_bits : int
        Code width in bits, 1..4096 (codes are ``uint8`` arrays of shape
        ``(n, ceil(n_bits / 8))``, layout of :mod:`hashlearn.codes`).
    key_bits : int, optional
        Number of leading code bits (bits ``0 .. key_bits - 1``) forming the bucket key,
        ``1 <= key_bits <= min(n_bits, 64)``. Default ``min(n_bits, 64)``.

    Notes
    -----
    :meth:`search` and :meth:`range_search` are exact: their results equal
    :class:`~hashlearn.index.LinearIndex`'s, ties by id included. A range search with radius ``r``
    probes every bucket whose key is within ``r`` of the query's key (the key distance is at most
    the full distance) and keeps the items whose full distance is ``<= r``; a k-NN search does
    so for ``r = 0, 1, 2, ...`` until ``k`` items lie within ``r`` (multi-probe search, Lv et
    al., VLDB 2007). When the ``sum_{i <= r} C(key_bits, i)`` probes would cost more than reading
    every bucket key (a probe is counted as 8 keys read), the bucket keys are scanned instead, so
    the cost of one query is bounded by the number of buckets plus the candidates; a k-NN scan
    skips the buckets whose key is farther than the k-th best distance found so far.

    The table is rebuilt, in ``O(n log n)``, by the first search after items were added or
    removed. Items may carry real-valued features (``add(codes, features=...)``) for
    :meth:`search_rerank`. Batches of 8 queries or more are searched in parallel (numba threads,
    see :func:`hashlearn.index._kernels.set_num_threads`). Searches may run in several Python
    threads at once, but not while items are added or removed. Holds fewer than ``2**32`` items.

    Examples
    --------
    >>> import numpy as np
    >>> from hashlearn.index.hash_table import HashTableIndex
    >>> index = HashTableIndex(16, key_bits=8)
    >>> index.add_with_ids(np.array([[1, 0], [3, 0], [0, 255]], dtype=np.uint8), [10, 20, 30])
    >>> D, I = index.search(np.array([[1, 0]], dtype=np.uint8), k=2)
    >>> D.tolist(), I.tolist()
    ([[0, 1]], [[10, 20]])
    """

    type_name = "HashTableIndex"

    def __init__(self, n_bits: int, key_bits: int | None = None) -> None:
        super().__init__(n_bits)
        limit = min(self.n_bits, MAX_KEY_BITS)
        self._key_bits = (
            limit if key_bits is None else check_int(key_bits, "key_bits", minimum=1, maximum=limit)
        )

    @property
    def key_bits(self) -> int:
        """Number of leading code bits that form the bucket key."""
        return self._key_bits

    def __repr__(self) -> str:
        return (
            f"HashTableIndex(n_bits={self.n_bits}, key_bits={self.key_bits}, ntotal={self.ntotal})"
        )

    def _layout(self) -> tuple[list[int], int]:
        return [0], self._key_bits

    @property
    def n_buckets(self) -> int:
        """Number of non-empty buckets (builds the table if needed)."""
        return self._search_state().tables.n_buckets[0] if self._ntotal else 0

    def search(
        self, queries: NDArray[np.uint8], k: int, max_radius: int | None = None
    ) -> tuple[NDArray[np.int32], NDArray[np.int64]]:
        """The ``k`` nearest items of each query by Hamming distance, probing growing radii.

        Parameters
        ----------
        queries : numpy.ndarray of uint8, shape (nq, code_size)
        k : int
            Number of neighbours, >= 1. May exceed ``ntotal``.
        max_radius : int, optional
            Largest Hamming distance returned (bounded multi-probe search). ``None``, the
            default, does not bound it: the search is then exact k-NN, identical to
            :meth:`LinearIndex.search <hashlearn.index.LinearIndex.search>`. With a bound, each
            row holds the best ``k`` items within ``max_radius`` (exactly), padded.

        Returns
        -------
        D : numpy.ndarray of int32, shape (nq, k)
            Hamming distances, ascending along each row; padding ``2**31 - 1``.
        I : numpy.ndarray of int64, shape (nq, k)
            Ids; equal distances are ordered by id ascending; padding ``-1``.

        Raises
        ------
        CodeFormatError
            ``queries`` is not a ``uint8`` array of shape ``(nq, code_size)``.
        InvalidInputError
            ``k`` is not an integer >= 1, or ``max_radius`` is not an integer >= 0.
        """
        queries = self._check_codes(queries, "queries")
        k = self._check_k(k)
        cap = self.n_bits if max_radius is None else check_int(max_radius, "max_radius", minimum=0)
        nq = len(queries)
        if nq == 0 or self._ntotal == 0:
            return _padded(nq, k)
        state = self._search_state()
        out = np.empty((nq, k), dtype=np.int64)
        _run(
            _grow_kernel,
            nq,
            _as_words(queries),
            state.words,
            state.rank,
            state.tables.tables,
            self._key_bits,
            state.tables.scan_from(),
            min(cap, self.n_bits),
            out,
        )
        return _decode_hamming(out, state.sorted_ids)

    def range_search(
        self, queries: NDArray[np.uint8], radius: int
    ) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.int64]]:
        """Every item within Hamming distance ``radius`` (inclusive) of each query; exact.

        Parameters
        ----------
        queries : numpy.ndarray of uint8, shape (nq, code_size)
        radius : int
            Largest Hamming distance returned, >= 0.

        Returns
        -------
        lims : numpy.ndarray of int64, shape (nq + 1,)
            The results of query ``i`` are ``D[lims[i]:lims[i + 1]]`` and ``I[lims[i]:lims[i + 1]]``.
        D : numpy.ndarray of int32, shape (lims[-1],)
            Hamming distances, ascending within each query.
        I : numpy.ndarray of int64, shape (lims[-1],)
            Ids; equal distances are ordered by id ascending.

        Raises
        ------
        CodeFormatError
            ``queries`` is not a ``uint8`` array of shape ``(nq, code_size)``.
        InvalidInputError
            ``radius`` is not an integer >= 0.

        Notes
        -----
        Results are computed twice per query (a counting pass sizes the output, a second fills it).
        """
        queries = self._check_codes(queries, "queries")
        radius = self._check_radius(radius)
        return self._range(queries, radius, radius, dedup=False)

    def search_rerank(
        self,
        queries: NDArray[np.uint8],
        query_features: Any,
        k: int,
        radius: int,
        metric: str = "cosine",
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Items within Hamming ``radius`` of each query, re-ranked by feature distance.

        The candidates are the items whose full codes lie within ``radius`` of the query (found
        by multi-probing, as :meth:`range_search`); they are ordered by the distance between the
        query's features and theirs, ties by id, and the first ``k`` are returned.

        Parameters
        ----------
        queries : numpy.ndarray of uint8, shape (nq, code_size)
        query_features : array-like of float, shape (nq, n_features)
            Features of the queries, finite; converted to ``float32``.
        k : int
            Number of results per query, >= 1.
        radius : int
            Hamming radius of the candidates, >= 0.
        metric : {"cosine", "l2"}, default "cosine"
            ``"cosine"``: ``1 - <q, x> / (|q| |x|)``, clipped below at 0, and 1 when either
            vector is zero. ``"l2"``: ``|q - x|``. Computed in float64 (sums left to right over
            the features), then rounded to float32, which the ranking uses.

        Returns
        -------
        D : numpy.ndarray of float32, shape (nq, k)
            Feature distances, ascending along each row; padding ``inf``.
        I : numpy.ndarray of int64, shape (nq, k)
            Ids; padding ``-1`` when fewer than ``k`` candidates lie within ``radius``.

        Raises
        ------
        UnknownNameError
            ``metric`` is not one of ``"cosine"``, ``"l2"``.
        InvalidInputError
            The index holds no features, ``query_features`` has the wrong shape or non-finite
            values, ``k`` < 1, or ``radius`` < 0.
        CodeFormatError
            ``queries`` is not a ``uint8`` array of shape ``(nq, code_size)``.
        """
        queries = self._check_codes(queries, "queries")
        radius = self._check_radius(radius)
        return self._rerank(queries, query_features, k, metric, radius, radius, dedup=False)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index (codes, ids, features and ``key_bits``) to ``path`` atomically.

        The table itself is not stored; it is rebuilt by the first search after loading.
        """
        self._save(path, {"key_bits": self._key_bits})

    @classmethod
    def _from_file(cls, file: IndexFile) -> HashTableIndex:
        key_bits = _param_int(file, "key_bits")
        if not 1 <= key_bits <= min(file.n_bits, MAX_KEY_BITS):
            raise FileFormatError(
                f"the index file's key_bits ({key_bits}) must be in 1..{min(file.n_bits, 64)}"
            )
        index = cls(file.n_bits, key_bits=key_bits)
        index._restore(file)
        return index


class MultiTableIndex(_TableIndex):
    """``n_tables`` independent hash tables, each keyed by its own slice of the codes.

    Codes are the concatenation of the tables' codes (see :func:`concatenate_codes`):
    ``n_bits = n_tables * bits_per_table``, table ``t`` is keyed by bits
    ``[t * bits_per_table, (t + 1) * bits_per_table)``. With codes from ``L`` independently
    seeded hashers this is the classic ``L``-table LSH scheme (Gionis, Indyk & Motwani, VLDB 1999).

    Parameters
    ----------
    n_tables : int
        Number of tables ``L``, >= 1.
    bits_per_table : int
        Key width ``b`` of each table, 1..64; ``n_tables * bits_per_table <= 4096``.

    Notes
    -----
    :meth:`search` is an **approximate** index search: its candidates are the items sharing a
    bucket within ``probe_radius`` of the query's key in at least one table, ranked exactly by
    the Hamming distance of the full codes. A true neighbour that falls in no probed bucket is
    missed, so results are not exact k-NN in general; with ``probe_radius >= bits_per_table``
    every bucket is probed and they equal :class:`~hashlearn.index.LinearIndex`'s.

    :meth:`range_search` is exact: an item within full distance ``r`` lies within
    ``floor(r / L)`` of the query in at least one table (the full distance is the sum of the
    per-table distances), so probing every table at that radius and filtering by the full
    distance finds every such item.

    The tables are rebuilt, in ``O(L n log n)``, by the first search after items were added or
    removed. Holds fewer than ``2**32`` items.
    """

    type_name = "MultiTableIndex"

    def __init__(self, n_tables: int, bits_per_table: int) -> None:
        n_tables = check_int(n_tables, "n_tables", minimum=1, maximum=MAX_BITS)
        bits_per_table = check_int(
            bits_per_table, "bits_per_table", minimum=1, maximum=MAX_KEY_BITS
        )
        if n_tables * bits_per_table > MAX_BITS:
            raise InvalidInputError(
                f"n_tables * bits_per_table must be <= {MAX_BITS}, got "
                f"{n_tables} * {bits_per_table} = {n_tables * bits_per_table}"
            )
        super().__init__(n_tables * bits_per_table)
        self._n_tables = n_tables
        self._bits_per_table = bits_per_table

    @property
    def n_tables(self) -> int:
        """Number of hash tables."""
        return self._n_tables

    @property
    def bits_per_table(self) -> int:
        """Key width of each table in bits."""
        return self._bits_per_table

    def __repr__(self) -> str:
        return (
            f"MultiTableIndex(n_tables={self.n_tables}, bits_per_table={self.bits_per_table}, "
            f"ntotal={self.ntotal})"
        )

    def _layout(self) -> tuple[list[int], int]:
        b = self._bits_per_table
        return [t * b for t in range(self._n_tables)], b

    @staticmethod
    def _check_probe_radius(probe_radius: Any) -> int:
        return check_int(probe_radius, "probe_radius", minimum=0)

    def search(
        self, queries: NDArray[np.uint8], k: int, probe_radius: int = 0
    ) -> tuple[NDArray[np.int32], NDArray[np.int64]]:
        """The best ``k`` candidates of each query by full-code Hamming distance (approximate).

        Parameters
        ----------
        queries : numpy.ndarray of uint8, shape (nq, code_size)
            Concatenated codes, as stored.
        k : int
            Number of results, >= 1.
        probe_radius : int, default 0
            Per-table key radius probed: 0 looks at the query's own bucket in each table.
            ``>= bits_per_table`` probes every bucket (then results are exact).

        Returns
        -------
        D : numpy.ndarray of int32, shape (nq, k)
            Hamming distances of the full codes, ascending; padding ``2**31 - 1``.
        I : numpy.ndarray of int64, shape (nq, k)
            Ids, ties by id ascending; padding ``-1`` when fewer than ``k`` candidates.

        Raises
        ------
        CodeFormatError
            ``queries`` is not a ``uint8`` array of shape ``(nq, code_size)``.
        InvalidInputError
            ``k`` < 1 or ``probe_radius`` < 0.
        """
        queries = self._check_codes(queries, "queries")
        k = self._check_k(k)
        probe_radius = self._check_probe_radius(probe_radius)
        return self._top_k(queries, k, probe_radius, dedup=True)

    def range_search(
        self, queries: NDArray[np.uint8], radius: int
    ) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.int64]]:
        """Every item within full Hamming distance ``radius`` (inclusive) of each query; exact.

        Probes each table at radius ``radius // n_tables`` (pigeonhole: see the class notes) and
        keeps candidates within ``radius`` on the full code.

        Parameters
        ----------
        queries : numpy.ndarray of uint8, shape (nq, code_size)
        radius : int
            Largest Hamming distance returned, >= 0.

        Returns
        -------
        lims : numpy.ndarray of int64, shape (nq + 1,)
        D : numpy.ndarray of int32, shape (lims[-1],)
            Ascending within each query.
        I : numpy.ndarray of int64, shape (lims[-1],)
            Equal distances ordered by id ascending.

        Raises
        ------
        CodeFormatError
            ``queries`` is not a ``uint8`` array of shape ``(nq, code_size)``.
        InvalidInputError
            ``radius`` is not an integer >= 0.
        """
        queries = self._check_codes(queries, "queries")
        radius = self._check_radius(radius)
        return self._range(queries, radius // self._n_tables, radius, dedup=True)

    def search_rerank(
        self,
        queries: NDArray[np.uint8],
        query_features: Any,
        k: int,
        probe_radius: int = 0,
        metric: str = "cosine",
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """The candidates of :meth:`search`, re-ranked by feature distance.

        Parameters
        ----------
        queries : numpy.ndarray of uint8, shape (nq, code_size)
        query_features : array-like of float, shape (nq, n_features)
        k : int
            Number of results, >= 1.
        probe_radius : int, default 0
            Per-table key radius probed.
        metric : {"cosine", "l2"}, default "cosine"
            As in :meth:`HashTableIndex.search_rerank`.

        Returns
        -------
        D : numpy.ndarray of float32, shape (nq, k)
            Feature distances, ascending; padding ``inf``.
        I : numpy.ndarray of int64, shape (nq, k)
            Ids, ties by id ascending; padding ``-1``.

        Raises
        ------
        UnknownNameError
            ``metric`` is unknown.
        InvalidInputError
            No stored features, bad ``query_features``, ``k`` < 1 or ``probe_radius`` < 0.
        CodeFormatError
            ``queries`` is not a ``uint8`` array of shape ``(nq, code_size)``.
        """
        queries = self._check_codes(queries, "queries")
        probe_radius = self._check_probe_radius(probe_radius)
        return self._rerank(
            queries, query_features, k, metric, probe_radius, self.n_bits, dedup=True
        )

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index (codes, ids, features and the table layout) to ``path`` atomically.

        The tables are not stored; they are rebuilt by the first search after loading.
        """
        self._save(path, {"n_tables": self._n_tables, "bits_per_table": self._bits_per_table})

    @classmethod
    def _from_file(cls, file: IndexFile) -> MultiTableIndex:
        n_tables = _param_int(file, "n_tables")
        bits_per_table = _param_int(file, "bits_per_table")
        if not (1 <= bits_per_table <= MAX_KEY_BITS and n_tables * bits_per_table == file.n_bits):
            raise FileFormatError(
                f"the index file's layout ({n_tables} tables of {bits_per_table} bits) does not "
                f"match its {file.n_bits}-bit codes"
            )
        index = cls(n_tables, bits_per_table)
        index._restore(file)
        return index


def concatenate_codes(codes: Any, bits_per_table: int) -> NDArray[np.uint8]:
    """Concatenate ``L`` sets of ``bits_per_table``-bit codes into ``L * bits_per_table``-bit codes.

    Bit ``i`` of the ``t``-th set becomes bit ``t * bits_per_table + i`` of the result, so
    :class:`MultiTableIndex` keys table ``t`` by the ``t``-th set. ``bits_per_table`` need not be
    a multiple of 8.

    Parameters
    ----------
    codes : sequence of numpy.ndarray of uint8, each of shape (n, ceil(bits_per_table / 8))
        The tables' codes, e.g. ``[hasher.encode(X) for hasher in hashers]``, same ``n``.
    bits_per_table : int
        Width of each set of codes, >= 1; ``L * bits_per_table <= 4096``.

    Returns
    -------
    numpy.ndarray of uint8, shape (n, ceil(L * bits_per_table / 8))

    Raises
    ------
    InvalidInputError
        No code sets, different numbers of rows, or too many bits in all.
    CodeFormatError
        A set is not packed ``bits_per_table``-bit codes.

    Examples
    --------
    >>> import numpy as np
    >>> from hashlearn.index.hash_table import concatenate_codes
    >>> a = np.array([[0b101]], dtype=np.uint8)   # 3-bit code: bits 1, 0, 1
    >>> b = np.array([[0b011]], dtype=np.uint8)   # 3-bit code: bits 1, 1, 0
    >>> bin(int(concatenate_codes([a, b], 3)[0, 0]))
    '0b11101'
    """
    b = check_int(bits_per_table, "bits_per_table", minimum=1, maximum=MAX_BITS)
    if isinstance(codes, np.ndarray) or not hasattr(codes, "__len__"):
        raise InvalidInputError(
            f"codes must be a list of code arrays (one per table), got {type(codes).__name__}"
        )
    parts = [check_codes(c, b, name=f"codes[{t}]") for t, c in enumerate(codes)]
    if not parts:
        raise InvalidInputError("codes must hold at least one code array")
    total = len(parts) * b
    if total > MAX_BITS:
        raise InvalidInputError(
            f"{len(parts)} tables of {bits_per_table} bits make {total} bits, more than {MAX_BITS}"
        )
    n = len(parts[0])
    for t, part in enumerate(parts):
        if len(part) != n:
            raise InvalidInputError(
                f"every code array must have the same number of rows: codes[0] has {n}, "
                f"codes[{t}] has {len(part)}"
            )
    out_words = np.zeros((n, (total + 63) // 64), dtype=np.uint64)
    for t, part in enumerate(parts):
        words = _as_words(part)
        for w in range(words.shape[1]):
            offset = t * b + 64 * w  # bit of the result receiving this word's bit 0
            w0, shift = divmod(offset, 64)
            out_words[:, w0] |= words[:, w] << np.uint64(shift)
            if shift and w0 + 1 < out_words.shape[1]:
                out_words[:, w0 + 1] |= words[:, w] >> np.uint64(64 - shift)
    width = n_bytes(total)
    return np.ascontiguousarray(
        out_words.view(np.uint8).reshape(n, 8 * out_words.shape[1])[:, :width]
    )
