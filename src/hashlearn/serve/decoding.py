"""Image decoding under a memory budget: what decoding will hold is known from the file's header,
and decodes are admitted only while their sum stays within the budget.

A small PNG can stand for a large picture (a 94 KiB file of 5000 x 5000 RGBA pixels holds about
half a gigabyte while it is decoded and converted), and the web server decodes uploads on up to
40 threads at once. :class:`DecodeBudget` admits each decode with its cost from
:meth:`~hashlearn.encoding.ImageHeader.conversion_bytes`: a picture that alone costs more than the
budget is refused (413, naming both sizes), one that does not fit now waits up to ``wait`` seconds
for others to finish, then is answered 503 with ``Retry-After``. :func:`encode_image_file` is the
one path of uploads (searches and adds); thumbnails hold the same budget while they decode.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np

from hashlearn._validation import check_float, check_int
from hashlearn.encoding import DecodedImage, ImageHeader, image_header, read_image
from hashlearn.serve.errors import ServiceBusyError, TooLargeError

__all__ = ["DecodeBudget", "describe_header", "encode_image_file"]

_MB = 1e6
_TRIM_FROM = 16 * 2**20  # smaller decodes leave too little in the C heap to hand back


class DecodeBudget:
    """Bytes that image decodes may hold at once, shared by every request of a service.

    Parameters
    ----------
    max_bytes : int
        The budget.
    wait : float
        Seconds a decode that does not fit now waits for others to finish before it is refused.

    Raises
    ------
    InvalidInputError
        ``max_bytes`` is not positive or ``wait`` is negative.
    """

    def __init__(self, max_bytes: int, wait: float) -> None:
        self.max_bytes = check_int(max_bytes, "max_decode_bytes", minimum=1)
        self.wait = check_float(wait, "decode_wait", minimum=0.0)
        self._held = 0
        self._peak = 0
        self._changed = threading.Condition()

    @property
    def held(self) -> int:
        """Bytes admitted and not yet given back."""
        return self._held

    @property
    def peak(self) -> int:
        """Most bytes admitted at once so far."""
        return self._peak

    @contextlib.contextmanager
    def hold(self, nbytes: int, what: str) -> Iterator[None]:
        """Hold ``nbytes`` of the budget for the ``with`` block (``what`` names the decode in
        messages).

        Raises
        ------
        TooLargeError
            ``nbytes`` alone is over the budget (HTTP 413).
        ServiceBusyError
            It did not fit within ``wait`` seconds (HTTP 503, ``Retry-After``).
        """
        if nbytes > self.max_bytes:
            raise TooLargeError(
                f"decoding {what} takes about {nbytes / _MB:,.0f} MB; the service decodes at most "
                f"{self.max_bytes / _MB:,.0f} MB at once (--max-decode-bytes)"
            )
        deadline = time.monotonic() + self.wait
        with self._changed:
            while self._held + nbytes > self.max_bytes:
                left = deadline - time.monotonic()
                if left <= 0 or not self._changed.wait(left):
                    if self._held + nbytes <= self.max_bytes:
                        break
                    raise ServiceBusyError(
                        f"the service is decoding other images ({self._held / _MB:,.0f} of "
                        f"{self.max_bytes / _MB:,.0f} MB in use) and {what} needs "
                        f"{nbytes / _MB:,.0f} MB; try again shortly",
                        retry_after=max(1, round(self.wait)),
                    )
            self._held += nbytes
            self._peak = max(self._peak, self._held)
        try:
            yield
        finally:
            if nbytes >= _TRIM_FROM:  # before the room is given to the next decode
                _return_free_memory()
            with self._changed:
                self._held -= nbytes
                self._changed.notify_all()


def _load_malloc_trim() -> Any:
    """glibc's ``malloc_trim``, or None (another C library, or not Linux)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_MALLOC_TRIM = _load_malloc_trim()


def _return_free_memory() -> None:
    """Hand the heap's free memory back to the system. A decoded picture is allocated in blocks
    small enough for the C heap of the thread that decoded it, which keeps them once freed; with
    many threads, each would keep the pixels of its last decode beside the next one's."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def describe_header(header: ImageHeader) -> str:
    """``"the 5000x5000 RGBA image"``: a picture in messages."""
    return f"the {header.width}x{header.height} {header.mode} image"


def encode_image_file(
    data: bytes, encoder: Any, limits: Any, budget: DecodeBudget
) -> tuple[np.ndarray, DecodedImage]:
    """The code of an uploaded PNG or JPEG, decoded and converted under ``budget``.

    Parameters
    ----------
    data : bytes
        The file.
    encoder : QueryEncoder
        The model's encoder (its input shape sizes the converted array).
    limits : ServeLimits
        ``max_image_bytes`` and ``max_image_pixels``.
    budget : DecodeBudget

    Returns
    -------
    code : numpy.ndarray of uint8, shape (1, code_size)
    image : DecodedImage
        The file, without its decoded pixels (``image`` None): they are let go before the budget
        is given back.

    Raises
    ------
    TooLargeError, ServiceBusyError
        Over the limits, or over the budget (see :meth:`DecodeBudget.hold`).
    InvalidInputError
        The file is not a PNG or JPEG, does not decode, or does not fit the model.
    """
    header = image_header(
        data, max_bytes=limits.max_image_bytes, max_pixels=limits.max_image_pixels
    )
    shape = encoder.image_shape
    cost = (
        header.conversion_bytes(shape[2], (shape[0], shape[1]))
        if shape is not None
        else header.conversion_bytes(3)
    )
    with budget.hold(cost, describe_header(header)):
        return _encode_and_let_go(data, encoder, limits)


def _encode_and_let_go(data: bytes, encoder: Any, limits: Any) -> tuple[np.ndarray, DecodedImage]:
    """Decode and encode; the pixels, and the frames of an error that would keep them, are
    dropped before returning or raising."""
    decoded: DecodedImage | None = None
    try:
        decoded = read_image(
            data, max_bytes=limits.max_image_bytes, max_pixels=limits.max_image_pixels
        )
        code = encoder.encode_image(decoded.image)
        return code, replace(decoded, image=None)
    except Exception as exc:
        error = exc
    # outside the handler: the traceback's frames (holding the pixels and their copies) go now
    decoded = None
    error.__traceback__ = error.__context__ = error.__cause__ = None
    raise error
