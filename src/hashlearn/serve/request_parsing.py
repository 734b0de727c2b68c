"""Reading request bodies: JSON validated by the schemas, multipart forms, raw image bodies.

Every malformed body is an :class:`~hashlearn.exceptions.InvalidInputError` naming the problem
(answered with 400), a body of another content type an
:class:`~hashlearn.serve.errors.UnsupportedMediaTypeError` (415).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import UploadFile

from hashlearn._json import parse_json as read_json
from hashlearn.encoding import TooLargeError
from hashlearn.exceptions import InvalidInputError
from hashlearn.serve.errors import UnsupportedMediaTypeError
from hashlearn.serve.limits import parse_item_id
from hashlearn.serve.queries import decode_base64
from hashlearn.serve.schemas import ItemIn, SearchRequest
from hashlearn.serve.writes import MAX_METADATA_DEPTH

__all__ = [
    "QUERY_FIELDS",
    "SearchQuery",
    "exactly_one",
    "form_item",
    "image_bytes_from_base64",
    "int_field",
    "media_type",
    "merge_param",
    "parse_json",
    "read_form",
    "read_search",
]


@dataclass(frozen=True)
class SearchQuery:
    """What a search request asks with: one of an image file, a vector, a code, a stored item."""

    image: bytes | None = None
    vector: list[float] | None = None
    code_hex: str | None = None
    code_base64: str | None = None
    item_id: int | None = None


QUERY_FIELDS = ("vector", "code_hex", "code_base64", "image_base64", "id")
"""The fields of a JSON search request that give the query (exactly one of them)."""


def media_type(request: Any) -> str:
    """The request's Content-Type, without parameters, lower case (``""`` without one)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def parse_json(body: bytes, model: Any) -> Any:
    """``body`` as JSON validated by the pydantic ``model``, read by the bounded reader of
    :mod:`hashlearn._json`: nested at most :data:`~hashlearn._json.MAX_DEPTH` deep, without NaN,
    Infinity, lone surrogates or repeated keys, each refused by name. (Its length is bounded
    before it is read, by ``max_body_bytes``.)"""
    if not body:
        raise InvalidInputError("the request body is empty; send a JSON object")
    payload = read_json(body, "the request body", max_bytes=len(body))
    if not isinstance(payload, dict):
        raise InvalidInputError(f"the JSON body must be an object, got {type(payload).__name__}")
    return model.model_validate(payload)


def int_field(text: Any, name: str) -> int | None:
    """An integer form field (None when absent)."""
    if text is None:
        return None
    if not isinstance(text, str) or not text.strip().lstrip("-").isdigit():
        raise InvalidInputError(f"{name} must be an integer, got {str(text)[:40]!r}")
    return int(text)


def merge_param(name: str, from_query: int | None, from_body: int | None) -> int | None:
    """A parameter given in the query string or in the body, not both."""
    if from_query is not None and from_body is not None:
        raise InvalidInputError(f"{name} is given twice, in the query string and in the body")
    return from_body if from_body is not None else from_query


async def read_form(request: Any, allowed: tuple[str, ...]) -> tuple[bytes, dict[str, str]]:
    """The ``image`` file and the other text fields of a multipart form."""
    # twice the fields and files expected, so that a repeated one is refused by its name below
    async with request.form(max_files=2, max_fields=2 * len(allowed), max_part_size=65536) as form:
        unknown = sorted(set(form.keys()) - {"image", *allowed})
        if unknown:
            raise InvalidInputError(
                f"unknown form field(s) {', '.join(map(repr, unknown))}; expected 'image' and "
                f"{', '.join(map(repr, allowed))}"
            )
        names = [name for name, _ in form.multi_items()]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise InvalidInputError(
                f"the form field(s) {', '.join(map(repr, repeated))} are given more than once; "
                "send each field once"
            )
        upload = form.get("image")
        if upload is None:
            raise InvalidInputError("the form has no 'image' file")
        if not isinstance(upload, UploadFile):
            raise InvalidInputError("the form field 'image' must be a file, got text")
        data = await upload.read()
        fields = {key: value for key, value in form.items() if key != "image"}
    if any(not isinstance(value, str) for value in fields.values()):
        raise InvalidInputError("only 'image' may be a file in the form")
    return data, fields


def exactly_one(values: dict[str, Any], what: str) -> str:
    """The name of the one value given (not None) of ``values``."""
    given = [name for name, value in values.items() if value is not None]
    if len(given) != 1:
        raise InvalidInputError(
            f"{what} needs exactly one of {', '.join(values)}; got "
            + (", ".join(given) if given else "none")
        )
    return given[0]


def image_bytes_from_base64(text: str, max_bytes: int) -> bytes:
    """The image file of a base64 field, refused by its length before decoding when too long."""
    if len(text) > 4 * (max_bytes // 3 + 1):
        raise TooLargeError(f"image_base64 decodes to more than the limit of {max_bytes} bytes")
    return decode_base64(text, "image_base64")


async def read_search(
    request: Any, max_image_bytes: int
) -> tuple[SearchQuery, int | None, int | None]:
    """The query and the body's ``k`` and ``radius`` of a ``POST /search``."""
    media = media_type(request)
    if media == "multipart/form-data":
        data, fields = await read_form(request, ("k", "radius"))
        return (
            SearchQuery(image=data),
            int_field(fields.get("k"), "k"),
            int_field(fields.get("radius"), "radius"),
        )
    if media in ("image/png", "image/jpeg"):
        return SearchQuery(image=await request.body()), None, None
    if media == "application/json":
        payload = parse_json(await request.body(), SearchRequest)
        kind = exactly_one({name: getattr(payload, name) for name in QUERY_FIELDS}, "a search")
        if kind == "image_base64":
            query = SearchQuery(
                image=image_bytes_from_base64(payload.image_base64, max_image_bytes)
            )
        elif kind == "id":
            query = SearchQuery(item_id=payload.id)
        else:
            query = SearchQuery(**{kind: getattr(payload, kind)})
        return query, payload.k, payload.radius
    raise UnsupportedMediaTypeError(
        f"POST /search reads multipart/form-data (an 'image' file), image/png, image/jpeg or "
        f"application/json, not {media or 'a body without Content-Type'!r}"
    )


def form_item(data: bytes, fields: dict[str, str]) -> ItemIn:
    """An :class:`~hashlearn.serve.schemas.ItemIn` from a multipart upload."""
    metadata = None
    if fields.get("metadata") is not None:
        metadata = read_json(
            fields["metadata"],
            "the form field 'metadata'",
            max_bytes=len(fields["metadata"].encode("utf-8", "surrogatepass")),
            max_depth=MAX_METADATA_DEPTH,
        )
    item_id = fields.get("id")
    return ItemIn.model_validate(
        {
            "id": None if item_id is None else parse_item_id(item_id.strip()),
            "label": int_field(fields.get("label"), "label"),
            "metadata": metadata,
            "image_base64": base64.b64encode(data).decode("ascii"),
        }
    )
