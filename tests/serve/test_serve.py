"""hashlearn.serve in process: the API against the library, writes and their replay, limits and
every bad request answered by a 4xx JSON error."""

from __future__ import annotations

import base64
import io
import json
import struct
import threading
import time
import warnings
import zlib

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")

with warnings.catch_warnings():  # starlette's notice about its test client's HTTP library
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient
from PIL import Image

from _serve_support import TOKEN, decoded, png_bytes
from hashlearn import LinearIndex, create_hasher, load_dataset
from hashlearn.exceptions import FileFormatError, InvalidInputError
from hashlearn.serve import (
    ServeLimits,
    create_app,
    open_service,
    parse_image_shape,
    parse_item_id,
)
from hashlearn.serve.limits import load_token

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

N_BITS = 12  # 2 bytes per code; the 4 high bits of byte 1 must be 0


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """LSH (12 bits) on the 8x8 digits, indexed with ids 100.., labels, and PNGs of 30 items."""
    folder = tmp_path_factory.mktemp("serve")
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


def open_test_service(files, data_dir, **limits):
    folder = files["folder"]
    return open_service(
        folder / "lsh.safetensors",
        folder / "db.hlindex",
        data_dir=data_dir,
        images_dir=folder / "images",
        labels=folder / "y.npy",
        image_shape=(8, 8),
        limits=ServeLimits(**limits) if limits else None,
    )


@pytest.fixture
def service(files, tmp_path):
    service = open_test_service(files, tmp_path / "data")
    yield service
    service.close()


@pytest.fixture
def client(service):
    return TestClient(create_app(service, token=TOKEN))


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def hits(response):
    assert response.status_code == 200, response.text
    return [(h["id"], h["distance"]) for h in response.json()["hits"]]


def library_search(files, code, k):
    D, I = files["index"].search(code, k)
    return list(zip(I[0].tolist(), D[0].tolist()))


# -- searching ----------------------------------------------------------------------------------


def test_search_by_image_returns_the_library_results(files, client):
    png = png_bytes(files["X"][7])
    response = client.post("/search?k=15", files={"image": ("q.png", png, "image/png")})
    code = files["hasher"].encode(decoded(png)[None])
    assert hits(response) == library_search(files, code, 15)
    body = response.json()
    assert body["query_code"] == code[0].tobytes().hex()
    assert body["k"] == 15 and body["n_bits"] == N_BITS and body["truncated"] is False
    first = body["hits"][0]
    assert first["label"] == int(files["y"][first["id"] - 100])
    assert first["has_image"] == (first["id"] < 130)
    # The raw body and base64 JSON forms give the same answer.
    raw = client.post("/search?k=15", content=png, headers={"Content-Type": "image/png"})
    assert hits(raw) == hits(response)
    encoded = base64.b64encode(png).decode()
    assert hits(client.post("/search", json={"image_base64": encoded, "k": 15})) == hits(response)


def test_search_by_vector_code_and_item_agree(files, client):
    x = files["X"][3]
    code = files["hasher"].encode(x[None])
    expected = library_search(files, code, 10)
    by_vector = client.post("/search", json={"vector": x.ravel().tolist()})  # k defaults to 10
    assert hits(by_vector) == expected
    assert hits(client.post("/search?k=10", json={"code_hex": code[0].tobytes().hex()})) == expected
    b64 = base64.b64encode(code[0].tobytes()).decode()
    assert hits(client.post("/search", json={"code_base64": b64, "k": 10})) == expected
    by_item = client.post("/search", json={"id": 103, "k": 10})
    assert hits(by_item) == expected
    assert by_item.json()["query_id"] == 103
    assert by_item.json()["query_label"] == int(files["y"][3])


def test_radius_search_counts_and_cuts(files, tmp_path):
    service = open_test_service(files, tmp_path / "data", max_results=5)
    client = TestClient(create_app(service))
    code = files["hasher"].encode(files["X"][:1])
    lims, D, I = files["index"].range_search(code, 3)
    response = client.post("/search?radius=3", json={"code_hex": code[0].tobytes().hex()})
    body = response.json()
    assert body["radius"] == 3 and body["n_found"] == int(lims[1]) > 5
    assert body["truncated"] is True
    assert hits(response) == list(zip(I[:5].tolist(), D[:5].tolist()))
    service.close()


