"""The Hamming arithmetic of numba-compiled kernels: ``popcount64`` and ``row_distance``.

``popcount64`` is the number of set bits of a ``uint64`` (LLVM lowers it to one ``popcnt``
instruction where the CPU has it). ``row_distance`` is the distance of one stored code to one
query, over their words: the candidate check of the hash tables and of multi-index hashing, which
visit candidates one at a time in random order, where one scalar popcount per word is what the
hardware offers (the vector variants of :mod:`hashlearn.codes.kernels` pay off on scans). The
evaluation engine and the numba scans use ``popcount64`` in their own four-query loops.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import types
from numba.extending import intrinsic

__all__ = ["popcount64", "row_distance"]


@intrinsic
def popcount64(typingctx, x):
    """Number of set bits of a ``uint64`` (one ``popcnt`` instruction where the CPU has it)."""
    if x != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return types.uint64(types.uint64), codegen


@numba.njit(cache=True, nogil=True, inline="always")
def row_distance(words, row, queries, q):  # pragma: no cover - compiled
    """Hamming distance between ``words[row]`` and ``queries[q]`` (rows of unsigned words of one
    dtype, as ``int64``)."""
    total = np.uint64(0)
    for w in range(queries.shape[1]):
        total += popcount64(words[row, w] ^ queries[q, w])
    return np.int64(total)
