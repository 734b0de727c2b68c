"""Exact Hamming search by a compiled, multi-threaded linear scan (faiss' ``IndexBinaryFlat``)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from hashlearn._validation import check_radius
from hashlearn.codes import kernels
from hashlearn.codes.keys import decode_keys
from hashlearn.index.base import BinaryIndex

__all__ = ["LinearIndex"]


class LinearIndex(BinaryIndex):
    """Exact k-NN and range search in Hamming space by scanning every stored code.

    Parameters
    ----------
    n_bits : int
        Code width in bits, 1..4096. Codes are ``uint8`` arrays of shape
        ``(n, ceil(n_bits / 8))``, bit ``i`` in byte ``i // 8`` at position ``i % 8`` (faiss'
        layout).

    Notes
    -----
    Results are sorted by Hamming distance, ties by id ascending, so they do not depend on the
    order items were added in. :meth:`search` pads rows with ``I = -1`` and
    ``D = 2**31 - 1`` when ``k > ntotal``. :meth:`range_search` is inclusive
    (``distance <= radius``), unlike faiss' strict ``< radius``.

    Search cost is ``O(nq * ntotal * code_size / 8)`` word operations, run by compiled kernels
    on :func:`hashlearn.index.get_num_threads` threads (see :mod:`hashlearn.codes.kernels`):
    queries are split in groups and the database in cache-sized blocks, so each block is read
    from memory once per group of queries; only a running top-k (a heap of ``k`` keys) is kept
    per query, never the distance matrix. Memory per item is ``code_size`` bytes of code plus 8
    bytes of id while ids are ascending in insertion order (:attr:`nbytes`).

    Examples
    --------
    >>> import numpy as np
    >>> from hashlearn.index import LinearIndex
    >>> index = LinearIndex(16)
    >>> index.add_with_ids(np.array([[1, 0], [3, 0], [0, 255]], dtype=np.uint8), [10, 20, 30])
    >>> D, I = index.search(np.array([[1, 0]], dtype=np.uint8), k=2)
    >>> D.tolist(), I.tolist()
    ([[0, 1]], [[10, 20]])
    """

    type_name = "linear"

    # ------------------------------------------------------------------ search
    def search(
        self, queries: NDArray[np.uint8], k: int
    ) -> tuple[NDArray[np.int32], NDArray[np.int64]]:
        """Exact ``k`` nearest neighbours of each query (see :meth:`BinaryIndex.search`)."""
        queries, distances, labels, kk = self._start_search(queries, k)
        nq = len(queries)
        if kk == 0 or nq == 0:
            return distances, labels
        sorted_ids, rank = self._store.order()
        keys = kernels.knn_search(np.asarray(self._store.codes), rank, queries, kk)
        distances[:, :kk], labels[:, :kk] = decode_keys(keys, sorted_ids)
        return distances, labels

    def range_search(
        self, queries: NDArray[np.uint8], radius: int
    ) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.int64]]:
        """Every item within ``radius`` (inclusive) of each query (see
        :meth:`BinaryIndex.range_search`)."""
        queries = self._check_codes(queries, "queries")
        radius = check_radius(radius)
        nq = len(queries)
        if self.ntotal == 0 or nq == 0:
            lims = np.zeros(nq + 1, dtype=np.int64)
            return lims, np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int64)
        sorted_ids, rank = self._store.order()
        lims, keys = kernels.range_search(
            np.asarray(self._store.codes), rank, queries, min(radius, self.n_bits)
        )
        return (lims, *decode_keys(keys, sorted_ids))
