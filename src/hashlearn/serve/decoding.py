"""Uploads decoded under the service's memory budget: :class:`DecodeBudget` is
:class:`hashlearn.encoding.DecodeBudget` (a decode's cost read from the file's header, decodes
admitted while their sum fits) answering as the service does: a picture that alone costs more
than the budget gets 413, one that does not fit within ``wait`` seconds 503 with
``Retry-After``. The web server decodes uploads on up to 40 threads at once.
:func:`encode_image_file` is the one path of uploads (searches and adds); thumbnails hold the
same budget while they decode.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from hashlearn._validation import check_float
from hashlearn.encoding import DecodedImage, ImageHeader, image_header, read_image
from hashlearn.encoding.budget import DecodeBudget as EncodingDecodeBudget
from hashlearn.serve.errors import ServiceBusyError

__all__ = ["DecodeBudget", "describe_header", "encode_image_file"]

_MB = 1e6


class DecodeBudget(EncodingDecodeBudget):
    """Bytes that image decodes may hold at once, shared by every request of a service
    (:class:`hashlearn.encoding.DecodeBudget` in the service's words and status codes).

    Parameters
    ----------
    max_bytes : int
        The budget (``--max-decode-bytes``).
    wait : float
        Seconds a decode that does not fit now waits for others to finish before it is refused
        (``--decode-wait``).

    Raises
    ------
    InvalidInputError
        ``max_bytes`` is not positive or ``wait`` is negative.
    """

    def __init__(self, max_bytes: int, wait: float) -> None:
        super().__init__(max_bytes, check_float(wait, "decode_wait", minimum=0.0))

    setting = "--max-decode-bytes"

    def busy_error(self, nbytes: int, what: str) -> Exception:
        """HTTP 503 with ``Retry-After``."""
        return ServiceBusyError(
            f"the service is decoding other images ({self.held / _MB:,.0f} of "
            f"{self.max_bytes / _MB:,.0f} MB in use) and {what} needs "
            f"{nbytes / _MB:,.0f} MB; try again shortly",
            retry_after=max(1, round(self.wait or 0)),
        )


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
