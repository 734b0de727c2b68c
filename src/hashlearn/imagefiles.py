"""Codes of a folder of image files: one's own collection, made searchable.

:func:`encode_image_files` walks a folder for PNG and JPEG files, decodes each as the search
service decodes an uploaded image (same checks, same conversion to the model's input: grey or
RGB, resized, values in [0, 1]; see :mod:`hashlearn.serve.images`), encodes them in batches and
gives every file an id: its name when every name is a distinct non-negative integer
(``17.png`` -> 17), else its position in the sorted list. :func:`write_image_codes` saves
codes, ids and paths in one ``.npz`` that ``hashlearn index`` (codes and ids) and
``hashlearn serve --images`` (the picture of each id) read back.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from hashlearn._validation import check_int
from hashlearn.exceptions import InvalidInputError
from hashlearn.hashers.base import Hasher

__all__ = [
    "IMAGE_SUFFIXES",
    "FolderIndex",
    "ImageCodes",
    "encode_image_files",
    "index_folder",
    "list_image_files",
    "read_image_names",
    "write_image_codes",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
"""File name endings read as images (any case)."""

MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_FILE_PIXELS = 64_000_000


@dataclass(frozen=True)
class ImageCodes:
    """Codes of the readable image files of ``root``.

    Attributes
    ----------
    codes : uint8 (n, code_size)
    ids : int64 (n,)
    paths : list of str, each relative to ``root`` (``/``-separated)
    root : str, the folder, absolute
    skipped : list of (path, reason) of the files that could not be read (with
        ``skip_unreadable``)
    named : bool, whether the ids are the file names (else positions in ``paths``)
    n_bits : int, the code length
    """

    codes: np.ndarray
    ids: np.ndarray
    paths: list[str]
    root: str
    skipped: list[tuple[str, str]]
    named: bool
    n_bits: int


def list_image_files(root: str | os.PathLike[str], *, recursive: bool = True) -> list[Path]:
    """PNG and JPEG files under ``root`` (by suffix, any case), sorted by relative path.

    Raises
    ------
    InvalidInputError
        ``root`` is not a folder.
    """
    folder = Path(root)
    if not folder.is_dir():
        raise InvalidInputError(f"images folder not found: {os.fspath(root)!r}")
    found = folder.rglob("*") if recursive else folder.iterdir()
    files = [p for p in found if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def _ids_of(paths: list[str]) -> tuple[np.ndarray, bool]:
    """Integer file names when all are distinct non-negative integers (and True), else
    positions (and False)."""
    stems = [Path(p).stem for p in paths]
    if all(s.isascii() and s.isdigit() for s in stems):
        ids = [int(s) for s in stems]
        if len(set(ids)) == len(ids) and max(ids) < 2**63:
            return np.array(ids, dtype=np.int64), True
    return np.arange(len(paths), dtype=np.int64), False


def encode_image_files(
    hasher: Hasher,
    root: str | os.PathLike[str],
    *,
    image_shape: tuple[int, ...] | None = None,
    recursive: bool = True,
    batch_size: int = 256,
    skip_unreadable: bool = False,
    verbose: bool = True,
) -> ImageCodes:
    """Encode every PNG and JPEG file under ``root`` with ``hasher``.

    Parameters
    ----------
    hasher : Hasher
        A fitted model that takes images: a deep hasher, one fitted on image arrays, a
        :class:`~hashlearn.hashers.FeatureHasher`, or one fitted on flattened pixels given
        ``image_shape``.
    root : path
        The folder.
    image_shape : tuple, optional
        ``(h, w)`` or ``(h, w, c)`` of a model fitted on flattened pixel vectors.
    recursive : bool, default True
        Include sub-folders.
    batch_size : int, default 256
        Images encoded at once.
    skip_unreadable : bool, default False
        Skip (and list in ``skipped``) files that are not images or do not decode, instead of
        stopping at the first.
    verbose : bool, default True
        Progress bar.

    Returns
    -------
    ImageCodes

    Raises
    ------
    InvalidInputError
        No image files, a file that cannot be read (naming it; unless ``skip_unreadable``), a
        model that does not take images, or a bad ``batch_size``.
    """
    from hashlearn.serve.errors import TooLargeError
    from hashlearn.serve.images import QueryEncoder, _as_model_array, read_image

    batch_size = check_int(batch_size, "batch_size", minimum=1)
    encoder = QueryEncoder(hasher, image_shape)
    if not encoder.takes_images:
        raise InvalidInputError(
            f"this {hasher.name!r} model takes feature vectors, not images; give the image "
            "shape (--image-shape HxW) of a model fitted on flattened pixels"
        )
    folder = Path(root).resolve()
    files = list_image_files(folder, recursive=recursive)
    if not files:
        raise InvalidInputError(
            f"no {', '.join(IMAGE_SUFFIXES)} files in {os.fspath(root)!r}"
            + ("" if recursive else " (sub-folders not searched)")
        )
    shape = encoder.image_shape
    assert shape is not None  # takes_images
    codes: list[np.ndarray] = []
    kept: list[str] = []
    skipped: list[tuple[str, str]] = []
    batch: list[np.ndarray] = []

    def flush() -> None:
        if batch:
            codes.append(encoder._encode(np.stack(batch)))
            batch.clear()

    def decode(path: Path) -> np.ndarray | Exception:
        """The model's input array of one file, or the reason it cannot be read."""
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:  # refused before it is read
                raise TooLargeError(
                    f"the image file is {size} bytes long; the limit is {MAX_FILE_BYTES} bytes"
                )
            data = path.read_bytes()
            image = read_image(data, max_bytes=MAX_FILE_BYTES, max_pixels=MAX_FILE_PIXELS).image
            return _as_model_array(image, shape)
        except (InvalidInputError, TooLargeError, OSError) as exc:
            return exc

    # Pillow and numpy release the GIL while decoding and resizing: threads overlap the files.
    # map() keeps the files' order, so the result does not depend on the number of workers;
    # one batch of files at a time bounds the decoded arrays held in memory.
    workers = min(8, os.cpu_count() or 1)
    with (
        ThreadPoolExecutor(max_workers=workers) as pool,
        tqdm(total=len(files), desc="encode", unit="img", disable=not verbose) as bar,
    ):
        decoded = (
            result
            for start in range(0, len(files), batch_size)
            for result in pool.map(decode, files[start : start + batch_size])
        )
        for path, result in zip(files, decoded):
            bar.update()
            name = path.relative_to(folder).as_posix()
            if isinstance(result, Exception):
                if not skip_unreadable:
                    raise InvalidInputError(f"{name!r} in {os.fspath(root)!r}: {result}")
                skipped.append((name, str(result)))
                continue
            batch.append(result)
            kept.append(name)
            if len(batch) == batch_size:
                flush()
    flush()
    if not kept:
        raise InvalidInputError(
            f"none of the {len(files)} image files in {os.fspath(root)!r} reads"
        )
    ids, named = _ids_of(kept)
    return ImageCodes(
        codes=np.concatenate(codes),
        ids=ids,
        paths=kept,
        root=os.fspath(folder),
        skipped=skipped,
        named=named,
        n_bits=int(hasher.n_bits),
    )


