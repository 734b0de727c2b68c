"""Near-duplicates in a collection: every pair of codes within a Hamming radius, and the groups
they link.

:func:`near_duplicates` first puts identical codes together: each distinct code stands for the
items that share it (their ids, kept once), and only the distinct codes are searched for each
other, in an index of them (multi-index hashing by default: exact and sublinear for small radii,
Norouzi et al., CVPR 2012). So 20,000 copies of one picture cost one search and 20,000 ids, not
200 million pairs: memory grows with the number of items and of links between distinct codes,
never with the pairs. The result, :class:`NearDuplicates`, counts the pairs, gives the groups
(connected components: ``a ~ b`` and ``b ~ c`` put ``a``, ``b`` and ``c`` in one group even when
``a`` and ``c`` are further apart) and hands out the pairs in bounded chunks.
:func:`near_duplicate_pairs` returns every pair at once (:class:`DuplicatePairs`), and
:func:`group_pairs` joins such pairs into groups. :func:`write_groups_csv` and
:func:`write_pairs_csv` save them as the CSV files of ``hashlearn dedup --out`` and ``--pairs``.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hashlearn._io import atomic_write
from hashlearn._validation import check_int
from hashlearn.codes import check_codes
from hashlearn.exceptions import InvalidInputError
from hashlearn.index._store import CodeStore
from hashlearn.index.factory import create_index

__all__ = [
    "PAIRS_PER_CHUNK",
    "DuplicatePairs",
    "NearDuplicates",
    "group_pairs",
    "near_duplicate_pairs",
    "near_duplicates",
    "write_groups_csv",
    "write_pairs_csv",
]

PAIRS_PER_CHUNK = 1 << 20
"""About how many pairs :meth:`NearDuplicates.iter_pairs` expands at once (the memory it takes
is a few times this many 8-byte values)."""


@dataclass(frozen=True)
class DuplicatePairs:
    """Pairs of items within ``radius`` of each other.

    Attributes
    ----------
    first, second : int64 (m,), the ids of each pair, ``first < second``; pairs sorted by
        distance, then ``first``, then ``second``
    distances : int32 (m,)
    radius : int
    """

    first: np.ndarray
    second: np.ndarray
    distances: np.ndarray
    radius: int

    def __len__(self) -> int:
        return len(self.first)


@dataclass(frozen=True)
class NearDuplicates:
    """The near-duplicates of a collection, as groups of identical codes and the links between
    them (what :func:`near_duplicates` returns).

    Distinct code ``r`` stands for the items ``members[starts[r]:starts[r + 1]]`` (ids,
    ascending) that share it; ``links_first[j]`` and ``links_second[j]`` are two distinct codes
    ``links_distances[j]`` bits apart (at most ``radius``, ``links_first < links_second``).
    Every pair of items is thus either two members of one code (distance 0) or a member of each
    end of a link.

    Attributes
    ----------
    members : int64 (n,)
    starts : int64 (n_codes + 1,)
    links_first, links_second : int64 (n_links,)
    links_distances : int32 (n_links,)
    radius : int
    """

    members: NDArray[np.int64] = field(repr=False)
    starts: NDArray[np.int64] = field(repr=False)
    links_first: NDArray[np.int64] = field(repr=False)
    links_second: NDArray[np.int64] = field(repr=False)
    links_distances: NDArray[np.int32] = field(repr=False)
    radius: int

    @property
    def counts(self) -> NDArray[np.int64]:
        """Items per distinct code, int64 (n_codes,)."""
        return np.diff(self.starts)

    @property
    def n_pairs(self) -> int:
        """How many pairs of items are within ``radius`` (counted, not expanded)."""
        counts = self.counts
        within = int((counts * (counts - 1) // 2).sum())
        across = int((counts[self.links_first] * counts[self.links_second]).sum())
        return within + across

    def __len__(self) -> int:
        return self.n_pairs

    def groups(self) -> list[NDArray[np.int64]]:
        """The groups the pairs link (connected components), each as sorted ids; groups ordered
        by size, largest first, then by their smallest id. Items in no pair form no group: the
        same groups as ``group_pairs(self.pairs())``, without expanding the pairs."""
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        counts = self.counts
        n_codes = len(counts)
        if n_codes == 0:
            return []
        edges = coo_matrix(
            (np.ones(len(self.links_first)), (self.links_first, self.links_second)),
            shape=(n_codes, n_codes),
        )
        _, labels = connected_components(edges, directed=False)
        sizes = np.bincount(labels, weights=counts, minlength=labels.max() + 1)
        label_of_item = np.repeat(labels, counts)
        kept = sizes[label_of_item] >= 2
        ids, label_of_item = self.members[kept], label_of_item[kept]
        if len(ids) == 0:
            return []
        order = np.lexsort((ids, label_of_item))
        boundaries = np.flatnonzero(np.diff(label_of_item[order])) + 1
        groups = np.split(ids[order], boundaries)
        return sorted(groups, key=lambda g: (-len(g), int(g[0])))

    def iter_pairs(self, chunk: int = PAIRS_PER_CHUNK) -> Iterator[DuplicatePairs]:
        """The pairs, in the order of :class:`DuplicatePairs` (distance, then ``first``, then
        ``second``), in chunks of about ``chunk`` pairs (more when one item alone has more
        partners), so that any number of pairs streams in bounded memory."""
        chunk = check_int(chunk, "chunk", minimum=1)
        counts = self.counts
        n_codes = len(counts)
        code_of_member = np.repeat(np.arange(n_codes, dtype=np.int64), counts)
        by_id = np.argsort(self.members, kind="stable")
        ids, codes = self.members[by_id], code_of_member[by_id]
        for distance in range(self.radius + 1):
            if distance == 0:  # each code's items with one another
                partners = np.arange(n_codes, dtype=np.int64)
                partner_starts = np.arange(n_codes + 1, dtype=np.int64)
            else:
                at = self.links_distances == distance
                if not at.any():
                    continue
                partners, partner_starts = _adjacency(
                    self.links_first[at], self.links_second[at], n_codes
                )
            # items of the partner codes of each code (an upper bound of each item's pairs)
            reached = np.zeros(len(partners) + 1, dtype=np.int64)
            np.cumsum(counts[partners], out=reached[1:])
            per_item = (reached[partner_starts[1:]] - reached[partner_starts[:-1]])[codes]
            if distance == 0:
                per_item = np.where(per_item > 1, per_item, 0)  # alone: no pair
            busy = np.flatnonzero(per_item)
            if len(busy) == 0:
                continue
            bounds = np.cumsum(per_item[busy])
            begin = 0
            while begin < len(busy):
                done = bounds[begin] - per_item[busy[begin]]
                end = int(np.searchsorted(bounds, done + chunk, side="right"))
                end = max(end, begin + 1)
                rows = busy[begin:end]
                first, second = self._expand(ids[rows], codes[rows], partners, partner_starts)
                if len(first):
                    yield DuplicatePairs(
                        first, second, np.full(len(first), distance, np.int32), self.radius
                    )
                begin = end

    def _expand(
        self,
        ids: NDArray[np.int64],
        codes: NDArray[np.int64],
        partners: NDArray[np.int64],
        partner_starts: NDArray[np.int64],
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Every pair ``(id, other)`` with ``other > id`` a member of a partner code of ``id``'s
        code, sorted by ``id`` then ``other`` (``ids`` come ascending)."""
        rows, partner = _ranges(partner_starts[codes], partner_starts[codes + 1])
        partner_codes = partners[partner]
        owners, member = _ranges(self.starts[partner_codes], self.starts[partner_codes + 1])
        first, second = ids[rows[owners]], self.members[member]
        keep = second > first
        first, second = first[keep], second[keep]
        order = np.lexsort((second, first))
        return first[order], second[order]

    def pairs(self) -> DuplicatePairs:
        """Every pair at once (memory grows with their number: see :meth:`iter_pairs`)."""
        chunks = list(self.iter_pairs())
        if not chunks:
            empty = np.empty(0, np.int64)
            return DuplicatePairs(empty, empty.copy(), np.empty(0, np.int32), self.radius)
        return DuplicatePairs(
            np.concatenate([c.first for c in chunks]),
            np.concatenate([c.second for c in chunks]),
            np.concatenate([c.distances for c in chunks]),
            self.radius,
        )


