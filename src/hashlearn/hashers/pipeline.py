"""A feature extractor and a hasher as one model: images in, codes out.

Shallow hashers learn on feature vectors (GIST, HOG...). ``FeatureHasher(features, hasher)``
chains an extractor and a hasher fitted on its output, so that whoever loads the model file gets
codes from images, not from features computed elsewhere: ``hashlearn serve`` takes image files,
``hashlearn encode`` takes image arrays, the report draws the model's own codes.

The file is the hasher's model file (its method, parameters, state and arrays, as
:meth:`Hasher.save <hashlearn.hashers.base.Hasher.save>` writes them) plus the extractor: its
config and state as JSON in the metadata key ``features``, and its arrays under names starting
with ``features.``; it has format version 2. :func:`hashlearn.hashers.load_hasher` returns a
``FeatureHasher`` for such a file.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from hashlearn.exceptions import InvalidInputError
from hashlearn.features import FeatureExtractor, FeaturePipeline, features_to_dict
from hashlearn.hashers.base import Hasher

FEATURES_KEY = "features"  # metadata key of the extractor's config and state
FEATURES_PREFIX = "features."  # tensor name prefix of the extractor's arrays


class FeatureHasher(Hasher):
    """``encode(X) = hasher.encode(features.transform(X))``, fitted, saved and loaded as one.

    Parameters
    ----------
    features : FeatureExtractor
        Maps the inputs (usually images) to ``(n, d)`` feature vectors, e.g.
        ``create_features("gist", postprocess="l2-center")``.
    hasher : Hasher
        A hasher of feature vectors (``input_kind == "features"``), e.g. ``create_hasher("itq")``.

    Both may come fitted (the hasher on the extractor's output): the pair is then ready to encode
    and save without a new fit. ``fit`` fits both.

    Attributes
    ----------
    image_shape_ : (h, w, c) of the images the extractor was fitted on, or None when it reads
        feature vectors (``pixels``, ``l2-center``).
    """

    def __init__(self, features: FeatureExtractor, hasher: Hasher) -> None:
        self.features = features
        self.hasher = hasher

    def _parts(self) -> tuple[FeatureExtractor, Hasher]:
        features, hasher = self.features, self.hasher
        if not isinstance(features, FeatureExtractor):
            raise InvalidInputError(
                f"features must be a feature extractor, got {features!r} ({type(features).__name__})"
            )
        if not isinstance(hasher, Hasher) or isinstance(hasher, FeatureHasher):
            raise InvalidInputError(
                f"hasher must be a hasher of feature vectors, got {hasher!r} "
                f"({type(hasher).__name__})"
            )
        if hasher.input_kind != "features":
            raise InvalidInputError(
                f"{hasher.name!r} reads images, not the feature vectors of {features.name!r}; "
                "deep hashers learn their own features"
            )
        return features, hasher

    # The inner hasher's identity: its name, code length and supervision.
    @property
    def name(self) -> str:  # type: ignore[override]
        return self.hasher.name

    @property
    def n_bits(self) -> int:  # type: ignore[override]
        return self.hasher.n_bits

    @property
    def supervised(self) -> bool:  # type: ignore[override]
        return self.hasher.supervised

    @property
    def input_kind(self) -> str:  # type: ignore[override]
        return self._parts()[0].input_kind

    @property
    def image_shape_(self) -> tuple[int, ...] | None:
        first = (
            self.features.steps[0] if isinstance(self.features, FeaturePipeline) else self.features
        )
        shape = getattr(first, "image_shape_", None)
        return None if shape is None else tuple(int(s) for s in shape)

    @property
    def is_fitted(self) -> bool:
        features, hasher = self._parts()
        return bool(features.is_fitted and hasher.is_fitted)

    def fit(self, X: Any, y: Any = None, **fit_params: Any) -> FeatureHasher:
        """Fit the extractor on ``X``, then the hasher on its features (and ``y``, ``fit_params``)."""
        features, hasher = self._parts()
        hasher.fit(features.fit_transform(X, y), y, **fit_params)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """The hasher's projections ``(n, n_bits)`` of the features of ``X``."""
        features, hasher = self._parts()
        self._check_fitted()
        return hasher.transform(features.transform(X))

    def _model_file(self) -> tuple[dict[str, str], dict[str, np.ndarray]]:
        features, hasher = self._parts()
        self._check_fitted()
        metadata, tensors = hasher._model_file()
        saved = features_to_dict(features)
        for key, array in saved["arrays"].items():
            tensors[FEATURES_PREFIX + key] = np.ascontiguousarray(array)
        metadata[FEATURES_KEY] = json.dumps({"config": saved["config"], "state": saved["state"]})
        if getattr(self, "resize_images_", False):
            metadata["resize_images"] = "true"
        metadata["format_version"] = "2"
        return metadata, tensors
