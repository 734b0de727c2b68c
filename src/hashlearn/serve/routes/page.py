"""The web page at ``/`` and its scripts and styles under ``/static`` (nothing from elsewhere)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["STATIC_DIR", "add_page_routes"]

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
"""The web page's files (``index.html``, ``app.js``, ``style.css``)."""

_PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def add_page_routes(app: Any) -> None:
    """``GET /`` (the page, under a strict content security policy) and ``/static``."""
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index_page() -> Any:
        return HTMLResponse(page, headers={"Content-Security-Policy": _PAGE_POLICY})
