"""Hamming scans compiled by numba: the pure fallback of the native kernels (and their reference).

Codes are seen as rows of unsigned words (:func:`words_view`: the widest of 8, 4, 2 or 1 bytes
that divides the code size, a view without a copy), so the Hamming distance of two codes is the
sum of :func:`popcount64` over the XOR of their words.

Kernels are single-threaded ``numba.njit(nogil=True)`` functions run side by side on the threads
of :mod:`hashlearn._parallel` (one setting, :func:`hashlearn.set_num_threads`).
"""

from __future__ import annotations

import numba
import numpy as np
from numba.np.unsafe.ndarray import to_fixed_tuple

from hashlearn._parallel import get_num_threads, parallel_map
from hashlearn.codes.kernels.popcount import popcount64
from hashlearn.codes.keys import (
    EMPTY_KEY,
    RANK_BITS,
    heap_replace_top,
    key_distance,
    make_key,
)

__all__ = ["distances", "knn_search", "range_search", "words_view"]


# ---------------------------------------------------------------------------------------------
# Exact scans (LinearIndex)
#
# A result is one int64 key (hashlearn.codes.keys: ``distance << RANK_BITS | rank``, ``rank``
# the item's position in ascending id order), so comparing keys compares (distance, id) and the
# k smallest keys are the k nearest items with ties broken by id.
#
# The scan is compute-bound by design. Each work unit takes a group of queries and a part of the
# database, and walks that part in blocks of ``block_codes`` codes that stay in cache while every
# query of the unit passes over them, so the database is read from memory once per unit, not once
# per query. The innermost loop serves QUERY_GROUP queries at once: each code is loaded once and
# compared with four query words held in registers, and the only per-pair work is xor, popcount
# and a compare against the query's current bound (its k-th best distance, or the radius). The
# rare pair that passes is appended to a small buffer, applied every SUB_BLOCK items by
# ``_flush`` (heap insertion, count, or write). The loop holds no call, which would force the
# query words out of registers, and its data-dependent appends keep it scalar: on CPUs without a
# vector popcount (AVX2), vectorised popcounts measured slower than scalar ``popcnt``.

QUERY_GROUP = 4
SUB_BLOCK = 256  # items scanned between applications of the recorded hits
KNN, COUNT, FILL = 0, 1, 2


@numba.njit(nogil=True, cache=True)
def _flush(mode, n_hits, hit_rows, hit_keys, bounds, heaps, counts, keys, cursor):
    """Apply ``n_hits`` recorded hits (query row, key) and update the rows' bounds."""
    for h in range(n_hits):
        q = hit_rows[h]
        key = hit_keys[h]
        if mode == KNN:
            heap = heaps[q]
            if key < heap[0]:
                heap_replace_top(heap, key)
                bounds[q] = key_distance(heap[0])
        elif mode == COUNT:
            counts[q] += 1
        else:
            keys[cursor[q]] = key
            cursor[q] += 1


@numba.njit(nogil=True, cache=True)
def _scan_one_word(block, block_rank, offset, group, bound, g, hit_rows, hit_keys):
    """Record the items of ``block`` (one word per code) within ``bound`` of four queries.

    The hot loop: four query words held in registers, each item loaded once, and per pair only
    xor, popcount and one compare; a hit (rare once a top-k has filled) is appended to
    ``hit_rows`` / ``hit_keys``. Returns the number of hits.
    """
    a0, a1, a2, a3 = group[0, 0], group[0, 1], group[0, 2], group[0, 3]
    w0, w1, w2, w3 = bound[0], bound[1], bound[2], bound[3]
    n_hits = 0
    for j in range(block.shape[0]):
        x = numba.uint64(block[j, 0])
        e0 = numba.int64(popcount64(a0 ^ x))
        e1 = numba.int64(popcount64(a1 ^ x))
        e2 = numba.int64(popcount64(a2 ^ x))
        e3 = numba.int64(popcount64(a3 ^ x))
        if e0 <= w0:
            hit_rows[n_hits] = g
            hit_keys[n_hits] = make_key(e0, block_rank[j] + offset)
            n_hits += 1
        if e1 <= w1:
            hit_rows[n_hits] = g + 1
            hit_keys[n_hits] = make_key(e1, block_rank[j] + offset)
            n_hits += 1
        if e2 <= w2:
            hit_rows[n_hits] = g + 2
            hit_keys[n_hits] = make_key(e2, block_rank[j] + offset)
            n_hits += 1
        if e3 <= w3:
            hit_rows[n_hits] = g + 3
            hit_keys[n_hits] = make_key(e3, block_rank[j] + offset)
            n_hits += 1
    return n_hits


