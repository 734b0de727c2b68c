"""The hash tables of multi-index hashing: the substrings a code is cut into, and one table per
substring listing every item by the value of its substring (:func:`build_tables`).

How many substrings, and how a table is addressed (directly by the substring value, or by binary
search over its sorted distinct values), is explained in the notes of
:class:`~hashlearn.index.MultiIndexHashingIndex`; the flat layout the kernels read is described
in :mod:`hashlearn.index._mih_probe`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray

from hashlearn._parallel import parallel_map
from hashlearn.index._bits import code_bits

__all__ = [
    "INT32_LIMIT",
    "MAX_SUBSTRING_BITS",
    "MihTables",
    "auto_substrings",
    "build_tables",
    "substring_layout",
]

MAX_SUBSTRING_BITS = 64
"""Most bits a substring holds (one ``uint64``)."""
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
INT32_LIMIT = 2**31 - 1


@numba.njit(cache=True, nogil=True)
def _fill_direct(words, start, length, offsets, entries, table_words):
    """Counting sort of the items (rows of ``words``, in rank order) by one substring.

    ``offsets`` (``2**length + 1``) receives the bucket starts, ``entries`` (n) the ranks in
    bucket order (ascending within a bucket) and ``table_words`` (n rows, or 0) their codes.
    """
    n = words.shape[0]
    offsets[:] = 0
    for r in range(n):
        offsets[np.int64(code_bits(words, r, start, length)) + 1] += 1
    for b in range(1, offsets.shape[0]):
        offsets[b] += offsets[b - 1]
    for r in range(n):
        b = np.int64(code_bits(words, r, start, length))
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
        values[r] = code_bits(words, r, start, length)
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


@dataclass(frozen=True)
class MihTables:
    """The built hash tables, as the flat arrays the kernels take (layout in
    :mod:`hashlearn.index._mih_probe`)."""

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


def substring_layout(n_bits: int, m: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
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


def auto_substrings(n_bits: int, ntotal: int) -> int:
    """The automatic number of substrings (see :class:`MultiIndexHashingIndex`)."""
    target = max(math.log2(max(ntotal, 1)) - _BUCKET_LOG2, _MIN_AUTO_BITS)
    chosen = round(n_bits / target)
    return min(n_bits, max(-(-n_bits // MAX_SUBSTRING_BITS), chosen, 1))


def build_tables(
    words: NDArray[np.uint64], n_bits: int, m: int, sorted_ids: NDArray[np.int64]
) -> MihTables:
    """Build the ``m`` tables over ``words`` (``(n, n_words)`` codes of ``sorted_ids``).

    Tables are built side by side on the index threads (:func:`hashlearn._parallel.parallel_map`).
    """
    n, n_words = words.shape
    index_dtype = np.int32 if n < INT32_LIMIT else np.int64
    starts, lengths = substring_layout(n_bits, m)
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
    return MihTables(
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
