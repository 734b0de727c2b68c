"""Retrieval by exact search on real-valued features: the reference that hashing approximates.

:func:`evaluate_features` ranks the whole database for every query by Euclidean or cosine
distance between features (no codes, no index) and reports the metrics of
:func:`~hashlearn.evaluation.evaluate_codes` with the same definitions: what a method loses by
hashing is the gap between its row and this one. Distances are computed in float64 blocks and
sorted stably, so items at equal distance are ordered by database position, as in the Hamming
ranking (for cosine distances, equal up to float64 rounding: parallel vectors of different
lengths may come out a rounding error apart).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from hashlearn._progress import progress
from hashlearn._validation import check_features, check_k
from hashlearn.codes.metrics import average_precision, precision_at_k, recall_at_k
from hashlearn.codes.ranking import check_label_pair, relevance
from hashlearn.evaluation.retrieval import check_cutoffs
from hashlearn.exceptions import InvalidInputError, UnknownNameError

__all__ = ["FEATURE_METRICS", "evaluate_features"]

FEATURE_METRICS = ("euclidean", "cosine")
"""Distances :func:`evaluate_features` ranks by."""

_BLOCK_BYTES = 64 * 1024 * 1024  # temporaries per block of queries


def _distances(
    queries: np.ndarray, database: np.ndarray, squared_norms: np.ndarray, metric: str
) -> np.ndarray:
    """float64 ``(nq, n)`` distances (squared Euclidean, or 1 - cosine similarity).

    Squared norms are summed, not squared from square roots, so that equal distances between
    integer-valued features come out exactly equal (and fall back to database order)."""
    products = queries @ database.T
    query_squares = (queries**2).sum(axis=1)
    if metric == "euclidean":
        squared = query_squares[:, None] - 2 * products + squared_norms[None, :]
        return np.maximum(squared, 0.0)
    scale = np.sqrt(query_squares[:, None] * squared_norms[None, :])
    with np.errstate(divide="ignore", invalid="ignore"):
        similarity = np.where(scale > 0, products / scale, 0.0)
    return 1.0 - similarity


def evaluate_features(
    query_X: Any,
    query_labels: Any,
    db_X: Any,
    db_labels: Any,
    *,
    metric: str = "euclidean",
    ks: Iterable[int] | int | None = (10,),
    map_at: Iterable[int] | int | None = (10,),
    chunk_size: int | None = None,
    verbose: bool = False,
) -> dict[str, float]:
    """Rank the database by feature distance to every query and report retrieval metrics.

    Parameters
    ----------
    query_X, db_X : array-like of float, shape (nq, d) and (n, d)
        Features (image arrays are flattened), finite.
    query_labels, db_labels : array-like of shape (nq,) / (n,), or indicator matrices
        As in :func:`~hashlearn.evaluation.evaluate_codes`; relevant = shares a label.
    metric : {"euclidean", "cosine"}, default "euclidean"
        Euclidean distance, or ``1 - cosine similarity`` (a zero vector has similarity 0 with
        everything).
    ks, map_at : int or sequence of int >= 1
        Cut-offs of ``P@k`` / ``R@k`` and of ``mAP@k``, as in ``evaluate_codes``.
    chunk_size : int >= 1, optional
        Queries ranked at once (default: blocks of about 64 MiB of temporaries).
    verbose : bool, default False
        Progress bar.

    Returns
    -------
    dict of str to float
        ``"mAP"``, ``"mAP@k"`` for each ``k`` in ``map_at``, ``"P@k"`` and ``"R@k"`` for each
        ``k`` in ``ks``: means over queries, defined as in ``evaluate_codes``.

    Raises
    ------
    UnknownNameError
        ``metric`` is not one of :data:`FEATURE_METRICS`.
    InvalidInputError
        Features of other widths, NaN, empty sets, mismatched labels or bad cut-offs.
    """
    if metric not in FEATURE_METRICS:
        raise UnknownNameError(
            f"unknown feature distance {metric!r}; available: {', '.join(FEATURE_METRICS)}"
        )
    queries = check_features(query_X, "query_X").astype(np.float64)
    database = check_features(db_X, "db_X").astype(np.float64)
    if queries.shape[1] != database.shape[1]:
        raise InvalidInputError(
            f"query_X has {queries.shape[1]} features per sample, db_X {database.shape[1]}"
        )
    q_labels, d_labels = check_label_pair(query_labels, db_labels)
    if len(q_labels) != len(queries) or len(d_labels) != len(database):
        raise InvalidInputError(
            f"labels do not match the features: {len(q_labels)} query labels for "
            f"{len(queries)} queries, {len(d_labels)} database labels for {len(database)} items"
        )
    ks_, map_at_ = check_cutoffs(ks, "ks"), check_cutoffs(map_at, "map_at")
    n = len(database)
    rows = chunk_size or max(1, _BLOCK_BYTES // (24 * n))
    rows = check_k(rows, "chunk_size")
    squared_norms = (database**2).sum(axis=1)
    names = ["mAP", *(f"mAP@{k}" for k in map_at_)]
    names += [name for k in ks_ for name in (f"P@{k}", f"R@{k}")]
    sums = dict.fromkeys(names, 0.0)
    starts = range(0, len(queries), rows)
    for start in progress(starts, desc="rank", unit="block", disable=not verbose):
        stop = min(start + rows, len(queries))
        distances = _distances(queries[start:stop], database, squared_norms, metric)
        order = np.argsort(distances, axis=1, kind="stable")
        relevant = relevance(q_labels[start:stop], d_labels)
        n_relevant = relevant.sum(axis=1)
        ranked = np.take_along_axis(relevant, order, axis=1)
        sums["mAP"] += float(average_precision(ranked, n_relevant).sum())
        for k in map_at_:
            sums[f"mAP@{k}"] += float(average_precision(ranked, k=k).sum())
        for k in ks_:
            sums[f"P@{k}"] += float(precision_at_k(ranked, k).sum())
            sums[f"R@{k}"] += float(recall_at_k(ranked, k, n_relevant).sum())
    return {name: total / len(queries) for name, total in sums.items()}
