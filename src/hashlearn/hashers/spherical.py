"""Spherical Hashing (Heo, Lee, He, Chang & Yoon, "Spherical Hashing", IEEE Conference on Computer
Vision and Pattern Recognition, CVPR 2012).

Each bit is a hypersphere with pivot ``p_k`` and radius ``t_k``: ``h_k(x) = 1`` when
``||x - p_k|| <= t_k``, else 0. Closed spheres bound regions tighter than hyperplanes, and ``c``
spheres can carve space into many more cells. The paper asks of the ``c`` spheres, on ``m``
training points:

* balanced bits: each sphere holds half the points, ``o_k = |{x : h_k(x) = 1}| = m / 2``;
* independent pairs: every two spheres share a quarter,
  ``o_ij = |{x : h_i(x) = h_j(x) = 1}| = m / 4``.

Algorithm 1 of the paper alternates between the two:

1. initialise the pivots at ``c`` distinct random training points;
2. set each radius ``t_k`` to the median distance from ``p_k`` (here halfway between the
   ``floor(m / 2)``-th and the next-closest point, so exactly ``floor(m / 2)`` points are inside);
3. count the overlaps ``o_ij``; stop once ``mean(|o_ij - m / 4|) <= eps_m`` and
   ``std(|o_ij - m / 4|) <= eps_s`` over the pairs ``i < j`` (the paper's tolerances are
   ``eps_m = 0.1 m / 4`` and ``eps_s = 0.15 m / 4``), or after ``max_iter`` updates;
4. move the pivots: ``f_{i<-j} = 1/2 (o_ij - m/4) / (m/4) (p_i - p_j)`` pushes two spheres apart
   when they overlap too much and pulls them together when too little, and
   ``p_i <- p_i + 1/c sum_j f_{i<-j}``; go to 2.

The paper trains on a small random subset of the data; so does this module (``max_samples``).

``transform`` returns ``t_k - ||x - p_k||``, non-negative exactly inside sphere ``k`` (bit 1).
The paper compares codes with a spherical Hamming distance ``|b_i xor b_j| / |b_i and b_j|``,
which rewards shared ones (shared enclosing spheres); hashlearn's indexes and evaluation use plain
Hamming distance for every method, so the retrieval numbers here are those of spherical bits under
Hamming ranking, a little below the paper's own.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hashlearn._validation import check_float, check_int, check_random_state
from hashlearn.exceptions import InvalidInputError
from hashlearn.hashers.base import Hasher

_CHUNK_ROWS = 8192


def _distances(X: np.ndarray, pivots: np.ndarray) -> np.ndarray:
    """Euclidean distances ``(n, c)`` in float64 between rows of ``X`` and ``pivots``, by chunks."""
    pivots = pivots.astype(np.float64)
    pivot_norms = np.einsum("ij,ij->i", pivots, pivots)
    out = np.empty((len(X), len(pivots)), np.float64)
    for start in range(0, len(X), _CHUNK_ROWS):
        chunk = X[start : start + _CHUNK_ROWS].astype(np.float64)
        squared = np.einsum("ij,ij->i", chunk, chunk)[:, None] - 2.0 * chunk @ pivots.T
        out[start : start + len(chunk)] = np.sqrt(np.maximum(squared + pivot_norms, 0.0))
    return out


class SphericalHashing(Hasher):
    """Spherical Hashing: bit ``k`` is 1 inside the hypersphere ``||x - p_k|| <= t_k``.

    Parameters
    ----------
    n_bits : number of hyperspheres (at most the number of distinct training samples used).
    max_samples : train on a random subset of at most this many samples (``None``: all); the paper
        learns the spheres on a small sample, and the cost per iteration is
        ``O(max_samples * n_features * n_bits)``.
    max_iter : most pivot updates (the paper iterates until its tolerances are met).
    epsilon_mean : tolerance on ``mean(|o_ij - m/4|)`` as a fraction of ``m / 4`` (paper: 0.1).
    epsilon_std : tolerance on ``std(|o_ij - m/4|)`` as a fraction of ``m / 4`` (paper: 0.15).
    random_state : seed of the training subset and the initial pivots.

    Attributes
    ----------
    pivots_ : float32 (n_bits, n_features), the sphere centres ``p_k``.
    radii_ : float32 (n_bits,), the radii ``t_k``.
    overlap_history_ : float64 (n_iter_ + 1, 2), mean and standard deviation of ``|o_ij - m/4|``
        over the pairs ``i < j`` before the first update and after each one (zeros for one bit).
    n_iter_ : int, the number of pivot updates made.
    converged_ : bool, whether both tolerances were met.
    n_training_samples_ : int, ``m``, the number of training points the spheres were fitted on.
    """

    name = "sph"

    def __init__(
        self,
        n_bits: int = 32,
        *,
        max_samples: int | None = 2000,
        max_iter: int = 100,
        epsilon_mean: float = 0.1,
        epsilon_std: float = 0.15,
        random_state: int | None = None,
    ) -> None:
        self.n_bits = n_bits
        self.max_samples = max_samples
        self.max_iter = max_iter
        self.epsilon_mean = epsilon_mean
        self.epsilon_std = epsilon_std
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> SphericalHashing:
        n_bits = self._check_n_bits()
        rng = np.random.default_rng(check_random_state(self.random_state))
        max_iter = check_int(self.max_iter, "max_iter", minimum=0)
        epsilon_mean = check_float(self.epsilon_mean, "epsilon_mean", minimum=0.0)
        epsilon_std = check_float(self.epsilon_std, "epsilon_std", minimum=0.0)
        max_samples = (
            None
            if self.max_samples is None
            else check_int(self.max_samples, "max_samples", minimum=2)
        )
        X = self._check_input(X)
        n = len(X)
        m = n if max_samples is None else min(n, max_samples)
        if m < 2:
            raise InvalidInputError(f"spherical hashing needs at least 2 samples, got {n}")
        sample = X if m == n else X[np.sort(rng.choice(n, m, replace=False))]
        sample = sample.astype(np.float64)
        # identical pivots would feel no force between them and stay identical: start from
        # distinct points
        distinct = np.sort(np.unique(sample, axis=0, return_index=True)[1])
        if n_bits > len(distinct):
            raise InvalidInputError(
                f"spherical hashing initialises each of its n_bits={n_bits} pivots at a distinct "
                f"training point, but the {m} training points used (n_samples={n}, "
                f"max_samples={self.max_samples}) hold only {len(distinct)} distinct ones; use "
                "fewer bits or more samples"
            )
        pivots = sample[rng.choice(distinct, n_bits, replace=False)].copy()

        quarter = m / 4.0
        upper = np.triu_indices(n_bits, k=1)
        history = []
        n_iter = 0
        while True:
            radii, inside = _median_radii(_distances(sample, pivots))
            overlaps = (inside.T @ inside).astype(np.float64)  # o_ij
            deviation = np.abs(overlaps[upper] - quarter)
            mean, std = (deviation.mean(), deviation.std()) if n_bits > 1 else (0.0, 0.0)
            history.append((mean, std))
            converged = mean <= epsilon_mean * quarter and std <= epsilon_std * quarter
            if converged or n_iter == max_iter:
                break
            coefficients = 0.5 * (overlaps - quarter) / quarter
            np.fill_diagonal(coefficients, 0.0)
            # sum_j c_ij (p_i - p_j) = (sum_j c_ij) p_i - (C P)_i, averaged over the c spheres
            forces = coefficients.sum(axis=1)[:, None] * pivots - coefficients @ pivots
            pivots += forces / n_bits
            n_iter += 1

        self.pivots_ = pivots.astype(np.float32)
        self.radii_ = radii.astype(np.float32)
        self.overlap_history_ = np.asarray(history, np.float64).reshape(-1, 2)
        self.n_iter_ = n_iter
        self.converged_ = bool(converged)
        self.n_training_samples_ = m
        return self

    @property
    def n_features_in_(self) -> int:
        """Values per sample the fitted hasher reads."""
        return int(self.pivots_.shape[1])

    def transform(self, X: Any) -> np.ndarray:
        self._check_fitted()
        X = self._check_input(X, fitted_features=self.n_features_in_)
        return (self.radii_ - _distances(X, self.pivots_)).astype(np.float32)

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {
            "pivots": self.pivots_,
            "radii": self.radii_,
            "overlap_history": self.overlap_history_,
        }
        values = {
            "n_iter": self.n_iter_,
            "converged": self.converged_,
            "n_training_samples": self.n_training_samples_,
        }
        return arrays, values

    def _set_state(self, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
        self.pivots_ = arrays["pivots"]
        self.radii_ = arrays["radii"]
        self.overlap_history_ = arrays["overlap_history"]
        self.n_iter_ = int(values["n_iter"])
        self.converged_ = bool(values["converged"])
        self.n_training_samples_ = int(values["n_training_samples"])


def _median_radii(distances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Radii putting exactly ``floor(m / 2)`` of the ``m`` points inside each sphere (barring ties).

    Each radius lies halfway between the ``floor(m / 2)``-th and the next distance, so no point is
    left on the boundary. Returns the radii ``(c,)`` and the 0/1 float membership matrix ``(m, c)``.
    """
    half = len(distances) // 2
    nearest = np.partition(distances, [half - 1, half], axis=0)
    radii = 0.5 * (nearest[half - 1] + nearest[half])
    exact = np.float32 if len(distances) < 2**24 else np.float64  # counts stay exact integers
    return radii, (distances <= radii).astype(exact)
