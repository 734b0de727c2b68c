"""The standard benchmarks of the hashing literature, read from their official files.

MNIST and Fashion-MNIST come as four gzipped IDX files, CIFAR-10 as one tar.gz of pickled
batches. Every file is checked against its published size and SHA-256 (see ``SOURCES``) before it
is parsed, and the CIFAR-10 pickles are read by an unpickler that can build nothing but numpy
arrays, so a tampered archive cannot run code.

Items are ordered official training set first, then official test set; ``Dataset.test_mask``
marks the latter.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import tarfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from hashlearn.datasets.base import Dataset
from hashlearn.datasets.download import RemoteFile, data_home, fetch_files
from hashlearn.exceptions import FileFormatError

MNIST_URLS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",  # mirror first: the original often refuses
    "http://yann.lecun.com/exdb/mnist/",
)
FASHION_MNIST_URLS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"

IDX_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension
_IDX_NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def _idx_files(bases: tuple[str, ...], table: dict[str, tuple[int, str]]) -> tuple[RemoteFile, ...]:
    return tuple(
        RemoteFile(name, table[name][0], table[name][1], tuple(base + name for base in bases))
        for name in _IDX_NAMES
    )


# Sizes and SHA-256 as listed by tensorflow/datasets (url_checksums/mnist.txt, fashion_mnist.txt;
# cifar10.csv for the python archive). The SHA-256 values match torchvision's prototype
# datasets/_builtin/mnist.py (_CHECKSUMS) and keras' datasets/cifar10.py (file_hash); the sizes
# match the byte counts TensorFlow's MNIST reader prints and Fashion-MNIST's README table, and
# CIFAR-10's 170,498,071 bytes the count printed by TF-slim's download_and_convert_cifar10.
SOURCES: dict[str, tuple[RemoteFile, ...]] = {
    "mnist": _idx_files(
        MNIST_URLS,
        {
            "train-images-idx3-ubyte.gz": (
                9912422,
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            ),
            "train-labels-idx1-ubyte.gz": (
                28881,
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            ),
            "t10k-images-idx3-ubyte.gz": (
                1648877,
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            ),
            "t10k-labels-idx1-ubyte.gz": (
                4542,
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            ),
        },
    ),
    "fashion-mnist": _idx_files(
        FASHION_MNIST_URLS,
        {
            "train-images-idx3-ubyte.gz": (
                26421880,
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            ),
            "train-labels-idx1-ubyte.gz": (
                29515,
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            ),
            "t10k-images-idx3-ubyte.gz": (
                4422102,
                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            ),
            "t10k-labels-idx1-ubyte.gz": (
                5148,
                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            ),
        },
    ),
    "cifar10": (
        RemoteFile(
            "cifar-10-python.tar.gz",
            170498071,
            "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
            (CIFAR10_URL,),
        ),
    ),
}

MNIST_CLASSES = tuple(str(digit) for digit in range(10))
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"
_MAX_MEMBER_BYTES = 64 << 20  # an official batch is ~31 MB

# ``default_split`` of the three: 1,000 stratified queries, 5,000 training images (+500 for
# validation) drawn from the database of every other image.
STANDARD_SPLIT = {"n_query": 1000, "n_train": 5000, "n_validation": 500}


# -- IDX (MNIST, Fashion-MNIST) ------------------------------------------------------------------


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
    by_name = dict(zip(_IDX_NAMES, paths))
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


# -- CIFAR-10 ------------------------------------------------------------------------------------


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
