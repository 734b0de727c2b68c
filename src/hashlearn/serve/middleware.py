"""Plain ASGI middleware of the web application: request body limit, time limit, safety headers.

Each answers on its own, before the application's routes, with a JSON body ``{"error": ...}``
(:func:`send_json_error`): 400 or 413 for a body over the limit, 408 or 503 for a request over its
time.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hashlearn.encoding import TooLargeError

__all__ = [
    "BodyTooLargeError",
    "LimitBodyMiddleware",
    "SecurityHeadersMiddleware",
    "TimeoutMiddleware",
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
