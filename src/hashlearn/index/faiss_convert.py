"""Conversion between hashlearn indexes and faiss binary indexes, and faiss' own file format.

:func:`to_faiss` and :func:`from_faiss` convert between a hashlearn index and a faiss
``IndexBinaryIDMap2`` over an ``IndexBinaryFlat``; :func:`write_faiss_index` and
:func:`read_faiss_index` do the same through faiss' file format (``faiss.write_index_binary`` /
``faiss.read_index_binary``). Codes need no conversion: hashlearn's packed layout is faiss' (see
:mod:`hashlearn.codes`); faiss binary indexes need ``n_bits`` to be a multiple of 8. faiss is
optional and imported by these functions (:class:`~hashlearn.index.faiss_adapter.FaissNotInstalledError`
when it is missing).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from hashlearn._io import atomic_write
from hashlearn.exceptions import FileFormatError, InvalidInputError
from hashlearn.index._faiss import check_byte_bits, faiss_message, import_faiss
from hashlearn.index.base import BinaryIndex
from hashlearn.index.linear import LinearIndex

__all__ = ["from_faiss", "read_faiss_index", "to_faiss", "write_faiss_index"]


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
    faiss = import_faiss()
    if not isinstance(index, BinaryIndex):
        raise InvalidInputError(
            f"to_faiss takes a hashlearn BinaryIndex, got {type(index).__name__}"
        )
    if not callable(getattr(index, "get_codes", None)):
        raise InvalidInputError(
            f"{type(index).__name__} cannot give its codes (it has no get_codes method), so it "
            "cannot be converted to faiss"
        )
    check_byte_bits(index.n_bits, "a faiss binary index")
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
    faiss = import_faiss()
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
    faiss = import_faiss()
    faiss_index = to_faiss(index)
    with atomic_write(path) as handle:
        writer = faiss.PyCallbackIOWriter(handle.write)  # faiss streams into the open file
        try:
            faiss.write_index_binary(faiss_index, writer)
        except RuntimeError as exc:
            raise OSError(
                f"faiss could not write {os.fspath(path)!r}: {faiss_message(exc)}"
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
    faiss = import_faiss()
    name = os.fspath(path)
    with open(name, "rb"):  # the usual OSError for a missing file or a folder, before faiss
        pass
    try:
        faiss_index = faiss.read_index_binary(name)
    except (RuntimeError, MemoryError) as exc:
        raise FileFormatError(
            f"{name}: not a readable faiss binary index file: {faiss_message(exc)}"
        ) from None
    try:
        return from_faiss(faiss_index)
    except InvalidInputError as exc:
        raise FileFormatError(f"{name}: {exc}") from None
