"""The model file of a hasher: one safetensors file, checked when read, never pickled.

The learned arrays are the file's tensors; the metadata (all strings) holds

- ``format`` (``"hashlearn.hasher"``) and ``format_version`` (``"1"``; ``"2"`` when the file also
  holds a feature extractor, see :mod:`hashlearn.hashers.pipeline`),
- ``method`` (the registry name), ``params`` (constructor arguments, JSON) and ``state`` (learned
  scalars, JSON), ``image_shape`` (JSON, models fitted on image arrays only),
- ``hashlearn_version`` and ``sha256``, the digest of the tensors (:func:`arrays_digest`).

:func:`read_model_file` checks all of this and returns the metadata and arrays;
:func:`hashlearn.hashers.load_hasher` builds the hasher from them.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from hashlearn._io import atomic_write, describe_kind, file_kind
from hashlearn.exceptions import FileFormatError

__all__ = [
    "MODEL_FORMAT",
    "MODEL_FORMAT_VERSION",
    "arrays_digest",
    "read_model_file",
    "write_model_file",
]

MODEL_FORMAT = "hashlearn.hasher"
# The newest version this hashlearn reads. Version 2 files also hold a feature extractor
# (``FeatureHasher``); files of a hasher alone are still written as version 1.
MODEL_FORMAT_VERSION = 2


def write_model_file(
    path: str | os.PathLike[str], metadata: dict[str, str], tensors: dict[str, np.ndarray]
) -> None:
    """Write ``tensors`` with ``metadata`` to ``path`` atomically (temporary file + rename)."""
    from safetensors.numpy import save as save_safetensors

    payload = save_safetensors(tensors, metadata=metadata)
    with atomic_write(path) as handle:
        handle.write(payload)


def read_model_file(path: str | os.PathLike[str]) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """Read and check a model file; return its metadata and arrays.

    The file's first bytes are looked at before anything is parsed, so that an index, an array
    file or a picture given as a model is named as what it is.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    FileFormatError
        The file is not a hashlearn model (naming what it is), is truncated or corrupted, or is
        of a newer format version.
    """
    from safetensors.numpy import load as load_safetensors

    path = os.fspath(path)
    kind = file_kind(path)
    if kind not in ("safetensors", "empty", "unknown"):  # those two are told apart below
        raise FileFormatError(
            f"{path}: this is {describe_kind(kind)}, not a hashlearn model: give the "
            ".safetensors file `hashlearn fit` wrote (`hashlearn info FILE` tells what a file "
            "holds)"
        )
    with open(path, "rb") as handle:
        data = handle.read()
    if len(data) < 8:
        raise FileFormatError(f"{path!r} is not a hashlearn model: only {len(data)} bytes long")
    header_len = int.from_bytes(data[:8], "little")
    if header_len > len(data) - 8 or header_len > 100_000_000:
        raise FileFormatError(
            f"{path!r} is not a hashlearn model file, or it is truncated "
            f"(header claims {header_len} bytes, file has {len(data) - 8} after the length)"
        )
    try:
        header = json.loads(data[8 : 8 + header_len])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise FileFormatError(
            f"{path!r} is not a hashlearn model file: its header is not JSON"
        ) from None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(metadata, dict) or metadata.get("format") != MODEL_FORMAT:
        raise FileFormatError(
            f"{path!r} is a safetensors file but not a hashlearn model (no hashlearn metadata)"
        )
    try:
        version = int(metadata.get("format_version", ""))
    except ValueError:
        raise FileFormatError(f"{path!r} has an unreadable format version") from None
    if version > MODEL_FORMAT_VERSION:
        raise FileFormatError(
            f"{path!r} was written in model format version {version}, newer than this hashlearn "
            f"reads ({MODEL_FORMAT_VERSION}); upgrade hashlearn"
        )
    try:
        arrays = load_safetensors(data)
    except Exception as exc:  # safetensors raises its own error type for truncated/corrupt data
        raise FileFormatError(f"{path!r} is truncated or corrupted: {exc}") from None
    if metadata.get("sha256") != arrays_digest(arrays):
        raise FileFormatError(
            f"{path!r} is corrupted: its arrays do not match their SHA-256 checksum"
        )
    return metadata, arrays


def arrays_digest(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over every array's name, dtype, shape and bytes, in name order (hex)."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()
