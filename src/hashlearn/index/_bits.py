"""Compiled bit manipulations the hash-table and multi-index-hashing kernels share.

Codes are seen as rows of ``uint64`` words (:func:`hashlearn.codes.distance.as_words`), bit ``i``
of a code being bit ``i % 64`` of word ``i // 64``; a bucket key (hash tables) or a substring
(multi-index hashing) is a run of at most 64 consecutive bits, read by :func:`code_bits`. The
buckets within Hamming distance ``d`` of a key are reached by flipping ``d`` of its bits: the
masks with ``d`` bits set are enumerated in increasing order from :func:`first_mask` by
:func:`next_mask`.
"""

from __future__ import annotations

import numba
import numpy as np

from hashlearn.codes.kernels import popcount64

__all__ = ["code_bits", "first_mask", "next_mask"]


@numba.njit(inline="always")
def code_bits(words, row, start, width):  # pragma: no cover - compiled
    """Bits ``start .. start + width - 1`` (``1 <= width <= 64``) of code ``words[row]`` (a 2-D
    array of ``uint64`` words), as a ``uint64`` whose bit 0 is bit ``start`` of the code."""
    word = start >> 6
    shift = start & 63
    value = words[row, word] >> np.uint64(shift)
    if shift != 0 and shift + width > 64:
        value |= words[row, word + 1] << np.uint64(64 - shift)
    if width < 64:
        value &= (np.uint64(1) << np.uint64(width)) - np.uint64(1)
    return value


@numba.njit(inline="always")
def first_mask(weight):  # pragma: no cover - compiled
    """The smallest ``uint64`` with ``weight`` bits set (``0 <= weight <= 64``)."""
    if weight >= 64:
        return ~np.uint64(0)
    return (np.uint64(1) << np.uint64(weight)) - np.uint64(1)


@numba.njit(inline="always")
def next_mask(mask):  # pragma: no cover - compiled
    """The next larger ``uint64`` with as many bits set as ``mask`` (``mask != 0``).

    Gosper's hack (HAKMEM item 175, Beeler, Gosper & Schroeppel, MIT AI Memo 239, 1972): with
    ``low`` the lowest set bit, ``mask + low`` carries the lowest run of ones one place up; the
    ones the carry cleared, less one, go back to the bottom. The division by ``low`` of the
    textbook version is a shift by its trailing zeros, ``popcount(low - 1)``.
    """
    low = mask & (~mask + np.uint64(1))
    ripple = mask + low
    return (((ripple ^ mask) >> np.uint64(2)) >> popcount64(low - np.uint64(1))) | ripple
