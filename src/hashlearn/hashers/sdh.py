"""Supervised Discrete Hashing (SDH).

Shen, Shen, Liu & Shen, "Supervised Discrete Hashing", CVPR 2015.

Codes are learned so that a linear classifier reads the labels off them, while a kernel hash
function reproduces them. With ``B`` the ``n x r`` training codes in {-1, +1}, ``Y`` the ``n x c``
label-indicator matrix (one-hot for class labels), ``W`` an ``r x c`` classifier and
``F(x) = P^T phi(x)`` the hash function on RBF anchor features ``phi`` (``m`` random anchors, see
:mod:`hashlearn.hashers.anchor_kernel`)::

    min_{B, W, P}  ||Y - B W||^2 + lambda ||W||^2 + nu (||B - phi(X) P||^2 + lambda_p ||P||^2)

(``lambda_p`` is the small ridge of the authors' code for the ``P`` step). The problem is solved
by alternating minimisation from a random ``B``:

* **P-step**: ridge regression ``P = (phi^T phi + lambda_p I)^{-1} phi^T B``;
* **W-step**: ridge least squares ``W = (B^T B + lambda I)^{-1} B^T Y``;
* **B-step**: discrete cyclic coordinate descent (DCC). With ``Q = Y W^T + nu phi(X) P`` the
  problem in ``B`` is ``min ||B W||^2 - 2 tr(B^T Q)``, and for one bit (column ``z`` of ``B``,
  the others ``B'``, ``v`` its row of ``W``, ``W'`` the other rows) the exact minimiser is
  ``z = sgn(q - B' W' v)``. Bits are updated in turn, for a few sweeps.

Each step minimises the objective exactly in its block, so the objective never increases. The
paper's defaults are ``lambda = 1``, ``nu = 1e-5``, ``m = 1000`` anchors and 5 outer iterations
(the authors' code: ``lambda_p = 0.01``). A sample's real-valued output is ``F(x)``; its code is
``sgn(F(x))``. Multi-label data are supported through the indicator matrix ``Y``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg

from hashlearn._parallel import single_threaded_blas
from hashlearn._validation import check_float, check_int, check_random_state
from hashlearn.hashers.anchor_kernel import AnchorKernelHasher, fit_anchor_kernel
from hashlearn.hashers.bits import signs


class SDH(AnchorKernelHasher):
    """Supervised Discrete Hashing: ``bits = phi(X) @ projection_ >= 0``.

    Parameters
    ----------
    n_bits : number of bits ``r``.
    n_anchors : number of RBF anchors ``m`` drawn from the training data (paper: 1000); clamped
        to n.
    lambda_w : ridge weight ``lambda`` of the label classifier ``W`` (paper: 1).
    nu : weight ``nu`` of the hash-function fit ``||B - F(X)||^2`` (paper: 1e-5).
    lambda_p : ridge of the hash-function regression ``P`` (authors' code: 0.01).
    n_iter : outer alternating iterations (paper: 5); stops early if the codes stop changing.
    n_dcc_iter : DCC sweeps over the bits per B-step (5); stops early if no bit changes.
    random_state : seed of the anchor sampling and of the initial random codes.

    Attributes
    ----------
    anchors_ : float32 (m, n_features), the anchors.
    sigma_ : float, the RBF width (mean training-to-anchor distance).
    kernel_mean_ : float32 (m,), training means of the kernel features, subtracted from them.
    projection_ : float32 (m, n_bits), ``P``: ``F(x) = phi(x) @ projection_``.
    classifier_ : float32 (n_bits, n_classes), ``W``: labels are predicted as ``b @ classifier_``.
    objective_ : float64 (n_outer + 1,), the objective after initialisation and after each outer
        iteration (non-increasing).
    """

    name = "sdh"
    _saved_arrays = ("anchors_", "kernel_mean_", "projection_", "classifier_", "objective_")
    _saved_values = ("sigma_",)
    supervised = True

    def __init__(
        self,
        n_bits: int = 32,
        *,
        n_anchors: int = 1000,
        lambda_w: float = 1.0,
        nu: float = 1e-5,
        lambda_p: float = 1e-2,
        n_iter: int = 5,
        n_dcc_iter: int = 5,
        random_state: int | None = None,
    ) -> None:
        self.n_bits = n_bits
        self.n_anchors = n_anchors
        self.lambda_w = lambda_w
        self.nu = nu
        self.lambda_p = lambda_p
        self.n_iter = n_iter
        self.n_dcc_iter = n_dcc_iter
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> SDH:
        n_bits = self._check_n_bits()
        n_anchors = check_int(self.n_anchors, "n_anchors", minimum=1)
        lambda_w = check_float(self.lambda_w, "lambda_w", minimum=0.0, strict_minimum=True)
        nu = check_float(self.nu, "nu", minimum=0.0)
        lambda_p = check_float(self.lambda_p, "lambda_p", minimum=0.0, strict_minimum=True)
        n_iter = check_int(self.n_iter, "n_iter", minimum=1)
        n_dcc_iter = check_int(self.n_dcc_iter, "n_dcc_iter", minimum=1)
        rng = np.random.default_rng(check_random_state(self.random_state))
        X = self._check_input(X)
        Y = label_matrix(self._check_labels(y, X.shape[0]))

        kernel, Phi = fit_anchor_kernel(X, n_anchors, rng)
        Phi = Phi.astype(np.float64)
        B = np.where(rng.random((X.shape[0], n_bits)) < 0.5, -1.0, 1.0)
        with single_threaded_blas():
            P, W, objective = _alternate(Phi, Y, B, lambda_w, nu, lambda_p, n_iter, n_dcc_iter)
        self._keep_kernel(kernel)
        self.projection_ = P.astype(np.float32)
        self.classifier_ = W.astype(np.float32)
        self.objective_ = np.asarray(objective)
        return self


def label_matrix(y: np.ndarray) -> np.ndarray:
    """float64 (n, c) targets: one-hot rows for int64 (n,) class labels, else the bool indicators."""
    if y.ndim == 2:
        return y.astype(np.float64)
    _, classes = np.unique(y, return_inverse=True)
    Y = np.zeros((y.shape[0], classes.max() + 1))
    Y[np.arange(y.shape[0]), classes] = 1.0
    return Y


def _alternate(
    Phi: np.ndarray,
    Y: np.ndarray,
    B: np.ndarray,
    lambda_w: float,
    nu: float,
    lambda_p: float,
    n_iter: int,
    n_dcc_iter: int,
) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Alternate the P, W and B steps from codes ``B``; return P, W and the objective trace."""
    m, n_bits = Phi.shape[1], B.shape[1]
    phi_factor = scipy.linalg.cho_factor(Phi.T @ Phi + lambda_p * np.eye(m))

    def fit_p(B: np.ndarray) -> np.ndarray:
        return scipy.linalg.cho_solve(phi_factor, Phi.T @ B)

    def fit_w(B: np.ndarray) -> np.ndarray:
        return np.linalg.solve(B.T @ B + lambda_w * np.eye(n_bits), B.T @ Y)

    def cost(B: np.ndarray, W: np.ndarray, P: np.ndarray) -> float:
        fit = np.sum((Y - B @ W) ** 2) + lambda_w * np.sum(W * W)
        return float(fit + nu * (np.sum((B - Phi @ P) ** 2) + lambda_p * np.sum(P * P)))

    P, W = fit_p(B), fit_w(B)
    objective = [cost(B, W, P)]
    for _ in range(n_iter):
        B_new = _discrete_cyclic_descent(B, W, Y @ W.T + nu * (Phi @ P), n_dcc_iter)
        changed = not np.array_equal(B_new, B)
        B = B_new
        W = fit_w(B)
        P = fit_p(B)
        objective.append(cost(B, W, P))
        if not changed:
            break
    return P, W, objective


def _discrete_cyclic_descent(
    B: np.ndarray, W: np.ndarray, Q: np.ndarray, n_sweeps: int
) -> np.ndarray:
    """Minimise ``||B W||^2 - 2 tr(B^T Q)`` over B in {-1, +1} bit by bit (closed form per bit)."""
    B = B.copy()
    BW = B @ W
    for _ in range(n_sweeps):
        changed = False
        for k in range(B.shape[1]):
            v = W[k]
            others = BW - np.outer(B[:, k], v)  # B' W' without bit k
            z = signs(Q[:, k] - others @ v)
            if not np.array_equal(z, B[:, k]):
                changed = True
                B[:, k] = z
                BW = others + np.outer(z, v)
        if not changed:
            break
    return B
