"""Parsing the official MNIST / Fashion-MNIST IDX files and the CIFAR-10 archive of pickles."""

import gzip
import os
import pickle

import numpy as np
import pytest

from _dataset_files import (
    cifar_archive,
    cifar_arrays,
    cifar_batch,
    gz,
    idx_bytes,
    install,
    mnist_arrays,
    mnist_files,
    tar_gz,
)
from hashlearn.datasets import load_dataset
from hashlearn.datasets.cifar10 import read_cifar10_archive, unpickle_batch
from hashlearn.datasets.mnist import IDX_IMAGES_MAGIC, parse_idx
from hashlearn.datasets.standard import CIFAR10_CLASSES
from hashlearn.exceptions import FileFormatError

CIFAR = "cifar-10-python.tar.gz"


def _load(name, directory):
    return load_dataset(name, data_dir=directory, download=False, verbose=False)


# -- IDX ----------------------------------------------------------------------------------------


def test_idx_header_and_layout():
    # magic 0x00000803, then dims 2, 3, 4 as big-endian int32, then 24 row-major bytes
    raw = bytes.fromhex("00000803 00000002 00000003 00000004") + bytes(range(24))
    array = parse_idx(raw, magic=IDX_IMAGES_MAGIC, where="x")
    assert array.dtype == np.uint8 and array.shape == (2, 3, 4)
    assert array[1, 2, 3] == 23 and array[0, 1, 0] == 4
    with pytest.raises(
        FileFormatError,
        match=r"x: holds 23 data bytes, but its header declares shape \(2, 3, 4\) \(24 bytes\)",
    ):
        parse_idx(raw[:-1], magic=IDX_IMAGES_MAGIC, where="x")
    with pytest.raises(FileFormatError, match="magic number 0x00000801, expected 0x00000803"):
        parse_idx(bytes.fromhex("00000801 00000001") + b"\x05", magic=IDX_IMAGES_MAGIC, where="x")
    with pytest.raises(FileFormatError, match="too short"):
        parse_idx(b"\x00\x00", magic=IDX_IMAGES_MAGIC, where="x")
    with pytest.raises(FileFormatError, match="header is cut short"):
        parse_idx(bytes.fromhex("00000803 00000002"), magic=IDX_IMAGES_MAGIC, where="x")


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_idx_dataset_from_data_dir(tmp_path, monkeypatch, name):
    arrays = mnist_arrays(n_train=20, n_test=10)
    install(monkeypatch, name, mnist_files(arrays), tmp_path)
    data = _load(name, tmp_path)
    assert data.name == name and data.X.shape == (30, 28, 28) and data.X.dtype == np.float32
    assert data.y.dtype == np.int64 and data.y[:12].tolist() == [*range(10), 0, 1]
    assert data.y[20:].tolist() == [0, 3, 6, 9, 2, 5, 8, 1, 4, 7]
    # pixel (r, c) of image i is byte 16 + i*784 + r*28 + c of the file, scaled by 1/255
    assert data.X[21, 5, 7] == np.float32(arrays["test_x"][1, 5, 7]) / np.float32(255)
    assert data.X.min() >= 0 and data.X.max() <= 1
    assert data.test_mask.dtype == bool and data.test_mask.sum() == 10 and data.test_mask[20:].all()
    assert data.default_split == {"n_query": 1000, "n_train": 5000, "n_validation": 500}
    assert len(data.classes) == 10


def test_truncated_gz_names_the_file(tmp_path, monkeypatch):
    files = mnist_files(mnist_arrays())
    files["t10k-images-idx3-ubyte.gz"] = files["t10k-images-idx3-ubyte.gz"][:-300]
    install(monkeypatch, "mnist", files, tmp_path)
    with pytest.raises(FileFormatError, match=r"cannot decompress .*t10k-images-idx3-ubyte\.gz"):
        _load("mnist", tmp_path)


