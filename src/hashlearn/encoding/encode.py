"""Codes of a folder of image files: one's own collection, made searchable.

:func:`encode_image_files` walks a folder for PNG and JPEG files, decodes each as the search
service decodes an uploaded image (same checks, same conversion to the model's input: grey or
RGB, resized, values in [0, 1]; see :mod:`hashlearn.encoding.images`), encodes them in batches
and gives every file an id: its name when every name is a distinct non-negative integer
(``17.png`` -> 17), else its position in the sorted list.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hashlearn._progress import progress
from hashlearn._validation import check_int
from hashlearn.encoding.budget import DecodeBudget
from hashlearn.encoding.encoder import ImageEncoder
from hashlearn.encoding.errors import ImageMismatchError
from hashlearn.encoding.files import (
    IMAGE_SUFFIXES,
    MAX_DECODE_BYTES,
    image_ids,
    list_image_files,
    read_image_file,
)
from hashlearn.exceptions import InvalidInputError
from hashlearn.hashers import Hasher

__all__ = [
    "EncodedFiles",
    "ImageCodes",
    "assemble_image_codes",
    "encode_file_list",
    "encode_image_files",
    "image_encoding_job",
]


def image_encoding_job(
    hasher: Hasher,
    root: str | os.PathLike[str],
    image_shape: tuple[int, ...] | None,
    recursive: bool,
    resize: bool | None,
) -> tuple[ImageEncoder, Path, list[Path]]:
    """The encoder, the absolute folder and its image files of a folder to encode, checked
    before any file is decoded (in one process or on a cluster).

    Raises
    ------
    InvalidInputError
        The model does not take images, or the folder holds no image files.
    """
    encoder = ImageEncoder(hasher, image_shape, resize=resize)
    if encoder.image_shape is None:
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
    return encoder, folder, files


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


def encode_image_files(
    hasher: Hasher,
    root: str | os.PathLike[str],
    *,
    image_shape: tuple[int, ...] | None = None,
    recursive: bool = True,
    batch_size: int = 256,
    skip_unreadable: bool = False,
    resize: bool | None = None,
    verbose: bool = True,
    max_decode_bytes: int = MAX_DECODE_BYTES,
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
    resize : bool or None
        Resize pictures of another size and convert grey or colour to the model's input; False
        refuses them; None: as the model was fitted (see
        :class:`~hashlearn.encoding.ImageEncoder`).
    verbose : bool, default True
        Progress bar.
    max_decode_bytes : int, default 2 GiB
        Bytes the threads decoding pictures may hold at once, known from each file's header
        before it is decoded (see :class:`~hashlearn.encoding.DecodeBudget`); a picture that
        alone needs more is refused as too large.

    Returns
    -------
    ImageCodes

    Raises
    ------
    InvalidInputError
        No image files, a file that cannot be read (naming it; unless ``skip_unreadable``), a
        picture that does not fit the model (without ``resize``; an
        :class:`~hashlearn.encoding.ImageMismatchError`), a model that does not take images, or
        a bad ``batch_size``.
    """
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    encoder, folder, files = image_encoding_job(hasher, root, image_shape, recursive, resize)
    with progress(total=len(files), desc="encode", unit="img", disable=not verbose) as bar:
        encoded = encode_file_list(
            encoder,
            folder,
            files,
            batch_size=batch_size,
            skip_unreadable=skip_unreadable,
            on_file=bar.update,
            max_decode_bytes=max_decode_bytes,
        )
    return assemble_image_codes([encoded], folder, len(files), int(hasher.n_bits), root)


@dataclass(frozen=True)
class EncodedFiles:
    """Codes of some of a folder's image files (one call of :func:`encode_file_list`).

    Attributes
    ----------
    codes : uint8 (n, code_size), the codes of the files that read, in the given order
    kept : list of str, their paths relative to the folder (``/``-separated)
    skipped : list of (path, reason) of the files that could not be read
    """

    codes: np.ndarray
    kept: list[str]
    skipped: list[tuple[str, str]]


