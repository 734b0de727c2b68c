"""An index split into shard files by id, and the manifest that lists them.

``hashlearn index --shards S --out NAME.json`` writes::

    NAME.json                   the manifest (below)
    NAME.shard-0-of-S.hlindex   the items whose id % S == 0, an index file of any type
    ...
    NAME.shard-(S-1)-of-S.hlindex

The manifest is JSON::

    {"format": "hashlearn-shards", "version": 1, "index_type": "mih", "n_bits": 64,
     "n_shards": S, "routing": "id % n_shards", "ntotal": N,
     "shards": [{"path": "NAME.shard-0-of-S.hlindex", "ntotal": n0, "sha256": "..."}, ...],
     "sha256": "..."}

``shards[i].path`` is relative to the manifest's folder; ``shards[i].sha256`` is the digest of
that file, and ``sha256`` the digest of the manifest's other fields (``json.dumps`` with sorted
keys, no spaces), so a manifest edited by hand or a shard file replaced is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hashlearn._io import atomic_write
from hashlearn._json import read_json_file
from hashlearn._validation import check_int
from hashlearn.codes import check_codes
from hashlearn.exceptions import FileFormatError, InvalidInputError
from hashlearn.index import create_index

__all__ = [
    "FORMAT",
    "ShardManifest",
    "file_sha256",
    "is_manifest",
    "read_manifest",
    "shard_of",
    "write_sharded_index",
]

FORMAT = "hashlearn-shards"
"""The ``format`` field of a manifest."""

MAX_MANIFEST_BYTES = 1 << 26
"""Longest manifest read (a manifest names its shards: kilobytes)."""


@dataclass(frozen=True)
class ShardManifest:
    """A read (and checked) manifest.

    Attributes
    ----------
    path : Path
        The manifest file.
    index_type : str
    n_bits : int
    params : dict
        The index type's parameters, as given to :func:`~hashlearn.index.create_index`.
    shards : list of Path
        The shard files, absolute; shard ``i`` holds the ids ``id % n_shards == i``.
    sha256 : list of str
        The digest of each shard file.
    ntotal : int
        Items over all shards, when written.
    """

    path: Path
    index_type: str
    n_bits: int
    params: dict[str, Any]
    shards: list[Path]
    sha256: list[str]
    ntotal: int

    @property
    def n_shards(self) -> int:
        return len(self.shards)


def shard_of(ids: np.ndarray, n_shards: int) -> np.ndarray:
    """The shard of each id, ``int64 (n,)``: ``id % n_shards``."""
    return np.asarray(ids, dtype=np.int64) % n_shards


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while piece := handle.read(1 << 20):
            digest.update(piece)
    return digest.hexdigest()


def _digest(document: dict[str, Any]) -> str:
    body = {key: value for key, value in document.items() if key != "sha256"}
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def write_sharded_index(
    path: str | os.PathLike[str],
    codes: np.ndarray,
    ids: np.ndarray,
    n_bits: int,
    n_shards: int,
    index_type: str = "linear",
    **params: Any,
) -> ShardManifest:
    """Split items by id into ``n_shards`` indexes of ``index_type``, save them beside the
    manifest ``path`` and write the manifest (last, so a manifest lists only complete files).

    Parameters
    ----------
    path : path
        The manifest, ``NAME.json``.
    codes : uint8 (n, code_size)
    ids : int64 (n,)
        Unique, non-negative.
    n_bits : int
    n_shards : int
        At least 1.
    index_type, **params
        As :func:`~hashlearn.index.create_index`.

    Raises
    ------
    InvalidInputError
        ``path`` does not end in ``.json``, bad codes, ids or ``n_shards``.
    """
    target = Path(path)
    if target.suffix != ".json":
        raise InvalidInputError(f"a shard manifest is a .json file, not {os.fspath(path)!r}")
    n_shards = check_int(n_shards, "n_shards", minimum=1)
    codes = check_codes(codes, n_bits)
    ids = np.asarray(ids)
    if ids.ndim != 1 or len(ids) != len(codes) or ids.dtype.kind not in "iu":
        raise InvalidInputError(f"ids must be {len(codes)} integers, got {ids.dtype} {ids.shape}")
    if len(ids) and ids.min() < 0:
        raise InvalidInputError("ids must be non-negative")
    owner = shard_of(ids, n_shards)
    entries = []
    for shard in range(n_shards):
        index = create_index(index_type, n_bits, **params)
        mine = owner == shard
        index.add_with_ids(codes[mine], ids[mine])
        name = f"{target.stem}.shard-{shard}-of-{n_shards}.hlindex"
        index.save(target.parent / name)
        entries.append(
            {"path": name, "ntotal": index.ntotal, "sha256": file_sha256(target.parent / name)}
        )
    document: dict[str, Any] = {
        "format": FORMAT,
        "version": 1,
        "index_type": index_type,
        "n_bits": int(n_bits),
        "params": params,
        "n_shards": n_shards,
        "routing": "id % n_shards",
        "ntotal": len(ids),
        "shards": entries,
    }
    document["sha256"] = _digest(document)
    with atomic_write(target) as handle:
        handle.write(json.dumps(document, indent=1).encode())
    return read_manifest(target)


def is_manifest(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a shard manifest (a ``.json`` file) rather than an index file."""
    return Path(path).suffix == ".json"


def read_manifest(path: str | os.PathLike[str]) -> ShardManifest:
    """Read and check a manifest (its own checksum; the shard files are checked when loaded).

    Raises
    ------
    InvalidInputError
        The file is missing.
    FileFormatError
        It is not a manifest of this format, or its checksum does not match.
    """
    target = Path(path)
    if not target.is_file():
        raise InvalidInputError(f"shard manifest not found: {os.fspath(path)!r}")
    try:
        document = read_json_file(target, max_bytes=MAX_MANIFEST_BYTES, error=FileFormatError)
    except OSError as exc:
        raise FileFormatError(f"{os.fspath(path)!r} cannot be read: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise FileFormatError(f"{os.fspath(path)!r} is not a {FORMAT} manifest")
    if document.get("version") != 1:
        raise FileFormatError(
            f"{os.fspath(path)!r}: manifest version {document.get('version')!r} is not known"
        )
    if document.get("sha256") != _digest(document):
        raise FileFormatError(f"{os.fspath(path)!r} is corrupted: its checksum does not match")
    try:
        shards = document["shards"]
        if document["routing"] != "id % n_shards" or len(shards) != document["n_shards"]:
            raise ValueError("routing or shard count")
        return ShardManifest(
            path=target,
            index_type=str(document["index_type"]),
            n_bits=int(document["n_bits"]),
            params=dict(document["params"]),
            shards=[(target.parent / entry["path"]).resolve() for entry in shards],
            sha256=[str(entry["sha256"]) for entry in shards],
            ntotal=int(document["ntotal"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise FileFormatError(f"{os.fspath(path)!r}: malformed manifest ({exc})") from None
