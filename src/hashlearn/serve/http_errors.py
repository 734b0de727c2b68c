"""Errors as HTTP answers: every failure of a request becomes a status and ``{"error": message}``.

:class:`~hashlearn.exceptions.HashlearnError` answers with its ``status_code`` (400 when it has
none; see :mod:`hashlearn.serve.errors`), validation errors of FastAPI and pydantic with 400
naming the first invalid field, unknown paths and methods with 404 and 405, anything else with a
logged 500.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from hashlearn.exceptions import HashlearnError
from hashlearn.serve.schemas import ErrorResponse

__all__ = ["allowed_methods", "error_responses", "install_error_handlers", "validation_message"]

_LOG = logging.getLogger("hashlearn.serve")


_BOUNDS = {
    "greater_than_equal": (">=", "ge"),
    "less_than_equal": ("<=", "le"),
    "greater_than": (">", "gt"),
    "less_than": ("<", "lt"),
}
"""pydantic's error types of numeric bounds: the comparison and the key of its bound in ``ctx``."""


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of a route that answers ``statuses`` with an error body."""
    return {status: {"model": ErrorResponse} for status in statuses}


def validation_message(errors: list[dict[str, Any]]) -> str:
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
    bound = _BOUNDS.get(first.get("type", ""))
    if bound is not None and bound[1] in first.get("ctx", {}):  # as the service's own checks say it
        got = str(first.get("input"))[:40]
        return f"{prefix}: {field} must be {bound[0]} {first['ctx'][bound[1]]}, got {got}{more}"
    return f"{prefix}: {first.get('msg', 'invalid')}{more}"


def allowed_methods(request: Any) -> list[str]:
    """The methods some route of the request's application answers on the request's path (the
    ``Allow`` header of a 405: every route of the path, not only the first that matched it)."""
    from starlette.routing import Match

    methods: set[str] = set()
    for route in request.app.router.routes:
        if route.matches(request.scope)[0] != Match.NONE:  # PARTIAL: the path, not the method
            methods.update(getattr(route, "methods", None) or ())
    return sorted(methods)


def install_error_handlers(app: Any) -> None:
    """Answer every error of ``app`` (a FastAPI application) with a JSON ``{"error": ...}``."""

    def error(status: int, message: str, headers: dict[str, str] | None = None) -> Any:
        if status == 401:
            headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @app.exception_handler(HashlearnError)
    async def hashlearn_error(request: Any, exc: HashlearnError) -> Any:
        retry_after = getattr(exc, "retry_after", None)
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return error(getattr(exc, "status_code", 400), str(exc), headers)

    @app.exception_handler(RequestValidationError)
    async def request_validation_error(request: Any, exc: RequestValidationError) -> Any:
        return error(400, validation_message(list(exc.errors())))

    @app.exception_handler(ValidationError)
    async def body_validation_error(request: Any, exc: ValidationError) -> Any:
        return error(400, validation_message(list(exc.errors())))

    @app.exception_handler(HTTPException)
    async def http_error(request: Any, exc: HTTPException) -> Any:
        if exc.status_code == 404:
            message = f"no such endpoint: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            allowed = allowed_methods(request)
            message = (
                f"method {request.method} is not allowed on {request.url.path}; it answers "
                + ", ".join(allowed)
            )
            return error(405, message, {"Allow": ", ".join(allowed)})
        else:
            message = str(exc.detail)
        return error(exc.status_code, message, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal_error(request: Any, exc: Exception) -> Any:
        _LOG.exception("internal error on %s %s", request.method, request.url.path)
        return error(500, "internal server error")
