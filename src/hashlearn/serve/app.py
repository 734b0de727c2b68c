"""The HTTP API and the web page of the search service (FastAPI, run by uvicorn).

:func:`create_app` wraps a :class:`~hashlearn.serve.service.SearchService` in a FastAPI
application: the routes of :mod:`hashlearn.serve.routes`, the error answers of
:mod:`hashlearn.serve.http_errors` and the limits of :mod:`hashlearn.serve.middleware`.
:func:`run_server` serves it. Every answer to a bad request is a 4xx with a JSON body
``{"error": "..."}`` naming the problem; the OpenAPI schema is at ``/openapi.json``, its
interactive docs at ``/docs`` and the web page at ``/`` (scripts, styles and icon are served by
the service itself, nothing from elsewhere).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI

from hashlearn._version import __version__
from hashlearn.exceptions import InvalidInputError
from hashlearn.serve.connections import (
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    limited_h11_protocol,
)
from hashlearn.serve.http_errors import install_error_handlers
from hashlearn.serve.limits import check_write_access
from hashlearn.serve.middleware import (
    HostOriginMiddleware,
    LimitBodyMiddleware,
    SecurityHeadersMiddleware,
    TimeoutMiddleware,
)
from hashlearn.serve.openapi import service_openapi
from hashlearn.serve.routes.items import add_item_routes
from hashlearn.serve.routes.page import STATIC_DIR, add_page_routes
from hashlearn.serve.routes.search import add_search_routes
from hashlearn.serve.routes.status import add_status_routes
from hashlearn.serve.service import SearchService

__all__ = ["STATIC_DIR", "create_app", "run_server"]


def create_app(
    service: SearchService,
    *,
    token: str | None = None,
    allowed_hosts: Sequence[str] | None = None,
) -> Any:
    """The FastAPI application serving ``service``.

    Parameters
    ----------
    service : SearchService
    token : str or None
        Bearer token that writes (``POST /items``, ``DELETE /items/{id}``) must carry; None
        leaves writes open. Reads are always open. Either way a browser's write from a page of
        another origin is refused (403; see :class:`~hashlearn.serve.middleware.HostOriginMiddleware`).
    allowed_hosts : sequence of str or None
        Host names answered beside IP addresses and ``localhost`` (421 for others; ``"*"``: any).
        None (the default here): no Host check; :func:`run_server` checks it.

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
        docs_url=None,  # FastAPI's docs load scripts from a CDN; routes.page serves its own
        redoc_url=None,
    )
    app.openapi = lambda: service_openapi(app)  # the 400s the service gives, every $ref resolved
    install_error_handlers(app)
    add_page_routes(app)
    add_status_routes(app, service, writes_need_token=token is not None)
    add_search_routes(app, service)
    add_item_routes(app, service, token)
    limits = service.limits
    app.add_middleware(LimitBodyMiddleware, max_bytes=limits.max_body_bytes)
    app.add_middleware(TimeoutMiddleware, seconds=limits.request_timeout)
    app.add_middleware(HostOriginMiddleware, allowed_hosts=allowed_hosts)
    app.add_middleware(SecurityHeadersMiddleware)
    return app


def run_server(
    service: SearchService,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    allowed_hosts: Sequence[str] = (),
    open_writes: bool = False,
    header_timeout: float = DEFAULT_HEADER_TIMEOUT,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
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
    allowed_hosts : sequence of str
        Host names answered beside IP addresses and ``localhost`` (421 for any other ``Host``,
        which is how a DNS-rebinding page shows itself); ``("*",)`` answers any.
    open_writes : bool
        Allow writes without a token when ``host`` is not loopback (refused otherwise).
    header_timeout : float
        Seconds a connection may wait for its request head (after opening, or after an answer);
        then it is closed (slow-loris connections).
    max_connections : int
        Open connections at most; one more is answered 503 and closed.
    log_level : str
        uvicorn's log level.
    access_log : bool
        Log one line per request.

    Raises
    ------
    InvalidInputError
        ``host`` is not loopback, there is no token and ``open_writes`` is False; or a limit is
        not positive.
    """
    import uvicorn  # the serve extra; imported when a server starts

    check_write_access(host, token, open_writes)
    protocol = limited_h11_protocol(header_timeout, max_connections)
    app = create_app(service, token=token, allowed_hosts=allowed_hosts)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        log_level=log_level,
        access_log=access_log,
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run()
