"""Writes of the service in process: add, get, delete, conflicts and the token; every acknowledged
write replayed after a restart; searches going on while a write is made durable; time limits."""

from __future__ import annotations

import base64
import json
import threading
import time
import warnings

import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")

with warnings.catch_warnings():  # starlette's notice about its test client's HTTP library
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

from _serve_support import AUTH, N_BITS, decoded, hits, open_test_service, png_bytes
from hashlearn import create_hasher
from hashlearn.exceptions import FileFormatError
from hashlearn.serve import create_app, open_service

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


def test_add_search_get_and_delete(files, client):
    png = png_bytes(files["X"][40])
    added = client.post(
        "/items",
        json={
            "items": [
                {"code_hex": "ff0f", "label": 4, "metadata": {"source": "test"}},
                {"image_base64": base64.b64encode(png).decode(), "label": 9},
            ]
        },
        headers=AUTH,
    )
    assert added.status_code == 201, added.text
    first, second = added.json()["items"]
    assert (first["id"], second["id"]) == (700, 701)  # after the base ids 100..699
    assert first["code"] == "ff0f"
    assert second["code"] == files["hasher"].encode(decoded(png)[None])[0].tobytes().hex()

    found = client.post("/search?radius=0", json={"code_hex": "ff0f"}).json()["hits"]
    assert {
        "id": 700,
        "distance": 0,
        "label": 4,
        "metadata": {"source": "test"},
        "has_image": False,
    } in found
    item = client.get("/items/701").json()
    assert item == {
        "id": 701,
        "code": second["code"],
        "label": 9,
        "metadata": None,
        "has_image": True,
        "source": "added",
    }
    image = client.get("/items/701/image")
    assert image.status_code == 200 and image.content == png
    assert image.headers["content-type"] == "image/png"
    assert image.headers["x-content-type-options"] == "nosniff"

    form = client.post(
        "/items",
        files={"image": ("x.png", png)},
        data={"id": "5000", "label": "2", "metadata": '{"by": "form"}'},
        headers=AUTH,
    )
    assert form.status_code == 201, form.text
    assert form.json()["items"] == [{"id": 5000, "code": second["code"]}]
    assert client.get("/items/5000").json()["metadata"] == {"by": "form"}

    assert client.delete("/items/701", headers=AUTH).json() == {"deleted": 701}
    assert client.get("/items/701").status_code == 404
    assert client.get("/items/701/image").status_code == 404
    assert client.delete("/items/105", headers=AUTH).status_code == 200  # a base item
    assert 105 not in [h for h, _ in hits(client.post("/search?k=600", json={"id": 106}))]
    stats = client.get("/stats").json()
    assert (stats["items"], stats["added_items"], stats["deleted_base_items"]) == (601, 2, 1)
    assert stats["labels"] == list(range(10)) and stats["writes_need_token"] is True


def test_add_conflicts(client):
    assert (
        client.post(
            "/items", json={"items": [{"id": 100, "code_hex": "0000"}]}, headers=AUTH
        ).status_code
        == 409
    )
    both = {"items": [{"id": 9000, "code_hex": "0000"}, {"id": 9000, "code_hex": "0100"}]}
    response = client.post("/items", json=both, headers=AUTH)
    assert response.status_code == 400 and "more than one item" in response.json()["error"]
    # An explicit id ahead of the counter is skipped by later automatic ids.
    client.post("/items", json={"items": [{"id": 700, "code_hex": "0000"}]}, headers=AUTH)
    auto = client.post("/items", json={"items": [{"code_hex": "0000"}]}, headers=AUTH)
    assert auto.json()["items"][0]["id"] == 701


