"""hashlearn serve as a real process on 127.0.0.1: the library's results over HTTP, writes, and
no acknowledged write lost to kill -9."""

from __future__ import annotations

import http.client
import threading
import time

import numpy as np
import pytest

httpx = pytest.importorskip("httpx", reason="the dev extra (httpx) is not installed")
pytest.importorskip("uvicorn", reason="the serve extra (uvicorn) is not installed")

from _serve_support import ServerProcess, decoded, dsh_files, png_bytes  # noqa: E402
from hashlearn.hashers import load_hasher  # noqa: E402
from hashlearn.index import load_index  # noqa: E402


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return dsh_files(tmp_path_factory.getbasetemp() / "serve-dsh")


def search_image(client, png, **params):
    response = client.post("/search", params=params, files={"image": ("q.png", png, "image/png")})
    assert response.status_code == 200, response.text
    return response.json()


def raw_get(port, path):
    """GET with the path sent exactly as written (no client-side normalisation of ``..``)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.getheader("content-type"), response.read()
    finally:
        connection.close()


def test_real_server_matches_the_library_and_keeps_writes_over_kill_9(files, tmp_path):
    hasher, index = load_hasher(files.model), load_index(files.index)
    server = ServerProcess(files, tmp_path / "data", tmp_path / "server.log").start()
    try:
        client = httpx.Client(base_url=server.url, timeout=30)
        # Search by image: the same ids and distances as the library on the decoded image.
        for image in files.queries[:4]:
            png = png_bytes(image)
            body = search_image(client, png, k=10)
            D, I = index.search(hasher.encode(decoded(png)[None]), 10)
            assert [h["id"] for h in body["hits"]] == I[0].tolist()
            assert [h["distance"] for h in body["hits"]] == D[0].tolist()
            assert all(files.y[h["id"] - 1000] == h["label"] for h in body["hits"])

        # Add an image and three codes; the image's own search finds it at distance 0.
        png = png_bytes(files.queries[5])
        added = client.post(
            "/items",
            files={"image": ("new.png", png, "image/png")},
            data={"label": str(int(files.query_labels[5]))},
            headers=server.auth(),
        )
        assert added.status_code == 201, added.text
        image_id = added.json()["items"][0]["id"]
        assert image_id == 1400  # after the base ids 1000..1399
        hits = search_image(client, png, radius=0)["hits"]
        assert {"id": image_id, "distance": 0} in [
            {"id": h["id"], "distance": h["distance"]} for h in hits
        ]
        codes = client.post(
            "/items",
            json={
                "items": [
                    {"code_hex": c, "metadata": {"n": i}}
                    for i, c in enumerate(["0100", "0200", "0300"])
                ]
            },
            headers=server.auth(),
        )
        assert [item["id"] for item in codes.json()["items"]] == [1401, 1402, 1403]
        assert client.delete("/items/1402", headers=server.auth()).status_code == 200
        assert client.delete("/items/1000", headers=server.auth()).status_code == 200
        assert client.get("/items/1402").status_code == 404
        before = search_image(client, png_bytes(files.queries[0]), k=20)

        # Paths that try to leave the images folder never reach the file system.
        for path in ("/items/../../../etc/passwd", "/items/..%2F..%2Fetc%2Fpasswd/image"):
            status, content_type, payload = raw_get(server.port, path)
            assert 400 <= status < 500 and content_type == "application/json"
            assert b"passwd" not in payload or b"error" in payload

        server.kill()
        server = ServerProcess(files, tmp_path / "data", tmp_path / "server.log").start()
        client = httpx.Client(base_url=server.url, timeout=30)
        assert client.get(f"/items/{image_id}/image").content == png
        assert client.get("/items/1401").json()["metadata"] == {"n": 0}
        assert client.get("/items/1403").json()["code"] == "0300"
        assert client.get("/items/1402").status_code == 404
        assert client.get("/items/1000").status_code == 404
        assert search_image(client, png_bytes(files.queries[0]), k=20) == before
        stats = client.get("/stats").json()
        assert (stats["items"], stats["added_items"], stats["deleted_base_items"]) == (402, 3, 1)
    finally:
        server.stop()


def test_kill_9_during_adds_loses_no_acknowledged_add(files, tmp_path):
    server = ServerProcess(files, tmp_path / "data", tmp_path / "server.log").start()
    acknowledged: dict[int, str] = {}
    rng = np.random.default_rng(0)

    def add_until_the_server_dies():
        with httpx.Client(base_url=server.url, timeout=10) as client:
            while True:
                code = f"{int(rng.integers(256)):02x}{int(rng.integers(16)):02x}"
                try:
                    response = client.post(
                        "/items", json={"items": [{"code_hex": code}]}, headers=server.auth()
                    )
                except httpx.TransportError:
                    return
                assert response.status_code == 201, response.text
                acknowledged[response.json()["items"][0]["id"]] = code

    writer = threading.Thread(target=add_until_the_server_dies)
    writer.start()
    try:
        deadline = time.monotonic() + 20
        while len(acknowledged) < 30 and time.monotonic() < deadline:
            time.sleep(0.05)
        server.kill()
        writer.join(20)
        assert len(acknowledged) >= 30
        server = ServerProcess(files, tmp_path / "data", tmp_path / "server.log").start()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for item_id, code in acknowledged.items():
                hits = client.post("/search", params={"radius": 0}, json={"code_hex": code})
                assert item_id in [h["id"] for h in hits.json()["hits"]]
            stats = client.get("/stats").json()
            assert stats["added_items"] in (len(acknowledged), len(acknowledged) + 1)  # + in flight
            fresh = client.post(
                "/items", json={"items": [{"code_hex": "0000"}]}, headers=server.auth()
            )
            assert fresh.json()["items"][0]["id"] == 1400 + stats["added_items"]
    finally:
        server.stop()
