"""faiss binary indexes behind hashlearn's index contract, and conversion to and from faiss.

faiss is optional (``pip install "hashlearn[faiss]"``). This module imports without it; faiss is
imported when a :class:`FaissIndex` is built or loaded, or a conversion function is called, and
:class:`FaissNotInstalledError` (an ``ImportError``) says how to install it when it is missing.

* :class:`FaissIndex` wraps ``faiss.IndexBinaryFlat``, ``faiss.IndexBinaryHash`` or
  ``faiss.IndexBinaryMultiHash`` and follows the contract of :class:`~hashlearn.index.BinaryIndex`
  (arbitrary ``int64`` ids, results sorted by distance then id, inclusive range search, padding,
  hashlearn's index file format).
* :func:`to_faiss` and :func:`from_faiss` convert between a hashlearn index and a faiss
  ``IndexBinaryIDMap2`` over an ``IndexBinaryFlat``; :func:`write_faiss_index` and
  :func:`read_faiss_index` do the same through faiss' own file format
  (``faiss.write_index_binary`` / ``faiss.read_index_binary``).

Codes need no conversion: hashlearn's packed layout is faiss' (see :mod:`hashlearn.codes`). faiss
binary indexes need ``n_bits`` to be a multiple of 8.

Threads
-------
faiss searches run on OpenMP threads. Their number is a process-wide faiss setting, chosen by the
caller with ``faiss.omp_set_num_threads(n)``; nothing in this module changes it.
"""

from __future__ import annotations

import importlib
import os
import re
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hashlearn._io import atomic_write
from hashlearn._validation import check_int
from hashlearn.exceptions import (
    FileFormatError,
    HashlearnError,
    InvalidInputError,
    UnknownNameError,
)
from hashlearn.index._format import IndexFile
from hashlearn.index.base import PAD_DISTANCE, PAD_ID, BinaryIndex
from hashlearn.index.linear import LinearIndex

__all__ = [
    "FAISS_KINDS",
    "FaissIndex",
    "FaissNotInstalledError",
    "from_faiss",
    "read_faiss_index",
    "to_faiss",
    "write_faiss_index",
]

_INSTALL_HINT = 'pip install "hashlearn[faiss]"'

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


class FaissNotInstalledError(HashlearnError, ModuleNotFoundError):
    """faiss, an optional dependency of hashlearn, is not installed."""


def _import_faiss() -> ModuleType:
    """The ``faiss`` module, or :class:`FaissNotInstalledError` naming the extra to install."""
    try:
        return importlib.import_module("faiss")
    except ImportError:
        raise FaissNotInstalledError(
            f"this needs faiss, an optional dependency that is not installed: {_INSTALL_HINT} "
            "(or: pip install faiss-cpu)",
            name="faiss",
        ) from None


