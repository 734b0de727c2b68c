"""Writing an index file (layout in :mod:`hashlearn.index._format.layout`)."""

from __future__ import annotations

import hashlib
import os
from typing import Any, BinaryIO

import numpy as np

from hashlearn._io import atomic_write
from hashlearn._version import __version__
from hashlearn.codes import n_bytes
from hashlearn.index._format.layout import (
    ALLOWED_DTYPES,
    FORMAT_VERSION,
    MAGIC,
    PREAMBLE,
    align,
    canonical,
)

__all__ = ["write_index_file"]


def _as_little_endian(name: str, array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    if array.dtype.str not in ALLOWED_DTYPES:
        raise TypeError(
            f"array section {name!r} has dtype {array.dtype}, which the index format cannot store; "
            f"allowed: {sorted(ALLOWED_DTYPES)}"
        )
    return np.ascontiguousarray(array)


def _array_bytes(array: np.ndarray) -> memoryview:
    return memoryview(array.reshape(-1)).cast("B")


def _write_section(handle: BinaryIO, array: np.ndarray) -> None:
    """Write one array's raw bytes (a seam for tests that simulate a failure mid-write)."""
    if array.size:
        handle.write(_array_bytes(array))


def write_index_file(
    path: str | os.PathLike[str],
    *,
    index_type: str,
    n_bits: int,
    arrays: dict[str, np.ndarray],
    params: dict[str, Any] | None = None,
) -> None:
    """Write an index file atomically (temporary file, fsync, rename).

    Parameters
    ----------
    path : str or os.PathLike
        Destination; replaced only once the new file is complete and flushed to disk.
    index_type : str
        Name that :func:`hashlearn.index.load_index` dispatches on.
    n_bits : int
        Code width in bits, 1..4096.
    arrays : dict of str to numpy.ndarray
        Must contain ``"codes"`` (``uint8 (ntotal, ceil(n_bits / 8))``) and ``"ids"``
        (``int64 (ntotal,)``); further entries are stored as extra sections, in the given order.
    params : dict, optional
        JSON-serialisable index parameters (no NaN or infinity).
    """
    if "codes" not in arrays or "ids" not in arrays:
        raise ValueError(f"arrays must contain 'codes' and 'ids', got {sorted(arrays)}")
    code_size = n_bytes(n_bits)
    ntotal = len(arrays["ids"])
    prepared = {name: _as_little_endian(name, array) for name, array in arrays.items()}
    if prepared["codes"].shape != (ntotal, code_size) or prepared["codes"].dtype != np.uint8:
        raise ValueError(
            f"codes must be uint8 of shape {(ntotal, code_size)}, got "
            f"{prepared['codes'].dtype} {prepared['codes'].shape}"
        )
    if prepared["ids"].shape != (ntotal,) or prepared["ids"].dtype != np.int64:
        raise ValueError(
            f"ids must be int64 of shape ({ntotal},), got {prepared['ids'].dtype} {prepared['ids'].shape}"
        )

    sections = []
    offset = 0
    for name, array in prepared.items():
        offset = align(offset)
        sections.append(
            {
                "name": name,
                "dtype": array.dtype.str,
                "shape": [int(s) for s in array.shape],
                "offset": offset,
                "nbytes": int(array.nbytes),
            }
        )
        offset += array.nbytes
    payload_nbytes = offset

    header: dict[str, Any] = {
        "format": "hashlearn-index",
        "format_version": FORMAT_VERSION,
        "hashlearn_version": __version__,
        "index_type": str(index_type),
        "n_bits": int(n_bits),
        "code_size": code_size,
        "ntotal": ntotal,
        "params": dict(params or {}),
        "sections": sections,
        "payload_nbytes": payload_nbytes,
    }
    digest = hashlib.sha256(canonical(header))
    written = 0
    for section, array in zip(sections, prepared.values(), strict=True):
        digest.update(bytes(section["offset"] - written))
        if array.size:
            digest.update(_array_bytes(array))
        written = section["offset"] + section["nbytes"]
    header["sha256"] = digest.hexdigest()
    header_bytes = canonical(header)
    start = align(PREAMBLE.size + len(header_bytes))

    with atomic_write(path) as handle:
        handle.write(PREAMBLE.pack(MAGIC, FORMAT_VERSION, len(header_bytes)))
        handle.write(header_bytes)
        handle.write(bytes(start - PREAMBLE.size - len(header_bytes)))
        written = 0
        for section, array in zip(sections, prepared.values(), strict=True):
            handle.write(bytes(section["offset"] - written))
            _write_section(handle, array)
            written = section["offset"] + section["nbytes"]
