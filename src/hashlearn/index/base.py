"""The contract every hashlearn index follows, and the parts index types share.

The contract is faiss' binary index contract (``faiss.IndexBinary``): an index holds packed
``uint8`` codes of ``n_bits`` bits, each with a non-negative ``int64`` id; :meth:`~BinaryIndex.add`
assigns sequential ids, :meth:`~BinaryIndex.add_with_ids` takes them from the caller,
:meth:`~BinaryIndex.search` returns ``(D, I)`` arrays of Hamming distances (``int32``) and ids
(``int64``). Every parameter is given per call; there are no setters and no two-step init.

Differences from faiss, on purpose:

* result ties are broken by id (ascending), so results do not depend on insertion order;
* ``range_search`` is inclusive (distance ``<= radius``), faiss' is strict (``< radius``);
* padding in ``search`` results is ``I = -1`` with ``D = 2**31 - 1`` (``numpy.iinfo(int32).max``);
* ids must be unique and non-negative (``-1`` is the padding id).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import Any, ClassVar, TypeVar

import numpy as np
from numpy.typing import NDArray

from hashlearn._validation import check_int
from hashlearn.codes import MAX_BITS, check_codes, n_bytes
from hashlearn.exceptions import (
    CodeFormatError,
    FileFormatError,
    HashlearnError,
    InvalidInputError,
)
from hashlearn.index._format import IndexFile, read_index_file, write_index_file
from hashlearn.index._store import CodeStore

__all__ = ["MAX_ITEMS", "PAD_DISTANCE", "PAD_ID", "BinaryIndex", "UnknownIdError", "load_index"]

PAD_ID = -1
"""Id of the padding entries of :meth:`BinaryIndex.search` results (fewer than ``k`` items)."""
PAD_DISTANCE = int(np.iinfo(np.int32).max)
"""Distance of the padding entries of :meth:`BinaryIndex.search` results: ``2**31 - 1``."""

MAX_ITEMS = 1 << 40
"""Most items an index holds (result keys keep an item's rank in 40 bits)."""

_INDEX_TYPES: dict[str, type[BinaryIndex]] = {}
_Index = TypeVar("_Index", bound="BinaryIndex")


class UnknownIdError(InvalidInputError, KeyError):
    """An id passed to :meth:`LinearIndex.get_codes` is not in the index."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly.
        return str(self.args[0]) if self.args else ""


def _as_id_array(ids: Any, name: str) -> NDArray[np.int64]:
    """Return ``ids`` as a 1-D ``int64`` array; integers of any dtype that fit are accepted."""
    array = np.asarray(ids)
    if array.ndim != 1:
        raise InvalidInputError(
            f"{name} must be a 1-D array of integer ids, got shape {array.shape}"
        )
    if array.size == 0:
        return np.empty(0, dtype=np.int64)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise InvalidInputError(f"{name} must hold integers, got dtype {array.dtype}")
    if array.dtype == np.uint64 and (array > np.iinfo(np.int64).max).any():
        bad = array[array > np.iinfo(np.int64).max][0]
        raise InvalidInputError(f"{name} must fit in int64, got {bad}")
    return np.ascontiguousarray(array, dtype=np.int64)


class BinaryIndex(ABC):
    """Abstract base of the hashlearn indexes over packed binary codes.

    Parameters
    ----------
    n_bits : int
        Code width in bits, 1..4096. Codes are ``uint8`` arrays of shape
        ``(n, ceil(n_bits / 8))`` in the layout of :mod:`hashlearn.codes` (faiss' layout).

    Notes
    -----
    The base class keeps the items (codes and unique ids in insertion order, in a
    :class:`~hashlearn.index._store.CodeStore`) and implements everything but searching: adding,
    removing, looking codes up, saving and loading. A subclass sets the class attribute
    ``type_name`` (the name stored in index files, by which :func:`load_index` finds it),
    implements :meth:`search` and :meth:`range_search`, keeps any structure it builds over the
    items (tables, a faiss index) current in :meth:`_changed`, and states its constructor
    arguments in :meth:`_params` so that files record them.
    """

    type_name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Only a class that names its own type registers: a subclass that inherits the name
        # (a user's wrapper, a test double) must not take over the files of its parent.
        if cls.__dict__.get("type_name"):
            _INDEX_TYPES[cls.type_name] = cls

    def __init__(self, n_bits: int) -> None:
        self._n_bits = check_int(n_bits, "n_bits", minimum=1, maximum=MAX_BITS)
        self._code_size = n_bytes(self._n_bits)
        self._store = CodeStore(self._code_size)
        self._rank_cache: tuple[NDArray[np.int64], NDArray[np.int64]] | None = None

    # ------------------------------------------------------------------ properties
    @property
    def n_bits(self) -> int:
        """Code width in bits."""
        return self._n_bits

    @property
    def code_size(self) -> int:
        """Bytes per code, ``ceil(n_bits / 8)``."""
        return self._code_size

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
        insertion order (32 more per item otherwise: id map and rank cache), plus what the index
        type builds over them (tables, features)."""
        return self._store.nbytes

    def __len__(self) -> int:
        return self.ntotal

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_bits={self.n_bits}, ntotal={self.ntotal})"

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
        """Store validated items, then tell the index type (:meth:`_changed`)."""
        if not len(ids):
            return
        if self.ntotal + len(ids) > MAX_ITEMS:
            raise InvalidInputError(f"an index holds at most 2**{MAX_ITEMS.bit_length() - 1} items")
        start = self.ntotal
        self._store.append(codes, ids)
        self._rank_cache = None
        self._changed(added_from=start)

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
        removed = self._store.remove(_as_id_array(ids, "ids"))
        if len(removed):
            self._rank_cache = None
            self._changed(removed=removed)
        return len(removed)

    def reset(self) -> None:
        """Remove every item; ``n_bits`` and the index type's parameters are kept."""
        self._store.reset()
        self._rank_cache = None
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
        return np.asarray(self._store.codes)[self._positions_of_known(ids)]

    def _positions_of_known(self, ids: Any) -> NDArray[np.int64]:
        """Storage positions of ``ids``; :class:`UnknownIdError` if one is absent."""
        wanted = _as_id_array(ids, "ids")
        positions = self._positions(wanted)
        missing = np.flatnonzero(positions < 0)
        if len(missing):
            raise UnknownIdError(
                f"id {wanted[missing[0]]} is not in the index ({len(missing)} of the "
                f"{len(wanted)} ids are unknown)"
            )
        return positions

    def _changed(  # noqa: B027 - an optional hook
        self, added_from: int | None = None, removed: NDArray[np.int64] | None = None
    ) -> None:
        """Hook called after every change of the stored items; by default it does nothing.

        Parameters
        ----------
        added_from : int or None
            Items were appended at storage positions ``added_from .. ntotal - 1``.
        removed : numpy.ndarray of int64 or None
            These storage positions (ascending, numbered before the removal) were removed and
            the items after them moved down.

        With neither, anything may have changed (reset, load).
        """

    # ------------------------------------------------------------------ searching
    @abstractmethod
    def search(
        self, queries: NDArray[np.uint8], k: int
    ) -> tuple[NDArray[np.int32], NDArray[np.int64]]:
        """The ``k`` nearest items of each query by Hamming distance.

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
            Ids of the neighbours; equal distances are ordered by id ascending. When fewer than
            ``k`` items qualify, the rest of the row is padding: ``I = -1``, ``D = 2**31 - 1``.

        Raises
        ------
        CodeFormatError
            ``queries`` is not a ``uint8`` array of shape ``(nq, code_size)``.
        InvalidInputError
            ``k`` is not an integer >= 1.
        """

    @abstractmethod
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

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index to ``path`` atomically (temporary file, fsync, rename).

        The file format is described in :mod:`hashlearn.index._format`; read it back with
        ``load`` of the same class or with :func:`hashlearn.index.load_index`.
        """
        self._write(
            path,
            self._store.codes,
            self._store.ids,
            extra_arrays=self._extra_arrays(),
            params=self._params(),
        )

    def _params(self) -> dict[str, Any]:
        """Constructor arguments other than ``n_bits``, recorded in files (JSON values)."""
        return {}

    def _extra_arrays(self) -> dict[str, np.ndarray]:
        """Arrays beside codes and ids that files keep (row ``p`` for the item at position
        ``p`` where they are per item); restored by :meth:`_restore`."""
        return {}

    def _restore(self, file: IndexFile) -> None:  # noqa: B027 - an optional hook
        """Take back what :meth:`_extra_arrays` saved (the items are already in place)."""

    @classmethod
    def load(
        cls: type[_Index], path: str | os.PathLike[str], mmap: bool = False, *, verify: bool = True
    ) -> _Index:
        """Read an index of this type written by :meth:`save`.

        Parameters
        ----------
        path : str or os.PathLike
        mmap : bool, default False
            Keep the stored arrays as read-only memory maps of the file instead of reading them.
            Adding or removing items later copies them into memory.
        verify : bool, default True
            Check the file's SHA-256 checksum (streaming over the file when ``mmap=True``).

        Raises
        ------
        FileFormatError
            The file is not a valid index file, or holds another index type.
        """
        file = read_index_file(path, mmap=mmap, verify=verify)
        if file.index_type != cls.type_name:
            raise FileFormatError(
                f"{os.fspath(path)}: the file holds a {file.index_type}, not a {cls.__name__}; "
                "use hashlearn.index.load_index to load any index type"
            )
        return cls._from_file(file)

    @classmethod
    def _from_file(cls: type[_Index], file: IndexFile) -> _Index:
        """Build an index from a validated :class:`IndexFile`."""
        cls._check_file_items(file)
        try:
            index = cls(n_bits=file.n_bits, **file.params)
        except (HashlearnError, TypeError) as exc:
            raise FileFormatError(f"the index file holds invalid parameters: {exc}") from None
        index._store = CodeStore.from_arrays(file.arrays["codes"], file.arrays["ids"])
        index._restore(file)
        index._changed()
        return index

    # ------------------------------------------------------------------ shared helpers
    def _write(
        self,
        path: str | os.PathLike[str],
        codes: NDArray[np.uint8],
        ids: NDArray[np.int64],
        extra_arrays: dict[str, np.ndarray] | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        """Write ``codes``, ``ids``, extra named arrays and JSON params to an index file."""
        arrays: dict[str, np.ndarray] = {"codes": codes, "ids": ids}
        for name, array in (extra_arrays or {}).items():
            if name in arrays:
                raise ValueError(f"array name {name!r} is reserved")
            arrays[name] = array
        write_index_file(
            path, index_type=self.type_name, n_bits=self.n_bits, arrays=arrays, params=params
        )

    @staticmethod
    def _check_file_items(file: IndexFile) -> None:
        """Check a file's codes (``n_bits`` respected) and ids (unique, >= 0).

        Ascending ids (the usual case) are checked in one pass without sorting.

        Raises
        ------
        FileFormatError
            The codes have bits set beyond ``n_bits``, or an id is negative or repeated.
        """
        try:
            check_codes(file.arrays["codes"], file.n_bits)
        except CodeFormatError as exc:
            raise FileFormatError(f"the index file holds invalid codes: {exc}") from None
        ids = np.asarray(file.arrays["ids"])
        if not len(ids) or np.all(ids[1:] > ids[:-1]):
            sorted_ids = ids
        else:
            sorted_ids = np.sort(ids)
        if len(sorted_ids) and sorted_ids[0] < 0:
            raise FileFormatError(f"the index file holds a negative id ({int(sorted_ids[0])})")
        repeated = sorted_ids[1:][sorted_ids[1:] == sorted_ids[:-1]]
        if len(repeated):
            raise FileFormatError(f"the index file holds id {int(repeated[0])} more than once")

    def _check_codes(self, codes: Any, name: str = "codes") -> NDArray[np.uint8]:
        """``codes`` as a C-contiguous ``uint8 (n, code_size)`` array; :class:`CodeFormatError` if not."""
        return check_codes(codes, self.n_bits, name=name)

    def _start_search(
        self, queries: Any, k: Any
    ) -> tuple[NDArray[np.uint8], NDArray[np.int32], NDArray[np.int64], int]:
        """Checked queries and ``k``, the padded result arrays, and ``min(k, ntotal)``.

        A search with nothing to find (no queries, an empty index) can return the arrays as they
        are.
        """
        queries = self._check_codes(queries, "queries")
        k = self._check_k(k)
        distances = np.full((len(queries), k), PAD_DISTANCE, dtype=np.int32)
        labels = np.full((len(queries), k), PAD_ID, dtype=np.int64)
        return queries, distances, labels, min(k, self.ntotal)

    @staticmethod
    def _check_k(k: Any) -> int:
        return check_int(k, "k", minimum=1)

    @staticmethod
    def _check_radius(radius: Any) -> int:
        return check_int(radius, "radius", minimum=0)

    def _check_new_ids(self, ids: Any, n: int) -> NDArray[np.int64]:
        """Validate ids for ``n`` new codes: ``int64``, 1-D, length ``n``, non-negative, unique, new."""
        array = _as_id_array(ids, "ids")
        if len(array) != n:
            raise InvalidInputError(f"ids has {len(array)} entries but there are {n} codes")
        if n == 0:
            return array
        negative = np.flatnonzero(array < 0)
        if len(negative):
            raise InvalidInputError(
                f"ids must be >= 0 (-1 marks padding in search results), got {array[negative[0]]} "
                f"at position {negative[0]}"
            )
        sorted_ids = np.sort(array)
        repeated = sorted_ids[1:][sorted_ids[1:] == sorted_ids[:-1]]
        if len(repeated):
            raise InvalidInputError(
                f"ids must be unique, but id {repeated[0]} appears more than once in this call"
            )
        present = np.flatnonzero(self._positions(array) >= 0)
        if len(present):
            raise InvalidInputError(
                f"id {array[present[0]]} is already in the index ({len(present)} of the {n} ids are); "
                "ids must be unique"
            )
        return array

    def _sequential_ids(self, n: int) -> NDArray[np.int64]:
        """Ids ``ntotal .. ntotal + n - 1`` for :meth:`add`, checked against ids already present."""
        ids = np.arange(self.ntotal, self.ntotal + n, dtype=np.int64)
        present = np.flatnonzero(self._positions(ids) >= 0)
        if len(present):
            raise InvalidInputError(
                f"add() assigns sequential ids {self.ntotal}..{self.ntotal + n - 1}, but id "
                f"{ids[present[0]]} is already in the index (given to add_with_ids); "
                "use add_with_ids with explicit ids"
            )
        return ids

    def _positions(self, ids: NDArray[np.int64]) -> NDArray[np.int64]:
        """Storage positions of ``ids`` (``-1`` where absent)."""
        return self._store.positions(ids)

    def _ids_in_order(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """``(sorted_ids, rank)``: ids ascending, and each storage position's rank in that order.

        ``sorted_ids[rank[p]]`` is the id stored at position ``p``. Cached until the next change.
        """
        if self._rank_cache is None:
            sorted_ids, rank = self._store.order()
            if rank is None:
                rank = np.arange(len(sorted_ids), dtype=np.int64)
            self._rank_cache = (sorted_ids, rank)
        return self._rank_cache


def load_index(
    path: str | os.PathLike[str], mmap: bool = False, *, verify: bool = True
) -> BinaryIndex:
    """Load an index of any type from a file written by its ``save`` method.

    Parameters
    ----------
    path : str or os.PathLike
    mmap : bool, default False
        Keep the stored arrays as read-only memory maps of the file.
    verify : bool, default True
        Check the file's SHA-256 checksum.

    Returns
    -------
    BinaryIndex
        An instance of the class named in the file (e.g. :class:`LinearIndex`).

    Raises
    ------
    FileFormatError
        The file is not a valid index file, or its index type is unknown to this hashlearn.
    """
    file = read_index_file(path, mmap=mmap, verify=verify)
    if file.index_type not in _INDEX_TYPES:
        from hashlearn.index.registry import _import_all

        _import_all()  # index types register themselves when their module is imported
    cls = _INDEX_TYPES.get(file.index_type)
    if cls is None:
        raise FileFormatError(
            f"{os.fspath(path)}: index type {file.index_type!r} is not known to this hashlearn "
            f"(known: {', '.join(sorted(_INDEX_TYPES))})"
        )
    return cls._from_file(file)