@numba.njit(nogil=True, cache=True)
def _scan_words(block, block_rank, offset, group, bound, g, hit_rows, hit_keys):
    """:func:`_scan_one_word` for codes of any number of words."""
    words = group.ravel()
    n_words = block.shape[1]
    return _scan_words_body(block, block_rank, offset, bound, g, hit_rows, hit_keys, words, n_words)


@numba.njit(inline="always")
def _record(hit_rows, hit_keys, n_hits, row, distance, rank):
    hit_rows[n_hits] = row
    hit_keys[n_hits] = make_key(distance, rank)
    return n_hits + 1


@numba.njit(inline="always")
def _scan_words_body(block, block_rank, offset, bound, g, hit_rows, hit_keys, words, n_words):
    """The loop of :func:`_scan_words`: query words in ``words`` (array or tuple), word-major."""
    w0, w1, w2, w3 = bound[0], bound[1], bound[2], bound[3]
    n_hits = 0
    for j in range(block.shape[0]):
        e0 = e1 = e2 = e3 = numba.uint64(0)
        for w in range(n_words):
            x = numba.uint64(block[j, w])
            e0 += popcount64(words[QUERY_GROUP * w] ^ x)
            e1 += popcount64(words[QUERY_GROUP * w + 1] ^ x)
            e2 += popcount64(words[QUERY_GROUP * w + 2] ^ x)
            e3 += popcount64(words[QUERY_GROUP * w + 3] ^ x)
        if numba.int64(e0) <= w0:
            n_hits = _record(hit_rows, hit_keys, n_hits, g, numba.int64(e0), block_rank[j] + offset)
        if numba.int64(e1) <= w1:
            n_hits = _record(
                hit_rows, hit_keys, n_hits, g + 1, numba.int64(e1), block_rank[j] + offset
            )
        if numba.int64(e2) <= w2:
            n_hits = _record(
                hit_rows, hit_keys, n_hits, g + 2, numba.int64(e2), block_rank[j] + offset
            )
        if numba.int64(e3) <= w3:
            n_hits = _record(
                hit_rows, hit_keys, n_hits, g + 3, numba.int64(e3), block_rank[j] + offset
            )
    return n_hits


# :func:`_scan_words` for codes of exactly 2, 3 and 4 words. The query words are copied into a
# tuple of known length, which the compiler keeps in registers (or on the stack, which it knows
# nothing else writes) instead of re-reading them from an array on every item: about twice as
# fast. The word count is a literal in each function's source, not a closure variable: numba's
# on-disk cache told closure instances apart unreliably and served one's code for another.


@numba.njit(nogil=True, cache=True)
def _scan_two_words(block, block_rank, offset, group, bound, g, hit_rows, hit_keys):
    words = to_fixed_tuple(group.ravel(), 8)
    return _scan_words_body(block, block_rank, offset, bound, g, hit_rows, hit_keys, words, 2)


@numba.njit(nogil=True, cache=True)
def _scan_three_words(block, block_rank, offset, group, bound, g, hit_rows, hit_keys):
    words = to_fixed_tuple(group.ravel(), 12)
    return _scan_words_body(block, block_rank, offset, bound, g, hit_rows, hit_keys, words, 3)


@numba.njit(nogil=True, cache=True)
def _scan_four_words(block, block_rank, offset, group, bound, g, hit_rows, hit_keys):
    words = to_fixed_tuple(group.ravel(), 16)
    return _scan_words_body(block, block_rank, offset, bound, g, hit_rows, hit_keys, words, 4)


