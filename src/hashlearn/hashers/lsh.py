"""Locality-sensitive hashing by signs of Gaussian random projections (Charikar, STOC 2002).

Each bit is the side of a random hyperplane through the data mean: for unit-free Gaussian
directions ``w``, ``P[bit differs] = angle(x, x') / pi``, so Hamming distance estimates angular
distance. Optionally rows are L2-normalised first and then centred, the preprocessing used for GIST
features in Moran & Lavrenko's Graph Regularised Hashing experiments.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hashlearn._validation import check_random_state
from hashlearn.hashers.base import Hasher


class LSH(Hasher):
    """Sign random projections: ``bits = (X_pre - mean_) @ projection_ >= 0``.

    Parameters
    ----------
    n_bits : number of bits (hyperplanes).
    center : subtract the training mean before projecting (hyperplanes through the data mean).
    normalize : L2-normalise every row before centring.
    random_state : seed of the Gaussian directions; the same seed gives the same codes.

    Attributes
    ----------
    mean_ : float32 (n_features,), the training mean (zeros when ``center=False``).
    projection_ : float32 (n_features, n_bits), Gaussian directions, one column per bit.
    """

    name = "lsh"
    _saved_arrays = ("mean_", "projection_")

    def __init__(
        self,
        n_bits: int = 32,
        *,
        center: bool = True,
        normalize: bool = False,
        random_state: int | None = None,
    ) -> None:
        self.n_bits = n_bits
        self.center = center
        self.normalize = normalize
        self.random_state = random_state

    def _preprocess(self, X: np.ndarray) -> np.ndarray:
        if self.normalize:
            norms = np.linalg.norm(X, axis=1, keepdims=True)
            X = X / np.maximum(norms, np.finfo(np.float32).tiny)
        return X

    def fit(self, X: Any, y: Any = None) -> LSH:
        n_bits = self._check_n_bits()
        rng = np.random.default_rng(check_random_state(self.random_state))
        X = self._preprocess(self._check_input(X))
        d = X.shape[1]
        self.mean_ = (
            X.mean(axis=0, dtype=np.float64).astype(np.float32)
            if self.center
            else np.zeros(d, np.float32)
        )
        self.projection_ = rng.standard_normal((d, n_bits)).astype(np.float32)
        return self

    @property
    def n_features_in_(self) -> int:
        """Values per sample the fitted hasher reads."""
        return int(self.projection_.shape[0])

    def transform(self, X: Any) -> np.ndarray:
        self._check_fitted()
        X = self._preprocess(self._check_input(X, fitted_features=self.n_features_in_))
        return (X - self.mean_) @ self.projection_
