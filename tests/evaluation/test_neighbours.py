import dataclasses

import numpy as np
import pytest

from hashlearn.datasets import retrieval_split
from hashlearn.evaluation import evaluate_codes, nearest_neighbours, with_neighbour_relevance
from hashlearn.exceptions import InvalidInputError


def test_nearest_neighbours_by_hand():
    database = np.array([[0.0], [10.0], [3.0], [4.0], [3.0]])
    queries = np.array([[3.4], [9.0]])
    # distances to 3.4: 3.4, 6.6, 0.4, 0.6, 0.4 -> positions 2, 4 (tie, by position), 3
    assert nearest_neighbours(queries, database, 3).tolist() == [[2, 4, 3], [1, 3, 2]]
    with pytest.raises(InvalidInputError, match="n_neighbours"):
        nearest_neighbours(queries, database, 6)
    with pytest.raises(InvalidInputError, match="1 features but the database 2"):
        nearest_neighbours(queries, np.zeros((3, 2)), 1)


def test_relevance_is_the_nearest_share_of_each_part():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 5))
    split = retrieval_split(X, None, n_query=10, n_validation=20, random_state=1)
    assert not split.labelled and split.query.y is None
    inputs = {part: getattr(split, part).X for part in ("query", "database", "train", "validation")}
    labelled = with_neighbour_relevance(split, inputs, n_neighbours=4)
    assert not labelled.labelled
    q, db = labelled.query.y, labelled.database.y
    assert q.shape == (10, 30) and db.shape == (110, 30)
    assert (q[:, :10] == np.eye(10, dtype=bool)).all() and not q[:, 10:].any()
    # each query has exactly its 4 nearest database items relevant
    near = nearest_neighbours(split.query.X, split.database.X, 4)
    for i in range(10):
        assert set(np.flatnonzero(db[:, i])) == set(near[i])
    assert db[:, 10:].sum() == 0 and labelled.train.y[:, 10:].sum(axis=0).tolist() == [4] * 20
    # codes that rank exactly as the Euclidean distance does score mAP 1
    codes_q = np.full((10, 1), 255, np.uint8)
    for i in range(10):  # one query at a time: its neighbours at distance 0, the rest at 8
        scores = evaluate_codes(
            codes_q[i : i + 1],
            q[i : i + 1],
            np.where(db[:, i : i + 1], 255, 0).astype(np.uint8),
            db,
            radius=None,
        )
        assert scores["mAP"] == 1.0
    with pytest.raises(InvalidInputError, match="has labels"):
        with_neighbour_relevance(dataclasses.replace(split, labelled=True), inputs)


def test_default_share_is_two_percent():
    X = np.random.default_rng(2).normal(size=(560, 3))
    split = retrieval_split(X, None, n_query=60, random_state=0)
    inputs = {part: getattr(split, part).X for part in ("query", "database")}
    labelled = with_neighbour_relevance(split, inputs)
    assert labelled.database.y.sum(axis=0).tolist() == [10] * 60  # 2% of 500
