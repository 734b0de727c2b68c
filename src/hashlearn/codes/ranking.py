"""Ranking primitives for binary codes: Hamming ranking, relevance, AP, precision and recall.

Every function here is pure numpy: no model, no index, no torch. The pipeline is::

    hamming_ranking(query_codes, db_codes)          -> distances, indices   (nq, L)
    relevance_matrix(query_labels, db_labels)       -> relevant             (nq, n)
    np.take_along_axis(relevant, indices, axis=1)   -> ranked relevance     (nq, L)
    average_precision / precision_at_k / ...        -> per-query scores     (nq,)

and :func:`hashlearn.evaluation.evaluate_codes` runs it over every query in one compiled pass
and returns the means. The trainer's validation uses these functions directly.

Ranking and ties
----------------
The database is ranked by Hamming distance to the query, ascending; items at the same distance
are ranked by their database position, ascending. Rankings, and therefore every metric, are
deterministic. Other tools may order ties differently (``numpy.argsort`` with its default,
unstable sort, a GPU top-k, a faiss index...), which can move relevant items within a block of
tied items and so change mAP, mAP@k and P@k / R@k slightly; precision and recall within a
Hamming radius do not depend on the order of ties.

Ranked relevance
----------------
The metric functions take ``relevant``, a boolean array of shape ``(nq, L)`` whose column ``j``
says whether the item ranked ``j + 1`` (best first) is relevant to the query, and optionally
``n_relevant``, an integer array of shape ``(nq,)`` giving the number of relevant items in the
*whole* database for each query. When ``L`` is smaller than the database, ``n_relevant`` is
needed for recall and for full-ranking average precision; when it is omitted it defaults to
``relevant.sum(axis=1)``, which is right only when ``relevant`` covers the full ranking.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hashlearn._validation import as_numeric_array, check_int, check_k, check_radius
from hashlearn.codes.distance import hamming_distance
from hashlearn.codes.packing import check_codes
from hashlearn.exceptions import CodeFormatError, InvalidInputError

__all__ = [
    "average_precision",
    "hamming_ranking",
    "mean_average_precision",
    "precision_at_k",
    "precision_within_radius",
    "recall_at_k",
    "recall_within_radius",
    "relevance_matrix",
]

# Budget for the largest per-chunk temporary (bytes). A chunk of queries is sized so that its
# (rows, n_db) matrix of 8-byte values (sort indices) stays under it; the int32 distance matrix
# is half that.
_CHUNK_BYTES = 64 * 2**20


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------


def _check_chunk_size(chunk_size: Any, n_db: int) -> int:
    if chunk_size is None:
        return max(1, _CHUNK_BYTES // (8 * max(n_db, 1)))
    return check_int(chunk_size, "chunk_size", minimum=1)


def _check_binary_matrix(values: Any, name: str, what: str) -> np.ndarray:
    """Return a 2-D array of booleans or {0, 1} numbers as ``bool``; ``what`` describes the shape."""
    array = as_numeric_array(values, name)
    if array.ndim != 2:
        hint = "; use relevant.reshape(1, -1) for a single query" if array.ndim == 1 else ""
        raise InvalidInputError(f"{name} must be 2-D {what}, got shape {array.shape}{hint}")
    if array.dtype == np.bool_:
        return array
    if np.issubdtype(array.dtype, np.floating) and np.isnan(array).any():
        raise InvalidInputError(f"{name} holds NaN; it must hold booleans or 0/1 values")
    bad = (array != 0) & (array != 1)
    if bad.any():
        value = array[bad][0]
        raise InvalidInputError(
            f"{name} must hold booleans or 0/1 values, got dtype {array.dtype} with value {value!r}"
        )
    return array.astype(bool)


def _check_relevant(relevant: Any) -> np.ndarray:
    return _check_binary_matrix(relevant, "relevant", "(n_queries, n_ranked)")


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


def check_labels(labels: Any, name: str) -> np.ndarray:
    """Return 1-D labels as ``int64`` or a 2-D indicator matrix as ``bool``."""
    array = as_numeric_array(labels, name)
    if array.ndim == 1:
        if np.issubdtype(array.dtype, np.floating):
            if not np.isfinite(array).all():
                raise InvalidInputError(f"{name} holds NaN or infinite values")
            if not np.all(array == np.round(array)):
                raise InvalidInputError(
                    f"{name} must hold integer class labels, got non-integer values"
                )
        return array.astype(np.int64)
    if array.ndim == 2:
        return _check_binary_matrix(array, name, "(n, n_classes)")
    raise InvalidInputError(
        f"{name} must be 1-D class labels (n,) or a 2-D label-indicator matrix (n, n_classes), "
        f"got shape {array.shape}"
    )


def check_label_pair(query_labels: Any, db_labels: Any) -> tuple[np.ndarray, np.ndarray]:
    q = check_labels(query_labels, "query_labels")
    d = check_labels(db_labels, "db_labels")
    if q.ndim != d.ndim:
        raise InvalidInputError(
            f"query_labels and db_labels must both be 1-D class labels or both 2-D indicator "
            f"matrices, got shapes {q.shape} and {d.shape}"
        )
    if q.ndim == 2 and q.shape[1] != d.shape[1]:
        raise InvalidInputError(
            f"query_labels and db_labels must have the same number of classes (columns), got "
            f"{q.shape[1]} and {d.shape[1]}"
        )
    return q, d


def check_code_pair(query_codes: Any, db_codes: Any) -> tuple[np.ndarray, np.ndarray]:
    q = check_codes(query_codes, name="query_codes")
    d = check_codes(db_codes, name="db_codes")
    if q.shape[1] != d.shape[1]:
        raise CodeFormatError(
            f"query_codes and db_codes have different widths: {q.shape[1]} and {d.shape[1]} bytes"
        )
    return q, d


def safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` as float64, 0 where the denominator is 0."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.zeros(np.broadcast_shapes(numerator.shape, denominator.shape), dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


# --------------------------------------------------------------------------------------------
# relevance and ranking
# --------------------------------------------------------------------------------------------


def relevance(q: np.ndarray, d: np.ndarray) -> np.ndarray:
    if q.ndim == 1:
        return q[:, None] == d[None, :]
    # Share at least one label: a positive count of common labels. float32 sums of 0/1 values are
    # exact far beyond any realistic number of classes, and any positive count stays positive.
    return (q.astype(np.float32) @ d.astype(np.float32).T) > 0


def relevance_matrix(query_labels: Any, db_labels: Any) -> np.ndarray:
    """Which database items are relevant to which queries.

    Parameters
    ----------
    query_labels : array-like of shape (nq,) or (nq, n_classes)
        Single-label integer class labels (1-D), or a multi-label indicator matrix (2-D) of
        booleans or 0/1 values.
    db_labels : array-like of shape (n,) or (n, n_classes)
        Same kind as ``query_labels``: both 1-D, or both 2-D with the same number of classes.

    Returns
    -------
    numpy.ndarray of dtype bool and shape (nq, n)
        Single-label: ``relevant[i, j] = query_labels[i] == db_labels[j]``.
        Multi-label: ``relevant[i, j]`` is true iff query ``i`` and item ``j`` share at least one
        label, i.e. ``(query_labels[i] & db_labels[j]).any()``; an item (or query) without any
        label is relevant to nothing.

    Raises
    ------
    InvalidInputError
        If a label array is neither 1-D nor 2-D, the two have different ranks or numbers of
        classes, 1-D labels are not whole numbers, or an indicator matrix holds values other
        than 0 and 1.
    """
    q, d = check_label_pair(query_labels, db_labels)
    return relevance(q, d)


def _rank_order(distances: np.ndarray, n_bits_max: int) -> np.ndarray:
    """Column order sorting each row of a distance matrix ascending, ties by column (int64)."""
    if n_bits_max <= np.iinfo(np.uint16).max:
        # A stable sort of 16-bit integers is a linear-time radix sort in numpy.
        order = np.argsort(distances.astype(np.uint16), axis=1, kind="stable")
    else:  # pragma: no cover - codes wider than 65535 bits
        order = np.argsort(distances, axis=1, kind="stable")
    return order.astype(np.int64, copy=False)


def hamming_ranking(
    query_codes: np.ndarray,
    db_codes: np.ndarray,
    k: int | None = None,
    *,
    chunk_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Rank the database by Hamming distance to each query.

    Items are sorted by Hamming distance, ascending; items at the same distance are sorted by
    database position, ascending. The ranking is therefore unique and deterministic.

    Parameters
    ----------
    query_codes : numpy.ndarray of dtype uint8 and shape (nq, n_bytes)
        Packed query codes (see :mod:`hashlearn.codes`).
    db_codes : numpy.ndarray of dtype uint8 and shape (n, n_bytes)
        Packed database codes, same width as ``query_codes``.
    k : int >= 1 or None, default None
        Length of the ranking to return; ``None`` returns the full ranking (``k = n``). A ``k``
        larger than the database is clipped to ``n``.
    chunk_size : int >= 1 or None, default None
        Number of queries ranked at once. ``None`` chooses it so that the per-chunk
        ``(chunk_size, n)`` temporaries stay around 64 MiB. Results do not depend on it.

    Returns
    -------
    distances : numpy.ndarray of dtype int32 and shape (nq, min(k, n))
        ``distances[i, j]`` is the Hamming distance from query ``i`` to its ``j + 1``-th item.
    indices : numpy.ndarray of dtype int64 and shape (nq, min(k, n))
        Database positions of the ranked items, best first.

    Raises
    ------
    CodeFormatError
        If the codes are not packed ``uint8`` arrays of the same width.
    InvalidInputError
        If ``k`` or ``chunk_size`` is not an integer >= 1.
    """
    q, d = check_code_pair(query_codes, db_codes)
    k = None if k is None else check_k(k)
    n = len(d)
    width = n if k is None else min(k, n)
    rows = _check_chunk_size(chunk_size, n)
    distances = np.empty((len(q), width), dtype=np.int32)
    indices = np.empty((len(q), width), dtype=np.int64)
    if width == 0:
        return distances, indices
    n_bits_max = 8 * q.shape[1]
    for start in range(0, len(q), rows):
        chunk = hamming_distance(q[start : start + rows], d)
        order = _rank_order(chunk, n_bits_max)[:, :width]
        distances[start : start + rows] = np.take_along_axis(chunk, order, axis=1)
        indices[start : start + rows] = order
    return distances, indices


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
    A query with no item within the radius gets precision 0, the convention of the spectral
    hashing (Weiss et al.) and KSH (Liu et al.) evaluations. The value does not depend on the
    order of the columns, but only the items present in ``distances`` count: pass the full
    ranking, or one long enough to hold every item within the radius.

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
    relevant = _check_relevant(relevant)
    distances = _check_distances(distances, relevant)
    radius = check_radius(radius)
    within = distances <= radius
    hits = (within & relevant).sum(axis=1, dtype=np.int64)
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
    relevant = _check_relevant(relevant)
    distances = _check_distances(distances, relevant)
    radius = check_radius(radius)
    n_relevant = _check_n_relevant(n_relevant, relevant)
    hits = ((distances <= radius) & relevant).sum(axis=1, dtype=np.int64)
    return safe_divide(hits, n_relevant)
