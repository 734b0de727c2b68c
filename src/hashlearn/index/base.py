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

import inspect
import os
from abc import ABC, abstractmethod
from typing import Any, ClassVar, TypeVar

import numpy as np
from numpy.typing import NDArray

from hashlearn._validation import check_int, check_k
from hashlearn.codes import MAX_BITS, check_codes, n_bytes
from hashlearn.codes.keys import MAX_RANKS
from hashlearn.exceptions import (
    CodeFormatError,
    FileFormatError,
    HashlearnError,
    InvalidInputError,
)
from hashlearn.index._format.layout import IndexFile
from hashlearn.index._format.reading import check_file_items
from hashlearn.index._format.writing import write_index_file
from hashlearn.index._mapped import MappedFile, read_mapped_index_file
from hashlearn.index._store import CodeStore, as_id_array
from hashlearn.index.registry import INDEX_TYPES

__all__ = [
    "MAX_ITEMS",
    "PAD_DISTANCE",
    "PAD_ID",
    "BinaryIndex",
    "UnknownIdError",
    "check_queries",
]

PAD_ID = -1
"""Id of the padding entries of :meth:`BinaryIndex.search` results (fewer than ``k`` items)."""
PAD_DISTANCE = int(np.iinfo(np.int32).max)
"""Distance of the padding entries of :meth:`BinaryIndex.search` results: ``2**31 - 1``."""

MAX_ITEMS = MAX_RANKS
"""Most items an index holds, ``2**40`` (result keys keep an item's rank in 40 bits)."""

_Index = TypeVar("_Index", bound="BinaryIndex")


