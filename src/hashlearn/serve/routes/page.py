"""The web page at ``/``, its scripts and styles under ``/static``, the icon at ``/favicon.ico`` and
the interactive API docs at ``/docs``; everything from this service, nothing from elsewhere.

The API docs are Swagger UI, whose script and styles come from the ``fastapi-offline`` package
(part of the ``serve`` extra), served at ``/docs-assets``; without that package ``/docs`` says how
to install it and points to the schema at ``/openapi.json``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["STATIC_DIR", "add_page_routes", "swagger_ui_dir"]

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
"""The web page's files (``index.html``, ``app.js``, ``style.css``, ``favicon.ico``, ``docs.html``,
``docs.js``)."""

_PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
# Swagger UI sets inline styles; its scripts and every request it makes stay on this service.
_DOCS_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
_SWAGGER_FILES = ("swagger-ui-bundle.js", "swagger-ui.css")
_NO_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hashlearn search service API</title>
<link rel="icon" href="/favicon.ico"><link rel="stylesheet" href="/static/style.css"></head>
<body><h1>API docs</h1>
<p>The interactive API docs need the <code>fastapi-offline</code> package (it ships Swagger UI):
<code>pip install 'hashlearn[serve]'</code>. The OpenAPI schema is at
<a href="/openapi.json">/openapi.json</a>.</p></body></html>
"""


def swagger_ui_dir() -> Path | None:
    """The folder holding Swagger UI's script and styles (from ``fastapi-offline``), or None."""
    spec = importlib.util.find_spec("fastapi_offline")  # finds, does not import
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "static"
    return folder if all((folder / name).is_file() for name in _SWAGGER_FILES) else None


def add_page_routes(app: Any) -> None:
    """``GET /`` (the page, under a strict content security policy), ``/static``,
    ``/favicon.ico`` and ``/docs`` (with ``/docs-assets``)."""
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index_page() -> Any:
        return HTMLResponse(page, headers={"Content-Security-Policy": _PAGE_POLICY})

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Any:
        return FileResponse(
            STATIC_DIR / "favicon.ico",
            media_type="image/x-icon",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    swagger = swagger_ui_dir()
    if swagger is not None:
        app.mount("/docs-assets", StaticFiles(directory=swagger), name="docs-assets")
    docs = (STATIC_DIR / "docs.html").read_text(encoding="utf-8") if swagger else _NO_DOCS_PAGE

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def docs_page() -> Any:
        return HTMLResponse(docs, headers={"Content-Security-Policy": _DOCS_POLICY})
