"""Codes of a folder of image files: one's own collection, made searchable.

:func:`encode_image_files` walks a folder for PNG and JPEG files, decodes each as the search
service decodes an uploaded image (same checks, same conversion to the model's input: grey or
RGB, resized, values in [0, 1]; see :mod:`hashlearn.encoding.images`), encodes them in batches
and gives every file an id: its name when every name is a distinct non-negative integer
(``17.png`` -> 17), else its position in the sorted list.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from hashlearn._validation import check_int
from hashlearn.encoding.encoder import ImageEncoder
from hashlearn.encoding.files import IMAGE_SUFFIXES, image_ids, list_image_files, read_image_file
from hashlearn.exceptions import InvalidInputError
from hashlearn.hashers import Hasher

__all__ = ["ImageCodes", "encode_image_files"]


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
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    encoder = ImageEncoder(hasher, image_shape)
    shape = encoder.image_shape
    if shape is None:
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
    codes: list[np.ndarray] = []
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
            return read_image_file(path, shape)
        except (InvalidInputError, OSError) as exc:
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
    ids, named = image_ids(kept)
    return ImageCodes(
        codes=np.concatenate(codes),
        ids=ids,
        paths=kept,
        root=os.fspath(folder),
        skipped=skipped,
        named=named,
        n_bits=int(hasher.n_bits),
    )
