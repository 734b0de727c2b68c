"""What the hash-table indexes share: buckets keyed by code bits, searched by multi-probing.

:class:`~hashlearn.index.HashTableIndex` keys one hash table by the first ``key_bits`` bits of each code (faiss'
``IndexBinaryHash``); :class:`~hashlearn.index.MultiTableIndex` keeps ``L`` independent tables, each keyed by its
own slice of a concatenated code (the multiple-table scheme of Gionis, Indyk & Motwani, "Similarity
Search in High Dimensions via Hashing", VLDB 1999). Both probe every bucket whose key lies within a
Hamming radius of the query's key (multi-probe search, Lv et al., "Multi-Probe LSH", VLDB 2007),
then rank the candidates exactly by the Hamming distance of the full codes or by the distance of
stored real-valued features (cosine or L2), as in hash-table retrieval with re-ranking.

Key facts used throughout
-------------------------
* The Hamming distance of two keys (a subset of the bits) never exceeds that of the full codes.
  So probing every bucket within key distance ``r`` and keeping candidates whose *full* distance is
  ``<= r`` finds every item within ``r``: :meth:`~hashlearn.index.HashTableIndex.range_search` is exact, and growing
  ``r`` until ``k`` items lie within it makes :meth:`~hashlearn.index.HashTableIndex.search` exact too. For the same
  reason a search may stop, in any table, once the probed key radius reaches the distance within
  which ``k`` items were found.
* With ``L`` tables covering disjoint bit ranges of the code, the full distance is the sum of the
  ``L`` per-table distances; an item within ``r`` of the query is within ``floor(r / L)`` of it in
  at least one table (pigeonhole), so :meth:`~hashlearn.index.MultiTableIndex.range_search` is exact as well. An
  item found in several tables is kept by the first only: a later table skips the items whose key
  in an earlier table lies within the probed radius.
* The buckets within key radius ``r`` are enumerated by flipping up to ``r`` bits of the query key,
  ``sum_{i <= r} C(key_bits, i)`` probes. When that exceeds the number of non-empty buckets
  (divided by 8, the cost of one random probe relative to reading one key in order, measured on
  random codes), the bucket keys are scanned instead (``popcount(key ^ query_key) <= r``): a large
  radius costs at most one pass over the buckets, and never more memory.

The tables are built lazily: the first search after an ``add`` or ``remove_ids`` sorts the keys,
``O(n log n)`` per table; later searches reuse them. They are not stored in index files but rebuilt
on the first search after loading (:mod:`hashlearn.index._table_state`; the compiled search is
:mod:`hashlearn.index._table_probe`). Queries are searched in blocks on the index threads
(:func:`hashlearn.index.set_num_threads`); fewer than 8 queries run in the calling thread.

Items may carry real-valued features, by which ``search_rerank`` orders the candidates
(:mod:`hashlearn.index._table_rerank`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from hashlearn._validation import check_k
from hashlearn.codes.distance import as_words
from hashlearn.codes.keys import FEATURE_RANK_BITS, decode_feature_keys, decode_keys
from hashlearn.exceptions import FileFormatError, InvalidInputError
from hashlearn.index._blocks import map_query_blocks
from hashlearn.index._format.layout import IndexFile
from hashlearn.index._table_probe import range_block, top_block
from hashlearn.index._table_rerank import HAMMING, check_metric, float32_rows
from hashlearn.index._table_state import TableState
from hashlearn.index.base import PAD_DISTANCE, PAD_ID, BinaryIndex

__all__ = ["MAX_ITEMS", "MAX_KEY_BITS", "MIN_PARALLEL", "TableIndex"]

MAX_KEY_BITS = 64
"""Most bits a table key holds (one ``uint64``)."""
MAX_ITEMS = 1 << FEATURE_RANK_BITS
"""A hash-table index holds fewer items than this (feature keys keep a rank in 32 bits)."""
MIN_PARALLEL = 8
"""Fewer queries than this are searched in the calling thread alone (a query costs little)."""


class TableIndex(BinaryIndex):
    """What the hash-table indexes share: optional ``float32`` features per item (rows aligned
    with the stored items), the tables of :meth:`_layout` (built lazily), and their searches."""

    def __init__(self, n_bits: int) -> None:
        super().__init__(n_bits)
        self._features: NDArray[np.float32] | None = None  # rows :ntotal of a growable buffer
        self._n_features: int | None = None  # fixed by the first add (0: no features)
        self._state: TableState | None = None

    def _layout(self) -> tuple[list[int], int]:
        """First key bit of each table, and the key width."""
        raise NotImplementedError

    # ------------------------------------------------------------------ properties
    @property
    def has_features(self) -> bool:
        """Whether the items carry features (for ``search_rerank``)."""
        return bool(self._n_features)

    @property
    def n_features(self) -> int:
        """Number of feature values per item (0 when the index holds no features)."""
        return self._n_features or 0

    @property
    def nbytes(self) -> int:
        """Bytes held for the items (codes, ids), their features (4 per value) and, once built,
        what searches read: the ``L`` tables (``8 L`` per item, about 40 per bucket and table),
        16 per item with features (norms, positions) and, when ``code_size`` is not a multiple
        of 8, the codes padded to 8-byte words."""
        total = super().nbytes + 4 * self.ntotal * self.n_features
        return total + (self._state.nbytes if self._state is not None else 0)

    # ------------------------------------------------------------------ adding and removing
    def add(self, codes: NDArray[np.uint8], features: Any = None) -> None:
        """Add codes (and their features) with sequential ids ``ntotal, ntotal + 1, ...``.

        Parameters
        ----------
        codes : numpy.ndarray of uint8, shape (n, code_size)
        features : array-like of float, shape (n, d), optional
            Real-valued features of the items, stored as ``float32`` for ``search_rerank``.
            Either every add passes features (of the same ``d``) or none does.

        Raises
        ------
        CodeFormatError
            ``codes`` is not a ``uint8`` array of shape ``(n, code_size)``.
        InvalidInputError
            A sequential id is already present, or ``features`` are missing, unexpected, of the
            wrong shape or not finite.
        """
        codes = self._check_codes(codes)
        features = self._check_item_features(features, len(codes))
        self._append(codes, self._store.next_ids(len(codes)), features)

    def add_with_ids(self, codes: NDArray[np.uint8], ids: Any, features: Any = None) -> None:
        """Add codes (and their features, as in :meth:`add`) with caller-chosen ids.

        Parameters
        ----------
        codes : numpy.ndarray of uint8, shape (n, code_size)
        ids : array-like of integers, shape (n,)
            Non-negative, unique within the call and absent from the index.
        features : array-like of float, shape (n, d), optional

        Raises
        ------
        CodeFormatError
            ``codes`` is not a ``uint8`` array of shape ``(n, code_size)``.
        InvalidInputError
            Bad ids (not integers, not 1-D, not ``n`` long, negative, repeated, present) or bad
            features (as in :meth:`add`).
        """
        codes = self._check_codes(codes)
        features = self._check_item_features(features, len(codes))
        self._append(codes, self._store.check_new_ids(ids, len(codes)), features)

    def _check_item_features(self, features: Any, n: int) -> NDArray[np.float32] | None:
        if features is None:
            if self._n_features:
                raise InvalidInputError(
                    f"this index stores {self._n_features} features per item; pass features= "
                    "with the codes (every add must, once the first did)"
                )
            return None
        if self._n_features == 0:
            raise InvalidInputError(
                "this index stores no features (the first add passed none); add codes without "
                "features, or start a new index"
            )
        what = "one row per code" if self._n_features is None else "as stored in this index"
        return float32_rows(features, "features", n, self._n_features, what)

    def _append(
        self,
        codes: NDArray[np.uint8],
        ids: NDArray[np.int64],
        features: NDArray[np.float32] | None = None,
    ) -> None:
        """Store validated items and their features (``None``: they have none)."""
        start = self.ntotal
        if start + len(ids) >= MAX_ITEMS:
            raise InvalidInputError(f"a {type(self).__name__} holds fewer than 2**32 items")
        super()._append(codes, ids)
        if not len(ids):
            return
        if self._n_features is None:
            self._n_features = 0 if features is None else features.shape[1]
        if features is not None:  # a buffer grown by doubling; a read-only one is copied
            end, buffer = start + len(features), self._features
            if buffer is None or end > len(buffer) or not buffer.flags.writeable:
                grown = np.empty((max(end, 2 * start, 16), features.shape[1]), dtype=np.float32)
                if buffer is not None:
                    grown[:start] = buffer[:start]
                self._features = buffer = grown
            buffer[start:end] = features

    def _changed(
        self, added_from: int | None = None, removed: NDArray[np.int64] | None = None
    ) -> None:
        """Drop the tables (rebuilt by the next search) and the removed items' features."""
        super()._changed(added_from, removed)
        self._state = None
        if removed is not None and self._features is not None:
            rows = np.asarray(self._features[: self.ntotal + len(removed)])
            self._features = np.delete(rows, removed, axis=0)

    def reset(self) -> None:
        """Remove every item; the table layout is kept, the feature mode is not (the next add
        sets it again)."""
        super().reset()
        self._features, self._n_features = None, None

    # ------------------------------------------------------------------ persistence
    def _extra_arrays(self) -> dict[str, np.ndarray]:
        """The features (``float32 (ntotal, d)``), kept even when no item is left."""
        if self._features is None:
            return {}
        return {"features": self._features[: self.ntotal]}

    def _restore(self, file: IndexFile) -> None:
        features = file.arrays.get("features")
        if features is None:  # an empty index without features left the feature mode open
            self._features, self._n_features = None, (0 if file.ntotal else None)
            return
        if (
            features.dtype != np.float32
            or features.ndim != 2
            or len(features) != file.ntotal
            or features.shape[1] == 0
        ):
            raise FileFormatError(
                f"the index file should hold float32 features of shape ({file.ntotal}, d >= 1), "
                f"found {features.dtype} {features.shape}"
            )
        if not np.isfinite(features).all():
            raise FileFormatError("the index file holds non-finite features")
        self._features, self._n_features = features, features.shape[1]

    # ------------------------------------------------------------------ searching
    def _stored_features(self) -> NDArray[np.float32] | None:
        return None if self._features is None else np.asarray(self._features[: self.ntotal])

    def _search_state(self) -> TableState:
        """The tables over the current items, built now if the items changed since."""
        state = self._state
        if state is None:
            codes = np.asarray(self._store.codes)
            order = self._store.order()
            state = TableState(codes, order, self._layout(), self._stored_features())
            self._state = state
        return state

    def _range(
        self, queries: NDArray[np.uint8], probe_radius: int, max_distance: int
    ) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.int64]]:
        """Items within ``max_distance`` among those in buckets within ``probe_radius``."""
        nq = len(queries)
        lims = np.zeros(nq + 1, dtype=np.int64)
        if nq == 0 or self.ntotal == 0:
            return lims, np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int64)
        state = self._search_state()
        search, n_found = state.search(probe_radius, None, min(max_distance, self.n_bits))
        parts = map_query_blocks(
            range_block,
            (state.db, search, n_found),
            (as_words(queries),),
            min_parallel=MIN_PARALLEL,
        )
        np.cumsum(np.concatenate([counts for counts, _ in parts]), out=lims[1:])
        keys = np.concatenate([keys for _, keys in parts])
        return (lims, *decode_keys(keys, state.sorted_ids))

    def _top(
        self,
        queries: NDArray[np.uint8],
        k: int,
        probe_radius: int,
        max_distance: int,
        rerank: tuple[NDArray[np.float32], int] | None = None,
    ) -> tuple[NDArray[Any], NDArray[np.int64]]:
        """The best ``k`` items within ``max_distance`` among those in buckets within
        ``probe_radius``, by Hamming distance, or with ``rerank = (query_features, metric)``
        (``metric`` a code of :mod:`~hashlearn.index._table_rerank`) by feature distance: ``(D int32 or float32 (nq, min(k, ntotal)), I)``, padded."""
        nq = len(queries)
        k = min(k, self.ntotal)  # no row holds more items than the index (see BinaryIndex.search)
        labels = np.full((nq, k), PAD_ID, dtype=np.int64)
        if rerank is None:
            distances: NDArray[Any] = np.full((nq, k), PAD_DISTANCE, dtype=np.int32)
        else:
            distances = np.full((nq, k), np.inf, dtype=np.float32)
        if nq == 0 or self.ntotal == 0:
            return distances, labels
        state = self._search_state()
        max_distance = min(max_distance, self.n_bits)
        if rerank is None:
            search, n_found = state.search(probe_radius, k, max_distance)
            query_features = np.empty((nq, 0), dtype=np.float32)
            features = np.empty((0, 1), dtype=np.float32)
            by = (features, np.empty(0), np.empty(0, dtype=np.int64), HAMMING)
        else:
            search, n_found = state.search(probe_radius, None, max_distance)
            query_features, metric = rerank
            features = self._stored_features()
            by = (features, state.norms, state.position_of_rank, metric)
        out = np.empty((nq, k), dtype=np.int64)
        per_query = (as_words(queries), query_features, out)
        shared = (state.db, search, n_found, by)
        map_query_blocks(top_block, shared, per_query, min_parallel=MIN_PARALLEL)
        valid = out >= 0
        decode = decode_keys if rerank is None else decode_feature_keys
        distances[valid], labels[valid] = decode(out[valid], state.sorted_ids)
        return distances, labels

    def _rerank(
        self,
        queries: NDArray[np.uint8],
        query_features: Any,
        k: Any,
        metric: Any,
        probe_radius: int,
        max_distance: int,
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """:meth:`_top` by feature distance, after checking the arguments."""
        metric_code = check_metric(metric)
        k = check_k(k)
        if not self._n_features:
            raise InvalidInputError(
                "this index stores no features: pass features= to add / add_with_ids to re-rank"
            )
        what = "one row per query, as many values as the stored features"
        query_features = float32_rows(
            query_features, "query_features", len(queries), self._n_features, what
        )
        return self._top(queries, k, probe_radius, max_distance, (query_features, metric_code))
