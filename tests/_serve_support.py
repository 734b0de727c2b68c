"""Shared pieces of the search service tests: small models and indexes, PNG bytes, a real server."""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
N_BITS = 12  # codes of lsh_files: 2 bytes per code; the 4 high bits of byte 1 must be 0


def png_bytes(image: np.ndarray) -> bytes:
    """An 8-bit PNG of a float image (h, w) in [0, 1]."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def decoded(png: bytes) -> np.ndarray:
    """What the service sees of a grey PNG: ``uint8 / 255`` as float32 (h, w)."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)), dtype=np.float32) / 255.0


def lsh_files(folder: Path) -> dict:
    """LSH (12 bits) on the 8x8 digits, indexed with ids 100.., labels, and PNGs of 30 items."""
    from hashlearn import LinearIndex, create_hasher, load_dataset

    data = load_dataset("digits")
    X, y = data.X[:600], data.y[:600]
    hasher = create_hasher("lsh", n_bits=N_BITS, random_state=0).fit(X)
    hasher.save(folder / "lsh.safetensors")
    ids = np.arange(100, 100 + len(X), dtype=np.int64)
    index = LinearIndex(N_BITS)
    index.add_with_ids(hasher.encode(X), ids)
    index.save(folder / "db.hlindex")
    np.save(folder / "y.npy", y)
    (folder / "images").mkdir()
    for item_id, image in zip(ids[:30].tolist(), X[:30]):
        (folder / "images" / f"{item_id}.png").write_bytes(png_bytes(image))
    return {"folder": folder, "hasher": hasher, "index": index, "X": X, "y": y, "ids": ids}


def open_test_service(files, data_dir, resize=None, **limits):
    """The service over :func:`lsh_files` (images 8x8, labels), its writes in ``data_dir``."""
    from hashlearn.serve import ServeLimits, open_service

    folder = files["folder"]
    return open_service(
        folder / "lsh.safetensors",
        folder / "db.hlindex",
        data_dir=data_dir,
        images_dir=folder / "images",
        labels=folder / "y.npy",
        image_shape=(8, 8),
        resize=resize,
        limits=ServeLimits(**limits) if limits else None,
    )


def hits(response):
    """``(id, distance)`` of the hits of a 200 search answer."""
    assert response.status_code == 200, response.text
    return [(h["id"], h["distance"]) for h in response.json()["hits"]]


def library_search(files, code, k):
    """``(id, distance)`` of the ``k`` nearest by the library's own index of :func:`lsh_files`."""
    D, I = files["index"].search(code, k)
    return list(zip(I[0].tolist(), D[0].tolist()))


@dataclass(frozen=True)
class ServedFiles:
    model: Path
    index: Path
    labels: Path
    images: Path
    X: np.ndarray  # the indexed images, row i = id ids[i]
    y: np.ndarray
    ids: np.ndarray
    queries: np.ndarray  # held-out images
    query_labels: np.ndarray


def dsh_files(folder: Path) -> ServedFiles:
    """A 12-bit DSH model (1 epoch on 600 mnist5k images), a LinearIndex of 400 other images with
    ids 1000.., their labels and PNG files. Built once per folder and reused."""
    from hashlearn import LinearIndex, create_hasher, load_dataset
    from hashlearn.serve.demo import save_png

    data = load_dataset("mnist5k")
    X, y = data.X, data.y
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    train, base, held = order[:600], np.sort(order[600:1000]), order[1000:1040]
    ids = (1000 + np.arange(len(base))).astype(np.int64)
    files = ServedFiles(
        model=folder / "dsh.safetensors",
        index=folder / "db.hlindex",
        labels=folder / "labels.npy",
        images=folder / "images",
        X=X[base],
        y=y[base],
        ids=ids,
        queries=X[held],
        query_labels=y[held],
    )
    if (folder / "done").exists():
        return files
    folder.mkdir(parents=True, exist_ok=True)
    hasher = create_hasher(
        "dsh", n_bits=12, epochs=1, random_state=0, verbose=False, device="cpu"
    ).fit(X[train], y[train])
    hasher.save(files.model)
    index = LinearIndex(12)
    index.add_with_ids(hasher.encode(files.X), ids)
    index.save(files.index)
    np.save(files.labels, files.y)
    files.images.mkdir(exist_ok=True)
    for item_id, image in zip(ids.tolist(), files.X):
        save_png(image, files.images / f"{item_id}.png")
    (folder / "done").write_text("ok")
    return files


CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
NO_CHROMIUM = (
    "no Chromium installed: looked for chromium, chromium-browser and google-chrome on PATH "
    "(install Debian's 'chromium' package to run the browser tests)"
)


def find_chromium() -> str | None:
    """The first Chromium on PATH, or None (browser tests then skip with :data:`NO_CHROMIUM`)."""
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


def wait_for_health(process: subprocess.Popen, url: str, log: Path, timeout: float) -> bool:
    """Poll ``url/health`` until it answers 200 (True) or ``timeout`` passes (False); a server
    process that exits first raises RuntimeError with its log."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited early:\n{log.read_text()}")
        try:
            if httpx.get(url + "/health", timeout=1.0).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    return False


def wait_until(page, script: str, timeout: float = 20.0) -> None:
    """Poll ``page.evaluate(script)`` until it is true (Playwright's ``wait_for_function`` builds
    its predicate with ``eval``, which the page's Content-Security-Policy forbids)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(script):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {script}")
        time.sleep(0.05)


def stop_process(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 10 s, of a child that still runs."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``hashlearn serve`` in a child process on 127.0.0.1 and a free port."""

    def __init__(self, files: ServedFiles, data_dir: Path, log: Path, *, token: str | None = TOKEN):
        self.files, self.data_dir, self.log_path, self.token = files, data_dir, log, token
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> ServerProcess:
        env = {k: v for k, v in os.environ.items() if k != "HASHLEARN_SERVE_TOKEN"}
        if self.token:
            env["HASHLEARN_SERVE_TOKEN"] = self.token
        command = [
            sys.executable, "-m", "hashlearn.cli", "serve",
            "--model", str(self.files.model), "--index", str(self.files.index),
            "--labels", str(self.files.labels), "--item-images", str(self.files.images),
            "--store", str(self.data_dir), "--port", str(self.port), "--threads", "1",
        ]  # fmt: skip
        self._log = open(self.log_path, "ab")  # closed by kill() / stop()
        self.process = subprocess.Popen(
            command, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        if wait_for_health(self.process, self.url, self.log_path, timeout):
            return self
        self.stop()
        raise RuntimeError(
            f"the server did not answer /health in {timeout} s:\n{self.log_path.read_text()}"
        )

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (what a crash or an OOM kill does)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self._close_log()

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
        self._close_log()

    def _close_log(self) -> None:
        log = getattr(self, "_log", None)
        if log is not None and not log.closed:
            log.close()

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}
