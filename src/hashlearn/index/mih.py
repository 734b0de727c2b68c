"""Exact Hamming search with multi-index hashing (Norouzi, Punjani & Fleet).

Reference: M. Norouzi, A. Punjani and D. J. Fleet, "Fast Search in Hamming Space with Multi-Index
Hashing", CVPR 2012; extended as "Fast Exact Search in Hamming Space with Multi-Index Hashing",
IEEE TPAMI 36(6), 2014 (arXiv:1307.2982).

Each code of ``b`` bits is cut into ``m`` contiguous substrings, and one hash table per substring
maps a substring value to the items holding it. Two codes within Hamming distance ``r`` agree
within ``floor(r / m)`` bits on at least one substring (pigeonhole), so probing every table
around the query's substrings finds every item within ``r``: exactly, unlike LSH.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from numpy.typing import NDArray

from hashlearn._parallel import get_num_threads, parallel_map
from hashlearn._validation import check_int
from hashlearn.codes._kernels import popcount64
from hashlearn.codes.distance import as_words
from hashlearn.exceptions import InvalidInputError
from hashlearn.index.base import BinaryIndex

__all__ = ["MultiIndexHashingIndex"]

_MAX_SUBSTRING_BITS = 64
# The automatic number of substrings aims at substrings of about log2(ntotal) - _BUCKET_LOG2
# bits (buckets of about 2**_BUCKET_LOG2 items), and at least _MIN_AUTO_BITS bits.
_BUCKET_LOG2 = 7
_MIN_AUTO_BITS = 8
# A table is addressed directly (an offsets array of 2**s + 1 entries) when its substring has
# at most _DIRECT_MAX_BITS bits and 2**s <= _DIRECT_SLACK * max(ntotal, _DIRECT_MIN_ITEMS):
# the offsets then cost at most 4 entries per item (or 1 MiB per table for small indexes).
_DIRECT_MAX_BITS = 26
_DIRECT_SLACK = 4
_DIRECT_MIN_ITEMS = 1 << 16
# Codes of at most this many 64-bit words are copied into every table next to the item ranks,
# so the codes of a bucket are read contiguously, not one random code per item. Wider codes
# are read from one copy, sorted by id.
_COLOCATE_MAX_WORDS = 2
# Table entries and offsets are int32 below this many items, int64 from it on.
_INT32_LIMIT = 2**31 - 1
# A result key is ``distance << _RANK_BITS | rank of the id``: sorting keys sorts by (distance, id).
_RANK_BITS = 40
_RANK_MASK = (1 << _RANK_BITS) - 1
# Buckets looked up together before their entries are read (see _fill_batch), and how many
# buckets ahead of the one being read the codes are prefetched.
_BATCH = 32
_PREFETCH_AHEAD = 2
_CACHE_LINE = 64
# "No bound yet" for distances (larger than any Hamming distance).
_NO_LIMIT = 1 << 62
# range_search gives each query room for this many results in a first pass; queries that find
# more are searched again with exactly the room they need. Queries go in blocks of _QUERY_BLOCK.
_RANGE_ROOM = 16
_QUERY_BLOCK = 16384
# Queries are split into this many tasks per index thread (their costs vary).
_TASKS_PER_THREAD = 4

# Binomial coefficients C(s, w) for s, w <= 64: the number of probes at radius w in a table of
# s-bit substrings (C(64, 32) < 2**63, so int64 holds them all exactly).
_BINOMIAL = np.zeros((_MAX_SUBSTRING_BITS + 1, _MAX_SUBSTRING_BITS + 1), dtype=np.int64)
for _s in range(_MAX_SUBSTRING_BITS + 1):
    for _w in range(_s + 1):
        _BINOMIAL[_s, _w] = math.comb(_s, _w)
del _s, _w


# ---------------------------------------------------------------------- compiled kernels
# Codes are rows of uint64 words (hashlearn.codes.as_words). The tables are flat arrays:
# table j's substring is bits sub_start[j] .. sub_start[j] + sub_len[j] - 1; its entries are
# entries[j * n : (j + 1) * n] (item ranks in id order, sorted by substring value, ascending
# within a bucket); its bucket offsets are offsets[off_ptr[j] : off_ptr[j + 1]] (relative to
# the table's first entry), indexed by the substring value when direct[j], else by the position
# of the value in keys[key_ptr[j] : key_ptr[j + 1]] (sorted distinct values). When
# ``colocated``, words[e] is the code of entry e (m * n rows); otherwise words[r] is the code of
# the item of rank r (n rows). Either way entry e's code is words[_row(e, entries, colocated)],
# and the entries of table 0 hold every item once.


@numba.njit(cache=True, nogil=True, inline="always")
def _substring(words, row, start, length):
    """Bits ``start .. start + length - 1`` of code ``words[row]`` as a ``uint64`` (length <= 64)."""
    word = start >> 6
    shift = start & 63
    value = words[row, word] >> np.uint64(shift)
    if shift != 0 and shift + length > 64:
        value |= words[row, word + 1] << np.uint64(64 - shift)
    if length < 64:
        value &= (np.uint64(1) << np.uint64(length)) - np.uint64(1)
    return value


@intrinsic
def _prefetch(typingctx, words, row):
    """Ask the processor to start loading row ``row`` of the 2-D array ``words`` into cache.

    A hint only (``llvm.prefetch``): it never faults, even past the array's end, and changes
    no result.
    """
    if not (isinstance(words, types.Array) and words.ndim == 2 and isinstance(row, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        array = context.make_array(array_type)(context, builder, args[0])
        stride = builder.extract_value(array.strides, 0)
        row = context.cast(builder, args[1], signature.args[1], types.intp)
        offset = builder.mul(row, stride)
        byte_pointer = builder.bitcast(array.data, ir.IntType(8).as_pointer())
        address = builder.gep(byte_pointer, [offset])
        int32 = ir.IntType(32)
        function = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(ir.VoidType(), [byte_pointer.type, int32, int32, int32]),
            "llvm.prefetch",  # LLVM gives the overloaded intrinsic its mangled name
        )
        # read access, high temporal locality, data cache
        builder.call(function, [address, int32(0), int32(3), int32(1)])
        return context.get_dummy_value()

    return types.void(words, row), codegen


@numba.njit(cache=True, nogil=True, inline="always")
def _prefetch_entries(words, first, stop, entries, colocated):
    """Prefetch the codes of entries ``first .. stop - 1`` (one hint per cache line when the
    codes lie in a row, one per code otherwise)."""
    if colocated:
        step = max(1, _CACHE_LINE // (8 * words.shape[1]))
        for e in range(first, stop, step):
            _prefetch(words, e)
        _prefetch(words, stop - 1)
    else:
        for e in range(first, stop):
            _prefetch(words, np.int64(entries[e]))


@numba.njit(cache=True, nogil=True, inline="always")
def _first_mask(weight):
    """The smallest ``uint64`` with ``weight`` bits set (``weight <= 64``)."""
    if weight >= 64:
        return ~np.uint64(0)
    return (np.uint64(1) << np.uint64(weight)) - np.uint64(1)


@numba.njit(cache=True, nogil=True, inline="always")
def _next_mask(mask):
    """The next larger ``uint64`` with as many bits set (Gosper's hack; ``mask != 0``).

    With ``low`` the lowest set bit, ``mask + low`` carries the lowest run of ones one place up;
    the ones the carry cleared, less one, go back to the bottom. The division by ``low`` of the
    textbook version is a shift by its trailing zeros, ``popcount(low - 1)``.
    """
    low = mask & (~mask + np.uint64(1))
    ripple = mask + low
    return (((ripple ^ mask) >> np.uint64(2)) >> popcount64(low - np.uint64(1))) | ripple


@numba.njit(cache=True, nogil=True, inline="always")
def _distance(words, row, queries, q):
    """Hamming distance between codes ``words[row]`` and ``queries[q]``."""
    total = np.uint64(0)
    for w in range(queries.shape[1]):
        total += popcount64(words[row, w] ^ queries[q, w])
    return np.int64(total)


@numba.njit(cache=True, nogil=True, inline="always")
def _row(e, entries, colocated):
    """Row of ``words`` holding the code of entry ``e``."""
    return e if colocated else np.int64(entries[e])


@numba.njit(cache=True, nogil=True, inline="always")
def _sorted_bucket(table, key, off_ptr, offsets, key_ptr, keys):
    """Entry range ``[lo, hi)`` of the bucket of ``key`` in the sorted (not direct) ``table``."""
    lo_key = key_ptr[table]
    hi_key = key_ptr[table + 1]
    while lo_key < hi_key:  # first stored key >= key
        mid = (lo_key + hi_key) >> 1
        if keys[mid] < key:
            lo_key = mid + 1
        else:
            hi_key = mid
    if lo_key == key_ptr[table + 1] or keys[lo_key] != key:
        return np.int64(0), np.int64(0)
    at = off_ptr[table] + lo_key - key_ptr[table]
    return np.int64(offsets[at]), np.int64(offsets[at + 1])


@numba.njit(cache=True, nogil=True)
def _fill_batch(
    table, qsub, mask, count, left, direct, off_ptr, offsets, key_ptr, keys, lo_buf, hi_buf
):
    """Look up the buckets of ``count`` masks from ``mask`` on; keep the non-empty ones.

    ``left`` masks remain in all (``count <= left``). Returns the mask that follows the batch
    (unchanged when none does) and the number ``n`` of non-empty buckets, whose entry ranges
    (within ``table``) are ``lo_buf[:n]``, ``hi_buf[:n]``. Looking the buckets up in a batch,
    before reading any of them, lets the processor overlap their cache misses.
    """
    n = 0
    if direct[table]:
        first = off_ptr[table]
        for t in range(count):
            at = first + np.int64(qsub ^ mask)
            lo = offsets[at]
            hi = offsets[at + 1]
            lo_buf[n] = lo
            hi_buf[n] = hi
            n += lo < hi
            if t + 1 < left:
                mask = _next_mask(mask)
    else:
        for t in range(count):
            lo, hi = _sorted_bucket(table, qsub ^ mask, off_ptr, offsets, key_ptr, keys)
            lo_buf[n] = lo
            hi_buf[n] = hi
            n += lo < hi
            if t + 1 < left:
                mask = _next_mask(mask)
    return mask, n


@numba.njit(cache=True, nogil=True, inline="always")
def _query_substrings(queries, q, sub_start, sub_len):
    """The substrings of query ``q``, one per table."""
    m = sub_start.shape[0]
    qsub = np.empty(m, dtype=np.uint64)
    for i in range(m):
        qsub[i] = _substring(queries, q, sub_start[i], sub_len[i])
    return qsub


@numba.njit(cache=True, nogil=True, inline="always")
def _seen_in_knn(words, row, qsub, sub_start, sub_len, table, radius):
    """Whether the k-NN search met item ``row`` before probing ``table`` at ``radius``.

    By then tables ``< table`` were probed up to ``radius`` and tables ``>= table`` up to
    ``radius - 1``; an item was met iff one of its substrings lies within those radii.
    """
    for i in range(sub_start.shape[0]):
        limit = radius if i < table else radius - 1
        if limit >= 0:
            d = popcount64(_substring(words, row, sub_start[i], sub_len[i]) ^ qsub[i])
            if np.int64(d) <= limit:
                return True
    return False


@numba.njit(cache=True, nogil=True, inline="always")
def _heap_offer(heap, size, key):
    """Offer ``key`` to the max-heap ``heap`` holding ``size`` keys; return the new size.

    The caller has checked that ``key`` enters: the heap is not full or ``key < heap[0]``.
    """
    capacity = heap.shape[0]
    if size < capacity:
        at = size
        heap[at] = key
        while at > 0:
            parent = (at - 1) >> 1
            if heap[parent] >= heap[at]:
                break
            heap[parent], heap[at] = heap[at], heap[parent]
            at = parent
        return size + 1
    at = 0
    heap[0] = key
    while True:
        child = 2 * at + 1
        if child >= capacity:
            break
        if child + 1 < capacity and heap[child + 1] > heap[child]:
            child += 1
        if heap[child] <= heap[at]:
            break
        heap[child], heap[at] = heap[at], heap[child]
        at = child
    return size


@numba.njit(cache=True, nogil=True)
def _knn_offer(
    e, d, heap, size, entries, words, colocated, qsub, sub_start, sub_len, table, radius
):
    """Offer entry ``e`` (distance ``d``), met in ``table`` at ``radius``, to the top-k heap.

    Returns the heap's new size.
    """
    key = (d << _RANK_BITS) | np.int64(entries[e])
    if size == heap.shape[0] and key >= heap[0]:
        return size
    row = _row(e, entries, colocated)
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
    limit = heap[0] >> _RANK_BITS if size == kk else _NO_LIMIT
    if colocated and words.shape[1] == 1:  # one-word codes read in a row
        query = queries[q, 0]
        for e in range(first, stop):
            d = np.int64(popcount64(words[e, 0] ^ query))
            if d <= limit:
                size = _knn_offer(e, d, heap, size, entries, words, colocated, qsub, sub_start,
                                  sub_len, table, radius)  # fmt: skip
                if size == kk:
                    limit = heap[0] >> _RANK_BITS
    else:
        for e in range(first, stop):
            d = _distance(words, _row(e, entries, colocated), queries, q)
            if d <= limit:
                size = _knn_offer(e, d, heap, size, entries, words, colocated, qsub, sub_start,
                                  sub_len, table, radius)  # fmt: skip
                if size == kk:
                    limit = heap[0] >> _RANK_BITS
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
    qsub = _query_substrings(queries, q, sub_start, sub_len)
    max_len = sub_len.max()
    lo_buf = np.empty(_BATCH, dtype=np.int64)
    hi_buf = np.empty(_BATCH, dtype=np.int64)
    size = 0
    spent = 0
    done = False
    for radius in range(max_len + 1):
        for table in range(m):
            length = sub_len[table]
            if radius <= length:
                n_masks = _BINOMIAL[length, radius]
                if n_masks > (n - spent) // probe_cost[table]:
                    # Probing would cost more than looking at every item: finish with a scan
                    # of the items not met yet (table 0's entries).
                    size = _knn_entries(0, n, queries, q, heap, size, entries, words, colocated,
                                        qsub, sub_start, sub_len, table, radius)  # fmt: skip
                    done = True
                    break
                spent += n_masks * probe_cost[table]
                base = table * n
                mask = _first_mask(radius)
                left = n_masks
                while left > 0:
                    count = min(left, _BATCH)
                    mask, filled = _fill_batch(table, qsub[table], mask, count, left, direct,
                                               off_ptr, offsets, key_ptr, keys, lo_buf, hi_buf)  # fmt: skip
                    left -= count
                    for t in range(min(_PREFETCH_AHEAD, filled)):
                        _prefetch_entries(words, base + lo_buf[t], base + hi_buf[t], entries,
                                          colocated)  # fmt: skip
                    for t in range(filled):
                        ahead = t + _PREFETCH_AHEAD
                        if ahead < filled:
                            _prefetch_entries(words, base + lo_buf[ahead], base + hi_buf[ahead],
                                              entries, colocated)  # fmt: skip
                        size = _knn_entries(base + lo_buf[t], base + hi_buf[t], queries, q, heap,
                                            size, entries, words, colocated, qsub, sub_start,
                                            sub_len, table, radius)  # fmt: skip
            # Every item within m * radius + table of the query has now been met.
            if size == kk and (heap[0] >> _RANK_BITS) <= m * radius + table:
                done = True
                break
        if done:
            break
    heap[:size].sort()


@numba.njit(cache=True, nogil=True)
def _knn_kernel(
    queries, q0, q1, out, sub_start, sub_len, direct, off_ptr, offsets, key_ptr, keys, entries,
    words, colocated, probe_cost,
):  # fmt: skip
    """:func:`_knn_one` for queries ``q0 .. q1 - 1`` (``out`` is ``(nq, k)``)."""
    for q in range(q0, q1):
        _knn_one(queries, q, out[q], sub_start, sub_len, direct, off_ptr, offsets, key_ptr, keys,
                 entries, words, colocated, probe_cost)  # fmt: skip


@numba.njit(cache=True, nogil=True)
def _range_offer(e, d, out, at, found, room, entries, words, colocated, qsub, sub_start, sub_len,
                 table, probe_radius):  # fmt: skip
    """Record entry ``e`` (within the radius, met in ``table``) unless an earlier table met it.

    Returns the number of results found so far; only the first ``room`` are written.
    """
    row = _row(e, entries, colocated)
    for i in range(table):
        if probe_radius[i] >= 0:
            sub = _substring(words, row, sub_start[i], sub_len[i])
            if np.int64(popcount64(sub ^ qsub[i])) <= probe_radius[i]:
                return found
    if found < room:
        out[at + found] = (d << _RANK_BITS) | np.int64(entries[e])
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
            d = _distance(words, _row(e, entries, colocated), queries, q)
            if d <= radius:
                found = _range_offer(e, d, out, at, found, room, entries, words, colocated, qsub,
                                     sub_start, sub_len, table, probe_radius)  # fmt: skip
    return found


@numba.njit(cache=True, nogil=True)
def _range_kernel(
    queries, q0, q1, radius, probe_radius, scan, starts, room, out, counts, sub_start, sub_len,
    direct, off_ptr, offsets, key_ptr, keys, entries, words, colocated,
):  # fmt: skip
    """Keys of the items within ``radius`` of queries ``q0 .. q1 - 1``, probing table ``j`` up to
    ``probe_radius[j]``.

    With ``scan``, every item is checked instead (table 0's entries; for radii where probing
    costs more). Query ``q`` writes at most ``room[q]`` keys from ``out[starts[q]]`` on, sorted,
    and its true count to ``counts[q]`` (larger than ``room[q]`` when it ran out of room).
    """
    m = sub_start.shape[0]
    n = entries.shape[0] // m
    for q in range(q0, q1):
        qsub = _query_substrings(queries, q, sub_start, sub_len)
        lo_buf = np.empty(_BATCH, dtype=np.int64)
        hi_buf = np.empty(_BATCH, dtype=np.int64)
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
                    mask = _first_mask(weight)
                    left = _BINOMIAL[length, weight]
                    while left > 0:
                        count = min(left, _BATCH)
                        mask, filled = _fill_batch(table, qsub[table], mask, count, left, direct,
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


@numba.njit(cache=True, nogil=True)
def _fill_direct(words, start, length, offsets, entries, table_words):
    """Counting sort of the items (rows of ``words``, in rank order) by one substring.

    ``offsets`` (``2**length + 1``) receives the bucket starts, ``entries`` (n) the ranks in
    bucket order (ascending within a bucket) and ``table_words`` (n rows, or 0) their codes.
    """
    n = words.shape[0]
    offsets[:] = 0
    for r in range(n):
        offsets[np.int64(_substring(words, r, start, length)) + 1] += 1
    for b in range(1, offsets.shape[0]):
        offsets[b] += offsets[b - 1]
    for r in range(n):
        b = np.int64(_substring(words, r, start, length))
        at = offsets[b]
        offsets[b] = at + 1
        entries[at] = r
        if table_words.shape[0]:
            table_words[at] = words[r]
    for b in range(offsets.shape[0] - 1, 0, -1):  # the scatter moved each start to the next one
        offsets[b] = offsets[b - 1]
    offsets[0] = 0


@numba.njit(cache=True, nogil=True)
def _fill_sorted(words, start, length, entries, table_words):
    """Sort the items by one substring; return the sorted distinct values and bucket offsets."""
    n = words.shape[0]
    values = np.empty(n, dtype=np.uint64)
    for r in range(n):
        values[r] = _substring(words, r, start, length)
    order = np.argsort(values, kind="mergesort")  # stable: ranks ascend within a bucket
    n_keys = 0
    for i in range(n):
        if i == 0 or values[order[i]] != values[order[i - 1]]:
            n_keys += 1
    keys = np.empty(n_keys, dtype=np.uint64)
    offsets = np.empty(n_keys + 1, dtype=entries.dtype)
    n_keys = 0
    for i in range(n):
        r = order[i]
        if i == 0 or values[r] != values[order[i - 1]]:
            keys[n_keys] = values[r]
            offsets[n_keys] = i
            n_keys += 1
        entries[i] = r
        if table_words.shape[0]:
            table_words[i] = words[r]
    offsets[n_keys] = n
    return keys, offsets


# ---------------------------------------------------------------------- tables
@dataclass(frozen=True)
class _Tables:
    """The built hash tables, as the flat arrays the kernels take (layout above the kernels)."""

    sub_start: NDArray[np.int64]
    sub_len: NDArray[np.int64]
    direct: NDArray[np.bool_]
    off_ptr: NDArray[np.int64]
    offsets: NDArray[np.integer]
    key_ptr: NDArray[np.int64]
    keys: NDArray[np.uint64]
    entries: NDArray[np.integer]
    words: NDArray[np.uint64]
    colocated: bool
    n_items: int
    probe_cost: NDArray[np.int64]
    # Ids ascending at build time: result keys hold ranks in it (the store's array, not a copy,
    # so not counted in nbytes).
    sorted_ids: NDArray[np.int64]

    @property
    def nbytes(self) -> int:
        arrays = (self.offsets, self.keys, self.entries, self.words, self.off_ptr, self.key_ptr)
        return int(sum(a.nbytes for a in arrays))

    def layout(self) -> tuple[Any, ...]:
        """The kernels' table arguments, in their order."""
        return (
            self.sub_start, self.sub_len, self.direct, self.off_ptr, self.offsets, self.key_ptr,
            self.keys, self.entries, self.words, self.colocated,
        )  # fmt: skip


def _substring_layout(n_bits: int, m: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Starts and lengths of ``m`` contiguous substrings; the first ``n_bits % m`` are 1 bit longer."""
    lengths = np.full(m, n_bits // m, dtype=np.int64)
    lengths[: n_bits % m] += 1
    starts = np.zeros(m, dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    return starts, lengths


def _is_direct(length: int, ntotal: int) -> bool:
    return length <= _DIRECT_MAX_BITS and (1 << length) <= _DIRECT_SLACK * max(
        ntotal, _DIRECT_MIN_ITEMS
    )


def _auto_substrings(n_bits: int, ntotal: int) -> int:
    """The automatic number of substrings (see :class:`MultiIndexHashingIndex`)."""
    target = max(math.log2(max(ntotal, 1)) - _BUCKET_LOG2, _MIN_AUTO_BITS)
    chosen = round(n_bits / target)
    return min(n_bits, max(-(-n_bits // _MAX_SUBSTRING_BITS), chosen, 1))


def _build_tables(
    words: NDArray[np.uint64], n_bits: int, m: int, sorted_ids: NDArray[np.int64]
) -> _Tables:
    """Build the ``m`` tables over ``words`` (``(n, n_words)`` codes of ``sorted_ids``).

    Tables are built side by side on the index threads (:func:`hashlearn._parallel.parallel_map`).
    """
    n, n_words = words.shape
    index_dtype = np.int32 if n < _INT32_LIMIT else np.int64
    starts, lengths = _substring_layout(n_bits, m)
    direct = np.array([_is_direct(int(s), n) for s in lengths], dtype=np.bool_)
    colocated = n_words <= _COLOCATE_MAX_WORDS
    entries = np.empty(m * n, dtype=index_dtype)
    table_words = np.empty((m * n if colocated else 0, n_words), dtype=np.uint64)

    def rows(j: int) -> NDArray[np.uint64]:
        return table_words[j * n : (j + 1) * n]

    sorted_tables = [int(j) for j in np.flatnonzero(~direct)]
    sorted_parts = dict(
        zip(
            sorted_tables,
            parallel_map(
                _fill_sorted,
                [
                    (words, starts[j], lengths[j], entries[j * n : (j + 1) * n], rows(j))
                    for j in sorted_tables
                ],
            ),
            strict=True,
        )
    )
    offset_sizes = [
        (1 << int(lengths[j])) + 1 if direct[j] else len(sorted_parts[j][1]) for j in range(m)
    ]
    off_ptr = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(offset_sizes, out=off_ptr[1:])
    key_sizes = [len(sorted_parts[j][0]) if j in sorted_parts else 0 for j in range(m)]
    key_ptr = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(key_sizes, out=key_ptr[1:])
    offsets = np.empty(off_ptr[-1], dtype=index_dtype)
    keys = np.empty(key_ptr[-1], dtype=np.uint64)
    # Cost of probing one bucket, in item checks: the lookup (1, or the steps of a binary
    # search) plus the items of an average bucket (n / 2**s, or n / distinct values).
    probe_cost = np.empty(m, dtype=np.int64)
    for j in range(m):
        if direct[j]:
            probe_cost[j] = 1 + -(-n >> int(lengths[j]))
        else:
            n_keys = max(1, len(sorted_parts[j][0]))
            probe_cost[j] = n_keys.bit_length() + -(-n // n_keys)
    for j, (table_keys, table_offsets) in sorted_parts.items():
        keys[key_ptr[j] : key_ptr[j + 1]] = table_keys
        offsets[off_ptr[j] : off_ptr[j + 1]] = table_offsets
    parallel_map(
        _fill_direct,
        [
            (
                words,
                starts[j],
                lengths[j],
                offsets[off_ptr[j] : off_ptr[j + 1]],
                entries[j * n : (j + 1) * n],
                rows(j),
            )
            for j in map(int, np.flatnonzero(direct))
        ],
    )
    return _Tables(
        sub_start=starts,
        sub_len=lengths,
        direct=direct,
        off_ptr=off_ptr,
        offsets=offsets,
        key_ptr=key_ptr,
        keys=keys,
        entries=entries,
        words=table_words if colocated else words,
        colocated=bool(colocated),
        n_items=n,
        probe_cost=probe_cost,
        sorted_ids=sorted_ids,
    )


def _query_tasks(nq: int) -> list[tuple[int, int]]:
    """Query ranges ``(q0, q1)`` for the index threads: a few per thread, to balance the load."""
    step = max(1, -(-nq // (_TASKS_PER_THREAD * get_num_threads())))
    return [(q0, min(q0 + step, nq)) for q0 in range(0, nq, step)]


# ---------------------------------------------------------------------- the index
class MultiIndexHashingIndex(BinaryIndex):
    """Exact k-NN and range search in Hamming space with multi-index hashing.

    Norouzi, Punjani & Fleet, "Fast Search in Hamming Space with Multi-Index Hashing", CVPR 2012
    and IEEE TPAMI 2014. Results are identical to :class:`~hashlearn.index.LinearIndex`'s,
    including the order of ties (by id), but a search reads only the items that share a nearly
    equal substring with the query instead of every item.

    Parameters
    ----------
    n_bits : int
        Code width in bits, 1..4096. Codes are ``uint8`` arrays of shape
        ``(n, ceil(n_bits / 8))`` in the layout of :mod:`hashlearn.codes` (faiss' layout).
    n_substrings : int or None, default None
        Number ``m`` of substrings (and hash tables), ``ceil(n_bits / 64) .. n_bits`` (a
        substring holds at most 64 bits). ``None`` chooses it from the number of items ``n`` each
        time the tables are built: substrings of ``s = max(log2(n) - 7, 8)`` bits, that is
        ``m = round(n_bits / s)`` clamped to that range (see the notes).

    Notes
    -----
    **Substrings.** Bits ``0 .. n_bits - 1`` are cut into ``m`` contiguous substrings whose
    lengths differ by at most one (the first ``n_bits % m`` are the longer ones). The paper
    suggests substrings of about ``log2(n)`` bits, one item per bucket, which balances the number
    of buckets probed against the number of items checked when both cost the same. Here they do
    not: probing a bucket is a random memory access, while checking its items reads them in a
    row (a few nanoseconds each), so the automatic rule aims at buckets of about ``2**7``
    items, ``s = log2(n) - 7`` bits (at least 8). On 10M random 64-bit codes this gives
    ``m = 4`` (16-bit substrings), whose k-NN search (k = 10) was 4.7x faster than with the
    paper's ``m = 3``.

    **Tables.** Table ``j`` lists every item sorted by the value of its substring ``j`` (CSR:
    entries and bucket offsets). A table of ``s``-bit substrings is addressed directly (offsets
    indexed by the substring value, ``2**s + 1`` of them) when ``s <= 26`` and
    ``2**s <= 4 * max(n, 2**16)``, so offsets cost at most 4 entries per item (or 1 MiB per
    table); otherwise the table keeps its distinct substring values sorted and finds a bucket by
    binary search. An entry is the item's rank in id order (``int32`` below ``2**31`` items),
    and for codes of at most 128 bits the entry's code is copied next to it, so the codes of a
    bucket are read in a row; wider codes are read from one copy sorted by id. Memory for ``n``
    items of ``W = ceil(n_bits / 64)`` words: ``m * n * (4 + 8 * W)`` bytes (``W <= 2``) or
    ``n * (4 * m + 8 * W)`` bytes (``W > 2``), plus the offsets. 10M 64-bit codes (``m = 4``)
    take 48 bytes per item, 459 MiB; :meth:`memory_usage` reports the figure.

    The tables are built on the first search after items were added or removed (or by
    :meth:`build_tables`), in ``O(m * (n + 2**s))`` time for direct tables (a counting sort) and
    ``O(m * n log n)`` for sorted ones; ``m`` is chosen again at each build when
    ``n_substrings`` is ``None``.

    **Range search** (inclusive, ``distance <= r``). Write ``r = m * q + a`` with ``0 <= a < m``.
    An item within ``r`` has a substring ``j <= a`` within ``q`` bits of the query's, or a
    substring ``j > a`` within ``q - 1`` bits: otherwise its distance would be at least
    ``(a + 1) * (q + 1) + (m - a - 1) * q = r + 1`` (the paper's pigeonhole argument, sharpened
    for ``r`` not a multiple of ``m``). So table ``j`` is probed at every substring value within
    ``q`` (``j <= a``) or ``q - 1`` (``j > a``) bits of the query's, the flip masks of each
    weight being enumerated on the fly (Gosper's hack), and the items met are checked in full.

    **k-NN** (the paper's incremental search). For ``q = 0, 1, 2, ...`` and, within each, for
    tables ``j = 0 .. m - 1``, the masks of weight exactly ``q`` are probed in table ``j``, and
    the items met feed a top-``k`` heap of ``(distance, id)`` keys. After table ``j`` at ``q``,
    every item within ``m * q + j`` has been met (an item not met differs by ``>= q + 1`` bits in
    substrings ``0 .. j`` and by ``>= q`` in the others, ``>= m * q + j + 1`` in all), so the
    search stops once the ``k``-th best distance is ``<= m * q + j``: every item that could rank
    before it, ties by id included, has been seen.

    **Duplicates.** An item is met in several tables. Instead of a visited marker per item, an
    item met in table ``j`` is dropped when one of its other substrings lies within the radius
    already probed in that substring's table (it was met there before): a few popcounts on a
    code already in cache, no memory per query, and only for items that would enter the results.

    **Fallback.** When probing would cost more than checking every item (large radii, few items,
    long substrings; cost counted in items, a probe costing its lookup plus an average bucket),
    the search checks every item instead: range search decides per call, k-NN per query and
    step, counting what it has spent, so a search costs at most about twice a linear scan.

    Queries are split into tasks run on the index threads
    (:func:`hashlearn.index.set_num_threads`); the compiled kernels release the GIL.

    Examples
    --------
    >>> import numpy as np
    >>> from hashlearn.index.mih import MultiIndexHashingIndex
    >>> index = MultiIndexHashingIndex(16)
    >>> index.add_with_ids(np.array([[1, 0], [3, 0], [0, 255]], dtype=np.uint8), [10, 20, 30])
    >>> D, I = index.search(np.array([[1, 0]], dtype=np.uint8), k=2)
    >>> D.tolist(), I.tolist()
    ([[0, 1]], [[10, 20]])
    >>> lims, D, I = index.range_search(np.array([[1, 0]], dtype=np.uint8), radius=1)
    >>> lims.tolist(), D.tolist(), I.tolist()
    ([0, 2], [0, 1], [10, 20])
    """

    type_name = "MultiIndexHashingIndex"

    def __init__(self, n_bits: int, n_substrings: int | None = None) -> None:
        super().__init__(n_bits)
        min_substrings = -(-self.n_bits // _MAX_SUBSTRING_BITS)
        if n_substrings is not None:
            n_substrings = check_int(n_substrings, "n_substrings", minimum=1, maximum=self.n_bits)
            if n_substrings < min_substrings:
                raise InvalidInputError(
                    f"n_substrings must be >= {min_substrings} for {self.n_bits}-bit codes (a "
                    f"substring holds at most {_MAX_SUBSTRING_BITS} bits), got {n_substrings}"
                )
        self._n_substrings = n_substrings
        self._tables: _Tables | None = None
        self._build_lock = threading.Lock()
        self._version = 0  # counts changes, so that tables built meanwhile are not kept

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n_bits={self.n_bits}, n_substrings={self._n_substrings}, "
            f"ntotal={self.ntotal})"
        )

    # ------------------------------------------------------------------ properties
    @property
    def n_substrings(self) -> int:
        """Number of substrings (tables) for the current items: as given, or by the rule above."""
        if self._n_substrings is not None:
            return self._n_substrings
        return _auto_substrings(self.n_bits, self.ntotal)

    @property
    def substring_bits(self) -> list[int]:
        """Lengths in bits of the substrings for the current items (they differ by at most 1)."""
        return _substring_layout(self.n_bits, self.n_substrings)[1].tolist()

    @property
    def nbytes(self) -> int:
        """Bytes held: the items (as :attr:`LinearIndex.nbytes
        <hashlearn.index.LinearIndex.nbytes>` counts them) plus the tables, when built."""
        return self.memory_usage()["total"]

    def memory_usage(self) -> dict[str, int]:
        """Bytes held by the index, by part.

        Returns
        -------
        dict of str to int
            ``"items"``: codes and ids (and the id map when ids were not added in ascending
            order); ``"tables"``: the hash tables (bucket offsets, sorted substring values,
            entries and the code copies they read; 0 while they are not built); ``"total"``.
        """
        items = self._store.nbytes
        tables = self._tables.nbytes if self._tables is not None else 0
        return {"items": items, "tables": tables, "total": items + tables}

    def _params(self) -> dict[str, Any]:
        return {"n_substrings": self._n_substrings}

    def _changed(
        self, added_from: int | None = None, removed: NDArray[np.int64] | None = None
    ) -> None:
        """Items changed: the tables are rebuilt (``m`` chosen again) on the next search."""
        super()._changed(added_from=added_from, removed=removed)
        self._version += 1
        self._tables = None

    # ------------------------------------------------------------------ tables
    def build_tables(self) -> None:
        """Build the hash tables now, if items changed since they were last built.

        Searches build them anyway; this pays the cost at a chosen time (after a bulk add).
        Cost: ``O(m * (ntotal + 2**s))`` for direct tables, ``O(m * ntotal * log(ntotal))`` for
        sorted ones, ``s`` being the substring length; the tables are built side by side on the
        index threads.
        """
        self._current_tables()

    def _current_tables(self) -> _Tables:
        with self._build_lock:
            tables = self._tables
            if tables is None:
                version = self._version
                sorted_ids, rank = self._store.order()
                codes = np.asarray(self._store.codes)
                if rank is not None:  # rows in id order
                    by_rank = np.empty_like(rank)
                    by_rank[rank] = np.arange(len(rank), dtype=rank.dtype)
                    codes = codes[by_rank]
                tables = _build_tables(
                    as_words(codes), self.n_bits, self.n_substrings, np.asarray(sorted_ids)
                )
                if version == self._version:  # else items changed meanwhile: not kept
                    self._tables = tables
            return tables

    # ------------------------------------------------------------------ search
    def search(
        self, queries: NDArray[np.uint8], k: int
    ) -> tuple[NDArray[np.int32], NDArray[np.int64]]:
        """Exact ``k`` nearest neighbours of each query (see :meth:`BinaryIndex.search`)."""
        queries, distances, labels, kk = self._start_search(queries, k)
        nq = len(queries)
        if kk == 0 or nq == 0:
            return distances, labels
        tables = self._current_tables()
        query_words = as_words(queries)
        keys = np.empty((nq, kk), dtype=np.int64)
        layout = (*tables.layout(), tables.probe_cost)
        parallel_map(
            _knn_kernel, [(query_words, q0, q1, keys, *layout) for q0, q1 in _query_tasks(nq)]
        )
        distances[:, :kk] = keys >> _RANK_BITS
        labels[:, :kk] = tables.sorted_ids[keys & _RANK_MASK]
        return distances, labels

    def range_search(
        self, queries: NDArray[np.uint8], radius: int
    ) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.int64]]:
        """Every item within ``radius`` (inclusive) of each query (see
        :meth:`BinaryIndex.range_search`)."""
        queries = self._check_codes(queries, "queries")
        radius = min(self._check_radius(radius), self.n_bits)
        nq = len(queries)
        lims = np.zeros(nq + 1, dtype=np.int64)
        if self.ntotal == 0 or nq == 0:
            return lims, np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int64)
        tables = self._current_tables()
        # radius = m * quotient + remainder: tables 0..remainder are probed at quotient bits,
        # the others at quotient - 1 (see the class notes).
        m = len(tables.sub_len)
        quotient, remainder = divmod(radius, m)
        probe_radius = np.where(np.arange(m) <= remainder, quotient, quotient - 1).astype(np.int64)
        # In Python integers: C(64, 0) + ... + C(64, 32) exceeds int64.
        probes = sum(
            math.comb(int(s), w) * int(c)
            for s, r, c in zip(tables.sub_len, probe_radius, tables.probe_cost, strict=True)
            for w in range(min(int(r), int(s)) + 1)
        )
        scan = probes > tables.n_items  # then looking at every item is cheaper
        layout = tables.layout()

        def run(words, starts, room, out, counts) -> None:  # type: ignore[no-untyped-def]
            tasks = [
                (words, q0, q1, radius, probe_radius, scan, starts, room, out, counts, *layout)
                for q0, q1 in _query_tasks(len(words))
            ]
            parallel_map(_range_kernel, tasks)

        query_words = as_words(queries)
        parts: list[NDArray[np.int64]] = []
        for b0 in range(0, nq, _QUERY_BLOCK):
            block = query_words[b0 : b0 + _QUERY_BLOCK]
            nb = len(block)
            # First pass: room for _RANGE_ROOM results per query.
            room = np.full(nb, _RANGE_ROOM, dtype=np.int64)
            starts = np.arange(nb, dtype=np.int64) * _RANGE_ROOM
            first = np.empty(nb * _RANGE_ROOM, dtype=np.int64)
            counts = np.empty(nb, dtype=np.int64)
            run(block, starts, room, first, counts)
            block_lims = np.zeros(nb + 1, dtype=np.int64)
            np.cumsum(counts, out=block_lims[1:])
            keys = np.empty(block_lims[-1], dtype=np.int64)
            fits = counts <= _RANGE_ROOM
            slot = np.arange(_RANGE_ROOM)
            take = fits[:, None] & (slot < counts[:, None])
            keys[(block_lims[:-1, None] + slot)[take]] = first.reshape(nb, _RANGE_ROOM)[take]
            # Queries that found more are searched again, writing straight into place.
            over = np.flatnonzero(~fits)
            if len(over):
                run(
                    np.ascontiguousarray(block[over]), block_lims[over], counts[over], keys,
                    np.empty(len(over), dtype=np.int64),
                )  # fmt: skip
            lims[b0 + 1 : b0 + nb + 1] = block_lims[1:] + lims[b0]
            parts.append(keys)
        all_keys = np.concatenate(parts)
        distances = (all_keys >> _RANK_BITS).astype(np.int32)
        return lims, distances, tables.sorted_ids[all_keys & _RANK_MASK]
