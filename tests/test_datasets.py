import numpy as np
import pytest

from hashlearn import load_dataset, retrieval_split
from hashlearn.datasets import default_split, list_datasets
from hashlearn.exceptions import InvalidInputError, UnknownNameError


def test_mnist5k_is_real_mnist():
    data = load_dataset("mnist5k")
    assert data.X.shape == (5000, 28, 28) and data.X.dtype == np.float32
    assert data.y.dtype == np.int64 and np.bincount(data.y).tolist() == [500] * 10
    assert 0.0 <= data.X.min() and data.X.max() == 1.0
    # MNIST digits: dark background, ~19% of pixels inked, border almost always empty
    assert 0.1 < (data.X > 0.5).mean() < 0.25
    assert data.X[:, 0, :].max() == 0.0


def test_digits():
    data = load_dataset("digits")
    assert data.X.shape == (1797, 8, 8) and data.X.dtype == np.float32 and data.X.max() == 1.0
    assert set(np.unique(data.y)) == set(range(10))


def test_unknown_dataset():
    with pytest.raises(
        UnknownNameError, match="unknown dataset 'mnist-60k'; available: digits, mnist5k"
    ):
        load_dataset("mnist-60k")
    assert set(list_datasets()) == {"digits", "mnist5k"}


def test_default_split_is_stratified_disjoint_and_seeded():
    data = load_dataset("mnist5k")
    split = default_split(data, random_state=0)
    assert split.sizes() == {"query": 500, "database": 4500, "train": 3500, "validation": 500}
    q, db, tr, va = (
        split.query.indices,
        split.database.indices,
        split.train.indices,
        split.validation.indices,
    )
    assert len(np.intersect1d(q, db)) == 0 and len(np.union1d(q, db)) == 5000
    assert len(np.intersect1d(tr, va)) == 0
    assert np.isin(tr, db).all() and np.isin(va, db).all()
    assert np.bincount(split.query.y).tolist() == [50] * 10
    assert np.bincount(split.train.y).tolist() == [350] * 10
    np.testing.assert_array_equal(split.train.X, data.X[tr])
    again = default_split(data, random_state=0)
    np.testing.assert_array_equal(again.query.indices, q)
    other = default_split(data, random_state=1)
    assert not np.array_equal(other.query.indices, q)
    # rows come in random order, not in the label-sorted order of the source file
    assert (np.diff(split.database.y) != 0).sum() > 1000


def test_split_fractions_and_errors():
    y = np.repeat(np.arange(4), 25)
    X = np.arange(100)[:, None].astype(np.float32)
    split = retrieval_split(X, y, n_query=0.2, n_train=0.5, n_validation=10, random_state=3)
    assert split.sizes() == {"query": 20, "database": 80, "train": 40, "validation": 10}
    with pytest.raises(InvalidInputError, match="n_query"):
        retrieval_split(X, y, n_query=100)
    with pytest.raises(InvalidInputError, match="n_train"):
        retrieval_split(X, y, n_query=10, n_train=80, n_validation=20)
    with pytest.raises(InvalidInputError, match="fraction must be in"):
        retrieval_split(X, y, n_query=1.5)
    with pytest.raises(
        InvalidInputError, match=r"2 labels for 100 samples|has 100 samples but y has 2"
    ):
        retrieval_split(X, y[:2], n_query=1)
