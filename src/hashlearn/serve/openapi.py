"""The service's OpenAPI schema, made to match what the service answers.

FastAPI documents a 422 ``HTTPValidationError`` on every route with parameters, but the service
answers invalid requests with 400 and ``{"error": ...}`` (:mod:`hashlearn.serve.http_errors`);
and the request bodies the routes read by hand embed pydantic schemas whose ``$defs`` FastAPI does
not lift into ``components``. :func:`service_openapi` builds the schema once with both fixed:
every ``$ref`` resolves inside the document, and every documented error is one the service gives.
"""

from __future__ import annotations

from typing import Any

__all__ = ["service_openapi", "unresolved_refs"]

_COMPONENTS = "#/components/schemas/"
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")


def service_openapi(app: Any) -> dict[str, Any]:
    """The OpenAPI document of ``app`` (a FastAPI application), cached on it.

    Inline ``$defs`` are moved into ``components/schemas`` (their ``$ref`` rewritten), FastAPI's
    automatic 422 answers are replaced by the service's 400 ``ErrorResponse``, and the schemas of
    those 422 answers are dropped.

    Raises
    ------
    RuntimeError
        A ``$ref`` still points outside the document (a bug of the schema, found at first use).
    """
    if app.openapi_schema is not None:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    _hoist_defs(schema, components)
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            _replace_validation_answer(operation.get("responses", {}))
    for name in _FASTAPI_VALIDATION:
        components.pop(name, None)
    missing = unresolved_refs(schema)
    if missing:
        raise RuntimeError(f"the OpenAPI schema refers to undefined schemas: {sorted(missing)}")
    app.openapi_schema = schema
    return schema


def unresolved_refs(schema: dict[str, Any]) -> set[str]:
    """The ``$ref`` values of ``schema`` that do not name a schema in its ``components``."""
    defined = set(schema.get("components", {}).get("schemas", {}))
    return {
        ref
        for ref in _refs(schema)
        if not (ref.startswith(_COMPONENTS) and ref[len(_COMPONENTS) :] in defined)
    }


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        for value in node.values():
            found += _refs(value)
        return found
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def _hoist_defs(node: Any, components: dict[str, Any]) -> None:
    """Move every ``$defs`` under ``node`` into ``components``; rewrite ``#/$defs/X`` refs."""
    if isinstance(node, dict):
        for name, definition in node.pop("$defs", {}).items():
            components.setdefault(name, definition)
            _hoist_defs(definition, components)
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            node["$ref"] = _COMPONENTS + ref[len("#/$defs/") :]
        for value in node.values():
            _hoist_defs(value, components)
    elif isinstance(node, list):
        for value in node:
            _hoist_defs(value, components)


def _replace_validation_answer(responses: dict[str, Any]) -> None:
    """FastAPI's 422 (validation error) -> the 400 ``ErrorResponse`` the service gives instead."""
    answer = responses.get("422")
    if answer is None:
        return
    schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
    if schema.get("$ref") != _COMPONENTS + "HTTPValidationError":
        return  # a 422 the route itself declares (a stored image that cannot be shown)
    del responses["422"]
    responses.setdefault(
        "400",
        {
            "description": "Bad Request",
            "content": {"application/json": {"schema": {"$ref": _COMPONENTS + "ErrorResponse"}}},
        },
    )