@numba.njit(nogil=True, cache=True)
def _scan_unit(
    db, rank, queries, q0, q1, d0, d1, block_codes, mode, bounds, heaps, counts,
    keys, cursor,
):  # fmt: skip
    """Scan items ``d0:d1`` for query rows ``q0:q1`` (whole groups) and apply the hits.

    Items are walked in blocks of ``block_codes`` that every query group of the unit passes over
    while the block is in cache, and within a block in sub-blocks of SUB_BLOCK items, after each
    of which the recorded hits are applied (:func:`_flush`) and the bounds tighten.
    """
    nw = db.shape[1]
    identity = rank.shape[0] == 0  # an item's rank is its position
    counting = np.arange(SUB_BLOCK, dtype=np.int64)
    group = np.empty((nw, QUERY_GROUP), dtype=np.uint64)
    hit_rows = np.empty(SUB_BLOCK * QUERY_GROUP, dtype=np.int64)
    hit_keys = np.empty(SUB_BLOCK * QUERY_GROUP, dtype=np.int64)
    for b0 in range(d0, d1, block_codes):
        b1 = min(b0 + block_codes, d1)
        for g in range(q0, q1, QUERY_GROUP):
            for w in range(nw):
                for i in range(QUERY_GROUP):
                    group[w, i] = queries[g + i, w]
            for s0 in range(b0, b1, SUB_BLOCK):
                s1 = min(s0 + SUB_BLOCK, b1)
                bound = bounds[g : g + QUERY_GROUP]
                if identity:
                    block_rank, offset = counting, s0
                else:
                    block_rank, offset = rank[s0:s1], 0
                args = (db[s0:s1], block_rank, offset, group, bound, g, hit_rows, hit_keys)
                if nw == 1:
                    n_hits = _scan_one_word(*args)
                elif nw == 2:
                    n_hits = _scan_two_words(*args)
                elif nw == 3:
                    n_hits = _scan_three_words(*args)
                elif nw == 4:
                    n_hits = _scan_four_words(*args)
                else:
                    n_hits = _scan_words(*args)
                if n_hits:
                    _flush(mode, n_hits, hit_rows, hit_keys, bounds, heaps, counts, keys, cursor)


@numba.njit(nogil=True, cache=True)
def _sort_segments(keys, lims):
    """Sort ``keys[lims[i]:lims[i + 1]]`` for every ``i``."""
    for i in range(lims.shape[0] - 1):
        keys[lims[i] : lims[i + 1]].sort()


