"""The HTTP API and the web page of the search service (FastAPI, run by uvicorn).

:func:`create_app` wraps a :class:`~hashlearn.serve.service.SearchService` in a FastAPI
application; :func:`run_server` serves it. Every answer to a bad request is a 4xx with a JSON
body ``{"error": "..."}`` naming the problem; the OpenAPI schema is at ``/openapi.json`` and the
web page at ``/`` (its scripts and styles are served from ``/static``, nothing from elsewhere).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from hashlearn._version import __version__
from hashlearn.exceptions import HashlearnError, InvalidInputError
from hashlearn.serve import schemas
from hashlearn.serve.errors import (
    AuthenticationError,
    ItemNotFoundError,
    PermissionDeniedError,
    TooLargeError,
    UnsupportedMediaTypeError,
)
from hashlearn.serve.images import decode_base64, read_image
from hashlearn.serve.limits import MAX_ID, parse_item_id
from hashlearn.serve.service import NewItem, SearchService

__all__ = ["STATIC_DIR", "create_app", "run_server"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
"""The web page's files (``index.html``, ``app.js``, ``style.css``)."""

_LOG = logging.getLogger("hashlearn.serve")
# Documents bearer authentication in the OpenAPI schema; the token itself is checked by the write
# routes (401 without a token, 403 with a wrong one).
_BEARER = HTTPBearer(auto_error=False, description="needed for writes when the service has a token")
_PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


# -- middleware (plain ASGI) ---------------------------------------------------------------------


class _BodyTooLarge(TooLargeError):
    pass


async def _send_json(send: Any, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _LimitBodyMiddleware:
    """Refuse request bodies over ``max_bytes``: by Content-Length before reading, else when the
    count of received bytes passes it (chunked uploads)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        limit = self.max_bytes
        if declared is not None:
            if not declared.isdigit():
                await _send_json(send, 400, "the Content-Length header is not a number")
                return
            if int(declared) > limit:
                await _send_json(
                    send, 413, f"the request body is {int(declared)} bytes; the limit is {limit}"
                )
                return
        received = 0

        async def counting_receive() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(f"the request body is over the limit of {limit} bytes")
            return message

        await self.app(scope, counting_receive, send)


class _TimeoutMiddleware:
    """Answer 408 (body still arriving) or 503 (still processing) after ``seconds``."""

    def __init__(self, app: Any, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = {"started": False, "receiving": False}

        async def tracking_receive() -> Any:
            # not reset in a ``finally``: the timeout cancels this wait, and must still see it
            state["receiving"] = True
            message = await receive()
            state["receiving"] = False
            return message

        async def tracking_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await asyncio.wait_for(self.app(scope, tracking_receive, tracking_send), self.seconds)
        except asyncio.TimeoutError:
            if state["started"]:
                return  # part of the answer is out; the server closes the connection
            if state["receiving"]:
                await _send_json(
                    send, 408, f"the request body did not arrive within {self.seconds:g} s"
                )
            else:
                await _send_json(
                    send, 503, f"the request took longer than {self.seconds:g} s; try again"
                )


class _SecurityHeadersMiddleware:
    """``X-Content-Type-Options: nosniff`` on every answer."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-content-type-options", b"nosniff"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers if scope["type"] == "http" else send)


# -- errors ----------------------------------------------------------------------------------------


def _validation_message(errors: list[dict[str, Any]]) -> str:
    """One line naming the first invalid field of a pydantic/FastAPI validation error."""
    if not errors:
        return "invalid request"
    first = errors[0]
    where = [str(part) for part in first.get("loc", ()) if part != "body"]
    place = {"query": "query parameter", "path": "path parameter"}.get(where[0] if where else "")
    if place:
        where = where[1:]
    field = ".".join(where) or "body"
    prefix = f"{place} {field!r}" if place else f"field {field!r}"
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"{prefix}: {first.get('msg', 'invalid')}{more}"