def test_not_gzip_at_all(tmp_path, monkeypatch):
    files = mnist_files(mnist_arrays())
    files["train-labels-idx1-ubyte.gz"] = idx_bytes(np.zeros(20, np.uint8))  # not compressed
    install(monkeypatch, "mnist", files, tmp_path)
    with pytest.raises(FileFormatError, match=r"train-labels-idx1-ubyte\.gz.*Not a gzipped file"):
        _load("mnist", tmp_path)


def test_swapped_files_fail_on_the_magic_number(tmp_path, monkeypatch):
    files = mnist_files(mnist_arrays())
    files["train-images-idx3-ubyte.gz"], files["train-labels-idx1-ubyte.gz"] = (
        files["train-labels-idx1-ubyte.gz"],
        files["train-images-idx3-ubyte.gz"],
    )
    install(monkeypatch, "mnist", files, tmp_path)
    with pytest.raises(
        FileFormatError,
        match=r"train-images-idx3-ubyte\.gz': IDX magic number 0x00000801, expected 0x00000803",
    ):
        _load("mnist", tmp_path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"train_y": np.arange(19, dtype=np.uint8) % 10}, "has 19 labels for the 20 images"),
        ({"test_y": np.full(10, 10, np.uint8)}, "label 10 is out of range 0..9"),
        ({"test_x": np.zeros((10, 28, 27), np.uint8)}, "images are 28x27, expected 28x28"),
    ],
)
def test_inconsistent_idx_files(tmp_path, monkeypatch, change, message):
    arrays = {**mnist_arrays(), **change}
    install(monkeypatch, "mnist", mnist_files(arrays), tmp_path)
    with pytest.raises(FileFormatError, match=message):
        _load("mnist", tmp_path)


def test_idx_gz_in_many_members_is_read_whole(tmp_path, monkeypatch):
    arrays = mnist_arrays()
    files = mnist_files(arrays)
    raw = idx_bytes(arrays["train_x"])
    files["train-images-idx3-ubyte.gz"] = gz(raw[:1000]) + gz(raw[1000:])  # concatenated gzip
    install(monkeypatch, "mnist", files, tmp_path)
    assert gzip.decompress(files["train-images-idx3-ubyte.gz"]) == raw
    data = _load("mnist", tmp_path)
    np.testing.assert_array_equal(data.X[:20], arrays["train_x"] / np.float32(255))


# -- CIFAR-10 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("python2", [False, True], ids=["py3-protocol2", "py2-style"])
def test_cifar10_from_the_archive(tmp_path, monkeypatch, python2):
    batches = cifar_arrays(per_batch=4)
    install(monkeypatch, "cifar10", {CIFAR: cifar_archive(batches, python2=python2)}, tmp_path)
    data = _load("cifar10", tmp_path)
    assert data.X.shape == (24, 32, 32, 3) and data.X.dtype == np.float32
    assert data.classes == CIFAR10_CLASSES and data.classes[0] == "airplane"
    assert data.classes[-1] == "truck"
    assert data.y.tolist() == [label for _, _, labels in batches for label in labels]
    assert data.test_mask.tolist() == [False] * 20 + [True] * 4
    # row layout: 1024 red, then 1024 green, then 1024 blue values, each plane 32x32 row-major
    _, test_data, _ = batches[5]
    for channel in range(3):
        expected = test_data[2, channel * 1024 + 7 * 32 + 30] / np.float32(255)
        assert data.X[22, 7, 30, channel] == expected
    first = batches[0][1][0]
    np.testing.assert_array_equal(
        data.X[0] * 255, first.reshape(3, 32, 32).transpose(1, 2, 0).astype(np.float32)
    )


