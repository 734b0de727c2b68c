"""Spectral Hashing (Weiss, Torralba & Fergus, "Spectral Hashing", Advances in Neural Information
Processing Systems 21, NIPS 2008).

Good codes make Hamming distance follow a similarity ``W(i, j) = exp(-||x_i - x_j||^2 / eps^2)``:
minimise ``sum_ij W(i, j) ||b_i - b_j||^2`` over balanced (``sum_i b_i = 0``), uncorrelated
(``b^T b = n I``) codes ``b_i in {-1, 1}^k``. Relaxing the signs gives the smallest non-trivial
eigenvectors of the graph Laplacian, and in the limit of many samples eigenfunctions of the weighted
Laplace-Beltrami operator. The paper makes them closed-form with two assumptions:

1. PCA: rotate the centred data onto its top principal directions (here ``min(n_bits, d)``);
2. along each principal direction ``j`` the data are uniform on the range ``[a_j, b_j]`` seen in
   training. For a separable (product) distribution the eigenfunctions of the Laplacian include
   the one-dimensional ones, and for a uniform distribution on ``[a, b]`` they are

   ``phi_k(x) = sin(pi / 2 + k pi / (b - a) * (x - a))``,
   ``lambda_k = 1 - exp(-eps^2 / 2 * |k pi / (b - a)|^2)``,  ``k = 0, 1, 2, ...``

   (``k = 0`` is the constant, trivial eigenfunction and is dropped).

Spectral Hashing enumerates these one-dimensional eigenfunctions over all directions and modes,
keeps the ``n_bits`` with the smallest eigenvalues, and thresholds each at zero. Since ``lambda``
is increasing in ``omega^2 = (k pi / (b - a))^2`` whatever ``eps``, the ordering (and so the codes)
does not depend on ``eps``; this module stores ``omega^2``, the eigenvalue of ``-d^2/dx^2`` with
Neumann boundary conditions, as the eigenvalue of each bit. Long directions receive several bits
(modes ``k = 1, 2, ...`` split them into ever finer stripes), short ones maybe none. Products of
eigenfunctions from different directions are excluded, as in the paper.

Note ``sin(pi / 2 + t) = cos(t)``: the value of bit ``(j, k)`` is
``cos(k pi (y_j - a_j) / (b_j - a_j))`` for the ``j``-th principal coordinate ``y_j``; outside the
training range the cosine simply continues.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg

from hashlearn._validation import check_random_state
from hashlearn.exceptions import InvalidInputError
from hashlearn.hashers.base import Hasher

# A principal direction whose range is below this fraction of the longest range carries no
# information (a rank-deficient sample): it gets no eigenfunction.
_RELATIVE_RANGE_FLOOR = 1e-6


def _principal_directions(X: np.ndarray, n_components: int) -> np.ndarray:
    """Top ``n_components`` principal directions of centred ``X`` (float64), ``(d, n_components)``.

    Columns are sorted by decreasing variance and signed so that the largest-magnitude entry of each
    is positive, so the result does not depend on the eigensolver's sign choice.
    """
    n, d = X.shape
    if d <= n:
        _, vectors = scipy.linalg.eigh(
            X.T @ X, subset_by_index=[d - n_components, d - 1], driver="evr"
        )
        vectors = vectors[:, ::-1]
    else:  # fewer samples than features: the eigenvectors of the n x n Gram matrix are cheaper
        values, left = scipy.linalg.eigh(
            X @ X.T, subset_by_index=[n - n_components, n - 1], driver="evr"
        )
        values, left = values[::-1], left[:, ::-1]
        # v = X^T u / sqrt(lambda); a null direction of the Gram matrix becomes a zero column
        positive = values > _RELATIVE_RANGE_FLOOR**2 * max(values[0], 0.0)
        vectors = np.zeros((d, n_components))
        vectors[:, positive] = X.T @ left[:, positive] / np.sqrt(values[positive])
    largest = np.abs(vectors).argmax(axis=0)
    signs = np.sign(vectors[largest, np.arange(vectors.shape[1])])
    return vectors * np.where(signs == 0, 1.0, signs)


class SpectralHashing(Hasher):
    """Spectral Hashing: the ``n_bits`` lowest 1-D Laplacian eigenfunctions of the PCA box.

    Parameters
    ----------
    n_bits : code length (may exceed the number of features: a direction can carry several modes).
    random_state : accepted for a uniform interface and validated, but unused: PCA and the
        eigenfunction choice are deterministic, so every seed gives the same codes.

    Attributes
    ----------
    mean_ : float32 (n_features,), the training mean.
    components_ : float32 (n_features, n_components), principal directions by decreasing variance,
        ``n_components = min(n_bits, n_features, n_samples)``.
    lower_, upper_ : float64 (n_components,), the range ``[a_j, b_j]`` of the training data along
        each principal direction.
    bit_directions_ : int64 (n_bits,), the principal direction ``j`` of each bit.
    bit_modes_ : int64 (n_bits,), the mode ``k >= 1`` of each bit.
    eigenvalues_ : float64 (n_bits,), ``(k pi / (b_j - a_j))^2`` for each bit, ascending: no
        eigenfunction left out has a smaller one (ties broken by direction, then mode).
    """

    name = "sh"

    def __init__(self, n_bits: int = 32, *, random_state: int | None = None) -> None:
        self.n_bits = n_bits
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> SpectralHashing:
        n_bits = self._check_n_bits()
        check_random_state(self.random_state)
        X = self._check_input(X)
        n, d = X.shape
        if n < 2:
            raise InvalidInputError(f"spectral hashing needs at least 2 samples, got {n}")
        mean = X.mean(axis=0, dtype=np.float64)
        centred = X.astype(np.float64) - mean
        n_components = min(n_bits, d, n)
        components = _principal_directions(centred, n_components)
        projected = centred @ components
        lower, upper = projected.min(axis=0), projected.max(axis=0)
        directions, modes, eigenvalues = _lowest_eigenfunctions(upper - lower, n_bits)

        self.mean_ = mean.astype(np.float32)
        self.components_ = components.astype(np.float32)
        self.lower_ = lower
        self.upper_ = upper
        self.bit_directions_ = directions
        self.bit_modes_ = modes
        self.eigenvalues_ = eigenvalues
        return self

    @property
    def n_features_in_(self) -> int:
        """Values per sample the fitted hasher reads."""
        return int(self.components_.shape[0])

    def transform(self, X: Any) -> np.ndarray:
        self._check_fitted()
        X = self._check_input(X, fitted_features=self.n_features_in_)
        projected = (X - self.mean_) @ self.components_[:, self.bit_directions_]
        offset = (projected - self.lower_[self.bit_directions_]).astype(np.float64)
        omegas = self.bit_modes_ * np.pi / (self.upper_ - self.lower_)[self.bit_directions_]
        return np.cos(offset * omegas).astype(np.float32)  # = sin(pi / 2 + omega (y - a))

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {
            "mean": self.mean_,
            "components": self.components_,
            "lower": self.lower_,
            "upper": self.upper_,
            "bit_directions": self.bit_directions_,
            "bit_modes": self.bit_modes_,
            "eigenvalues": self.eigenvalues_,
        }
        return arrays, {}

    def _set_state(self, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
        self.mean_ = arrays["mean"]
        self.components_ = arrays["components"]
        self.lower_ = arrays["lower"]
        self.upper_ = arrays["upper"]
        self.bit_directions_ = arrays["bit_directions"]
        self.bit_modes_ = arrays["bit_modes"]
        self.eigenvalues_ = arrays["eigenvalues"]


def _lowest_eigenfunctions(
    ranges: np.ndarray, n_bits: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``n_bits`` non-trivial 1-D eigenfunctions of a box with side lengths ``ranges``.

    Returns ``(directions, modes, eigenvalues)``, each of length ``n_bits``, sorted by eigenvalue
    ``(mode * pi / ranges[direction])^2`` ascending, ties by direction then mode. Directions whose
    range is (numerically) zero get no eigenfunction.
    """
    longest = float(ranges.max(initial=0.0))
    if not longest > 0:
        raise InvalidInputError(
            "spectral hashing needs data that vary: every training sample is identical"
        )
    usable = np.flatnonzero(ranges > _RELATIVE_RANGE_FLOOR * longest)
    # n_bits modes of the longest direction have omega <= n_bits pi / longest, so no chosen mode of
    # direction j exceeds n_bits * ranges[j] / longest; one more keeps the bound safe from rounding.
    max_modes = np.floor(n_bits * ranges[usable] / longest).astype(np.int64) + 1
    directions = np.repeat(usable, max_modes)
    modes = np.concatenate([np.arange(1, m + 1) for m in max_modes])
    eigenvalues = (modes * np.pi / ranges[directions]) ** 2
    order = np.lexsort((modes, directions, eigenvalues))[:n_bits]
    return directions[order].astype(np.int64), modes[order].astype(np.int64), eigenvalues[order]
