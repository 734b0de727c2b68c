"""The error of an input over its size limit: an image file, its pixel count, a request body."""

from __future__ import annotations

from hashlearn.exceptions import InvalidInputError

__all__ = ["TooLargeError"]


class TooLargeError(InvalidInputError):
    """A file, an image's pixel count or a request body is over its limit.

    Raised by :func:`~hashlearn.encoding.read_image` and when a folder's image file is over
    :data:`~hashlearn.encoding.files.MAX_FILE_BYTES`; the search service raises it for request
    bodies too, and answers it with ``status_code`` (HTTP 413).
    """

    status_code: int = 413