def _plan(n: int, n_rows: int, code_size: int) -> tuple[int, int, int]:
    """``(query_block, n_parts, block_codes)`` for ``n_rows`` query rows (whole groups).

    Enough units for every thread (two per thread when there are enough queries, for balance);
    the database is split into parts only when there are fewer query groups than threads, since
    each part of a unit re-reads its block of queries. ``block_codes`` codes take 128 KiB, an L2
    share on common CPUs.
    """
    threads = get_num_threads()
    groups = n_rows // QUERY_GROUP
    query_block = QUERY_GROUP * max(1, -(-groups // (2 * threads)))
    n_qblocks = -(-n_rows // query_block)
    n_parts = max(1, min(-(-threads // n_qblocks), n // 4096 + 1))
    block_codes = max(1024, (128 * 1024) // code_size)
    return query_block, n_parts, block_codes


def _scan(
    db: np.ndarray,
    rank: np.ndarray,
    queries: np.ndarray,
    mode: int,
    bound: int,
    plan: tuple[int, int, int],
    heaps: np.ndarray,
    counts: np.ndarray,
    keys: np.ndarray,
    cursor: np.ndarray,
) -> None:
    """Run every (query block, database part) unit of ``plan`` on the thread pool.

    ``queries`` has whole groups of QUERY_GROUP rows; rows past the real queries are padding.
    ``heaps``, ``counts`` and ``cursor`` have a leading axis of parts.
    """
    query_block, n_parts, block_codes = plan
    n, n_rows, n_real = len(db), len(queries) + (-len(queries) % QUERY_GROUP), len(queries)
    if n_rows != n_real:
        queries = np.concatenate([queries, np.repeat(queries[-1:], n_rows - n_real, axis=0)])
    part = -(-n // n_parts)

    def unit(q0: int, q1: int, p: int) -> None:
        bounds = np.full(n_rows, bound, dtype=np.int64)
        if mode == KNN:
            bounds[q0:q1] = heaps[p, q0:q1, 0] >> RANK_BITS
        bounds[max(q0, n_real) : q1] = -1  # padding rows find nothing
        d0, d1 = p * part, min((p + 1) * part, n)
        if d0 < d1:
            _scan_unit(
                db, rank, queries, q0, q1, d0, d1, block_codes, mode, bounds,
                heaps[p], counts[p], keys, cursor[p],
            )  # fmt: skip

    tasks = [
        (q0, min(q0 + query_block, n_rows), p)
        for q0 in range(0, n_rows, query_block)
        for p in range(n_parts)
    ]
    parallel_map(unit, tasks)


def knn_search(db: np.ndarray, rank: np.ndarray | None, queries: np.ndarray, k: int) -> np.ndarray:
    """Exact k smallest keys of every query, ``(nq, k)`` sorted, ``EMPTY_KEY`` past ``len(db)``.

    ``db`` and ``queries`` are 2-D arrays of unsigned words of one dtype (:func:`words_view`);
    ``rank`` gives each item's rank in id order, ``None`` when it is the item's position.
    """
    rank = _as_rank(rank)
    nq = len(queries)
    n_rows = nq + (-nq % QUERY_GROUP)
    plan = _plan(len(db), n_rows, db.shape[1] * db.itemsize)
    heaps = np.full((plan[1], n_rows, k), EMPTY_KEY, dtype=np.int64)
    unused = np.empty((plan[1], 0), dtype=np.int64)
    _scan(db, rank, queries, KNN, 0, plan, heaps, unused, unused[0], unused)
    if plan[1] == 1:
        return np.sort(heaps[0, :nq], axis=1)
    merged = np.concatenate(list(heaps[:, :nq]), axis=1)
    return np.sort(np.partition(merged, k - 1, axis=1)[:, :k], axis=1)


def range_search(
    db: np.ndarray, rank: np.ndarray | None, queries: np.ndarray, radius: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(lims, keys)``: keys of items within ``radius`` of each query, sorted per query.

    Two passes over the database: one counts each query's results, one writes them in place.
    Arguments as for :func:`knn_search`.
    """
    rank = _as_rank(rank)
    nq = len(queries)
    n_rows = nq + (-nq % QUERY_GROUP)
    plan = _plan(len(db), n_rows, db.shape[1] * db.itemsize)
    n_parts = plan[1]
    unused_heaps = np.empty((n_parts, 0, 1), dtype=np.int64)
    counts = np.zeros((n_parts, n_rows), dtype=np.int64)
    _scan(db, rank, queries, COUNT, radius, plan, unused_heaps, counts, counts[0, :0], counts)
    counts = counts[:, :nq]
    lims = np.zeros(nq + 1, dtype=np.int64)
    np.cumsum(counts.sum(axis=0), out=lims[1:])
    # Part p of query q writes from lims[q] + (what parts 0..p-1 found for q).
    cursor = np.zeros((n_parts, n_rows), dtype=np.int64)
    cursor[:, :nq] = lims[:-1] + np.cumsum(counts, axis=0) - counts
    keys = np.empty(int(lims[-1]), dtype=np.int64)
    _scan(db, rank, queries, FILL, radius, plan, unused_heaps, cursor, keys, cursor)
    step = max(1, -(-nq // (2 * get_num_threads())))
    parallel_map(
        _sort_segments, [(keys, lims[q0 : min(q0 + step, nq) + 1]) for q0 in range(0, nq, step)]
    )
    return lims, keys


@numba.njit(nogil=True, cache=True)
def _distances(db, first, last, queries, out):
    for q in range(queries.shape[0]):
        for i in range(first, last):
            total = numba.uint64(0)
            for w in range(db.shape[1]):
                total += popcount64(numba.uint64(db[i, w] ^ queries[q, w]))
            out[q, i - first] = total


def distances(db: np.ndarray, first: int, last: int, queries: np.ndarray) -> np.ndarray:
    """Every distance of ``queries`` to ``db[first:last]``, ``uint16 (nq, last - first)``
    (arguments as for :func:`knn_search`)."""
    out = np.empty((len(queries), last - first), dtype=np.uint16)
    _distances(db, first, last, queries, out)
    return out


def _as_rank(rank: np.ndarray | None) -> np.ndarray:
    return np.empty(0, dtype=np.int64) if rank is None else np.ascontiguousarray(rank, np.int64)


def words_view(codes: np.ndarray) -> np.ndarray:
    """``codes`` (C-contiguous ``uint8 (n, code_size)``) as ``(n, w)`` words, without a copy.

    The word is the widest of 8, 4, 2, 1 bytes dividing ``code_size``.
    """
    code_size = codes.shape[1]
    for itemsize, dtype in ((8, np.uint64), (4, np.uint32), (2, np.uint16)):
        if code_size % itemsize == 0:
            return codes.view(dtype)
    return codes