def test_jpeg_rgb_and_16_bit_images_are_read_as_grey(files, client):
    grey = np.round(files["X"][5] * 255).astype(np.uint8)
    expected = hits(client.post("/search", files={"image": ("a.png", png_bytes(files["X"][5]))}))
    wide = io.BytesIO()
    Image.fromarray(grey.astype(np.uint16) * 257).save(wide, "PNG")  # 16-bit: v * 257 / 65535
    assert hits(client.post("/search", files={"image": ("b.png", wide.getvalue())})) == expected
    rgb = io.BytesIO()
    Image.fromarray(np.stack([grey] * 3, axis=-1)).save(rgb, "PNG")  # R = G = B: same grey
    assert hits(client.post("/search", files={"image": ("c.png", rgb.getvalue())})) == expected
    jpeg = io.BytesIO()
    Image.fromarray(grey).resize((64, 64)).save(jpeg, "JPEG", quality=95)
    response = client.post(
        "/search", content=jpeg.getvalue(), headers={"Content-Type": "image/jpeg"}
    )
    assert response.status_code == 200 and len(response.json()["hits"]) == 10


def test_items_are_listed_by_page_or_sample(client):
    page = client.get("/items?offset=10&limit=3").json()
    assert page["total"] == 600
    assert [item["id"] for item in page["items"]] == [110, 111, 112]
    assert page["items"][0]["has_image"] is True
    assert client.get("/items?offset=9223372036854775807").json()["items"] == []
    sample = [item["id"] for item in client.get("/items?limit=50&sample_seed=3").json()["items"]]
    assert len(set(sample)) == 50 and sample == sorted(sample)
    assert sample[-1] - sample[0] > 300  # spread over the ids, not one page
    again = client.get("/items?limit=50&sample_seed=3").json()["items"]
    assert [item["id"] for item in again] == sample


# -- writing ------------------------------------------------------------------------------------


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


# -- bad requests: each a 4xx with a JSON error naming the problem ------------------------------


