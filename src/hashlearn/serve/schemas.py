"""Request and response bodies of the search service's HTTP API (pydantic models, in OpenAPI)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hashlearn.serve.limits import MAX_ID

__all__ = [
    "AddRequest",
    "AddResponse",
    "AddedItem",
    "ErrorResponse",
    "Health",
    "Hit",
    "Item",
    "ItemIn",
    "ItemPage",
    "ItemSummary",
    "SearchRequest",
    "SearchResponse",
    "Stats",
    "with_one_of",
    "with_vector_length",
]

_MAX_VECTOR = 1_000_000
_INT64 = 2**63


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SearchRequest(_Strict):
    """A JSON search: exactly one query (vector, code, base64 image or stored item), and ``k`` or
    ``radius`` (here or in the query string)."""

    vector: list[float] | None = Field(
        None,
        max_length=_MAX_VECTOR,
        description="feature vector; for image models the flattened (h, w, c) image in [0, 1]",
    )
    code_hex: str | None = Field(None, description="packed code in hex, byte 0 first")
    code_base64: str | None = Field(None, description="packed code in standard base64")
    image_base64: str | None = Field(None, description="PNG or JPEG file in standard base64")
    id: int | None = Field(
        None, ge=0, le=MAX_ID, description="search with the code of this stored item"
    )
    k: int | None = Field(None, description="number of neighbours (default 10)")
    radius: int | None = Field(
        None, description="return every item within this Hamming distance (instead of k)"
    )


class ItemIn(_Strict):
    """One item to add: exactly one of ``vector``, ``code_hex``, ``code_base64``, ``image_base64``."""

    id: int | None = Field(
        None, ge=0, le=MAX_ID, description="id to give it (default: the next free id)"
    )
    vector: list[float] | None = Field(None, max_length=_MAX_VECTOR)
    code_hex: str | None = None
    code_base64: str | None = None
    image_base64: str | None = Field(None, description="PNG or JPEG file; stored and served")
    label: int | None = Field(None, gt=-_INT64, lt=_INT64, description="class label (int64)")
    metadata: dict[str, Any] | None = Field(None, description="any JSON object")


class AddRequest(_Strict):
    """Items to add in one durable, all-or-nothing write."""

    items: list[ItemIn]


class Hit(BaseModel):
    id: int
    distance: int = Field(description="Hamming distance to the query")
    label: int | None
    metadata: dict[str, Any] | None
    has_image: bool


class SearchResponse(BaseModel):
    query_code: str = Field(description="the query's code in hex, byte 0 first (bit 0 = LSB)")
    query_id: int | None = Field(None, description="the stored item searched with, if any")
    query_label: int | None = Field(None, description="its label, if any")
    n_bits: int
    k: int | None = None
    radius: int | None = None
    n_found: int = Field(description="hits before any cut at max_results")
    truncated: bool
    hits: list[Hit] = Field(description="by distance, ties by id")


class Item(BaseModel):
    id: int
    code: str = Field(description="code in hex")
    label: int | None
    metadata: dict[str, Any] | None
    has_image: bool
    source: str = Field(description="'base' (from the index file) or 'added'")


class ItemSummary(BaseModel):
    id: int
    label: int | None
    metadata: dict[str, Any] | None
    has_image: bool


class ItemPage(BaseModel):
    total: int
    offset: int
    items: list[ItemSummary]


class AddedItem(BaseModel):
    id: int
    code: str


class AddResponse(BaseModel):
    items: list[AddedItem]


class Stats(BaseModel):
    items: int
    base_items: int
    added_items: int
    deleted_base_items: int
    bits: int
    method: str
    index_type: str
    input_kind: str
    image_shape: list[int] | None
    n_features: int | None
    labels: list[int]
    has_labels: bool = Field(
        description="whether any item has a label (the page hides labels if not)"
    )
    limits: dict[str, Any]
    writes_need_token: bool


class Health(BaseModel):
    status: str
    items: int


class ErrorResponse(BaseModel):
    error: str = Field(description="what is wrong with the request")


def with_vector_length(schema: dict[str, Any], n_features: int | None) -> dict[str, Any]:
    """``schema`` (the JSON schema of :class:`SearchRequest` or :class:`ItemIn`) with the length
    of ``vector`` set to the model's ``n_features`` (unchanged when it is not known)."""
    if n_features is None:
        return schema
    vector = schema["properties"]["vector"]
    array = next(choice for choice in vector["anyOf"] if choice.get("type") == "array")
    array.update(minItems=int(n_features), maxItems=int(n_features))
    return schema


def with_one_of(
    schema: dict[str, Any], fields: tuple[str, ...], exclusive: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``schema`` stating what the service checks by hand: exactly one of ``fields`` is given
    (present and not null), and not every field of ``exclusive`` is an integer."""
    schema["oneOf"] = [
        {"required": [name], "properties": {name: {"not": {"type": "null"}}}} for name in fields
    ]
    if exclusive:
        schema["not"] = {
            "required": list(exclusive),
            "properties": {name: {"type": "integer"} for name in exclusive},
        }
    return schema
