"""Plain ASGI middleware of the web application: request body limit, time limit, safety headers,
and the Host and Origin checks.

Each answers on its own, before the application's routes, with a JSON body ``{"error": ...}``
(:func:`send_json_error`): 400 or 413 for a body over the limit, 408 or 503 for a request over its
time, 421 for a Host the service does not answer to, 403 for a write sent by another site.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import Iterable
from typing import Any

from hashlearn.encoding import TooLargeError

__all__ = [
    "ANY_HOST",
    "BodyTooLargeError",
    "HostOriginMiddleware",
    "LimitBodyMiddleware",
    "SecurityHeadersMiddleware",
    "TimeoutMiddleware",
    "host_name",
    "send_json_error",
]


class BodyTooLargeError(TooLargeError):
    """A chunked request body went over the limit while it was being received."""


async def send_json_error(send: Any, status: int, message: str) -> None:
    """Answer ``status`` with the JSON body ``{"error": message}`` through ASGI ``send``."""
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class LimitBodyMiddleware:
    """Refuse request bodies over ``max_bytes``: by Content-Length before reading, else when the
    count of received bytes passes it (chunked uploads)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        limit = self.max_bytes
        if declared is not None:
            if not declared.isdigit():
                await send_json_error(send, 400, "the Content-Length header is not a number")
                return
            if int(declared) > limit:
                await send_json_error(
                    send, 413, f"the request body is {int(declared)} bytes; the limit is {limit}"
                )
                return
        received = 0

        async def counting_receive() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(f"the request body is over the limit of {limit} bytes")
            return message

        await self.app(scope, counting_receive, send)


class TimeoutMiddleware:
    """Answer 408 (body still arriving) or 503 (still processing) after ``seconds``."""

    def __init__(self, app: Any, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = {"started": False, "receiving": False}

        async def tracking_receive() -> Any:
            # not reset in a ``finally``: the timeout cancels this wait, and must still see it
            state["receiving"] = True
            message = await receive()
            state["receiving"] = False
            return message

        async def tracking_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await asyncio.wait_for(self.app(scope, tracking_receive, tracking_send), self.seconds)
        except asyncio.TimeoutError:
            if state["started"]:
                return  # part of the answer is out; the server closes the connection
            if state["receiving"]:
                await send_json_error(
                    send, 408, f"the request body did not arrive within {self.seconds:g} s"
                )
            else:
                await send_json_error(
                    send, 503, f"the request took longer than {self.seconds:g} s; try again"
                )


class SecurityHeadersMiddleware:
    """``X-Content-Type-Options: nosniff`` on every answer."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-content-type-options", b"nosniff"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers if scope["type"] == "http" else send)


ANY_HOST = "*"
"""The allowed host that turns the Host check off (``--allowed-host '*'``)."""

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_OWN_SITE = frozenset({b"same-origin", b"none"})  # Sec-Fetch-Site of a request a page may write


def host_name(host: str) -> str:
    """The name of a ``Host`` header, without its port, lower case: ``"[::1]:8000"`` -> ``"::1"``,
    ``"Example.org.:80"`` -> ``"example.org"``."""
    return _host_and_port(host)[0]


def _host_and_port(host: str) -> tuple[str, str]:
    """``(name, port)`` of a ``Host`` header or an Origin's ``host[:port]`` (port ``""`` if none)."""
    host = host.strip().lower()
    if host.startswith("["):  # an IPv6 literal, maybe with a port
        name, _, rest = host[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif host.count(":") == 1:
        name, _, port = host.partition(":")
    else:  # a name without a port (or a bare IPv6 address)
        name, port = host, ""
    return name.rstrip("."), port


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostOriginMiddleware:
    """The Host allow-list and the same-origin rule of writes.

    A request whose ``Host`` is neither an IP address, ``localhost``, nor one of
    ``allowed_hosts`` is answered 421: a web page that rebinds its own DNS name to this service's
    address (DNS rebinding) sends its own name as the Host and is refused. A write (any method but
    GET, HEAD, OPTIONS) that a browser marks as sent by another origin (``Sec-Fetch-Site`` other
    than ``same-origin`` or ``none``, or an ``Origin`` that is not this service's) is answered 403,
    so a page elsewhere cannot add or delete items, even when writes need no token. Requests
    without those headers (curl, scripts) are not affected by the origin rule.

    Parameters
    ----------
    app : ASGI application
    allowed_hosts : iterable of str or None
        Host names (no port) accepted beside IP addresses and ``localhost``; ``"*"`` accepts any
        Host. None: no Host check (the origin rule still applies).
    """

    def __init__(self, app: Any, allowed_hosts: Iterable[str] | None = None) -> None:
        self.app = app
        names = None if allowed_hosts is None else {host_name(h) for h in allowed_hosts}
        self.allowed_hosts = None if names is None or ANY_HOST in names else frozenset(names)

    def host_allowed(self, host: str) -> bool:
        """Whether a request with this ``Host`` header is answered."""
        if self.allowed_hosts is None:
            return True
        name = host_name(host)
        return name == "localhost" or _is_ip(name) or name in self.allowed_hosts

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode("latin-1")
        if not self.host_allowed(host):
            shown = host[:80] or "(none)"
            await send_json_error(
                send,
                421,
                f"this service does not answer to the host {shown!r}: open it by its IP address "
                "or localhost, or start it with --allowed-host NAME for that name",
            )
            return
        if scope["method"] not in _SAFE_METHODS:
            refusal = _cross_origin(headers, host)
            if refusal:
                await send_json_error(
                    send,
                    403,
                    f"{refusal}; writes are taken from this "
                    "service's own page or from clients that are not browsers",
                )
                return
        await self.app(scope, receive, send)


def _cross_origin(headers: dict[bytes, bytes], host: str) -> str | None:
    """Why a write with these headers comes from another site, or None when it does not."""
    site = headers.get(b"sec-fetch-site")
    if site is not None and site.strip().lower() not in _OWN_SITE:
        return f"a write sent by a page of another site (Sec-Fetch-Site: {site.decode('latin-1')[:40]})"
    origin = headers.get(b"origin")
    if origin is None:
        return None
    text = origin.decode("latin-1").strip()
    scheme, separator, netloc = text.partition("://")
    if (
        not separator
        or scheme.lower() not in ("http", "https")
        or not _same_host(netloc, host, scheme)
    ):
        return f"a write sent by a page of another origin (Origin: {text[:80]})"
    return None


def _same_host(netloc: str, host: str, scheme: str) -> bool:
    """Whether an Origin's ``host[:port]`` names the same host and port as the Host header."""
    default = "443" if scheme.lower() == "https" else "80"
    origin_name, origin_port = _host_and_port(netloc)
    host_name_, host_port = _host_and_port(host)
    return bool(host) and (origin_name, origin_port or default) == (
        host_name_,
        host_port or default,
    )
