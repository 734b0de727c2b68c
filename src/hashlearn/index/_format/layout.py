"""The binary file format of every hashlearn index (``*.hlindex`` by convention): its layout.

Written by :func:`~hashlearn.index._format.writing.write_index_file`, read and checked by
:func:`~hashlearn.index._format.reading.read_index_file`.

Layout (all integers little-endian)
-----------------------------------
============  =====================  ===============================================================
offset        size                   content
============  =====================  ===============================================================
0             8                      magic ``b"HLINDEX\\x00"``
8             4                      ``uint32`` file format version (currently 1)
12            4                      ``uint32`` header length ``H`` in bytes
16            ``H``                  UTF-8 JSON header (see below)
16 + ``H``    0..63                  zero padding up to the next multiple of 64: the payload start
payload       ``payload_nbytes``     the array sections, each starting at a 64-byte-aligned offset
============  =====================  ===============================================================

The header is a JSON object with the keys

``format``
    always ``"hashlearn-index"``.
``format_version``
    the version written in the preamble, repeated.
``hashlearn_version``
    version of the hashlearn that wrote the file (informative only).
``index_type``
    the registry name of the index type (``"linear"``, ``"mih"``...,
    :func:`hashlearn.index.list_indexes`), by which :func:`hashlearn.index.load_index` finds it.
    Files written by hashlearn 0.1 hold the class name instead (``"LinearIndex"``...), which
    loads the same.
``n_bits``, ``code_size``, ``ntotal``
    code width in bits, bytes per code (``ceil(n_bits / 8)``) and number of stored items.
``params``
    a JSON object of index-specific parameters.
``sections``
    a list, one entry per array: ``name``, ``dtype`` (numpy ``dtype.str``, always little-endian or
    byte-sized: ``"|u1"``, ``"<i8"``...), ``shape`` (list of ints), ``offset`` (bytes from the
    payload start, a multiple of 64) and ``nbytes``. Every index stores at least ``codes``
    (``|u1``, shape ``(ntotal, code_size)``) and ``ids`` (``<i8``, shape ``(ntotal,)``); index types
    may add more sections. Arrays are C-ordered raw bytes; gaps between sections are zero bytes.
``payload_nbytes``
    size of the payload (end of the last section); the file is exactly
    ``payload_start + payload_nbytes`` bytes long.
``sha256``
    hex SHA-256 of the canonical header *without* its ``sha256`` key (``json.dumps`` with
    ``sort_keys=True``, ``separators=(",", ":")``, ``ensure_ascii=False``, UTF-8) followed by the
    payload bytes. It therefore protects the header values as well as the arrays.

No pickle is involved anywhere: reading a file never executes code from it.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hashlearn._io import INDEX_FILE_MAGIC
from hashlearn.codes import n_bytes

__all__ = ["ALIGNMENT", "FORMAT_VERSION", "MAGIC", "PREAMBLE", "IndexFile", "align", "canonical"]

MAGIC = INDEX_FILE_MAGIC  # defined beside the other file kinds, in hashlearn._io
FORMAT_VERSION = 1
ALIGNMENT = 64
PREAMBLE = struct.Struct("<8sII")  # magic, format version, header length
MAX_HEADER_BYTES = 1 << 26  # 64 MiB: a larger header means a corrupted length field
CHUNK = 1 << 22  # bytes hashed per read when streaming over a memory-mapped file
ALLOWED_DTYPES = frozenset(
    {"|b1", "|u1", "|i1", "<u2", "<i2", "<u4", "<i4", "<u8", "<i8", "<f2", "<f4", "<f8"}
)
SECTION_KEYS = frozenset({"name", "dtype", "shape", "offset", "nbytes"})
REQUIRED_KEYS = (
    "format",
    "format_version",
    "index_type",
    "n_bits",
    "code_size",
    "ntotal",
    "params",
    "sections",
    "payload_nbytes",
    "sha256",
)


@dataclass(frozen=True)
class IndexFile:
    """The validated content of an index file.

    Attributes
    ----------
    index_type : str
        The index type, as the file names it: its registry name (``"linear"``...), or its class
        name (``"LinearIndex"``...) in files of hashlearn 0.1.
    n_bits, ntotal : int
        Code width in bits and number of stored items.
    params : dict
        Index-specific JSON parameters.
    arrays : dict of str to numpy.ndarray
        Every section by name; ``arrays["codes"]`` is ``uint8 (ntotal, code_size)`` and
        ``arrays["ids"]`` is ``int64 (ntotal,)``. Read-only ``numpy.memmap`` views when the file
        was read with ``mmap=True``.
    header : dict
        The whole JSON header.
    """

    index_type: str
    n_bits: int
    ntotal: int
    params: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(repr=False)
    header: dict[str, Any] = field(repr=False)

    @property
    def code_size(self) -> int:
        """Bytes per code, ``ceil(n_bits / 8)``."""
        return n_bytes(self.n_bits)


def canonical(header: dict[str, Any]) -> bytes:
    """The bytes of ``header`` the checksum covers: sorted keys, no spaces, UTF-8."""
    return json.dumps(
        header, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def align(offset: int) -> int:
    """``offset`` rounded up to a multiple of :data:`ALIGNMENT`."""
    return -(-offset // ALIGNMENT) * ALIGNMENT
