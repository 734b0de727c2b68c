"""The errors of an input over its size limit (an image file, its pixel count, a request body) and of
a picture that does not fit the model."""

from __future__ import annotations

from hashlearn.exceptions import InvalidInputError

__all__ = ["ImageMismatchError", "TooLargeError"]


class TooLargeError(InvalidInputError):
    """A file, an image's pixel count or a request body is over its limit.

    Raised by :func:`~hashlearn.encoding.read_image` and when a folder's image file is over
    :data:`~hashlearn.encoding.files.MAX_FILE_BYTES`; the search service raises it for request
    bodies too, and answers it with ``status_code`` (HTTP 413).
    """

    status_code: int = 413


class ImageMismatchError(InvalidInputError):
    """A picture's size, or grey versus colour, differs from the input the model was fitted on,
    and resizing was not asked for (see :func:`~hashlearn.encoding.as_model_array`).

    Encoding a folder stops at the first such picture even when unreadable files are skipped:
    it says the model does not suit the collection, not that one file is bad.
    """