class UnknownIdError(InvalidInputError, KeyError):
    """An id passed to :meth:`LinearIndex.get_codes` is not in the index."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly.
        return str(self.args[0]) if self.args else ""


_RE_ENCODE = "encode the queries with the model that made the index"


def check_queries(queries: Any, n_bits: int, query_bits: int | None = None) -> NDArray[np.uint8]:
    """Query codes checked against an index of ``n_bits``-bit codes, as ``check_codes`` does,
    with a width mismatch named as such: ``"16-bit queries, 12-bit index"``.

    ``query_bits`` is the queries' own code length when it is known (a codes ``.npz`` records
    it); otherwise their width is told from their bytes, and from the padding bits of the last
    byte (a 16-bit query in the two bytes of a 12-bit index sets bits beyond bit 12).

    Raises
    ------
    CodeFormatError
        The queries are not packed codes, or not of ``n_bits`` bits.
    """
    if query_bits is not None and int(query_bits) != n_bits:
        raise CodeFormatError(f"{int(query_bits)}-bit queries, {n_bits}-bit index; {_RE_ENCODE}")
    if isinstance(queries, np.ndarray) and queries.dtype == np.uint8 and queries.ndim == 2:
        width, size = queries.shape[1], n_bytes(n_bits)
        if width != size:
            raise CodeFormatError(
                f"{width}-byte queries, {n_bits}-bit index: the queries are {width} bytes wide, "
                f"but {n_bits}-bit codes take {size} bytes; {_RE_ENCODE}"
            )
        spare = 8 * size - n_bits
        if spare and len(queries) and (queries[:, -1] >> (8 - spare)).any():
            top = int(queries[:, -1].max()).bit_length() + 8 * (size - 1)
            raise CodeFormatError(
                f"{top}-bit queries, {n_bits}-bit index: the queries have bits set beyond bit "
                f"{n_bits}; {_RE_ENCODE}"
            )
    return check_codes(queries, n_bits, name="queries")


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
    removing, looking codes up, saving and loading. An index type is registered by one line in
    :mod:`hashlearn.index.registry`; its class sets ``type_name`` to that registry name (the name
    index files record), implements :meth:`search` and :meth:`range_search`, keeps any structure
    it builds over the items (tables, a faiss index) current in :meth:`_changed`, and states its
    constructor arguments in :meth:`_params` so that files record them. A type whose
    constructor takes other arguments than ``(n_bits, **params)`` overrides
    :meth:`constructor_args`, through which :func:`~hashlearn.index.create_index` builds it.
    """

    type_name: ClassVar[str] = ""
    """The registry name of the index type (:func:`hashlearn.index.list_indexes`)."""

    @classmethod
    def constructor_args(cls, n_bits: int, **params: Any) -> dict[str, Any]:
        """The keyword arguments of the constructor for ``create_index(name, n_bits, **params)``.

        By default ``{"n_bits": n_bits, **params}``.

        Raises
        ------
        InvalidInputError
            ``n_bits`` and ``params`` do not describe an index of this type.
        """
        return {**params, "n_bits": n_bits}

    @classmethod
    def parameter_names(cls) -> tuple[str, ...] | None:
        """The parameters ``create_index(name, n_bits, **params)`` takes besides ``n_bits``
        (those of the constructor); None when it takes any keyword (``**params``)."""
        names = []
        for parameter in inspect.signature(cls.__init__).parameters.values():
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                return None
            if parameter.name not in ("self", "n_bits") and parameter.kind not in (
                inspect.Parameter.VAR_POSITIONAL,
            ):
                names.append(parameter.name)
        return tuple(names)

    _mapped: MappedFile | None = None
    """The file the stored arrays are memory-mapped from (``load(..., mmap=True)``), checked
    before every use of them (:meth:`_check_file`)."""

    def __init__(self, n_bits: int) -> None:
        self._n_bits = check_int(n_bits, "n_bits", minimum=1, maximum=MAX_BITS)
        self._code_size = n_bytes(self._n_bits)
        self._store = CodeStore(self._code_size)

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
        self._check_file()
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
        self._append(codes, self._store.next_ids(len(codes)))

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
        self._append(codes, self._store.check_new_ids(ids, len(codes)))

    def _append(self, codes: NDArray[np.uint8], ids: NDArray[np.int64]) -> None:
        """Store validated items, then tell the index type (:meth:`_changed`)."""
        if not len(ids):
            return
        if self.ntotal + len(ids) > MAX_ITEMS:
            raise InvalidInputError(f"an index holds at most 2**{MAX_ITEMS.bit_length() - 1} items")
        start = self.ntotal
        self._store.append(codes, ids)
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
        self._check_file()
        removed = self._store.remove(as_id_array(ids, "ids"))
        if len(removed):
            self._changed(removed=removed)
        return len(removed)

    def reset(self) -> None:
        """Remove every item; ``n_bits`` and the index type's parameters are kept."""
        self._store.reset()
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
        self._check_file()
        return np.asarray(self._store.codes)[self._positions_of_known(ids)]

    def _positions_of_known(self, ids: Any) -> NDArray[np.int64]:
        """Storage positions of ``ids``; :class:`UnknownIdError` if one is absent."""
        wanted = as_id_array(ids, "ids")
        positions = self._store.positions(wanted)
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
            Number of neighbours, >= 1. May exceed ``ntotal``: the results then have ``ntotal``
            columns (faiss pads them to ``k``; a ``k`` of millions would allocate for nothing).

        Returns
        -------
        D : numpy.ndarray of int32, shape (nq, min(k, ntotal))
            Hamming distances, ascending along each row.
        I : numpy.ndarray of int64, shape (nq, min(k, ntotal))
            Ids of the neighbours; equal distances are ordered by id ascending. When fewer
            items qualify (an approximate index, a distance bound), the rest of the row is
            padding: ``I = -1``, ``D = 2**31 - 1``.

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

        The file (format in :mod:`hashlearn.index._format.layout`) records the registry name
        :attr:`type_name`, ``n_bits``, the codes, the ids, the constructor arguments
        (:meth:`_params`) and the arrays of :meth:`_extra_arrays`; read it back with ``load`` of
        the same class or with :func:`hashlearn.index.load_index`.
        """
        self._check_file()
        arrays: dict[str, np.ndarray] = {"codes": self._store.codes, "ids": self._store.ids}
        for name, array in self._extra_arrays().items():
            if name in arrays:
                raise ValueError(f"array name {name!r} is reserved")
            arrays[name] = array
        write_index_file(
            path,
            index_type=self.type_name,
            n_bits=self.n_bits,
            arrays=arrays,
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
            Adding or removing items later copies them into memory. The file is held open and
            checked before every use of the maps: changed in place, it is refused
            (:class:`~hashlearn.index.IndexFileChangedError`) instead of crashing the process.
        verify : bool, default True
            Check the file's SHA-256 checksum (streaming over the file when ``mmap=True``).

        Raises
        ------
        FileFormatError
            The file is not a valid index file, or holds another index type.
        """
        file, mapped = read_mapped_index_file(path, mmap=mmap, verify=verify)
        stored = file.index_type
        if stored != cls.type_name and not (
            stored in INDEX_TYPES and INDEX_TYPES.canonical(stored) == cls.type_name
        ):
            raise FileFormatError(
                f"{os.fspath(path)}: the file holds a {file.index_type}, not a {cls.__name__}; "
                "use hashlearn.index.load_index to load any index type"
            )
        return cls._from_file(file, mapped)

    @classmethod
    def _from_file(cls: type[_Index], file: IndexFile, mapped: MappedFile | None = None) -> _Index:
        """Build an index from a validated :class:`IndexFile` (its arrays memory-mapped from
        the file ``mapped`` watches, when given)."""
        check_file_items(file)
        try:
            index = cls(n_bits=file.n_bits, **file.params)
        except (HashlearnError, TypeError) as exc:
            raise FileFormatError(f"the index file holds invalid parameters: {exc}") from None
        index._store = CodeStore.from_arrays(file.arrays["codes"], file.arrays["ids"])
        index._mapped = mapped
        index._restore(file)
        index._changed()
        return index

    # ------------------------------------------------------------------ shared helpers
    def _check_file(self) -> None:
        """Before the stored arrays are used: when they are memory-mapped, check that their file
        was not changed in place (:class:`~hashlearn.index.IndexFileChangedError`, instead of
        the SIGBUS of reading a truncated map)."""
        if self._mapped is not None:
            self._mapped.check()

    def _check_codes(self, codes: Any, name: str = "codes") -> NDArray[np.uint8]:
        """``codes`` as a C-contiguous ``uint8 (n, code_size)`` array; :class:`CodeFormatError` if
        not (for ``"queries"`` of another width: :func:`check_queries`).

        Every search and every addition starts here, so this is also where a memory-mapped
        file is checked (:meth:`_check_file`)."""
        self._check_file()
        if name == "queries":
            return check_queries(codes, self.n_bits)
        return check_codes(codes, self.n_bits, name=name)

    def _start_search(
        self, queries: Any, k: Any
    ) -> tuple[NDArray[np.uint8], NDArray[np.int32], NDArray[np.int64], int]:
        """Checked queries and ``k``, the padded result arrays, and their width
        ``min(k, ntotal)``: no row holds more items than the index, so a ``k`` far beyond the
        index (``-k 20000000``) allocates nothing for it.

        A search with nothing to find (no queries, an empty index) can return the arrays as they
        are.
        """
        queries = self._check_codes(queries, "queries")
        width = min(check_k(k), self.ntotal)
        distances = np.full((len(queries), width), PAD_DISTANCE, dtype=np.int32)
        labels = np.full((len(queries), width), PAD_ID, dtype=np.int64)
        return queries, distances, labels, width
