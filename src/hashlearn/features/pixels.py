"""Raw values as features: every image flattened to one vector.

The baseline every descriptor is compared with. Image arrays ``(n, h, w[, c])`` become
``(n, h*w*c)`` (row-major: rows, then columns, then channels); ``(n, d)`` feature arrays pass
through unchanged, as ``float32``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hashlearn._validation import check_features, check_image_shape, image_shape_of
from hashlearn.exceptions import InvalidInputError
from hashlearn.features.base import FeatureExtractor


class Pixels(FeatureExtractor):
    """Flatten images to vectors: ``(n, h, w[, c]) -> (n, h*w*c)``, ``float32``.

    Parameters
    ----------
    None.

    Attributes
    ----------
    n_features_ : int, the number of values per sample seen in ``fit`` (``h*w*c`` or ``d``).
    image_shape_ : (h, w, c) of the images seen in ``fit``, or None for feature vectors.
    """

    name = "pixels"
    input_kind = "features"

    def __init__(self) -> None:
        pass

    def fit(self, X: Any, y: Any = None) -> Pixels:
        """Remember the number of values per sample of ``X`` (and the shape of its images, when
        it holds images); ``y`` is ignored."""
        self.n_features_ = int(check_features(X).shape[1])
        self.image_shape_ = image_shape_of(X)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """``X`` flattened to ``(n, n_features_)``, ``float32`` (a view of ``X`` when it is already
        a C-contiguous ``float32`` array)."""
        self._check_fitted()
        return check_fitted_features(X, self.n_features_, self.name)

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        shape = getattr(self, "image_shape_", None)
        return {}, {"n_features": self.n_features_, "image_shape": shape and list(shape)}

    def _set_state(self, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
        self.n_features_ = int(values["n_features"])
        shape = values.get("image_shape")  # absent from files written before it was kept
        self.image_shape_ = None if shape is None else check_image_shape(shape)


def check_fitted_features(X: Any, n_features: int, name: str) -> np.ndarray:
    """``check_features(X)``, then require ``n_features`` values per sample."""
    X = check_features(X)
    if X.shape[1] != n_features:
        raise InvalidInputError(
            f"X has {X.shape[1]} values per sample, but this {name} extractor was fitted on "
            f"{n_features}"
        )
    return X
