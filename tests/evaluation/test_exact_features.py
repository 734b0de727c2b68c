"""Exact search on features: hand-computed figures and a brute-force reference."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist

from hashlearn.evaluation import (
    average_precision,
    evaluate_features,
    precision_at_k,
    recall_at_k,
)
from hashlearn.evaluation.exact import _distances
from hashlearn.exceptions import InvalidInputError, UnknownNameError


def test_a_hand_computed_ranking():
    # one query at 0 on a line; items at 3, -1, 2, 1 with labels 1, 0, 1, 1 (query label 1)
    database = np.array([[3.0], [-1.0], [2.0], [1.0]])
    labels = np.array([1, 0, 1, 1])
    result = evaluate_features([[0.0]], [1], database, labels, ks=(2,), map_at=(2,))
    # distances 3, 1, 2, 1: ranking items 1 (tie with 3, first by position), 3, 2, 0
    # relevance 0, 1, 1, 1: AP = (1/2 + 2/3 + 3/4) / 3; AP@2 = (1/2) / 1; P@2 = 1/2; R@2 = 1/3
    assert result == pytest.approx(
        {"mAP": (1 / 2 + 2 / 3 + 3 / 4) / 3, "mAP@2": 0.5, "P@2": 0.5, "R@2": 1 / 3}
    )
    # by cosine, items at -1 is opposite (distance 2) and all the others coincide (distance 0)
    result = evaluate_features([[1.0]], [1], database, labels, metric="cosine", ks=(3,))
    assert result["P@3"] == pytest.approx(1.0) and result["mAP"] == pytest.approx(1.0)


def brute_force(queries, q_labels, database, d_labels, metric, ks, map_at):
    """One query at a time, every item's distance, a stable sort, the plain metric functions.

    The distances are the module's own (checked against scipy's below): mathematically equal
    cosine distances of parallel vectors may round differently in two implementations, and the
    tie order would then differ for no fault of either ranking."""
    squares = (database**2).sum(axis=1)
    distances = np.concatenate(
        [_distances(queries[i : i + 1], database, squares, metric) for i in range(len(queries))]
    )
    reference = cdist(queries, database, "sqeuclidean" if metric == "euclidean" else "cosine")
    np.testing.assert_allclose(distances, reference, atol=1e-12)
    order = np.argsort(distances, axis=1, kind="stable")
    relevant = np.take_along_axis(q_labels[:, None] == d_labels[None, :], order, axis=1)
    n_relevant = (q_labels[:, None] == d_labels[None, :]).sum(axis=1)
    out = {"mAP": average_precision(relevant, n_relevant).mean()}
    out.update({f"mAP@{k}": average_precision(relevant, k=k).mean() for k in map_at})
    for k in ks:
        out[f"P@{k}"] = precision_at_k(relevant, k).mean()
        out[f"R@{k}"] = recall_at_k(relevant, k, n_relevant).mean()
    return out


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 6),
    st.integers(1, 9),
    st.integers(1, 40),
    st.integers(0, 2**31 - 1),
    st.sampled_from(["euclidean", "cosine"]),
    st.integers(1, 7),
)
def test_equals_the_brute_force_ranking(d, nq, n, seed, metric, chunk):
    rng = np.random.default_rng(seed)
    # small integers: many exact ties (of Euclidean distances), which fall back to database order
    database = rng.integers(-2, 3, size=(n, d)).astype(float)
    queries = rng.integers(-2, 3, size=(nq, d)).astype(float)
    if metric == "cosine":  # keep zero vectors out: cdist defines no cosine for them
        database[np.all(database == 0, axis=1)] = 1.0
        queries[np.all(queries == 0, axis=1)] = 1.0
    d_labels, q_labels = rng.integers(0, 3, size=n), rng.integers(0, 3, size=nq)
    result = evaluate_features(
        queries, q_labels, database, d_labels, metric=metric, ks=(1, 5), map_at=(3,),
        chunk_size=chunk,
    )  # fmt: skip
    expected = brute_force(queries, q_labels, database, d_labels, metric, (1, 5), (3,))
    assert result == pytest.approx(expected, abs=1e-12)


def test_bad_inputs_are_named():
    X, y = np.ones((4, 3)), np.arange(4)
    with pytest.raises(UnknownNameError, match="unknown feature distance 'manhattan'"):
        evaluate_features(X, y, X, y, metric="manhattan")
    with pytest.raises(InvalidInputError, match="query_X has 2 features per sample, db_X 3"):
        evaluate_features(np.ones((4, 2)), y, X, y)
    with pytest.raises(InvalidInputError, match="3 query labels for 4 queries"):
        evaluate_features(X, y[:3], X, y)
    with pytest.raises(InvalidInputError, match="NaN"):
        evaluate_features(np.full((4, 3), np.nan), y, X, y)
    with pytest.raises(InvalidInputError, match="ks"):
        evaluate_features(X, y, X, y, ks=(0,))
