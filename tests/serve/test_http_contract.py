"""The HTTP contract of the service as its schema states it: the documented answers are the ones
given, bounds are declared, every ``$ref`` resolves, 405 names what is allowed, and a form field
sent twice is refused (issue 18, item 13)."""

from __future__ import annotations

import json
import re

import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")

from _serve_support import AUTH, png_bytes
from hashlearn.serve.openapi import unresolved_refs

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


@pytest.fixture
def schema(client):
    return client.get("/openapi.json").json()


def test_schema_documents_400_not_the_422_never_given(schema, client):
    """Pins: the schema documented FastAPI's 422 where the service answers 400."""
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            if path != "/items/{item_id}/thumbnail":  # its 422: a stored image that cannot show
                assert "422" not in responses, (method, path)
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    listing = schema["paths"]["/items"]["get"]["responses"]
    assert listing["400"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ErrorResponse"
    )
    answer = client.get("/items", params={"limit": "x"})
    assert answer.status_code == 400 and "limit" in answer.json()["error"]


def test_schema_declares_the_bounds_of_k_limit_and_radius(schema, service):
    """Pins: ``k`` and ``limit`` were documented without their bounds."""
    limits = service.limits

    def parameter(path, method, name):
        found = [p for p in schema["paths"][path][method]["parameters"] if p["name"] == name]
        bound = found[0]["schema"]
        return bound.get("anyOf", [bound])[0]

    assert {"minimum": 1, "maximum": limits.max_k}.items() <= parameter(
        "/search", "post", "k"
    ).items()
    assert parameter("/search", "post", "radius")["maximum"] == limits.max_radius
    assert parameter("/items", "get", "limit")["maximum"] == limits.max_k
    body = schema["paths"]["/search"]["post"]["requestBody"]["content"]
    assert body["multipart/form-data"]["schema"]["properties"]["k"]["maximum"] == limits.max_k
    json_k = body["application/json"]["schema"]["properties"]["k"]["anyOf"][0]
    assert (json_k["minimum"], json_k["maximum"]) == (1, limits.max_k)


def test_every_ref_of_the_schema_resolves(schema):
    """Pins: ``POST /items`` referred to ``#/$defs/ItemIn``, which the document does not hold."""
    assert unresolved_refs(schema) == set()
    assert "#/$defs/" not in json.dumps(schema)
    assert "ItemIn" in schema["components"]["schemas"]


def test_405_names_every_allowed_method_in_allow(client):
    """Pins: 405 came without an ``Allow`` header."""
    answer = client.put("/items")
    assert answer.status_code == 405
    assert set(re.split(r",\s*", answer.headers["allow"])) == {"GET", "POST"}
    assert "GET" in answer.json()["error"]
    answer = client.post("/items/100")
    assert answer.status_code == 405
    assert set(re.split(r",\s*", answer.headers["allow"])) == {"DELETE", "GET"}


@pytest.mark.parametrize(
    ("path", "data", "field"),
    [
        ("/items", {"label": ["1", "2"]}, "label"),
        ("/items", {"id": ["5000", "5001"], "label": "1", "metadata": "{}"}, "id"),
        ("/search", {"k": ["3", "4"]}, "k"),
    ],
)
def test_a_form_field_sent_twice_is_refused_by_name(client, files, path, data, field):
    """Pins: duplicate multipart fields were accepted (the last one silently won)."""
    png = png_bytes(files["X"][0])
    answer = client.post(
        path, data=data, files={"image": ("q.png", png, "image/png")}, headers=AUTH
    )
    assert answer.status_code == 400, answer.text
    assert repr(field) in answer.json()["error"] and "more than once" in answer.json()["error"]


def test_a_second_image_file_is_refused_by_name(client, files):
    """Pins: duplicate multipart fields were accepted (here the file field)."""
    png = png_bytes(files["X"][0])
    answer = client.post(
        "/items",
        files=[("image", ("a.png", png, "image/png")), ("image", ("b.png", png, "image/png"))],
        headers=AUTH,
    )
    assert answer.status_code == 400 and "'image'" in answer.json()["error"]


def test_the_id_pattern_of_the_schema_is_what_the_service_accepts():
    """The ``{item_id}`` pattern the schema states accepts exactly the ids the service takes."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from hashlearn.exceptions import InvalidInputError
    from hashlearn.serve.limits import ID_PATTERN, MAX_ID, parse_item_id

    def accepted(text):
        try:
            parse_item_id(text)
        except InvalidInputError:
            return False
        return True

    edges = ["0", "007", str(MAX_ID), str(MAX_ID + 1), "9" * 19, "0" * 19, "0" * 20, "", "-1"]
    for text in edges:
        assert bool(re.fullmatch(ID_PATTERN, text)) == accepted(text), text

    @settings(max_examples=300, deadline=None)
    @given(st.integers(0, 10**20).map(str) | st.text("0123456789", max_size=21))
    def agree(text):
        assert bool(re.fullmatch(ID_PATTERN, text)) == accepted(text)

    agree()


def test_the_schema_documents_the_storage_answers_of_the_writes(schema):
    """Issue 18, items 12 and 13: writes answer 507 (disk full) and 503 (read-only store); the
    schema listed no 507 for the write routes."""
    for path, method in (("/items", "post"), ("/items/{item_id}", "delete")):
        assert {"503", "507"} <= set(schema["paths"][path][method]["responses"]), (path, method)
