"""Indexes by name: :func:`create_index` builds an empty one, :func:`load_index` reads any saved one.

Both find the index type in :data:`hashlearn.index.registry.INDEX_TYPES` (importing its module on
first use). The command line (``hashlearn index --index-type NAME --param KEY=VALUE``) builds indexes
through here.
"""

from __future__ import annotations

import os
from typing import Any

from hashlearn.exceptions import FileFormatError, InvalidInputError
from hashlearn.index._mapped import read_mapped_index_file
from hashlearn.index.base import BinaryIndex
from hashlearn.index.registry import INDEX_TYPES, list_indexes

__all__ = ["create_index", "load_index"]


def create_index(name: str, n_bits: int, **params: Any) -> BinaryIndex:
    """An empty index of type ``name`` for codes of ``n_bits`` bits.

    Parameters
    ----------
    name : str
        One of :func:`~hashlearn.index.list_indexes`.
    n_bits : int
        Code width. For ``"multi-table"`` it is the width of the concatenated codes, split into
        ``n_tables`` tables of ``n_bits / n_tables`` bits each.
    **params
        The index type's other constructor arguments, e.g. ``n_substrings`` for ``"mih"``,
        ``key_bits`` for ``"hash-table"``, ``kind``, ``b``, ``nhash``, ``nflip`` for ``"faiss"``.

    Raises
    ------
    UnknownNameError
        ``name`` is not a known index type.
    InvalidInputError
        A parameter is unknown to the index type or out of range.

    Examples
    --------
    >>> from hashlearn.index import create_index
    >>> create_index("multi-table", 24, n_tables=2)
    MultiTableIndex(n_tables=2, bits_per_table=12, ntotal=0)
    """
    cls = INDEX_TYPES.get(name)
    known = cls.parameter_names()
    unknown = sorted(set(params) - set(known)) if known is not None else []
    if unknown:
        takes = (
            f"it takes {', '.join(known)}"
            if known
            else "it takes no parameters besides the code length"
        )
        raise InvalidInputError(
            f"the {name} index has no parameter {', '.join(unknown)}: {takes} "
            "(`hashlearn index --help` describes each index type)"
        )
    arguments = cls.constructor_args(n_bits, **params)
    try:
        return cls(**arguments)
    except TypeError as exc:  # an unknown keyword
        raise InvalidInputError(f"index type {name!r}: {exc}") from None


def load_index(
    path: str | os.PathLike[str], mmap: bool = False, *, verify: bool = True
) -> BinaryIndex:
    """Load an index of any type from a file written by its ``save`` method.

    Parameters
    ----------
    path : str or os.PathLike
    mmap : bool, default False
        Keep the stored arrays as read-only memory maps of the file. The file is then held
        open and checked before every use: changed in place (truncated, overwritten), it is
        refused with :class:`~hashlearn.index.IndexFileChangedError` instead of crashing the
        process; replaced by a rename, the index keeps reading the file it loaded.
    verify : bool, default True
        Check the file's SHA-256 checksum.

    Returns
    -------
    BinaryIndex
        An instance of the index type the file names (e.g. :class:`~hashlearn.index.LinearIndex`
        for ``"linear"``, or ``"LinearIndex"`` in files of hashlearn 0.1).

    Raises
    ------
    FileFormatError
        The file is not a valid index file, or its index type is unknown to this hashlearn.
    """
    file, mapped = read_mapped_index_file(path, mmap=mmap, verify=verify)
    if file.index_type not in INDEX_TYPES:
        raise FileFormatError(
            f"{os.fspath(path)}: index type {file.index_type!r} is not known to this hashlearn "
            f"(known: {', '.join(list_indexes())})"
        )
    return INDEX_TYPES.get(file.index_type)._from_file(file, mapped)