def test_writes_need_the_token_reads_do_not(client):
    body = {"items": [{"code_hex": "0000"}]}
    missing = client.post("/items", json=body)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert "bearer token" in missing.json()["error"]
    assert (
        client.post("/items", json=body, headers={"Authorization": "Basic abc"}).status_code == 401
    )
    wrong = client.post("/items", json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403 and "not the service's token" in wrong.json()["error"]
    assert client.delete("/items/100").status_code == 401
    assert client.delete("/items/100", headers={"Authorization": "Bearer nope"}).status_code == 403
    assert client.get("/items/100").status_code == 200  # still there
    assert client.post("/search", json={"id": 100}).status_code == 200
    assert client.post("/items", json=body, headers=AUTH).status_code == 201


def test_restart_replays_every_acknowledged_write(files, tmp_path):
    data = tmp_path / "data"
    service = open_test_service(files, data)
    client = TestClient(create_app(service))
    png = png_bytes(files["X"][50])
    client.post(
        "/items", json={"items": [{"code_hex": "0f00", "label": 1, "metadata": {"a": [1]}}]}
    )
    client.post("/items", files={"image": ("p.png", png)}, data={"label": "3"})
    client.delete("/items/700")  # an added item
    client.delete("/items/100")  # a base item
    before = client.get("/items?offset=0&limit=1000").json()
    service.close()  # (the store is durable at each commit; closing only frees the handle)

    again = open_test_service(files, data)
    client = TestClient(create_app(again))
    assert client.get("/items?offset=0&limit=1000").json() == before
    assert client.get("/items/701").json()["label"] == 3
    assert client.get("/items/701/image").content == png
    assert client.get("/items/100").status_code == 404
    assert client.get("/items/700").status_code == 404
    # Ids are never handed out twice, even the deleted one's.
    assert (
        client.post("/items", json={"items": [{"code_hex": "0000"}]}).json()["items"][0]["id"]
        == 702
    )
    again.close()


def test_store_refuses_another_model(files, tmp_path):
    data = tmp_path / "data"
    open_test_service(files, data).close()
    other = create_hasher("lsh", n_bits=N_BITS, random_state=1).fit(files["X"])
    other.save(files["folder"] / "other.safetensors")
    with pytest.raises(FileFormatError, match="model_sha256"):
        open_service(
            files["folder"] / "other.safetensors", files["folder"] / "db.hlindex", data_dir=data
        )


def test_searches_go_on_while_a_write_is_made_durable(service, monkeypatch):
    client = TestClient(create_app(service))
    entered, release = threading.Event(), threading.Event()
    durable_add = service.store.add

    def slow_add(records, next_id):
        entered.set()
        assert release.wait(10)
        durable_add(records, next_id)

    monkeypatch.setattr(service.store, "add", slow_add)
    result = {}
    writer = threading.Thread(
        target=lambda: result.update(
            response=client.post("/items", json={"items": [{"code_hex": "0300"}]})
        )
    )
    writer.start()
    assert entered.wait(10)
    start = time.perf_counter()
    during = client.post("/search?radius=0", json={"code_hex": "0300"})
    assert time.perf_counter() - start < 5
    assert 700 not in [h for h, _ in hits(during)]  # not acknowledged, not visible
    release.set()
    writer.join(10)
    assert result["response"].status_code == 201
    after = client.post("/search?radius=0", json={"code_hex": "0300"})
    assert 700 in [h for h, _ in hits(after)]


def test_slow_request_gets_503(files, tmp_path, monkeypatch):
    service = open_test_service(files, tmp_path / "data", request_timeout=0.3)
    real_search = service.search
    monkeypatch.setattr(
        service, "search", lambda *a, **kw: time.sleep(1.0) or real_search(*a, **kw)
    )
    response = TestClient(create_app(service)).post("/search", json={"code_hex": "0000"})
    assert response.status_code == 503
    assert response.json() == {"error": "the request took longer than 0.3 s; try again"}
    time.sleep(0.8)  # let the abandoned search finish before the store closes
    service.close()


def test_a_body_that_stops_arriving_gets_408(files, tmp_path):
    """The ASGI app driven by hand: half of a declared 64-byte body, then nothing."""
    import asyncio

    service = open_test_service(files, tmp_path / "data", request_timeout=0.3)
    app = create_app(service)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/search",
        "raw_path": b"/search",
        "root_path": "",
        "query_string": b"k=3",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 8000),
    }
    chunks = [{"type": "http.request", "body": b'{"code_hex": "00', "more_body": True}]
    sent = []

    async def receive():
        if chunks:
            return chunks.pop(0)
        await asyncio.sleep(3600)  # the client stalls

    async def send(message):
        sent.append(message)

    async def run():
        await asyncio.wait_for(app(scope, receive, send), 5)

    start = time.perf_counter()
    asyncio.run(run())
    service.close()
    assert time.perf_counter() - start < 3
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 408
    body = b"".join(m.get("body", b"") for m in sent[1:])
    assert json.loads(body) == {"error": "the request body did not arrive within 0.3 s"}
