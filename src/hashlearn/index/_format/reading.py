"""Reading an index file, and checking everything in it (layout in
:mod:`hashlearn.index._format.layout`)."""

from __future__ import annotations

import hashlib
import math
import os
from typing import Any, BinaryIO

import numpy as np

from hashlearn._io import describe_kind, file_kind
from hashlearn._json import parse_json
from hashlearn.codes import MAX_BITS, check_codes, n_bytes
from hashlearn.exceptions import CodeFormatError, FileFormatError
from hashlearn.index._format.layout import (
    ALIGNMENT,
    ALLOWED_DTYPES,
    CHUNK,
    FORMAT_VERSION,
    MAGIC,
    MAX_HEADER_BYTES,
    PREAMBLE,
    REQUIRED_KEYS,
    SECTION_KEYS,
    IndexFile,
    align,
    canonical,
)

__all__ = ["check_file_items", "read_index_file"]


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
        if not isinstance(section, dict) or set(section) != SECTION_KEYS:
            raise _fail(path, f"corrupted header: malformed section entry {section!r}")
        name, dtype, shape = section["name"], section["dtype"], section["shape"]
        if not isinstance(name, str) or name in seen:
            raise _fail(path, f"corrupted header: section name {name!r} is not a new string")
        seen.add(name)
        if dtype not in ALLOWED_DTYPES:
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
    head = handle.read(PREAMBLE.size)
    prefix = head[: len(MAGIC)]
    if prefix != MAGIC[: len(prefix)]:
        kind = file_kind(path)
        what = "a file of unknown format" if kind == "unknown" else describe_kind(kind)
        hint = " (a model?)" if kind == "safetensors" else ""
        raise _fail(
            path,
            f"this is {what}{hint}, not a hashlearn index file: give the file `hashlearn "
            "index` wrote (`hashlearn info FILE` tells what a file holds)",
        )
    if len(head) < PREAMBLE.size:
        raise _fail(
            path,
            f"the file is truncated: expected at least {PREAMBLE.size} bytes, got {file_size}",
        )
    _, version, header_length = PREAMBLE.unpack(head)
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
    if header_length > MAX_HEADER_BYTES:
        raise _fail(path, f"corrupted header: header length {header_length} bytes is implausible")
    if PREAMBLE.size + header_length > file_size:
        raise _fail(
            path,
            f"the file is truncated: expected at least {PREAMBLE.size + header_length} bytes "
            f"(preamble and header), got {file_size}",
        )
    header = parse_json(
        handle.read(header_length),
        f"{os.fspath(path)!s}: corrupted header: it",
        max_bytes=MAX_HEADER_BYTES,
        error=FileFormatError,
    )
    if not isinstance(header, dict):
        raise _fail(path, f"corrupted header: expected a JSON object, got {type(header).__name__}")
    missing = [key for key in REQUIRED_KEYS if key not in header]
    if missing:
        raise _fail(path, f"corrupted header: missing keys {missing}")
    if header["format"] != "hashlearn-index" or header["format_version"] != version:
        raise _fail(
            path,
            f"corrupted header: format {header['format']!r} version {header['format_version']!r} "
            f"does not match the preamble (version {version})",
        )
    start = align(PREAMBLE.size + header_length)
    expected = start + _check_int_field(path, header, "payload_nbytes", 0, None)
    if file_size < expected:
        raise _fail(path, f"the file is truncated: expected {expected} bytes, got {file_size}")
    if file_size > expected:
        raise _fail(
            path,
            f"the file has {file_size - expected} unexpected trailing bytes: expected {expected} bytes, got {file_size}",
        )
    gap = handle.read(start - PREAMBLE.size - header_length)
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
    FileNotFoundError
        ``path`` does not exist.
    """
    with open(path, "rb") as handle:
        file_size = os.fstat(handle.fileno()).st_size
        header, start = _read_header(path, handle, file_size)
        sections = _parse_sections(path, header)
        _check_index_fields(path, header, sections)
        expected_digest = header.pop("sha256")
        digest = hashlib.sha256(canonical(header)) if verify else None
        header["sha256"] = expected_digest
        payload_nbytes = header["payload_nbytes"]
        arrays: dict[str, np.ndarray] = {}
        if mmap:
            if digest is not None:
                buffer = bytearray(min(CHUNK, max(payload_nbytes, 1)))
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


def check_file_items(file: IndexFile) -> None:
    """Check the items of a file: codes within ``n_bits``, ids non-negative and unique.

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
