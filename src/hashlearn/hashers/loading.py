"""``load_hasher(path)``: a hasher, or a :class:`~hashlearn.hashers.pipeline.FeatureHasher`, back
from its model file (:mod:`hashlearn.hashers.model_format`)."""

from __future__ import annotations

import json
import os
from typing import Any

from hashlearn._validation import check_image_shape
from hashlearn.exceptions import FileFormatError, InvalidInputError, UnknownNameError
from hashlearn.features import features_from_dict
from hashlearn.hashers.base import Hasher
from hashlearn.hashers.model_format import read_model_file
from hashlearn.hashers.pipeline import FEATURES_KEY, FEATURES_PREFIX, FeatureHasher
from hashlearn.hashers.registry import get_hasher_class

__all__ = ["load_hasher"]


def load_hasher(path: str | os.PathLike[str]) -> Hasher:
    """Load a model written by ``Hasher.save`` (safetensors + JSON metadata; never pickle).

    A file that also holds a feature extractor gives a :class:`FeatureHasher`. Raises
    FileFormatError for a file that is not a complete hashlearn model, and UnknownNameError for
    a method this hashlearn does not have.
    """
    metadata, arrays = read_model_file(path)
    try:
        params = json.loads(metadata["params"])
        state = json.loads(metadata["state"])
        method = metadata["method"]
        # the images of the fit; absent from models fitted on feature vectors
        image_shape = json.loads(metadata.get("image_shape", "null"))
        features = json.loads(metadata.get(FEATURES_KEY, "null"))
        resize_images = json.loads(metadata.get("resize_images", "false"))
    except (KeyError, json.JSONDecodeError) as exc:
        raise FileFormatError(
            f"{os.fspath(path)!r} has incomplete hashlearn metadata: {exc}"
        ) from None
    feature_arrays = {
        key[len(FEATURES_PREFIX) :]: array
        for key, array in arrays.items()
        if key.startswith(FEATURES_PREFIX)
    }
    arrays = {key: array for key, array in arrays.items() if not key.startswith(FEATURES_PREFIX)}
    cls = get_hasher_class(method)
    try:
        hasher = cls(**params)
        hasher._set_state(arrays, state)
        if image_shape is not None:
            hasher.image_shape_ = _checked_image_shape(path, image_shape)
        elif not hasattr(hasher, "image_shape_"):  # deep hashers keep theirs in their state
            hasher.image_shape_ = None
    except (KeyError, TypeError, ValueError) as exc:
        raise FileFormatError(
            f"{os.fspath(path)!r} does not hold a complete {method!r} model: {exc!r}"
        ) from None
    if not isinstance(resize_images, bool):
        raise FileFormatError(
            f"{os.fspath(path)!r} has an unreadable resize_images entry: {resize_images!r}"
        )
    if features is not None:
        hasher = FeatureHasher(_load_features(path, features, feature_arrays), hasher)
    if resize_images:
        hasher.resize_images_ = True
    return hasher


def _checked_image_shape(path: Any, value: Any) -> tuple[int, int, int]:
    """The ``image_shape`` metadata of a model file (see ``check_image_shape``)."""
    try:
        return check_image_shape(value)
    except InvalidInputError as exc:
        raise FileFormatError(f"{os.fspath(path)!r} has an unreadable image shape: {exc}") from None


def _load_features(path: Any, saved: Any, arrays: dict[str, Any]) -> Any:
    """The fitted extractor of a model file (its ``features`` metadata and arrays)."""
    if not isinstance(saved, dict):
        raise FileFormatError(f"{os.fspath(path)!r} has an unreadable feature extractor entry")
    try:
        return features_from_dict({**saved, "arrays": arrays})
    except (InvalidInputError, UnknownNameError) as exc:
        raise FileFormatError(
            f"{os.fspath(path)!r} holds a feature extractor this hashlearn cannot rebuild: {exc}"
        ) from None
