"""Compiled searches of multi-index hashing: exact k-NN (:func:`knn_block`) and range search
(:func:`range_block`) for a block of queries.

The algorithms, and why they are exact, are in the notes of
:class:`~hashlearn.index.MultiIndexHashingIndex`; the table layout and the probing primitives in
:mod:`hashlearn.index._mih_probe`. Results are result keys (:mod:`hashlearn.codes.keys`): the
item's rank in id order under its distance.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from hashlearn.codes.kernels import popcount64, row_distance
from hashlearn.codes.keys import heap_push, heap_replace_top, key_distance, make_key
from hashlearn.index._bits import code_bits, first_mask
from hashlearn.index._mih_probe import (
    BATCH,
    PREFETCH_AHEAD,
    entry_row,
    fill_batch,
    prefetch_entries,
    query_substrings,
)
from hashlearn.index._mih_tables import MAX_SUBSTRING_BITS

__all__ = ["BINOMIAL", "knn_block", "range_block"]

# "No bound yet" for distances (larger than any Hamming distance).
_NO_LIMIT = 1 << 62

# Binomial coefficients C(s, w) for s, w <= 64: the number of probes at radius w in a table of
# s-bit substrings (C(64, 32) < 2**63, so int64 holds them all exactly).
BINOMIAL = np.zeros((MAX_SUBSTRING_BITS + 1, MAX_SUBSTRING_BITS + 1), dtype=np.int64)
for _s in range(MAX_SUBSTRING_BITS + 1):
    for _w in range(_s + 1):
        BINOMIAL[_s, _w] = math.comb(_s, _w)
del _s, _w


@numba.njit(cache=True, nogil=True, inline="always")
def _seen_in_knn(words, row, qsub, sub_start, sub_len, table, radius):
    """Whether the k-NN search met item ``row`` before probing ``table`` at ``radius``.

    By then tables ``< table`` were probed up to ``radius`` and tables ``>= table`` up to
    ``radius - 1``; an item was met iff one of its substrings lies within those radii.
    """
    for i in range(sub_start.shape[0]):
        limit = radius if i < table else radius - 1
        if limit >= 0:
            d = popcount64(code_bits(words, row, sub_start[i], sub_len[i]) ^ qsub[i])
            if np.int64(d) <= limit:
                return True
    return False


@numba.njit(inline="always")
def _heap_offer(heap, size, key):  # pragma: no cover - compiled
    """Offer ``key`` to the max-heap ``heap`` holding ``size`` keys; return the new size.

    The caller has checked that ``key`` enters: the heap is not full or ``key < heap[0]``.
    """
    if size < heap.shape[0]:
        heap_push(heap, size, key)
        return size + 1
    heap_replace_top(heap, key)
    return size


@numba.njit(cache=True, nogil=True)
def _knn_offer(
    e, d, heap, size, entries, words, colocated, qsub, sub_start, sub_len, table, radius
):
    """Offer entry ``e`` (distance ``d``), met in ``table`` at ``radius``, to the top-k heap.

    Returns the heap's new size.
    """
    key = make_key(d, np.int64(entries[e]))
    if size == heap.shape[0] and key >= heap[0]:
        return size
    row = entry_row(e, entries, colocated)
    if _seen_in_knn(words, row, qsub, sub_start, sub_len, table, radius):
        return size
    return _heap_offer(heap, size, key)


@numba.njit(cache=True, nogil=True)
def _knn_entries(
    first, stop, queries, q, heap, size, entries, words, colocated, qsub, sub_start, sub_len,
    table, radius,
):  # fmt: skip
    """Offer the entries ``first .. stop - 1``, met in ``table`` at ``radius``, to the top-k.

    Most entries are farther than the current k-th best, so the loop only computes distances;
    the rare closer ones take the slow path (key, duplicate check, heap). Returns the heap size.
    """
    kk = heap.shape[0]
    limit = key_distance(heap[0]) if size == kk else _NO_LIMIT
    if colocated and words.shape[1] == 1:  # one-word codes read in a row
        query = queries[q, 0]
        for e in range(first, stop):
            d = np.int64(popcount64(words[e, 0] ^ query))
            if d <= limit:
                size = _knn_offer(e, d, heap, size, entries, words, colocated, qsub, sub_start,
                                  sub_len, table, radius)  # fmt: skip
                if size == kk:
                    limit = key_distance(heap[0])
    else:
        for e in range(first, stop):
            d = row_distance(words, entry_row(e, entries, colocated), queries, q)
            if d <= limit:
                size = _knn_offer(e, d, heap, size, entries, words, colocated, qsub, sub_start,
                                  sub_len, table, radius)  # fmt: skip
                if size == kk:
                    limit = key_distance(heap[0])
    return size


@numba.njit(cache=True, nogil=True)
def _knn_one(
    queries, q, heap, sub_start, sub_len, direct, off_ptr, offsets, key_ptr, keys, entries, words,
    colocated, probe_cost,
):  # fmt: skip
    """Exact k-NN of query ``q`` into ``heap`` (its length is k <= n), sorted at the end."""
    m = sub_start.shape[0]
    n = entries.shape[0] // m
    kk = heap.shape[0]
    qsub = query_substrings(queries, q, sub_start, sub_len)
    max_len = sub_len.max()
    lo_buf = np.empty(BATCH, dtype=np.int64)
    hi_buf = np.empty(BATCH, dtype=np.int64)
    size = 0
    spent = 0
    done = False
    for radius in range(max_len + 1):
        for table in range(m):
            length = sub_len[table]
            if radius <= length:
                n_masks = BINOMIAL[length, radius]
                if n_masks > (n - spent) // probe_cost[table]:
                    # Probing would cost more than looking at every item: finish with a scan
                    # of the items not met yet (table 0's entries).
                    size = _knn_entries(0, n, queries, q, heap, size, entries, words, colocated,
                                        qsub, sub_start, sub_len, table, radius)  # fmt: skip
                    done = True
                    break
                spent += n_masks * probe_cost[table]
                base = table * n
                mask = first_mask(radius)
                left = n_masks
                while left > 0:
                    count = min(left, BATCH)
                    mask, filled = fill_batch(table, qsub[table], mask, count, left, direct,
                                               off_ptr, offsets, key_ptr, keys, lo_buf, hi_buf)  # fmt: skip
                    left -= count
                    for t in range(min(PREFETCH_AHEAD, filled)):
                        prefetch_entries(words, base + lo_buf[t], base + hi_buf[t], entries,
                                          colocated)  # fmt: skip
                    for t in range(filled):
                        ahead = t + PREFETCH_AHEAD
                        if ahead < filled:
                            prefetch_entries(words, base + lo_buf[ahead], base + hi_buf[ahead],
                                              entries, colocated)  # fmt: skip
                        size = _knn_entries(base + lo_buf[t], base + hi_buf[t], queries, q, heap,
                                            size, entries, words, colocated, qsub, sub_start,
                                            sub_len, table, radius)  # fmt: skip
            # Every item within m * radius + table of the query has now been met.
            if size == kk and key_distance(heap[0]) <= m * radius + table:
                done = True
                break
        if done:
            break
    heap[:size].sort()


@numba.njit(cache=True, nogil=True)
def knn_block(
    sub_start, sub_len, direct, off_ptr, offsets, key_ptr, keys, entries, words, colocated,
    probe_cost, queries, out,
):  # fmt: skip
    """:func:`_knn_one` for a block of queries (rows of ``queries``), into ``out`` (``(nq, k)``)."""
    for q in range(queries.shape[0]):
        _knn_one(queries, q, out[q], sub_start, sub_len, direct, off_ptr, offsets, key_ptr, keys,
                 entries, words, colocated, probe_cost)  # fmt: skip


@numba.njit(cache=True, nogil=True)
def _range_offer(e, d, out, at, found, room, entries, words, colocated, qsub, sub_start, sub_len,
                 table, probe_radius):  # fmt: skip
    """Record entry ``e`` (within the radius, met in ``table``) unless an earlier table met it.

    Returns the number of results found so far; only the first ``room`` are written.
    """
    row = entry_row(e, entries, colocated)
    for i in range(table):
        if probe_radius[i] >= 0:
            sub = code_bits(words, row, sub_start[i], sub_len[i])
            if np.int64(popcount64(sub ^ qsub[i])) <= probe_radius[i]:
                return found
    if found < room:
        out[at + found] = make_key(d, np.int64(entries[e]))
    return found + 1


@numba.njit(cache=True, nogil=True)
def _range_entries(
    first, stop, queries, q, radius, out, at, found, room, entries, words, colocated, qsub,
    sub_start, sub_len, table, probe_radius,
):  # fmt: skip
    """Record the entries ``first .. stop - 1`` (met in ``table``) within ``radius``."""
    if colocated and words.shape[1] == 1:  # one-word codes read in a row
        query = queries[q, 0]
        for e in range(first, stop):
            d = np.int64(popcount64(words[e, 0] ^ query))
            if d <= radius:
                found = _range_offer(e, d, out, at, found, room, entries, words, colocated, qsub,
                                     sub_start, sub_len, table, probe_radius)  # fmt: skip
    else:
        for e in range(first, stop):
            d = row_distance(words, entry_row(e, entries, colocated), queries, q)
            if d <= radius:
                found = _range_offer(e, d, out, at, found, room, entries, words, colocated, qsub,
                                     sub_start, sub_len, table, probe_radius)  # fmt: skip
    return found


@numba.njit(cache=True, nogil=True)
def range_block(
    radius, probe_radius, scan, out, sub_start, sub_len, direct, off_ptr, offsets, key_ptr, keys,
    entries, words, colocated, queries, starts, room, counts,
):  # fmt: skip
    """Keys of the items within ``radius`` of a block of queries (rows of ``queries``), probing
    table ``j`` up to ``probe_radius[j]``.

    With ``scan``, every item is checked instead (table 0's entries; for radii where probing
    costs more). Query ``q`` writes at most ``room[q]`` keys from ``out[starts[q]]`` on, sorted,
    and its true count to ``counts[q]`` (larger than ``room[q]`` when it ran out of room).
    """
    m = sub_start.shape[0]
    n = entries.shape[0] // m
    for q in range(queries.shape[0]):
        qsub = query_substrings(queries, q, sub_start, sub_len)
        lo_buf = np.empty(BATCH, dtype=np.int64)
        hi_buf = np.empty(BATCH, dtype=np.int64)
        at = starts[q]
        found = 0
        if scan:  # table 0 has no earlier table, so nothing is dropped as met before
            found = _range_entries(0, n, queries, q, radius, out, at, found, room[q], entries,
                                   words, colocated, qsub, sub_start, sub_len, 0, probe_radius)  # fmt: skip
        else:
            for table in range(m):
                base = table * n
                length = sub_len[table]
                for weight in range(min(probe_radius[table], length) + 1):
                    mask = first_mask(weight)
                    left = BINOMIAL[length, weight]
                    while left > 0:
                        count = min(left, BATCH)
                        mask, filled = fill_batch(table, qsub[table], mask, count, left, direct,
                                                   off_ptr, offsets, key_ptr, keys, lo_buf, hi_buf)  # fmt: skip
                        left -= count
                        for t in range(filled):
                            found = _range_entries(base + lo_buf[t], base + hi_buf[t], queries, q,
                                                   radius, out, at, found, room[q], entries, words,
                                                   colocated, qsub, sub_start, sub_len, table,
                                                   probe_radius)  # fmt: skip
        counts[q] = found
        if found <= room[q]:
            out[at : at + found].sort()
