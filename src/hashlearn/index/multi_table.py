"""``L`` hash tables over concatenated codes, searched by multi-probing (approximate k-NN).

:class:`MultiTableIndex` is the multiple-table scheme of Gionis, Indyk & Motwani ("Similarity
Search in High Dimensions via Hashing", VLDB 1999): ``L`` independently seeded hashers give ``L``
codes per item, concatenated by :func:`concatenate_codes`, and table ``t`` is keyed by the
``t``-th. What it shares with :class:`~hashlearn.index.HashTableIndex` (features, re-ranking,
the tables and why range searches over them are exact) is in :mod:`hashlearn.index._table_index`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from hashlearn._validation import check_int, check_k, check_radius
from hashlearn.codes import MAX_BITS, check_codes, n_bytes
from hashlearn.codes.distance import as_words
from hashlearn.exceptions import InvalidInputError
from hashlearn.index._table_index import MAX_KEY_BITS, TableIndex

__all__ = ["MultiTableIndex", "concatenate_codes"]


class MultiTableIndex(TableIndex):
    """``n_tables`` independent hash tables, each keyed by its own slice of the codes.

    Codes are the concatenation of the tables' codes (see :func:`concatenate_codes`):
    ``n_bits = n_tables * bits_per_table``, table ``t`` is keyed by bits
    ``[t * bits_per_table, (t + 1) * bits_per_table)``. With codes from ``L`` independently
    seeded hashers this is the classic ``L``-table LSH scheme (Gionis, Indyk & Motwani, VLDB 1999).

    Parameters
    ----------
    n_tables : int
        Number of tables ``L``, >= 1.
    bits_per_table : int
        Key width ``b`` of each table, 1..64; ``n_tables * bits_per_table <= 4096``.
    n_bits : int, optional
        The code width, ``n_tables * bits_per_table`` (the default); any other value is an error.
        Index files pass it.

    Notes
    -----
    :meth:`search` is an **approximate** index search: its candidates are the items sharing a
    bucket within ``probe_radius`` of the query's key in at least one table, ranked exactly by
    the Hamming distance of the full codes. A true neighbour that falls in no probed bucket is
    missed, so results are not exact k-NN in general; with ``probe_radius >= bits_per_table``
    every bucket is probed and they equal :class:`~hashlearn.index.LinearIndex`'s.

    :meth:`range_search` is exact: an item within full distance ``r`` lies within
    ``floor(r / L)`` of the query in at least one table (the full distance is the sum of the
    per-table distances), so probing every table at that radius and filtering by the full
    distance finds every such item.

    The tables are rebuilt, in ``O(L n log n)``, by the first search after items were added or
    removed. Holds fewer than ``2**32`` items.
    """

    type_name = "multi-table"

    def __init__(self, n_tables: int, bits_per_table: int, n_bits: int | None = None) -> None:
        n_tables = check_int(n_tables, "n_tables", minimum=1, maximum=MAX_BITS)
        bits_per_table = check_int(
            bits_per_table, "bits_per_table", minimum=1, maximum=MAX_KEY_BITS
        )
        total = n_tables * bits_per_table
        if total > MAX_BITS:
            raise InvalidInputError(
                f"n_tables * bits_per_table must be <= {MAX_BITS}, got "
                f"{n_tables} * {bits_per_table} = {total}"
            )
        if n_bits is not None and n_bits != total:
            raise InvalidInputError(
                f"n_bits ({n_bits!r}) does not match the layout: {n_tables} tables of "
                f"{bits_per_table} bits make {total}-bit codes"
            )
        super().__init__(total)
        self._n_tables = n_tables
        self._bits_per_table = bits_per_table

    @classmethod
    def constructor_args(cls, n_bits: int, **params: Any) -> dict[str, Any]:
        """``create_index("multi-table", n_bits, n_tables=L)``: ``n_bits`` is the width of the
        concatenated codes, split into ``L`` tables (``n_tables`` is required) of
        ``n_bits / L`` bits each.

        Raises
        ------
        InvalidInputError
            ``n_tables`` is missing, or ``n_bits`` is not a multiple of it.
        """
        n_bits = check_int(n_bits, "n_bits", minimum=1)
        if "n_tables" not in params:
            raise InvalidInputError("the multi-table index needs the parameter n_tables")
        n_tables = check_int(params.pop("n_tables"), "n_tables", minimum=1, maximum=n_bits)
        if n_bits % n_tables:
            raise InvalidInputError(
                f"n_bits ({n_bits}) must be a multiple of n_tables ({n_tables}): table t holds "
                "bits [t * n_bits / n_tables, (t + 1) * n_bits / n_tables)"
            )
        return {**params, "n_tables": n_tables, "bits_per_table": n_bits // n_tables}

    @classmethod
    def parameter_names(cls) -> tuple[str, ...]:
        """``n_tables`` alone: ``bits_per_table`` follows from ``n_bits``."""
        return ("n_tables",)

    @property
    def n_tables(self) -> int:
        """Number of hash tables."""
        return self._n_tables

    @property
    def bits_per_table(self) -> int:
        """Key width of each table in bits."""
        return self._bits_per_table

    def __repr__(self) -> str:
        return (
            f"MultiTableIndex(n_tables={self.n_tables}, bits_per_table={self.bits_per_table}, "
            f"ntotal={self.ntotal})"
        )

    def _layout(self) -> tuple[list[int], int]:
        b = self._bits_per_table
        return [t * b for t in range(self._n_tables)], b

    def _params(self) -> dict[str, Any]:
        return {"n_tables": self._n_tables, "bits_per_table": self._bits_per_table}

    @staticmethod
    def _check_probe_radius(probe_radius: Any) -> int:
        return check_int(probe_radius, "probe_radius", minimum=0)

    def search(
        self, queries: NDArray[np.uint8], k: int, probe_radius: int = 0
    ) -> tuple[NDArray[np.int32], NDArray[np.int64]]:
        """The best ``k`` candidates of each query by full-code Hamming distance (approximate).

        Parameters
        ----------
        queries : numpy.ndarray of uint8, shape (nq, code_size)
            Concatenated codes, as stored.
        k : int
            Number of results, >= 1.
        probe_radius : int, default 0
            Per-table key radius probed: 0 looks at the query's own bucket in each table.
            ``>= bits_per_table`` probes every bucket (then results are exact).

        Returns
        -------
        D : numpy.ndarray of int32, shape (nq, min(k, ntotal))
            Hamming distances of the full codes, ascending; padding ``2**31 - 1``.
        I : numpy.ndarray of int64, shape (nq, min(k, ntotal))
            Ids, ties by id ascending; padding ``-1`` when fewer than ``k`` candidates.

        Raises
        ------
        CodeFormatError
            ``queries`` is not a ``uint8`` array of shape ``(nq, code_size)``.
        InvalidInputError
            ``k`` < 1 or ``probe_radius`` < 0.
        """
        queries = self._check_codes(queries, "queries")
        k = check_k(k)
        return self._top(queries, k, self._check_probe_radius(probe_radius), self.n_bits)

    def range_search(
        self, queries: NDArray[np.uint8], radius: int
    ) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.int64]]:
        """Every item within Hamming distance ``radius`` (inclusive) of each query; exact (each
        table is probed at radius ``radius // n_tables``: see the class notes)."""
        queries = self._check_codes(queries, "queries")
        radius = check_radius(radius)
        return self._range(queries, radius // self._n_tables, radius)

    def search_rerank(
        self,
        queries: NDArray[np.uint8],
        query_features: Any,
        k: int,
        probe_radius: int = 0,
        metric: str = "cosine",
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """The candidates of :meth:`search`, re-ranked by feature distance.

        Parameters
        ----------
        queries : numpy.ndarray of uint8, shape (nq, code_size)
        query_features : array-like of float, shape (nq, n_features)
        k : int
            Number of results, >= 1.
        probe_radius : int, default 0
            Per-table key radius probed; the default, the query's own bucket of each table, is
            also that of ``hashlearn search --rerank`` on several tables.
        metric : {"cosine", "l2"}, default "cosine"
            As in :meth:`HashTableIndex.search_rerank`.

        Returns
        -------
        D : numpy.ndarray of float32, shape (nq, min(k, ntotal))
            Feature distances, ascending; padding ``inf``.
        I : numpy.ndarray of int64, shape (nq, min(k, ntotal))
            Ids, ties by id ascending; padding ``-1``.

        Raises
        ------
        UnknownNameError
            ``metric`` is unknown.
        InvalidInputError
            No stored features, bad ``query_features``, ``k`` < 1 or ``probe_radius`` < 0.
        CodeFormatError
            ``queries`` is not a ``uint8`` array of shape ``(nq, code_size)``.
        """
        queries = self._check_codes(queries, "queries")
        probe_radius = self._check_probe_radius(probe_radius)
        return self._rerank(queries, query_features, k, metric, probe_radius, self.n_bits)


def concatenate_codes(codes: Any, bits_per_table: int) -> NDArray[np.uint8]:
    """Concatenate ``L`` sets of ``bits_per_table``-bit codes into ``L * bits_per_table``-bit codes.

    Bit ``i`` of the ``t``-th set becomes bit ``t * bits_per_table + i`` of the result, so
    :class:`MultiTableIndex` keys table ``t`` by the ``t``-th set. ``bits_per_table`` need not be
    a multiple of 8.

    Parameters
    ----------
    codes : sequence of numpy.ndarray of uint8, each of shape (n, ceil(bits_per_table / 8))
        The tables' codes, e.g. ``[hasher.encode(X) for hasher in hashers]``, same ``n``.
    bits_per_table : int
        Width of each set of codes, >= 1; ``L * bits_per_table <= 4096``.

    Returns
    -------
    numpy.ndarray of uint8, shape (n, ceil(L * bits_per_table / 8))

    Raises
    ------
    InvalidInputError
        No code sets, different numbers of rows, or too many bits in all.
    CodeFormatError
        A set is not packed ``bits_per_table``-bit codes.

    Examples
    --------
    >>> import numpy as np
    >>> from hashlearn.index.multi_table import concatenate_codes
    >>> a = np.array([[0b101]], dtype=np.uint8)   # 3-bit code: bits 1, 0, 1
    >>> b = np.array([[0b011]], dtype=np.uint8)   # 3-bit code: bits 1, 1, 0
    >>> bin(int(concatenate_codes([a, b], 3)[0, 0]))
    '0b11101'
    """
    b = check_int(bits_per_table, "bits_per_table", minimum=1, maximum=MAX_BITS)
    if isinstance(codes, np.ndarray) or not hasattr(codes, "__len__"):
        raise InvalidInputError(
            f"codes must be a list of code arrays (one per table), got {type(codes).__name__}"
        )
    parts = [check_codes(c, b, name=f"codes[{t}]") for t, c in enumerate(codes)]
    if not parts:
        raise InvalidInputError("codes must hold at least one code array")
    total = len(parts) * b
    if total > MAX_BITS:
        raise InvalidInputError(
            f"{len(parts)} tables of {bits_per_table} bits make {total} bits, more than {MAX_BITS}"
        )
    n = len(parts[0])
    for t, part in enumerate(parts):
        if len(part) != n:
            raise InvalidInputError(
                f"every code array must have the same number of rows: codes[0] has {n}, "
                f"codes[{t}] has {len(part)}"
            )
    out_words = np.zeros((n, (total + 63) // 64), dtype=np.uint64)
    for t, part in enumerate(parts):
        words = as_words(part)
        for w in range(words.shape[1]):
            offset = t * b + 64 * w  # bit of the result receiving this word's bit 0
            w0, shift = divmod(offset, 64)
            out_words[:, w0] |= words[:, w] << np.uint64(shift)
            if shift and w0 + 1 < out_words.shape[1]:
                out_words[:, w0 + 1] |= words[:, w] >> np.uint64(64 - shift)
    width = n_bytes(total)
    return np.ascontiguousarray(
        out_words.view(np.uint8).reshape(n, 8 * out_words.shape[1])[:, :width]
    )
