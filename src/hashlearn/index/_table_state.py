"""The hash tables a hash-table index searches, built over its items (:class:`TableState`).

Table ``t`` is keyed by the ``width`` code bits from ``starts[t]`` on and stored in CSR form: its
non-empty buckets' keys, sorted, with the offsets of their items, and an open-addressing lookup
of the keys (Fibonacci hashing). :meth:`TableState.search` plans a search over them: per table,
which key radii are probed by flipping bits and from which one the bucket keys are scanned
instead.
"""

from __future__ import annotations

import bisect
import itertools
import math

import numpy as np
from numpy.typing import NDArray

from hashlearn.codes.distance import as_words
from hashlearn.index._table_probe import ALL, build_slots, extract_keys
from hashlearn.index._table_rerank import row_norms

__all__ = ["PROBE_COST", "TableState"]

PROBE_COST = 8
"""A probe (a random access to the bucket lookup) costs about as much as scanning this many
bucket keys in order (measured on random codes): bit flips are enumerated while
``probes * PROBE_COST <= buckets``."""


class TableState:
    """What searches read, derived from the stored items and rebuilt after each change: the codes
    as words, the ids in order, ``L`` hash tables, and the features' norms. Building costs
    ``O(L n log n)`` (one stable argsort of the keys per table).

    Parameters
    ----------
    codes : numpy.ndarray of uint8, shape (n, code_size)
        The stored codes, in storage order.
    order : (sorted_ids, rank)
        The ids ascending, and the rank of each storage position among them (``None``: the
        position), as :meth:`CodeStore.order <hashlearn.index._store.CodeStore.order>` gives them.
    layout : (starts, width)
        The first code bit of each table's key, and the key width.
    features : numpy.ndarray of float32, shape (n, d), or None
        The stored features, if any.
    """

    __slots__ = (
        "db",
        "n_buckets",
        "nbytes",
        "norms",
        "position_of_rank",
        "scan_from",
        "sorted_ids",
        "width",
    )

    def __init__(
        self,
        codes: NDArray[np.uint8],
        order: tuple[NDArray[np.int64], NDArray[np.int64] | None],
        layout: tuple[list[int], int],
        features: NDArray[np.float32] | None,
    ) -> None:
        words = as_words(codes)
        n = len(words)
        self.sorted_ids, rank = order
        if rank is None:
            rank = np.arange(n, dtype=np.int64)
        starts, width = layout
        self.width = width
        key_parts, offset_parts, position_parts, slot_parts, shifts = [], [], [], [], []
        for t, start in enumerate(starts):
            keys = extract_keys(words, start, width)
            order = np.argsort(keys, kind="stable")
            sorted_keys = keys[order]
            firsts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
            bucket_keys = np.ascontiguousarray(sorted_keys[firsts])
            log_slots = max(1, (2 * len(bucket_keys) - 1).bit_length())  # >= 2 * buckets, >= 2
            shift = np.uint64(64 - log_slots)
            key_parts.append(bucket_keys)
            offset_parts.append(firsts + t * n)
            position_parts.append(order)
            slot_parts.append(build_slots(bucket_keys, 1 << log_slots, shift))
            shifts.append(shift)
        offset_parts.append(np.array([len(starts) * n]))
        self.n_buckets = [len(keys) for keys in key_parts]
        tables = (
            np.asarray(starts, dtype=np.int64),
            np.concatenate(key_parts).astype(np.uint64),
            np.cumsum([0, *self.n_buckets], dtype=np.int64),
            np.concatenate(offset_parts).astype(np.int64),
            np.concatenate(position_parts).astype(np.int64),
            np.concatenate(slot_parts).astype(np.int64),
            np.cumsum([0, *(len(s) for s in slot_parts)], dtype=np.int64),
            np.asarray(shifts, dtype=np.uint64),
        )
        self.db = (words, rank, *tables)
        # scan_from[t]: the first key radius whose cumulative probes, times PROBE_COST, exceed
        # table t's buckets; from there on the bucket keys are scanned rather than probed.
        probes = itertools.accumulate(math.comb(width, d) for d in range(width + 1))
        costs = [PROBE_COST * c for c in probes]
        self.scan_from = [bisect.bisect_right(costs, nb) for nb in self.n_buckets]
        self.norms = self.position_of_rank = None
        if features is not None:
            self.norms = row_norms(features)
            self.position_of_rank = np.empty(n, dtype=np.int64)
            self.position_of_rank[rank] = np.arange(n, dtype=np.int64)
        copied = words if codes.shape[1] % 8 else None  # zero-padded words, not a view
        built = [*tables, self.norms, self.position_of_rank, copied]
        self.nbytes = sum(array.nbytes for array in built if array is not None)

    def search(self, probe_radius: int, k: int | None, max_distance: int) -> tuple[tuple, int]:
        """The kernels' ``search`` tuple and ``n_found``.

        ``k=None`` keeps every candidate within ``max_distance`` (range search, re-ranking):
        each table is then probed by flips alone or scanned alone, whichever is cheaper for the
        whole radius. With a ``k``, low radii are probed first so that the bound tightens early.
        """
        probe_radius = min(probe_radius, self.width)
        levels, n_found = [], 1
        for n_buckets, scan_from in zip(self.n_buckets, self.scan_from, strict=True):
            if scan_from > probe_radius:
                level = probe_radius + 1
            else:
                level = 0 if k is None else scan_from
            levels.append(level)
            if level:  # the widest level enumerated: C(width, d) grows up to d = width / 2
                widest = math.comb(self.width, min(level - 1, self.width // 2))
                n_found = max(n_found, min(n_buckets, widest))
        limit = ALL if k is None else k
        levels_array = np.array(levels, dtype=np.int64)
        return (self.width, levels_array, probe_radius, limit, max_distance), n_found
