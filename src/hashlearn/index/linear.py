"""Exact Hamming search by a blocked, vectorised linear scan (faiss' ``IndexBinaryFlat``)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hashlearn.codes import _as_words, _hamming_words
from hashlearn.index._format import IndexFile
from hashlearn.index.base import (
    PAD_DISTANCE,
    PAD_ID,
    BinaryIndex,
    UnknownIdError,
    _as_id_array,
    _IdMap,
)

__all__ = ["LinearIndex"]

# Block sizes of the scan. A block of queries is compared with a block of database items at a
# time, so temporaries stay near _QUERY_BLOCK * _DB_BLOCK * 30 bytes (~16 MiB) whatever ntotal.
_QUERY_BLOCK = 256
_DB_BLOCK = 2048
# Most int64 keys the running top-k of one query block may hold (16 MiB); shrinks the query
# block when k is large.
_KEY_BUDGET = 1 << 21
# A result key is ``distance << _RANK_BITS | rank of the id``: sorting keys sorts by (distance, id).
_RANK_BITS = 40
_RANK_MASK = (1 << _RANK_BITS) - 1
# Keys take at most 53 bits (distances <= 4096 use 13 bits above the rank): the sparse merge
# stores a query's row number in the bits above, so a query block holds at most 2**10 queries.
_KEY_BITS = 53
_KEY_MASK = (1 << _KEY_BITS) - 1
_MAX_QUERY_BLOCK = 1 << (63 - _KEY_BITS)
# The sparse merge is used when at most 1 / _SPARSE_RATIO of a block's items are candidates.
_SPARSE_RATIO = 16
_MIN_CAPACITY = 16


def _merge_top_k(
    best: NDArray[np.int64], block: NDArray[np.int32], block_rank: NDArray[np.int64], k: int
) -> NDArray[np.int64]:
    """Merge a block of distances into each query's running ``k`` smallest keys.

    Parameters
    ----------
    best : int64 array of shape (nq, k) or (nq, m) with m < k while the first blocks come in
        Keys ``distance << _RANK_BITS | rank`` of the best items so far, in any order.
    block : int32 array of shape (nq, nb)
        Distances of the queries to a block of items.
    block_rank : int64 array of shape (nb,)
        Rank of each of these items' ids in id order.
    k : int
        Number of keys to keep per query, at most the number of items seen overall.

    Returns
    -------
    int64 array of shape (nq, min(k, m + nb)), unordered along each row.
    """
    nq = block.shape[0]
    if best.shape[1] == k:
        # Once a query holds k keys, only block items beating its worst key matter; after the
        # first blocks these are few, so they are merged by one sort instead of a dense partition.
        worst = best.max(axis=1)
        flat = np.flatnonzero(block <= (worst >> _RANK_BITS)[:, None])  # 2-D nonzero is slow
        row, col = np.divmod(flat, block.shape[1])
        if len(row) * _SPARSE_RATIO <= block.size:
            keys = block[row, col].astype(np.int64)
            keys <<= _RANK_BITS
            keys |= block_rank[col]
            beats = keys < worst[row]
            row, keys = row[beats], keys[beats]
            if not len(row):
                return best
            # Sort (query, key) pairs of the old and new keys together; keep each query's first k.
            rows = np.concatenate([np.repeat(np.arange(nq, dtype=np.int64), k), row])
            merged = np.concatenate([best.reshape(-1), keys])
            merged |= rows << _KEY_BITS
            merged.sort()
            sizes = np.bincount(row, minlength=nq) + k
            starts = np.cumsum(sizes) - sizes
            take = starts[:, None] + np.arange(k)
            return merged[take] & _KEY_MASK
    keys = block.astype(np.int64)
    keys <<= _RANK_BITS
    keys |= block_rank
    candidates = np.concatenate([best, keys], axis=1)
    if candidates.shape[1] > k:
        candidates = np.partition(candidates, k - 1, axis=1)[:, :k]
    return candidates


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

    Search cost is ``O(nq * ntotal * code_size / 8)`` word operations; memory stays bounded
    (tens of MiB of temporaries) because queries and items are processed in blocks and only a
    running top-k is kept per query.

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

    type_name = "LinearIndex"

    def __init__(self, n_bits: int) -> None:
        super().__init__(n_bits)
        self._ntotal = 0
        self._codes: NDArray[np.uint8] = np.empty((0, self.code_size), dtype=np.uint8)
        self._id_store: NDArray[np.int64] = np.empty(0, dtype=np.int64)

    # ------------------------------------------------------------------ properties
    @property
    def ntotal(self) -> int:
        """Number of items in the index."""
        return self._ntotal

    @property
    def ids(self) -> NDArray[np.int64]:
        """Ids of the items in insertion order, ``int64`` of shape ``(ntotal,)`` (a copy)."""
        return np.array(self._id_store[: self._ntotal], dtype=np.int64)

    # ------------------------------------------------------------------ adding and removing
    def add(self, codes: NDArray[np.uint8]) -> None:
        """Add codes with sequential ids ``ntotal, ntotal + 1, ...`` (as faiss does).

        Parameters
        ----------
        codes : numpy.ndarray of uint8, shape (n, code_size)

        Raises
        ------
        CodeFormatError
            ``codes`` is not a ``uint8`` array of shape ``(n, code_size)``.
        InvalidInputError
            One of the sequential ids was already given to :meth:`add_with_ids`.
        """
        codes = self._check_codes(codes)
        self._append(codes, self._sequential_ids(len(codes)))

    def add_with_ids(self, codes: NDArray[np.uint8], ids: Any) -> None:
        """Add codes with caller-chosen ids.

        Parameters
        ----------
        codes : numpy.ndarray of uint8, shape (n, code_size)
        ids : array-like of integers, shape (n,)
            Non-negative, unique within the call and absent from the index. Any integer dtype
            whose values fit in ``int64`` is accepted; they are stored as ``int64``.

        Raises
        ------
        CodeFormatError
            ``codes`` is not a ``uint8`` array of shape ``(n, code_size)``.
        InvalidInputError
            ``ids`` are not integers, not 1-D, not ``n`` long, negative, repeated, or present.
        """
        codes = self._check_codes(codes)
        self._append(codes, self._check_new_ids(ids, len(codes)))

    def _append(self, codes: NDArray[np.uint8], ids: NDArray[np.int64]) -> None:
        n = len(codes)
        if n == 0:
            return
        start, end = self._ntotal, self._ntotal + n
        if end >= 1 << _RANK_BITS:
            raise ValueError(f"a LinearIndex holds fewer than 2**{_RANK_BITS} items")
        if end > len(self._id_store):
            capacity = max(end, 2 * len(self._id_store), _MIN_CAPACITY)
            new_codes = np.empty((capacity, self.code_size), dtype=np.uint8)
            new_codes[:start] = self._codes[:start]
            new_ids = np.empty(capacity, dtype=np.int64)
            new_ids[:start] = self._id_store[:start]
            self._codes, self._id_store = new_codes, new_ids
        self._codes[start:end] = codes
        self._id_store[start:end] = ids
        self._id_map.add(ids, np.arange(start, end, dtype=np.int64))
        self._ntotal = end
        self._changed()

    def remove_ids(self, ids: Any) -> int:
        """Remove the items with the given ids; ids not in the index are ignored (as in faiss).

        Parameters
        ----------
        ids : array-like of integers, shape (m,)

        Returns
        -------
        int
            Number of items removed.
        """
        wanted = _as_id_array(ids, "ids")
        positions = self._id_map.lookup(wanted)
        positions = np.unique(positions[positions >= 0])
        if not len(positions):
            return 0
        keep = np.ones(self._ntotal, dtype=bool)
        keep[positions] = False
        # Fresh arrays (not an in-place compaction): the storage may be a read-only memory map.
        self._codes = np.asarray(self._codes[: self._ntotal])[keep]
        self._id_store = np.asarray(self._id_store[: self._ntotal])[keep]
        self._ntotal = len(self._id_store)
        self._id_map = _IdMap.from_ids(self._id_store)
        self._changed()
        return len(positions)

    def reset(self) -> None:
        """Remove every item; ``n_bits`` is kept."""
        self._ntotal = 0
        self._codes = np.empty((0, self.code_size), dtype=np.uint8)
        self._id_store = np.empty(0, dtype=np.int64)
        self._id_map = _IdMap()
        self._changed()

    def get_codes(self, ids: Any) -> NDArray[np.uint8]:
        """The stored codes of the given ids (faiss' ``reconstruct_batch``).

        Parameters
        ----------
        ids : array-like of integers, shape (m,)

        Returns
        -------
        numpy.ndarray of uint8, shape (m, code_size)
            A copy; row ``j`` is the code of ``ids[j]``.

        Raises
        ------
        UnknownIdError
            An id is not in the index (a ``KeyError`` and an ``InvalidInputError``).
        """
        wanted = _as_id_array(ids, "ids")
        positions = self._id_map.lookup(wanted)
        missing = np.flatnonzero(positions < 0)
        if len(missing):
            raise UnknownIdError(
                f"id {wanted[missing[0]]} is not in the index ({len(missing)} of the "
                f"{len(wanted)} ids are unknown)"
            )
        return np.asarray(self._codes)[positions]

    # ------------------------------------------------------------------ search
    def _blocks(self, nq: int, k: int) -> tuple[int, int]:
        db_block = max(1, min(self._ntotal, _DB_BLOCK))
        query_block = max(1, min(_QUERY_BLOCK, _MAX_QUERY_BLOCK, nq, _KEY_BUDGET // (k + db_block)))
        return query_block, db_block

    def _db_words(self, start: int, stop: int) -> NDArray[np.uint64]:
        return _as_words(self._codes[start:stop])

    def search(
        self, queries: NDArray[np.uint8], k: int
    ) -> tuple[NDArray[np.int32], NDArray[np.int64]]:
        """Exact ``k`` nearest neighbours of each query by Hamming distance.

        Parameters
        ----------
        queries : numpy.ndarray of uint8, shape (nq, code_size)
        k : int
            Number of neighbours, >= 1. May exceed ``ntotal``.

        Returns
        -------
        D : numpy.ndarray of int32, shape (nq, k)
            Hamming distances, ascending along each row.
        I : numpy.ndarray of int64, shape (nq, k)
            Ids of the neighbours; equal distances are ordered by id ascending. When
            ``k > ntotal`` the last ``k - ntotal`` entries of each row are padding:
            ``I = -1`` and ``D = 2**31 - 1``.

        Raises
        ------
        CodeFormatError
            ``queries`` is not a ``uint8`` array of shape ``(nq, code_size)``.
        InvalidInputError
            ``k`` is not an integer >= 1.
        """
        queries = self._check_codes(queries, "queries")
        k = self._check_k(k)
        nq = len(queries)
        distances = np.full((nq, k), PAD_DISTANCE, dtype=np.int32)
        labels = np.full((nq, k), PAD_ID, dtype=np.int64)
        kk = min(k, self._ntotal)
        if kk == 0 or nq == 0:
            return distances, labels
        sorted_ids, rank = self._ids_in_order()
        query_words = _as_words(queries)
        query_block, db_block = self._blocks(nq, kk)
        block_distances = np.empty((query_block, db_block), dtype=np.int32)
        for q0 in range(0, nq, query_block):
            q1 = min(q0 + query_block, nq)
            best = np.empty((q1 - q0, 0), dtype=np.int64)
            for d0 in range(0, self._ntotal, db_block):
                d1 = min(d0 + db_block, self._ntotal)
                out = block_distances[: q1 - q0, : d1 - d0]
                _hamming_words(query_words[q0:q1], self._db_words(d0, d1), out)
                keys = out.astype(np.int64)
                keys <<= _RANK_BITS
                keys |= rank[d0:d1]
                candidates = np.concatenate([best, keys], axis=1)
                if candidates.shape[1] > kk:
                    candidates = np.partition(candidates, kk - 1, axis=1)[:, :kk]
                best = candidates
            best.sort(axis=1)
            distances[q0:q1, :kk] = best >> _RANK_BITS
            labels[q0:q1, :kk] = sorted_ids[best & _RANK_MASK]
        return distances, labels

    def range_search(
        self, queries: NDArray[np.uint8], radius: int
    ) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.int64]]:
        """Every item within Hamming distance ``radius`` (inclusive) of each query.

        Unlike faiss (``distance < radius``), the bound is inclusive: ``distance <= radius``,
        so ``radius=0`` finds exact duplicates.

        Parameters
        ----------
        queries : numpy.ndarray of uint8, shape (nq, code_size)
        radius : int
            Largest Hamming distance returned, >= 0.

        Returns
        -------
        lims : numpy.ndarray of int64, shape (nq + 1,)
            The results of query ``i`` are ``D[lims[i]:lims[i + 1]]`` and ``I[lims[i]:lims[i + 1]]``.
        D : numpy.ndarray of int32, shape (lims[-1],)
            Hamming distances, ascending within each query.
        I : numpy.ndarray of int64, shape (lims[-1],)
            Ids; equal distances are ordered by id ascending.

        Raises
        ------
        CodeFormatError
            ``queries`` is not a ``uint8`` array of shape ``(nq, code_size)``.
        InvalidInputError
            ``radius`` is not an integer >= 0.
        """
        queries = self._check_codes(queries, "queries")
        radius = self._check_radius(radius)
        nq = len(queries)
        counts = np.zeros(nq, dtype=np.int64)
        key_parts: list[NDArray[np.int64]] = []
        if self._ntotal and nq:
            _, rank = self._ids_in_order()
            query_words = _as_words(queries)
            query_block, db_block = self._blocks(nq, 1)
            block_distances = np.empty((query_block, db_block), dtype=np.int32)
            for q0 in range(0, nq, query_block):
                q1 = min(q0 + query_block, nq)
                rows: list[NDArray[np.intp]] = []
                keys: list[NDArray[np.int64]] = []
                for d0 in range(0, self._ntotal, db_block):
                    d1 = min(d0 + db_block, self._ntotal)
                    out = block_distances[: q1 - q0, : d1 - d0]
                    _hamming_words(query_words[q0:q1], self._db_words(d0, d1), out)
                    row, col = np.divmod(np.flatnonzero(out <= radius), out.shape[1])
                    key = out[row, col].astype(np.int64)
                    key <<= _RANK_BITS
                    key |= rank[d0 + col]
                    rows.append(row)
                    keys.append(key)
                row = np.concatenate(rows)
                key = np.concatenate(keys)
                order = np.lexsort((key, row))
                key_parts.append(key[order])
                counts[q0:q1] = np.bincount(row, minlength=q1 - q0)
        lims = np.zeros(nq + 1, dtype=np.int64)
        np.cumsum(counts, out=lims[1:])
        if not key_parts:
            return lims, np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int64)
        all_keys = np.concatenate(key_parts)
        sorted_ids, _ = self._ids_in_order()
        distances = (all_keys >> _RANK_BITS).astype(np.int32)
        labels = sorted_ids[all_keys & _RANK_MASK]
        return lims, distances, labels

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index to ``path`` atomically (temporary file, fsync, rename).

        The file format is described in :mod:`hashlearn.index._format`; read it back with
        :meth:`LinearIndex.load` or :func:`hashlearn.index.load_index`.
        """
        self._write(path, self._codes[: self._ntotal], self._id_store[: self._ntotal])

    @classmethod
    def _from_file(cls, file: IndexFile) -> LinearIndex:
        id_map = cls._id_map_from_file(file)
        index = cls(file.n_bits)
        index._codes = file.arrays["codes"]
        index._id_store = file.arrays["ids"]
        index._ntotal = file.ntotal
        index._id_map = id_map
        return index
