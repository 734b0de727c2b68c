"""CIFAR-10, read straight from its official tar.gz of pickled batches.

The archive is checked against its published size and SHA-256 (see
:data:`hashlearn.datasets.standard.SOURCES`) before it is opened, and the batches are read by an
unpickler that can build nothing but numpy arrays, so a tampered archive cannot run code. Items
are ordered official training batches first, then the test batch; ``Dataset.test_mask`` marks
the latter.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import zlib
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from hashlearn.datasets.dataset import Dataset
from hashlearn.datasets.download import data_home, fetch_files
from hashlearn.datasets.standard import CIFAR10_CLASSES, SOURCES, STANDARD_SPLIT
from hashlearn.exceptions import FileFormatError

__all__ = ["load_cifar10", "read_cifar10_archive", "unpickle_batch"]

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"
_MAX_MEMBER_BYTES = 64 << 20  # an official batch is ~31 MB


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """What ``_codecs.encode`` does in a protocol-2 pickle written by Python 3 for a ``bytes``
    object, limited to that use."""
    if not isinstance(text, str) or encoding.lower().replace("-", "") != "latin1":
        raise FileFormatError(f"pickle asks to encode with {encoding!r}; only latin1 is allowed")
    return text.encode("latin1")


def _allowed_globals() -> dict[tuple[str, str], Any]:
    # the function numpy's pickles name to rebuild an array (under numpy.core in pickles written
    # by numpy 1.x and Python 2, such as the official batches; under numpy._core by numpy 2)
    reconstruct = np.ndarray.__reduce__(np.zeros(0))[0]
    return {
        ("numpy.core.multiarray", "_reconstruct"): reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles a CIFAR batch: numpy arrays, dtypes, lists, dicts, numbers and strings only."""

    _allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise FileFormatError(
                f"the pickle refers to {module}.{name}, which a CIFAR batch never needs; "
                "refusing to load it"
            ) from None


def unpickle_batch(raw: bytes, *, where: str) -> dict[bytes, Any]:
    """Decode one pickled CIFAR batch with the restricted unpickler (``encoding="bytes"``).

    Raises
    ------
    FileFormatError
        For a pickle that names anything but numpy's array reconstruction, is damaged, or is
        not a dict.
    """
    try:
        batch = _BatchUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except FileFormatError as exc:
        raise FileFormatError(f"{where}: {exc}") from None
    except Exception as exc:  # a damaged pickle can fail in many ways; none may escape raw
        raise FileFormatError(
            f"{where}: not a readable pickle ({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(batch, dict):
        raise FileFormatError(f"{where}: a CIFAR batch is a dict, got {type(batch).__name__}")
    return batch


def _batch_arrays(batch: dict[bytes, Any], where: str) -> tuple[np.ndarray, np.ndarray]:
    """``b"data"`` (uint8 (m, 3072): 1024 red, 1024 green, 1024 blue values per row, each a 32x32
    row-major plane) as (m, 32, 32, 3) images, and ``b"labels"`` as int64."""
    data, labels = batch.get(b"data"), batch.get(b"labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise FileFormatError(f"{where}: b'data' must be a 2-D uint8 array")
    if data.shape[1] != 3072:
        raise FileFormatError(f"{where}: b'data' rows have {data.shape[1]} values, expected 3072")
    if not isinstance(labels, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in labels
    ):
        raise FileFormatError(f"{where}: b'labels' must be a list of ints")
    if len(labels) != len(data):
        raise FileFormatError(f"{where}: {len(labels)} labels for {len(data)} images")
    y = np.array(labels, dtype=np.int64)
    if len(y) and (y.min() < 0 or y.max() >= len(CIFAR10_CLASSES)):
        raise FileFormatError(f"{where}: labels must be in 0..9, got {y.min()}..{y.max()}")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), y


def _check_member_name(name: str, where: str) -> None:
    parts = PurePosixPath(name).parts
    if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
        raise FileFormatError(f"{where}: refusing an archive member with an unsafe path {name!r}")


def read_cifar10_archive(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read the five training batches and the test batch straight from the CIFAR-10 tar.gz.

    Returns
    -------
    images : uint8 (n, 32, 32, 3), training batches 1-5 then the test batch.
    labels : int64 (n,).
    test_mask : bool (n,), True for the test batch.

    Raises
    ------
    FileFormatError
        For a damaged archive, a member with an absolute or ``..`` path, a missing or oversized
        batch, or a batch that is not a CIFAR-10 batch (see :func:`unpickle_batch`).
    """
    wanted = {f"{CIFAR10_FOLDER}/{b}": b for b in (*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH)}
    where = repr(str(path))
    batches: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:  # one pass in archive order: no seeking back in the gzip
                _check_member_name(member.name, where)
                if member.name not in wanted:
                    continue
                label = f"{where} member {member.name!r}"
                if not member.isfile():
                    raise FileFormatError(f"{label} is not a regular file")
                if member.size > _MAX_MEMBER_BYTES:
                    raise FileFormatError(f"{label} is {member.size} bytes; too large for a batch")
                handle = archive.extractfile(member)
                raw = handle.read() if handle is not None else b""
                batches[wanted[member.name]] = _batch_arrays(
                    unpickle_batch(raw, where=label), label
                )
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise FileFormatError(f"cannot read the archive {where}: {exc}") from None
    missing = [name for name in wanted if wanted[name] not in batches]
    if missing:
        raise FileFormatError(f"{where} lacks {', '.join(missing)}")
    order = (*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH)
    images = np.concatenate([batches[b][0] for b in order])
    labels = np.concatenate([batches[b][1] for b in order])
    test_mask = np.zeros(len(labels), dtype=bool)
    test_mask[len(labels) - len(batches[CIFAR10_TEST_BATCH][1]) :] = True
    return images, labels, test_mask


def load_cifar10(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    verify: bool = True,
    verbose: bool = True,
) -> Dataset:
    """CIFAR-10 (Krizhevsky, 2009): 50,000 training and 10,000 test colour images, 32x32.

    Parameters
    ----------
    data_dir : folder holding ``cifar-10-python.tar.gz``; default ``data_home("cifar10")``.
    download : fetch the archive when missing.
    verify : check the SHA-256 of an archive already on disk.
    verbose : progress bar.

    Returns
    -------
    Dataset
        ``X`` float32 (60000, 32, 32, 3) in [0, 1], ``y`` int64, ``test_mask`` True for the
        10,000 images of ``test_batch``, ``classes`` airplane ... truck.

    Raises
    ------
    DownloadError, FileFormatError
        See :func:`hashlearn.datasets.download.fetch_files` and :func:`read_cifar10_archive`.
    """
    (path,) = fetch_files(
        SOURCES["cifar10"],
        data_home("cifar10", data_dir),
        dataset="cifar10",
        download=download,
        verify=verify,
        verbose=verbose,
    )
    images, labels, test_mask = read_cifar10_archive(path)
    return Dataset(
        name="cifar10",
        X=images.astype(np.float32) / np.float32(255),
        y=labels,
        description="CIFAR-10 (Krizhevsky): 50,000 train + 10,000 test colour images, 32x32",
        default_split=dict(STANDARD_SPLIT),
        classes=CIFAR10_CLASSES,
        test_mask=test_mask,
    )
