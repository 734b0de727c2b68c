"""Anchor graphs, the low-rank affinity shared by AGH and DGH (Liu, Wang, Kumar & Chang, ICML 2011).

An anchor graph replaces the ``n x n`` affinity of a neighbourhood graph by one built from ``m``
anchors ``u_1..u_m`` (k-means centres of the training data, ``m << n``):

- every sample ``x`` is linked to its ``s`` nearest anchors ``<x>`` with weights
  ``z_j(x) = exp(-||x - u_j||^2 / t) / sum_{k in <x>} exp(-||x - u_k||^2 / t)`` for ``j in <x>``
  and ``0`` otherwise, so each row of ``Z = [z(x_1), ..., z(x_n)]^T`` (``n x m``) has exactly
  ``s`` non-zeros and sums to 1;
- the bandwidth is ``t = sigma^2`` with ``sigma`` the mean distance of the training samples to
  their ``s``-th nearest anchor (as in the authors' released code);
- the affinity is ``A = Z Lambda^{-1} Z^T`` with ``Lambda = diag(Z^T 1)`` (``m x m``). ``A`` is
  positive semi-definite, of rank at most ``m``, and doubly stochastic (``A 1 = 1``), so its
  Laplacian is ``L = I - A``. It is never formed: products with ``A`` go through ``Z``.

The non-trivial eigenvectors of ``A`` come from the small ``m x m`` matrix
``M = Lambda^{-1/2} Z^T Z Lambda^{-1/2}``: if ``M v = sigma v`` then
``y = Z Lambda^{-1/2} v / sqrt(sigma)`` is a unit eigenvector of ``A`` with eigenvalue ``sigma``,
and ``z(x)^T Lambda^{-1/2} v / sqrt(sigma)`` extends it to any point ``x`` (the Nystrom-like
eigenfunction that makes AGH an inductive hash function). ``M`` always has the eigenpair
``(1, Lambda^{1/2} 1 / sqrt(n))``, which maps to the constant vector: useless for hashing.

AGH and DGH derive from :class:`AnchorGraphHasher`, which builds, keeps and applies their graph.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp

from hashlearn._validation import check_int
from hashlearn.exceptions import InvalidInputError
from hashlearn.hashers.base import Hasher

_CHUNK_ROWS = 4096  # rows of the (rows x m) distance block computed at once
_SAMPLES_PER_ANCHOR = 3  # fewest training samples per anchor on small training sets
# Eigenvalues of M at or above this are treated as trivial: the constant eigenvector (eigenvalue 1)
# and the indicator vectors of (almost) disconnected pieces of the graph, which give very
# unbalanced bits. The authors' released code uses the same cut-off.
_TRIVIAL_EIGENVALUE = 1.0 - 1e-3
_ZERO_EIGENVALUE = 1e-10


@dataclass
class AnchorGraph:
    """An anchor graph on the training data.

    anchors : float32 (m, d), the anchors actually used by some training sample.
    Z : scipy.sparse CSR float64 (n, m), ``s`` non-zeros per row, rows summing to 1.
    bandwidth : float, the kernel bandwidth ``t`` of ``exp(-d^2 / t)``.
    n_nearest : int, ``s``.
    """

    anchors: np.ndarray
    Z: sp.csr_matrix
    bandwidth: float
    n_nearest: int

    @cached_property
    def column_sums(self) -> np.ndarray:
        """``diag(Lambda) = Z^T 1``, float64 (m,), all positive."""
        return np.asarray(self.Z.sum(axis=0)).ravel()

    def affinity_times(self, B: np.ndarray) -> np.ndarray:
        """``A @ B = Z Lambda^{-1} Z^T B`` for a (n, r) array, without forming ``A``."""
        return self.Z @ ((self.Z.T @ B) / self.column_sums[:, None])


class AnchorGraphHasher(Hasher):
    """Base of the hashers that hash through an anchor graph (AGH, DGH).

    A subclass stores ``n_anchors``, ``n_nearest`` and ``kmeans_iter`` in ``__init__``; its ``fit``
    builds the training graph with :meth:`_fit_graph` and, once fitted, keeps what new samples
    need with :meth:`_keep_graph` (``anchors_``, ``bandwidth_`` and ``n_nearest_``); its
    ``transform`` starts from :meth:`_graph_rows`.
    """

    n_anchors: int
    n_nearest: int
    kmeans_iter: int
    anchors_: np.ndarray
    bandwidth_: float
    n_nearest_: int

    def _fit_graph(
        self, X: np.ndarray, rng: np.random.Generator, *, min_anchors: int
    ) -> AnchorGraph:
        """:func:`fit_anchor_graph` on ``X`` with this hasher's anchor parameters."""
        return fit_anchor_graph(
            X,
            self.n_anchors,
            self.n_nearest,
            kmeans_iter=self.kmeans_iter,
            rng=rng,
            min_anchors=min_anchors,
        )

    def _keep_graph(self, graph: AnchorGraph) -> None:
        """Store the anchors, bandwidth and ``s`` of ``graph``, from which :meth:`_graph_rows`
        links new samples."""
        self.anchors_ = graph.anchors
        self.bandwidth_ = graph.bandwidth
        self.n_nearest_ = graph.n_nearest

    @property
    def n_features_in_(self) -> int:
        """Values per sample the fitted hasher reads."""
        return int(self.anchors_.shape[1])

    def _graph_rows(self, X: Any) -> sp.csr_matrix:
        """``Z(X)`` of new samples against the fitted anchors (see :func:`anchor_graph_rows`),
        after checking that the hasher is fitted and ``X`` has the fitted number of features."""
        self._check_fitted()
        X = self._check_input(X, fitted_features=self.n_features_in_)
        return anchor_graph_rows(X, self.anchors_, self.n_nearest_, self.bandwidth_)


