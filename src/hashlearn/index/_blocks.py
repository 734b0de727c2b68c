"""Searching a batch of queries on the index threads, in blocks of queries.

The hash-table and multi-index-hashing searches run one compiled kernel (``nogil``) per block of
queries, side by side on the threads of :mod:`hashlearn._parallel` (one setting for search and
evaluation: :func:`hashlearn.index.set_num_threads`). Queries differ in cost (a query far from
every item probes more buckets), so a batch is cut into a few blocks per thread, which keeps the
threads evenly loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from hashlearn._parallel import get_num_threads, parallel_map

__all__ = ["BLOCKS_PER_THREAD", "map_query_blocks", "query_blocks"]

BLOCKS_PER_THREAD = 4
"""Blocks of queries per index thread (fewer when there are fewer queries)."""


def query_blocks(n_queries: int, min_parallel: int = 1) -> list[tuple[int, int]]:
    """Query ranges ``(q0, q1)`` covering ``0 .. n_queries - 1`` in order, of equal sizes (the
    last may be smaller): ``BLOCKS_PER_THREAD`` per thread at most, one query each at least, and
    one range for fewer than ``min_parallel`` queries (searched in the calling thread)."""
    if n_queries < max(min_parallel, 1):
        return [(0, n_queries)] if n_queries else []
    n_blocks = min(n_queries, BLOCKS_PER_THREAD * get_num_threads())
    step = -(-n_queries // n_blocks)
    return [(q0, min(q0 + step, n_queries)) for q0 in range(0, n_queries, step)]


def map_query_blocks(
    kernel: Callable[..., Any],
    shared: Sequence[Any],
    per_query: Sequence[np.ndarray],
    *,
    min_parallel: int = 1,
) -> list[Any]:
    """``kernel(*shared, *[a[q0:q1] for a in per_query])`` for every block of
    :func:`query_blocks` (``per_query`` arrays have one row per query), on the index threads.

    Returns the kernel's results, block by block in query order.
    """
    blocks = query_blocks(len(per_query[0]), min_parallel)
    tasks = [(*shared, *(array[q0:q1] for array in per_query)) for q0, q1 in blocks]
    return parallel_map(kernel, tasks)
