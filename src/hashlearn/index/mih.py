"""Exact Hamming search with multi-index hashing (Norouzi, Punjani & Fleet).

Reference: M. Norouzi, A. Punjani and D. J. Fleet, "Fast Search in Hamming Space with Multi-Index
Hashing", CVPR 2012; extended as "Fast Exact Search in Hamming Space with Multi-Index Hashing",
IEEE TPAMI 36(6), 2014 (arXiv:1307.2982).

Each code of ``b`` bits is cut into ``m`` contiguous substrings, and one hash table per substring
maps a substring value to the items holding it. Two codes within Hamming distance ``r`` agree
within ``floor(r / m)`` bits on at least one substring (pigeonhole), so probing every table
around the query's substrings finds every item within ``r``: exactly, unlike LSH.

The tables are built by :mod:`hashlearn.index._mih_tables`; the compiled searches are in
:mod:`hashlearn.index._mih_search` (over the primitives of :mod:`hashlearn.index._mih_probe`).
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hashlearn._validation import check_int, check_radius
from hashlearn.codes.distance import as_words
from hashlearn.codes.keys import decode_keys
from hashlearn.exceptions import InvalidInputError
from hashlearn.index._blocks import map_query_blocks
from hashlearn.index._mih_search import knn_block, range_block
from hashlearn.index._mih_tables import (
    MAX_SUBSTRING_BITS,
    MihTables,
    auto_substrings,
    build_tables,
    substring_layout,
)
from hashlearn.index.base import BinaryIndex

__all__ = ["MultiIndexHashingIndex"]

# range_search gives each query room for this many results in a first pass; queries that find
# more are searched again with exactly the room they need. Queries go in blocks of _QUERY_BLOCK.
_RANGE_ROOM = 16
_QUERY_BLOCK = 16384


class MultiIndexHashingIndex(BinaryIndex):
    """Exact k-NN and range search in Hamming space with multi-index hashing.

    Norouzi, Punjani & Fleet, "Fast Search in Hamming Space with Multi-Index Hashing", CVPR 2012
    and IEEE TPAMI 2014. Results are identical to :class:`~hashlearn.index.LinearIndex`'s,
    including the order of ties (by id), but a search reads only the items that share a nearly
    equal substring with the query instead of every item.

    Parameters
    ----------
    n_bits : int
        Code width in bits, 1..4096. Codes are ``uint8`` arrays of shape
        ``(n, ceil(n_bits / 8))`` in the layout of :mod:`hashlearn.codes` (faiss' layout).
    n_substrings : int or None, default None
        Number ``m`` of substrings (and hash tables), ``ceil(n_bits / 64) .. n_bits`` (a
        substring holds at most 64 bits). ``None`` chooses it from the number of items ``n`` each
        time the tables are built: substrings of ``s = max(log2(n) - 7, 8)`` bits, that is
        ``m = round(n_bits / s)`` clamped to that range (see the notes).

    Notes
    -----
    **Substrings.** Bits ``0 .. n_bits - 1`` are cut into ``m`` contiguous substrings whose
    lengths differ by at most one (the first ``n_bits % m`` are the longer ones). The paper
    suggests substrings of about ``log2(n)`` bits, one item per bucket, which balances the number
    of buckets probed against the number of items checked when both cost the same. Here they do
    not: probing a bucket is a random memory access, while checking its items reads them in a
    row (a few nanoseconds each), so the automatic rule aims at buckets of about ``2**7``
    items, ``s = log2(n) - 7`` bits (at least 8). On 10M random 64-bit codes this gives
    ``m = 4`` (16-bit substrings), whose k-NN search (k = 10) was 4.7x faster than with the
    paper's ``m = 3``.

    **Tables.** Table ``j`` lists every item sorted by the value of its substring ``j`` (CSR:
    entries and bucket offsets). A table of ``s``-bit substrings is addressed directly (offsets
    indexed by the substring value, ``2**s + 1`` of them) when ``s <= 26`` and
    ``2**s <= 4 * max(n, 2**16)``, so offsets cost at most 4 entries per item (or 1 MiB per
    table); otherwise the table keeps its distinct substring values sorted and finds a bucket by
    binary search. An entry is the item's rank in id order (``int32`` below ``2**31`` items),
    and for codes of at most 128 bits the entry's code is copied next to it, so the codes of a
    bucket are read in a row; wider codes are read from one copy sorted by id. Memory for ``n``
    items of ``W = ceil(n_bits / 64)`` words: ``m * n * (4 + 8 * W)`` bytes (``W <= 2``) or
    ``n * (4 * m + 8 * W)`` bytes (``W > 2``), plus the offsets. 10M 64-bit codes (``m = 4``)
    take 48 bytes per item, 459 MiB; :meth:`memory_usage` reports the figure.

    The tables are built on the first search after items were added or removed (or by
    :meth:`build_tables`), in ``O(m * (n + 2**s))`` time for direct tables (a counting sort) and
    ``O(m * n log n)`` for sorted ones; ``m`` is chosen again at each build when
    ``n_substrings`` is ``None``.

    **Range search** (inclusive, ``distance <= r``). Write ``r = m * q + a`` with ``0 <= a < m``.
    An item within ``r`` has a substring ``j <= a`` within ``q`` bits of the query's, or a
    substring ``j > a`` within ``q - 1`` bits: otherwise its distance would be at least
    ``(a + 1) * (q + 1) + (m - a - 1) * q = r + 1`` (the paper's pigeonhole argument, sharpened
    for ``r`` not a multiple of ``m``). So table ``j`` is probed at every substring value within
    ``q`` (``j <= a``) or ``q - 1`` (``j > a``) bits of the query's, the flip masks of each
    weight being enumerated on the fly (Gosper's hack), and the items met are checked in full.

    **k-NN** (the paper's incremental search). For ``q = 0, 1, 2, ...`` and, within each, for
    tables ``j = 0 .. m - 1``, the masks of weight exactly ``q`` are probed in table ``j``, and
    the items met feed a top-``k`` heap of ``(distance, id)`` keys. After table ``j`` at ``q``,
    every item within ``m * q + j`` has been met (an item not met differs by ``>= q + 1`` bits in
    substrings ``0 .. j`` and by ``>= q`` in the others, ``>= m * q + j + 1`` in all), so the
    search stops once the ``k``-th best distance is ``<= m * q + j``: every item that could rank
    before it, ties by id included, has been seen.

    **Duplicates.** An item is met in several tables. Instead of a visited marker per item, an
    item met in table ``j`` is dropped when one of its other substrings lies within the radius
    already probed in that substring's table (it was met there before): a few popcounts on a
    code already in cache, no memory per query, and only for items that would enter the results.

    **Fallback.** When probing would cost more than checking every item (large radii, few items,
    long substrings; cost counted in items, a probe costing its lookup plus an average bucket),
    the search checks every item instead: range search decides per call, k-NN per query and
    step, counting what it has spent, so a search costs at most about twice a linear scan.

    Queries are split into tasks run on the index threads
    (:func:`hashlearn.index.set_num_threads`); the compiled kernels release the GIL.

    Examples
    --------
    >>> import numpy as np
    >>> from hashlearn.index.mih import MultiIndexHashingIndex
    >>> index = MultiIndexHashingIndex(16)
    >>> index.add_with_ids(np.array([[1, 0], [3, 0], [0, 255]], dtype=np.uint8), [10, 20, 30])
    >>> D, I = index.search(np.array([[1, 0]], dtype=np.uint8), k=2)
    >>> D.tolist(), I.tolist()
    ([[0, 1]], [[10, 20]])
    >>> lims, D, I = index.range_search(np.array([[1, 0]], dtype=np.uint8), radius=1)
    >>> lims.tolist(), D.tolist(), I.tolist()
    ([0, 2], [0, 1], [10, 20])
    """

    type_name = "mih"

    def __init__(self, n_bits: int, n_substrings: int | None = None) -> None:
        super().__init__(n_bits)
        min_substrings = -(-self.n_bits // MAX_SUBSTRING_BITS)
        if n_substrings is not None:
            n_substrings = check_int(n_substrings, "n_substrings", minimum=1, maximum=self.n_bits)
            if n_substrings < min_substrings:
                raise InvalidInputError(
                    f"n_substrings must be >= {min_substrings} for {self.n_bits}-bit codes (a "
                    f"substring holds at most {MAX_SUBSTRING_BITS} bits), got {n_substrings}"
                )
        self._n_substrings = n_substrings
        self._tables: MihTables | None = None
        self._build_lock = threading.Lock()
        self._version = 0  # counts changes, so that tables built meanwhile are not kept

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n_bits={self.n_bits}, n_substrings={self._n_substrings}, "
            f"ntotal={self.ntotal})"
        )

    # ------------------------------------------------------------------ properties
    @property
    def n_substrings(self) -> int:
        """Number of substrings (tables) for the current items: as given, or by the rule above."""
        if self._n_substrings is not None:
            return self._n_substrings
        return auto_substrings(self.n_bits, self.ntotal)

    @property
    def substring_bits(self) -> list[int]:
        """Lengths in bits of the substrings for the current items (they differ by at most 1)."""
        return substring_layout(self.n_bits, self.n_substrings)[1].tolist()

    @property
    def nbytes(self) -> int:
        """Bytes held: the items (as :attr:`LinearIndex.nbytes
        <hashlearn.index.LinearIndex.nbytes>` counts them) plus the tables, when built."""
        return self.memory_usage()["total"]

    def memory_usage(self) -> dict[str, int]:
        """Bytes held by the index, by part.

        Returns
        -------
        dict of str to int
            ``"items"``: codes and ids (and the id map when ids were not added in ascending
            order); ``"tables"``: the hash tables (bucket offsets, sorted substring values,
            entries and the code copies they read; 0 while they are not built); ``"total"``.
        """
        items = self._store.nbytes
        tables = self._tables.nbytes if self._tables is not None else 0
        return {"items": items, "tables": tables, "total": items + tables}

    def _params(self) -> dict[str, Any]:
        return {"n_substrings": self._n_substrings}

    def _changed(
        self, added_from: int | None = None, removed: NDArray[np.int64] | None = None
    ) -> None:
        """Items changed: the tables are rebuilt (``m`` chosen again) on the next search."""
        super()._changed(added_from=added_from, removed=removed)
        self._version += 1
        self._tables = None

    # ------------------------------------------------------------------ tables
    def build_tables(self) -> None:
        """Build the hash tables now, if items changed since they were last built.

        Searches build them anyway; this pays the cost at a chosen time (after a bulk add).
        Cost: ``O(m * (ntotal + 2**s))`` for direct tables, ``O(m * ntotal * log(ntotal))`` for
        sorted ones, ``s`` being the substring length; the tables are built side by side on the
        index threads.
        """
        self._current_tables()

    def _current_tables(self) -> MihTables:
        with self._build_lock:
            tables = self._tables
            if tables is None:
                version = self._version
                sorted_ids, rank = self._store.order()
                codes = np.asarray(self._store.codes)
                if rank is not None:  # rows in id order
                    by_rank = np.empty_like(rank)
                    by_rank[rank] = np.arange(len(rank), dtype=rank.dtype)
                    codes = codes[by_rank]
                tables = build_tables(
                    as_words(codes), self.n_bits, self.n_substrings, np.asarray(sorted_ids)
                )
                if version == self._version:  # else items changed meanwhile: not kept
                    self._tables = tables
            return tables

    # ------------------------------------------------------------------ search
    def search(
        self, queries: NDArray[np.uint8], k: int
    ) -> tuple[NDArray[np.int32], NDArray[np.int64]]:
        """Exact ``k`` nearest neighbours of each query (see :meth:`BinaryIndex.search`)."""
        queries, distances, labels, kk = self._start_search(queries, k)
        nq = len(queries)
        if kk == 0 or nq == 0:
            return distances, labels
        tables = self._current_tables()
        query_words = as_words(queries)
        keys = np.empty((nq, kk), dtype=np.int64)
        map_query_blocks(knn_block, (*tables.layout(), tables.probe_cost), (query_words, keys))
        distances[:, :kk], labels[:, :kk] = decode_keys(keys, tables.sorted_ids)
        return distances, labels

    def range_search(
        self, queries: NDArray[np.uint8], radius: int
    ) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.int64]]:
        """Every item within ``radius`` (inclusive) of each query (see
        :meth:`BinaryIndex.range_search`)."""
        queries = self._check_codes(queries, "queries")
        radius = min(check_radius(radius), self.n_bits)
        nq = len(queries)
        lims = np.zeros(nq + 1, dtype=np.int64)
        if self.ntotal == 0 or nq == 0:
            return lims, np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int64)
        tables = self._current_tables()
        # radius = m * quotient + remainder: tables 0..remainder are probed at quotient bits,
        # the others at quotient - 1 (see the class notes).
        m = len(tables.sub_len)
        quotient, remainder = divmod(radius, m)
        probe_radius = np.where(np.arange(m) <= remainder, quotient, quotient - 1).astype(np.int64)
        # In Python integers: C(64, 0) + ... + C(64, 32) exceeds int64.
        probes = sum(
            math.comb(int(s), w) * int(c)
            for s, r, c in zip(tables.sub_len, probe_radius, tables.probe_cost, strict=True)
            for w in range(min(int(r), int(s)) + 1)
        )
        scan = probes > tables.n_items  # then looking at every item is cheaper
        layout = tables.layout()

        def run(words, starts, room, out, counts) -> None:  # type: ignore[no-untyped-def]
            shared = (radius, probe_radius, scan, out, *layout)
            map_query_blocks(range_block, shared, (words, starts, room, counts))

        query_words = as_words(queries)
        parts: list[NDArray[np.int64]] = []
        for b0 in range(0, nq, _QUERY_BLOCK):
            block = query_words[b0 : b0 + _QUERY_BLOCK]
            nb = len(block)
            # First pass: room for _RANGE_ROOM results per query.
            room = np.full(nb, _RANGE_ROOM, dtype=np.int64)
            starts = np.arange(nb, dtype=np.int64) * _RANGE_ROOM
            first = np.empty(nb * _RANGE_ROOM, dtype=np.int64)
            counts = np.empty(nb, dtype=np.int64)
            run(block, starts, room, first, counts)
            block_lims = np.zeros(nb + 1, dtype=np.int64)
            np.cumsum(counts, out=block_lims[1:])
            keys = np.empty(block_lims[-1], dtype=np.int64)
            fits = counts <= _RANGE_ROOM
            slot = np.arange(_RANGE_ROOM)
            take = fits[:, None] & (slot < counts[:, None])
            keys[(block_lims[:-1, None] + slot)[take]] = first.reshape(nb, _RANGE_ROOM)[take]
            # Queries that found more are searched again, writing straight into place.
            over = np.flatnonzero(~fits)
            if len(over):
                run(
                    np.ascontiguousarray(block[over]), block_lims[over], counts[over], keys,
                    np.empty(len(over), dtype=np.int64),
                )  # fmt: skip
            lims[b0 + 1 : b0 + nb + 1] = block_lims[1:] + lims[b0]
            parts.append(keys)
        return (lims, *decode_keys(np.concatenate(parts), tables.sorted_ids))
