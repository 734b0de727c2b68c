"""faiss binary indexes behind hashlearn's index contract (:class:`FaissIndex`).

faiss is optional (``pip install "hashlearn[faiss]"``). This module imports without it; faiss is
imported when a :class:`FaissIndex` is built or loaded, and :class:`FaissNotInstalledError` (an
``ImportError``) says how to install it when it is missing.

* :class:`FaissIndex` wraps ``faiss.IndexBinaryFlat``, ``faiss.IndexBinaryHash`` or
  ``faiss.IndexBinaryMultiHash`` and follows the contract of :class:`~hashlearn.index.BinaryIndex`
  (arbitrary ``int64`` ids, results sorted by distance then id, inclusive range search, padding,
  hashlearn's index file format).
* :mod:`hashlearn.index.faiss_convert` converts between hashlearn indexes and faiss ones, and
  reads and writes faiss' own file format.

Codes need no conversion: hashlearn's packed layout is faiss' (see :mod:`hashlearn.codes`). faiss
binary indexes need ``n_bits`` to be a multiple of 8.

Threads
-------
faiss searches run on OpenMP threads. Their number is a process-wide faiss setting, chosen by the
caller with ``faiss.omp_set_num_threads(n)``; nothing in this module changes it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from hashlearn._validation import check_int, check_radius
from hashlearn.exceptions import FileFormatError, InvalidInputError, UnknownNameError
from hashlearn.index._faiss import (
    FaissNotInstalledError,
    check_byte_bits,
    faiss_message,
    import_faiss,
)
from hashlearn.index._format.layout import IndexFile
from hashlearn.index._mapped import MappedFile
from hashlearn.index.base import PAD_DISTANCE, PAD_ID, BinaryIndex

__all__ = ["FAISS_KINDS", "FaissIndex", "FaissNotInstalledError"]

# The parameters each kind takes, and which of them are required.
_KIND_PARAMS: dict[str, tuple[str, ...]] = {
    "flat": (),
    "hash": ("b", "nflip"),
    "multihash": ("nhash", "b", "nflip"),
}
FAISS_KINDS: tuple[str, ...] = tuple(_KIND_PARAMS)
"""The kinds of :class:`FaissIndex`: ``"flat"``, ``"hash"`` and ``"multihash"``."""
# A hash key is read into a 64-bit integer by faiss.
_MAX_KEY_BITS = 64


def _check_kind_params(
    n_bits: int, kind: Any, params: dict[str, Any]
) -> tuple[str, dict[str, int]]:
    """Validate a :class:`FaissIndex` kind and its parameters; return them normalised."""
    if not isinstance(kind, str) or kind not in _KIND_PARAMS:
        raise UnknownNameError(
            f"unknown FaissIndex kind {kind!r}; known kinds: {', '.join(FAISS_KINDS)}"
        )
    allowed = _KIND_PARAMS[kind]
    unknown = sorted(name for name in params if name not in allowed)
    if unknown:
        takes = f"it takes {', '.join(allowed)}" if allowed else "it takes no parameters"
        raise InvalidInputError(
            f"unknown parameter(s) {', '.join(map(repr, unknown))} for FaissIndex kind {kind!r}; "
            f"{takes}"
        )
    if kind == "flat":
        return kind, {}
    if "b" not in params:
        raise InvalidInputError(
            f"FaissIndex kind {kind!r} needs b, the number of bits of the hash key "
            f"(1..{min(n_bits, _MAX_KEY_BITS)})"
        )
    b = check_int(params["b"], "b", minimum=1, maximum=min(n_bits, _MAX_KEY_BITS))
    nflip = check_int(params.get("nflip", 0), "nflip", minimum=0, maximum=b)
    if kind == "hash":
        return kind, {"b": b, "nflip": nflip}
    if "nhash" not in params:
        raise InvalidInputError(
            f"FaissIndex kind 'multihash' needs nhash, the number of hash tables "
            f"(1..{n_bits // b} with b={b}: nhash * b <= n_bits)"
        )
    nhash = check_int(params["nhash"], "nhash", minimum=1)
    if nhash * b > n_bits:
        raise InvalidInputError(
            f"nhash * b must be <= n_bits (each table hashes its own b bits), got "
            f"nhash={nhash}, b={b}, n_bits={n_bits}"
        )
    return kind, {"nhash": nhash, "b": b, "nflip": nflip}


class FaissIndex(BinaryIndex):
    """A faiss binary index (flat scan or hash tables) behind hashlearn's index contract.

    Parameters
    ----------
    n_bits : int
        Code width in bits, a multiple of 8 in 8..4096 (faiss binary indexes store whole bytes).
        Codes are ``uint8`` arrays of shape ``(n, n_bits // 8)``.
    kind : {"flat", "hash", "multihash"}, default "flat"
        The faiss index used:

        ``"flat"``
            ``faiss.IndexBinaryFlat``: exact search by scanning every code. Takes no parameters.
        ``"hash"``
            ``faiss.IndexBinaryHash(n_bits, b)``: one hash table keyed by the first ``b`` bits
            of each code. A query visits the buckets whose key differs from its own in at most
            ``nflip`` bits, and ranks their items by their full Hamming distance.
        ``"multihash"``
            ``faiss.IndexBinaryMultiHash(n_bits, nhash, b)``: ``nhash`` tables keyed by
            consecutive, disjoint ``b``-bit substrings (bits ``[t * b, (t + 1) * b)`` for table
            ``t``); a query visits, in every table, the buckets within ``nflip`` bits of its key
            (multi-index hashing, Norouzi, Punjani & Fleet, "Fast Search in Hamming Space with
            Multi-Index Hashing", CVPR 2012).
    **params : int
        The parameters of ``kind``; any other name is an error.

        ``b`` (``"hash"``, ``"multihash"``; required)
            Bits of each hash key, ``1..min(n_bits, 64)``.
        ``nflip`` (``"hash"``, ``"multihash"``; default 0)
            Key bits a query may flip when probing buckets, ``0..b``. A query probes
            ``sum(comb(b, i) for i in range(nflip + 1))`` buckets per table.
        ``nhash`` (``"multihash"``; required)
            Number of hash tables, with ``nhash * b <= n_bits``.

    Raises
    ------
    FaissNotInstalledError
        faiss is not installed (an ``ImportError``).
    InvalidInputError
        ``n_bits`` is not a multiple of 8 in range, a parameter is unknown, missing or out of
        range.
    UnknownNameError
        ``kind`` is not one of :data:`FAISS_KINDS`.

    Notes
    -----
    **Ids.** The faiss index holds the items under their storage positions (faiss' sequential
    labels); the base class keeps the codes and the ``int64`` ids (any unique non-negative
    values) beside it, so codes are held twice in memory (once by faiss, counted in
    :attr:`nbytes`).

    **Results.** Every returned distance is the exact Hamming distance, and results are sorted
    by distance, then id ascending; :meth:`search` pads rows with ``I = -1``,
    ``D = 2**31 - 1`` and :meth:`range_search` is inclusive (``distance <= radius``), as every
    hashlearn index.

    * ``"flat"``: :meth:`search` returns exactly the distances of :class:`LinearIndex`, and the
      same ids, except that among items tied at the ``k``-th distance of a row faiss may keep
      others than the smallest ids (which ones depends on storage order).
      :meth:`range_search` equals :class:`LinearIndex`'s exactly.
    * ``"hash"``, ``"multihash"``: approximate. Only the items in the probed buckets are
      candidates, so results are the exact top-``k`` (or the exact range result) *among those
      candidates*, with the same tie caveat at the ``k``-th distance. With ``nflip = b`` every
      bucket is probed and the search is exhaustive.

    **Removal.** faiss' ``IndexBinaryHash`` and ``IndexBinaryMultiHash`` do not implement
    ``remove_ids``, so :meth:`remove_ids` rebuilds the faiss index from the stored codes of the
    items that remain (for every kind, so faiss' labels stay the storage positions):
    ``O(ntotal)`` per call, like faiss' own removal from a flat index. Remove many ids in one
    call.

    **Files.** :meth:`save` writes hashlearn's index format (:mod:`hashlearn.index._format`)
    with the codes, the ids, the kind and its parameters, and the faiss index serialised by
    ``faiss.serialize_index_binary`` (section ``"faiss"``), so :meth:`load` does not rebuild it.
    With ``mmap=True`` the codes and ids stay memory-mapped, but faiss holds its own copy of the
    codes in memory.

    **Threads.** faiss searches on OpenMP threads; set their number with
    ``faiss.omp_set_num_threads(n)``. This class never changes it.

    Examples
    --------
    >>> import numpy as np
    >>> from hashlearn.index.faiss_adapter import FaissIndex
    >>> index = FaissIndex(16, "hash", b=8)  # one table keyed by the first byte, nflip=0
    >>> index.add_with_ids(np.array([[1, 0], [1, 255], [3, 0]], dtype=np.uint8), [10, 20, 30])
    >>> D, I = index.search(np.array([[1, 0]], dtype=np.uint8), k=3)
    >>> D.tolist(), I.tolist()  # id 30, at distance 1, is in another bucket
    ([[0, 8, 2147483647]], [[10, 20, -1]])
    """

    type_name = "faiss"

    def __init__(self, n_bits: int, kind: str = "flat", **params: int) -> None:
        import_faiss()
        super().__init__(n_bits)
        check_byte_bits(self.n_bits, "FaissIndex")
        self._kind, self._settings = _check_kind_params(self.n_bits, kind, params)
        self._index = self._new_faiss_index()
        self._loaded: Any = None  # the faiss index read by _restore, taken up by _changed

    def _new_faiss_index(self) -> Any:
        faiss = import_faiss()
        if self._kind == "flat":
            return faiss.IndexBinaryFlat(self.n_bits)
        if self._kind == "hash":
            index = faiss.IndexBinaryHash(self.n_bits, self._settings["b"])
        else:
            index = faiss.IndexBinaryMultiHash(
                self.n_bits, self._settings["nhash"], self._settings["b"]
            )
        index.nflip = self._settings["nflip"]
        return index

    # ------------------------------------------------------------------ properties
    @property
    def kind(self) -> str:
        """The faiss index kind: ``"flat"``, ``"hash"`` or ``"multihash"``."""
        return self._kind

    @property
    def params(self) -> dict[str, int]:
        """The parameters of the kind (``b``, ``nflip``, ``nhash``), a copy."""
        return dict(self._settings)

    @property
    def nbytes(self) -> int:
        """Bytes held for the items, and faiss' copy of them: every code once, and an 8-byte
        label per item in each hash table (the hash maps' own overhead is not counted)."""
        tables = {"flat": 0, "hash": 1, "multihash": self._settings.get("nhash", 0)}[self._kind]
        return super().nbytes + self.ntotal * (self.code_size + 8 * tables)

    def __repr__(self) -> str:
        params = "".join(f", {name}={value}" for name, value in self._settings.items())
        return (
            f"FaissIndex(n_bits={self.n_bits}, kind={self._kind!r}{params}, ntotal={self.ntotal})"
        )

    # ------------------------------------------------------------------ the faiss index
    def _changed(
        self, added_from: int | None = None, removed: NDArray[np.int64] | None = None
    ) -> None:
        """Keep the faiss index holding every stored code under its storage position."""
        if added_from is not None:
            self._index.add(np.ascontiguousarray(self._store.codes[added_from:]))
            return
        if self._loaded is not None:  # the items are those of the file _restore read
            self._index, self._loaded = self._loaded, None
            return
        # A removal (faiss' hash indexes cannot remove), a reset or a load: build it again.
        self._index = self._new_faiss_index()
        if self.ntotal:
            self._index.add(np.ascontiguousarray(self._store.codes))

    # ------------------------------------------------------------------ search
    def search(
        self, queries: NDArray[np.uint8], k: int
    ) -> tuple[NDArray[np.int32], NDArray[np.int64]]:
        """The ``k`` nearest candidates of each query (every item for ``"flat"``, see the
        class notes); rows with fewer candidates than ``k`` are padded."""
        queries, distances, labels, kk = self._start_search(queries, k)
        nq = len(queries)
        if kk == 0 or nq == 0:
            return distances, labels
        found_d, found_pos = self._index.search(queries, kk)
        found = found_pos >= 0
        found_ids = np.where(
            found, np.asarray(self._store.ids)[np.where(found, found_pos, 0)], PAD_ID
        )
        found_d = np.where(found, found_d, PAD_DISTANCE).astype(np.int32)
        order = np.lexsort((found_ids, found_d))  # along each row: by distance, then id
        distances[:, :kk] = np.take_along_axis(found_d, order, axis=1)
        labels[:, :kk] = np.take_along_axis(found_ids, order, axis=1)
        return distances, labels

    def range_search(
        self, queries: NDArray[np.uint8], radius: int
    ) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.int64]]:
        """The candidates within ``radius`` (inclusive, where faiss' bound is strict) of each
        query (every item for ``"flat"``, see the class notes)."""
        queries = self._check_codes(queries, "queries")
        radius = check_radius(radius)
        nq = len(queries)
        if nq == 0 or self.ntotal == 0:
            empty_ids = np.empty(0, dtype=np.int64)
            return np.zeros(nq + 1, dtype=np.int64), np.empty(0, dtype=np.int32), empty_ids
        # Distances never exceed n_bits: clamping keeps faiss' (int) radius small.
        lims, found_d, found_pos = self._index.range_search(queries, min(radius, self.n_bits) + 1)
        lims = np.asarray(lims, dtype=np.int64)
        distances = np.asarray(found_d).astype(np.int32)  # faiss returns small integral floats
        found_ids = np.asarray(self._store.ids)[np.asarray(found_pos, dtype=np.int64)]
        rows = np.repeat(np.arange(nq, dtype=np.int64), np.diff(lims))
        order = np.lexsort((found_ids, distances, rows))
        return lims, distances[order], found_ids[order]

    # ------------------------------------------------------------------ persistence
    def _params(self) -> dict[str, Any]:
        return {"kind": self._kind, **self._settings}

    def _extra_arrays(self) -> dict[str, np.ndarray]:
        blob = import_faiss().serialize_index_binary(self._index)
        return {"faiss": np.asarray(blob, dtype=np.uint8)}

    @classmethod
    def _from_file(cls, file: IndexFile, mapped: MappedFile | None = None) -> FaissIndex:
        import_faiss()  # without faiss: FaissNotInstalledError, not "invalid parameters"
        return super()._from_file(file, mapped)

    def _restore(self, file: IndexFile) -> None:
        """Read the faiss index of the file's ``"faiss"`` section, checked against the file.

        Raises
        ------
        FileFormatError
            The section is missing or corrupted, or its faiss index is not the one the file's
            kind, parameters and codes describe.
        """
        faiss = import_faiss()
        blob = file.arrays.get("faiss")
        if blob is None or blob.dtype != np.uint8 or blob.ndim != 1:
            raise FileFormatError(
                "the index file has no 'faiss' section of uint8 bytes holding the faiss index"
            )
        try:
            raw = faiss.deserialize_index_binary(np.array(blob, dtype=np.uint8))
        except (RuntimeError, MemoryError) as exc:
            raise FileFormatError(
                f"the faiss index stored in the file is corrupted: {faiss_message(exc)}"
            ) from None
        kind, params = self._kind, self._settings
        problem = None
        if type(raw) is not type(self._index):
            problem = f"it is a {type(raw).__name__}, expected a {type(self._index).__name__}"
        elif raw.d != self.n_bits or raw.ntotal != self.ntotal:
            problem = (
                f"it holds {raw.ntotal} codes of {raw.d} bits, the file {self.ntotal} codes of "
                f"{self.n_bits} bits"
            )
        elif kind != "flat" and (
            raw.b != params["b"]
            or raw.nflip != params["nflip"]
            or (kind == "multihash" and raw.nhash != params["nhash"])
        ):
            problem = "its parameters differ from those in the file header"
        else:
            flat = raw if kind == "flat" else raw.storage if kind == "multihash" else None
            if flat is not None and not np.array_equal(
                faiss.vector_to_array(flat.xb), np.asarray(self._store.codes).reshape(-1)
            ):
                problem = "its codes differ from the codes stored in the file"
        if problem is not None:
            raise FileFormatError(
                f"the faiss index stored in the file does not match the file: {problem}"
            )
        self._loaded = raw
