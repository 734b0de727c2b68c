"""``load_dataset(name)``: a registered dataset, a ``.npz`` of arrays or an image folder."""

from __future__ import annotations

import os
from typing import Any

from hashlearn._validation import check_int
from hashlearn.datasets.arrays import load_arrays
from hashlearn.datasets.dataset import Dataset
from hashlearn.datasets.folder import load_image_folder
from hashlearn.datasets.registry import DATASETS
from hashlearn.exceptions import InvalidInputError, UnknownNameError

__all__ = ["ARRAYS_PREFIX", "FOLDER_PREFIX", "load_dataset", "parse_image_size"]

ARRAYS_PREFIX = "arrays:"
FOLDER_PREFIX = "folder:"


def load_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    image_size: str | tuple[int, int] | None = None,
    download: bool = True,
    verify: bool = True,
    verbose: bool = True,
) -> Dataset:
    """Load a registered dataset by name, or feature arrays by path.

    Parameters
    ----------
    name : a name of :func:`~hashlearn.datasets.list_datasets` (``"mnist5k"``, ``"digits"``,
        ``"mnist"``, ``"fashion-mnist"``, ``"cifar10"``), or ``"arrays:<path>"`` for a ``.npz``
        file with arrays ``X`` and ``y`` (see :func:`hashlearn.datasets.load_arrays`), or
        ``"folder:<path>"`` for an image folder: one sub-folder per class, or a flat folder of
        unlabelled pictures (see :func:`hashlearn.datasets.load_image_folder`).
    data_dir : folder holding the files of a downloaded dataset (missing ones are downloaded
        into it); default ``$HASHLEARN_DATA/<name>`` when that variable is set, else
        ``~/.cache/hashlearn/<name>``. Use one folder per dataset: MNIST and Fashion-MNIST files
        have the same names. Ignored by the embedded datasets and ``arrays:``.
    image_size : ``(height, width)`` or ``"HxW"``: with ``"folder:<path>"``, resize every image to
        it (a folder of photos of several sizes needs it); refused for other datasets.
    download : fetch missing files; when False a missing file raises DownloadError.
    verify : check the SHA-256 of files already on disk (downloads are always checked).
    verbose : progress bars.

    Returns
    -------
    Dataset

    Raises
    ------
    UnknownNameError
        For an unregistered name.
    DownloadError, FileFormatError
        For missing, undownloadable or corrupted files.
    """
    if isinstance(name, str) and name.startswith(ARRAYS_PREFIX):
        return load_arrays(name[len(ARRAYS_PREFIX) :])
    size = parse_image_size(image_size)
    if isinstance(name, str) and name.startswith(FOLDER_PREFIX):
        return load_image_folder(name[len(FOLDER_PREFIX) :], image_size=size, verbose=verbose)
    if size is not None:
        raise InvalidInputError(
            f"image_size resizes the pictures of an image folder ({FOLDER_PREFIX}<path>), not "
            f"those of {name!r}"
        )
    if name not in DATASETS:
        raise UnknownNameError(
            f"unknown dataset {name!r}; available: {', '.join(DATASETS.names())} "
            f"(or {ARRAYS_PREFIX}<file.npz>, {FOLDER_PREFIX}<image folder>)"
        )
    loader = DATASETS.get(name)
    return loader(data_dir=data_dir, download=download, verify=verify, verbose=verbose)


def parse_image_size(value: str | tuple[int, int] | list[int] | None) -> tuple[int, int] | None:
    """``"64x48"`` or ``(64, 48)`` -> ``(64, 48)`` (height, width); None stays None.

    Raises
    ------
    InvalidInputError
        Not two positive integers (at most 8192).
    """
    if value is None:
        return None
    parts: Any = value.lower().split("x") if isinstance(value, str) else value
    try:
        height, width = (int(part) for part in parts)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"image size must be HxW (e.g. 64x64) or (height, width), got {value!r}"
        ) from None
    return (
        check_int(height, "image height", minimum=1, maximum=8192),
        check_int(width, "image width", minimum=1, maximum=8192),
    )
