"""Ranking primitives for binary codes: Hamming ranking and relevance.

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

The metrics over ranked relevance are in :mod:`hashlearn.codes.metrics`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hashlearn._validation import as_numeric_array, check_int, check_k
from hashlearn.codes.distance import hamming_distance
from hashlearn.codes.packing import check_codes
from hashlearn.exceptions import CodeFormatError, InvalidInputError

__all__ = [
    "check_code_pair",
    "check_label_pair",
    "check_labels",
    "hamming_ranking",
    "relevance",
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


def check_binary_matrix(values: Any, name: str, what: str) -> np.ndarray:
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
        return check_binary_matrix(array, name, "(n, n_classes)")
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