def _install_error_handlers(app: Any) -> None:
    def error(status: int, message: str) -> Any:
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @app.exception_handler(HashlearnError)
    async def hashlearn_error(request: Any, exc: HashlearnError) -> Any:
        return error(getattr(exc, "status_code", 400), str(exc))

    @app.exception_handler(RequestValidationError)
    async def request_validation_error(request: Any, exc: RequestValidationError) -> Any:
        return error(400, _validation_message(list(exc.errors())))

    @app.exception_handler(ValidationError)
    async def body_validation_error(request: Any, exc: ValidationError) -> Any:
        return error(400, _validation_message(list(exc.errors())))

    @app.exception_handler(HTTPException)
    async def http_error(request: Any, exc: HTTPException) -> Any:
        if exc.status_code == 404:
            message = f"no such endpoint: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        return error(exc.status_code, message)

    @app.exception_handler(Exception)
    async def internal_error(request: Any, exc: Exception) -> Any:
        _LOG.exception("internal error on %s %s", request.method, request.url.path)
        return error(500, "internal server error")


# -- reading requests ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Query:
    """What a search request asks with: one of an image file, a vector, a code, a stored item."""

    image: bytes | None = None
    vector: list[float] | None = None
    code_hex: str | None = None
    code_base64: str | None = None
    item_id: int | None = None


_QUERY_FIELDS = ("vector", "code_hex", "code_base64", "image_base64", "id")


