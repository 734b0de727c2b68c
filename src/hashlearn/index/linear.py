"""Exact Hamming search by a compiled, multi-threaded linear scan (faiss' ``IndexBinaryFlat``)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hashlearn.exceptions import InvalidInputError
from hashlearn.index import _kernels
from hashlearn.index._format import IndexFile
from hashlearn.index._store import CodeStore
from hashlearn.index.base import (
    PAD_DISTANCE,
    PAD_ID,
    BinaryIndex,
    UnknownIdError,
    _as_id_array,
)

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
    on :func:`hashlearn.index.get_num_threads` threads (see :mod:`hashlearn.index._kernels`):
    queries are split in groups and the database in cache-sized blocks, so each block is read
    from memory once per group of queries; only a running top-k (a heap of ``k`` keys) is kept
    per query, never the distance matrix. Memory per item is ``code_size`` bytes of code plus 8
    bytes of id (plus 16 bytes of id map and rank, built on the first search after a change).

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
        self._store = CodeStore(self.code_size)

    # ------------------------------------------------------------------ properties
    @property
    def ntotal(self) -> int:
        """Number of items in the index."""
        return len(self._store)

    @property
    def ids(self) -> NDArray[np.int64]:
        """Ids of the items in insertion order, ``int64`` of shape ``(ntotal,)`` (a copy)."""
        return np.array(self._store.ids, dtype=np.int64)

    @property
    def nbytes(self) -> int:
        """Bytes held for the items: ``code_size + 8`` per item while ids are ascending in
        insertion order, plus 32 per item otherwise (id map and rank cache)."""
        return self._store.nbytes

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
        if self.ntotal + len(ids) >= 1 << _kernels.RANK_BITS:
            raise InvalidInputError(f"a LinearIndex holds fewer than 2**{_kernels.RANK_BITS} items")
        self._store.append(codes, ids)

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
        return self._store.remove(_as_id_array(ids, "ids"))

    def reset(self) -> None:
        """Remove every item; ``n_bits`` is kept."""
        self._store.reset()

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
        positions = self._store.positions(wanted)
        missing = np.flatnonzero(positions < 0)
        if len(missing):
            raise UnknownIdError(
                f"id {wanted[missing[0]]} is not in the index ({len(missing)} of the "
                f"{len(wanted)} ids are unknown)"
            )
        return np.asarray(self._store.codes)[positions]

    # ------------------------------------------------------------------ search
    def _positions(self, ids: NDArray[np.int64]) -> NDArray[np.int64]:
        return self._store.positions(ids)

    def _words(self) -> NDArray[np.unsignedinteger]:
        """The stored codes as ``(ntotal, w)`` words for the kernels (a view, no copy)."""
        return _kernels.words_view(np.asarray(self._store.codes))

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
        kk = min(k, self.ntotal)
        if kk == 0 or nq == 0:
            return distances, labels
        sorted_ids, rank = self._store.order()
        keys = _kernels.knn_search(self._words(), rank, _kernels.words_view(queries), kk)
        distances[:, :kk] = keys >> _kernels.RANK_BITS
        labels[:, :kk] = sorted_ids[keys & _kernels.RANK_MASK]
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
        if self.ntotal == 0 or nq == 0:
            lims = np.zeros(nq + 1, dtype=np.int64)
            return lims, np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int64)
        sorted_ids, rank = self._store.order()
        lims, keys = _kernels.range_search(
            self._words(), rank, _kernels.words_view(queries), min(radius, self.n_bits)
        )
        distances = (keys >> _kernels.RANK_BITS).astype(np.int32)
        return lims, distances, sorted_ids[keys & _kernels.RANK_MASK]

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index to ``path`` atomically (temporary file, fsync, rename).

        The file format is described in :mod:`hashlearn.index._format`; read it back with
        :meth:`LinearIndex.load` or :func:`hashlearn.index.load_index`.
        """
        self._write(path, self._store.codes, self._store.ids)

    @classmethod
    def _from_file(cls, file: IndexFile) -> LinearIndex:
        cls._check_file_items(file)
        index = cls(file.n_bits)
        index._store = CodeStore.from_arrays(file.arrays["codes"], file.arrays["ids"])
        return index
