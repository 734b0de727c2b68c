"""Every bad request to the service answered by a 4xx with a JSON error naming the problem, and
never a 500."""

from __future__ import annotations

import base64
import io
import json
import struct
import warnings
import zlib

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")

with warnings.catch_warnings():  # starlette's notice about its test client's HTTP library
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient
from PIL import Image

from _serve_support import AUTH, open_test_service, png_bytes
from hashlearn.serve import create_app

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


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
        "the file is text, not a PNG or JPEG image: choose a PNG or JPEG file",
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
        "the file is a GIF image, not a PNG or JPEG: convert it to PNG or JPEG",
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
        "nested deeper than 64 levels",
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
        "code_hex is a 16-bit code, but this service's model makes 12-bit codes",
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
    assert "b'" not in error and 'b"' not in error  # never a Python bytes literal


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
