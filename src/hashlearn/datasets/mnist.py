"""MNIST and Fashion-MNIST, read from their official gzipped IDX files.

Every file is checked against its published size and SHA-256 (see
:data:`hashlearn.datasets.standard.SOURCES`) before it is parsed. Items are ordered official
training set first, then official test set; ``Dataset.test_mask`` marks the latter.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from hashlearn.datasets.dataset import Dataset
from hashlearn.datasets.download import data_home, fetch_files
from hashlearn.datasets.standard import (
    FASHION_MNIST_CLASSES,
    IDX_NAMES,
    MNIST_CLASSES,
    SOURCES,
    STANDARD_SPLIT,
)
from hashlearn.exceptions import FileFormatError

__all__ = [
    "IDX_IMAGES_MAGIC",
    "IDX_LABELS_MAGIC",
    "load_fashion_mnist",
    "load_mnist",
    "parse_idx",
    "read_idx_gz",
]

IDX_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension


def parse_idx(raw: bytes, *, magic: int, where: str) -> np.ndarray:
    """Decode the bytes of an IDX file of unsigned bytes.

    Layout (LeCun et al., http://yann.lecun.com/exdb/mnist/): a big-endian int32 magic number
    ``0x000008NN`` (``08`` = unsigned byte, ``NN`` = number of dimensions), one big-endian int32
    per dimension, then the values in row-major order.

    Parameters
    ----------
    raw : the decompressed file.
    magic : the magic number expected (``IDX_IMAGES_MAGIC`` or ``IDX_LABELS_MAGIC``).
    where : the file's name, for messages.

    Returns
    -------
    np.ndarray
        uint8 array of the dimensions given in the header.

    Raises
    ------
    FileFormatError
        For another magic number, a negative dimension, or a data length that does not match the
        dimensions.
    """
    if len(raw) < 4:
        raise FileFormatError(f"{where}: {len(raw)} bytes is too short for an IDX file")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise FileFormatError(
            f"{where}: IDX magic number 0x{found:08x}, expected 0x{magic:08x}; "
            "not the expected IDX file"
        )
    ndim = magic & 0xFF
    start = 4 + 4 * ndim
    if len(raw) < start:
        raise FileFormatError(f"{where}: the IDX header is cut short ({len(raw)} bytes)")
    dims = tuple(
        int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big", signed=True) for i in range(ndim)
    )
    if min(dims) < 0:
        raise FileFormatError(f"{where}: negative IDX dimension in {dims}")
    expected = int(np.prod(dims, dtype=np.int64))
    if len(raw) - start != expected:
        raise FileFormatError(
            f"{where}: holds {len(raw) - start} data bytes, but its header declares shape {dims} "
            f"({expected} bytes)"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=start).reshape(dims)


def read_idx_gz(path: str | os.PathLike[str], *, magic: int) -> np.ndarray:
    """Read a gzipped IDX file (see :func:`parse_idx`); a damaged gzip raises FileFormatError."""
    try:
        with gzip.open(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise FileFormatError(f"cannot decompress {str(path)!r}: {exc}") from None
    return parse_idx(raw, magic=magic, where=repr(str(path)))


def _read_idx_pair(images_path: Path, labels_path: Path, n_classes: int) -> tuple[np.ndarray, ...]:
    images = read_idx_gz(images_path, magic=IDX_IMAGES_MAGIC)
    labels = read_idx_gz(labels_path, magic=IDX_LABELS_MAGIC)
    if images.shape[1:] != (28, 28):
        raise FileFormatError(
            f"{str(images_path)!r}: images are {images.shape[1]}x{images.shape[2]}, expected 28x28"
        )
    if len(labels) != len(images):
        raise FileFormatError(
            f"{str(labels_path)!r} has {len(labels)} labels for the {len(images)} images of "
            f"{str(images_path)!r}"
        )
    if len(labels) and labels.max() >= n_classes:
        raise FileFormatError(
            f"{str(labels_path)!r}: label {int(labels.max())} is out of range 0..{n_classes - 1}"
        )
    return images, labels


def _load_idx_dataset(
    name: str,
    classes: tuple[str, ...],
    description: str,
    *,
    data_dir: str | os.PathLike[str] | None,
    download: bool,
    verify: bool,
    verbose: bool,
) -> Dataset:
    paths = fetch_files(
        SOURCES[name],
        data_home(name, data_dir),
        dataset=name,
        download=download,
        verify=verify,
        verbose=verbose,
    )
    by_name = dict(zip(IDX_NAMES, paths))
    train_x, train_y = _read_idx_pair(
        by_name["train-images-idx3-ubyte.gz"], by_name["train-labels-idx1-ubyte.gz"], len(classes)
    )
    test_x, test_y = _read_idx_pair(
        by_name["t10k-images-idx3-ubyte.gz"], by_name["t10k-labels-idx1-ubyte.gz"], len(classes)
    )
    return Dataset(
        name=name,
        X=np.concatenate([train_x, test_x]).astype(np.float32) / np.float32(255),
        y=np.concatenate([train_y, test_y]).astype(np.int64),
        description=description,
        default_split=dict(STANDARD_SPLIT),
        classes=classes,
        test_mask=np.repeat(np.array([False, True]), [len(train_y), len(test_y)]),
    )


def load_mnist(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    verify: bool = True,
    verbose: bool = True,
) -> Dataset:
    """MNIST: 60,000 training and 10,000 test handwritten digits, 28x28 grey.

    Parameters
    ----------
    data_dir : folder holding the four IDX files; default ``data_home("mnist")``.
    download : fetch missing files (from the mirror first, then the original site).
    verify : check the SHA-256 of files already on disk.
    verbose : progress bars.

    Returns
    -------
    Dataset
        ``X`` float32 (70000, 28, 28) in [0, 1], ``y`` int64 digits, ``test_mask`` True for the
        last 10,000 items (the official test set), ``classes`` "0".."9".

    Raises
    ------
    DownloadError, FileFormatError
        See :func:`hashlearn.datasets.download.fetch_files` and :func:`read_idx_gz`.
    """
    return _load_idx_dataset(
        "mnist",
        MNIST_CLASSES,
        "MNIST (LeCun et al.): 60,000 train + 10,000 test handwritten digits, 28x28 grey",
        data_dir=data_dir,
        download=download,
        verify=verify,
        verbose=verbose,
    )


def load_fashion_mnist(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    verify: bool = True,
    verbose: bool = True,
) -> Dataset:
    """Fashion-MNIST (Xiao et al., 2017): 60,000 + 10,000 Zalando article images, 28x28 grey.

    Parameters and errors as for :func:`load_mnist`; ``classes`` are the ten article names.
    """
    return _load_idx_dataset(
        "fashion-mnist",
        FASHION_MNIST_CLASSES,
        "Fashion-MNIST (Xiao et al.): 60,000 train + 10,000 test Zalando articles, 28x28 grey",
        data_dir=data_dir,
        download=download,
        verify=verify,
        verbose=verbose,
    )
