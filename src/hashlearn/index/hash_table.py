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
  ``r`` until ``k`` items lie within it makes :meth:`HashTableIndex.search` exact too. For the same
  reason a search may stop, in any table, once the probed key radius reaches the distance within
  which ``k`` items were found.
* With ``L`` tables covering disjoint bit ranges of the code, the full distance is the sum of the
  ``L`` per-table distances; an item within ``r`` of the query is within ``floor(r / L)`` of it in
  at least one table (pigeonhole), so :meth:`MultiTableIndex.range_search` is exact as well. An
  item found in several tables is kept by the first only: a later table skips the items whose key
  in an earlier table lies within the probed radius.
* The buckets within key radius ``r`` are enumerated by flipping up to ``r`` bits of the query key,
  ``sum_{i <= r} C(key_bits, i)`` probes. When that exceeds the number of non-empty buckets
  (divided by 8, the cost of one random probe relative to reading one key in order, measured on
  random codes), the bucket keys are scanned instead (``popcount(key ^ query_key) <= r``): a large
  radius costs at most one pass over the buckets, and never more memory.

The tables are built lazily: the first search after an ``add`` or ``remove_ids`` sorts the keys,
``O(n log n)`` per table; later searches reuse them. They are not stored in index files but rebuilt
on the first search after loading. Queries are searched in blocks on the index threads
(:func:`hashlearn.index.set_num_threads`); fewer than 8 queries run in the calling thread.
"""

from __future__ import annotations

import bisect
import itertools
import math
from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray

from hashlearn._parallel import get_num_threads, parallel_map
from hashlearn._validation import _as_numeric_array, _check_finite, check_int
from hashlearn.codes import MAX_BITS, check_codes, n_bytes
from hashlearn.codes._kernels import popcount64
from hashlearn.codes.distance import as_words
from hashlearn.exceptions import FileFormatError, InvalidInputError, UnknownNameError
from hashlearn.index._format import IndexFile
from hashlearn.index.base import PAD_DISTANCE, PAD_ID, BinaryIndex

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
# What a search ranks its candidates by (the kernels' ``metric``).
_HAMMING, _COSINE, _L2 = 0, 1, 2
_METRIC_CODES = {"cosine": _COSINE, "l2": _L2}
# ``k`` of a search that keeps every candidate within its distance bound.
_ALL = np.iinfo(np.int64).max
# A probe (a random access to the bucket lookup table) costs about as much as scanning this many
# bucket keys in order: bit flips are enumerated while probes * _PROBE_COST <= buckets.
_PROBE_COST = 8
# Fewer queries than this are searched on the calling thread alone (see _query_blocks).
_MIN_PARALLEL_QUERIES = 8
# Fibonacci hashing multiplier (2**64 / golden ratio) for the open-addressing bucket lookup.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


# ---------------------------------------------------------------------------------------------
# Compiled kernels. What they read is passed as three tuples:
#
# db, the items and L tables over them (built by _SearchState):
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
# search, what one call looks for (built by _SearchState.search):
#   width         key bits of every table
#   levels        int64 (L,): key distances 0 .. levels[t] - 1 are probed by enumerating bit
#                 flips, the rest (up to probe_radius) by scanning the bucket keys
#   probe_radius  largest key distance probed
#   k             the bound tightens to the distance within which k items were found (_ALL: never)
#   max_distance  the first bound on the full Hamming distance
# and beside it n_found, room for the buckets of one enumerated level.
#
# query, one query's row and scratch arrays (reused from query to query by a block):
#   qrow (w,) uint64, qkeys (L,) uint64, state (3,) int64 = [bound, stored items within bound,
#   stored items], within (64 w + 1,) int64 = stored items per distance
# ---------------------------------------------------------------------------------------------


@numba.njit(inline="always")
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


@numba.njit(inline="always")
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
def _probe_level(qkey, width, d, keys, lo, slots, shift, found):  # pragma: no cover - compiled
    """Store in ``found`` the buckets (numbered from ``lo``) whose key differs from ``qkey`` in
    exactly ``d`` of its ``width`` bits; return how many there are.

    The ``C(width, d)`` flip masks are enumerated in increasing order, each next one by Gosper's
    hack (HAKMEM item 175, Beeler, Gosper & Schroeppel, MIT AI Memo 239, 1972).
    """
    one = np.uint64(1)
    flip = np.uint64(0)
    last = flip
    if d > 0:
        flip = ~flip >> np.uint64(64 - d)  # the lowest d bits
        last = flip << np.uint64(width - d)  # the highest d bits of the key
    n_found = 0
    while True:
        j = _lookup(qkey ^ flip, keys, slots, shift)
        if j >= 0:
            found[n_found] = lo + j
            n_found += 1
        if flip == last:
            return n_found
        low = flip & (~flip + one)
        ripple = flip + low
        flip = ripple | (((ripple ^ flip) >> np.uint64(2)) >> popcount64(low - one))


@numba.njit(inline="always")
def _found_before(words, p, t, starts, width, qkeys, probe_radius):  # pragma: no cover
    """Whether a table before ``t`` holds item ``p`` in a bucket probed for the query."""
    for u in range(t):
        key_distance = np.int64(popcount64(_key_of(words[p], starts[u], width) ^ qkeys[u]))
        if key_distance <= probe_radius:
            return True
    return False


@numba.njit(inline="always")
def _next_near_bucket(keys, qkey, i, last, min_key_distance, key_bound):  # pragma: no cover
    """The first bucket of ``i .. last - 1`` whose key distance is within
    ``[min_key_distance, key_bound]``; ``last`` when there is none."""
    while i < last:
        key_distance = np.int64(popcount64(keys[i] ^ qkey))
        if key_distance >= min_key_distance and key_distance <= key_bound:
            return i
        i += 1
    return last


@numba.njit(cache=True, nogil=True)
def _visit_buckets(query, t, db, search, buckets, first, candidates):  # pragma: no cover
    """Store in ``candidates`` the items of table ``t``'s ``buckets`` from ``first`` on that lie
    within the bound and that no earlier table yielded, as keys ``distance << 40 | rank``; tighten
    the bound.

    ``buckets = (scan, found, start, last, min_key_distance)``: ``found[start:last]``, or when
    ``scan`` the buckets ``start:last`` whose key distance is at least ``min_key_distance`` and
    within the probe radius and the bound. Returns the first bucket not visited because
    ``candidates`` has no room for it (``last`` when all were). Kept free of array reassignment:
    numba then compiles the loop without reference counting, several times faster.
    """
    qrow, qkeys, state, within = query
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
            distance = np.int64(0)
            for w in range(qrow.shape[0]):
                distance += np.int64(popcount64(qrow[w] ^ words[p, w]))
            if distance > state[0]:
                continue
            if t > 0 and _found_before(words, p, t, starts, width, qkeys, probe_radius):
                continue
            candidates[state[2]] = (distance << _RANK_BITS) | rank[p]
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
    offsets, state = db[5], query[2]
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
    qrow, qkeys, state, within = query
    _words, _rank, starts, keys, bucket_lo, _offsets, _positions, slots, slot_lo, shifts = db
    width, levels, probe_radius, _k, max_distance = search
    state[0], state[1], state[2] = max_distance, 0, 0
    within[: max_distance + 1] = 0
    for t in range(starts.shape[0]):
        qkeys[t] = _key_of(qrow, starts[t], width)
    for t in range(starts.shape[0]):
        lo, hi = bucket_lo[t], bucket_lo[t + 1]
        table_keys, table_slots = keys[lo:hi], slots[slot_lo[t] : slot_lo[t + 1]]
        visited = 0
        for d in range(min(levels[t], probe_radius + 1)):
            n_found = _probe_level(
                qkeys[t], width, d, table_keys, lo, table_slots, shifts[t], found
            )
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
        if (candidates[i] >> _RANK_BITS) <= state[0]:
            candidates[m] = candidates[i]
            m += 1
    candidates[:m].sort()
    return m


@numba.njit(inline="always")
def _norm(row):  # pragma: no cover - compiled
    """float64 Euclidean norm of a feature row, summed left to right."""
    total = 0.0
    for j in range(row.shape[0]):
        value = np.float64(row[j])
        total += value * value
    return np.sqrt(total)


@numba.njit(cache=True, nogil=True)
def _row_norms(features):  # pragma: no cover - compiled
    norms = np.empty(features.shape[0], dtype=np.float64)
    for i in range(features.shape[0]):
        norms[i] = _norm(features[i])
    return norms


@numba.njit(inline="always")
def _rank_by_features(keys, qf, rerank, bits):  # pragma: no cover - compiled
    """Turn Hamming keys into ``float32 feature distance bits << 32 | rank`` in place, sorted.

    ``bits`` is a 1-element ``float32`` scratch array (read back as ``uint32``).
    """
    features, norms, position_of_rank, metric = rerank
    q_norm = _norm(qf) if metric == _COSINE else 0.0
    as_uint = bits.view(np.uint32)
    for i in range(keys.shape[0]):
        r = keys[i] & _RANK_MASK
        p = position_of_rank[r]
        total = 0.0
        if metric == _COSINE:
            for j in range(qf.shape[0]):
                total += np.float64(qf[j]) * np.float64(features[p, j])
            value = 1.0
            if q_norm != 0.0 and norms[p] != 0.0:
                value = max(0.0, 1.0 - total / (q_norm * norms[p]))
        else:
            for j in range(qf.shape[0]):
                diff = np.float64(qf[j]) - np.float64(features[p, j])
                total += diff * diff
            value = np.sqrt(total)
        bits[0] = np.float32(value)
        keys[i] = (np.int64(as_uint[0]) << _FEATURE_RANK_BITS) | r
    keys.sort()


@numba.njit(cache=True, nogil=True)
def _range_block(db, search, n_found, qwords):  # pragma: no cover - compiled
    """``(counts (nq,), keys)``: the sorted result keys of each query, one after the other."""
    qkeys, state, within, found, candidates = _block_scratch(db, n_found)
    counts = np.empty(qwords.shape[0], dtype=np.int64)
    out = np.empty(64, dtype=np.int64)
    n_out = 0
    for q in range(qwords.shape[0]):
        candidates = _walk((qwords[q], qkeys, state, within), db, search, found, candidates)
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
def _top_block(db, search, n_found, rerank, qwords, qfeatures, out):  # pragma: no cover
    """The first ``k = out.shape[1]`` result keys of each query into ``out`` (-1 pads): Hamming
    keys, or feature keys when ``rerank``'s metric is not ``_HAMMING``."""
    qkeys, state, within, found, candidates = _block_scratch(db, n_found)
    bits = np.empty(1, dtype=np.float32)
    k = out.shape[1]
    for q in range(qwords.shape[0]):
        candidates = _walk((qwords[q], qkeys, state, within), db, search, found, candidates)
        if rerank[3] == _HAMMING:
            m = _sort_within_bound(candidates, state)
        else:
            m = state[2]
            _rank_by_features(candidates[:m], qfeatures[q], rerank, bits)
        kk = min(k, m)
        out[q, :kk] = candidates[:kk]
        out[q, kk:] = -1