def check_anchor_params(n_anchors: object, n_nearest: object, kmeans_iter: object) -> None:
    """Validate the anchor-graph parameters shared by AGH and DGH (before clamping to ``n``)."""
    check_int(n_anchors, "n_anchors", minimum=2)
    check_int(n_nearest, "n_nearest", minimum=1)
    check_int(kmeans_iter, "kmeans_iter", minimum=1)


def fit_anchor_graph(
    X: np.ndarray,
    n_anchors: int,
    n_nearest: int,
    *,
    kmeans_iter: int,
    rng: np.random.Generator,
    min_anchors: int = 2,
) -> AnchorGraph:
    """k-means anchors on ``X`` (n, d) and the training anchor graph.

    On small training sets ``n_anchors`` is clamped to one anchor per ``_SAMPLES_PER_ANCHOR``
    samples (but at least ``min_anchors``, at most ``n``): with about one anchor per sample the
    graph falls apart into tiny components whose indicator vectors become eigenvectors with
    eigenvalue near 1, i.e. very unbalanced bits (on 300 digits, AGH codes with 300 anchors
    retrieve worse than random projections; with 100 they are twice as good). ``n_nearest`` is
    clamped to the number of anchors. Anchors that are no training sample's ``s`` nearest
    (possible when k-means returns duplicate centres) are dropped, so every column of ``Z`` has a
    positive sum.
    """
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    n = X.shape[0]
    m = min(n_anchors, n, max(n // _SAMPLES_PER_ANCHOR, min_anchors))
    seed = int(rng.integers(2**31 - 1))
    # random training samples as initial centres: k-means++ seeding of hundreds of centres costs
    # far more than the whole rest of the fit, and a few Lloyd iterations suffice for anchors
    kmeans = KMeans(n_clusters=m, init="random", n_init=1, max_iter=kmeans_iter, random_state=seed)
    with warnings.catch_warnings():
        # duplicate samples can leave fewer distinct centres than m; unused ones are dropped below
        warnings.simplefilter("ignore", ConvergenceWarning)
        kmeans.fit(X)
    anchors = np.ascontiguousarray(kmeans.cluster_centers_, dtype=np.float32)
    s = min(n_nearest, m)
    index, dist2 = nearest_anchors(X, anchors, s)
    sigma = float(np.mean(np.sqrt(dist2[:, -1])))
    bandwidth = sigma**2 if sigma > 0 else 1.0
    used = np.zeros(m, dtype=bool)
    used[index.ravel()] = True
    if not used.all():
        remap = np.cumsum(used) - 1
        anchors = anchors[used]
        index = remap[index]
    Z = _assemble(index, dist2, bandwidth, len(anchors))
    return AnchorGraph(anchors=anchors, Z=Z, bandwidth=bandwidth, n_nearest=s)


def anchor_graph_rows(
    X: np.ndarray, anchors: np.ndarray, n_nearest: int, bandwidth: float
) -> sp.csr_matrix:
    """``Z(X)``: the (n, m) truncated, row-normalised kernel weights of ``X`` to fixed anchors."""
    index, dist2 = nearest_anchors(X, anchors, n_nearest)
    return _assemble(index, dist2, bandwidth, len(anchors))


def nearest_anchors(X: np.ndarray, anchors: np.ndarray, s: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (n, s) and squared distances (n, s) of the ``s`` nearest anchors, nearest first."""
    n = X.shape[0]
    anchors64 = anchors.astype(np.float64)
    anchor_norms = np.einsum("ij,ij->i", anchors64, anchors64)
    index = np.empty((n, s), dtype=np.int64)
    dist2 = np.empty((n, s), dtype=np.float64)
    rows = np.arange(min(n, _CHUNK_ROWS))[:, None]
    for start in range(0, n, _CHUNK_ROWS):
        block = X[start : start + _CHUNK_ROWS].astype(np.float64)
        d2 = np.einsum("ij,ij->i", block, block)[:, None] - 2.0 * block @ anchors64.T
        d2 += anchor_norms
        np.maximum(d2, 0.0, out=d2)
        if s < d2.shape[1]:
            part = np.argpartition(d2, s - 1, axis=1)[:, :s]
        else:
            part = np.broadcast_to(np.arange(s), (len(block), s))
        r = rows[: len(block)]
        part_d2 = d2[r, part]
        order = np.argsort(part_d2, axis=1, kind="stable")
        index[start : start + len(block)] = part[r, order]
        dist2[start : start + len(block)] = part_d2[r, order]
    return index, dist2


def _assemble(index: np.ndarray, dist2: np.ndarray, bandwidth: float, m: int) -> sp.csr_matrix:
    n, s = index.shape
    # Shifting by the nearest distance leaves the normalised weights unchanged and avoids 0/0 for
    # samples far from every anchor; the floor keeps exactly s stored, positive entries per row.
    weights = np.exp(-(dist2 - dist2[:, :1]) / bandwidth)
    np.maximum(weights, np.finfo(np.float64).tiny, out=weights)
    weights /= weights.sum(axis=1, keepdims=True)
    indptr = np.arange(0, n * s + 1, s)
    return sp.csr_matrix((weights.ravel(), index.ravel(), indptr), shape=(n, m))


def spectral_embedding(
    graph: AnchorGraph, n_vectors: int, n_bits: int
) -> tuple[np.ndarray, np.ndarray]:
    """The top non-trivial eigenpairs of ``M = Lambda^{-1/2} Z^T Z Lambda^{-1/2}``.

    Returns ``V`` float64 (m, n_vectors) and eigenvalues ``sigma`` (n_vectors,), descending.
    Raises InvalidInputError when the graph has fewer than ``n_vectors`` usable eigenvectors
    (eigenvalues strictly between 0 and 1).
    """
    lam = graph.column_sums
    scale = 1.0 / np.sqrt(lam)
    gram = (graph.Z.T @ graph.Z).toarray()
    M = gram * scale[:, None] * scale[None, :]
    sigma, V = np.linalg.eigh((M + M.T) / 2)
    order = np.argsort(sigma)[::-1]
    sigma, V = sigma[order], V[:, order]
    keep = (sigma > _ZERO_EIGENVALUE) & (sigma < _TRIVIAL_EIGENVALUE)
    available = int(keep.sum())
    if available < n_vectors:
        raise InvalidInputError(
            f"n_bits={n_bits} needs {n_vectors} non-trivial eigenvectors of the anchor graph, but "
            f"only {available} are available ({len(lam)} anchors on {graph.Z.shape[0]} samples); "
            "use fewer bits, more anchors or more training samples"
        )
    V, sigma = V[:, keep][:, :n_vectors], sigma[keep][:n_vectors]
    # fix each eigenvector's sign (eigh's is arbitrary): largest-magnitude entry positive
    flip = np.sign(V[np.argmax(np.abs(V), axis=0), np.arange(V.shape[1])])
    return V * flip, sigma


def eigenfunction_weights(graph: AnchorGraph, V: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """``W = sqrt(n) Lambda^{-1/2} V Sigma^{-1/2}`` (m, k): ``Z W`` has columns with mean 0 and
    ``(Z W)^T (Z W) = n I``, and ``z(x)^T W`` extends them to new points."""
    n = graph.Z.shape[0]
    return np.sqrt(n) * (V / np.sqrt(graph.column_sums)[:, None]) / np.sqrt(sigma)[None, :]
