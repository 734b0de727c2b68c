"""Connection limits of the server: a time limit on each request head, and a cap on connections.

uvicorn closes an idle keep-alive connection only after it has answered a request on it; a
connection that sends nothing, or a request head that never ends (slow-loris), stays open, and
enough of them use up the process's file descriptors. :func:`limited_h11_protocol` makes uvicorn's
HTTP/1.1 protocol (h11) close a connection that has no request being answered ``header_timeout``
seconds after it opened or after its last answer (a request head arriving in time starts an
answer; its body is then bounded by the request time limit of
:class:`~hashlearn.serve.middleware.TimeoutMiddleware`), and answer a connection over
``max_connections`` open ones with 503 (``Retry-After``) and close it at once.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hashlearn._validation import check_float, check_int

__all__ = [
    "DEFAULT_HEADER_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "busy_answer",
    "limited_h11_protocol",
]

DEFAULT_HEADER_TIMEOUT = 10.0
"""Seconds a connection may wait for its request head (``hashlearn serve --header-timeout``)."""

DEFAULT_MAX_CONNECTIONS = 256
"""Open connections at most (``hashlearn serve --max-connections``)."""

_LINGER = 1.0  # seconds a refused connection is kept half-closed for the client to read its 503


def busy_answer(max_connections: int) -> bytes:
    """The raw HTTP/1.1 503 sent to a connection over ``max_connections``, before closing it."""
    body = json.dumps(
        {"error": f"the service has {max_connections} open connections, its limit; try again"}
    ).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "retry-after: 1\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def limited_h11_protocol(header_timeout: float, max_connections: int) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol class with the two limits (``uvicorn.Config(http=...)``).

    Parameters
    ----------
    header_timeout : float
        Seconds a connection may stay open without a request being answered on it: after it
        opens, and after each answer (keep-alive), its next request head must have arrived by then.
    max_connections : int
        Connections open at once; one more is answered 503 and closed.

    Raises
    ------
    InvalidInputError
        A limit is not positive.
    """
    header_timeout = check_float(header_timeout, "header_timeout", minimum=0.0, strict_minimum=True)
    max_connections = check_int(max_connections, "max_connections", minimum=1)
    from uvicorn.protocols.http.h11_impl import H11Protocol  # the serve extra

    refusal = busy_answer(max_connections)

    class LimitedH11Protocol(H11Protocol):  # type: ignore[misc]
        """h11 with a request-head deadline and a cap on open connections."""

        _refused = False
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            if len(self.connections) >= max_connections:
                # answered and half-closed; what the client sends meanwhile is read and dropped,
                # so closing does not reset the connection before the answer is read
                self._refused = True
                self.transport = transport
                transport.write(refusal)
                if transport.can_write_eof():
                    transport.write_eof()
                self.loop.call_later(_LINGER, transport.close)
                return
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if not self._refused:
                super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if not self._refused:
                super().data_received(data)

        def eof_received(self) -> bool | None:
            if self._refused:  # the client has read the answer and closed its side
                self.transport.close()
                return None
            return super().eof_received()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(header_timeout, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            self._deadline = None
            answering = self.cycle is not None and not self.cycle.response_complete
            if not answering and not self.transport.is_closing():
                self.transport.close()

    return LimitedH11Protocol
