"""Downloads of the standard datasets, against a local HTTP server (no real network)."""

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

import hashlearn.datasets.download as download_module
from _dataset_files import FileServer, install, mnist_arrays, mnist_files, remote
from hashlearn.datasets import data_home, load_dataset, standard
from hashlearn.datasets.download import download_file, verify_file
from hashlearn.exceptions import DownloadError, FileFormatError, InvalidInputError


@pytest.fixture(autouse=True)
def _no_retry_delay(monkeypatch):
    monkeypatch.setattr(download_module, "RETRY_DELAY_S", 0.0)


@pytest.fixture()
def mnist_server(monkeypatch):
    """The four tiny MNIST files on a local server; the checksum table points at them, with a
    dead mirror listed first."""
    arrays = mnist_arrays()
    files = mnist_files(arrays)
    with FileServer({f"/mnist/{name}": raw for name, raw in files.items()}) as server:
        install(
            monkeypatch, "mnist", files, base_urls=(server.url + "gone/", server.url + "mnist/")
        )
        yield server, arrays, files


def test_official_table_lists_sizes_and_sha256():
    # values from tensorflow/datasets url_checksums, cross-checked with torchvision and keras
    table = {f.name: f for files in standard.SOURCES.values() for f in files}
    mnist = {f.name: (f.size, f.sha256[:12]) for f in standard.SOURCES["mnist"]}
    assert mnist == {
        "train-images-idx3-ubyte.gz": (9912422, "440fcabf73cc"),
        "train-labels-idx1-ubyte.gz": (28881, "3552534a0a55"),
        "t10k-images-idx3-ubyte.gz": (1648877, "8d422c7b0a1c"),
        "t10k-labels-idx1-ubyte.gz": (4542, "f7ae60f92e00"),
    }
    assert standard.SOURCES["mnist"][0].urls == (
        "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz",
        "http://yann.lecun.com/exdb/mnist/train-images-idx3-ubyte.gz",
    )
    fashion = {f.name: f.size for f in standard.SOURCES["fashion-mnist"]}
    assert fashion["train-images-idx3-ubyte.gz"] == 26421880
    assert table["cifar-10-python.tar.gz"].size == 170498071
    assert table["cifar-10-python.tar.gz"].sha256.startswith("6d958be07457")
    for files in standard.SOURCES.values():
        for f in files:
            assert len(f.sha256) == 64 and int(f.sha256, 16) >= 0


def test_download_then_parse_mnist_from_the_mirror_that_works(tmp_path, mnist_server):
    server, arrays, files = mnist_server
    data = load_dataset("mnist", data_dir=tmp_path, verbose=False)
    assert data.X.shape == (30, 28, 28) and data.X.dtype == np.float32
    expected = np.concatenate([arrays["train_x"], arrays["test_x"]]).astype(np.float32) / 255
    np.testing.assert_array_equal(data.X, expected)
    np.testing.assert_array_equal(data.y, np.r_[arrays["train_y"], arrays["test_y"]])
    assert data.test_mask.tolist() == [False] * 20 + [True] * 10
    assert data.classes == tuple("0123456789")
    assert sorted(os.listdir(tmp_path)) == sorted(files)  # no .part or temp file left
    for name, raw in files.items():
        assert (tmp_path / name).read_bytes() == raw
    # each file: a 404 from the dead mirror, then the working one
    assert [path for path, _ in server.requests] == [
        f"/{where}/{name}" for name in files for where in ("gone", "mnist")
    ]
    # a second load reads the verified files and does not touch the network
    n_requests = len(server.requests)
    again = load_dataset("mnist", data_dir=tmp_path, verbose=False)
    np.testing.assert_array_equal(again.X, data.X)
    assert len(server.requests) == n_requests


def test_cut_connection_is_resumed_with_a_range_request(tmp_path):
    raw = os.urandom(50_000)
    with FileServer({"/f.bin": raw}) as server:
        server.cut_after["/f.bin"] = 20_000
        server.cuts = 1
        path = download_file(remote("f.bin", raw, (server.url + "f.bin",)), tmp_path, verbose=False)
        assert server.requests == [("/f.bin", None), ("/f.bin", "bytes=20000-")]
    assert path == tmp_path / "f.bin" and path.read_bytes() == raw
    assert not (tmp_path / "f.bin.part").exists()


def test_next_call_resumes_a_download_that_failed(tmp_path):
    raw = os.urandom(40_000)
    with FileServer({"/f.bin": raw}) as server:
        server.cut_after["/f.bin"] = 15_000
        server.cuts = 1
        server.fail_after_cut = True  # after the cut, the server is down (503)
        spec = remote("f.bin", raw, (server.url + "f.bin",))
        with pytest.raises(DownloadError) as error:
            download_file(spec, tmp_path, retries=1, verbose=False)
        message = str(error.value)
        assert server.url + "f.bin" in message and "HTTP 503" in message
        assert f"place it in {str(tmp_path)!r}" in message
        assert (tmp_path / "f.bin.part").read_bytes() == raw[:15_000]
        assert not (tmp_path / "f.bin").exists()

        server.fail_after_cut = False
        download_file(spec, tmp_path, verbose=False)
        assert server.requests[-1] == ("/f.bin", "bytes=15000-")
    assert (tmp_path / "f.bin").read_bytes() == raw