def _ranges(
    begins: NDArray[np.int64], ends: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """For ranges ``begins[i]:ends[i]``: each position of each, and the range it belongs to."""
    lengths = ends - begins
    owner = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    offsets = np.cumsum(lengths) - lengths  # where each range starts in the output
    position = np.arange(int(lengths.sum()), dtype=np.int64) - offsets[owner] + begins[owner]
    return owner, position


def _adjacency(
    first: NDArray[np.int64], second: NDArray[np.int64], n: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The undirected edges ``first -- second`` of ``n`` nodes as neighbour lists: the
    neighbours of node ``v`` are ``neighbours[starts[v]:starts[v + 1]]``."""
    source = np.concatenate([first, second])
    target = np.concatenate([second, first])
    order = np.argsort(source, kind="stable")
    starts = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(source, minlength=n), out=starts[1:])
    return target[order], starts


def near_duplicates(
    codes: Any,
    n_bits: int,
    radius: int,
    *,
    ids: Any = None,
    index: str = "mih",
    **index_params: Any,
) -> NearDuplicates:
    """The near-duplicates of a collection: identical codes grouped, then the distinct codes
    searched for each other within ``radius`` bits.

    Memory and time grow with the number of items and of pairs of *distinct* codes within
    ``radius``, not with the pairs of identical ones.

    Parameters
    ----------
    codes : uint8 (n, code_size)
        Packed codes.
    n_bits : int
        Code length.
    radius : int
        Largest Hamming distance of a pair, >= 0 (0: exact duplicates).
    ids : int64 (n,), optional
        Item ids (default ``0 .. n-1``); unique, non-negative.
    index : str, default "mih"
        Index type searched (any exact one: ``mih``, ``linear``, ``hash-table``).
    **index_params
        Parameters of that index (e.g. ``n_substrings``).

    Returns
    -------
    NearDuplicates

    Raises
    ------
    CodeFormatError
        ``codes`` is not a packed code array of ``n_bits`` bits.
    InvalidInputError
        A bad radius, bad ids, or an approximate index type (``multi-table``).
    """
    codes = check_codes(codes, n_bits)
    radius = check_int(radius, "radius", minimum=0, maximum=n_bits)
    if index == "multi-table":
        raise InvalidInputError(
            "a multi-table index is approximate: near-duplicates take an exact index "
            "(mih, linear, hash-table)"
        )
    searched = create_index(index, n_bits, **index_params)  # parameters checked up front
    n = len(codes)
    if ids is None:
        item_ids = np.arange(n, dtype=np.int64)
    else:
        item_ids = CodeStore(codes.shape[1]).check_new_ids(ids, n)
    rows = np.ascontiguousarray(codes).view(np.dtype((np.void, codes.shape[1]))).ravel()
    distinct, code_of_item = np.unique(rows, return_inverse=True)
    code_of_item = code_of_item.ravel().astype(np.int64)
    order = np.lexsort((item_ids, code_of_item))
    starts = np.zeros(len(distinct) + 1, dtype=np.int64)
    np.cumsum(np.bincount(code_of_item, minlength=len(distinct)), out=starts[1:])
    links = np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int32)
    if radius > 0 and len(distinct) > 1:
        distinct_codes = distinct.view(np.uint8).reshape(len(distinct), codes.shape[1])
        searched.add(distinct_codes)  # ids 0 .. n_codes - 1: the distinct codes' numbers
        lims, distances, found = searched.range_search(distinct_codes, radius)
        owners = np.repeat(np.arange(len(distinct), dtype=np.int64), np.diff(lims))
        keep = owners < found  # each link once, and no code with itself
        links = owners[keep], found[keep].astype(np.int64), distances[keep].astype(np.int32)
    return NearDuplicates(item_ids[order], starts, *links, radius=radius)


def near_duplicate_pairs(
    codes: Any,
    n_bits: int,
    radius: int,
    *,
    ids: Any = None,
    index: str = "mih",
    **index_params: Any,
) -> DuplicatePairs:
    """Every pair of distinct items whose codes are at most ``radius`` bits apart, at once.

    The pairs of ``m`` identical codes number ``m (m - 1) / 2``: to count them, group them or
    save them without holding them all, use :func:`near_duplicates`. Parameters, errors: as
    :func:`near_duplicates`.

    Returns
    -------
    DuplicatePairs
    """
    found = near_duplicates(codes, n_bits, radius, ids=ids, index=index, **index_params)
    return found.pairs()


def group_pairs(pairs: DuplicatePairs) -> list[np.ndarray]:
    """The groups the pairs link (connected components), each as sorted ids; groups ordered by
    size, largest first, then by their smallest id. Items in no pair form no group."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if len(pairs) == 0:
        return []
    members, inverse = np.unique(np.concatenate([pairs.first, pairs.second]), return_inverse=True)
    m = len(members)
    edges = coo_matrix(
        (np.ones(len(pairs)), (inverse[: len(pairs)], inverse[len(pairs) :])), shape=(m, m)
    )
    _, labels = connected_components(edges, directed=False)
    order = np.argsort(labels, kind="stable")  # members ascending within each component
    boundaries = np.flatnonzero(np.diff(labels[order])) + 1
    groups = np.split(members[order], boundaries)
    return sorted(groups, key=lambda g: (-len(g), int(g[0])))


def write_groups_csv(
    path: str | os.PathLike[str],
    groups: Sequence[np.ndarray],
    paths: Mapping[int, str] | None = None,
) -> None:
    """Save ``groups`` (of :func:`group_pairs`) as CSV, atomically: a header ``group, size, id,
    path``, then one row per member: the group's number (its position in ``groups``), its size,
    the member's id and its file from ``paths`` (id -> path, e.g.
    :meth:`hashlearn.encoding.CodesFile.paths_by_id`; empty when it has none)."""
    paths = paths or {}
    _write_csv(
        path,
        ["group", "size", "id", "path"],
        (
            [number, len(group), item, paths.get(item, "")]
            for number, group in enumerate(groups)
            for item in np.asarray(group).tolist()
        ),
    )


def write_pairs_csv(path: str | os.PathLike[str], pairs: DuplicatePairs | NearDuplicates) -> None:
    """Save ``pairs`` as CSV, atomically: a header ``first, second, distance``, then one row per
    pair, in the order of :class:`DuplicatePairs`. The pairs of a :class:`NearDuplicates` are
    written chunk by chunk, never all in memory."""
    chunks = pairs.iter_pairs() if isinstance(pairs, NearDuplicates) else [pairs]
    _write_csv(
        path,
        ["first", "second", "distance"],
        (
            row
            for chunk in chunks
            for row in zip(chunk.first.tolist(), chunk.second.tolist(), chunk.distances.tolist())
        ),
    )


def _write_csv(path: str | os.PathLike[str], header: list[str], rows: Iterable[Any]) -> None:
    """A CSV file of ``header`` and ``rows``, written atomically, row by row."""
    with atomic_write(path) as handle:
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        writer = csv.writer(text)
        writer.writerow(header)
        writer.writerows(rows)
        text.flush()
        text.detach()  # the handle stays open for atomic_write to sync and close
