"""Compile every search kernel once, ahead of the first search (numba caches them on disk).

The hash-table, multi-table and multi-index kernels (and the numba scans, the fallback of the C
ones) are compiled by numba on their first call, which would stall the first search of a fresh
installation by seconds (MIH: about 10 s). ``make install`` calls :func:`warm_up`, so that work is
done at install time and cached beside the modules; a fresh process then only loads the cached
machine code.
"""

from __future__ import annotations

import time

import numpy as np

from hashlearn.codes import kernels
from hashlearn.index.duplicates import near_duplicate_pairs
from hashlearn.index.factory import create_index

__all__ = ["warm_up"]

WIDTHS = (8, 16, 24, 32, 64, 128, 256)
"""Code widths whose word types (uint8 to uint64 words, several words) the kernels specialise on."""


def warm_up(widths: tuple[int, ...] = WIDTHS) -> float:
    """Run every index type's searches on tiny random codes of each width; returns the seconds
    it took (the compile time saved at the first real search)."""
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    variant = kernels.kernel_variant()
    for n_bits in widths:
        codes = rng.integers(0, 256, (96, (n_bits + 7) // 8), dtype=np.uint8)
        queries = codes[:9]
        indexes = [create_index(name, n_bits) for name in ("linear", "hash-table", "mih")]
        if n_bits % 2 == 0 and n_bits <= 128:  # tables of at most 64 bits
            indexes.append(create_index("multi-table", n_bits, n_tables=2))
        for index in indexes:
            index.add(codes)
            for batch in (queries[:1], queries):
                index.search(batch, 3)
                index.range_search(batch, 2)
        near_duplicate_pairs(codes, n_bits, 1)
        kernels.use_kernel("numba")  # the fallback of the compiled C scans
        try:
            indexes[0].search(queries, 3)
            indexes[0].range_search(queries, 2)
        finally:
            kernels.use_kernel(variant)
    return time.perf_counter() - start
