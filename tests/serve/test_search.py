"""Searching the service in process: by image, vector, code and stored item, within a radius,
and the pages of items; each against the library's own results."""

from __future__ import annotations

import base64
import io
import warnings

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")

with warnings.catch_warnings():  # starlette's notice about its test client's HTTP library
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient
from PIL import Image

from _serve_support import N_BITS, decoded, hits, library_search, open_test_service, png_bytes
from hashlearn.serve import create_app

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


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
    # a picture of another size than the model's input is refused, naming both sizes
    assert response.status_code == 400
    assert "the image is 64x64 grey but the model takes 8x8 grey" in response.json()["error"]
    colour = io.BytesIO()
    Image.fromarray(np.stack([grey, grey // 2, grey], axis=-1)).save(colour, "PNG")
    answer = client.post("/search", files={"image": ("d.png", colour.getvalue())})
    assert answer.status_code == 400 and "8x8 colour but the model takes 8x8 grey" in answer.text


def test_a_service_asked_to_resize_takes_other_sizes_and_colour(files, tmp_path):
    service = open_test_service(files, tmp_path / "data", resize=True)
    client = TestClient(create_app(service))
    grey = np.round(files["X"][5] * 255).astype(np.uint8)
    jpeg = io.BytesIO()
    Image.fromarray(grey).resize((64, 64)).save(jpeg, "JPEG", quality=95)
    response = client.post(
        "/search", content=jpeg.getvalue(), headers={"Content-Type": "image/jpeg"}
    )
    assert response.status_code == 200 and len(response.json()["hits"]) == 10
    colour = io.BytesIO()
    Image.fromarray(np.stack([grey, grey // 2, grey], axis=-1)).save(colour, "PNG")
    assert client.post("/search", files={"image": ("d.png", colour.getvalue())}).status_code == 200
    service.close()


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