def _faiss_message(exc: BaseException) -> str:
    """The useful part of a faiss error (faiss prefixes it with the C++ function and file)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    match = re.search(r"\.(?:cpp|h):\d+: (.*)$", text)
    return match.group(1) if match else text


def _check_byte_bits(n_bits: int, what: str) -> None:
    if n_bits % 8:
        raise InvalidInputError(
            f"{what} needs n_bits to be a multiple of 8, got n_bits={n_bits} (faiss binary "
            "indexes store whole bytes)"
        )


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

    type_name = "FaissIndex"

    def __init__(self, n_bits: int, kind: str = "flat", **params: int) -> None:
        _import_faiss()
        super().__init__(n_bits)
        _check_byte_bits(self.n_bits, "FaissIndex")
        self._kind, self._settings = _check_kind_params(self.n_bits, kind, params)
        self._index = self._new_faiss_index()
        self._loaded: Any = None  # the faiss index read by _restore, taken up by _changed

    def _new_faiss_index(self) -> Any:
        faiss = _import_faiss()
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
        radius = self._check_radius(radius)
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
        blob = _import_faiss().serialize_index_binary(self._index)
        return {"faiss": np.asarray(blob, dtype=np.uint8)}

    @classmethod
    def _from_file(cls, file: IndexFile) -> FaissIndex:
        _import_faiss()  # without faiss: FaissNotInstalledError, not "invalid parameters"
        return super()._from_file(file)

    def _restore(self, file: IndexFile) -> None:
        """Read the faiss index of the file's ``"faiss"`` section, checked against the file.

        Raises
        ------
        FileFormatError
            The section is missing or corrupted, or its faiss index is not the one the file's
            kind, parameters and codes describe.
        """
        faiss = _import_faiss()
        blob = file.arrays.get("faiss")
        if blob is None or blob.dtype != np.uint8 or blob.ndim != 1:
            raise FileFormatError(
                "the index file has no 'faiss' section of uint8 bytes holding the faiss index"
            )
        try:
            raw = faiss.deserialize_index_binary(np.array(blob, dtype=np.uint8))
        except (RuntimeError, MemoryError) as exc:
            raise FileFormatError(
                f"the faiss index stored in the file is corrupted: {_faiss_message(exc)}"
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


# ---------------------------------------------------------------------- conversion


def to_faiss(index: BinaryIndex) -> Any:
    """A faiss index holding the codes and ids of a hashlearn index.

    Parameters
    ----------
    index : BinaryIndex
        An index that can give its codes: it has ``ids`` and ``get_codes(ids)``
        (:class:`LinearIndex`, :class:`FaissIndex`). ``index.n_bits`` must be a multiple of 8.

    Returns
    -------
    faiss.IndexBinaryIDMap2
        Over a ``faiss.IndexBinaryFlat`` of dimension ``n_bits``, holding every code under its
        hashlearn id (in the order of ``index.ids``). Its ``search`` is exact but, unlike
        hashlearn's, neither breaks ties by id nor pads inclusively; ``range_search`` is strict.

    Raises
    ------
    FaissNotInstalledError
        faiss is not installed.
    InvalidInputError
        ``index`` is not a hashlearn index, cannot give its codes, or ``n_bits % 8 != 0``.
    """
    faiss = _import_faiss()
    if not isinstance(index, BinaryIndex):
        raise InvalidInputError(
            f"to_faiss takes a hashlearn BinaryIndex, got {type(index).__name__}"
        )
    if not callable(getattr(index, "get_codes", None)):
        raise InvalidInputError(
            f"{type(index).__name__} cannot give its codes (it has no get_codes method), so it "
            "cannot be converted to faiss"
        )
    _check_byte_bits(index.n_bits, "a faiss binary index")
    ids = index.ids
    codes = index.get_codes(ids)
    result = faiss.IndexBinaryIDMap2(faiss.IndexBinaryFlat(index.n_bits))
    if len(ids):
        result.add_with_ids(np.ascontiguousarray(codes, dtype=np.uint8), ids)
    return result


def from_faiss(faiss_index: Any) -> LinearIndex:
    """A :class:`LinearIndex` holding the codes and ids of a faiss flat binary index.

    Parameters
    ----------
    faiss_index : faiss.IndexBinaryFlat, faiss.IndexBinaryIDMap or faiss.IndexBinaryIDMap2
        A flat index (its items get ids ``0 .. ntotal - 1``, faiss' labels), or an id map over a
        flat index (its items keep their ids, which must be unique and non-negative).

    Returns
    -------
    LinearIndex
        ``n_bits`` is the faiss dimension ``d``; items are added in faiss' storage order.

    Raises
    ------
    FaissNotInstalledError
        faiss is not installed.
    InvalidInputError
        ``faiss_index`` is not a faiss binary index, is of another type (hash or IVF indexes
        do not expose their codes in storage order), or holds negative or repeated ids.
    """
    faiss = _import_faiss()
    if not isinstance(faiss_index, faiss.IndexBinary):
        raise InvalidInputError(
            f"from_faiss takes a faiss binary index (faiss.IndexBinary), got "
            f"{type(faiss_index).__name__}"
        )
    outer = faiss.downcast_IndexBinary(faiss_index)
    ids = None
    inner = outer
    if isinstance(outer, faiss.IndexBinaryIDMap):  # IndexBinaryIDMap2 derives from it
        ids = faiss.vector_to_array(outer.id_map).astype(np.int64, copy=False)
        inner = faiss.downcast_IndexBinary(outer.index)
    if not isinstance(inner, faiss.IndexBinaryFlat):
        wrapped = f" over a {type(inner).__name__}" if inner is not outer else ""
        raise InvalidInputError(
            f"from_faiss reads faiss.IndexBinaryFlat, or IndexBinaryIDMap / IndexBinaryIDMap2 "
            f"over one; got a {type(outer).__name__}{wrapped}"
        )
    n = int(inner.ntotal)
    codes = faiss.vector_to_array(inner.xb).reshape(n, int(inner.code_size))
    if ids is None:
        ids = np.arange(n, dtype=np.int64)
    elif len(ids) != n:
        raise InvalidInputError(
            f"the faiss id map holds {len(ids)} ids for {n} codes; the faiss index is inconsistent"
        )
    result = LinearIndex(int(inner.d))
    try:
        result.add_with_ids(codes, ids)
    except InvalidInputError as exc:
        raise InvalidInputError(f"the faiss index cannot become a LinearIndex: {exc}") from None
    return result


def write_faiss_index(index: BinaryIndex, path: str | os.PathLike[str]) -> None:
    """Write a hashlearn index as a faiss binary index file, atomically.

    The file holds :func:`to_faiss` ``(index)`` (an ``IndexBinaryIDMap2`` over an
    ``IndexBinaryFlat``) in faiss' format, readable by ``faiss.read_index_binary`` and
    :func:`read_faiss_index`. faiss streams it into a temporary file in the destination folder,
    which is flushed to disk and then renamed over ``path``, so ``path`` is never left
    half-written.

    Parameters
    ----------
    index : BinaryIndex
        An index that can give its codes (see :func:`to_faiss`).
    path : str or os.PathLike
        Destination file.

    Raises
    ------
    FaissNotInstalledError
        faiss is not installed.
    InvalidInputError
        ``index`` cannot be converted (see :func:`to_faiss`).
    FileNotFoundError, IsADirectoryError
        The destination folder does not exist, or ``path`` is a folder.
    """
    faiss = _import_faiss()
    faiss_index = to_faiss(index)
    with atomic_write(path) as handle:
        writer = faiss.PyCallbackIOWriter(handle.write)  # faiss streams into the open file
        try:
            faiss.write_index_binary(faiss_index, writer)
        except RuntimeError as exc:
            raise OSError(
                f"faiss could not write {os.fspath(path)!r}: {_faiss_message(exc)}"
            ) from None


def read_faiss_index(path: str | os.PathLike[str]) -> LinearIndex:
    """Read a faiss binary index file (``faiss.write_index_binary``) into a :class:`LinearIndex`.

    Parameters
    ----------
    path : str or os.PathLike
        A file holding an ``IndexBinaryFlat``, or an ``IndexBinaryIDMap`` /
        ``IndexBinaryIDMap2`` over one (what :func:`write_faiss_index` writes).

    Returns
    -------
    LinearIndex
        Same codes and ids (see :func:`from_faiss`).

    Raises
    ------
    FaissNotInstalledError
        faiss is not installed.
    FileNotFoundError, IsADirectoryError, PermissionError
        ``path`` cannot be opened (as for :func:`hashlearn.index.load_index`).
    FileFormatError
        The file is not a faiss binary index file (empty, truncated, corrupted, a float
        index...), or holds a binary index that is not flat.
    """
    faiss = _import_faiss()
    name = os.fspath(path)
    with open(name, "rb"):  # the usual OSError for a missing file or a folder, before faiss
        pass
    try:
        faiss_index = faiss.read_index_binary(name)
    except (RuntimeError, MemoryError) as exc:
        raise FileFormatError(
            f"{name}: not a readable faiss binary index file: {_faiss_message(exc)}"
        ) from None
    try:
        return from_faiss(faiss_index)
    except InvalidInputError as exc:
        raise FileFormatError(f"{name}: {exc}") from None
