"""L2 normalisation followed by centring on the training mean.

The preprocessing Moran & Lavrenko apply to GIST features before hashing in their Graph
Regularised Hashing experiments (ECIR 2015; S. Moran's "learning to hash" tutorial, 2020): every
row is divided by its Euclidean norm, ``x / ||x||_2``, and the mean of the normalised *training*
rows is then subtracted, so that hyperplanes through the origin split the data evenly. Rows of
zeros stay zero before centring.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hashlearn._validation import check_features
from hashlearn.features.base import FeatureExtractor
from hashlearn.features.pixels import check_fitted_features


def l2_normalize(X: np.ndarray) -> np.ndarray:
    """Rows of ``X`` divided by their Euclidean norms (rows of zeros are left as zeros)."""
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.maximum(norms, np.finfo(np.float32).tiny)


class L2Center(FeatureExtractor):
    """``transform(X) = X / ||X||_2 (row-wise) - mean_``, ``float32``.

    Parameters
    ----------
    None.

    Attributes
    ----------
    mean_ : float32 (n_features,), the mean of the L2-normalised training rows.
    """

    name = "l2-center"
    input_kind = "features"

    def __init__(self) -> None:
        pass

    def fit(self, X: Any, y: Any = None) -> L2Center:
        """Learn the mean of the L2-normalised rows of ``X`` (``(n, d)``); ``y`` is ignored."""
        X = l2_normalize(check_features(X))
        self.mean_ = X.mean(axis=0, dtype=np.float64).astype(np.float32)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """L2-normalised rows of ``X`` minus ``mean_``: shape ``(n, n_features)``, ``float32``."""
        self._check_fitted()
        X = check_fitted_features(X, self.mean_.shape[0], self.name)
        X = l2_normalize(X)
        X -= self.mean_
        return X

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"mean": self.mean_}, {}

    def _set_state(self, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
        self.mean_ = np.asarray(arrays["mean"], dtype=np.float32)
