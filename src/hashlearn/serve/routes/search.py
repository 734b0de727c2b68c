"""``POST /search``: the nearest items of an image, a feature vector, a code or a stored item."""

from __future__ import annotations

from typing import Any

from fastapi import Query, Request
from starlette.concurrency import run_in_threadpool

from hashlearn.serve.decoding import encode_image_file
from hashlearn.serve.http_errors import error_responses
from hashlearn.serve.limits import ServeLimits, parse_item_id
from hashlearn.serve.request_parsing import QUERY_FIELDS, SearchQuery, merge_param, read_search
from hashlearn.serve.schemas import (
    SearchRequest,
    SearchResponse,
    with_one_of,
    with_vector_length,
)
from hashlearn.serve.service import SearchService

__all__ = ["add_search_routes"]


def _search_body(limits: ServeLimits, n_features: int | None) -> dict[str, Any]:
    """The OpenAPI request body of ``POST /search``: it is read by hand, in four forms; ``k`` and
    ``radius`` carry the service's bounds."""
    bounds = {
        "k": {"type": "integer", "minimum": 1, "maximum": limits.max_k},
        "radius": {"type": "integer", "minimum": 0, "maximum": limits.max_radius},
    }
    as_json = with_vector_length(SearchRequest.model_json_schema(), n_features)
    with_one_of(as_json, QUERY_FIELDS, exclusive=("k", "radius"))
    for name, bound in bounds.items():
        as_json["properties"][name] = {**as_json["properties"][name], **_nullable(bound)}
    return {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {"image": {"type": "string", "format": "binary"}, **bounds},
                }
            },
            "application/json": {"schema": as_json},
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
        },
        "required": True,
    }


def _nullable(bound: dict[str, Any]) -> dict[str, Any]:
    """``bound`` or JSON null, as pydantic writes an optional field."""
    return {"anyOf": [bound, {"type": "null"}]}


def add_search_routes(app: Any, service: SearchService) -> None:
    """Add ``POST /search`` over ``service`` to ``app``."""
    limits = service.limits

    def run_search(query: SearchQuery, k: int | None, radius: int | None) -> dict[str, Any]:
        query_id = query_label = None
        encoder = service.encoder
        if query.image is not None:
            code, _ = encode_image_file(query.image, encoder, limits, service.decode_budget)
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

    @app.post(
        "/search",
        response_model=SearchResponse,
        responses=error_responses(400, 404, 408, 413, 415, 503),  # 503: busy, Retry-After
        summary="nearest items of an image, a feature vector, a code or a stored item",
        openapi_extra={"requestBody": _search_body(limits, service.encoder.n_features)},
    )
    async def search(
        request: Request,
        # bounds as defaults, not in the annotations: those are strings, read in module scope
        k: int | None = Query(
            None, ge=1, le=limits.max_k, description="number of neighbours (default 10)"
        ),
        radius: int | None = Query(
            None,
            ge=0,
            le=limits.max_radius,
            description="every item within this Hamming distance",
        ),
    ) -> Any:
        query, body_k, body_radius = await read_search(request, limits.max_image_bytes)
        return await run_in_threadpool(
            run_search,
            query,
            merge_param("k", k, body_k),
            merge_param("radius", radius, body_radius),
        )
