"""The binary file format of every hashlearn index (``*.hlindex`` by convention).

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
    the index class name (``"LinearIndex"``...), used by :func:`hashlearn.index.load_index`.
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

import hashlib
import importlib.metadata
import json
import math
import os
import struct
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np

from hashlearn._io import atomic_write
from hashlearn.codes import MAX_BITS, n_bytes
from hashlearn.exceptions import FileFormatError

__all__ = [
    "ALIGNMENT",
    "FORMAT_VERSION",
    "MAGIC",
    "IndexFile",
    "read_index_file",
    "write_index_file",
]

MAGIC = b"HLINDEX\x00"
FORMAT_VERSION = 1
ALIGNMENT = 64
_PREAMBLE = struct.Struct("<8sII")  # magic, format version, header length
_MAX_HEADER_BYTES = 1 << 26  # 64 MiB: a larger header means a corrupted length field
_CHUNK = 1 << 22  # bytes hashed per read when streaming over a memory-mapped file
_ALLOWED_DTYPES = frozenset(
    {"|b1", "|u1", "|i1", "<u2", "<i2", "<u4", "<i4", "<u8", "<i8", "<f2", "<f4", "<f8"}
)
_SECTION_KEYS = frozenset({"name", "dtype", "shape", "offset", "nbytes"})
_REQUIRED_KEYS = (
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
        Name of the index class that wrote the file.
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


def _canonical(header: dict[str, Any]) -> bytes:
    return json.dumps(
        header, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _align(offset: int) -> int:
    return -(-offset // ALIGNMENT) * ALIGNMENT


def _as_little_endian(name: str, array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    if array.dtype.str not in _ALLOWED_DTYPES:
        raise TypeError(
            f"array section {name!r} has dtype {array.dtype}, which the index format cannot store; "
            f"allowed: {sorted(_ALLOWED_DTYPES)}"
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
        offset = _align(offset)
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
        "hashlearn_version": _hashlearn_version(),
        "index_type": str(index_type),
        "n_bits": int(n_bits),
        "code_size": code_size,
        "ntotal": ntotal,
        "params": dict(params or {}),
        "sections": sections,
        "payload_nbytes": payload_nbytes,
    }
    digest = hashlib.sha256(_canonical(header))
    written = 0
    for section, array in zip(sections, prepared.values(), strict=True):
        digest.update(bytes(section["offset"] - written))
        if array.size:
            digest.update(_array_bytes(array))
        written = section["offset"] + section["nbytes"]
    header["sha256"] = digest.hexdigest()
    header_bytes = _canonical(header)
    start = _align(_PREAMBLE.size + len(header_bytes))

    with atomic_write(path) as handle:
        handle.write(_PREAMBLE.pack(MAGIC, FORMAT_VERSION, len(header_bytes)))
        handle.write(header_bytes)
        handle.write(bytes(start - _PREAMBLE.size - len(header_bytes)))
        written = 0
        for section, array in zip(sections, prepared.values(), strict=True):
            handle.write(bytes(section["offset"] - written))
            _write_section(handle, array)
            written = section["offset"] + section["nbytes"]


def _hashlearn_version() -> str:
    try:
        return importlib.metadata.version("hashlearn")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _fail(path: str | os.PathLike[str], message: str) -> FileFormatError:
    return FileFormatError(f"{os.fspath(path)!s}: {message}")


def _check_int_field(path: Any, header: dict[str, Any], key: str, lo: int, hi: int | None) -> int:
    value = header[key]
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < lo
        or (hi is not None and value > hi)
    ):
        bound = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise _fail(path, f"corrupted header: {key} must be an integer {bound}, got {value!r}")
    return value


def _parse_sections(path: Any, header: dict[str, Any]) -> list[dict[str, Any]]:
    sections = header["sections"]
    payload_nbytes = _check_int_field(path, header, "payload_nbytes", 0, None)
    if not isinstance(sections, list):
        raise _fail(
            path, f"corrupted header: sections must be a list, got {type(sections).__name__}"
        )
    seen: set[str] = set()
    end = 0
    for section in sections:
        if not isinstance(section, dict) or set(section) != _SECTION_KEYS:
            raise _fail(path, f"corrupted header: malformed section entry {section!r}")
        name, dtype, shape = section["name"], section["dtype"], section["shape"]
        if not isinstance(name, str) or name in seen:
            raise _fail(path, f"corrupted header: section name {name!r} is not a new string")
        seen.add(name)
        if dtype not in _ALLOWED_DTYPES:
            raise _fail(path, f"corrupted header: section {name!r} has unsupported dtype {dtype!r}")
        if not isinstance(shape, list) or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape
        ):
            raise _fail(path, f"corrupted header: section {name!r} has invalid shape {shape!r}")
        offset = _check_int_field(path, section, "offset", end, None)
        if offset % ALIGNMENT:
            raise _fail(
                path,
                f"corrupted header: section {name!r} offset {offset} is not {ALIGNMENT}-byte aligned",
            )
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        if section["nbytes"] != nbytes:
            raise _fail(
                path,
                f"corrupted header: section {name!r} of shape {shape} {dtype} takes {nbytes} bytes, "
                f"header says {section['nbytes']!r}",
            )
        end = offset + nbytes
    if end != payload_nbytes:
        raise _fail(
            path, f"corrupted header: sections end at {end} but payload_nbytes is {payload_nbytes}"
        )
    return sections


def _read_header(path: Any, handle: BinaryIO, file_size: int) -> tuple[dict[str, Any], int]:
    """Check the preamble and header; return the header and the payload start offset."""
    if file_size == 0:
        raise _fail(path, "the file is empty (0 bytes); it is not a hashlearn index file")
    head = handle.read(_PREAMBLE.size)
    prefix = head[: len(MAGIC)]
    if prefix != MAGIC[: len(prefix)]:
        raise _fail(
            path,
            f"not a hashlearn index file: it starts with {head[:8]!r}, an index file starts with {MAGIC!r}",
        )
    if len(head) < _PREAMBLE.size:
        raise _fail(
            path,
            f"the file is truncated: expected at least {_PREAMBLE.size} bytes, got {file_size}",
        )
    _, version, header_length = _PREAMBLE.unpack(head)
    if version > FORMAT_VERSION:
        raise _fail(
            path,
            f"the file uses index format version {version}, but this hashlearn reads format version "
            f"{FORMAT_VERSION} at most; upgrade hashlearn to read it",
        )
    if version < 1:
        raise _fail(
            path, f"unsupported index format version {version} (this hashlearn reads version 1)"
        )
    if header_length > _MAX_HEADER_BYTES:
        raise _fail(path, f"corrupted header: header length {header_length} bytes is implausible")
    if _PREAMBLE.size + header_length > file_size:
        raise _fail(
            path,
            f"the file is truncated: expected at least {_PREAMBLE.size + header_length} bytes "
            f"(preamble and header), got {file_size}",
        )
    raw = handle.read(header_length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(path, f"corrupted header: it is not valid UTF-8 JSON ({exc})") from None
    if not isinstance(header, dict):
        raise _fail(path, f"corrupted header: expected a JSON object, got {type(header).__name__}")
    missing = [key for key in _REQUIRED_KEYS if key not in header]
    if missing:
        raise _fail(path, f"corrupted header: missing keys {missing}")
    if header["format"] != "hashlearn-index" or header["format_version"] != version:
        raise _fail(
            path,
            f"corrupted header: format {header['format']!r} version {header['format_version']!r} "
            f"does not match the preamble (version {version})",
        )
    start = _align(_PREAMBLE.size + header_length)
    expected = start + _check_int_field(path, header, "payload_nbytes", 0, None)
    if file_size < expected:
        raise _fail(path, f"the file is truncated: expected {expected} bytes, got {file_size}")
    if file_size > expected:
        raise _fail(
            path,
            f"the file has {file_size - expected} unexpected trailing bytes: expected {expected} bytes, got {file_size}",
        )
    gap = handle.read(start - _PREAMBLE.size - header_length)
    if gap.strip(b"\x00"):
        raise _fail(path, "corrupted file: the padding after the header is not zero")
    return header, start


def _check_index_fields(path: Any, header: dict[str, Any], sections: list[dict[str, Any]]) -> None:
    if not isinstance(header["index_type"], str) or not header["index_type"]:
        raise _fail(
            path, f"corrupted header: index_type must be a name, got {header['index_type']!r}"
        )
    n_bits = _check_int_field(path, header, "n_bits", 1, MAX_BITS)
    ntotal = _check_int_field(path, header, "ntotal", 0, None)
    code_size = _check_int_field(path, header, "code_size", 1, None)
    if code_size != n_bytes(n_bits):
        raise _fail(path, f"corrupted header: code_size {code_size} does not match n_bits {n_bits}")
    if not isinstance(header["params"], dict):
        raise _fail(path, "corrupted header: params must be a JSON object")
    by_name = {section["name"]: section for section in sections}
    for name, dtype, shape in (("codes", "|u1", [ntotal, code_size]), ("ids", "<i8", [ntotal])):
        section = by_name.get(name)
        if section is None:
            raise _fail(path, f"corrupted header: the {name!r} section is missing")
        if section["dtype"] != dtype or section["shape"] != shape:
            raise _fail(
                path,
                f"corrupted header: section {name!r} is {section['dtype']} {section['shape']}, "
                f"expected {dtype} {shape}",
            )


def read_index_file(
    path: str | os.PathLike[str], *, mmap: bool = False, verify: bool = True
) -> IndexFile:
    """Read and validate an index file.

    Parameters
    ----------
    path : str or os.PathLike
        File written by :func:`write_index_file`.
    mmap : bool, default False
        Return read-only ``numpy.memmap`` views of the array sections instead of reading them
        into memory.
    verify : bool, default True
        Check the SHA-256 checksum. With ``mmap=True`` this streams once over the file in
        chunks (nothing is kept in memory). ``verify=False`` skips it for trusted files.

    Returns
    -------
    IndexFile

    Raises
    ------
    FileFormatError
        The file is empty, foreign (bad magic), of a newer format version, truncated, has a
        malformed header, or fails the checksum.
    """
    with open(path, "rb") as handle:
        file_size = os.fstat(handle.fileno()).st_size
        header, start = _read_header(path, handle, file_size)
        sections = _parse_sections(path, header)
        _check_index_fields(path, header, sections)
        expected_digest = header.pop("sha256")
        digest = hashlib.sha256(_canonical(header)) if verify else None
        header["sha256"] = expected_digest
        payload_nbytes = header["payload_nbytes"]
        arrays: dict[str, np.ndarray] = {}
        if mmap:
            if digest is not None:
                buffer = bytearray(min(_CHUNK, max(payload_nbytes, 1)))
                view = memoryview(buffer)
                remaining = payload_nbytes
                while remaining:
                    got = handle.readinto(view[: min(remaining, len(buffer))])
                    if not got:
                        raise _fail(
                            path, f"the file is truncated: expected {start + payload_nbytes} bytes"
                        )
                    digest.update(view[:got])
                    remaining -= got
            for section in sections:
                shape = tuple(section["shape"])
                if section["nbytes"] == 0:
                    array = np.empty(shape, dtype=section["dtype"])
                    array.flags.writeable = False
                else:
                    array = np.memmap(
                        path,
                        dtype=section["dtype"],
                        mode="r",
                        offset=start + section["offset"],
                        shape=shape,
                    )
                arrays[section["name"]] = array
        else:
            payload = bytearray(payload_nbytes)
            view, got = memoryview(payload), 0
            while got < payload_nbytes:  # one read() may return less than asked for (> 2 GiB)
                step = handle.readinto(view[got:])
                if not step:
                    break
                got += step
            if got != payload_nbytes:
                raise _fail(
                    path,
                    f"the file is truncated: expected {start + payload_nbytes} bytes, got {start + got}",
                )
            if digest is not None:
                digest.update(payload)
            for section in sections:
                count = math.prod(section["shape"])
                array = np.frombuffer(
                    payload, dtype=section["dtype"], count=count, offset=section["offset"]
                )
                arrays[section["name"]] = array.reshape(tuple(section["shape"]))
    if digest is not None and digest.hexdigest() != expected_digest:
        raise _fail(
            path,
            "checksum mismatch: the file is corrupted (its SHA-256 does not match the one in its header)",
        )
    return IndexFile(
        index_type=header["index_type"],
        n_bits=header["n_bits"],
        ntotal=header["ntotal"],
        params=header["params"],
        arrays=arrays,
        header=header,
    )
