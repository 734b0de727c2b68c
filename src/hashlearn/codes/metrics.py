"""Retrieval metrics over ranked relevance: AP, mAP, P@k, R@k, precision and recall within a radius.

Pure numpy functions with hand-checked definitions; :func:`hashlearn.codes.ranking.hamming_ranking`
and :func:`~hashlearn.codes.ranking.relevance_matrix` give their inputs, the deep trainer's
validation calls them directly, and :func:`hashlearn.evaluation.evaluate_retrieval` computes the
same quantities for every query in one compiled pass.

Ranked relevance
----------------
The metric functions take ``relevant``, a boolean array of shape ``(nq, L)`` whose column ``j``
says whether the item ranked ``j + 1`` (best first) is relevant to the query, and optionally
``n_relevant``, an integer array of shape ``(nq,)`` giving the number of relevant items in the
*whole* database for each query. When ``L`` is smaller than the database, ``n_relevant`` is
needed for recall and for full-ranking average precision; when it is omitted it defaults to
``relevant.sum(axis=1)``, which is right only when ``relevant`` covers the full ranking.

Precision within a Hamming radius: two conventions
--------------------------------------------------
A query whose Hamming ball of radius ``r`` holds no item has no precision. The literature
settles this in two ways, both available here (:data:`PRECISION_CONVENTIONS`):

- ``"per-query"``: the precision of each query, 0 for an empty ball, averaged over queries
  (:func:`precision_within_radius`, then a mean). An empty ball counts as a failed lookup. This
  is the "precision within Hamming radius 2" of the DeepHash evaluation code of Cao, Long et
  al. (``thulab/DeepHash``, ``DeepHash/evaluation/__init__.py``,
  ``MAPs.get_precision_recall_by_Hamming_Radius``: precision and recall 0 when nothing lies
  within the radius, then the mean over queries), which the released code of Deep Cauchy
  Hashing (Cao et al., CVPR 2018) reports.
- ``"pooled"``: the good pairs within the radius over the retrieved pairs, both summed over all
  queries (:func:`pooled_precision_within_radius`); recall likewise pools the good pairs found
  over all relevant pairs. An empty ball adds nothing to either sum. This is what the
  evaluation code released with Spectral Hashing (Weiss, Torralba & Fergus, NIPS 2008) and with
  ITQ (Gong & Lazebnik, CVPR 2011; Gong et al., TPAMI 2013) computes: retrieved good pairs over
  retrieved pairs, over the whole query x database distance matrix, at each Hamming distance.

With long codes many balls are empty and the two part ways: ITQ on mnist5k pixels (default
protocol, seed 0) reads a precision at radius 0 of 0.138 per query and 1.000 pooled at 32 bits
(every non-empty ball was pure, most were empty), 0.677 and 0.876 at 12 bits.

The default everywhere (:func:`hashlearn.evaluation.evaluate_retrieval`, the benchmark's
``precision_convention``) is ``"per-query"``: it is what a hash-table lookup delivers to each
user, an empty ball being a lookup that returned nothing, and it is the convention of the deep
hashing tables hashlearn's deep methods are compared with. ``"pooled"`` reproduces the shallow
methods' published curves.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hashlearn._validation import as_numeric_array, check_k, check_radius
from hashlearn.codes.ranking import check_binary_matrix
from hashlearn.exceptions import InvalidInputError

__all__ = [
    "PRECISION_CONVENTIONS",
    "average_precision",
    "check_precision_convention",
    "mean_average_precision",
    "pooled_precision_within_radius",
    "pooled_recall_within_radius",
    "precision_at_k",
    "precision_sum",
    "precision_within_radius",
    "recall_at_k",
    "recall_within_radius",
    "safe_divide",
]


PRECISION_CONVENTIONS = ("per-query", "pooled")
"""How precision within a Hamming radius treats queries with an empty ball (module docstring)."""


def check_precision_convention(convention: Any) -> str:
    """``convention`` if it is one of :data:`PRECISION_CONVENTIONS`, else InvalidInputError."""
    if not isinstance(convention, str) or convention not in PRECISION_CONVENTIONS:
        raise InvalidInputError(
            f"precision_convention must be one of "
            f"{', '.join(map(repr, PRECISION_CONVENTIONS))}, got {convention!r}"
        )
    return convention


def safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` as float64, 0 where the denominator is 0."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.zeros(np.broadcast_shapes(numerator.shape, denominator.shape), dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def _check_relevant(relevant: Any) -> np.ndarray:
    return check_binary_matrix(relevant, "relevant", "(n_queries, n_ranked)")


def _check_n_relevant(n_relevant: Any, relevant: np.ndarray) -> np.ndarray:
    """Return the per-query number of relevant database items as ``int64`` of shape ``(nq,)``."""
    retrieved = relevant.sum(axis=1, dtype=np.int64)
    if n_relevant is None:
        return retrieved
    array = as_numeric_array(n_relevant, "n_relevant")
    if array.ndim != 1 or array.shape[0] != relevant.shape[0]:
        raise InvalidInputError(
            f"n_relevant must have shape ({relevant.shape[0]},), one count per query of relevant, "
            f"got shape {array.shape}"
        )
    if np.issubdtype(array.dtype, np.floating) and not np.all(
        np.isfinite(array) & (array == np.round(array))
    ):
        raise InvalidInputError("n_relevant must hold whole numbers (counts of relevant items)")
    array = array.astype(np.int64)
    if (array < 0).any():
        raise InvalidInputError(f"n_relevant must be >= 0, got {int(array.min())}")
    short = array < retrieved
    if short.any():
        q = int(np.flatnonzero(short)[0])
        raise InvalidInputError(
            f"n_relevant is smaller than the number of relevant items in the ranking for query {q} "
            f"({int(array[q])} < {int(retrieved[q])}); it must count the relevant items of the whole database"
        )
    return array


def _check_distances(distances: Any, relevant: np.ndarray) -> np.ndarray:
    array = as_numeric_array(distances, "distances")
    if array.shape != relevant.shape:
        raise InvalidInputError(
            f"distances and relevant must have the same shape (n_queries, n_ranked), got "
            f"{array.shape} and {relevant.shape}"
        )
    if np.issubdtype(array.dtype, np.bool_):
        raise InvalidInputError("distances must hold Hamming distances (integers), got dtype bool")
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise InvalidInputError("distances holds NaN or infinite values")
    if array.size and array.min() < 0:
        raise InvalidInputError(f"distances must be >= 0, got {array.min()}")
    return array


# --------------------------------------------------------------------------------------------
# metrics on ranked relevance
# --------------------------------------------------------------------------------------------


def precision_sum(relevant: np.ndarray) -> np.ndarray:
    """Per row, ``sum over relevant positions i (1-based) of (#relevant in top i) / i``."""
    nq = relevant.shape[0]
    rows, cols = np.nonzero(relevant)  # row-major: each row's hits in rank order
    counts = np.bincount(rows, minlength=nq)
    starts = np.cumsum(counts) - counts
    hits_so_far = np.arange(1, rows.size + 1, dtype=np.float64) - starts[rows]
    return np.bincount(rows, weights=hits_so_far / (cols + 1.0), minlength=nq).astype(np.float64)


def average_precision(relevant: Any, n_relevant: Any = None, k: int | None = None) -> np.ndarray:
    """Average precision of each query's ranking, over the full ranking or its top ``k``.

    With ``P@i = (number of relevant items in the top i) / i`` and ``rel_i`` true when the item at
    rank ``i`` (1-based) is relevant:

    * ``k`` given (AP@k): ``AP@k = (1 / R_k) * sum_{i <= k, rel_i} P@i`` where ``R_k`` is the
      number of relevant items *retrieved in the top k*. This is the convention of the deep
      hashing literature (the evaluation code of HashNet, DPSH and their successors report
      "mAP@k" this way); it is not normalised by ``min(k, n_relevant)`` as some IR tools do.
      ``n_relevant`` is not used.
    * ``k=None`` (full ranking): ``AP = (1 / R) * sum_{i, rel_i} P@i`` with ``R = n_relevant``,
      the number of relevant items in the whole database: the classic average precision. When
      ``relevant`` covers the full ranking (``L = n``), this equals AP@n. When it covers only a
      prefix, relevant items beyond it contribute a precision of 0.

    A query whose denominator is 0 (no relevant item in its top ``k``, or none in the database)
    scores 0; such queries count as 0 in :func:`mean_average_precision` (some published scripts
    leave them out of the mean instead).

    Rankings from :func:`hamming_ranking` order items at equal Hamming distance by database
    position, so the result is deterministic; tools that order ties differently may report
    slightly different values.

    Parameters
    ----------
    relevant : array-like of bool or {0, 1}, shape (nq, L)
        ``relevant[q, j]``: the item ranked ``j + 1`` for query ``q`` is relevant.
    n_relevant : array-like of int, shape (nq,), optional
        Number of relevant items in the whole database per query (>= the count in
        ``relevant``). Defaults to ``relevant.sum(axis=1)``. Used only when ``k`` is None.
    k : int >= 1 or None, default None
        Cut-off. Only the first ``min(k, L)`` columns are used, so pass a ranking of at least
        ``k`` items (or the full ranking, when the database holds fewer than ``k`` items).

    Returns
    -------
    numpy.ndarray of dtype float64 and shape (nq,)
        Values in [0, 1].

    Raises
    ------
    InvalidInputError
        If ``relevant`` is not 2-D booleans / 0-1 values, ``n_relevant`` has the wrong shape or
        is smaller than the relevant count in the ranking, or ``k`` is not an integer >= 1.
    """
    relevant = _check_relevant(relevant)
    n_relevant = _check_n_relevant(n_relevant, relevant)
    if k is None:
        return safe_divide(precision_sum(relevant), n_relevant)
    k = check_k(k)
    top = relevant[:, :k]
    return safe_divide(precision_sum(top), top.sum(axis=1))


def mean_average_precision(relevant: Any, n_relevant: Any = None, k: int | None = None) -> float:
    """Mean over queries of :func:`average_precision` (mAP, or mAP@k when ``k`` is given).

    Queries that score 0 because they have no relevant item (in the top ``k``, or in the
    database) are included in the mean. See :func:`average_precision` for the exact definition
    and the parameters.

    Returns
    -------
    float
        ``average_precision(relevant, n_relevant, k).mean()``.

    Raises
    ------
    InvalidInputError
        As :func:`average_precision`, and if there are no queries.
    """
    ap = average_precision(relevant, n_relevant, k)
    if ap.size == 0:
        raise InvalidInputError("relevant has no queries (0 rows): the mean is undefined")
    return float(ap.mean())


def precision_at_k(relevant: Any, k: int) -> np.ndarray:
    """Precision of the top ``k``: ``P@k = (number of relevant items in the top k) / k``.

    The denominator is always ``k``: when the ranking holds fewer than ``k`` items (a database
    smaller than ``k``), the missing positions count as not relevant.

    Parameters
    ----------
    relevant : array-like of bool or {0, 1}, shape (nq, L)
        Ranked relevance, best first (see the module docstring).
    k : int >= 1
        Cut-off.

    Returns
    -------
    numpy.ndarray of dtype float64 and shape (nq,)

    Raises
    ------
    InvalidInputError
        If ``relevant`` is malformed or ``k`` is not an integer >= 1.
    """
    relevant = _check_relevant(relevant)
    k = check_k(k)
    return relevant[:, :k].sum(axis=1, dtype=np.int64) / np.float64(k)


def recall_at_k(relevant: Any, k: int, n_relevant: Any = None) -> np.ndarray:
    """Recall of the top ``k``: ``R@k = (number of relevant items in the top k) / n_relevant``.

    A query with ``n_relevant = 0`` (nothing relevant in the database) gets recall 0.

    Parameters
    ----------
    relevant : array-like of bool or {0, 1}, shape (nq, L)
        Ranked relevance, best first.
    k : int >= 1
        Cut-off; only the first ``min(k, L)`` columns are used.
    n_relevant : array-like of int, shape (nq,), optional
        Number of relevant items in the whole database per query. Defaults to
        ``relevant.sum(axis=1)``, correct only when ``relevant`` covers the full ranking.

    Returns
    -------
    numpy.ndarray of dtype float64 and shape (nq,)

    Raises
    ------
    InvalidInputError
        If ``relevant`` or ``n_relevant`` is malformed or ``k`` is not an integer >= 1.
    """
    relevant = _check_relevant(relevant)
    k = check_k(k)
    n_relevant = _check_n_relevant(n_relevant, relevant)
    return safe_divide(relevant[:, :k].sum(axis=1, dtype=np.int64), n_relevant)


def precision_within_radius(distances: Any, relevant: Any, radius: int = 2) -> np.ndarray:
    """Precision of the items within Hamming radius ``radius`` of the query.

    ``P@r = |{j : distances[q, j] <= radius and relevant[q, j]}| / |{j : distances[q, j] <= radius}|``.
    A query with no item within the radius gets precision 0: the ``"per-query"`` convention
    (see the module docstring; :func:`pooled_precision_within_radius` is the other). The value
    does not depend on the order of the columns, but only the items present in ``distances``
    count: pass the full ranking, or one long enough to hold every item within the radius.

    Parameters
    ----------
    distances : array-like of int, shape (nq, L)
        Hamming distances of the ranked items (as returned by :func:`hamming_ranking`).
    relevant : array-like of bool or {0, 1}, shape (nq, L)
        Relevance of the same items, aligned with ``distances``.
    radius : int >= 0, default 2
        Hamming radius (inclusive).

    Returns
    -------
    numpy.ndarray of dtype float64 and shape (nq,)

    Raises
    ------
    InvalidInputError
        If the shapes differ, ``distances`` are negative or not finite, ``relevant`` is
        malformed, or ``radius`` is not an integer >= 0.
    """
    relevant, within, hits = _hits_within(distances, relevant, radius)
    return safe_divide(hits, within.sum(axis=1, dtype=np.int64))


def recall_within_radius(
    distances: Any, relevant: Any, radius: int = 2, n_relevant: Any = None
) -> np.ndarray:
    """Recall of the items within Hamming radius ``radius`` of the query.

    ``R@r = |{j : distances[q, j] <= radius and relevant[q, j]}| / n_relevant[q]``. A query with
    ``n_relevant = 0`` gets recall 0.

    Parameters
    ----------
    distances : array-like of int, shape (nq, L)
        Hamming distances of the ranked items.
    relevant : array-like of bool or {0, 1}, shape (nq, L)
        Relevance of the same items, aligned with ``distances``.
    radius : int >= 0, default 2
        Hamming radius (inclusive).
    n_relevant : array-like of int, shape (nq,), optional
        Number of relevant items in the whole database per query. Defaults to
        ``relevant.sum(axis=1)``, correct only when ``relevant`` covers the full ranking.

    Returns
    -------
    numpy.ndarray of dtype float64 and shape (nq,)

    Raises
    ------
    InvalidInputError
        As :func:`precision_within_radius`, and if ``n_relevant`` is malformed.
    """
    relevant, _, hits = _hits_within(distances, relevant, radius)
    return safe_divide(hits, _check_n_relevant(n_relevant, relevant))


def pooled_precision_within_radius(distances: Any, relevant: Any, radius: int = 2) -> float:
    """Precision within Hamming radius ``radius``, pooled over the queries: the relevant items
    within the radius of any query over all items within the radius of any query,
    ``sum_q hits_q / sum_q retrieved_q`` (0 when no query retrieves anything).

    The ``"pooled"`` convention of the Spectral Hashing and ITQ evaluation code (see the module
    docstring): a query with an empty ball adds nothing, where :func:`precision_within_radius`
    counts it as 0. Parameters and errors as :func:`precision_within_radius`.

    Returns
    -------
    float
    """
    _, within, hits = _hits_within(distances, relevant, radius)
    return float(safe_divide(hits.sum(), within.sum(dtype=np.int64)))


def pooled_recall_within_radius(
    distances: Any, relevant: Any, radius: int = 2, n_relevant: Any = None
) -> float:
    """Recall within Hamming radius ``radius``, pooled over the queries: the relevant items
    within the radius of any query over the relevant items of all queries,
    ``sum_q hits_q / sum_q n_relevant_q`` (0 when no query has a relevant item). The
    ``"pooled"`` convention (module docstring). Parameters and errors as
    :func:`recall_within_radius`.

    Returns
    -------
    float
    """
    relevant, _, hits = _hits_within(distances, relevant, radius)
    return float(safe_divide(hits.sum(), _check_n_relevant(n_relevant, relevant).sum()))


def _hits_within(
    distances: Any, relevant: Any, radius: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(relevant, within, hits)`` after checking the inputs: the relevance matrix, which items
    lie within ``radius`` (bool (nq, L)) and how many relevant ones do per query (int64 (nq,))."""
    relevant = _check_relevant(relevant)
    distances = _check_distances(distances, relevant)
    within = distances <= check_radius(radius)
    return relevant, within, (within & relevant).sum(axis=1, dtype=np.int64)
