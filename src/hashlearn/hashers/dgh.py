"""Discrete Graph Hashing (Liu, Mu, Kumar & Chang, "Discrete Graph Hashing", NIPS 2014).

DGH learns the training codes ``B`` directly in ``{-1, 1}^{n x r}``. Graph hashing asks for
``max tr(B^T A B)`` (codes smooth on the anchor graph ``A = Z Lambda^{-1} Z^T``, see
:mod:`hashlearn.hashers.anchor_graph`) with balanced (``1^T B = 0``) and uncorrelated
(``B^T B = n I``) bits. DGH keeps the discrete constraint and softens the other two into a penalty
on the distance of ``B`` to ``Omega = {Y : 1^T Y = 0, Y^T Y = n I_r}``; since ``||B||^2 = ||Y||^2
= n r`` this is

    ``max_{B, Y} Q(B, Y) = tr(B^T A B) + rho tr(B^T Y)``, ``B in {-1, 1}^{n x r}``, ``Y in Omega``,

solved by alternating maximisation, each step never decreasing ``Q``:

- **B-subproblem** (``Y`` fixed): ``f(B) = tr(B^T A B) + rho tr(Y^T B)`` is convex (``A`` is
  positive semi-definite), so maximising its linearisation at ``B_j`` over the hypercube never
  decreases it: ``B_{j+1} = sgn(C(2 A B_j + rho Y, B_j))``, where ``C(x, y)`` keeps the old bit
  where the gradient is exactly 0 (the signed gradient method, ``n_inner`` steps at most; it stops
  early at a fixed point). ``A B`` costs ``O(n s r)`` through ``Z``.
- **Y-subproblem** (``B`` fixed): ``max tr(B^T Y)`` over ``Omega`` is solved in closed form from
  the thin SVD of the centred codes ``J B = U S V^T`` (``J = I - 1 1^T / n``):
  ``Y = sqrt(n) [U U'] [V V']^T``, where, if ``J B`` has rank ``r' < r``, ``U'`` completes ``U``
  with orthonormal columns orthogonal to ``[U 1]`` and ``V'`` completes ``V``. The SVD comes from
  the ``r x r`` eigendecomposition of ``B^T J B``.

Initialisation (``init``): ``"agh"`` (DGH-I) starts from the anchor-graph spectral solution: with
``H`` the top ``r`` non-trivial unit eigenvectors of ``A`` and ``Theta`` their eigenvalues, an
orthogonal ``R`` and ``B_0`` are found by alternating ``B_0 = sgn(H Theta R)`` and ``R = U_c V_c^T``
(``U_c S_c V_c^T`` the SVD of ``Theta H^T B_0``), which maximises the lower bound
``tr(R^T H^T A B_0)`` of ``tr(B_0^T A B_0)`` (``init_iter`` steps from ``R = I``; the paper
finds this start reaches higher objectives than ``R = I``), and ``Y_0 = sqrt(n) H R``.
``"random"`` (DGH-R) starts from a random ``Y_0`` in ``Omega`` and ``B_0 = sgn(Y_0)``.

Out-of-sample hashing: a new point ``x`` gets the code closest in Hamming distance to the training
codes weighted by its affinity ``A(x, x_i) = z(x)^T Lambda^{-1} z(x_i)``, i.e.
``b(x) = sgn(W^T z(x))`` with ``W = Lambda^{-1} Z^T B`` (m x r).

The paper iterates both loops to convergence; here both are capped (``n_outer``, ``n_inner``) and
stop early at a fixed point, which on MNIST pixels is reached after 2 to 6 outer iterations.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hashlearn._validation import check_float, check_int, check_random_state
from hashlearn.exceptions import InvalidInputError
from hashlearn.hashers.anchor_graph import (
    AnchorGraph,
    AnchorGraphHasher,
    check_anchor_params,
    spectral_embedding,
)
from hashlearn.hashers.bits import signs

_INITS = ("agh", "random")


class DGH(AnchorGraphHasher):
    """Discrete Graph Hashing: discrete codes maximising anchor-graph smoothness, near-balanced
    and near-uncorrelated through a penalty.

    Parameters
    ----------
    n_bits : number of bits ``r``.
    n_anchors : number of k-means anchors ``m`` (paper: 300); on small training sets at most one
        anchor per 3 samples (but enough for ``n_bits``), as for AGH.
    n_nearest : number of nearest anchors ``s`` per sample (default 2, as for AGH); clamped to
        ``m``.
    rho : weight of the penalty ``rho tr(B^T Y)`` pulling ``B`` towards balanced, uncorrelated
        codes (a tuning parameter of the paper). Default 1, the scale of the gradient ``2 A B``;
        on MNIST validation data the mAP moves by less than 0.01 for ``rho`` in ``[1e-5, 3]``,
        larger values give slightly more balanced codes.
    n_outer : at most this many alternations of the B- and Y-subproblems; stops early at a fixed
        point (2 to 6 on MNIST).
    n_inner : at most this many signed-gradient steps per B-subproblem; stops early at a fixed
        point.
    init : ``"agh"`` (DGH-I, rotated anchor-graph spectral solution) or ``"random"`` (DGH-R).
    init_iter : alternations that fit the rotation ``R`` of the ``"agh"`` start.
    kmeans_iter : Lloyd iterations of the k-means that places the anchors.
    random_state : seed of the k-means and of the random start; same seed, same codes.

    Attributes
    ----------
    anchors_ : float32 (m, n_features), the anchors.
    bandwidth_ : float, the Gaussian kernel bandwidth ``t`` in ``exp(-||x - u||^2 / t)``.
    n_nearest_ : int, the ``s`` actually used (after clamping).
    projection_ : float32 (m, n_bits), ``W = Lambda^{-1} Z^T B``: the code of ``x`` is
        ``sgn(z(x) @ W)``.
    objective_ : float64 (T + 1,), ``Q(B, Y) = tr(B^T A B) + rho tr(B^T Y)`` at the start and
        after each outer iteration (never decreasing).
    graph_objective_ : float64 (T + 1,), ``tr(B^T A B)`` at the same points.
    train_codes_ : int8 (n_train, n_bits) of +-1, the learned training codes ``B`` (kept after
        ``fit`` for inspection; not saved with the model).
    """

    name = "dgh"
    _saved_arrays = ("anchors_", "projection_", "objective_", "graph_objective_")
    _saved_values = ("bandwidth_", "n_nearest_")

    def __init__(
        self,
        n_bits: int = 32,
        *,
        n_anchors: int = 300,
        n_nearest: int = 2,
        rho: float = 1.0,
        n_outer: int = 10,
        n_inner: int = 10,
        init: str = "agh",
        init_iter: int = 20,
        kmeans_iter: int = 10,
        random_state: int | None = None,
    ) -> None:
        self.n_bits = n_bits
        self.n_anchors = n_anchors
        self.n_nearest = n_nearest
        self.rho = rho
        self.n_outer = n_outer
        self.n_inner = n_inner
        self.init = init
        self.init_iter = init_iter
        self.kmeans_iter = kmeans_iter
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> DGH:
        r = self._check_n_bits()
        check_anchor_params(self.n_anchors, self.n_nearest, self.kmeans_iter)
        rho = check_float(self.rho, "rho", minimum=0.0)
        n_outer = check_int(self.n_outer, "n_outer", minimum=0)
        n_inner = check_int(self.n_inner, "n_inner", minimum=1)
        init_iter = check_int(self.init_iter, "init_iter", minimum=0)
        if self.init not in _INITS:
            raise InvalidInputError(f"init must be one of {', '.join(_INITS)}; got {self.init!r}")
        rng = np.random.default_rng(check_random_state(self.random_state))
        X = self._check_input(X)
        n = X.shape[0]
        if r >= n:
            raise InvalidInputError(
                f"n_bits={r} must be smaller than the number of training samples ({n})"
            )
        graph = self._fit_graph(X, rng, min_anchors=r + 2 if self.init == "agh" else 2)
        if self.init == "agh":
            B, Y = _spectral_start(graph, r, init_iter)
        else:
            Y = np.sqrt(n) * _orthonormal_complement(np.ones((n, 1)) / np.sqrt(n), r, rng)
            B = signs(Y)

        objective, graph_objective = [], []

        def record(AB: np.ndarray) -> None:
            smooth = float(np.sum(B * AB))
            graph_objective.append(smooth)
            objective.append(smooth + rho * float(np.sum(B * Y)))

        AB = graph.affinity_times(B)
        record(AB)
        for _ in range(n_outer):
            B_before = B
            for _ in range(n_inner):  # B-subproblem: signed gradient ascent
                gradient = 2.0 * AB + rho * Y
                B_next = np.where(gradient > 0, 1.0, np.where(gradient < 0, -1.0, B))
                if np.array_equal(B_next, B):
                    break
                B = B_next
                AB = graph.affinity_times(B)
            Y = _nearest_in_omega(B, rng)  # Y-subproblem, closed form
            record(AB)
            if np.array_equal(B, B_before) and len(objective) > 2:
                break  # B and hence Y are at a fixed point

        self._keep_graph(graph)
        self.projection_ = ((graph.Z.T @ B) / graph.column_sums[:, None]).astype(np.float32)
        self.objective_ = np.asarray(objective)
        self.graph_objective_ = np.asarray(graph_objective)
        self.train_codes_ = B.astype(np.int8)
        return self

    def transform(self, X: Any) -> np.ndarray:
        Z = self._graph_rows(X)
        return np.asarray(Z @ self.projection_, dtype=np.float32)


def _spectral_start(graph: AnchorGraph, r: int, n_iter: int) -> tuple[np.ndarray, np.ndarray]:
    """DGH-I: ``B_0 = sgn(H Theta R)``, ``Y_0 = sqrt(n) H R`` with ``R`` fitted by alternation."""
    n = graph.Z.shape[0]
    V, theta = spectral_embedding(graph, r, r)
    # unit eigenvectors of A: H = Z Lambda^{-1/2} V Theta^{-1/2}, H^T H = I, 1^T H = 0
    H = graph.Z @ (V / np.sqrt(graph.column_sums)[:, None]) / np.sqrt(theta)[None, :]
    HT = H * theta[None, :]  # A H = H Theta
    R = np.eye(r)
    B = signs(HT)
    for _ in range(n_iter):
        U, _, Vt = np.linalg.svd(HT.T @ B)  # Theta H^T B_0
        R_next = U @ Vt
        B_next = signs(HT @ R_next)
        converged = np.array_equal(B_next, B)
        R, B = R_next, B_next
        if converged:
            break
    return B, np.sqrt(n) * (H @ R)


def _nearest_in_omega(B: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``argmax_{Y in Omega} tr(B^T Y)``: ``sqrt(n) [U U'] [V V']^T`` from the SVD of ``J B``."""
    n, r = B.shape
    JB = B - B.mean(axis=0)
    s2, V = np.linalg.eigh(JB.T @ JB)  # (J B)^T (J B) = V S^2 V^T, ascending
    s2, V = s2[::-1], V[:, ::-1]
    rank = int(np.sum(s2 > max(s2[0], 1.0) * 1e-10))
    U = JB @ V[:, :rank] / np.sqrt(s2[:rank])[None, :]
    if rank < r:  # complete U with unit columns orthogonal to [U, 1]; V is complete already
        known = np.concatenate([U, np.ones((n, 1)) / np.sqrt(n)], axis=1)
        U = np.concatenate([U, _orthonormal_complement(known, r - rank, rng)], axis=1)
    return np.sqrt(n) * (U @ V.T)


def _orthonormal_complement(Q: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` random orthonormal columns orthogonal to the orthonormal columns of ``Q`` (n, q)."""
    G = rng.standard_normal((Q.shape[0], k))
    G -= Q @ (Q.T @ G)
    G -= Q @ (Q.T @ G)  # second pass for numerical orthogonality
    basis, _ = np.linalg.qr(G)
    return basis
