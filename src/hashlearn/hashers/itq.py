"""Iterative Quantization (ITQ) and its supervised variant CCA-ITQ.

Gong, Lazebnik, Gordo & Perronnin, "Iterative Quantization: A Procrustean Approach to Learning
Binary Codes for Large-scale Image Retrieval", IEEE TPAMI 35(12), 2013 (first as Gong & Lazebnik,
CVPR 2011).

**ITQ.** Centre the data and project it on its top ``c = n_bits`` principal directions ``W``:
``V = (X - mu) W`` (n, c). Codes are ``B = sign(V R)`` for an orthogonal ``c x c`` rotation ``R``
chosen to minimise the quantisation loss

    Q(B, R) = ||B - V R||_F^2,   B in {-1, +1}^(n x c),  R^T R = I.

Starting from a random orthogonal ``R``, ITQ alternates ``n_iter`` times (paper: 50)

- fix ``R``, update ``B = sign(V R)`` (optimal for fixed ``R``, entry by entry);
- fix ``B``, update ``R``: the orthogonal Procrustes problem ``max_R tr(R^T V^T B)``, solved by
  the SVD ``V^T B = U S Ŵ^T`` and ``R = U Ŵ^T``.

Each step minimises ``Q`` exactly over one block of variables, so ``Q`` never rises. The hash
function is ``h(x) = sign((x - mu) W R)``. Because ``R`` is orthogonal, the rotated projections keep
the PCA subspace and its total variance; the rotation only spreads that variance evenly over the
bits and aligns the data with the hypercube's vertices.

**CCA-ITQ.** ``W`` is replaced by the canonical directions between the features and the label
indicator matrix ``Y`` (one column per class; multi-label rows may hold several ones). With the
centred covariances ``C_xx``, ``C_xy``, ``C_yy`` the directions solve the generalised eigenproblem

    C_xy C_yy^+ C_yx w_k = lambda_k^2 (C_xx + rho I) w_k,   w_k^T (C_xx + rho I) w_k = 1,

whose ``lambda_k`` are the canonical correlations; the ridge ``rho`` keeps ``C_xx`` invertible (many
pixels are constant). As in the paper, each direction is scaled by its correlation,
``W = [lambda_1 w_1, ..., lambda_c w_c]``, so directions that carry little label information count
little in the quantisation loss; then ITQ finds ``R`` as above. Here ``rho = regularization *
tr(C_xx) / d`` (a fraction of the average feature variance), so the amount of smoothing does not
depend on the scale of the features or on the number of samples. The eigenproblem is solved through
a Cholesky factor ``C_xx + rho I = L L^T``: the singular vectors of ``L^{-1} C_xy C_yy^{-1/2}`` are
``L^T w_k`` and its singular values are the ``lambda_k``.

The right-hand side has rank at most ``r = rank(C_yy)`` (``c_labels - 1`` for one-hot labels: the
centred indicator columns sum to zero), so there are at most ``r`` directions with a non-zero
correlation. For ``n_bits > r`` the paper's recipe (take the top ``n_bits`` eigenvectors, scale
them by their eigenvalues, rotate) gives the remaining directions a weight of zero: they add
nothing to ``V``, and the ``n_bits`` bits become ``n_bits`` hyperplanes through the mean of the
``r``-dimensional canonical space, namely the rows of the tight frame ``R[:r]`` chosen by ITQ. We
do exactly that, with the zero-weight directions set to exactly zero rather than to the arbitrary
null-space vectors an eigen-solver returns (which the paper multiplies by eigenvalues that are zero
up to round-off), so the codes do not depend on round-off noise.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg

from hashlearn._parallel import single_threaded_blas
from hashlearn._validation import check_float, check_int, check_random_state
from hashlearn.exceptions import InvalidInputError
from hashlearn.hashers.base import Hasher
from hashlearn.hashers.bits import signs
from hashlearn.hashers.pca import check_n_components, principal_directions


def random_rotation(k: int, rng: np.random.Generator) -> np.ndarray:
    """A ``k x k`` orthogonal matrix drawn uniformly (Haar): QR of a Gaussian matrix, signs fixed."""
    q, r = np.linalg.qr(rng.standard_normal((k, k)))
    return q * np.where(np.diag(r) < 0, -1.0, 1.0)


def iterative_quantization(
    V: np.ndarray, n_iter: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[float]]:
    """Learn ITQ's rotation of the embedded data ``V`` (n, c).

    Returns the orthogonal rotation ``R`` (c, c), float64, and the quantisation losses
    ``||sign(V R_t) - V R_t||_F^2`` for the initial rotation ``R_0`` and after each of the
    ``n_iter`` Procrustes updates (``n_iter + 1`` values, non-increasing; the last one is the loss
    of the returned rotation). ``sign(0) = +1``, as in the codes.
    """
    V = np.asarray(V, dtype=np.float64)
    n, c = V.shape
    squared_norm = float(np.sum(V * V))
    R = random_rotation(c, rng)
    losses = []
    with single_threaded_blas():
        for iteration in range(n_iter + 1):
            Z = V @ R
            # ||B - Z||^2 = ||B||^2 - 2 <B, Z> + ||Z||^2 with B = sign(Z) and ||Z|| = ||V||
            losses.append(n * c - 2.0 * float(np.abs(Z).sum()) + squared_norm)
            if iteration == n_iter:
                break
            B = signs(Z)
            U, _, Wt = np.linalg.svd(V.T @ B)
            R = U @ Wt
    return R, losses


def regularized_cca(
    Xc: np.ndarray, Y: np.ndarray, regularization: float
) -> tuple[np.ndarray, np.ndarray]:
    """Canonical directions of centred features ``Xc`` (n, d) against labels ``Y`` (n, c).

    Returns ``directions`` (d, r), float64, with ``w^T (C_xx + rho I) w = 1`` for each column, and
    the canonical correlations (r,), non-increasing, where ``r <= min(d, rank of centred Y)`` and
    ``rho = regularization * tr(C_xx) / d`` (see the module docstring).
    """
    n, d = Xc.shape
    X64 = np.asarray(Xc, dtype=np.float64)
    Yc = Y - Y.mean(axis=0)
    # orthonormal basis of the label space: sqrt(n) * U_y has identity covariance (C_yy^{-1/2})
    U_y, s_y, _ = np.linalg.svd(Yc, full_matrices=False)
    keep = s_y > max(Yc.shape) * np.finfo(np.float64).eps * (s_y[0] if s_y.size else 0.0)
    U_y = U_y[:, keep]
    if U_y.shape[1] == 0:
        return np.zeros((d, 0)), np.zeros(0)
    cov_xx = X64.T @ X64 / n
    ridge = regularization * max(float(np.trace(cov_xx)) / d, np.finfo(np.float64).tiny)
    cov_xx[np.diag_indices(d)] += ridge
    L = scipy.linalg.cholesky(cov_xx, lower=True)
    cross = X64.T @ U_y / np.sqrt(n)  # C_xy C_yy^{-1/2}
    P, correlations, _ = np.linalg.svd(
        scipy.linalg.solve_triangular(L, cross, lower=True), full_matrices=False
    )
    directions = scipy.linalg.solve_triangular(L, P, lower=True, trans="T")
    pivot = np.argmax(np.abs(directions), axis=0)
    directions *= np.where(directions[pivot, np.arange(directions.shape[1])] < 0, -1.0, 1.0)
    return directions, correlations


def _labels_to_indicators(y: np.ndarray) -> np.ndarray:
    """One-hot float64 (n, n_classes) for 1-D class labels; float64 copy of a 2-D indicator."""
    if y.ndim == 2:
        return y.astype(np.float64)
    classes, inverse = np.unique(y, return_inverse=True)
    indicators = np.zeros((len(y), len(classes)))
    indicators[np.arange(len(y)), inverse] = 1.0
    return indicators


class ITQ(Hasher):
    """Iterative Quantization: ``bits = (X - mean_) @ components_ @ rotation_ >= 0``.

    Parameters
    ----------
    n_bits : number of bits = PCA dimensions; at most ``min(n_samples, n_features)``.
    n_iter : number of alternating B/R updates (paper: 50).
    random_state : seed of the initial random rotation; the same seed gives the same codes.

    Attributes
    ----------
    mean_ : float32 (n_features,), the training mean.
    components_ : float32 (n_features, n_bits), the top principal directions (orthonormal).
    rotation_ : float32 (n_bits, n_bits), the learned orthogonal rotation ``R``.
    projection_ : float32 (n_features, n_bits), ``components_ @ rotation_``, used by ``transform``.
    quantization_loss_ : list of n_iter + 1 floats, ``||B - V R||_F^2`` on the training data for
        the initial rotation and after each update; non-increasing.
    """

    name = "itq"

    def __init__(
        self, n_bits: int = 32, *, n_iter: int = 50, random_state: int | None = None
    ) -> None:
        self.n_bits = n_bits
        self.n_iter = n_iter
        self.random_state = random_state

    def _embedding(self, X: np.ndarray, y: Any, n_bits: int) -> np.ndarray:
        """Directions (n_features, n_bits) of the real-valued embedding ``V = (X - mean_) W``."""
        components, _ = principal_directions(X - self.mean_.astype(np.float64), n_bits)
        return components

    def fit(self, X: Any, y: Any = None) -> ITQ:
        n_bits = self._check_n_bits()
        n_iter = check_int(self.n_iter, "n_iter", minimum=0)
        rng = np.random.default_rng(check_random_state(self.random_state))
        X = self._check_input(X)
        check_n_components(n_bits, X, type(self).__name__)
        self.mean_ = X.mean(axis=0, dtype=np.float64).astype(np.float32)
        components = self._embedding(X, y, n_bits)
        V = (X - self.mean_).astype(np.float64) @ components
        rotation, losses = iterative_quantization(V, n_iter, rng)
        self.components_ = components.astype(np.float32)
        self.rotation_ = rotation.astype(np.float32)
        self.projection_ = (components @ rotation).astype(np.float32)
        self.quantization_loss_ = losses
        return self

    @property
    def n_features_in_(self) -> int:
        """Values per sample the fitted hasher reads."""
        return int(self.projection_.shape[0])

    def transform(self, X: Any) -> np.ndarray:
        self._check_fitted()
        X = self._check_input(X, fitted_features=self.n_features_in_)
        return (X - self.mean_) @ self.projection_

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {
            "mean": self.mean_,
            "components": self.components_,
            "rotation": self.rotation_,
            "projection": self.projection_,
            "quantization_loss": np.asarray(self.quantization_loss_, dtype=np.float64),
        }
        return arrays, {}

    def _set_state(self, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
        self.mean_ = arrays["mean"]
        self.components_ = arrays["components"]
        self.rotation_ = arrays["rotation"]
        self.projection_ = arrays["projection"]
        self.quantization_loss_ = [float(v) for v in arrays["quantization_loss"]]


class ITQCCA(ITQ):
    """Supervised ITQ on canonical correlation directions (CCA-ITQ).

    ``bits = (X - mean_) @ components_ @ rotation_ >= 0``, where ``components_`` holds the
    canonical directions between features and labels scaled by their canonical correlations, and
    ``rotation_`` is learned by ITQ. See the module docstring for the eigenproblem and for what
    happens when ``n_bits`` exceeds the number of informative directions.

    Parameters
    ----------
    n_bits : number of bits; at most ``min(n_samples, n_features)``.
    n_iter : number of ITQ iterations (paper: 50).
    regularization : ridge added to the feature covariance, as a fraction of the mean feature
        variance (``rho = regularization * tr(C_xx) / n_features``; the paper uses a small ridge,
        0.0001).
    random_state : seed of the initial random rotation; the same seed gives the same codes.

    Attributes
    ----------
    mean_ : float32 (n_features,), the training mean.
    components_ : float32 (n_features, n_bits), canonical directions times their correlations;
        columns past ``n_directions_`` are zero.
    canonical_correlations_ : float32 (n_bits,), the correlation of each direction (zero past
        ``n_directions_``), non-increasing.
    n_directions_ : int, the number of canonical directions used (at most the rank of the
        centred label matrix: classes - 1 for one-hot labels).
    rotation_ : float32 (n_bits, n_bits), the learned orthogonal rotation.
    projection_ : float32 (n_features, n_bits), ``components_ @ rotation_``.
    quantization_loss_ : list of n_iter + 1 floats, non-increasing (see :class:`ITQ`).
    """

    name = "itq-cca"
    supervised = True

    def __init__(
        self,
        n_bits: int = 32,
        *,
        n_iter: int = 50,
        regularization: float = 1e-4,
        random_state: int | None = None,
    ) -> None:
        self.n_bits = n_bits
        self.n_iter = n_iter
        self.regularization = regularization
        self.random_state = random_state

    def _embedding(self, X: np.ndarray, y: Any, n_bits: int) -> np.ndarray:
        labels = self._check_labels(y, len(X))
        regularization = check_float(
            self.regularization, "regularization", minimum=0.0, strict_minimum=True
        )
        directions, correlations = regularized_cca(
            X - self.mean_.astype(np.float64), _labels_to_indicators(labels), regularization
        )
        r = min(n_bits, directions.shape[1])
        if r == 0:
            raise InvalidInputError(
                "itq-cca needs labels that vary: y has a single class (or constant indicator "
                "columns), so there is no label information to correlate with"
            )
        components = np.zeros((X.shape[1], n_bits))
        components[:, :r] = directions[:, :r] * correlations[:r]
        self.n_directions_ = r
        self.canonical_correlations_ = np.zeros(n_bits, np.float32)
        self.canonical_correlations_[:r] = correlations[:r]
        return components

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays, values = super()._get_state()
        arrays["canonical_correlations"] = self.canonical_correlations_
        values["n_directions"] = self.n_directions_
        return arrays, values

    def _set_state(self, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
        super()._set_state(arrays, values)
        self.canonical_correlations_ = arrays["canonical_correlations"]
        self.n_directions_ = int(values["n_directions"])
