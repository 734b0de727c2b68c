"""Relevance without labels: a query's true neighbours are its nearest database items.

For unlabelled collections the retrieval metrics need another ground truth. As in the evaluations
of Spectral Hashing (Weiss, Torralba & Fergus, NIPS 2008) and ITQ (Gong & Lazebnik, CVPR 2011) on
GIST features, the relevant items of a query are its nearest neighbours by Euclidean distance in
the input space: here its ``n_neighbours`` nearest database items (default 2% of the database,
at least one), ties by database position. The hashing methods are then scored on how well Hamming
ranking recovers Euclidean ranking.

The relevance is written as multi-label indicators so that every metric of
:func:`~hashlearn.evaluation.evaluate_codes` applies unchanged: query ``q`` carries label ``q``
alone, and a database item carries label ``q`` when it is one of query ``q``'s neighbours
("relevant" = shares a label).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from hashlearn._validation import check_features, check_int
from hashlearn.datasets import RetrievalSplit, Subset
from hashlearn.evaluation.exact import _distances
from hashlearn.exceptions import InvalidInputError

__all__ = ["DEFAULT_NEIGHBOUR_SHARE", "nearest_neighbours", "with_neighbour_relevance"]

DEFAULT_NEIGHBOUR_SHARE = 0.02
"""Share of the database that is relevant to each query by default."""

_BLOCK_BYTES = 64 * 1024 * 1024


def nearest_neighbours(queries: Any, database: Any, n_neighbours: int) -> np.ndarray:
    """int64 ``(nq, n_neighbours)``: the positions of each query's nearest database rows by
    Euclidean distance (float64), nearest first, ties by position.

    Raises
    ------
    InvalidInputError
        Non-finite or mismatched features, or ``n_neighbours`` outside 1..len(database).
    """
    queries = check_features(queries, "queries").astype(np.float64, copy=False)
    database = check_features(database, "database").astype(np.float64, copy=False)
    if queries.shape[1] != database.shape[1]:
        raise InvalidInputError(
            f"queries have {queries.shape[1]} features but the database {database.shape[1]}"
        )
    k = check_int(n_neighbours, "n_neighbours", minimum=1, maximum=len(database))
    norms = (database**2).sum(axis=1)
    rows = max(1, _BLOCK_BYTES // (8 * len(database)))
    out = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), rows):
        distances = _distances(queries[start : start + rows], database, norms, "euclidean")
        out[start : start + rows] = np.argsort(distances, axis=1, kind="stable")[:, :k]
    return out


def _flat(X: np.ndarray) -> np.ndarray:
    return X.reshape(len(X), -1)


def _count(n_neighbours: int | None, n_database: int) -> int:
    if n_neighbours is None:
        return max(1, round(DEFAULT_NEIGHBOUR_SHARE * n_database))
    return min(check_int(n_neighbours, "n_neighbours", minimum=1), n_database)


def with_neighbour_relevance(
    split: RetrievalSplit, inputs: Mapping[str, Any], n_neighbours: int | None = None
) -> RetrievalSplit:
    """``split`` of unlabelled items, its parts' ``y`` made neighbour relevance (see the module).

    Two pairs are labelled, each in its own block of labels: queries against the database, and
    the validation part (when ``inputs`` has it) against the train part, on which parameters
    are chosen. ``labelled`` stays False, so hashers are still fitted without labels.

    Parameters
    ----------
    split : a split of unlabelled items.
    inputs : part name -> the features the neighbours are found in (images are flattened); the
        features the hashers read, so that every method is measured against one ground truth.
    n_neighbours : relevant items per query; default 2% of the part searched (at least 1).

    Raises
    ------
    InvalidInputError
        ``split`` is labelled, or the features are not finite.
    """
    if split.labelled:
        raise InvalidInputError("the split has labels; neighbour relevance is for unlabelled data")
    nq = len(split.query)
    nv = len(split.validation) if "validation" in inputs else 0
    width = nq + nv
    labels = {
        part: np.zeros((len(getattr(split, part)), width), dtype=bool)
        for part in ("query", "database", "train", "validation")
    }
    labels["query"][np.arange(nq), np.arange(nq)] = True
    near = nearest_neighbours(
        _flat(inputs["query"]), _flat(inputs["database"]), _count(n_neighbours, len(split.database))
    )
    labels["database"][near, np.arange(nq)[:, None]] = True
    if nv:
        labels["validation"][np.arange(nv), nq + np.arange(nv)] = True
        near = nearest_neighbours(
            _flat(inputs["validation"]),
            _flat(inputs["train"]),
            _count(n_neighbours, len(split.train)),
        )
        labels["train"][near, nq + np.arange(nv)[:, None]] = True

    def relabel(part: str) -> Subset:
        return dataclasses.replace(getattr(split, part), y=labels[part])

    return dataclasses.replace(
        split,
        query=relabel("query"),
        database=relabel("database"),
        train=relabel("train"),
        validation=relabel("validation"),
    )
