"""The items: ``GET /items`` (a page or a sample), ``GET /items/{id}``, ``GET /items/{id}/image``,
``GET /items/{id}/thumbnail`` (the image shrunk, cached, with an ``ETag``), and the writes ``POST /items`` and ``DELETE /items/{id}``, which need the bearer token when the
service has one (401 without a token, 403 with a wrong one)."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request, Security
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from hashlearn.encoding import TooLargeError
from hashlearn.serve.decoding import encode_image_file
from hashlearn.serve.errors import (
    AuthenticationError,
    ItemNotFoundError,
    PermissionDeniedError,
    UnsupportedMediaTypeError,
)
from hashlearn.serve.http_errors import error_responses
from hashlearn.serve.limits import ID_PATTERN, MAX_ID, parse_item_id
from hashlearn.serve.request_parsing import (
    exactly_one,
    form_item,
    image_bytes_from_base64,
    media_type,
    parse_json,
    read_form,
)
from hashlearn.serve.schemas import (
    AddRequest,
    AddResponse,
    Item,
    ItemPage,
    with_one_of,
    with_vector_length,
)
from hashlearn.serve.service import SearchService
from hashlearn.serve.writes import NewItem

__all__ = ["add_item_routes"]

# Documents bearer authentication in the OpenAPI schema; the token itself is checked by the write
# routes (401 without a token, 403 with a wrong one).
_BEARER = HTTPBearer(auto_error=False, description="needed for writes when the service has a token")


def _add_body(n_features: int | None) -> dict[str, Any]:
    """The OpenAPI request body of ``POST /items``: it is read by hand, as JSON or a form."""
    as_json = AddRequest.model_json_schema()
    item = with_vector_length(as_json["$defs"]["ItemIn"], n_features)
    with_one_of(item, ("vector", "code_hex", "code_base64", "image_base64"))
    return {
        "content": {
            "application/json": {"schema": as_json},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {
                        "image": {"type": "string", "format": "binary"},
                        "id": {"type": "integer", "minimum": 0, "maximum": MAX_ID},
                        "label": {"type": "integer", "minimum": 1 - 2**63, "maximum": 2**63 - 1},
                        "metadata": {"type": "string", "description": "a JSON object"},
                    },
                }
            },
        },
        "required": True,
    }


_CACHE_CONTROL = "private, max-age=60"
"""Images and thumbnails: kept a minute, then revalidated (an id's image may change)."""


def _item_id() -> Any:
    """The ``{item_id}`` path parameter: its pattern is stated in the schema and checked by
    :func:`~hashlearn.serve.limits.parse_item_id` (400 naming the rule, not a bare pattern)."""
    return Path(
        description=f"decimal item id, 0 to {MAX_ID}",
        json_schema_extra={"pattern": f"^{ID_PATTERN}$"},
    )


def add_item_routes(app: Any, service: SearchService, token: str | None) -> None:
    """Add the item routes of ``service`` to ``app``; writes need ``token`` unless it is None."""
    _add_reads(app, service)
    _add_writes(app, service, token)


def _add_reads(app: Any, service: SearchService) -> None:
    errors = error_responses(400, 404, 408, 413, 415, 503)

    @app.get("/items", response_model=ItemPage, summary="items by ascending id")
    def list_items(
        offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
        # the bound as a default, not in the annotation (a string, read in module scope)
        limit: int = Query(24, ge=1, le=service.limits.max_k),
        sample_seed: Annotated[
            int | None,
            Query(ge=0, le=MAX_ID, description="draw a random sample with this seed instead"),
        ] = None,
    ) -> Any:
        return service.list_items(offset, limit, sample_seed)

    @app.get("/items/{item_id}", response_model=Item, responses=errors)
    def get_item(item_id: str = _item_id()) -> Any:
        return service.get_item(parse_item_id(item_id))

    @app.get(
        "/items/{item_id}/image",
        response_class=Response,
        responses={**errors, 200: {"content": {"image/png": {}, "image/jpeg": {}}}},
    )
    def get_image(item_id: str = _item_id()) -> Any:
        path, media = service.image_of(parse_item_id(item_id))
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # deleted meanwhile
            raise ItemNotFoundError(f"item {item_id} has no image") from None
        return Response(data, media_type=media, headers={"Cache-Control": _CACHE_CONTROL})

    @app.get(
        "/items/{item_id}/thumbnail",
        response_class=Response,
        responses={
            **error_responses(400, 404, 408, 422, 503),
            200: {"content": {"image/png": {}, "image/jpeg": {}}},
            304: {"description": "not modified (the If-None-Match tag is current)"},
        },
        summary="the item's image, at most 256 px on its longest side and 48 KiB",
    )
    def get_thumbnail(request: Request, item_id: str = _item_id()) -> Any:
        item = parse_item_id(item_id)
        if_none_match = request.headers.get("if-none-match")
        if if_none_match is not None:
            etag = service.thumbnail_etag(item)
            if etag in (tag.strip() for tag in if_none_match.split(",")) or if_none_match == "*":
                return Response(
                    status_code=304, headers={"ETag": etag, "Cache-Control": _CACHE_CONTROL}
                )
        thumbnail = service.thumbnail_of(item)
        return Response(
            thumbnail.data,
            media_type=thumbnail.media_type,
            headers={"ETag": thumbnail.etag, "Cache-Control": _CACHE_CONTROL},
        )


def _add_writes(app: Any, service: SearchService, token: str | None) -> None:
    limits = service.limits
    errors = error_responses(400, 401, 403, 404, 408, 409, 413, 415, 503, 507)

    def check_token(
        request: Request,
        _: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)],
    ) -> None:
        if token is None:
            return
        header = request.headers.get("authorization")
        if not header:
            raise AuthenticationError(
                "writes need a bearer token: send the header 'Authorization: Bearer TOKEN'"
            )
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthenticationError("the Authorization header must be 'Bearer TOKEN'")
        if not hmac.compare_digest(value.strip().encode(), token.encode()):
            raise PermissionDeniedError("the bearer token is not the service's token")

    def new_item(item: Any) -> NewItem:
        encoder = service.encoder
        kind = exactly_one(
            {
                name: getattr(item, name)
                for name in ("vector", "code_hex", "code_base64", "image_base64")
            },
            "an item",
        )
        image = None
        if kind == "image_base64":
            # the pixels are let go once coded: a request's images are not all held at once
            code, image = encode_image_file(
                image_bytes_from_base64(item.image_base64, limits.max_image_bytes),
                encoder,
                limits,
                service.decode_budget,
            )
        elif kind == "vector":
            code = encoder.encode_vector(item.vector)
        elif kind == "code_hex":
            code = encoder.code_from_hex(item.code_hex)
        else:
            code = encoder.code_from_base64(item.code_base64)
        return NewItem(code=code, id=item.id, label=item.label, metadata=item.metadata, image=image)

    def add_items(items: list[Any]) -> dict[str, Any]:
        if len(items) > limits.max_items_per_request:
            raise TooLargeError(
                f"{len(items)} items in one request; the limit is {limits.max_items_per_request}"
            )
        return {"items": service.add([new_item(item) for item in items])}

    @app.post(
        "/items",
        status_code=201,
        response_model=AddResponse,
        responses=errors,
        dependencies=[Depends(check_token)],
        summary="add items (durable before the answer): images, vectors or codes",
        openapi_extra={"requestBody": _add_body(service.encoder.n_features)},
    )
    async def add(request: Request) -> Any:
        media = media_type(request)
        if media == "application/json":
            payload = parse_json(await request.body(), AddRequest)
            items = payload.items
        elif media == "multipart/form-data":
            data, fields = await read_form(request, ("id", "label", "metadata"))
            items = [form_item(data, fields)]
        else:
            raise UnsupportedMediaTypeError(
                "POST /items reads application/json ({'items': [...]}) or multipart/form-data "
                f"(an 'image' file), not {media or 'a body without Content-Type'!r}"
            )
        return await run_in_threadpool(add_items, items)

    @app.delete(
        "/items/{item_id}",
        responses=errors,
        dependencies=[Depends(check_token)],
        summary="delete an item (durable before the answer)",
    )
    def delete(item_id: str = _item_id()) -> dict[str, int]:
        item = parse_item_id(item_id)
        service.delete(item)
        return {"deleted": item}
