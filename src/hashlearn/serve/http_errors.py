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

__all__ = ["error_responses", "install_error_handlers", "validation_message"]

_LOG = logging.getLogger("hashlearn.serve")


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
    return f"{prefix}: {first.get('msg', 'invalid')}{more}"


def install_error_handlers(app: Any) -> None:
    """Answer every error of ``app`` (a FastAPI application) with a JSON ``{"error": ...}``."""

    def error(status: int, message: str) -> Any:
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @app.exception_handler(HashlearnError)
    async def hashlearn_error(request: Any, exc: HashlearnError) -> Any:
        return error(getattr(exc, "status_code", 400), str(exc))

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
            message = f"method {request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        return error(exc.status_code, message)

    @app.exception_handler(Exception)
    async def internal_error(request: Any, exc: Exception) -> Any:
        _LOG.exception("internal error on %s %s", request.method, request.url.path)
        return error(500, "internal server error")
