"""A folder of pictures made ready to serve: its codes and index built once, reused while nothing
changes, and the service's earlier writes kept aside when they no longer apply.

Work folder layout (by default ``FOLDER.hashlearn`` next to the folder)::

    WORK/codes.npz                 codes, ids and paths of the pictures (see
                                   :func:`~hashlearn.encoding.codes_file.write_image_codes`)
    WORK/index.hlindex             the index of the codes (multi-index hashing by default)
    WORK/manifest.json             what they were made from: written last, so a half-built folder
                                   is never reused
    WORK/writes/                   the search service's store of added and deleted items
    WORK/writes-before-TIME/       writes made over an earlier index, kept when it was rebuilt
    WORK/prepare.lock              locked (flock) while one process prepares the folder
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from hashlearn._io import atomic_write, check_input_file
from hashlearn._json import read_json_file
from hashlearn._locking import STORE_LOCK_NAME, FolderLock
from hashlearn.encoding.codes_file import write_image_codes
from hashlearn.encoding.encode import encode_image_files
from hashlearn.encoding.files import list_image_files
from hashlearn.exceptions import FileFormatError, InvalidInputError
from hashlearn.hashers import load_hasher
from hashlearn.index import create_index

__all__ = ["FolderIndex", "PreparedFolder", "default_work_dir", "index_folder", "prepare_folder"]

_MANIFEST_BYTES = 1 << 20  # the settings an index of the folder was built with

PREPARE_LOCK_NAME = "prepare.lock"
"""Held in the work folder while :func:`prepare_folder` builds and moves writes aside."""


@dataclass(frozen=True)
class FolderIndex:
    """The files :func:`index_folder` wrote (or found) and what it did."""

    index: Path
    codes: Path
    reused: bool
    skipped: list[tuple[str, str]]  # (path, reason) of files that did not decode; [] if reused


def index_folder(
    model_path: str | os.PathLike[str],
    folder: str | os.PathLike[str],
    work_dir: str | os.PathLike[str],
    *,
    index_type: str = "mih",
    image_shape: tuple[int, ...] | None = None,
    resize: bool | None = None,
    verbose: bool = True,
) -> FolderIndex:
    """Encode and index every image under ``folder`` with the model at ``model_path``, into
    ``work_dir`` (``codes.npz``, ``index.hlindex`` and a ``manifest.json``).

    The work is reused while the model file and the folder's image files (names, sizes and
    modification times) stay the same. Files that do not decode are skipped and listed; a
    picture that does not fit the model (size, grey or colour) stops the work unless ``resize``
    (see :func:`~hashlearn.encoding.encode.encode_image_files`).

    Raises
    ------
    InvalidInputError
        As :func:`~hashlearn.encoding.encode.encode_image_files`, or ``work_dir`` cannot be
        created.
    """
    check_input_file(model_path)
    work = _work_folder(Path(work_dir))
    digest = hashlib.sha256(Path(model_path).read_bytes())
    for file in list_image_files(folder):
        stat = file.stat()
        digest.update(
            f"{file.relative_to(folder).as_posix()}|{stat.st_size}|{stat.st_mtime_ns};".encode()
        )
    manifest = {
        "inputs_sha256": digest.hexdigest(),
        "index_type": index_type,
        "image_shape": image_shape and list(image_shape),
        "resize": resize,
    }
    index_path, codes_path, manifest_path = (
        work / "index.hlindex",
        work / "codes.npz",
        work / "manifest.json",
    )
    try:
        reusable = (
            read_json_file(manifest_path, max_bytes=_MANIFEST_BYTES, error=FileFormatError)
            == manifest
        )
    except (OSError, FileFormatError):  # none yet, or not one this code wrote: build afresh
        reusable = False
    if reusable and index_path.is_file() and codes_path.is_file():
        return FolderIndex(index_path, codes_path, True, [])
    manifest_path.unlink(missing_ok=True)  # until the new files are complete, nothing is reusable
    hasher = load_hasher(model_path)
    result = encode_image_files(
        hasher,
        folder,
        image_shape=image_shape,
        skip_unreadable=True,
        resize=resize,
        verbose=verbose,
    )
    write_image_codes(result, codes_path)
    index = create_index(index_type, hasher.n_bits)
    index.add_with_ids(result.codes, result.ids)
    index.save(index_path)
    with atomic_write(manifest_path) as handle:  # last: the files it vouches for are complete
        handle.write(json.dumps(manifest).encode())
    return FolderIndex(index_path, codes_path, False, result.skipped)


@dataclass(frozen=True)
class PreparedFolder:
    """A folder of pictures ready to serve (see :func:`prepare_folder`).

    Attributes
    ----------
    index : Path
        The index file (the service's read-only base).
    codes : Path
        The ``.npz`` of codes, ids and paths (the picture of each id).
    reused : bool
        Whether the codes and index were reused rather than built.
    skipped : list of (path, reason)
        Files that did not decode; ``[]`` when reused.
    work_dir : Path
    data_dir : Path
        Where the service keeps its writes.
    kept_writes : Path or None
        Where the writes made over the previous index were moved, when it was rebuilt.
    """

    index: Path
    codes: Path
    reused: bool
    skipped: list[tuple[str, str]]
    work_dir: Path
    data_dir: Path
    kept_writes: Path | None = None


def default_work_dir(folder: str | os.PathLike[str]) -> Path:
    """``FOLDER.hashlearn``, next to the folder."""
    return Path(f"{os.path.normpath(folder)}.hashlearn")


def prepare_folder(
    model_path: str | os.PathLike[str],
    folder: str | os.PathLike[str],
    work_dir: str | os.PathLike[str] | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    index_type: str = "mih",
    image_shape: tuple[int, ...] | None = None,
    resize: bool | None = None,
    verbose: bool = True,
) -> PreparedFolder:
    """Build (or reuse) the codes and index of a folder of pictures and choose where the search
    service keeps its writes.

    Parameters
    ----------
    model_path : path
        Model file written by ``Hasher.save``.
    folder : path
        The pictures (PNG and JPEG, sub-folders too).
    work_dir : path or None
        Where the work is kept (see the module docstring); default :func:`default_work_dir`.
    data_dir : path or None
        Folder of the service's writes. Default ``WORK/writes``: when the index is rebuilt, the
        writes made over the previous one no longer apply and are moved to
        ``WORK/writes-before-YYYYmmdd-HHMMSS``. A given folder is used as it is.
    index_type, image_shape, resize, verbose
        As :func:`index_folder`.

    Returns
    -------
    PreparedFolder

    Raises
    ------
    InvalidInputError
        As :func:`index_folder`, or the work folder cannot be created.
    FolderInUseError
        Another process is preparing the same work folder, or a service still uses the writes
        that a rebuild would move aside (each holds its folder's lock).
    OSError
        The earlier writes cannot be moved aside.
    """
    work = _work_folder(default_work_dir(folder) if work_dir is None else Path(work_dir))
    locks = [FolderLock(work / PREPARE_LOCK_NAME, "another process preparing this folder")]
    try:
        writes = work / "writes" if data_dir is None else None
        if writes is not None and writes.is_dir():
            # before anything is rebuilt: the writes of a running service are neither moved
            # from under it nor left beside an index they no longer apply to
            locks.append(FolderLock(writes / STORE_LOCK_NAME, "a hashlearn service"))
        built = index_folder(
            model_path,
            folder,
            work,
            index_type=index_type,
            image_shape=image_shape,
            resize=resize,
            verbose=verbose,
        )
        kept = None
        if writes is not None and not built.reused and writes.exists():
            kept = Path(f"{writes}-before-{time.strftime('%Y%m%d-%H%M%S')}")
            os.rename(writes, kept)
    finally:
        for lock in locks:
            lock.release()
    return PreparedFolder(
        index=built.index,
        codes=built.codes,
        reused=built.reused,
        skipped=built.skipped,
        work_dir=work,
        data_dir=Path(data_dir) if writes is None else writes,
        kept_writes=kept,
    )


def _work_folder(work: Path) -> Path:
    """``work``, created with its parents if missing (InvalidInputError when it cannot be)."""
    try:
        work.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(
            f"cannot create the work folder {os.fspath(work)!r}: {exc}"
        ) from None
    return work