def test_server_that_ignores_range_sends_the_whole_file_again(tmp_path):
    raw = os.urandom(30_000)
    (tmp_path / "f.bin.part").write_bytes(b"x" * 10_000)  # a stale, wrong partial file
    with FileServer({"/f.bin": raw}) as server:
        server.ignore_range = True
        download_file(remote("f.bin", raw, (server.url + "f.bin",)), tmp_path, verbose=False)
        assert server.requests == [("/f.bin", "bytes=10000-")]
    assert (tmp_path / "f.bin").read_bytes() == raw


def test_download_with_the_wrong_checksum_is_rejected_and_removed(tmp_path):
    raw = os.urandom(20_000)
    (tmp_path / "f.bin.part").write_bytes(b"x" * 5_000)  # resumed onto a wrong prefix
    with FileServer({"/f.bin": raw}) as server:
        spec = remote("f.bin", raw, (server.url + "f.bin",))
        with pytest.raises(
            FileFormatError, match=rf"SHA-256 is [0-9a-f]{{64}}, expected {spec.sha256}"
        ):
            download_file(spec, tmp_path, verbose=False)
    assert os.listdir(tmp_path) == []


def test_unreachable_server_raises_download_error_naming_the_url(tmp_path):
    with FileServer({}) as server:
        url = server.url + "f.bin"
    raw = b"abc"  # the server is shut down: connections are refused
    with pytest.raises(
        DownloadError, match=r"could not download f\.bin \(http://127\.0\.0\.1:\d+/f\.bin: "
    ) as error:
        download_file(remote("f.bin", raw, (url,)), tmp_path, retries=1, verbose=False)
    assert "Download it by hand from " + url in str(error.value)
    assert isinstance(error.value, OSError)
    with pytest.raises(InvalidInputError, match="only http"):
        download_file(remote("f.bin", raw, ("file:///etc/passwd",)), tmp_path)


def test_cached_file_with_the_wrong_checksum(tmp_path, monkeypatch):
    arrays = mnist_arrays()
    files = mnist_files(arrays)
    install(monkeypatch, "mnist", files)
    for name, raw in files.items():
        (tmp_path / name).write_bytes(raw)
    wrong = bytearray(files["train-labels-idx1-ubyte.gz"])
    wrong[-10] ^= 0xFF
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(bytes(wrong))
    expected = hashlib.sha256(files["train-labels-idx1-ubyte.gz"]).hexdigest()
    got = hashlib.sha256(bytes(wrong)).hexdigest()
    with pytest.raises(FileFormatError) as error:
        load_dataset("mnist", data_dir=tmp_path, download=False, verbose=False)
    message = str(error.value)
    assert (
        f"has SHA-256 {got} but the official train-labels-idx1-ubyte.gz has {expected}" in message
    )
    assert "delete it" in message
    (tmp_path / "x").write_bytes(b"abc")
    with pytest.raises(FileFormatError, match="has 3 bytes but the official x has 4"):
        verify_file(tmp_path / "x", remote("x", b"abcd"))


def test_verify_false_skips_the_checksum_of_cached_files(tmp_path, monkeypatch):
    install(monkeypatch, "mnist", mnist_files(mnist_arrays()))
    other = mnist_arrays(seed=1)  # same shapes, other pixels
    for name, raw in mnist_files(other).items():
        (tmp_path / name).write_bytes(raw)
    with pytest.raises(FileFormatError, match="SHA-256"):
        load_dataset("mnist", data_dir=tmp_path, download=False, verbose=False)
    data = load_dataset("mnist", data_dir=tmp_path, download=False, verify=False, verbose=False)
    np.testing.assert_array_equal(data.X[:20], other["train_x"].astype(np.float32) / 255)


def test_download_false_lists_the_missing_files_and_the_folder(tmp_path, monkeypatch):
    files = mnist_files(mnist_arrays())
    install(monkeypatch, "mnist", files)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(files["train-images-idx3-ubyte.gz"])
    with pytest.raises(DownloadError) as error:
        load_dataset("mnist", data_dir=tmp_path, download=False)
    message = str(error.value)
    assert f"3 of its 4 files are not in {str(tmp_path)!r}" in message
    for name in (
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ):
        assert name in message
    assert "train-images" not in message


def test_cache_folder_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("HASHLEARN_DATA", str(tmp_path / "store"))
    assert data_home("mnist") == tmp_path / "store" / "mnist"
    assert data_home("mnist", tmp_path / "mine") == tmp_path / "mine"
    monkeypatch.delenv("HASHLEARN_DATA")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert data_home("cifar10") == Path(tmp_path) / ".cache" / "hashlearn" / "cifar10"
    # load_dataset looks there when no data_dir is given
    monkeypatch.setenv("HASHLEARN_DATA", str(tmp_path / "store"))
    arrays = mnist_arrays()
    install(monkeypatch, "fashion-mnist", mnist_files(arrays), tmp_path / "store" / "fashion-mnist")
    data = load_dataset("fashion-mnist", download=False, verbose=False)
    assert data.classes[0] == "T-shirt/top" and data.classes[9] == "Ankle boot"
    assert len(data) == 30
