"""Linear binary classifiers for many targets at once, over the same features.

GRH (:mod:`hashlearn.hashers.grh`) refits one hyperplane per bit in every round; these solvers fit
all ``k`` bits together, one matrix product per step for all of them:

- :func:`newton_linear_classifier`: L2-regularised margin losses (:func:`squared_hinge`, the
  loss of scikit-learn's ``LinearSVC``; :func:`logistic_loss`, that of ``LogisticRegression``)
  minimised by a batched Newton-CG method (generalised Hessian, Jacobi-preconditioned conjugate
  gradients, Armijo backtracking);
- :func:`passive_aggressive`: the online PA-I algorithm (Crammer et al., JMLR 2006), which
  continues from the current hyperplanes and so learns from a stream.

Targets are ``(n, k)`` arrays in ``{-1, +1}``; each returns the hyperplanes ``W`` ``(d, k)`` and
offsets ``b`` ``(k,)`` as float32.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hashlearn._parallel import single_threaded_blas

__all__ = [
    "MarginLoss",
    "logistic_loss",
    "newton_linear_classifier",
    "passive_aggressive",
    "squared_hinge",
]

# Upper bounds of the Newton-CG solver; it stops far earlier at ``tol`` in practice.
_MAX_NEWTON_STEPS = 100
_MAX_CG_STEPS = 200

# A margin loss l(m), m = y * z: (value, dl/dm, d2l/dm2), each elementwise on an (n, k) array.
MarginLoss = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


def squared_hinge(margins: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``max(0, 1 - m)^2`` (LinearSVC's default loss) and its first two derivatives in ``m``."""
    slack = np.maximum(0.0, 1.0 - margins)
    return slack * slack, -2.0 * slack, 2.0 * (margins < 1.0)