def write_image_codes(result: ImageCodes, path: str | os.PathLike[str]) -> None:
    """Save ``codes``, ``n_bits``, ``ids``, ``paths`` and ``root`` in one ``.npz`` (atomically, no
    pickle)."""
    from hashlearn._io import atomic_write

    with atomic_write(path) as handle:
        np.savez(
            handle,
            codes=result.codes,
            n_bits=np.array(result.n_bits),
            ids=result.ids,
            paths=np.array(result.paths, dtype=str),
            root=np.array(result.root, dtype=str),
        )


def read_image_names(path: str | os.PathLike[str]) -> tuple[Path, dict[int, str]]:
    """The folder (absolute) and id -> path relative to it, of an ``.npz`` written by
    :func:`write_image_codes`.

    Raises
    ------
    InvalidInputError
        The file lacks ``ids``, ``paths`` or ``root``, they disagree in length, or a path leads
        outside ``root``.
    """
    from hashlearn._io import read_arrays

    arrays: dict[str, Any] = read_arrays(path, ("ids", "paths", "root"))
    missing = [name for name in ("ids", "paths", "root") if name not in arrays]
    if missing:
        raise InvalidInputError(
            f"{os.fspath(path)!r} is not a file of `hashlearn encode --images`: it has no "
            f"{', '.join(missing)}"
        )
    ids, paths = np.asarray(arrays["ids"]), np.asarray(arrays["paths"])
    if ids.ndim != 1 or paths.shape != ids.shape or ids.dtype.kind not in "iu":
        raise InvalidInputError(
            f"{os.fspath(path)!r}: ids {ids.shape} and paths {paths.shape} must be two 1-D "
            "arrays of one length (integer ids)"
        )
    root = Path(str(arrays["root"])).resolve()
    out: dict[int, str] = {}
    for item_id, name in zip(ids.tolist(), paths.tolist()):
        if not (root / str(name)).resolve().is_relative_to(root):
            raise InvalidInputError(f"{os.fspath(path)!r}: path {name!r} leads outside {root}")
        out[int(item_id)] = str(name)
    return root, out


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
    verbose: bool = True,
) -> FolderIndex:
    """Encode and index every image under ``folder`` with the model at ``model_path``, into
    ``work_dir`` (``codes.npz``, ``index.hlindex`` and a ``manifest.json``).

    The work is reused while the model file and the folder's image files (names, sizes and
    modification times) stay the same. Files that do not decode are skipped and listed.

    Raises
    ------
    InvalidInputError
        As :func:`encode_image_files`, or ``work_dir`` cannot be created.
    """
    import hashlib
    import json

    from hashlearn._io import atomic_write
    from hashlearn.hashers import load_hasher
    from hashlearn.index import create_index

    if not os.path.isfile(model_path):
        raise InvalidInputError(f"model file not found: {os.fspath(model_path)!r}")
    work = Path(work_dir)
    try:
        work.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(
            f"cannot create the work folder {os.fspath(work)!r}: {exc}"
        ) from None
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
    }
    index_path, codes_path, manifest_path = (
        work / "index.hlindex",
        work / "codes.npz",
        work / "manifest.json",
    )
    try:
        reusable = json.loads(manifest_path.read_text()) == manifest
    except (OSError, ValueError):
        reusable = False
    if reusable and index_path.is_file() and codes_path.is_file():
        return FolderIndex(index_path, codes_path, True, [])
    manifest_path.unlink(missing_ok=True)  # until the new files are complete, nothing is reusable
    hasher = load_hasher(model_path)
    result = encode_image_files(
        hasher, folder, image_shape=image_shape, skip_unreadable=True, verbose=verbose
    )
    write_image_codes(result, codes_path)
    index = create_index(index_type, hasher.n_bits)
    index.add_with_ids(result.codes, result.ids)
    index.save(index_path)
    with atomic_write(manifest_path) as handle:  # last: the files it vouches for are complete
        handle.write(json.dumps(manifest).encode())
    return FolderIndex(index_path, codes_path, False, result.skipped)
