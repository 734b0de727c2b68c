"""Errors of the search service, each with the HTTP status it is answered with.

Every class derives from :class:`~hashlearn.exceptions.InvalidInputError` (so from ``ValueError``)
or :class:`~hashlearn.exceptions.HashlearnError`; the web application answers any of them with
``status_code`` and a JSON body ``{"error": message}``. Other ``InvalidInputError`` (bad shapes,
NaN values, wrong code widths) are answered with 400. :class:`TooLargeError` (413) is shared with
the reading of image files (:mod:`hashlearn.encoding`), where it is defined.
"""

from __future__ import annotations

from hashlearn.encoding import TooLargeError
from hashlearn.exceptions import HashlearnError, InvalidInputError

__all__ = [
    "AuthenticationError",
    "ItemExistsError",
    "ItemImageError",
    "ItemNotFoundError",
    "PermissionDeniedError",
    "ServiceBusyError",
    "ServiceError",
    "TooLargeError",
    "UnsupportedMediaTypeError",
]


class ServiceError(HashlearnError):
    """Base of the service's errors; ``status_code`` is the HTTP status of the answer."""

    status_code: int = 400


class ItemNotFoundError(ServiceError, InvalidInputError, KeyError):
    """No item has the requested id (HTTP 404)."""

    status_code = 404

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly.
        return str(self.args[0]) if self.args else ""


class ItemExistsError(ServiceError, InvalidInputError):
    """An added item's id is already in use (HTTP 409)."""

    status_code = 409


class ItemImageError(ServiceError, InvalidInputError):
    """An item's image file cannot be shown: not a PNG or JPEG, corrupt, or over the limits
    (HTTP 422: the request is fine, the stored file is not)."""

    status_code = 422


class UnsupportedMediaTypeError(ServiceError, InvalidInputError):
    """A request body of a content type the endpoint does not read (HTTP 415)."""

    status_code = 415


class AuthenticationError(ServiceError):
    """A write came without a bearer token while one is configured (HTTP 401)."""

    status_code = 401


class PermissionDeniedError(ServiceError):
    """A write came with a bearer token that is not the configured one (HTTP 403)."""

    status_code = 403


class ServiceBusyError(ServiceError):
    """The service is at a limit that frees up soon: try again after ``retry_after`` seconds
    (HTTP 503 with ``Retry-After``)."""

    status_code = 503

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after