def logistic_loss(margins: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``log(1 + exp(-m))`` and its first two derivatives in ``m``."""
    p = 0.5 * (1.0 + np.tanh(0.5 * margins))  # sigmoid(m), without overflow
    return np.logaddexp(0.0, -margins), p - 1.0, p * (1.0 - p)


def newton_linear_classifier(
    X: np.ndarray,
    Y: np.ndarray,
    loss: MarginLoss,
    C: float,
    W0: np.ndarray,
    b0: np.ndarray,
    *,
    tol: float = 1e-4,
    penalize_intercept: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Fit ``k`` L2-regularised linear classifiers sharing the features ``X``, all at once.

    Column ``j`` minimises ``1/2 |w|^2 (+ 1/2 b^2 if penalize_intercept) + C sum_i
    loss(Y_ij (x_i . w + b))`` by Newton's method: each step solves ``H s = -g`` with
    Jacobi-preconditioned conjugate gradients to 10% relative residual, using Hessian-vector
    products ``s + C X^T (loss'' * (X s))`` computed for all columns in one matrix product, then
    backtracks along ``s`` (Armijo). Column ``j`` stops when ``|g_j| <= tol |g_j(0)|``.

    Parameters
    ----------
    X : float32 (n, d); Y : float32 (n, k) in {-1, +1}; W0 : (d, k), b0 : (k,) starting point.

    Returns
    -------
    W : float32 (d, k) and b : float32 (k,).
    """
    W = np.array(W0, dtype=np.float32)
    b = np.array(b0, dtype=np.float32)
    reg_b = 1.0 if penalize_intercept else 0.0
    X2 = X * X
    _, slope0, _ = loss(np.zeros(1))
    g0_W = C * (X.T @ (Y * slope0[0]))
    g0_b = C * Y.sum(axis=0, dtype=np.float64) * slope0[0]
    ref = np.sqrt((g0_W.astype(np.float64) ** 2).sum(axis=0) + g0_b**2) * tol

    def objective(Wc, bc, Z, Yc):
        values, _, _ = loss(Yc * Z)
        reg = 0.5 * (Wc.astype(np.float64) ** 2).sum(axis=0) + 0.5 * reg_b * bc**2
        return reg + C * values.sum(axis=0, dtype=np.float64)

    for _ in range(_MAX_NEWTON_STEPS):
        Z = X @ W + b
        _, d1, d2 = loss(Y * Z)
        R = (Y * d1).astype(np.float32)
        g_W = W + C * (X.T @ R)
        g_b = reg_b * b + C * R.sum(axis=0)
        g_norm = np.sqrt((g_W.astype(np.float64) ** 2).sum(axis=0) + g_b.astype(np.float64) ** 2)
        todo = np.flatnonzero(g_norm > ref)
        if todo.size == 0:
            break
        D = d2[:, todo].astype(np.float32)
        gW, gb, Yt, Zt = g_W[:, todo], g_b[todo], Y[:, todo], Z[:, todo]
        diag_W = 1.0 + C * (X2.T @ D)
        diag_b = reg_b + C * D.sum(axis=0)

        def hess(VW, vb, D=D):
            XV = C * D * (X @ VW + vb)
            return VW + X.T @ XV, reg_b * vb + XV.sum(axis=0)

        sW, sb = _conjugate_gradients(hess, -gW, -gb, diag_W, diag_b)
        step_Z = X @ sW + sb
        Wt, bt = W[:, todo], b[todo]
        f0 = objective(Wt, bt, Zt, Yt)
        slope = (gW * sW).sum(axis=0, dtype=np.float64) + gb * sb
        t = np.ones(todo.size, np.float32)
        for _ in range(40):
            f_t = objective(Wt + t * sW, bt + t * sb, Zt + t * step_Z, Yt)
            ok = f_t <= f0 + 1e-4 * t * slope
            if ok.all():
                break
            t = np.where(ok, t, 0.5 * t)
        W[:, todo] = Wt + t * sW
        b[todo] = bt + t * sb
    return W, b


def _conjugate_gradients(hess, rW, rb, diag_W, diag_b):
    """Solve ``H s = r`` column-wise (preconditioner ``diag``) to 10% relative residual."""
    sW, sb = np.zeros_like(rW), np.zeros_like(rb)
    stop = 0.01 * ((rW.astype(np.float64) ** 2).sum(axis=0) + rb.astype(np.float64) ** 2)
    zW, zb = rW / diag_W, rb / diag_b
    pW, pb = zW.copy(), zb.copy()
    rz = (rW * zW).sum(axis=0, dtype=np.float64) + rb * zb
    for _ in range(_MAX_CG_STEPS):
        hW, hb = hess(pW, pb)
        curvature = (pW * hW).sum(axis=0, dtype=np.float64) + pb * hb
        step = (rz / np.maximum(curvature, 1e-30)).astype(np.float32)
        sW += step * pW
        sb += step * pb
        rW -= step * hW
        rb -= step * hb
        if np.all((rW.astype(np.float64) ** 2).sum(axis=0) + rb.astype(np.float64) ** 2 <= stop):
            break
        zW, zb = rW / diag_W, rb / diag_b
        rz_new = (rW * zW).sum(axis=0, dtype=np.float64) + rb * zb
        beta = (rz_new / np.maximum(rz, 1e-30)).astype(np.float32)
        pW, pb = zW + beta * pW, zb + beta * pb
        rz = rz_new
    return sW, sb


def passive_aggressive(
    X: np.ndarray,
    Y: np.ndarray,
    W: np.ndarray,
    b: np.ndarray,
    C: float,
    n_epochs: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """PA-I (Crammer et al., JMLR 2006) for ``k`` binary targets at once, from ``(W, b)``.

    Each sample, visited in a seeded random order per epoch, updates every column ``j`` by
    ``tau_j y_j [x, 1]`` with ``tau_j = min(C, max(0, 1 - y_j (x . w_j + b_j)) / (|x|^2 + 1))``.
    """
    W = np.array(W, dtype=np.float32)
    b = np.array(b, dtype=np.float32)
    sq_norms = (X.astype(np.float64) ** 2).sum(axis=1) + 1.0
    with single_threaded_blas():
        for _ in range(n_epochs):
            for i in rng.permutation(X.shape[0]):
                x, y = X[i], Y[i]
                hinge = 1.0 - y * (x @ W + b)
                if not (hinge > 0).any():
                    continue
                step = (y * np.minimum(C, np.maximum(hinge, 0.0) / sq_norms[i])).astype(np.float32)
                W += np.outer(x, step)
                b += step
    return W, b
