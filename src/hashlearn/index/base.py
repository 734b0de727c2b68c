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
from hashlearn.exceptions import CodeFormatError, FileFormatError, InvalidInputError
from hashlearn.index._format import IndexFile, read_index_file, write_index_file

__all__ = ["PAD_DISTANCE", "PAD_ID", "BinaryIndex", "UnknownIdError", "load_index"]

PAD_ID = -1
"""Id of the padding entries of :meth:`BinaryIndex.search` results (fewer than ``k`` items)."""
PAD_DISTANCE = int(np.iinfo(np.int32).max)
"""Distance of the padding entries of :meth:`BinaryIndex.search` results: ``2**31 - 1``."""

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


class _IdMap:
    """Map unique ``int64`` ids to storage positions.

    Kept as sorted runs whose sizes shrink geometrically (merged like a binary counter), so a
    sequence of adds costs ``O(log n)`` amortised per id, never ``O(n)`` per add, and a lookup of
    ``m`` ids costs ``O(m log^2 n)``.
    """

    __slots__ = ("_runs",)

    def __init__(self) -> None:
        self._runs: list[tuple[NDArray[np.int64], NDArray[np.int64]]] = []

    @classmethod
    def from_ids(cls, ids: NDArray[np.int64]) -> _IdMap:
        """A map of ``ids[p] -> p`` (``ids`` must be unique)."""
        id_map = cls()
        id_map.add(ids, np.arange(len(ids), dtype=np.int64))
        return id_map

    def __len__(self) -> int:
        return sum(len(run[0]) for run in self._runs)

    def add(self, ids: NDArray[np.int64], positions: NDArray[np.int64]) -> None:
        """Insert ids (unique and absent, the caller checks) stored at ``positions``."""
        if not len(ids):
            return
        order = np.argsort(ids, kind="stable")
        self._runs.append((ids[order], positions[order]))
        while len(self._runs) >= 2 and len(self._runs[-2][0]) <= 2 * len(self._runs[-1][0]):
            (ids_b, pos_b), (ids_a, pos_a) = self._runs.pop(), self._runs.pop()
            merged_ids = np.concatenate([ids_a, ids_b])
            order = np.argsort(merged_ids, kind="stable")  # timsort: linear on two sorted runs
            self._runs.append((merged_ids[order], np.concatenate([pos_a, pos_b])[order]))

    def lookup(self, ids: NDArray[np.int64]) -> NDArray[np.int64]:
        """Positions of ``ids``; ``-1`` where an id is absent."""
        positions = np.full(len(ids), -1, dtype=np.int64)
        for run_ids, run_positions in self._runs:
            where = np.searchsorted(run_ids, ids)
            np.minimum(where, len(run_ids) - 1, out=where)
            hit = run_ids[where] == ids
            positions[hit] = run_positions[where[hit]]
        return positions

    def sorted(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """All ids in ascending order and their positions (merges the runs into one)."""
        if not self._runs:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        if len(self._runs) > 1:
            ids = np.concatenate([run[0] for run in self._runs])
            positions = np.concatenate([run[1] for run in self._runs])
            order = np.argsort(ids, kind="stable")
            self._runs = [(ids[order], positions[order])]
        return self._runs[0]


class BinaryIndex(ABC):
    """Abstract base of the hashlearn indexes over packed binary codes.

    Parameters
    ----------
    n_bits : int
        Code width in bits, 1..4096. Codes are ``uint8`` arrays of shape
        ``(n, ceil(n_bits / 8))`` in the layout of :mod:`hashlearn.codes` (faiss' layout).

    Notes
    -----
    Subclasses set the class attribute ``type_name`` (the name stored in index files) and are
    then found by :func:`load_index`. They keep ids unique through ``self._id_map`` (call
    :meth:`_check_new_ids` before storing ids, then ``self._id_map.add``, then :meth:`_changed`),
    store themselves with :meth:`_write` and restore themselves in :meth:`_from_file` (with
    :meth:`_id_map_from_file`).
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
        self._id_map = _IdMap()
        self._id_order: tuple[NDArray[np.int64], NDArray[np.int64]] | None = None

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
    @abstractmethod
    def ntotal(self) -> int:
        """Number of items in the index."""

    @property
    @abstractmethod
    def ids(self) -> NDArray[np.int64]:
        """Ids of the items, ``int64`` of shape ``(ntotal,)`` (a copy)."""

    def __len__(self) -> int:
        return self.ntotal

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_bits={self.n_bits}, ntotal={self.ntotal})"

    # ------------------------------------------------------------------ contract
    @abstractmethod
    def add(self, codes: NDArray[np.uint8]) -> None:
        """Add codes with sequential ids ``ntotal, ntotal + 1, ...``.

        Parameters
        ----------
        codes : numpy.ndarray of uint8, shape (n, code_size)
        """

    @abstractmethod
    def add_with_ids(self, codes: NDArray[np.uint8], ids: Any) -> None:
        """Add codes with the given unique, non-negative ids.

        Parameters
        ----------
        codes : numpy.ndarray of uint8, shape (n, code_size)
        ids : array-like of integers, shape (n,)
        """

    @abstractmethod
    def remove_ids(self, ids: Any) -> int:
        """Remove the items with the given ids (unknown ids are ignored); return how many went."""

    @abstractmethod
    def search(
        self, queries: NDArray[np.uint8], k: int
    ) -> tuple[NDArray[np.int32], NDArray[np.int64]]:
        """The ``k`` nearest items of each query: ``(D int32 (nq, k), I int64 (nq, k))``."""

    @abstractmethod
    def range_search(
        self, queries: NDArray[np.uint8], radius: int
    ) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.int64]]:
        """Items within ``radius`` of each query: ``(lims (nq + 1,), D, I)``."""

    @abstractmethod
    def reset(self) -> None:
        """Remove every item (``n_bits`` is kept)."""

    @abstractmethod
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index to ``path`` atomically (format: :mod:`hashlearn.index._format`)."""

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

    # ------------------------------------------------------------------ shared helpers
    @classmethod
    @abstractmethod
    def _from_file(cls: type[_Index], file: IndexFile) -> _Index:
        """Build an index from a validated :class:`IndexFile` (see :meth:`_id_map_from_file`)."""

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

    @classmethod
    def _id_map_from_file(cls, file: IndexFile) -> _IdMap:
        """Check a file's codes and ids (:meth:`_check_file_items`); map ids to rows."""
        cls._check_file_items(file)
        return _IdMap.from_ids(np.asarray(file.arrays["ids"]))

    def _check_codes(self, codes: Any, name: str = "codes") -> NDArray[np.uint8]:
        """``codes`` as a C-contiguous ``uint8 (n, code_size)`` array; :class:`CodeFormatError` if not."""
        return check_codes(codes, self.n_bits, name=name)

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
        return self._id_map.lookup(ids)

    def _ids_in_order(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """``(sorted_ids, rank)``: ids ascending, and each storage position's rank in that order.

        ``sorted_ids[rank[p]]`` is the id stored at position ``p``. Cached until :meth:`_changed`.
        """
        if self._id_order is None:
            sorted_ids, positions = self._id_map.sorted()
            rank = np.empty(len(positions), dtype=np.int64)
            rank[positions] = np.arange(len(positions), dtype=np.int64)
            self._id_order = (sorted_ids, rank)
        return self._id_order

    def _changed(self) -> None:
        """Drop caches derived from the stored items; call after every add or removal."""
        self._id_order = None


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