def _png_header(width: int, height: int) -> bytes:
    """A PNG signature and IHDR chunk claiming ``width x height`` (8-bit grey), then one tiny
    IDAT: enough for the header to be read, far too little to decode (see the PNG spec, 11.2.2)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload))
            + kind
            + payload
            + struct.pack(">I", zlib.crc32(kind + payload))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


_DIGIT = np.zeros((8, 8), dtype=np.float32)
_DIGIT[2:6, 3:5] = 1.0
_PNG = png_bytes(_DIGIT)
_GIF = io.BytesIO()
Image.new("L", (8, 8)).save(_GIF, "GIF")

BAD_REQUESTS = [
    # (name, method, path, request keyword arguments, status, words in the error)
    (
        "non-image bytes",
        "post",
        "/search",
        {"files": {"image": ("a.png", b"hello, not an image")}},
        400,
        "not a PNG or JPEG",
    ),
    (
        "truncated PNG",
        "post",
        "/search",
        {"files": {"image": ("a.png", png_bytes(np.random.default_rng(0).random((64, 64)))[:300])}},
        400,
        "truncated",
    ),
    (
        "20000x20000 image",
        "post",
        "/search",
        {"files": {"image": ("big.png", _png_header(20000, 20000))}},
        413,
        "400000000 pixels",
    ),
    (
        "GIF image",
        "post",
        "/search",
        {"files": {"image": ("a.gif", _GIF.getvalue())}},
        400,
        "not a PNG or JPEG",
    ),
    ("empty image", "post", "/search", {"files": {"image": ("a.png", b"")}}, 400, "empty"),
    (
        "wrong vector length",
        "post",
        "/search",
        {"json": {"vector": [0.5] * 10}},
        400,
        "10 values, but the model takes 64",
    ),
    (
        "NaN values",
        "post",
        "/search",
        {
            "content": b'{"vector": [NaN' + b", 0.5" * 63 + b"]}",
            "headers": {"Content-Type": "application/json"},
        },
        400,
        "NaN",
    ),
    (
        "infinite values",
        "post",
        "/search",
        {
            "content": b'{"vector": [0.5, Infinity]}',
            "headers": {"Content-Type": "application/json"},
        },
        400,
        "NaN or infinite",
    ),
    ("string in vector", "post", "/search", {"json": {"vector": ["1"]}}, 400, "vector.0"),
    ("k = 0", "post", "/search?k=0", {"json": {"code_hex": "0000"}}, 400, "k must be >= 1"),
    (
        "k = 10**9",
        "post",
        "/search?k=1000000000",
        {"json": {"code_hex": "0000"}},
        400,
        "k must be <= 1000",
    ),
    (
        "k = 10**30 in JSON",
        "post",
        "/search",
        {"json": {"code_hex": "0000", "k": 10**30}},
        400,
        "k must be <= 1000",
    ),
    ("k not a number", "post", "/search?k=ten", {"json": {"code_hex": "0000"}}, 400, "'k'"),
    ("k as text in JSON", "post", "/search", {"json": {"code_hex": "0000", "k": "5"}}, 400, "'k'"),
    (
        "k in query and body",
        "post",
        "/search?k=3",
        {"json": {"code_hex": "0000", "k": 4}},
        400,
        "given twice",
    ),
    (
        "k and radius",
        "post",
        "/search?k=3&radius=2",
        {"json": {"code_hex": "0000"}},
        400,
        "not both",
    ),
    (
        "negative radius",
        "post",
        "/search?radius=-1",
        {"json": {"code_hex": "0000"}},
        400,
        "radius must be >= 0",
    ),
    (
        "radius over the cap",
        "post",
        "/search?radius=65",
        {"json": {"code_hex": "0000"}},
        400,
        "radius must be <= 64",
    ),
    (
        "k in a form",
        "post",
        "/search",
        {"files": {"image": ("a.png", _PNG)}, "data": {"k": "x"}},
        400,
        "k must be an integer",
    ),
    (
        "two queries",
        "post",
        "/search",
        {"json": {"code_hex": "0000", "id": 100}},
        400,
        "exactly one",
    ),
    ("no query", "post", "/search", {"json": {"k": 3}}, 400, "exactly one"),
    ("unknown JSON field", "post", "/search", {"json": {"code_hex": "0000", "kk": 3}}, 400, "'kk'"),
    (
        "invalid JSON",
        "post",
        "/search",
        {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
        400,
        "not valid JSON",
    ),
    (
        "deeply nested JSON",
        "post",
        "/search",
        {"content": b"[" * 100000 + b"]" * 100000, "headers": {"Content-Type": "application/json"}},
        400,
        "not valid JSON",
    ),
    ("JSON array", "post", "/search", {"json": [1, 2]}, 400, "must be an object"),
    (
        "empty JSON body",
        "post",
        "/search",
        {"headers": {"Content-Type": "application/json"}},
        400,
        "empty",
    ),
    (
        "unsupported content type",
        "post",
        "/search",
        {"content": b"k=3", "headers": {"Content-Type": "text/plain"}},
        415,
        "text/plain",
    ),
    ("no content type", "post", "/search", {"content": b"abc"}, 415, "without Content-Type"),
    (
        "form without image",
        "post",
        "/search",
        {"data": {"k": "3"}, "files": {"other": ("a", b"x")}},
        400,
        "'other'",
    ),
    (
        "image given as text",
        "post",
        "/search",
        {"files": {"image": (None, "abc")}},
        400,
        "must be a file",
    ),
    (
        "multipart without boundary",
        "post",
        "/search",
        {"content": b"--x--", "headers": {"Content-Type": "multipart/form-data"}},
        400,
        "boundary",
    ),
    ("code_hex too short", "post", "/search", {"json": {"code_hex": "00"}}, 400, "4 hex digits"),
    ("code_hex not hex", "post", "/search", {"json": {"code_hex": "zz00"}}, 400, "not hexadecimal"),
    (
        "code bits past n_bits",
        "post",
        "/search",
        {"json": {"code_hex": "ffff"}},
        400,
        "beyond bit 12",
    ),
    (
        "code_base64 invalid",
        "post",
        "/search",
        {"json": {"code_base64": "%%%"}},
        400,
        "not valid base64",
    ),
    ("code_base64 length", "post", "/search", {"json": {"code_base64": "AAAA"}}, 400, "2 bytes"),
    (
        "image_base64 invalid",
        "post",
        "/search",
        {"json": {"image_base64": "!!"}},
        400,
        "not valid base64",
    ),
    ("unknown item id", "get", "/items/99999", {}, 404, "item 99999 is not in the index"),
    ("unknown item image", "get", "/items/99999/image", {}, 404, "not in the index"),
    ("item without image", "get", "/items/200/image", {}, 404, "item 200 has no image"),
    ("search by unknown id", "post", "/search", {"json": {"id": 99999}}, 404, "not in the index"),
    ("id over int64", "post", "/search", {"json": {"id": 2**64}}, 400, "'id'"),
    ("negative id", "get", "/items/-1", {}, 400, "non-negative decimal integer"),
    ("non-decimal id", "get", "/items/1e3", {}, 400, "non-negative decimal integer"),
    ("id with dots", "get", "/items/1..2", {}, 400, "non-negative decimal integer"),
    ("traversal in id", "get", "/items/..%2F..%2Fetc%2Fpasswd", {}, 404, "no such endpoint"),
    ("encoded dots in id", "get", "/items/%2e%2e/image", {}, 400, "got '..'"),
    (
        "traversal in image id",
        "get",
        "/items/..%5C..%5Cwin.ini/image",
        {},
        400,
        "non-negative decimal integer",
    ),
    (
        "traversal id in form",
        "post",
        "/items",
        {"files": {"image": ("a.png", _PNG)}, "data": {"id": "../../x"}, "headers": AUTH},
        400,
        "non-negative decimal integer",
    ),
    (
        "huge id",
        "delete",
        "/items/99999999999999999999",
        {"headers": AUTH},
        400,
        "non-negative decimal integer",
    ),
    (
        "id past int64",
        "delete",
        "/items/9223372036854775808",
        {"headers": AUTH},
        400,
        "between 0 and",
    ),
    ("delete unknown", "delete", "/items/99999", {"headers": AUTH}, 404, "not in the index"),
    (
        "missing token",
        "post",
        "/items",
        {"json": {"items": [{"code_hex": "0000"}]}},
        401,
        "bearer token",
    ),
    (
        "wrong token",
        "post",
        "/items",
        {"json": {"items": [{"code_hex": "0000"}]}, "headers": {"Authorization": "Bearer x"}},
        403,
        "not the service's token",
    ),
    (
        "wrong token on delete",
        "delete",
        "/items/100",
        {"headers": {"Authorization": "Bearer x"}},
        403,
        "not the service's token",
    ),
    ("no items", "post", "/items", {"json": {"items": []}, "headers": AUTH}, 400, "no items"),
    (
        "item with two codes",
        "post",
        "/items",
        {"json": {"items": [{"code_hex": "0000", "vector": [1.0]}]}, "headers": AUTH},
        400,
        "exactly one",
    ),
    (
        "label as bool",
        "post",
        "/items",
        {"json": {"items": [{"code_hex": "0000", "label": True}]}, "headers": AUTH},
        400,
        "label",
    ),
    (
        "label past int64",
        "post",
        "/items",
        {"json": {"items": [{"code_hex": "0000", "label": 2**70}]}, "headers": AUTH},
        400,
        "label",
    ),
    (
        "metadata not an object",
        "post",
        "/items",
        {"json": {"items": [{"code_hex": "0000", "metadata": [1]}]}, "headers": AUTH},
        400,
        "metadata",
    ),
    (
        "metadata too big",
        "post",
        "/items",
        {"json": {"items": [{"code_hex": "0000", "metadata": {"x": "a" * 5000}}]}, "headers": AUTH},
        413,
        "limit is 4096",
    ),
    (
        "metadata form not JSON",
        "post",
        "/items",
        {"files": {"image": ("a.png", _PNG)}, "data": {"metadata": "{"}, "headers": AUTH},
        400,
        "'metadata' is not valid JSON",
    ),
    (
        "too many items",
        "post",
        "/items",
        {"json": {"items": [{"code_hex": "0000"}] * 1001}, "headers": AUTH},
        413,
        "limit is 1000",
    ),
    (
        "adding a bad image",
        "post",
        "/items",
        {
            "json": {"items": [{"image_base64": base64.b64encode(b"GIF89a...").decode()}]},
            "headers": AUTH,
        },
        400,
        "not a PNG or JPEG",
    ),
    (
        "items as text",
        "post",
        "/items",
        {"content": b"abc", "headers": {**AUTH, "Content-Type": "text/plain"}},
        415,
        "text/plain",
    ),
    (
        "body over the limit",
        "post",
        "/search",
        {"content": b"x" * (16 * 1024 * 1024 + 1), "headers": {"Content-Type": "image/png"}},
        413,
        "limit is 16777216",
    ),
    (
        "bad Content-Length",
        "post",
        "/search",
        {
            "content": b"{}",
            "headers": {"Content-Type": "application/json", "Content-Length": "abc"},
        },
        400,
        "Content-Length",
    ),
    ("negative offset", "get", "/items?offset=-1", {}, 400, "'offset'"),
    ("negative sample seed", "get", "/items?sample_seed=-1", {}, 400, "'sample_seed'"),
    ("limit over max_k", "get", "/items?limit=5000", {}, 400, "limit must be <= 1000"),
    ("wrong method", "put", "/items/100", {}, 405, "not allowed"),
    ("unknown path", "get", "/nothing/here", {}, 404, "no such endpoint"),
    ("static traversal", "get", "/static/..%2F..%2Fservice.py", {}, 404, ""),
]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "words"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
def test_bad_request_gets_a_clear_4xx(client, method, path, kwargs, status, words):
    response = client.request(method.upper(), path, **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert isinstance(error, str) and error
    assert words in error


def test_chunked_body_over_the_limit_is_cut_off(files, tmp_path):
    service = open_test_service(files, tmp_path / "data", max_body_bytes=100_000)
    client = TestClient(create_app(service))
    chunks = iter([b"\x89PNG" + b"x" * 40_000] * 5)  # no Content-Length: sent chunked
    response = client.post("/search", content=chunks, headers={"Content-Type": "image/png"})
    assert response.status_code == 413
    assert response.json() == {"error": "the request body is over the limit of 100000 bytes"}
    service.close()


def test_random_bodies_never_get_a_500(client):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "vector",
                        "code_hex",
                        "code_base64",
                        "image_base64",
                        "id",
                        "k",
                        "radius",
                        "items",
                        "label",
                        "metadata",
                    ]
                ),
                inner,
                max_size=4,
            )
        ),
        max_leaves=12,
    )

    @settings(
        max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(
        path=st.sampled_from(["/search", "/search?k=3", "/search?radius=1", "/items"]),
        media=st.sampled_from(
            ["application/json", "image/png", "multipart/form-data", "text/plain"]
        ),
        body=st.one_of(st.binary(max_size=64), json_values.map(lambda v: json.dumps(v).encode())),
    )
    def check(path, media, body):
        response = client.post(path, content=body, headers={"Content-Type": media, **AUTH})
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            assert response.json()["error"]

    check()


# -- schema, page, helpers ------------------------------------------------------------------------


def test_openapi_schema_documents_the_api(client):
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    assert set(paths) >= {
        "/search",
        "/items",
        "/items/{item_id}",
        "/items/{item_id}/image",
        "/stats",
        "/health",
    }
    search_body = paths["/search"]["post"]["requestBody"]["content"]
    assert set(search_body) == {
        "multipart/form-data",
        "application/json",
        "image/png",
        "image/jpeg",
    }
    assert set(paths["/items/{item_id}"]) == {"get", "delete"}
    assert paths["/items"]["post"]["security"] == [{"HTTPBearer": []}]
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "/docs" not in paths and client.get("/docs").status_code == 404  # no CDN-loaded docs


def test_page_and_assets_are_local(client):
    page = client.get("/")
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    import re

    references = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert references and all(ref.startswith("/") for ref in references), references
    for asset in ("/static/app.js", "/static/style.css"):
        response = client.get(asset)
        assert response.status_code == 200
        assert "http://" not in response.text and "https://" not in response.text


def test_parse_item_id():
    assert parse_item_id("0") == 0
    assert parse_item_id("9223372036854775807") == 2**63 - 1
    for bad in ("", "-1", "+1", "1.0", " 1", "../1", "1/2", "٣", "0x10", "9223372036854775808"):
        with pytest.raises(InvalidInputError):
            parse_item_id(bad)


def test_limits_and_shapes_are_checked():
    with pytest.raises(InvalidInputError, match="max_k must be >= 1"):
        ServeLimits(max_k=0)
    with pytest.raises(InvalidInputError, match="request_timeout must be > 0"):
        ServeLimits(request_timeout=0)
    assert parse_image_shape("28x28") == (28, 28, 1)
    assert parse_image_shape("32X32x3") == (32, 32, 3)
    for bad in ("28", "28x", "28x28x2", "0x5"):
        with pytest.raises(InvalidInputError):
            parse_image_shape(bad)


def test_a_model_fitted_on_images_takes_image_files_without_a_shape(files, tmp_path):
    folder = files["folder"]
    service = open_service(folder / "lsh.safetensors", folder / "db.hlindex", data_dir=tmp_path)
    try:
        assert service.stats()["image_shape"] == [8, 8, 1]
        png = png_bytes(files["X"][3])
        response = TestClient(create_app(service)).post(
            "/search?k=4", files={"image": ("q.png", png, "image/png")}
        )
        code = files["hasher"].encode(decoded(png)[None])
        assert hits(response) == library_search(files, code, 4)
    finally:
        service.close()
    with pytest.raises(InvalidInputError, match="differs from the 8x8x1 images"):
        open_service(folder / "lsh.safetensors", folder / "db.hlindex", image_shape=(28, 28))


def test_image_shape_must_fit_a_model_fitted_on_vectors(files, tmp_path):
    flat = files["X"].reshape(len(files["X"]), -1)
    hasher = create_hasher("lsh", n_bits=N_BITS, random_state=0).fit(flat)
    assert hasher.image_shape_ is None
    hasher.save(tmp_path / "flat.safetensors")
    model, index = tmp_path / "flat.safetensors", files["folder"] / "db.hlindex"
    with pytest.raises(InvalidInputError, match="does not fit the model"):
        open_service(model, index, data_dir=tmp_path / "a", image_shape=(28, 28))
    service = open_service(model, index, data_dir=tmp_path / "b")
    try:
        response = TestClient(create_app(service)).post(
            "/search", files={"image": ("q.png", png_bytes(files["X"][3]), "image/png")}
        )
        assert response.status_code == 400 and "--image-shape" in response.json()["error"]
    finally:
        service.close()


def test_token_comes_from_a_file_or_the_environment(tmp_path):
    path = tmp_path / "token"
    path.write_text("s3cret\nignored\n")
    assert load_token(path, environ={}) == "s3cret"
    assert load_token(None, environ={"HASHLEARN_SERVE_TOKEN": " abc "}) == "abc"
    assert load_token(None, environ={}) is None
    path.write_text("\n")
    with pytest.raises(InvalidInputError, match="empty line"):
        load_token(path, environ={})
    with pytest.raises(InvalidInputError, match="cannot read"):
        load_token(tmp_path / "missing", environ={})


# -- the one-step demo and the command line -------------------------------------------------------


def test_demo_serve_prepares_a_folder_and_serves_it(tmp_path, monkeypatch, capsys):
    import hashlearn.serve.app
    from hashlearn.cli import main

    served = {}

    def fake_run_server(service, **options):
        served.update(options, stats=service.stats())
        png = (tmp_path / "demo" / "queries" / "query-0-label-3.png").read_bytes()
        response = TestClient(create_app(service)).post(
            "/search?k=5", files={"image": ("q.png", png)}
        )
        served["hits"] = response.json()["hits"]

    monkeypatch.setattr(hashlearn.serve.app, "run_server", fake_run_server)
    argv = ["demo", "--serve", "--methods", "lsh", "--bits", "16", "--quiet"]
    argv += ["--serve-dir", str(tmp_path / "demo"), "--port", "8123"]
    assert main(argv) == 0
    assert served["port"] == 8123 and served["host"] == "127.0.0.1"
    stats = served["stats"]
    assert (stats["items"], stats["method"], stats["bits"]) == (4500, "lsh", 16)
    assert stats["image_shape"] == [28, 28, 1] and stats["labels"] == list(range(10))
    assert len(served["hits"]) == 5 and all(hit["has_image"] for hit in served["hits"])
    assert len(list((tmp_path / "demo" / "images").glob("*.png"))) == 4500
    assert len(list((tmp_path / "demo" / "queries").glob("*.png"))) == 20
    out = capsys.readouterr().out
    assert "open http://127.0.0.1:8123/" in out
    assert main(argv) == 0  # same settings: the folder is reused, nothing is fitted again
    assert "reusing" in capsys.readouterr().out


def test_serve_command_reports_bad_files(tmp_path, capsys):
    from hashlearn.cli import main

    assert main(["serve", "--model", str(tmp_path / "none"), "--index", "x"]) == 2
    assert "model file not found" in capsys.readouterr().err
