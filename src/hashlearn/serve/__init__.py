"""A search service over a trained hasher and an index: HTTP API, web page, durable writes.

``hashlearn serve --model M --index I`` (or :func:`open_service` + :func:`run_server`) serves
``POST /search`` (by image file, feature vector, code or stored item), ``POST /items``,
``DELETE /items/{id}``, ``GET /items/{id}``, ``GET /items/{id}/image``,
``GET /items/{id}/thumbnail``, ``GET /items``, ``GET /stats``, ``GET /health``, the OpenAPI schema
at ``/openapi.json`` (browsed at ``/docs``) and a web page at ``/``.

The web layer needs the ``serve`` extra (``pip install 'hashlearn[serve]'``: FastAPI, uvicorn,
python-multipart, and fastapi-offline for the Swagger UI of ``/docs``); :class:`SearchService` and
the store work without it.

>>> from hashlearn.serve import open_service, run_server
>>> service = open_service("model.safetensors", "db.hlindex", images_dir="images/")  # doctest: +SKIP
>>> run_server(service, port=8000)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
from typing import Any

from hashlearn.encoding import parse_image_shape, read_image
from hashlearn.exceptions import HashlearnError
from hashlearn.serve.errors import (
    AuthenticationError,
    ItemExistsError,
    ItemImageError,
    ItemNotFoundError,
    PermissionDeniedError,
    ServiceBusyError,
    ServiceError,
    TooLargeError,
    UnsupportedMediaTypeError,
)
from hashlearn.serve.limits import ServeLimits, parse_item_id
from hashlearn.serve.loading import load_labels, open_service
from hashlearn.serve.queries import QueryEncoder
from hashlearn.serve.service import SearchService
from hashlearn.serve.store import ItemStore, StoredItem
from hashlearn.serve.writes import NewItem

__all__ = [
    "AuthenticationError",
    "ItemExistsError",
    "ItemImageError",
    "ItemNotFoundError",
    "ItemStore",
    "NewItem",
    "PermissionDeniedError",
    "QueryEncoder",
    "SearchService",
    "ServeLimits",
    "ServiceBusyError",
    "ServiceError",
    "StoredItem",
    "TooLargeError",
    "UnsupportedMediaTypeError",
    "create_app",
    "load_labels",
    "open_service",
    "parse_image_shape",
    "parse_item_id",
    "read_image",
    "require_web_dependencies",
    "run_server",
]

_WEB_NAMES = ("create_app", "run_server")


def require_web_dependencies() -> None:
    """Check that the ``serve`` extra is installed.

    Raises
    ------
    HashlearnError
        FastAPI, uvicorn or python-multipart is missing; the message says how to install them.
    """
    missing = [
        name
        for name, modules in (
            ("fastapi", ["fastapi"]),
            ("uvicorn", ["uvicorn"]),
            ("python-multipart", ["python_multipart", "multipart"]),
        )
        if not any(importlib.util.find_spec(module) for module in modules)
    ]
    if missing:
        raise HashlearnError(
            f"the search service needs {', '.join(missing)}: pip install 'hashlearn[serve]'"
        )


def __getattr__(name: str) -> Any:
    """``create_app`` and ``run_server`` import FastAPI, so they are loaded on first use."""
    if name in _WEB_NAMES:
        require_web_dependencies()
        from hashlearn.serve import app  # imports FastAPI: only when the web layer is asked for

        return getattr(app, name)
    raise AttributeError(f"module 'hashlearn.serve' has no attribute {name!r}")
