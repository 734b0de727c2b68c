"""``load_hasher(path)``: a hasher, or a :class:`~hashlearn.hashers.pipeline.FeatureHasher`, back
from its model file (:mod:`hashlearn.hashers.model_format`).

Every value is checked before it is used: the JSON entries by the bounded reader
(:mod:`hashlearn._json`) and for their types, the parameters by the method's own checks
(``_check_params``: a damaged enumerated value is refused, not read as another), image shapes
against the bounds of :func:`~hashlearn._validation.check_image_shape`, and the arrays against
each other by encoding one sample of zeros (a tensor of the wrong shape is refused here, not
met as a numpy error at the first encode).
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from hashlearn._json import parse_json
from hashlearn._validation import check_image_shape
from hashlearn.exceptions import (
    FileFormatError,
    HashlearnError,
    InvalidInputError,
    UnknownNameError,
)
from hashlearn.features import features_from_dict
from hashlearn.hashers.base import Hasher
from hashlearn.hashers.model_format import MAX_HEADER_BYTES, read_model_file
from hashlearn.hashers.pipeline import FEATURES_KEY, FEATURES_PREFIX, FeatureHasher
from hashlearn.hashers.registry import get_hasher_class

__all__ = ["load_hasher"]

_MISSING = object()


def load_hasher(path: str | os.PathLike[str]) -> Hasher:
    """Load a model written by ``Hasher.save`` (safetensors + JSON metadata; never pickle).

    A file that also holds a feature extractor gives a :class:`FeatureHasher`. Raises
    FileFormatError for a file that is not a complete, consistent hashlearn model, and
    UnknownNameError for a method this hashlearn does not have.
    """
    metadata, arrays = read_model_file(path)
    where = os.fspath(path)
    method = metadata.get("method")
    if method is None:
        raise FileFormatError(f"{where!r} has incomplete hashlearn metadata: no 'method' entry")
    params = _entry(where, metadata, "params", dict)
    state = _entry(where, metadata, "state", dict)
    # the images of the fit; absent from models fitted on feature vectors
    image_shape = _entry(where, metadata, "image_shape", object, default=None)
    features = _entry(where, metadata, FEATURES_KEY, dict, default=None)
    resize_images = _entry(where, metadata, "resize_images", bool, default=False)
    feature_arrays = {
        key[len(FEATURES_PREFIX) :]: array
        for key, array in arrays.items()
        if key.startswith(FEATURES_PREFIX)
    }
    arrays = {key: array for key, array in arrays.items() if not key.startswith(FEATURES_PREFIX)}
    if (features is not None) != (metadata["format_version"] == "2") or (
        feature_arrays and features is None
    ):
        raise FileFormatError(
            f"{where!r} is corrupted: format version {metadata['format_version']} with "
            f"{'a' if features is not None else 'no'} feature extractor entry and "
            f"{len(feature_arrays)} feature extractor arrays (version 2 files, and they alone, "
            "have the entry)"
        )
    cls = get_hasher_class(method)
    try:
        hasher = cls(**params)
        hasher._check_params()
        hasher._set_state(arrays, state)
        if image_shape is not None:
            checked = _checked_image_shape(path, image_shape)
            own = getattr(hasher, "image_shape_", None)  # a deep hasher's, from its state
            if own is not None and tuple(own) != checked:
                raise FileFormatError(
                    f"{where!r} is corrupted: its image shape {checked} is not the "
                    f"{tuple(own)} its network was saved for"
                )
            hasher.image_shape_ = checked
        elif not hasattr(hasher, "image_shape_"):  # deep hashers keep theirs in their state
            hasher.image_shape_ = None
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise FileFormatError(
            f"{where!r} does not hold a complete {method!r} model: {exc}"
        ) from None
    _check_arrays_fit(where, hasher)
    if features is not None:
        hasher = FeatureHasher(_load_features(path, features, feature_arrays), hasher)
        _check_features_fit(where, hasher)
    if resize_images:
        hasher.resize_images_ = True
    return hasher


def _entry(
    where: str, metadata: dict[str, str], key: str, kind: type, default: Any = _MISSING
) -> Any:
    """The JSON value of metadata entry ``key``, of type ``kind`` (``default`` when absent)."""
    if key not in metadata:
        if default is _MISSING:
            raise FileFormatError(f"{where!r} has incomplete hashlearn metadata: no {key!r} entry")
        return default
    value = parse_json(
        metadata[key],
        f"{where!r} is corrupted: its {key!r} entry",
        max_bytes=MAX_HEADER_BYTES,
        error=FileFormatError,
    )
    if not isinstance(value, kind):
        raise FileFormatError(
            f"{where!r} is corrupted: its {key!r} entry must be a JSON "
            f"{_JSON_NAMES[kind]}, got {value!r:.80}"
        )
    return value


_JSON_NAMES = {dict: "object", bool: "boolean"}


def _check_arrays_fit(where: str, hasher: Hasher) -> None:
    """Encode one sample of zeros with a hasher of feature vectors just built from a file: its
    arrays must take the saved number of features (and image shape, when there is one) and give
    ``n_bits`` values. Deep hashers check their network against its configuration themselves."""
    n_features = getattr(hasher, "n_features_in_", None)
    if n_features is None:
        return
    image_shape = getattr(hasher, "image_shape_", None)
    if image_shape is not None and math.prod(image_shape) != n_features:
        raise FileFormatError(
            f"{where!r} is corrupted: its image shape {tuple(image_shape)} has "
            f"{math.prod(image_shape)} values, but its arrays take {n_features} per sample"
        )
    try:
        with np.errstate(all="ignore"):
            out = hasher.transform(np.zeros((1, n_features), np.float32))
        shape = np.shape(out)
    except (ArithmeticError, IndexError, KeyError, TypeError, ValueError) as exc:
        raise FileFormatError(
            f"{where!r} is corrupted: its arrays do not fit together ({exc})"
        ) from None
    if shape != (1, hasher.n_bits):
        raise FileFormatError(
            f"{where!r} is corrupted: its arrays give {shape[-1] if shape else 0} values per "
            f"sample, not the {hasher.n_bits} bits of the model"
        )


def _checked_image_shape(path: Any, value: Any) -> tuple[int, int, int]:
    """The ``image_shape`` metadata of a model file (see ``check_image_shape``)."""
    try:
        return check_image_shape(value)
    except InvalidInputError as exc:
        raise FileFormatError(f"{os.fspath(path)!r} has an unreadable image shape: {exc}") from None


def _check_features_fit(where: str, model: FeatureHasher) -> None:
    """The extractor of a model file, run on one image of zeros of its image shape, must give
    as many features as its hasher takes (a crafted extractor entry would otherwise fail at the
    first encoding, deep inside the hasher)."""
    expected = getattr(model.hasher, "n_features_in_", None)
    shape = model.image_shape_
    if expected is None or shape is None:
        return
    try:
        with np.errstate(all="ignore"):
            out = model.features.transform(np.zeros((1, *shape), np.float32))
        given = int(np.shape(out)[1])
    except (ArithmeticError, HashlearnError, IndexError, KeyError, TypeError, ValueError) as exc:
        raise FileFormatError(
            f"{where!r} is corrupted: its feature extractor fails on an image of its shape "
            f"{shape} ({exc})"
        ) from None
    if given != expected:
        raise FileFormatError(
            f"{where!r} is corrupted: its feature extractor gives {given} features per image, "
            f"its {model.hasher.name!r} hasher takes {expected}"
        )


def _load_features(path: Any, saved: Any, arrays: dict[str, Any]) -> Any:
    """The fitted extractor of a model file (its ``features`` metadata and arrays)."""
    try:
        return features_from_dict({**saved, "arrays": arrays})
    except (InvalidInputError, UnknownNameError) as exc:
        raise FileFormatError(
            f"{os.fspath(path)!r} holds a feature extractor this hashlearn cannot rebuild: {exc}"
        ) from None
