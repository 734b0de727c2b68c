"""Tiny files in the exact official formats of MNIST (IDX gz) and CIFAR-10 (tar.gz of pickled
batches), a local HTTP server to download them from, and a way to point the checksum table at
them. Shared by test_downloads.py and test_standard_datasets.py."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import pickle
import struct
import tarfile
import threading
from typing import ClassVar

import numpy as np

from hashlearn.datasets import standard
from hashlearn.datasets.download import RemoteFile

IDX_NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """Uncompressed IDX: big-endian magic 0x0000 08 <ndim>, big-endian int32 dims, uint8 data."""
    array = np.asarray(array, dtype=np.uint8)
    magic = 0x0800 | array.ndim if magic is None else magic
    return struct.pack(f">I{array.ndim}i", magic, *array.shape) + array.tobytes()


def gz(raw: bytes) -> bytes:
    return gzip.compress(raw, mtime=0)


def mnist_arrays(n_train: int = 20, n_test: int = 10, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "train_x": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_y": np.arange(n_train, dtype=np.uint8) % 10,
        "test_x": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_y": (np.arange(n_test, dtype=np.uint8) * 3) % 10,
    }


def mnist_files(arrays: dict[str, np.ndarray]) -> dict[str, bytes]:
    """The four official gz file names mapped to their bytes."""
    return {
        "train-images-idx3-ubyte.gz": gz(idx_bytes(arrays["train_x"])),
        "train-labels-idx1-ubyte.gz": gz(idx_bytes(arrays["train_y"])),
        "t10k-images-idx3-ubyte.gz": gz(idx_bytes(arrays["test_x"])),
        "t10k-labels-idx1-ubyte.gz": gz(idx_bytes(arrays["test_y"])),
    }


class Py2Pickler(pickle._Pickler):
    """Writes str and bytes as Python 2 wrote its str (BINSTRING opcodes), as in the official
    CIFAR-10 batches, which were pickled by Python 2."""

    def _save_as_binstring(self, obj):
        raw = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch: ClassVar[dict] = dict(pickle._Pickler.dispatch)
    dispatch[bytes] = _save_as_binstring
    dispatch[str] = _save_as_binstring


def cifar_batch(data: np.ndarray, labels: list[int], label: str, *, python2: bool = False) -> bytes:
    """A batch dict exactly like the official ones (bytes keys, protocol 2)."""
    batch = {
        b"batch_label": label.encode(),
        b"labels": labels,
        b"data": data,
        b"filenames": [f"img_{i:05d}.png".encode() for i in range(len(labels))],
    }
    if not python2:
        return pickle.dumps(batch, protocol=2)
    buffer = io.BytesIO()
    Py2Pickler(buffer, protocol=2).dump(batch)
    # numpy 1.x, which wrote the official files, lived at numpy.core
    return buffer.getvalue().replace(
        b"cnumpy._core.multiarray\n_reconstruct\n", b"cnumpy.core.multiarray\n_reconstruct\n"
    )


def tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, raw in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            archive.addfile(info, io.BytesIO(raw))
    return buffer.getvalue()


def cifar_arrays(per_batch: int = 4, seed: int = 0) -> list[tuple[str, np.ndarray, list[int]]]:
    """(member name, data (m, 3072) uint8, labels) for data_batch_1..5 and test_batch."""
    rng = np.random.default_rng(seed)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    return [
        (
            f"cifar-10-batches-py/{name}",
            rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            [int(v) for v in rng.integers(0, 10, per_batch)],
        )
        for name in names
    ]


def cifar_archive(
    batches, *, python2: bool = False, extra: dict[str, bytes] | None = None
) -> bytes:
    members = {"cifar-10-batches-py/batches.meta": pickle.dumps({b"num_cases_per_batch": 4})}
    members.update(extra or {})
    for name, data, labels in batches:
        members[name] = cifar_batch(data, labels, name.rsplit("/", 1)[1], python2=python2)
    return tar_gz(members)


def remote(name: str, raw: bytes, urls: tuple[str, ...] = ()) -> RemoteFile:
    return RemoteFile(
        name, len(raw), hashlib.sha256(raw).hexdigest(), urls or (f"http://x/{name}",)
    )


def install(monkeypatch, dataset: str, files: dict[str, bytes], directory=None, base_urls=()):
    """Point ``standard.SOURCES[dataset]`` at ``files`` (their sizes and hashes, URLs under
    ``base_urls``) and, when ``directory`` is given, write the files there."""
    table = tuple(
        remote(name, raw, tuple(base + name for base in base_urls)) for name, raw in files.items()
    )
    monkeypatch.setitem(standard.SOURCES, dataset, table)
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        for name, raw in files.items():
            (directory / name).write_bytes(raw)
    return table


class FileServer:
    """An HTTP server on 127.0.0.1 serving ``files`` (path -> bytes) with ``Range`` support.

    ``cut_after[path] = k`` makes the next ``cuts`` responses for ``path`` announce the full length
    but send only ``k`` bytes and close; ``fail_after_cut`` answers 503 once the cuts are used up
    (until reset); ``ignore_range`` answers every request with the whole file (200).
    ``requests`` logs ``(path, Range header)``.
    """

    def __init__(self, files: dict[str, bytes]):
        self.files = dict(files)
        self.cut_after: dict[str, int] = {}
        self.cuts = 0
        self.fail_after_cut = False
        self.ignore_range = False
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                if server.fail_after_cut and server.cuts == 0:
                    self.send_error(503)
                    return
                start, status = 0, 200
                wanted = self.headers.get("Range")
                if wanted and not server.ignore_range:
                    start = int(wanted.removeprefix("bytes=").split("-")[0])
                    if start >= len(body):
                        self.send_error(416)
                        return
                    status = 206
                self.send_response(status)
                self.send_header("Content-Length", str(len(body) - start))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.end_headers()
                payload = body[start:]
                if self.path in server.cut_after and server.cuts > 0:
                    server.cuts -= 1
                    payload = payload[: server.cut_after[self.path]]
                self.wfile.write(payload)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
