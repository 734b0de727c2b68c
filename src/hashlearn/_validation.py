"""Input checks shared by every module. Each raises a specific error naming the problem."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from hashlearn.exceptions import InvalidInputError


def check_int(
    value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """Return ``value`` as an ``int`` after checking its type and range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidInputError(
            f"{name} must be an integer, got {value!r} ({type(value).__name__})"
        )
    value = int(value)
    if minimum is not None and value < minimum:
        raise InvalidInputError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise InvalidInputError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_k(k: Any, name: str = "k") -> int:
    """A number of results to return: an int >= 1."""
    return check_int(k, name, minimum=1)


def check_radius(radius: Any) -> int:
    """A Hamming radius (inclusive): an int >= 0."""
    return check_int(radius, "radius", minimum=0)


def check_float(
    value: Any,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    strict_minimum: bool = False,
) -> float:
    """Return ``value`` as a finite ``float`` after checking its type and range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInputError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not np.isfinite(value):
        raise InvalidInputError(f"{name} must be finite, got {value}")
    if minimum is not None and (value <= minimum if strict_minimum else value < minimum):
        raise InvalidInputError(
            f"{name} must be {'>' if strict_minimum else '>='} {minimum}, got {value}"
        )
    if maximum is not None and value > maximum:
        raise InvalidInputError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_random_state(random_state: Any, name: str = "random_state") -> int | None:
    """Accept ``None`` (fresh entropy) or a non-negative integer seed."""
    if random_state is None:
        return None
    return check_int(random_state, name, minimum=0, maximum=2**32 - 1)


def as_numeric_array(X: Any, name: str) -> np.ndarray:
    try:
        array = np.asarray(X)
    except (TypeError, ValueError) as exc:  # ragged lists and the like
        raise InvalidInputError(f"{name} cannot be read as a numeric array: {exc}") from None
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.bool_)
    ):
        raise InvalidInputError(f"{name} must hold numbers, got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.complexfloating):
        raise InvalidInputError(f"{name} must hold real numbers, got dtype {array.dtype}")
    return array


def check_finite(array: np.ndarray, name: str) -> None:
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        bad = np.flatnonzero(~np.isfinite(array.reshape(len(array), -1)).all(axis=1))
        raise InvalidInputError(
            f"{name} holds NaN or infinite values in {bad.size} row(s), first at row {int(bad[0])}"
        )


def check_features(X: Any, name: str = "X", *, n_features: int | None = None) -> np.ndarray:
    """Return ``X`` as a C-contiguous ``float32`` array of shape ``(n, d)``.

    Image arrays ``(n, h, w)`` or ``(n, h, w, c)`` are flattened to ``(n, h*w*c)``.
    """
    array = as_numeric_array(X, name)
    if array.ndim == 1:
        raise InvalidInputError(
            f"{name} must be 2-D (n_samples, n_features) or an image array, got a 1-D array of "
            f"shape {array.shape}; use X.reshape(1, -1) for a single sample"
        )
    if array.ndim < 1 or array.ndim > 4:
        raise InvalidInputError(f"{name} must have 2 to 4 dimensions, got shape {array.shape}")
    if array.shape[0] == 0:
        raise InvalidInputError(f"{name} is empty: it has 0 samples")
    array = array.reshape(array.shape[0], -1)
    if array.shape[1] == 0:
        raise InvalidInputError(f"{name} has 0 features")
    check_finite(array, name)
    if n_features is not None and array.shape[1] != n_features:
        raise InvalidInputError(
            f"{name} has {array.shape[1]} features per sample, but the hasher was fitted on {n_features}"
        )
    return np.ascontiguousarray(array, dtype=np.float32)


def check_images(
    X: Any, name: str = "X", *, image_shape: tuple[int, ...] | None = None
) -> np.ndarray:
    """Return ``X`` as a ``float32`` array of shape ``(n, h, w, c)``; ``(n, h, w)`` gains ``c = 1``."""
    array = as_numeric_array(X, name)
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4:
        raise InvalidInputError(
            f"{name} must be an image array of shape (n, h, w) or (n, h, w, c), got shape {array.shape}; "
            "reshape flat features into images first"
        )
    if array.shape[0] == 0:
        raise InvalidInputError(f"{name} is empty: it has 0 images")
    check_finite(array, name)
    if image_shape is not None and tuple(array.shape[1:]) != tuple(image_shape):
        raise InvalidInputError(
            f"{name} has images of shape {tuple(array.shape[1:])}, but the hasher was fitted on {tuple(image_shape)}"
        )
    return np.ascontiguousarray(array, dtype=np.float32)


def check_labels(y: Any, n_samples: int, name: str = "y") -> np.ndarray:
    """Return class labels as ``int64`` of shape ``(n,)``, or multi-label indicators ``(n, c)`` as ``bool``."""
    array = as_numeric_array(y, name)
    if array.ndim not in (1, 2):
        raise InvalidInputError(
            f"{name} must be 1-D class labels or a 2-D label-indicator matrix, got shape {array.shape}"
        )
    if array.shape[0] != n_samples:
        raise InvalidInputError(f"{name} has {array.shape[0]} labels for {n_samples} samples")
    check_finite(array, name)
    if array.ndim == 2:
        return array.astype(bool)
    if np.issubdtype(array.dtype, np.floating) and not np.all(array == np.round(array)):
        raise InvalidInputError(f"{name} must hold integer class labels, got non-integer values")
    return array.astype(np.int64)


# Largest h x w of an image shape a model or a service may declare (4096 x 4096).
MAX_IMAGE_PIXELS = 1 << 24


def check_image_shape(shape: Any) -> tuple[int, int, int]:
    """``(h, w)`` or ``(h, w, c)`` -> ``(h, w, c)``: positive sizes, ``c`` 1 or 3, at most
    :data:`MAX_IMAGE_PIXELS` pixels. Raises InvalidInputError naming the shape otherwise."""
    try:
        values = tuple(shape)
    except TypeError:
        values = ()
    if len(values) == 2:
        values = (*values, 1)
    if (
        len(values) != 3
        or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in values
        )
        or values[2] not in (1, 3)
        or int(values[0]) * int(values[1]) > MAX_IMAGE_PIXELS
    ):
        raise InvalidInputError(
            "image shape must be (h, w) or (h, w, c) with positive sizes, c = 1 or 3 and at most "
            f"{MAX_IMAGE_PIXELS} pixels, got {shape!r}"
        )
    return (int(values[0]), int(values[1]), int(values[2]))


def image_shape_of(X: Any) -> tuple[int, int, int] | None:
    """``(h, w, c)`` of an image array ``X`` ``(n, h, w)`` (c = 1) or ``(n, h, w, c)`` with 1 or 3
    channels; None for anything else (feature vectors)."""
    shape = tuple(int(s) for s in (X.shape if hasattr(X, "shape") else np.shape(X)))
    if len(shape) == 3:
        return (shape[1], shape[2], 1)
    if len(shape) == 4 and shape[3] in (1, 3):
        return (shape[1], shape[2], shape[3])
    return None