def _media_type(request: Any) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _parse_json(body: bytes, model: Any) -> Any:
    """``body`` as JSON validated by the pydantic ``model``; NaN and Infinity are read as floats
    (so a vector holding them is refused by name, not as a syntax error)."""
    if not body:
        raise InvalidInputError("the request body is empty; send a JSON object")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InvalidInputError(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise InvalidInputError(f"the JSON body must be an object, got {type(payload).__name__}")
    return model.model_validate(payload)


def _int_field(text: Any, name: str) -> int | None:
    if text is None:
        return None
    if not isinstance(text, str) or not text.strip().lstrip("-").isdigit():
        raise InvalidInputError(f"{name} must be an integer, got {str(text)[:40]!r}")
    return int(text)


def _merge(name: str, from_query: int | None, from_body: int | None) -> int | None:
    if from_query is not None and from_body is not None:
        raise InvalidInputError(f"{name} is given twice, in the query string and in the body")
    return from_body if from_body is not None else from_query


async def _read_form(request: Any, allowed: tuple[str, ...]) -> tuple[bytes, dict[str, str]]:
    """The ``image`` file and the other text fields of a multipart form."""
    async with request.form(max_files=1, max_fields=len(allowed), max_part_size=65536) as form:
        unknown = sorted(set(form.keys()) - {"image", *allowed})
        if unknown:
            raise InvalidInputError(
                f"unknown form field(s) {', '.join(map(repr, unknown))}; expected 'image' and "
                f"{', '.join(map(repr, allowed))}"
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


def _exactly_one(values: dict[str, Any], what: str) -> str:
    given = [name for name, value in values.items() if value is not None]
    if len(given) != 1:
        raise InvalidInputError(
            f"{what} needs exactly one of {', '.join(values)}; got "
            + (", ".join(given) if given else "none")
        )
    return given[0]


def _image_bytes_from_base64(text: str, max_bytes: int) -> bytes:
    if len(text) > 4 * (max_bytes // 3 + 1):
        raise TooLargeError(f"image_base64 decodes to more than the limit of {max_bytes} bytes")
    return decode_base64(text, "image_base64")


async def _read_search(request: Any, max_image_bytes: int) -> tuple[_Query, int | None, int | None]:
    """The query and the body's ``k`` and ``radius`` of a ``POST /search``."""
    media = _media_type(request)
    if media == "multipart/form-data":
        data, fields = await _read_form(request, ("k", "radius"))
        return (
            _Query(image=data),
            _int_field(fields.get("k"), "k"),
            _int_field(fields.get("radius"), "radius"),
        )
    if media in ("image/png", "image/jpeg"):
        return _Query(image=await request.body()), None, None
    if media == "application/json":
        payload = _parse_json(await request.body(), schemas.SearchRequest)
        kind = _exactly_one({name: getattr(payload, name) for name in _QUERY_FIELDS}, "a search")
        if kind == "image_base64":
            query = _Query(image=_image_bytes_from_base64(payload.image_base64, max_image_bytes))
        elif kind == "id":
            query = _Query(item_id=payload.id)
        else:
            query = _Query(**{kind: getattr(payload, kind)})
        return query, payload.k, payload.radius
    raise UnsupportedMediaTypeError(
        f"POST /search reads multipart/form-data (an 'image' file), image/png, image/jpeg or "
        f"application/json, not {media or 'a body without Content-Type'!r}"
    )


# -- the application -------------------------------------------------------------------------------


def create_app(service: SearchService, *, token: str | None = None) -> Any:
    """The FastAPI application serving ``service``.

    Parameters
    ----------
    service : SearchService
    token : str or None
        Bearer token that writes (``POST /items``, ``DELETE /items/{id}``) must carry; None
        leaves writes open. Reads are always open.

    Returns
    -------
    fastapi.FastAPI

    Raises
    ------
    InvalidInputError
        ``token`` is empty.
    """
    if token is not None and not token.strip():
        raise InvalidInputError("the bearer token is empty")
    app = FastAPI(
        title="hashlearn search service",
        version=__version__,
        description="Search a hashlearn index by image, feature vector or code; add and delete "
        "items. Errors are JSON objects {'error': message}.",
        docs_url=None,  # the interactive docs load scripts from a CDN; the schema is enough
        redoc_url=None,
    )
    _install_error_handlers(app)
    _add_page_routes(app)
    _add_read_routes(app, service, writes_need_token=token is not None)
    _add_write_routes(app, service, token)
    limits = service.limits
    app.add_middleware(_LimitBodyMiddleware, max_bytes=limits.max_body_bytes)
    app.add_middleware(_TimeoutMiddleware, seconds=limits.request_timeout)
    app.add_middleware(_SecurityHeadersMiddleware)
    return app


def _add_page_routes(app: Any) -> None:
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index_page() -> Any:
        return HTMLResponse(page, headers={"Content-Security-Policy": _PAGE_POLICY})


def _add_read_routes(app: Any, service: SearchService, *, writes_need_token: bool) -> None:
    errors = {status: {"model": schemas.ErrorResponse} for status in (400, 404, 408, 413, 415, 503)}
    limits = service.limits

    @app.get("/health", response_model=schemas.Health, summary="liveness and item count")
    def health() -> Any:
        return {"status": "ok", "items": service.index.ntotal}

    @app.get("/stats", response_model=schemas.Stats, summary="items, bits, method, index type")
    def stats() -> Any:
        return {**service.stats(), "writes_need_token": writes_need_token}

    def run_search(query: _Query, k: int | None, radius: int | None) -> dict[str, Any]:
        query_id = query_label = None
        encoder = service.encoder
        if query.image is not None:
            upload = read_image(
                query.image,
                max_bytes=limits.max_image_bytes,
                max_pixels=limits.max_image_pixels,
            )
            code = encoder.encode_image(upload.image)
        elif query.vector is not None:
            code = encoder.encode_vector(query.vector)
        elif query.code_hex is not None:
            code = encoder.code_from_hex(query.code_hex)
        elif query.code_base64 is not None:
            code = encoder.code_from_base64(query.code_base64)
        else:
            item = service.get_item(parse_item_id(query.item_id))
            query_id, query_label = item["id"], item["label"]
            code = encoder.code_from_hex(item["code"])
        result = service.search(code, k=k, radius=radius)
        return {**result, "query_id": query_id, "query_label": query_label}

    search_body = {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {
                        "image": {"type": "string", "format": "binary"},
                        "k": {"type": "integer"},
                        "radius": {"type": "integer"},
                    },
                }
            },
            "application/json": {"schema": schemas.SearchRequest.model_json_schema()},
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
        },
        "required": True,
    }

    @app.post(
        "/search",
        response_model=schemas.SearchResponse,
        responses=errors,
        summary="nearest items of an image, a feature vector, a code or a stored item",
        openapi_extra={"requestBody": search_body},
    )
    async def search(
        request: Request,
        k: Annotated[int | None, Query(description="number of neighbours (default 10)")] = None,
        radius: Annotated[
            int | None, Query(description="every item within this Hamming distance")
        ] = None,
    ) -> Any:
        query, body_k, body_radius = await _read_search(request, limits.max_image_bytes)
        return await run_in_threadpool(
            run_search, query, _merge("k", k, body_k), _merge("radius", radius, body_radius)
        )

    @app.get("/items", response_model=schemas.ItemPage, summary="items by ascending id")
    def list_items(
        offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
        limit: Annotated[int, Query(ge=1)] = 24,
        sample_seed: Annotated[
            int | None,
            Query(ge=0, le=MAX_ID, description="draw a random sample with this seed instead"),
        ] = None,
    ) -> Any:
        return service.list_items(offset, limit, sample_seed)

    @app.get("/items/{item_id}", response_model=schemas.Item, responses=errors)
    def get_item(item_id: str) -> Any:
        return service.get_item(parse_item_id(item_id))

    @app.get(
        "/items/{item_id}/image",
        response_class=Response,
        responses={**errors, 200: {"content": {"image/png": {}, "image/jpeg": {}}}},
    )
    def get_image(item_id: str) -> Any:
        path, media_type = service.image_of(parse_item_id(item_id))
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # deleted meanwhile
            raise ItemNotFoundError(f"item {item_id} has no image") from None
        return Response(
            data, media_type=media_type, headers={"Cache-Control": "private, max-age=60"}
        )


