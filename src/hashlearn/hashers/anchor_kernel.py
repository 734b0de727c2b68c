"""RBF anchor-kernel features shared by the kernel-based supervised hashers (KSH, SDH).

Both Kernel-Based Supervised Hashing (Liu, Wang, Ji, Jiang & Chang, CVPR 2012) and Supervised
Discrete Hashing (Shen, Shen, Liu & Shen, CVPR 2015) map a sample ``x`` to its Gaussian RBF
kernel values against ``m`` anchors ``a_1 .. a_m`` drawn at random from the training data::

    phi(x)_j = exp(-||x - a_j||^2 / (2 sigma^2)) - mu_j,        j = 1 .. m

where ``sigma`` is the mean Euclidean distance between the training samples and the anchors (a
data-derived width that follows the scale of any features; the authors' code uses a similar
heuristic for KSH and a fixed width tuned to normalised features for SDH) and ``mu_j`` is the mean of ``exp(...)`` over the
training set, so that every feature is zero-mean on the training data (KSH's ``kbar``; for SDH it
plays the role of the bias term). A hash function is then linear in ``phi(x)``: the hashers built
this way derive from :class:`AnchorKernelHasher`, which keeps the kernel and applies it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hashlearn.hashers.base import Hasher

# Rows per block when computing distances, so memory stays near ``_BLOCK * m`` floats.
_BLOCK = 4096


@dataclass(frozen=True)
class AnchorKernel:
    """A fitted RBF anchor-kernel map ``phi``.

    Attributes
    ----------
    anchors : float32 (m, n_features), the anchor samples.
    sigma : the RBF width (> 0).
    mean : float32 (m,), the training mean of the raw kernel values, subtracted by ``__call__``.
    """

    anchors: np.ndarray
    sigma: float
    mean: np.ndarray

    def __call__(self, X: np.ndarray) -> np.ndarray:
        """Centred kernel features of ``X`` (float32 (n, n_features)): float32 (n, m)."""
        return _raw_kernel(X, self.anchors, self.sigma) - self.mean

    @property
    def n_anchors(self) -> int:
        return self.anchors.shape[0]


class AnchorKernelHasher(Hasher):
    """Base of the hashers whose projections are linear in the anchor-kernel features (KSH, SDH).

    A subclass's ``fit`` learns an :class:`AnchorKernel` and a projection ``(m, n_bits)``, keeps
    the kernel with :meth:`_keep_kernel` (as ``anchors_``, ``sigma_`` and ``kernel_mean_``) and the
    projection in ``projection_``; ``transform`` is then ``phi(X) @ projection_``.
    """

    anchors_: np.ndarray
    sigma_: float
    kernel_mean_: np.ndarray
    projection_: np.ndarray

    def _keep_kernel(self, kernel: AnchorKernel) -> None:
        """Store the fitted kernel map as the learned attributes ``transform`` rebuilds it from."""
        self.anchors_ = kernel.anchors
        self.sigma_ = kernel.sigma
        self.kernel_mean_ = kernel.mean

    @property
    def n_features_in_(self) -> int:
        """Values per sample the fitted hasher reads."""
        return int(self.anchors_.shape[1])

    def transform(self, X: Any) -> np.ndarray:
        """``phi(X) @ projection_``: float32 (n, n_bits), the bits are its signs."""
        self._check_fitted()
        X = self._check_input(X, fitted_features=self.n_features_in_)
        kernel = AnchorKernel(self.anchors_, self.sigma_, self.kernel_mean_)
        return kernel(X) @ self.projection_


def fit_anchor_kernel(
    X: np.ndarray, n_anchors: int, rng: np.random.Generator
) -> tuple[AnchorKernel, np.ndarray]:
    """Sample ``min(n_anchors, n)`` distinct anchors from ``X`` and fit ``sigma`` and the mean.

    ``X`` is float32 (n, n_features), already validated. ``sigma`` is the mean distance from the
    training samples to the anchors; if every such distance is zero (all samples identical) it is
    1, so the map stays finite. Returns the map and the centred training features
    ``phi(X)``, float32 (n, m).
    """
    n = X.shape[0]
    m = min(n_anchors, n)
    anchors = X[np.sort(rng.choice(n, size=m, replace=False))].copy()
    sq = _squared_distances(X, anchors)
    sigma = float(np.sqrt(sq, dtype=np.float64).mean())
    if not sigma > 0.0:
        sigma = 1.0
    features = _rbf(sq, sigma)
    mean = features.mean(axis=0, dtype=np.float64).astype(np.float32)
    features -= mean
    return AnchorKernel(anchors=anchors, sigma=sigma, mean=mean), features


def _squared_distances(X: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """float32 (n, m) squared Euclidean distances, computed block by block, clipped at 0."""
    anchors = anchors.astype(np.float64)
    anchor_norms = np.einsum("ij,ij->i", anchors, anchors)
    out = np.empty((X.shape[0], anchors.shape[0]), dtype=np.float32)
    for start in range(0, X.shape[0], _BLOCK):
        block = X[start : start + _BLOCK].astype(np.float64)
        sq = np.einsum("ij,ij->i", block, block)[:, None] + anchor_norms - 2.0 * (block @ anchors.T)
        out[start : start + _BLOCK] = np.maximum(sq, 0.0)
    return out


def _raw_kernel(X: np.ndarray, anchors: np.ndarray, sigma: float) -> np.ndarray:
    """float32 (n, m) uncentred RBF values ``exp(-||x - a||^2 / (2 sigma^2))``."""
    return _rbf(_squared_distances(X, anchors), sigma)


def _rbf(sq: np.ndarray, sigma: float) -> np.ndarray:
    """``exp(-sq / (2 sigma^2))`` of float32 squared distances, in place."""
    sq *= np.float32(-1.0 / (2.0 * sigma**2))
    return np.exp(sq, out=sq)
