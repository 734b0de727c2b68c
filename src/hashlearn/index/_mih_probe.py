"""Compiled primitives of multi-index hashing searches: finding the buckets near a query's
substrings and reading their entries.

The tables (built by :func:`hashlearn.index._mih_tables.build_tables`) are flat arrays. Codes are
rows of ``uint64`` words (:func:`hashlearn.codes.distance.as_words`). Table ``j``'s substring is
bits ``sub_start[j] .. sub_start[j] + sub_len[j] - 1``; its entries are
``entries[j * n : (j + 1) * n]`` (item ranks in id order, sorted by substring value, ascending
within a bucket); its bucket offsets are ``offsets[off_ptr[j] : off_ptr[j + 1]]`` (relative to
the table's first entry), indexed by the substring value when ``direct[j]``, else by the position
of the value in ``keys[key_ptr[j] : key_ptr[j + 1]]`` (sorted distinct values). When
``colocated``, ``words[e]`` is the code of entry ``e`` (``m * n`` rows); otherwise ``words[r]`` is
the code of the item of rank ``r`` (``n`` rows). Either way entry ``e``'s code is
``words[entry_row(e, entries, colocated)]``, and the entries of table 0 hold every item once.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from hashlearn.index._bits import code_bits, next_mask

__all__ = [
    "BATCH",
    "PREFETCH_AHEAD",
    "entry_row",
    "fill_batch",
    "prefetch_entries",
    "query_substrings",
]

# Buckets looked up together before their entries are read (see fill_batch), and how many
# buckets ahead of the one being read the codes are prefetched.
BATCH = 32
PREFETCH_AHEAD = 2
_CACHE_LINE = 64


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
def prefetch_entries(words, first, stop, entries, colocated):
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
def entry_row(e, entries, colocated):
    """Row of ``words`` holding the code of entry ``e`` (see the module notes)."""
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
def fill_batch(
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
                mask = next_mask(mask)
    else:
        for t in range(count):
            lo, hi = _sorted_bucket(table, qsub ^ mask, off_ptr, offsets, key_ptr, keys)
            lo_buf[n] = lo
            hi_buf[n] = hi
            n += lo < hi
            if t + 1 < left:
                mask = next_mask(mask)
    return mask, n


@numba.njit(cache=True, nogil=True, inline="always")
def query_substrings(queries, q, sub_start, sub_len):
    """The substrings of query ``q``, one per table."""
    m = sub_start.shape[0]
    qsub = np.empty(m, dtype=np.uint64)
    for i in range(m):
        qsub[i] = code_bits(queries, q, sub_start[i], sub_len[i])
    return qsub
