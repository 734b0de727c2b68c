"""PCA hashing: the sign of the top principal components of centred data.

The baseline of Wang, Kumar & Chang, "Semi-Supervised Hashing for Scalable Image Retrieval"
(CVPR 2010) and of Gong, Lazebnik, Gordo & Perronnin, "Iterative Quantization: A Procrustean
Approach to Learning Binary Codes for Large-scale Image Retrieval" (IEEE TPAMI 35(12), 2013; CVPR
2011), where it is called PCA-Direct: with ``mu`` the training mean and ``W`` the ``(d, n_bits)``
matrix of the leading eigenvectors of the covariance ``(X - mu)^T (X - mu) / n``, the code of ``x``
is ``sign((x - mu) W)``. Every bit splits the data through its mean along a direction of maximal
variance, and the bits are pairwise uncorrelated; but the later bits carry ever less variance, which
is why PCA hashing degrades as ``n_bits`` grows (the motivation for ITQ's rotation).

Each eigenvector is defined only up to sign; flipping it flips one bit in every code, which leaves
all Hamming distances unchanged. To make codes reproducible across LAPACK builds, the sign is fixed
so that the largest-magnitude entry of each direction is positive.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg

from hashlearn._parallel import single_threaded_blas
from hashlearn._validation import check_random_state
from hashlearn.exceptions import InvalidInputError
from hashlearn.hashers.base import Hasher


def check_n_components(n_bits: int, X: np.ndarray, method: str) -> None:
    """Raise InvalidInputError unless ``n_bits <= min(n_samples, n_features)``."""
    n, d = X.shape
    if n_bits > min(n, d):
        raise InvalidInputError(
            f"{method} needs n_bits <= min(n_samples, n_features) = min({n}, {d}) = {min(n, d)}, "
            f"got n_bits={n_bits}"
        )


def principal_directions(Xc: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` leading principal directions of centred data, largest variance first.

    Parameters
    ----------
    Xc : float array (n, d), centred rows; ``k <= min(n, d)``.
    k : number of directions.

    Returns
    -------
    components : float64 (d, k), orthonormal columns, each with its largest-magnitude entry positive.
    variances : float64 (k,), the variance of the data along each direction (eigenvalues of the
        covariance ``Xc^T Xc / n``), non-increasing.
    """
    n, d = Xc.shape
    X64 = np.asarray(Xc, dtype=np.float64)
    if d <= n:
        # eigenvectors of the d x d scatter matrix
        scatter = X64.T @ X64
        with single_threaded_blas():
            values, vectors = scipy.linalg.eigh(scatter, subset_by_index=(d - k, d - 1))
    else:
        # fewer samples than features: eigenvectors of the n x n Gram matrix, mapped back
        gram = X64 @ X64.T
        with single_threaded_blas():
            values, left = scipy.linalg.eigh(gram, subset_by_index=(n - k, n - 1))
        vectors = X64.T @ left
        norms = np.linalg.norm(vectors, axis=0)
        vectors /= np.where(norms > 0, norms, 1.0)
    order = np.argsort(values)[::-1]
    values = np.maximum(values[order], 0.0) / n
    vectors = vectors[:, order]
    pivot = np.argmax(np.abs(vectors), axis=0)
    vectors *= np.where(vectors[pivot, np.arange(k)] < 0, -1.0, 1.0)
    return vectors, values


class PCAH(Hasher):
    """PCA hashing: ``bits = (X - mean_) @ components_ >= 0``.

    Parameters
    ----------
    n_bits : number of bits = number of principal directions; at most ``min(n_samples,
        n_features)`` of the training data.
    random_state : accepted for a uniform interface; PCA hashing is deterministic and does not use
        it (it is still checked).

    Attributes
    ----------
    mean_ : float32 (n_features,), the training mean.
    components_ : float32 (n_features, n_bits), orthonormal principal directions, one column per
        bit, in order of decreasing variance.
    explained_variance_ : float32 (n_bits,), the training variance along each direction.
    """

    name = "pcah"

    def __init__(self, n_bits: int = 32, *, random_state: int | None = None) -> None:
        self.n_bits = n_bits
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> PCAH:
        n_bits = self._check_n_bits()
        check_random_state(self.random_state)
        X = self._check_input(X)
        check_n_components(n_bits, X, "PCA hashing")
        mean = X.mean(axis=0, dtype=np.float64)
        components, variances = principal_directions(X - mean, n_bits)
        self.mean_ = mean.astype(np.float32)
        self.components_ = components.astype(np.float32)
        self.explained_variance_ = variances.astype(np.float32)
        return self

    @property
    def n_features_in_(self) -> int:
        """Values per sample the fitted hasher reads."""
        return int(self.components_.shape[0])

    def transform(self, X: Any) -> np.ndarray:
        self._check_fitted()
        X = self._check_input(X, fitted_features=self.n_features_in_)
        return (X - self.mean_) @ self.components_

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {
            "mean": self.mean_,
            "components": self.components_,
            "explained_variance": self.explained_variance_,
        }
        return arrays, {}

    def _set_state(self, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
        self.mean_ = arrays["mean"]
        self.components_ = arrays["components"]
        self.explained_variance_ = arrays["explained_variance"]
