"""Kernel-Based Supervised Hashing (KSH).

Liu, Wang, Ji, Jiang & Chang, "Supervised Hashing with Kernels", CVPR 2012.

Each bit is the sign of a kernel function ``h_k(x) = sgn(kbar(x)^T a_k)``, where ``kbar(x)`` holds
the RBF kernel values of ``x`` against ``m`` random anchors, centred by their training means (see
:mod:`hashlearn.hashers.anchor_kernel`). On a labelled subset of ``l`` samples the pairwise label matrix
is ``S_ij = +1`` when samples ``i`` and ``j`` share a label and ``-1`` otherwise. KSH fits code
inner products to it: with ``H = sgn(Kbar_l A)`` (``l x r`` codes in {-1, +1}),

    min_A  Q(A) = || H H^T - r S ||_F^2,

because ``h_i^T h_j = r - 2 * hamming(h_i, h_j)`` is ``r`` for identical codes and ``-r`` for
complementary ones. The objective is minimised greedily, one bit at a time. With the residue
``R_{k-1} = r S - sum_{t<k} h_t h_t^T`` (``R_0 = r S``), bit ``k`` minimises
``-sgn(Kbar_l a)^T R_{k-1} sgn(Kbar_l a)``:

1. *spectral relaxation*: drop the sign and constrain ``||Kbar_l a||^2 = l``; the maximiser is the
   top generalised eigenvector of ``(Kbar_l^T R_{k-1} Kbar_l) a = lambda (Kbar_l^T Kbar_l) a``;
2. *sigmoid smoothing*: replace ``sgn`` by ``phi(z) = 2 / (1 + exp(-z)) - 1`` and minimise
   ``-phi(Kbar_l a)^T R_{k-1} phi(Kbar_l a)`` by gradient descent from the spectral solution, with
   gradient ``-Kbar_l^T ((R_{k-1} b) * (1 - b * b))``, ``b = phi(Kbar_l a)`` (here L-BFGS with a
   bounded number of iterations);
3. keep whichever of the two solutions has the lower discrete cost, then
   ``R_k = R_{k-1} - h_k h_k^T``.

The paper's defaults are ``m = 300`` anchors and ``l = 1000`` labelled samples, both drawn at
random. Multi-label data are supported: samples are similar when they share at least one label.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg
import scipy.optimize

from hashlearn._parallel import single_threaded_blas
from hashlearn._validation import check_int, check_random_state
from hashlearn.hashers.anchor_kernel import AnchorKernelHasher, fit_anchor_kernel
from hashlearn.hashers.bits import signs

# Ridge added to Kbar^T Kbar (relative to its mean diagonal) so the eigenproblem is definite.
_RIDGE = 1e-6


class KSH(AnchorKernelHasher):
    """Kernel-Based Supervised Hashing: ``bits = kbar(X) @ projection_ >= 0``.

    Parameters
    ----------
    n_bits : number of bits ``r`` (hash functions).
    n_anchors : number of anchors ``m`` drawn from the training data (paper: 300); clamped to n.
    n_labeled : size ``l`` of the labelled subset the pairwise objective is fitted on (paper:
        1000); clamped to n. Its cost grows as ``l^2`` per bit.
    max_iter : L-BFGS iterations of the sigmoid-smoothed problem per bit (0: spectral only).
    random_state : seed of the anchor and labelled-subset sampling.

    Attributes
    ----------
    anchors_ : float32 (m, n_features), the anchors.
    sigma_ : float, the RBF width (mean training-to-anchor distance).
    kernel_mean_ : float32 (m,), training means of the kernel features, subtracted from them.
    projection_ : float32 (m, n_bits), the coefficients ``a_k``, one column per bit.
    objective_ : float64 (n_bits + 1,), ``||H_k H_k^T - r S||_F^2 / l^2`` on the labelled subset
        after the first ``k`` bits (``k = 0 .. n_bits``).
    """

    name = "ksh"
    _saved_arrays = ("anchors_", "kernel_mean_", "projection_", "objective_")
    _saved_values = ("sigma_",)
    supervised = True

    def __init__(
        self,
        n_bits: int = 32,
        *,
        n_anchors: int = 300,
        n_labeled: int = 1000,
        max_iter: int = 100,
        random_state: int | None = None,
    ) -> None:
        self.n_bits = n_bits
        self.n_anchors = n_anchors
        self.n_labeled = n_labeled
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> KSH:
        n_bits = self._check_n_bits()
        n_anchors = check_int(self.n_anchors, "n_anchors", minimum=1)
        n_labeled = check_int(self.n_labeled, "n_labeled", minimum=2)
        max_iter = check_int(self.max_iter, "max_iter", minimum=0)
        rng = np.random.default_rng(check_random_state(self.random_state))
        X = self._check_input(X)
        y = self._check_labels(y, X.shape[0])

        kernel, features = fit_anchor_kernel(X, n_anchors, rng)
        n = X.shape[0]
        labeled = np.sort(rng.choice(n, size=min(n_labeled, n), replace=False))
        K = features[labeled].astype(np.float64)

        with single_threaded_blas():
            A, objective = _greedy_bits(K, y[labeled], n_bits, max_iter)
        self._keep_kernel(kernel)
        self.projection_ = A.astype(np.float32)
        self.objective_ = objective
        return self


def pairwise_similarity(y: np.ndarray) -> np.ndarray:
    """float64 (l, l) matrix: +1 where two samples share a label, -1 elsewhere; +1 on the diagonal.

    ``y`` is int64 (l,) class labels or a bool (l, c) indicator matrix (from ``check_labels``).
    """
    if y.ndim == 1:
        same = y[:, None] == y[None, :]
    else:
        Y = y.astype(np.float64)
        same = (Y @ Y.T) > 0
    np.fill_diagonal(same, True)
    return np.where(same, 1.0, -1.0)


class _Residue:
    """The residue ``R_k = r S - H_k H_k^T`` on the labelled subset, never formed explicitly.

    For class labels ``S = 2 Y Y^T - 1 1^T`` (``Y`` one-hot), so ``S v`` costs ``O(l c)``; for
    multi-label indicators ``S`` is kept dense. ``H_k`` holds the first ``k`` bits as columns.
    """

    def __init__(self, y: np.ndarray, n_bits: int) -> None:
        self.n_bits = n_bits
        if y.ndim == 1:
            classes = np.unique(y, return_inverse=True)[1]
            self.onehot = np.eye(classes.max() + 1)[classes]
            self.dense = None
        else:
            self.onehot = None
            self.dense = pairwise_similarity(y)
        self.H = np.empty((y.shape[0], 0))

    def similarity_times(self, V: np.ndarray) -> np.ndarray:
        """``S @ V`` for a vector or matrix ``V`` with ``l`` rows."""
        if self.dense is not None:
            return self.dense @ V
        return 2.0 * (self.onehot @ (self.onehot.T @ V)) - V.sum(axis=0)

    def times(self, v: np.ndarray) -> np.ndarray:
        """``R_k @ v``."""
        return self.n_bits * self.similarity_times(v) - self.H @ (self.H.T @ v)

    def quadratic(self, h: np.ndarray) -> float:
        """``h^T R_k h``."""
        return float(h @ self.times(h))

    def squared_norm(self) -> float:
        """``||R_k||_F^2 = r^2 l^2 - 2 r tr(H^T S H) + ||H^T H||_F^2`` (every ``S_ij`` is +-1)."""
        r, l = self.n_bits, self.H.shape[0]
        cross = np.sum(self.H * self.similarity_times(self.H))
        return float(r * r * l * l - 2.0 * r * cross + np.sum((self.H.T @ self.H) ** 2))

    def subtract(self, h: np.ndarray) -> None:
        """``R_{k+1} = R_k - h h^T``."""
        self.H = np.column_stack([self.H, h])


def _greedy_bits(
    K: np.ndarray, y: np.ndarray, n_bits: int, max_iter: int
) -> tuple[np.ndarray, np.ndarray]:
    """Fit ``n_bits`` columns of ``A`` one by one; return A (m, n_bits) and the objective trace."""
    n_labeled, m = K.shape
    scale = float(n_labeled) ** 2
    residue = _Residue(y, n_bits)
    gram = K.T @ K
    gram += (_RIDGE * max(np.trace(gram) / m, 1e-12)) * np.eye(m)
    # K^T R_k K = r K^T S K - (H_k^T K)^T (H_k^T K)
    KSK = n_bits * (K.T @ residue.similarity_times(K))
    HK = np.empty((0, m))
    A = np.zeros((m, n_bits))
    objective = np.empty(n_bits + 1)
    objective[0] = residue.squared_norm() / scale

    for k in range(n_bits):
        # 1. spectral relaxation: top generalised eigenvector, scaled so ||K a||^2 = l.
        lhs = KSK - HK.T @ HK
        lhs = (lhs + lhs.T) / 2.0
        _, vectors = scipy.linalg.eigh(lhs, gram, subset_by_index=[m - 1, m - 1])
        a_spectral = vectors[:, 0] * np.sqrt(n_labeled)
        a_spectral *= 1.0 if a_spectral[np.argmax(np.abs(a_spectral))] >= 0 else -1.0

        # 2. sigmoid smoothing, started from the spectral solution.
        a = a_spectral
        if max_iter > 0:
            result = scipy.optimize.minimize(
                _smoothed_cost,
                a_spectral,
                args=(K, residue, scale),
                jac=True,
                method="L-BFGS-B",
                options={"maxiter": max_iter},
            )
            # 3. keep the solution with the lower discrete cost -h^T R h.
            smooth = residue.quadratic(signs(K @ result.x))
            if smooth > residue.quadratic(signs(K @ a_spectral)):
                a = result.x

        h = signs(K @ a)
        residue.subtract(h)
        HK = np.vstack([HK, h @ K])
        A[:, k] = a
        objective[k + 1] = residue.squared_norm() / scale
    return A, objective


def _smoothed_cost(
    a: np.ndarray, K: np.ndarray, residue: _Residue, scale: float
) -> tuple[float, np.ndarray]:
    """``-phi(K a)^T R phi(K a) / scale`` and its gradient, ``phi(z) = tanh(z / 2)``."""
    b = np.tanh((K @ a) / 2.0)
    Rb = residue.times(b)
    cost = -(b @ Rb) / scale
    grad = -(K.T @ (Rb * (1.0 - b * b))) / scale
    return float(cost), grad
