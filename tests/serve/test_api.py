"""The service's OpenAPI schema and page, and the checks of ids, limits, image shapes and the
token."""

from __future__ import annotations

import warnings

import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")

with warnings.catch_warnings():  # starlette's notice about its test client's HTTP library
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

from _serve_support import N_BITS, decoded, hits, library_search, png_bytes
from hashlearn import create_hasher
from hashlearn.exceptions import InvalidInputError
from hashlearn.serve import ServeLimits, create_app, open_service, parse_image_shape, parse_item_id
from hashlearn.serve.limits import load_token

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


def test_openapi_schema_documents_the_api(client):
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    assert set(paths) >= {
        "/search",
        "/items",
        "/items/{item_id}",
        "/items/{item_id}/image",
        "/items/{item_id}/thumbnail",
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
    assert "/docs" not in paths  # the docs page is served, not documented


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


def test_favicon_and_api_docs_come_from_the_service(client):
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert 'rel="icon" href="/favicon.ico"' in client.get("/").text
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "connect-src 'self'" in docs.headers["content-security-policy"]
    import re

    references = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert set(references) == {
        "/favicon.ico",
        "/docs-assets/swagger-ui.css",
        "/docs-assets/swagger-ui-bundle.js",
        "/static/docs.js",
    }
    for asset in references:
        assert client.get(asset).status_code == 200, asset
    assert "validatorUrl: null" in client.get("/static/docs.js").text


def test_without_swagger_ui_the_docs_page_says_how_to_get_it(service, monkeypatch):
    from hashlearn.serve.routes import page

    monkeypatch.setattr(page, "swagger_ui_dir", lambda: None)
    client = TestClient(create_app(service))
    docs = client.get("/docs")
    assert docs.status_code == 200 and "pip install 'hashlearn[serve]'" in docs.text
    assert "/docs-assets/" not in docs.text and client.get("/docs-assets/x.js").status_code == 404


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
