"""Re-ranking hash-table candidates by the distance of real-valued features (cosine or L2).

Items of a hash-table index may carry ``float32`` features (:meth:`HashTableIndex.add
<hashlearn.index.HashTableIndex.add>` with ``features=``); ``search_rerank`` orders the candidates
a Hamming search finds by the distance between the query's features and theirs, ties by id.
Distances are computed in float64 (sums left to right over the features), then rounded to
float32, which the ranking uses: the candidates' keys become feature keys
(:func:`hashlearn.codes.keys.make_feature_key`), sorted.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray

from hashlearn._validation import as_numeric_array, check_finite
from hashlearn.codes.keys import key_rank, make_feature_key
from hashlearn.exceptions import InvalidInputError, UnknownNameError

__all__ = [
    "COSINE",
    "HAMMING",
    "L2",
    "METRICS",
    "check_metric",
    "float32_rows",
    "rank_by_features",
    "row_norms",
]

METRICS = ("cosine", "l2")
"""Feature distances ``search_rerank`` ranks by."""

# What a search ranks its candidates by (the kernels' ``metric``).
HAMMING, COSINE, L2 = 0, 1, 2
_METRIC_CODES = {"cosine": COSINE, "l2": L2}


def check_metric(metric: Any) -> int:
    """The kernels' code of a metric name of :data:`METRICS`; :class:`UnknownNameError` if none."""
    if not isinstance(metric, str) or metric not in METRICS:
        raise UnknownNameError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    return _METRIC_CODES[metric]


def float32_rows(values: Any, name: str, n_rows: int, n_columns: int | None, what: str) -> Any:
    """``values`` as a finite C-contiguous ``float32`` array of shape ``(n_rows, n_columns)``
    (``n_columns=None``: any width >= 1); ``what`` explains the shape in the error.

    Raises
    ------
    InvalidInputError
        Another shape, values that are not numbers, or values not finite (also once rounded to
        float32).
    """
    array = as_numeric_array(values, name)
    width = array.shape[1] if array.ndim == 2 else -1
    if array.ndim != 2 or len(array) != n_rows or width < 1 or width != (n_columns or width):
        expected = f"({n_rows}, {'d' if n_columns is None else n_columns})"
        raise InvalidInputError(
            f"{name} must be a 2-D array of shape {expected} ({what}), got {array.shape}"
        )
    check_finite(array, name)
    with np.errstate(over="ignore"):
        array = np.ascontiguousarray(array, dtype=np.float32)
    check_finite(array, f"{name} (as float32)")
    return array


# ---------------------------------------------------------------------- compiled
@numba.njit(inline="always")
def _norm(row):  # pragma: no cover - compiled
    """float64 Euclidean norm of a feature row, summed left to right."""
    total = 0.0
    for j in range(row.shape[0]):
        value = np.float64(row[j])
        total += value * value
    return np.sqrt(total)


@numba.njit(cache=True, nogil=True)
def row_norms(features: NDArray[np.float32]) -> NDArray[np.float64]:  # pragma: no cover
    """float64 norms of the rows of ``features``, for the cosine distance."""
    norms = np.empty(features.shape[0], dtype=np.float64)
    for i in range(features.shape[0]):
        norms[i] = _norm(features[i])
    return norms


@numba.njit(inline="always")
def rank_by_features(keys, qf, rerank, bits):  # pragma: no cover - compiled
    """Turn Hamming keys into feature keys in place, sorted.

    ``rerank = (features, norms, position_of_rank, metric)``: the stored features, their norms,
    the storage position of each rank, and :data:`COSINE` or :data:`L2`; ``qf`` is the query's
    features. ``"cosine"`` is ``1 - <q, x> / (|q| |x|)``, clipped below at 0, and 1 when either
    vector is zero; ``"l2"`` is ``|q - x|``. ``bits`` is a 1-element ``float32`` scratch array
    (read back as ``uint32``).
    """
    features, norms, position_of_rank, metric = rerank
    q_norm = _norm(qf) if metric == COSINE else 0.0
    as_uint = bits.view(np.uint32)
    for i in range(keys.shape[0]):
        r = key_rank(keys[i])
        p = position_of_rank[r]
        total = 0.0
        if metric == COSINE:
            for j in range(qf.shape[0]):
                total += np.float64(qf[j]) * np.float64(features[p, j])
            value = 1.0
            if q_norm != 0.0 and norms[p] != 0.0:
                value = max(0.0, 1.0 - total / (q_norm * norms[p]))
        else:
            for j in range(qf.shape[0]):
                diff = np.float64(qf[j]) - np.float64(features[p, j])
                total += diff * diff
            value = np.sqrt(total)
        bits[0] = np.float32(value)
        keys[i] = make_feature_key(as_uint[0], r)
    keys.sort()
