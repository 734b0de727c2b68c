"""Result keys: one ``int64`` per (distance, item) that sorts in result order.

Every exact search of hashlearn (the linear scan, the hash tables, multi-index hashing) ranks
its candidates as keys ``distance << RANK_BITS | rank``, where ``rank`` is the item's position
in ascending id order. Comparing two keys compares ``(distance, id)``, so sorting keys sorts
results by distance with ties broken by id, and the ``k`` smallest keys are the ``k`` nearest
items. A distance takes the 23 bits above the rank (Hamming distances are at most 4096) and an
index holds at most ``2**RANK_BITS`` items.

Re-ranking by feature distance (:meth:`HashTableIndex.search_rerank
<hashlearn.index.HashTableIndex.search_rerank>`) uses a second encoding,
``float32 bits of the distance << FEATURE_RANK_BITS | rank``: the bit patterns of non-negative
``float32`` values order like the values, so these keys sort the same way, for indexes of fewer
than ``2**FEATURE_RANK_BITS`` items.

The ``make_*``, ``key_*`` and heap functions are compiled (``numba.njit``, inlined into the
kernels that call them); :func:`decode_keys` and :func:`decode_feature_keys` turn arrays of keys
back into result arrays on the numpy side.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

__all__ = [
    "EMPTY_KEY",
    "FEATURE_RANK_BITS",
    "FEATURE_RANK_MASK",
    "MAX_RANKS",
    "RANK_BITS",
    "RANK_MASK",
    "decode_feature_keys",
    "decode_keys",
    "heap_push",
    "heap_replace_top",
    "key_distance",
    "key_rank",
    "make_feature_key",
    "make_key",
]

RANK_BITS = 40
"""Low bits of a key holding the item's rank in id order."""
RANK_MASK = (1 << RANK_BITS) - 1
MAX_RANKS = 1 << RANK_BITS
"""Most items whose ranks a key can hold."""
EMPTY_KEY = (1 << 63) - 1
"""Larger than every key: the value of an unfilled slot of a top-k heap."""

FEATURE_RANK_BITS = 32
"""Low bits of a feature key holding the item's rank (the float32 distance bits sit above)."""
FEATURE_RANK_MASK = (1 << FEATURE_RANK_BITS) - 1


# ---------------------------------------------------------------------- compiled
@numba.njit(inline="always")
def make_key(distance, rank):  # pragma: no cover - compiled
    """The key of an item of ``rank`` at Hamming ``distance`` (both ``int64``)."""
    return (distance << RANK_BITS) | rank


@numba.njit(inline="always")
def key_distance(key):  # pragma: no cover - compiled
    """The Hamming distance a key holds."""
    return key >> RANK_BITS


@numba.njit(inline="always")
def key_rank(key):  # pragma: no cover - compiled
    """The rank (position in ascending id order) a key holds."""
    return key & RANK_MASK


@numba.njit(inline="always")
def make_feature_key(distance_bits, rank):  # pragma: no cover - compiled
    """The feature key of an item of ``rank`` whose float32 distance has bit pattern
    ``distance_bits`` (a ``uint32`` read as an integer)."""
    return (np.int64(distance_bits) << FEATURE_RANK_BITS) | rank


@numba.njit(inline="always")
def heap_push(heap, size, key):  # pragma: no cover - compiled
    """Add ``key`` to the max-heap ``heap[:size]`` (``size < len(heap)``); sift it up."""
    at = size
    heap[at] = key
    while at > 0:
        parent = (at - 1) >> 1
        if heap[parent] >= heap[at]:
            break
        heap[parent], heap[at] = heap[at], heap[parent]
        at = parent


@numba.njit(inline="always")
def heap_replace_top(heap, key):  # pragma: no cover - compiled
    """Replace the largest key of the full max-heap ``heap`` by the smaller ``key``; sift down."""
    size = heap.shape[0]
    at = 0
    while True:
        child = 2 * at + 1
        if child >= size:
            break
        if child + 1 < size and heap[child + 1] > heap[child]:
            child += 1
        if heap[child] <= key:
            break
        heap[at] = heap[child]
        at = child
    heap[at] = key


# ---------------------------------------------------------------------- numpy
def decode_keys(
    keys: NDArray[np.int64], sorted_ids: NDArray[np.int64]
) -> tuple[NDArray[np.int32], NDArray[np.int64]]:
    """``(distances, ids)`` of an array of keys, same shape: ``int32`` Hamming distances and the
    ids ``sorted_ids[rank]`` (``sorted_ids``: the index's ids in ascending order)."""
    return (keys >> RANK_BITS).astype(np.int32), sorted_ids[keys & RANK_MASK]


def decode_feature_keys(
    keys: NDArray[np.int64], sorted_ids: NDArray[np.int64]
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """``(distances, ids)`` of an array of feature keys: ``float32`` distances and ids."""
    distances = (keys >> FEATURE_RANK_BITS).astype(np.uint32).view(np.float32)
    return distances, sorted_ids[keys & FEATURE_RANK_MASK]