def _add_write_routes(app: Any, service: SearchService, token: str | None) -> None:
    limits = service.limits
    errors = {
        status: {"model": schemas.ErrorResponse}
        for status in (400, 401, 403, 404, 408, 409, 413, 415, 503)
    }

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
        kind = _exactly_one(
            {
                name: getattr(item, name)
                for name in ("vector", "code_hex", "code_base64", "image_base64")
            },
            "an item",
        )
        image = None
        if kind == "image_base64":
            image = read_image(
                _image_bytes_from_base64(item.image_base64, limits.max_image_bytes),
                max_bytes=limits.max_image_bytes,
                max_pixels=limits.max_image_pixels,
            )
            code = encoder.encode_image(image.image)
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

    add_body = {
        "content": {
            "application/json": {"schema": schemas.AddRequest.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {
                        "image": {"type": "string", "format": "binary"},
                        "id": {"type": "integer"},
                        "label": {"type": "integer"},
                        "metadata": {"type": "string", "description": "a JSON object"},
                    },
                }
            },
        },
        "required": True,
    }

    @app.post(
        "/items",
        status_code=201,
        response_model=schemas.AddResponse,
        responses=errors,
        dependencies=[Depends(check_token)],
        summary="add items (durable before the answer): images, vectors or codes",
        openapi_extra={"requestBody": add_body},
    )
    async def add(request: Request) -> Any:
        media = _media_type(request)
        if media == "application/json":
            payload = _parse_json(await request.body(), schemas.AddRequest)
            items = payload.items
        elif media == "multipart/form-data":
            data, fields = await _read_form(request, ("id", "label", "metadata"))
            items = [_form_item(data, fields)]
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
    def delete(item_id: str) -> dict[str, int]:
        item = parse_item_id(item_id)
        service.delete(item)
        return {"deleted": item}


def _form_item(data: bytes, fields: dict[str, str]) -> Any:
    """An :class:`~hashlearn.serve.schemas.ItemIn` from a multipart upload."""
    import base64

    metadata = None
    if fields.get("metadata") is not None:
        try:
            metadata = json.loads(fields["metadata"])
        except (ValueError, RecursionError):
            raise InvalidInputError("the form field 'metadata' is not valid JSON") from None
    item_id = fields.get("id")
    return schemas.ItemIn.model_validate(
        {
            "id": None if item_id is None else parse_item_id(item_id.strip()),
            "label": _int_field(fields.get("label"), "label"),
            "metadata": metadata,
            "image_base64": base64.b64encode(data).decode("ascii"),
        }
    )


def run_server(
    service: SearchService,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    log_level: str = "info",
    access_log: bool = True,
) -> None:
    """Serve ``service`` with uvicorn until interrupted (Ctrl-C or SIGTERM).

    Parameters
    ----------
    service : SearchService
    host, port : where to listen (default 127.0.0.1:8000, this machine only).
    token : str or None
        Bearer token required for writes.
    log_level : str
        uvicorn's log level.
    access_log : bool
        Log one line per request.
    """
    import uvicorn

    app = create_app(service, token=token)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=access_log,
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run()
