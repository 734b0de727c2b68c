"""Item metadata that could not be answered are refused when written (issue 18, item 1): one
``POST /items`` with metadata nested 256+ levels deep was stored (201), and from then on reading
that item, any page of ``GET /items`` holding it and every search returning it answered 500
("Maximum serialization depth exceeded"), across restarts."""

from __future__ import annotations

import json
import sqlite3
import warnings

import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")

with warnings.catch_warnings():  # starlette's notice about its test client's HTTP library
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

from _serve_support import AUTH, TOKEN, open_test_service, png_bytes
from hashlearn.serve import create_app

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


def nested(depth):
    """``{"a": {"a": ... {}}}``, ``depth`` objects deep."""
    return json.loads('{"a": ' * (depth - 1) + "{}" + "}" * (depth - 1))


def nested_text(depth):
    return '{"a": ' * (depth - 1) + "{}" + "}" * (depth - 1)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        # the body is read by the bounded reader (64 levels), the metadata checked (32 levels)
        (
            '{"items": [{"code_hex": "0000", "metadata": ' + nested_text(256) + "}]}",
            "the request body is nested deeper than 64 levels",
        ),
        (
            '{"items": [{"code_hex": "0000", "metadata": ' + nested_text(40) + "}]}",
            "metadata is nested deeper than 32 levels",
        ),
        ('{"items": [{"code_hex": "0000", "metadata": {"x": "\\udc00"}}]}', "lone surrogate"),
    ],
    ids=["256-levels", "40-levels", "lone-surrogate"],
)
def test_metadata_that_could_not_be_answered_are_refused(client, body, words):
    added = client.post(
        "/items", content=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert added.status_code == 400, added.text
    assert words in added.json()["error"]
    assert client.get("/items?limit=1000&offset=550").status_code == 200


def test_metadata_of_a_form_are_bounded_too(files, client):
    added = client.post(
        "/items",
        files={"image": ("a.png", png_bytes(files["X"][0]))},
        data={"metadata": nested_text(300)},
        headers=AUTH,
    )
    assert added.status_code == 400, added.text
    assert "the form field 'metadata' is nested deeper than 32 levels" in added.json()["error"]


def test_metadata_at_the_depth_limit_are_stored_and_answered(client):
    added = client.post(
        "/items",
        json={"items": [{"code_hex": "0f00", "metadata": nested(32)}]},
        headers=AUTH,
    )
    assert added.status_code == 201, added.text
    item_id = added.json()["items"][0]["id"]
    assert client.get(f"/items/{item_id}").json()["metadata"] == nested(32)
    assert client.post("/search?radius=0", json={"code_hex": "0f00"}).status_code == 200


def test_a_row_stored_before_the_check_does_not_break_reads(files, tmp_path, caplog):
    """A row written by an older hashlearn with metadata 300 levels deep: the service starts,
    logs it, and answers the item (without its metadata) instead of 500."""
    data = tmp_path / "data"
    service = open_test_service(files, data)
    client = TestClient(create_app(service, token=TOKEN))
    added = client.post(
        "/items", json={"items": [{"code_hex": "0f00", "metadata": {"n": 1}}]}, headers=AUTH
    )
    item_id = added.json()["items"][0]["id"]
    service.close()
    with sqlite3.connect(data / "items.sqlite3") as db:
        db.execute("UPDATE items SET metadata = ? WHERE id = ?", (nested_text(300), item_id))
    db.close()

    with caplog.at_level("WARNING", logger="hashlearn.serve"):
        service = open_test_service(files, data)
    try:
        assert f"item {item_id} of the store" in caplog.text
        assert "nested deeper than 128 levels" in caplog.text
        client = TestClient(create_app(service, token=TOKEN))
        item = client.get(f"/items/{item_id}")
        assert item.status_code == 200 and item.json()["metadata"] is None
        assert client.get("/items?limit=1000&offset=550").status_code == 200
        found = client.post("/search?radius=0", json={"code_hex": "0f00"})
        assert found.status_code == 200
        assert item_id in [hit["id"] for hit in found.json()["hits"]]
    finally:
        service.close()
