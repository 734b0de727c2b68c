"""The model file of a hasher: one safetensors file, checked when read, never pickled.

The learned arrays are the file's tensors; the metadata (all strings) holds

- ``format`` (``"hashlearn.hasher"``) and ``format_version`` (``"1"``; ``"2"`` when the file also
  holds a feature extractor, see :mod:`hashlearn.hashers.pipeline`),
- ``method`` (the registry name), ``params`` (constructor arguments, JSON) and ``state`` (learned
  scalars, JSON), ``image_shape`` (JSON, models fitted on image arrays only), ``resize_images``
  (``"true"``, when set) and ``features`` (JSON, the feature extractor of a version 2 file),
- ``hashlearn_version``,
- ``sha256``, the digest of the tensors (:func:`arrays_digest`), and ``metadata_sha256``, the
  digest of all the other metadata (:func:`metadata_digest`), ``sha256`` included: the two
  cover every byte that has a meaning. Older files (hashlearn 0.1.0's among them) have no
  ``metadata_sha256``; they are read with their tensors checked alone
  (:func:`metadata_verified` tells them apart).

:func:`read_model_file` checks all of this and returns the metadata and arrays: the header is
read by the bounded JSON reader (:mod:`hashlearn._json`), a key the format does not have is
refused (so that a renamed or damaged key is not silently ignored), and both digests must
match. :func:`hashlearn.hashers.load_hasher` then builds the hasher and checks the values.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from hashlearn._io import atomic_write, describe_kind, file_kind
from hashlearn._json import parse_json
from hashlearn.exceptions import FileFormatError

__all__ = [
    "MODEL_FORMAT",
    "MODEL_FORMAT_VERSION",
    "arrays_digest",
    "metadata_digest",
    "metadata_verified",
    "read_model_file",
    "write_model_file",
]

MODEL_FORMAT = "hashlearn.hasher"
# The newest version this hashlearn reads. Version 2 files also hold a feature extractor
# (``FeatureHasher``); files of a hasher alone are still written as version 1.
MODEL_FORMAT_VERSION = 2
METADATA_DIGEST_KEY = "metadata_sha256"
# Every metadata key a model file may have (the features key: hashlearn.hashers.pipeline).
MODEL_KEYS = frozenset(
    {
        "format",
        "format_version",
        "method",
        "params",
        "state",
        "image_shape",
        "resize_images",
        "features",
        "hashlearn_version",
        "sha256",
        METADATA_DIGEST_KEY,
    }
)
MAX_HEADER_BYTES = 100_000_000  # the most safetensors itself reads


def write_model_file(
    path: str | os.PathLike[str], metadata: dict[str, str], tensors: dict[str, np.ndarray]
) -> None:
    """Write ``tensors`` with ``metadata`` to ``path`` atomically (temporary file + rename).

    ``sha256`` and ``metadata_sha256`` are set here, over what is written (any values of theirs
    in ``metadata`` are replaced).
    """
    from safetensors.numpy import save as save_safetensors

    tensors = {key: np.ascontiguousarray(array) for key, array in tensors.items()}
    signed = {k: v for k, v in metadata.items() if k not in ("sha256", METADATA_DIGEST_KEY)}
    signed["sha256"] = arrays_digest(tensors)
    signed[METADATA_DIGEST_KEY] = metadata_digest(signed)
    payload = save_safetensors(tensors, metadata=signed)
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
        The file is not a hashlearn model (naming what it is), is truncated or corrupted (its
        header is not bounded, valid JSON; a metadata key is unknown; a digest does not match),
        or is of a newer format version.
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
    if header_len > len(data) - 8 or header_len > MAX_HEADER_BYTES:
        raise FileFormatError(
            f"{path!r} is not a hashlearn model file, or it is truncated "
            f"(header claims {header_len} bytes, file has {len(data) - 8} after the length)"
        )
    header = parse_json(
        data[8 : 8 + header_len],
        f"{path!r} is not a hashlearn model file, or it is corrupted: its header",
        max_bytes=MAX_HEADER_BYTES,
        error=FileFormatError,
    )
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(metadata, dict) or metadata.get("format") != MODEL_FORMAT:
        raise FileFormatError(
            f"{path!r} is a safetensors file but not a hashlearn model (no hashlearn metadata)"
        )
    unknown = sorted(set(metadata) - MODEL_KEYS)
    if unknown:
        raise FileFormatError(
            f"{path!r} is corrupted: its metadata has unknown key(s) "
            f"{', '.join(map(repr, unknown))} (a model file has {', '.join(sorted(MODEL_KEYS))})"
        )
    not_text = sorted(key for key, value in metadata.items() if not isinstance(value, str))
    if not_text:
        raise FileFormatError(
            f"{path!r} is corrupted: its metadata entries must be strings, "
            f"{', '.join(map(repr, not_text))} are not"
        )
    text = metadata.get("format_version", "")
    if not (text.isascii() and text.isdigit() and len(text) < 10) or int(text) < 1:
        raise FileFormatError(f"{path!r} has an unreadable format version {text[:20]!r}")
    version = int(text)
    if version > MODEL_FORMAT_VERSION:
        raise FileFormatError(
            f"{path!r} was written in model format version {version}, newer than this hashlearn "
            f"reads ({MODEL_FORMAT_VERSION}); upgrade hashlearn"
        )
    if METADATA_DIGEST_KEY in metadata and metadata[METADATA_DIGEST_KEY] != metadata_digest(
        metadata
    ):
        raise FileFormatError(
            f"{path!r} is corrupted: its metadata do not match their SHA-256 checksum"
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


def metadata_digest(metadata: dict[str, str]) -> str:
    """SHA-256 of the metadata but ``metadata_sha256`` (hex): of their JSON with sorted keys,
    no spaces and ASCII escapes, in UTF-8."""
    covered = {key: value for key, value in metadata.items() if key != METADATA_DIGEST_KEY}
    text = json.dumps(covered, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def metadata_verified(metadata: dict[str, str]) -> bool:
    """Whether the metadata of a model file read by :func:`read_model_file` were checked against
    their digest (False for older files without one, whose tensors alone are)."""
    return METADATA_DIGEST_KEY in metadata
