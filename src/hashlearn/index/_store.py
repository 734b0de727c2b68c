"""Storage of an index's codes and ids, with the id -> position map, in as little memory as possible.

Items are kept in insertion order: ``codes[p]`` is the code of ``ids[p]``. While ids are ascending
in that order (as ``add`` assigns them, and as most callers choose them) the id array is its own
search tree: an id is found by binary search and an item's rank in id order is its position, so
an item costs its code plus 8 bytes of id and nothing else. Ids out of order switch the store to
an explicit map (:class:`_IdMap`, 16 more bytes per item) and a cached
rank array (16 bytes per item while cached).

The store also checks ids given by callers (:func:`as_id_array`, :meth:`CodeStore.check_new_ids`,
:meth:`CodeStore.next_ids`): integers, unique, non-negative and absent.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from hashlearn.exceptions import InvalidInputError

__all__ = ["CodeStore", "as_id_array"]

_MIN_CAPACITY = 16


def as_id_array(ids: Any, name: str) -> NDArray[np.int64]:
    """``ids`` as a 1-D ``int64`` array; integers of any dtype whose values fit are accepted.

    Raises
    ------
    InvalidInputError
        ``ids`` is not 1-D, holds no integers, or holds a value beyond ``int64``.
    """
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


class CodeStore:
    """Codes (``uint8 (n, code_size)``) and unique ``int64`` ids of the items of an index.

    Arrays given to :meth:`from_arrays` (possibly read-only memory maps) are used as they are
    until the first change, which copies them into growable memory.
    """

    __slots__ = ("_codes", "_ids", "_map", "_n", "_order", "code_size")

    def __init__(self, code_size: int) -> None:
        self.code_size = code_size
        self._codes: NDArray[np.uint8] = np.empty((0, code_size), dtype=np.uint8)
        self._ids: NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self._n = 0
        self._map: _IdMap | None = None
        self._order: tuple[NDArray[np.int64], NDArray[np.int64]] | None = None

    @classmethod
    def from_arrays(cls, codes: NDArray[np.uint8], ids: NDArray[np.int64]) -> CodeStore:
        """A store over existing arrays (ids unique, checked by the caller), without a copy."""
        store = cls(codes.shape[1])
        store._codes, store._ids, store._n = codes, ids, len(ids)
        store._reindex()
        return store

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        return self._n

    @property
    def codes(self) -> NDArray[np.uint8]:
        """The stored codes in storage order (a view)."""
        return self._codes[: self._n]

    @property
    def ids(self) -> NDArray[np.int64]:
        """The stored ids in storage order (a view)."""
        return self._ids[: self._n]

    @property
    def nbytes(self) -> int:
        """Bytes held for the items: codes, ids, and the id map and rank cache when present."""
        total = self._n * (self.code_size + 8)
        if self._map is not None:
            total += 16 * len(self._map)
        if self._order is not None:
            total += sum(array.nbytes for array in self._order)
        return total

    # ------------------------------------------------------------------ lookups
    def positions(self, ids: NDArray[np.int64]) -> NDArray[np.int64]:
        """Storage positions of ``ids``; ``-1`` where an id is absent."""
        if self._map is not None:
            return self._map.lookup(ids)
        stored = self.ids
        positions = np.full(len(ids), -1, dtype=np.int64)
        if not len(stored):
            return positions
        where = np.searchsorted(stored, ids)
        np.minimum(where, len(stored) - 1, out=where)
        hit = stored[where] == ids
        positions[hit] = where[hit]
        return positions

    def order(self) -> tuple[NDArray[np.int64], NDArray[np.int64] | None]:
        """``(sorted_ids, rank)``: ids ascending and each position's rank in that order.

        ``rank`` is ``None`` when it is the identity (ids ascending in storage order).
        """
        if self._map is None:
            return self.ids, None
        if self._order is None:
            sorted_ids, positions = self._map.sorted()
            rank = np.empty(len(positions), dtype=np.int64)
            rank[positions] = np.arange(len(positions), dtype=np.int64)
            self._order = (sorted_ids, rank)
        return self._order

    # ------------------------------------------------------------------ new ids
    def check_new_ids(self, ids: Any, n: int) -> NDArray[np.int64]:
        """``ids`` for ``n`` new items as ``int64``, after checking them: 1-D, ``n`` long,
        non-negative, unique and absent from the store.

        Raises
        ------
        InvalidInputError
            Naming the first offending id.
        """
        array = as_id_array(ids, "ids")
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
        present = np.flatnonzero(self.positions(array) >= 0)
        if len(present):
            raise InvalidInputError(
                f"id {array[present[0]]} is already in the index ({len(present)} of the {n} ids are); "
                "ids must be unique"
            )
        return array

    def next_ids(self, n: int) -> NDArray[np.int64]:
        """Sequential ids ``len(self) .. len(self) + n - 1`` for ``n`` new items (as faiss' ``add``
        assigns them), checked against the ids present.

        Raises
        ------
        InvalidInputError
            One of them was given to an earlier ``add_with_ids``.
        """
        start = self._n
        ids = np.arange(start, start + n, dtype=np.int64)
        present = np.flatnonzero(self.positions(ids) >= 0)
        if len(present):
            raise InvalidInputError(
                f"add() assigns sequential ids {start}..{start + n - 1}, but id "
                f"{ids[present[0]]} is already in the index (given to add_with_ids); "
                "use add_with_ids with explicit ids"
            )
        return ids

    # ------------------------------------------------------------------ changes
    def append(self, codes: NDArray[np.uint8], ids: NDArray[np.int64]) -> None:
        """Append items (ids unique and absent, checked by the caller)."""
        n = len(ids)
        if n == 0:
            return
        start, end = self._n, self._n + n
        if end > len(self._ids) or not self._ids.flags.writeable:
            capacity = max(end, 2 * len(self._ids), _MIN_CAPACITY)
            new_codes = np.empty((capacity, self.code_size), dtype=np.uint8)
            new_codes[:start] = self._codes[:start]
            new_ids = np.empty(capacity, dtype=np.int64)
            new_ids[:start] = self._ids[:start]
            self._codes, self._ids = new_codes, new_ids
        self._codes[start:end] = codes
        self._ids[start:end] = ids
        self._n = end
        self._order = None
        if self._map is not None:
            self._map.add(ids, np.arange(start, end, dtype=np.int64))
        elif not _ascending(self._ids[max(start - 1, 0) : end]):
            self._map = _IdMap.from_ids(self.ids)

    def remove(self, ids: NDArray[np.int64]) -> NDArray[np.int64]:
        """Remove the items with these ids (absent ids are ignored).

        Returns the storage positions that were removed, ascending, numbered as before.
        """
        positions = self.positions(ids)
        positions = np.unique(positions[positions >= 0])
        if not len(positions):
            return positions
        keep = np.ones(self._n, dtype=bool)
        keep[positions] = False
        # Fresh arrays, not an in-place compaction: the storage may be a read-only memory map.
        self._codes = np.asarray(self.codes)[keep]
        self._ids = np.asarray(self.ids)[keep]
        self._n = len(self._ids)
        self._reindex()
        return positions

    def reset(self) -> None:
        """Remove every item."""
        self.__init__(self.code_size)  # type: ignore[misc]

    def _reindex(self) -> None:
        self._order = None
        self._map = None if _ascending(self.ids) else _IdMap.from_ids(np.asarray(self.ids))


def _ascending(ids: NDArray[np.int64]) -> bool:
    return bool(np.all(ids[1:] > ids[:-1]))