def test_cifar_members_may_come_in_any_order(tmp_path, monkeypatch):
    batches = cifar_arrays(per_batch=2)
    archive = cifar_archive(batches[::-1])
    install(monkeypatch, "cifar10", {CIFAR: archive}, tmp_path)
    images, _, test_mask = read_cifar10_archive(tmp_path / CIFAR)
    np.testing.assert_array_equal(
        images[10:], batches[5][1].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    )
    assert test_mask.sum() == 2 and test_mask[-2:].all()


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_never_run(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    assert pickle.loads(pickle.dumps(_Exploit(marker), protocol=2)) == 0  # it would run...
    assert marker.exists()
    marker.unlink()

    batches = cifar_arrays(per_batch=2)
    evil = pickle.dumps({b"data": _Exploit(marker), b"labels": [0, 1]}, protocol=2)
    archive = cifar_archive(batches[1:], extra={"cifar-10-batches-py/data_batch_1": evil})
    install(monkeypatch, "cifar10", {CIFAR: archive}, tmp_path / "data")
    with pytest.raises(
        FileFormatError,
        match=r"member 'cifar-10-batches-py/data_batch_1'.*refers to posix\.system.*refusing",
    ):
        _load("cifar10", tmp_path / "data")
    assert not marker.exists()  # ...but here it did not


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (pickle.dumps(eval, protocol=2), r"refers to __builtin__\.eval"),
        (pickle.dumps([1, 2], protocol=2), "a CIFAR batch is a dict, got list"),
        (b"\x80\x02}q\x00(X", "not a readable pickle"),
        (b"garbage", "not a readable pickle"),
        # _codecs.encode is allowed only for what Python 3 writes for bytes at protocol 2
        (
            b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x06\x00\x00\x00base64\x86R.",
            "only latin1",
        ),
    ],
)
def test_unpickler_allows_only_what_a_batch_needs(payload, message):
    with pytest.raises(FileFormatError, match=message):
        unpickle_batch(payload, where="batch")


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ({b"labels": [0]}, "b'data' must be a 2-D uint8 array"),
        ({b"data": np.zeros((1, 3072), np.float32), b"labels": [0]}, "2-D uint8"),
        ({b"data": np.zeros((1, 3000), np.uint8), b"labels": [0]}, "3000 values, expected 3072"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "1 labels for 2 images"),
        ({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]}, r"labels must be in 0\.\.9"),
        ({b"data": np.zeros((1, 3072), np.uint8), b"labels": ["a"]}, "list of ints"),
    ],
)
def test_batches_with_wrong_content(tmp_path, monkeypatch, batch, message):
    batches = cifar_arrays(per_batch=1)
    bad = {"cifar-10-batches-py/test_batch": pickle.dumps(batch, protocol=2)}
    install(monkeypatch, "cifar10", {CIFAR: cifar_archive(batches[:5], extra=bad)}, tmp_path)
    with pytest.raises(FileFormatError, match=message):
        _load("cifar10", tmp_path)


def test_unsafe_or_missing_members(tmp_path, monkeypatch):
    batches = cifar_arrays(per_batch=1)
    batch = cifar_batch(batches[0][1], batches[0][2], "x")
    for name in ("../evil", "/etc/evil", "cifar-10-batches-py/../../evil"):
        archive = cifar_archive(batches, extra={name: batch})
        install(monkeypatch, "cifar10", {CIFAR: archive}, tmp_path)
        with pytest.raises(FileFormatError, match="unsafe path"):
            _load("cifar10", tmp_path)
    install(monkeypatch, "cifar10", {CIFAR: cifar_archive(batches[:4])}, tmp_path)
    with pytest.raises(FileFormatError, match="lacks cifar-10-batches-py/data_batch_5"):
        _load("cifar10", tmp_path)
    install(monkeypatch, "cifar10", {CIFAR: cifar_archive(batches)[:-200]}, tmp_path)
    with pytest.raises(FileFormatError, match="cannot read the archive"):
        _load("cifar10", tmp_path)
    install(monkeypatch, "cifar10", {CIFAR: tar_gz({"readme.txt": b"hello"})}, tmp_path)
    with pytest.raises(FileFormatError, match="lacks"):
        _load("cifar10", tmp_path)
