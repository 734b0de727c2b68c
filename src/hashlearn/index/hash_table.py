"""One hash table keyed by the leading bits of each code, searched by multi-probing (exact).

:class:`HashTableIndex` is faiss' ``IndexBinaryHash`` behind hashlearn's contract, but exact: a
search probes every bucket within a growing key radius (multi-probe search, Lv et al.,
"Multi-Probe LSH", VLDB 2007) until no item left can rank before those found. What it shares with
:class:`~hashlearn.index.MultiTableIndex` (features, re-ranking, the tables and why searches over
them are exact) is in :mod:`hashlearn.index._table_index`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from hashlearn._validation import check_int, check_k, check_radius
from hashlearn.index._table_index import MAX_KEY_BITS, TableIndex

__all__ = ["HashTableIndex"]


class HashTableIndex(TableIndex):
    """One hash table keyed by the first ``key_bits`` bits of each code, searched by multi-probing.

    Parameters
    ----------
    n_bits : int
        Code width in bits, 1..4096 (codes are ``uint8`` arrays of shape
        ``(n, ceil(n_bits / 8))``, layout of :mod:`hashlearn.codes`).
    key_bits : int, optional
        Number of leading code bits (bits ``0 .. key_bits - 1``) forming the bucket key,
        ``1 <= key_bits <= min(n_bits, 64)``. Default ``min(n_bits, 64)``.

    Notes
    -----
    :meth:`search` and :meth:`range_search` are exact: their results equal
    :class:`~hashlearn.index.LinearIndex`'s, ties by id included. A range search with radius ``r``
    probes every bucket whose key is within ``r`` of the query's key (the key distance is at most
    the full distance) and keeps the items whose full distance is ``<= r``; a k-NN search does
    so for ``r = 0, 1, 2, ...`` until ``k`` items lie within ``r`` (multi-probe search, Lv et
    al., VLDB 2007). When the ``sum_{i <= r} C(key_bits, i)`` probes would cost more than reading
    every bucket key (a probe is counted as 8 keys read), the bucket keys are scanned instead, so
    the cost of one query is bounded by the number of buckets plus the candidates; a k-NN scan
    skips the buckets whose key is farther than the k-th best distance found so far.

    The table is rebuilt, in ``O(n log n)``, by the first search after items were added or
    removed. Items may carry real-valued features (``add(codes, features=...)``) for
    :meth:`search_rerank`. Batches of 8 queries or more are split over the index threads
    (:func:`hashlearn.index.set_num_threads`). Searches may run in several Python threads at
    once, but not while items are added or removed. Holds fewer than ``2**32`` items.

    Examples
    --------
    >>> import numpy as np
    >>> from hashlearn.index.hash_table import HashTableIndex
    >>> index = HashTableIndex(16, key_bits=8)
    >>> index.add_with_ids(np.array([[1, 0], [3, 0], [0, 255]], dtype=np.uint8), [10, 20, 30])
    >>> D, I = index.search(np.array([[1, 0]], dtype=np.uint8), k=2)
    >>> D.tolist(), I.tolist()
    ([[0, 1]], [[10, 20]])
    """

    type_name = "hash-table"

    def __init__(self, n_bits: int, key_bits: int | None = None) -> None:
        super().__init__(n_bits)
        limit = min(self.n_bits, MAX_KEY_BITS)
        self._key_bits = (
            limit if key_bits is None else check_int(key_bits, "key_bits", minimum=1, maximum=limit)
        )

    @property
    def key_bits(self) -> int:
        """Number of leading code bits that form the bucket key."""
        return self._key_bits

    def __repr__(self) -> str:
        return (
            f"HashTableIndex(n_bits={self.n_bits}, key_bits={self.key_bits}, ntotal={self.ntotal})"
        )

    def _layout(self) -> tuple[list[int], int]:
        return [0], self._key_bits

    def _params(self) -> dict[str, Any]:
        return {"key_bits": self._key_bits}

    @property
    def n_buckets(self) -> int:
        """Number of non-empty buckets (builds the table if needed)."""
        return self._search_state().n_buckets[0] if self.ntotal else 0

    def search(
        self, queries: NDArray[np.uint8], k: int, max_radius: int | None = None
    ) -> tuple[NDArray[np.int32], NDArray[np.int64]]:
        """The ``k`` nearest items of each query by Hamming distance, probing growing radii.

        Results and errors are those of :meth:`BinaryIndex.search`, and:

        Parameters
        ----------
        max_radius : int, optional
            Largest Hamming distance returned (bounded multi-probe search). ``None``, the
            default, does not bound it: the search is then exact k-NN, identical to
            :meth:`LinearIndex.search <hashlearn.index.LinearIndex.search>`. With a bound, each
            row holds the best ``k`` items within ``max_radius`` (exactly), padded.

        Raises
        ------
        InvalidInputError
            ``max_radius`` is not an integer >= 0.
        """
        queries = self._check_codes(queries, "queries")
        k = check_k(k)
        cap = self.n_bits if max_radius is None else check_int(max_radius, "max_radius", minimum=0)
        return self._top(queries, k, cap, cap)

    def range_search(
        self, queries: NDArray[np.uint8], radius: int
    ) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.int64]]:
        """Every item within Hamming distance ``radius`` (inclusive) of each query; exact."""
        queries = self._check_codes(queries, "queries")
        radius = check_radius(radius)
        return self._range(queries, radius, radius)

    def search_rerank(
        self,
        queries: NDArray[np.uint8],
        query_features: Any,
        k: int,
        radius: int = 2,
        metric: str = "cosine",
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Items within Hamming ``radius`` of each query, re-ranked by feature distance.

        The candidates are the items whose full codes lie within ``radius`` of the query (found
        by multi-probing, as :meth:`range_search`); they are ordered by the distance between the
        query's features and theirs, ties by id, and the first ``k`` are returned.

        Parameters
        ----------
        queries : numpy.ndarray of uint8, shape (nq, code_size)
        query_features : array-like of float, shape (nq, n_features)
            Features of the queries, finite; converted to ``float32``.
        k : int
            Number of results per query, >= 1.
        radius : int, default 2
            Hamming radius of the candidates, >= 0. The default, items within 2 bits, is also
            that of ``hashlearn search --rerank`` on one table (on several tables,
            :meth:`~hashlearn.index.MultiTableIndex.search_rerank` probes the query's own bucket
            of each table by default).
        metric : {"cosine", "l2"}, default "cosine"
            ``"cosine"``: ``1 - <q, x> / (|q| |x|)``, clipped below at 0, and 1 when either
            vector is zero. ``"l2"``: ``|q - x|``. Computed in float64 (sums left to right over
            the features), then rounded to float32, which the ranking uses.

        Returns
        -------
        D : numpy.ndarray of float32, shape (nq, min(k, ntotal))
            Feature distances, ascending along each row; padding ``inf``.
        I : numpy.ndarray of int64, shape (nq, min(k, ntotal))
            Ids; padding ``-1`` when fewer than ``k`` candidates lie within ``radius``.

        Raises
        ------
        UnknownNameError
            ``metric`` is not one of ``"cosine"``, ``"l2"``.
        InvalidInputError
            The index holds no features, ``query_features`` has the wrong shape or non-finite
            values, ``k`` < 1, or ``radius`` < 0.
        CodeFormatError
            ``queries`` is not a ``uint8`` array of shape ``(nq, code_size)``.
        """
        queries = self._check_codes(queries, "queries")
        radius = check_radius(radius)
        return self._rerank(queries, query_features, k, metric, radius, radius)