def encode_file_list(
    encoder: ImageEncoder,
    folder: Path,
    files: list[Path],
    *,
    batch_size: int = 256,
    skip_unreadable: bool = False,
    on_file: Callable[[], object] | None = None,
    max_decode_bytes: int = MAX_DECODE_BYTES,
) -> EncodedFiles:
    """Decode and encode ``files`` (under ``folder``) in batches of ``batch_size``, in order.

    The one code path of image files to codes: :func:`encode_image_files` calls it once over a
    whole folder, the workers of :func:`hashlearn.distributed.encode_files` once per shard, so
    both decode (:func:`~hashlearn.encoding.files.read_image_file`) and encode
    (:meth:`ImageEncoder.encode`) every file the same way.

    Parameters
    ----------
    encoder : ImageEncoder
        Takes images (``encoder.image_shape`` is known).
    folder : Path
        The folder the returned paths are relative to (absolute).
    files : list of Path
        Image files under ``folder``.
    batch_size : int
        Images encoded at once.
    skip_unreadable : bool
        List the files that do not read in ``skipped`` instead of raising.
    on_file : callable, optional
        Called once per file read (progress).
    max_decode_bytes : int, default 2 GiB
        Bytes the decoding threads may hold at once (:class:`~hashlearn.encoding.DecodeBudget`).

    Raises
    ------
    InvalidInputError
        A file cannot be read (naming it; unless ``skip_unreadable``), or the model refuses
        a batch.
    """
    shape = encoder.image_shape
    if shape is None:
        raise InvalidInputError("this model takes feature vectors, not images")
    budget = DecodeBudget(max_decode_bytes)  # decodes wait for room; none is refused for waiting
    codes: list[np.ndarray] = [np.zeros((0, encoder.code_size), dtype=np.uint8)]
    kept: list[str] = []
    skipped: list[tuple[str, str]] = []
    batch: list[np.ndarray] = []

    def flush() -> None:
        if batch:
            codes.append(encoder.encode(np.stack(batch)))
            batch.clear()

    def decode(path: Path) -> np.ndarray | Exception:
        """The model's input array of one file, or the reason it cannot be read."""
        try:
            return read_image_file(path, shape, resize=encoder.resize, budget=budget)
        except (InvalidInputError, OSError) as exc:
            return exc

    # Pillow and numpy release the GIL while decoding and resizing: threads overlap the files.
    # map() keeps the files' order, so the result does not depend on the number of workers;
    # one batch of files at a time bounds the decoded arrays held in memory.
    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        decoded = (
            result
            for start in range(0, len(files), batch_size)
            for result in pool.map(decode, files[start : start + batch_size])
        )
        for path, result in zip(files, decoded):
            if on_file is not None:
                on_file()
            name = path.relative_to(folder).as_posix()
            if isinstance(result, Exception):
                if isinstance(result, ImageMismatchError):  # the model's, not the file's fault
                    raise InvalidInputError(f"{name!r} in {os.fspath(folder)!r}: {result}")
                if not skip_unreadable:
                    raise InvalidInputError(
                        f"{name!r} in {os.fspath(folder)!r}: {result}; to skip (and list) the files "
                        "that do not decode, give --skip-unreadable (skip_unreadable=True)"
                    )
                skipped.append((name, str(result)))
                continue
            batch.append(result)
            kept.append(name)
            if len(batch) == batch_size:
                flush()
    flush()
    return EncodedFiles(np.concatenate(codes), kept, skipped)


def assemble_image_codes(
    parts: list[EncodedFiles],
    folder: Path,
    n_files: int,
    n_bits: int,
    root: str | os.PathLike[str] | None = None,
) -> ImageCodes:
    """The :class:`ImageCodes` of a folder from the encoded parts of its file list, in order:
    codes and paths concatenated, ids given to the files that read (:func:`image_ids`).

    Raises
    ------
    InvalidInputError
        No file read.
    """
    kept = [name for part in parts for name in part.kept]
    skipped = [item for part in parts for item in part.skipped]
    root = folder if root is None else root
    if not kept:
        raise InvalidInputError(f"none of the {n_files} image files in {os.fspath(root)!r} reads")
    ids, named = image_ids(kept)
    return ImageCodes(
        codes=np.concatenate([part.codes for part in parts]),
        ids=ids,
        paths=kept,
        root=os.fspath(folder),
        skipped=skipped,
        named=named,
        n_bits=n_bits,
    )