# ---------------------------------------------------------------------------------------------
# Python side
# ---------------------------------------------------------------------------------------------


def _query_blocks(nq: int) -> list[tuple[int, int]]:
    """Ranges of queries searched as separate tasks: one below _MIN_PARALLEL_QUERIES queries,
    else four per thread (queries differ in cost: smaller tasks balance the threads)."""
    n_blocks = 1 if nq < _MIN_PARALLEL_QUERIES else min(nq, 4 * get_num_threads())
    step = -(-nq // n_blocks)
    return [(q0, min(q0 + step, nq)) for q0 in range(0, nq, step)]


def _map_blocks(kernel: Any, shared: tuple[Any, ...], per_query: tuple[np.ndarray, ...]) -> list:
    """``kernel(*shared, *[a[q0:q1] for a in per_query])`` for every block of queries."""
    blocks = _query_blocks(len(per_query[0]))
    tasks = [(*shared, *(array[q0:q1] for array in per_query)) for q0, q1 in blocks]
    return parallel_map(kernel, tasks)


class _SearchState:
    """What searches read, derived from the stored items and rebuilt after each change: the codes
    as words, the ids in order, ``L`` hash tables, and the features' norms.

    Table ``t`` is keyed by the ``width`` code bits from ``starts[t]`` on and stored in CSR form
    (sorted bucket keys, offsets, positions sorted by key) with an open-addressing lookup of its
    keys; building costs ``O(L n log n)`` (one stable argsort of the keys per table).
    """

    __slots__ = (
        "db",
        "n_buckets",
        "nbytes",
        "norms",
        "position_of_rank",
        "scan_from",
        "sorted_ids",
        "width",
    )

    def __init__(self, index: _TableIndex) -> None:
        codes = np.asarray(index._store.codes)
        words = as_words(codes)
        n = len(words)
        self.sorted_ids, rank = index._ids_in_order()
        starts, width = index._layout()
        self.width = width
        key_parts, offset_parts, position_parts, slot_parts, shifts = [], [], [], [], []
        for t, start in enumerate(starts):
            keys = _extract_keys(words, start, width)
            order = np.argsort(keys, kind="stable")
            sorted_keys = keys[order]
            firsts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
            bucket_keys = np.ascontiguousarray(sorted_keys[firsts])
            log_slots = max(1, (2 * len(bucket_keys) - 1).bit_length())  # >= 2 * buckets, >= 2
            shift = np.uint64(64 - log_slots)
            key_parts.append(bucket_keys)
            offset_parts.append(firsts + t * n)
            position_parts.append(order)
            slot_parts.append(_build_slots(bucket_keys, 1 << log_slots, shift))
            shifts.append(shift)
        offset_parts.append(np.array([len(starts) * n]))
        self.n_buckets = [len(keys) for keys in key_parts]
        tables = (
            np.asarray(starts, dtype=np.int64),
            np.concatenate(key_parts).astype(np.uint64),
            np.cumsum([0, *self.n_buckets], dtype=np.int64),
            np.concatenate(offset_parts).astype(np.int64),
            np.concatenate(position_parts).astype(np.int64),
            np.concatenate(slot_parts).astype(np.int64),
            np.cumsum([0, *(len(s) for s in slot_parts)], dtype=np.int64),
            np.asarray(shifts, dtype=np.uint64),
        )
        self.db = (words, rank, *tables)
        # scan_from[t]: the first key radius whose cumulative probes, times _PROBE_COST, exceed
        # table t's buckets; from there on the bucket keys are scanned rather than probed.
        probes = itertools.accumulate(math.comb(width, d) for d in range(width + 1))
        costs = [_PROBE_COST * c for c in probes]
        self.scan_from = [bisect.bisect_right(costs, nb) for nb in self.n_buckets]
        features = index._stored_features()
        self.norms = self.position_of_rank = None
        if features is not None:
            self.norms = _row_norms(features)
            self.position_of_rank = np.empty(n, dtype=np.int64)
            self.position_of_rank[rank] = np.arange(n, dtype=np.int64)
        copied = words if codes.shape[1] % 8 else None  # zero-padded words, not a view
        built = [*tables, self.norms, self.position_of_rank, copied]
        self.nbytes = sum(array.nbytes for array in built if array is not None)

    def search(self, probe_radius: int, k: int | None, max_distance: int) -> tuple[tuple, int]:
        """The kernels' ``search`` tuple and ``n_found``.

        ``k=None`` keeps every candidate within ``max_distance`` (range search, re-ranking):
        each table is then probed by flips alone or scanned alone, whichever is cheaper for the
        whole radius. With a ``k``, low radii are probed first so that the bound tightens early.
        """
        probe_radius = min(probe_radius, self.width)
        levels, n_found = [], 1
        for n_buckets, scan_from in zip(self.n_buckets, self.scan_from, strict=True):
            if scan_from > probe_radius:
                level = probe_radius + 1
            else:
                level = 0 if k is None else scan_from
            levels.append(level)
            if level:  # the widest level enumerated: C(width, d) grows up to d = width / 2
                widest = math.comb(self.width, min(level - 1, self.width // 2))
                n_found = max(n_found, min(n_buckets, widest))
        limit = _ALL if k is None else k
        levels_array = np.array(levels, dtype=np.int64)
        return (self.width, levels_array, probe_radius, limit, max_distance), n_found


def _float32_rows(values: Any, name: str, n_rows: int, n_columns: int | None, what: str) -> Any:
    """``values`` as a finite C-contiguous ``float32`` array of shape ``(n_rows, n_columns)``
    (``n_columns=None``: any width >= 1); ``what`` explains the shape in the error."""
    array = _as_numeric_array(values, name)
    width = array.shape[1] if array.ndim == 2 else -1
    if array.ndim != 2 or len(array) != n_rows or width < 1 or width != (n_columns or width):
        expected = f"({n_rows}, {'d' if n_columns is None else n_columns})"
        raise InvalidInputError(
            f"{name} must be a 2-D array of shape {expected} ({what}), got {array.shape}"
        )
    _check_finite(array, name)
    with np.errstate(over="ignore"):
        array = np.ascontiguousarray(array, dtype=np.float32)
    _check_finite(array, f"{name} (as float32)")
    return array


class _TableIndex(BinaryIndex):
    """What the hash-table indexes share: optional ``float32`` features per item (rows aligned
    with the stored items), the tables of :meth:`_layout` (built lazily), and their searches."""

    def __init__(self, n_bits: int) -> None:
        super().__init__(n_bits)
        self._features: NDArray[np.float32] | None = None  # rows :ntotal of a growable buffer
        self._n_features: int | None = None  # fixed by the first add (0: no features)
        self._state: _SearchState | None = None

    def _layout(self) -> tuple[list[int], int]:
        """First key bit of each table, and the key width."""
        raise NotImplementedError

    # ------------------------------------------------------------------ properties
    @property
    def has_features(self) -> bool:
        """Whether the items carry features (for ``search_rerank``)."""
        return bool(self._n_features)

    @property
    def n_features(self) -> int:
        """Number of feature values per item (0 when the index holds no features)."""
        return self._n_features or 0

    @property
    def nbytes(self) -> int:
        """Bytes held for the items (codes, ids), their features (4 per value) and, once built,
        what searches read: the ``L`` tables (``8 L`` per item, about 40 per bucket and table),
        16 per item with features (norms, positions) and, when ``code_size`` is not a multiple
        of 8, the codes padded to 8-byte words."""
        total = super().nbytes + 4 * self.ntotal * self.n_features
        return total + (self._state.nbytes if self._state is not None else 0)

    # ------------------------------------------------------------------ adding and removing
    def add(self, codes: NDArray[np.uint8], features: Any = None) -> None:
        """Add codes (and their features) with sequential ids ``ntotal, ntotal + 1, ...``.

        Parameters
        ----------
        codes : numpy.ndarray of uint8, shape (n, code_size)
        features : array-like of float, shape (n, d), optional
            Real-valued features of the items, stored as ``float32`` for ``search_rerank``.
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
        """Add codes (and their features, as in :meth:`add`) with caller-chosen ids.

        Parameters
        ----------
        codes : numpy.ndarray of uint8, shape (n, code_size)
        ids : array-like of integers, shape (n,)
            Non-negative, unique within the call and absent from the index.
        features : array-like of float, shape (n, d), optional

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
            if self._n_features:
                raise InvalidInputError(
                    f"this index stores {self._n_features} features per item; pass features= "
                    "with the codes (every add must, once the first did)"
                )
            return None
        if self._n_features == 0:
            raise InvalidInputError(
                "this index stores no features (the first add passed none); add codes without "
                "features, or start a new index"
            )
        what = "one row per code" if self._n_features is None else "as stored in this index"
        return _float32_rows(features, "features", n, self._n_features, what)

    def _append(
        self,
        codes: NDArray[np.uint8],
        ids: NDArray[np.int64],
        features: NDArray[np.float32] | None = None,
    ) -> None:
        """Store validated items and their features (``None``: they have none)."""
        start = self.ntotal
        if start + len(ids) >= _MAX_ITEMS:
            raise InvalidInputError(f"a {type(self).__name__} holds fewer than 2**32 items")
        super()._append(codes, ids)
        if not len(ids):
            return
        if self._n_features is None:
            self._n_features = 0 if features is None else features.shape[1]
        if features is not None:  # a buffer grown by doubling; a read-only one is copied
            end, buffer = start + len(features), self._features
            if buffer is None or end > len(buffer) or not buffer.flags.writeable:
                grown = np.empty((max(end, 2 * start, 16), features.shape[1]), dtype=np.float32)
                if buffer is not None:
                    grown[:start] = buffer[:start]
                self._features = buffer = grown
            buffer[start:end] = features

    def _changed(
        self, added_from: int | None = None, removed: NDArray[np.int64] | None = None
    ) -> None:
        """Drop the tables (rebuilt by the next search) and the removed items' features."""
        super()._changed(added_from, removed)
        self._state = None
        if removed is not None and self._features is not None:
            rows = np.asarray(self._features[: self.ntotal + len(removed)])
            self._features = np.delete(rows, removed, axis=0)

    def reset(self) -> None:
        """Remove every item; the table layout is kept, the feature mode is not (the next add
        sets it again)."""
        super().reset()
        self._features, self._n_features = None, None

    # ------------------------------------------------------------------ persistence
    def _extra_arrays(self) -> dict[str, np.ndarray]:
        """The features (``float32 (ntotal, d)``), kept even when no item is left."""
        if self._features is None:
            return {}
        return {"features": self._features[: self.ntotal]}

    def _restore(self, file: IndexFile) -> None:
        features = file.arrays.get("features")
        if features is None:  # an empty index without features left the feature mode open
            self._features, self._n_features = None, (0 if file.ntotal else None)
            return
        if (
            features.dtype != np.float32
            or features.ndim != 2
            or len(features) != file.ntotal
            or features.shape[1] == 0
        ):
            raise FileFormatError(
                f"the index file should hold float32 features of shape ({file.ntotal}, d >= 1), "
                f"found {features.dtype} {features.shape}"
            )
        if not np.isfinite(features).all():
            raise FileFormatError("the index file holds non-finite features")
        self._features, self._n_features = features, features.shape[1]

    # ------------------------------------------------------------------ searching
    def _stored_features(self) -> NDArray[np.float32] | None:
        return None if self._features is None else np.asarray(self._features[: self.ntotal])

    def _search_state(self) -> _SearchState:
        state = self._state
        if state is None:
            state = self._state = _SearchState(self)
        return state

    def _range(
        self, queries: NDArray[np.uint8], probe_radius: int, max_distance: int
    ) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.int64]]:
        """Items within ``max_distance`` among those in buckets within ``probe_radius``."""
        nq = len(queries)
        lims = np.zeros(nq + 1, dtype=np.int64)
        if nq == 0 or self.ntotal == 0:
            return lims, np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int64)
        state = self._search_state()
        search, n_found = state.search(probe_radius, None, min(max_distance, self.n_bits))
        parts = _map_blocks(_range_block, (state.db, search, n_found), (as_words(queries),))
        np.cumsum(np.concatenate([counts for counts, _ in parts]), out=lims[1:])
        keys = np.concatenate([keys for _, keys in parts])
        return lims, (keys >> _RANK_BITS).astype(np.int32), state.sorted_ids[keys & _RANK_MASK]

    def _top(
        self,
        queries: NDArray[np.uint8],
        k: int,
        probe_radius: int,
        max_distance: int,
        rerank: tuple[NDArray[np.float32], str] | None = None,
    ) -> tuple[NDArray[Any], NDArray[np.int64]]:
        """The best ``k`` items within ``max_distance`` among those in buckets within
        ``probe_radius``, by Hamming distance, or with ``rerank = (query_features, metric)`` by
        feature distance: ``(D int32 or float32 (nq, k), I)``, padded."""
        nq = len(queries)
        labels = np.full((nq, k), PAD_ID, dtype=np.int64)
        if rerank is None:
            distances: NDArray[Any] = np.full((nq, k), PAD_DISTANCE, dtype=np.int32)
        else:
            distances = np.full((nq, k), np.inf, dtype=np.float32)
        if nq == 0 or self.ntotal == 0:
            return distances, labels
        state = self._search_state()
        max_distance = min(max_distance, self.n_bits)
        if rerank is None:
            search, n_found = state.search(probe_radius, k, max_distance)
            query_features = np.empty((nq, 0), dtype=np.float32)
            features = np.empty((0, 1), dtype=np.float32)
            by = (features, np.empty(0), np.empty(0, dtype=np.int64), _HAMMING)
        else:
            search, n_found = state.search(probe_radius, None, max_distance)
            query_features, metric = rerank
            features = self._stored_features()
            by = (features, state.norms, state.position_of_rank, _METRIC_CODES[metric])
        out = np.empty((nq, k), dtype=np.int64)
        per_query = (as_words(queries), query_features, out)
        _map_blocks(_top_block, (state.db, search, n_found, by), per_query)
        valid = out >= 0
        keys = out[valid]
        if rerank is None:
            distances[valid] = keys >> _RANK_BITS
            labels[valid] = state.sorted_ids[keys & _RANK_MASK]
        else:
            distances[valid] = (keys >> _FEATURE_RANK_BITS).astype(np.uint32).view(np.float32)
            labels[valid] = state.sorted_ids[keys & _FEATURE_RANK_MASK]
        return distances, labels

    def _rerank(
        self,
        queries: NDArray[np.uint8],
        query_features: Any,
        k: Any,
        metric: Any,
        probe_radius: int,
        max_distance: int,
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """:meth:`_top` by feature distance, after checking the arguments."""
        if not isinstance(metric, str) or metric not in METRICS:
            raise UnknownNameError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
        k = self._check_k(k)
        if not self._n_features:
            raise InvalidInputError(
                "this index stores no features: pass features= to add / add_with_ids to re-rank"
            )
        what = "one row per query, as many values as the stored features"
        query_features = _float32_rows(
            query_features, "query_features", len(queries), self._n_features, what
        )
        return self._top(queries, k, probe_radius, max_distance, (query_features, metric))


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
    :meth:`search_rerank`. Batches of 8 queries or more are split over the index threads
    (:func:`hashlearn.index.set_num_threads`). Searches may run in several Python threads at
    once, but not while items are added or removed. Holds fewer than ``2**32`` items.

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

    def _params(self) -> dict[str, Any]:
        return {"key_bits": self._key_bits}

    @property
    def n_buckets(self) -> int:
        """Number of non-empty buckets (builds the table if needed)."""
        return self._search_state().n_buckets[0] if self.ntotal else 0

    def search(
        self, queries: NDArray[np.uint8], k: int, max_radius: int | None = None
    ) -> tuple[NDArray[np.int32], NDArray[np.int64]]:
        """The ``k`` nearest items of each query by Hamming distance, probing growing radii.

        Results and errors are those of :meth:`BinaryIndex.search`, and:

        Parameters
        ----------
        max_radius : int, optional
            Largest Hamming distance returned (bounded multi-probe search). ``None``, the
            default, does not bound it: the search is then exact k-NN, identical to
            :meth:`LinearIndex.search <hashlearn.index.LinearIndex.search>`. With a bound, each
            row holds the best ``k`` items within ``max_radius`` (exactly), padded.

        Raises
        ------
        InvalidInputError
            ``max_radius`` is not an integer >= 0.
        """
        queries = self._check_codes(queries, "queries")
        k = self._check_k(k)
        cap = self.n_bits if max_radius is None else check_int(max_radius, "max_radius", minimum=0)
        return self._top(queries, k, cap, cap)

    def range_search(
        self, queries: NDArray[np.uint8], radius: int
    ) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.int64]]:
        """Every item within Hamming distance ``radius`` (inclusive) of each query; exact."""
        queries = self._check_codes(queries, "queries")
        radius = self._check_radius(radius)
        return self._range(queries, radius, radius)

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
        return self._rerank(queries, query_features, k, metric, radius, radius)


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
    n_bits : int, optional
        The code width, ``n_tables * bits_per_table`` (the default); any other value is an error.
        Index files pass it.

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

    def __init__(self, n_tables: int, bits_per_table: int, n_bits: int | None = None) -> None:
        n_tables = check_int(n_tables, "n_tables", minimum=1, maximum=MAX_BITS)
        bits_per_table = check_int(
            bits_per_table, "bits_per_table", minimum=1, maximum=MAX_KEY_BITS
        )
        total = n_tables * bits_per_table
        if total > MAX_BITS:
            raise InvalidInputError(
                f"n_tables * bits_per_table must be <= {MAX_BITS}, got "
                f"{n_tables} * {bits_per_table} = {total}"
            )
        if n_bits is not None and n_bits != total:
            raise InvalidInputError(
                f"n_bits ({n_bits!r}) does not match the layout: {n_tables} tables of "
                f"{bits_per_table} bits make {total}-bit codes"
            )
        super().__init__(total)
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

    def _params(self) -> dict[str, Any]:
        return {"n_tables": self._n_tables, "bits_per_table": self._bits_per_table}

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
        return self._top(queries, k, self._check_probe_radius(probe_radius), self.n_bits)

    def range_search(
        self, queries: NDArray[np.uint8], radius: int
    ) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.int64]]:
        """Every item within Hamming distance ``radius`` (inclusive) of each query; exact (each
        table is probed at radius ``radius // n_tables``: see the class notes)."""
        queries = self._check_codes(queries, "queries")
        radius = self._check_radius(radius)
        return self._range(queries, radius // self._n_tables, radius)

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
        return self._rerank(queries, query_features, k, metric, probe_radius, self.n_bits)


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
        words = as_words(part)
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
