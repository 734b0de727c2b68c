"""Limits of the search service, and the checks of request values against them."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from hashlearn._validation import check_float, check_int
from hashlearn.exceptions import InvalidInputError

__all__ = [
    "ID_PATTERN",
    "MAX_ID",
    "TOKEN_ENV",
    "ServeLimits",
    "check_write_access",
    "is_loopback",
    "load_token",
    "parse_item_id",
]

TOKEN_ENV = "HASHLEARN_SERVE_TOKEN"
"""Environment variable holding the bearer token of writes, when no token file is given."""

MAX_ID = 2**63 - 1
"""Largest item id (ids are non-negative ``int64``)."""


def _decimals_up_to(bound: int) -> str:
    """A regular expression of the decimal strings (leading zeros allowed, at most as many
    digits as ``bound``) whose value is at most ``bound``."""
    digits = str(bound)
    choices = [f"[0-9]{{1,{len(digits) - 1}}}"] if len(digits) > 1 else []
    for at, digit in enumerate(digits):
        if digit != "0":
            rest = len(digits) - at - 1
            below = "0" if digit == "1" else f"[0-{int(digit) - 1}]"
            choices.append(digits[:at] + below + (f"[0-9]{{{rest}}}" if rest else ""))
    choices.append(digits)
    return "(?:" + "|".join(choices) + ")"


ID_PATTERN = _decimals_up_to(MAX_ID)
"""The item ids of URLs and forms as a regular expression (decimal, 0 .. 2**63 - 1): what the
OpenAPI schema states, and what :func:`parse_item_id` accepts (digits, then the range, each
refused with its own message)."""

_ID_PATTERN = re.compile(r"[0-9]{1,19}")


@dataclass(frozen=True)
class ServeLimits:
    """What one request may ask of the service.

    Parameters
    ----------
    max_body_bytes : int
        Largest request body; a longer one is refused with 413 before it is read in full.
    max_image_bytes : int
        Largest image file, in a form field, a raw body or base64 JSON.
    max_image_pixels : int
        Largest ``width * height`` of an image, checked from its header before it is decoded
        (a decompression bomb is refused without allocating its pixels).
    max_k : int
        Largest ``k`` of a search.
    max_radius : int
        Largest Hamming radius of a search.
    max_results : int
        Most hits a radius search returns; more are counted and cut (``"truncated": true``).
    max_items_per_request : int
        Most items one ``POST /items`` adds.
    max_metadata_bytes : int
        Largest item metadata, as compact JSON.
    request_timeout : float
        Seconds a request may take, receiving its body included; a slower one is answered with
        408 (body still arriving) or 503 (processing).
    max_decode_bytes : int
        Bytes that image decodes (uploads and thumbnails) may hold at once, estimated from each
        file's header before decoding (:mod:`hashlearn.serve.decoding`): an image that alone
        needs more is refused with 413; one that does not fit beside others waits.
    decode_wait : float
        Seconds an image decode waits for room in ``max_decode_bytes`` before it is answered 503
        with ``Retry-After``.

    Raises
    ------
    InvalidInputError
        A limit is not a positive number.
    """

    max_body_bytes: int = 16 * 1024 * 1024
    max_image_bytes: int = 10 * 1024 * 1024
    max_image_pixels: int = 25_000_000
    max_k: int = 1000
    max_radius: int = 64
    max_results: int = 1000
    max_items_per_request: int = 1000
    max_metadata_bytes: int = 4096
    request_timeout: float = 30.0
    max_decode_bytes: int = 640 * 1024 * 1024  # a 25-megapixel RGBA PNG (600 MB) fits alone
    decode_wait: float = 2.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if name == "request_timeout":
                check_float(value, name, minimum=0.0, strict_minimum=True)
            elif name == "decode_wait":
                check_float(value, name, minimum=0.0)
            else:
                check_int(value, name, minimum=1)

    def as_dict(self) -> dict[str, Any]:
        """The limits as a JSON-able dict (shown by ``GET /stats``)."""
        return asdict(self)

    def check_k(self, k: Any) -> int:
        """``k`` as an int in ``1 .. max_k``; :class:`InvalidInputError` naming the bound if not."""
        return check_int(k, "k", minimum=1, maximum=self.max_k)

    def check_radius(self, radius: Any) -> int:
        """``radius`` as an int in ``0 .. max_radius``; :class:`InvalidInputError` if not."""
        return check_int(radius, "radius", minimum=0, maximum=self.max_radius)


def parse_item_id(text: Any) -> int:
    """An item id from a URL path segment or a form field: decimal digits only, 0 .. 2**63 - 1.

    Nothing but digits is accepted, so an id can never name a file outside the service's folders.

    Parameters
    ----------
    text : str or int

    Returns
    -------
    int

    Raises
    ------
    InvalidInputError
        ``text`` is not a non-negative decimal integer within ``int64``.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    elif isinstance(text, str) and _ID_PATTERN.fullmatch(text):
        value = int(text)
    else:
        shown = repr(text) if len(repr(text)) <= 60 else repr(text)[:57] + "..."
        raise InvalidInputError(
            f"an item id must be a non-negative decimal integer (0 to {MAX_ID}), got {shown}"
        )
    if not 0 <= value <= MAX_ID:
        raise InvalidInputError(f"an item id must be between 0 and {MAX_ID}, got {value}")
    return value


def load_token(
    token_file: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> str | None:
    """The bearer token writes need: the first line of ``token_file``, else the environment
    variable ``HASHLEARN_SERVE_TOKEN``, else None (writes open).

    A token is never taken from the command line, where other users of the machine could read it
    in the process list.

    Raises
    ------
    InvalidInputError
        The token file is missing or its first line is empty.
    """
    if token_file is not None:
        try:
            with open(token_file, encoding="utf-8") as handle:
                token = handle.readline().strip()
        except OSError as exc:
            raise InvalidInputError(
                f"cannot read the token file {os.fspath(token_file)!r}: {exc}"
            ) from None
        if not token:
            raise InvalidInputError(
                f"the token file {os.fspath(token_file)!r} starts with an empty line"
            )
        return token
    value = (os.environ if environ is None else environ).get(TOKEN_ENV, "").strip()
    return value or None


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` keeps the service on this machine: ``localhost`` or a
    loopback address (``127.0.0.0/8``, ``::1``). ``0.0.0.0``, ``::`` and other names are not."""
    if host.strip().lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_write_access(host: str, token: str | None, open_writes: bool = False) -> None:
    """Refuse to serve open writes beyond this machine.

    Listening on an address other than loopback without a bearer token would let anyone who
    reaches the port add and delete items; that takes ``open_writes=True``
    (``hashlearn serve --open-writes``), said explicitly.

    Raises
    ------
    InvalidInputError
        ``host`` is not loopback, ``token`` is None and ``open_writes`` is False.
    """
    if token is None and not open_writes and not is_loopback(host):
        raise InvalidInputError(
            f"listening on {host} reaches beyond this machine, and without a token anyone who "
            "reaches it could add and delete items: set a token (--token-file FILE or "
            f"{TOKEN_ENV}), or pass --open-writes to allow open writes"
        )
