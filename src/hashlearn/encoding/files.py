"""Image files on disk: finding them in a folder, naming them by id, reading one as a model input."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hashlearn.encoding.budget import DecodeBudget
from hashlearn.encoding.errors import TooLargeError
from hashlearn.encoding.images import as_model_array, image_header, read_image
from hashlearn.exceptions import InvalidInputError

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_DECODE_BYTES",
    "MAX_FILE_BYTES",
    "MAX_FILE_PIXELS",
    "image_ids",
    "list_image_files",
    "read_image_file",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
"""File name endings read as images (any case)."""

MAX_FILE_BYTES = 64 * 1024 * 1024
"""Largest image file read from a folder; a longer one is refused before it is read."""

MAX_FILE_PIXELS = 64_000_000
"""Largest ``width * height`` of an image file read from a folder, checked before decoding."""

MAX_DECODE_BYTES = 2 * 1024**3
"""Default bytes that the threads decoding a folder may hold at once (:class:`DecodeBudget`):
the largest file admitted, :data:`MAX_FILE_PIXELS` RGBA pixels, costs about 1.5 GB alone."""


def list_image_files(root: str | os.PathLike[str], *, recursive: bool = True) -> list[Path]:
    """PNG and JPEG files under ``root`` (by suffix, any case), sorted by relative path.

    Raises
    ------
    InvalidInputError
        ``root`` is not a folder.
    """
    folder = Path(root)
    if not folder.is_dir():
        raise InvalidInputError(
            f"{os.fspath(root)}: "
            + ("is a file, not a folder" if folder.exists() else "no such folder")
        )
    found = folder.rglob("*") if recursive else folder.iterdir()
    files = [p for p in found if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def read_image_file(
    path: Path,
    image_shape: tuple[int, int, int],
    *,
    resize: bool = False,
    budget: DecodeBudget | None = None,
) -> np.ndarray:
    """One image file as a model input ``float32 (h, w, c)``, decoded as the search service
    decodes an upload (see :mod:`hashlearn.encoding.images`), under :data:`MAX_FILE_BYTES` and
    :data:`MAX_FILE_PIXELS`; an image of another size or colour than ``image_shape`` is refused
    unless ``resize``. With ``budget``, the decode holds its cost (known from the header) of
    the budget while it runs, waiting for room as the budget says.

    Raises
    ------
    TooLargeError
        The file or its pixel count is over the limit, or its decode alone over ``budget``.
    InvalidInputError
        The file is not a PNG or JPEG image, does not decode, or does not fit ``image_shape``
        (without ``resize``).
    OSError
        The file cannot be read.
    """
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:  # refused before it is read
        raise TooLargeError(
            f"the image file is {size} bytes long; the limit is {MAX_FILE_BYTES} bytes"
        )
    data = path.read_bytes()
    if budget is None:
        return _model_array(data, image_shape, resize)
    header = image_header(data, max_bytes=MAX_FILE_BYTES, max_pixels=MAX_FILE_PIXELS)
    cost = header.conversion_bytes(image_shape[2], (image_shape[0], image_shape[1]))
    picture = f"{path.name!r} ({header.width}x{header.height} {header.mode})"
    with budget.hold(cost, picture):
        return _model_array(data, image_shape, resize)


def _model_array(data: bytes, image_shape: tuple[int, int, int], resize: bool) -> np.ndarray:
    image = read_image(data, max_bytes=MAX_FILE_BYTES, max_pixels=MAX_FILE_PIXELS).image
    return as_model_array(image, image_shape, resize=resize)


def image_ids(paths: list[str]) -> tuple[np.ndarray, bool]:
    """Ids of image files: their names when all are distinct non-negative integers
    (``17.png`` -> 17), else their positions in ``paths``.

    Returns
    -------
    ids : numpy.ndarray of int64, shape (n,)
    named : bool
        Whether the ids are the file names.
    """
    stems = [Path(p).stem for p in paths]
    if all(s.isascii() and s.isdigit() for s in stems):
        ids = [int(s) for s in stems]
        if len(set(ids)) == len(ids) and max(ids) < 2**63:
            return np.array(ids, dtype=np.int64), True
    return np.arange(len(paths), dtype=np.int64), False
