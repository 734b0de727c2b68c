"""``GET /health`` (liveness and item count) and ``GET /stats`` (what is served, and how)."""

from __future__ import annotations

from typing import Any

from hashlearn.serve.schemas import Health, Stats
from hashlearn.serve.service import SearchService

__all__ = ["add_status_routes"]


def add_status_routes(app: Any, service: SearchService, *, writes_need_token: bool) -> None:
    """Add ``GET /health`` and ``GET /stats`` of ``service`` to ``app``."""

    @app.get("/health", response_model=Health, summary="liveness and item count")
    def health() -> Any:
        return {"status": "ok", "items": service.index.ntotal}

    @app.get("/stats", response_model=Stats, summary="items, bits, method, index type")
    def stats() -> Any:
        return {**service.stats(), "writes_need_token": writes_need_token}
