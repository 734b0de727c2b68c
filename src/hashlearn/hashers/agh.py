"""Anchor Graph Hashing (Liu, Wang, Kumar & Chang, "Hashing with Graphs", ICML 2011).

AGH is spectral hashing on an anchor graph (see :mod:`hashlearn.hashers.anchor_graph`): the
codes of the training samples should be smooth on the graph, ``min tr(Y^T L Y)`` with
``L = I - A``, ``A = Z Lambda^{-1} Z^T``, under the relaxed balance and decorrelation constraints
``1^T Y = 0`` and ``Y^T Y = n I``. The solution is given by the top non-trivial eigenvectors of
``A``, which come from the ``m x m`` matrix ``M = Lambda^{-1/2} Z^T Z Lambda^{-1/2}``: with its
top eigenpairs ``(V, Sigma)`` after the trivial one (eigenvalue 1, the constant vector),

    ``W = sqrt(n) Lambda^{-1/2} V Sigma^{-1/2}``  (m x k),   ``Y = Z W``,

and the same formula hashes any new point, ``y(x) = W^T z(x)`` (eigenvectors extended to
eigenfunctions). Training costs ``O(n m d)`` for the anchors and graph plus ``O(m^3)``; hashing a
point costs ``O(m d)``.

One-layer AGH (``layers=1``) takes ``k = n_bits`` eigenfunctions, one bit each:
``bit = [y_k(x) >= 0]``.

Two-layer (hierarchical) AGH (``layers=2``) takes ``k = ceil(n_bits / 2)`` eigenfunctions and
draws two bits from each: the first is ``[y >= 0]``; the second splits each side again at a
learned threshold, ``[y - b+ >= 0]`` where ``y >= 0`` and ``[-y + b- >= 0]`` where ``y < 0``, so
points near the first-layer boundary and points far from it on the same side differ in it. The
thresholds are learned on the training data by relaxing the second-layer bits of eigenvector ``y``
(``n``-vector, positive part ``P``, negative part ``N``) to
``v = [y_P - b+ 1 ; -y_N + b- 1]`` and minimising their graph smoothness ``v^T L v`` subject to
balance, ``1^T v = 0``. Writing ``h = |y|``, ``n+ = |P|``, ``n- = |N|``, ``s3 = 1_P^T y``,
``s1 = 1_P^T A h`` and ``s2 = 1_P^T L 1_P = n+ - 1_P^T A 1_P`` (the weight of the cut between
``P`` and ``N``), the minimiser is

    ``b+ = (2 s3 + n- c) / n``,   ``b- = (n+ c - 2 s3) / n``,   ``c = (s3 - s1) / s2``.

(The balance line is ``n+ b+ - n- b- = 2 s3``; along it ``v = h - (2 s3 / n) 1 - c u`` with
``u = 1_P - (n+ / n) 1`` and ``L 1 = 0``, so the optimum is ``c = u^T L h / u^T L u``.) When
``n_bits`` is odd, the last eigenfunction contributes only its first-layer bit. Bits are ordered
all first-layer bits, then the second-layer bits of eigenfunctions ``1..n_bits - k``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hashlearn._validation import check_int, check_random_state
from hashlearn.exceptions import InvalidInputError
from hashlearn.hashers.anchor_graph import (
    AnchorGraph,
    AnchorGraphHasher,
    check_anchor_params,
    eigenfunction_weights,
    spectral_embedding,
)


class AGH(AnchorGraphHasher):
    """Anchor Graph Hashing: signs of anchor-graph Laplacian eigenfunctions (one or two layers).

    Parameters
    ----------
    n_bits : number of bits.
    n_anchors : number of k-means anchors ``m`` (paper: 300); on small training sets at most one
        anchor per 3 samples (but enough for ``n_bits``), see ``fit_anchor_graph``.
    n_nearest : number of nearest anchors ``s`` each sample is linked to (default 2; the authors
        fix ``m = 300`` and tune ``2 <= s <= m / 10`` per dataset); clamped to the number of
        anchors.
    layers : 1 for one-layer AGH (one bit per eigenfunction), 2 for hierarchical two-layer AGH
        (two bits per eigenfunction, thresholds learned on the training data).
    kmeans_iter : Lloyd iterations of the k-means that places the anchors (one k-means++ start).
    random_state : seed of the k-means; the same seed gives the same codes.

    Attributes
    ----------
    anchors_ : float32 (m, n_features), the anchors (k-means centres used by the graph).
    bandwidth_ : float, the Gaussian kernel bandwidth ``t`` in ``exp(-||x - u||^2 / t)``.
    n_nearest_ : int, the ``s`` actually used (after clamping).
    projection_ : float32 (m, k), ``W``: eigenfunction ``j`` of ``x`` is ``z(x) @ W[:, j]``;
        ``k = n_bits`` for one layer, ``ceil(n_bits / 2)`` for two.
    eigenvalues_ : float64 (k,), the eigenvalues of ``A`` behind the eigenfunctions, descending.
    thresholds_ : float32 (2, n_bits - k), rows ``b+`` and ``b-`` of the second-layer bits
        (shape (2, 0) for one layer).
    """

    name = "agh"
    _saved_arrays = ("anchors_", "projection_", "eigenvalues_", "thresholds_")
    _saved_values = ("bandwidth_", "n_nearest_")

    def __init__(
        self,
        n_bits: int = 32,
        *,
        n_anchors: int = 300,
        n_nearest: int = 2,
        layers: int = 1,
        kmeans_iter: int = 10,
        random_state: int | None = None,
    ) -> None:
        self.n_bits = n_bits
        self.n_anchors = n_anchors
        self.n_nearest = n_nearest
        self.layers = layers
        self.kmeans_iter = kmeans_iter
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> AGH:
        n_bits = self._check_n_bits()
        check_anchor_params(self.n_anchors, self.n_nearest, self.kmeans_iter)
        layers = check_int(self.layers, "layers", minimum=1)
        if layers not in (1, 2):
            raise InvalidInputError(f"layers must be 1 or 2, got {layers}")
        rng = np.random.default_rng(check_random_state(self.random_state))
        X = self._check_input(X)
        k = n_bits if layers == 1 else (n_bits + 1) // 2
        graph = self._fit_graph(X, rng, min_anchors=k + 2)
        V, sigma = spectral_embedding(graph, k, n_bits)
        W = eigenfunction_weights(graph, V, sigma)
        if layers == 2:
            thresholds = second_layer_thresholds(graph, graph.Z @ W[:, : n_bits - k])
        else:
            thresholds = np.zeros((2, 0))
        self._keep_graph(graph)
        self.projection_ = W.astype(np.float32)
        self.eigenvalues_ = sigma
        self.thresholds_ = thresholds.astype(np.float32)
        return self

    def transform(self, X: Any) -> np.ndarray:
        Z = self._graph_rows(X)
        Y = np.asarray(Z @ self.projection_, dtype=np.float32)
        if self.thresholds_.shape[1] == 0:
            return Y
        first = Y[:, : self.thresholds_.shape[1]]
        b_pos, b_neg = self.thresholds_
        second = np.where(first >= 0, first - b_pos, -first + b_neg).astype(np.float32)
        return np.concatenate([Y, second], axis=1)


def second_layer_thresholds(graph: AnchorGraph, Y: np.ndarray) -> np.ndarray:
    """Thresholds ``[b+; b-]`` (2, k) of the second-layer bits of the eigenvectors ``Y`` (n, k).

    Minimises the Laplacian smoothness of the relaxed second-layer bits under balance (see the
    module docstring); computed with ``Z``, never forming ``A``.
    """
    n = Y.shape[0]
    positive = Y >= 0
    H = np.abs(Y)
    n_pos = positive.sum(axis=0).astype(np.float64)
    n_neg = n - n_pos
    s3 = np.where(positive, Y, 0.0).sum(axis=0)
    P = positive.astype(np.float64)
    ZtP = graph.Z.T @ P  # (m, k): Z^T 1_P per eigenvector
    lam = graph.column_sums[:, None]
    s1 = np.sum(ZtP * (graph.Z.T @ H) / lam, axis=0)  # 1_P^T A h
    s2 = n_pos - np.sum(ZtP * ZtP / lam, axis=0)  # 1_P^T L 1_P, the cut weight
    safe = s2 > 1e-12 * np.maximum(n_pos, 1.0)
    c = np.where(safe, (s3 - s1) / np.where(safe, s2, 1.0), 0.0)
    b_pos = (2 * s3 + n_neg * c) / n
    b_neg = (n_pos * c - 2 * s3) / n
    return np.stack([b_pos, b_neg])
