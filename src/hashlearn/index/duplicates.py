"""Near-duplicates in a collection: every pair of codes within a Hamming radius, and the groups
they link.

:func:`near_duplicate_pairs` is a self-join: each code is searched for in an index of the whole
collection (multi-index hashing by default: exact and sublinear for small radii, Norouzi et al.,
CVPR 2012), so a million codes are compared without a million-by-million scan.
:func:`group_pairs` joins the pairs into groups (connected components: ``a ~ b`` and ``b ~ c``
put ``a``, ``b`` and ``c`` in one group even when ``a`` and ``c`` are further apart).
:func:`write_groups_csv` and :func:`write_pairs_csv` save them as the CSV files of
``hashlearn dedup --out`` and ``--pairs``.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hashlearn._io import atomic_write
from hashlearn._validation import check_int
from hashlearn.codes import check_codes
from hashlearn.exceptions import InvalidInputError
from hashlearn.index.factory import create_index

__all__ = [
    "DuplicatePairs",
    "group_pairs",
    "near_duplicate_pairs",
    "write_groups_csv",
    "write_pairs_csv",
]


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


def near_duplicate_pairs(
    codes: Any,
    n_bits: int,
    radius: int,
    *,
    ids: Any = None,
    index: str = "mih",
    **index_params: Any,
) -> DuplicatePairs:
    """Every pair of distinct items whose codes are at most ``radius`` bits apart.

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
    DuplicatePairs

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
    searched = create_index(index, n_bits, **index_params)
    if ids is None:
        searched.add(codes)
    else:
        searched.add_with_ids(codes, ids)
    item_ids = searched.ids if ids is None else np.asarray(ids, dtype=np.int64)
    lims, distances, found = searched.range_search(codes, radius)
    owners = np.repeat(item_ids, np.diff(lims))
    keep = owners < found  # each unordered pair once, and no item with itself
    first, second, distances = owners[keep], found[keep], distances[keep]
    order = np.lexsort((second, first, distances))
    return DuplicatePairs(
        first[order].astype(np.int64),
        second[order].astype(np.int64),
        distances[order].astype(np.int32),
        radius,
    )


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


def write_pairs_csv(path: str | os.PathLike[str], pairs: DuplicatePairs) -> None:
    """Save ``pairs`` as CSV, atomically: a header ``first, second, distance``, then one row per
    pair, in the order of ``pairs``."""
    _write_csv(
        path,
        ["first", "second", "distance"],
        zip(pairs.first.tolist(), pairs.second.tolist(), pairs.distances.tolist()),
    )


def _write_csv(path: str | os.PathLike[str], header: list[str], rows: Iterable[Any]) -> None:
    """A CSV file of ``header`` and ``rows``, written atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    with atomic_write(path) as handle:
        handle.write(buffer.getvalue().encode())
