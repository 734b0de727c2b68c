"""Named retrieval protocols: sizes, containment, stratification, seeding, manifests, errors."""

import dataclasses
import hashlib

import numpy as np
import pytest

from hashlearn.datasets import Dataset, default_split, load_dataset
from hashlearn.datasets.split import RetrievalSplit, Subset
from hashlearn.evaluation import (
    Protocol,
    apply_protocol,
    describe_protocols,
    get_protocol,
    list_protocols,
)
from hashlearn.exceptions import InvalidInputError, UnknownNameError


def fake(per_class, n_classes=10, *, test_per_class=None, seed=0):
    """``per_class`` items of each class in shuffled order; X's single column is the row number,
    so each part's X shows which rows it holds. With ``test_per_class``, that many items of every
    class are marked as official test items, placed last."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.repeat(np.arange(n_classes), per_class))
    mask = None
    if test_per_class is not None:
        test_y = rng.permutation(np.repeat(np.arange(n_classes), test_per_class))
        y = np.concatenate([y, test_y])
        mask = np.arange(len(y)) >= n_classes * per_class
    X = np.arange(len(y), dtype=np.float32)[:, None]
    return Dataset("fake", X, y.astype(np.int64), test_mask=mask)


def indices(split):
    return {
        part: getattr(split, part).indices for part in ("query", "database", "train", "validation")
    }


def assert_consistent(split, dataset):
    for part in indices(split).values():
        assert part.dtype == np.int64 and len(np.unique(part)) == len(part)
    for part in ("query", "database", "train", "validation"):
        subset = getattr(split, part)
        np.testing.assert_array_equal(subset.X[:, 0], subset.indices)  # rows match their indices
        np.testing.assert_array_equal(subset.y, dataset.y[subset.indices])


def test_registry():
    assert set(list_protocols()) == {
        "cifar10",
        "cifar10-1",
        "cifar10-2",
        "default",
        "fashion-mnist",
        "grh",
        "mnist",
    }
    assert all(isinstance(text, str) and text for text in describe_protocols().values())
    assert get_protocol("cifar10").query_per_class == 100
    assert get_protocol("cifar10").train_per_class == 500
    with pytest.raises(
        UnknownNameError,
        match="unknown protocol 'cifar100'; available: cifar10, cifar10-1, cifar10-2, default",
    ):
        get_protocol("cifar100")


def test_cifar10_holds_train_out_of_the_database():
    data = fake(30, 4)
    protocol = dataclasses.replace(get_protocol("cifar10"), query_per_class=5, train_per_class=10)
    split = protocol.split(data, seed=0)
    assert split.protocol == "cifar10"
    assert split.sizes() == {"query": 20, "database": 60, "train": 36, "validation": 4}
    assert_consistent(split, data)
    parts = indices(split)
    everything = np.concatenate(list(parts.values()))
    assert sorted(everything) == list(range(120))  # the four parts partition the items
    assert np.bincount(split.query.y).tolist() == [5] * 4
    draw = np.concatenate([split.train.y, split.validation.y])
    assert np.bincount(draw).tolist() == [10] * 4
    assert np.bincount(split.validation.y).tolist() == [1] * 4
    assert np.bincount(split.database.y).tolist() == [15] * 4
    # parts come in random order
    assert not np.array_equal(parts["database"], np.sort(parts["database"]))


def test_cifar10_1_draws_train_from_the_database():
    data = fake(30, 4)
    split = apply_protocol(data, "cifar10-1", seed=3, query_per_class=5, train_per_class=10)
    assert split.protocol == "cifar10-1"
    assert split.sizes() == {"query": 20, "database": 100, "train": 36, "validation": 4}
    assert_consistent(split, data)
    parts = indices(split)
    assert sorted(np.r_[parts["query"], parts["database"]]) == list(range(120))
    assert np.isin(parts["train"], parts["database"]).all()
    assert np.isin(parts["validation"], parts["database"]).all()
    assert not np.intersect1d(parts["train"], parts["validation"]).size
    assert not np.intersect1d(parts["query"], np.r_[parts["train"], parts["validation"]]).size
    assert np.bincount(split.train.y).tolist() == [9] * 4


def test_literature_sizes_on_a_cifar10_sized_set():
    data = fake(5000, 10, test_per_class=1000)  # 50,000 + 10,000 like CIFAR-10
    exact = apply_protocol(data, "cifar10", n_validation=0)
    assert exact.sizes() == {"query": 1000, "database": 54000, "train": 5000, "validation": 0}
    assert apply_protocol(data, "cifar10").sizes() == {
        "query": 1000,
        "database": 54000,
        "train": 4500,
        "validation": 500,
    }
    assert apply_protocol(data, "cifar10-1", n_validation=0).sizes() == {
        "query": 1000,
        "database": 59000,
        "train": 5000,
        "validation": 0,
    }
    split = apply_protocol(data, "cifar10-2")
    assert split.sizes() == {"query": 10000, "database": 50000, "train": 45000, "validation": 5000}
    assert np.array_equal(np.sort(split.query.indices), np.arange(50000, 60000))


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "cifar10-2"])
def test_official_test_set_as_queries(name):
    data = fake(12, 10, test_per_class=2)  # 120 training items, then 20 test items
    split = apply_protocol(data, name, seed=1)
    assert split.sizes() == {"query": 20, "database": 120, "train": 108, "validation": 12}
    assert_consistent(split, data)
    parts = indices(split)
    assert sorted(parts["query"]) == list(range(120, 140))
    assert sorted(parts["database"]) == list(range(120))
    assert sorted(np.r_[parts["train"], parts["validation"]]) == list(range(120))
    # stratified: 12 of 120 is 1.2 per class, so every class gives 1 and two classes one more
    assert sorted(np.bincount(split.validation.y).tolist()) == [1] * 8 + [2] * 2
    exact = apply_protocol(data, name, seed=1, n_validation=0)
    assert sorted(exact.train.indices) == list(range(120)) and len(exact.validation) == 0


def test_grh_split():
    data = fake(500, 10)  # 5,000 items
    split = apply_protocol(data, "grh", seed=2)
    # 0.2% of 5,000 = 10 queries; 2% of the other 4,990 = 100 train, of which 10% validation
    assert split.sizes() == {"query": 10, "database": 4890, "train": 90, "validation": 10}
    assert_consistent(split, data)
    parts = indices(split)
    assert sorted(np.concatenate(list(parts.values()))) == list(range(5000))
    assert np.bincount(split.query.y).tolist() == [1] * 10
    assert np.bincount(np.r_[split.train.y, split.validation.y]).tolist() == [10] * 10


def test_grh_on_multi_label_data_samples_uniformly():
    rng = np.random.default_rng(0)
    y = rng.random((2000, 5)) < 0.3
    data = Dataset("tags", np.arange(2000, dtype=np.float32)[:, None], y)
    split = apply_protocol(data, "grh", seed=0)
    assert split.sizes() == {"query": 4, "database": 1956, "train": 36, "validation": 4}
    assert split.train.y.shape == (36, 5) and split.train.y.dtype == bool
    with pytest.raises(InvalidInputError, match="needs one int label per item"):
        apply_protocol(data, "cifar10", query_per_class=1, train_per_class=1)


def test_default_protocol_is_the_datasets_default_split():
    data = load_dataset("digits")
    split = apply_protocol(data, "default", seed=4)
    reference = default_split(data, random_state=4)
    assert split.protocol == "default" and reference.protocol == ""
    for part, idx in indices(reference).items():
        np.testing.assert_array_equal(getattr(split, part).indices, idx)
    assert split.manifest == reference.manifest
    smaller = apply_protocol(data, "default", seed=4, n_validation=0)
    assert smaller.sizes() == {"query": 180, "database": 1617, "train": 1300, "validation": 0}
    with pytest.raises(InvalidInputError, match="has no default_split"):
        apply_protocol(fake(5, 2), "default")


def test_seeds_and_manifests():
    data = fake(30, 4)
    protocol = Protocol("small", query_per_class=5, train_per_class=10, train_in_database=False)
    first, again, other = (protocol.split(data, seed) for seed in (7, 7, 8))
    for part, idx in indices(first).items():
        np.testing.assert_array_equal(idx, indices(again)[part])
    assert first.manifest == again.manifest
    assert len(first.manifest) == 16 and int(first.manifest, 16) >= 0
    assert other.manifest != first.manifest
    # one swapped index changes it
    query = first.query.indices.copy()
    query[[0, 1]] = query[[1, 0]]
    swapped = dataclasses.replace(first, query=Subset(first.query.X, first.query.y, query))
    assert swapped.manifest != first.manifest


def test_manifest_definition():
    def part(*idx):
        idx = np.array(idx, dtype=np.int64)
        return Subset(X=np.zeros((len(idx), 1)), y=np.zeros(len(idx), np.int64), indices=idx)

    split = RetrievalSplit(part(4, 1), part(0, 2, 3), part(2), part())
    digest = hashlib.sha256()
    for name, idx in (
        ("query", [4, 1]),
        ("database", [0, 2, 3]),
        ("train", [2]),
        ("validation", []),
    ):
        digest.update(f"{name}:{len(idx)};".encode())
        digest.update(b"".join(i.to_bytes(8, "little") for i in idx))
    assert split.manifest == digest.hexdigest()[:16]
    # the same indices split differently between parts give another manifest
    moved = RetrievalSplit(part(4, 1), part(0, 2), part(3, 2), part())
    assert moved.manifest != split.manifest


def test_validation_overrides():
    data = fake(30, 4)
    small = {"query_per_class": 5, "train_per_class": 10}
    assert apply_protocol(data, "cifar10", n_validation=0, **small).sizes()["train"] == 40
    counted = apply_protocol(data, "cifar10", n_validation=8, **small)
    assert counted.sizes()["train"] == 32 and np.bincount(counted.validation.y).tolist() == [2] * 4
    assert apply_protocol(data, "cifar10", n_validation=0.25, **small).sizes()["validation"] == 10
    assert apply_protocol(data, "cifar10", validation_fraction=0.5, **small).sizes()["train"] == 20
    with pytest.raises(InvalidInputError, match=r"n_validation \(40\) must leave at least one"):
        apply_protocol(data, "cifar10", n_validation=40, **small)
    with pytest.raises(InvalidInputError, match="n_validation must be >= 0"):
        apply_protocol(data, "cifar10", n_validation=-1, **small)


def test_errors():
    data = fake(30, 4)
    with pytest.raises(InvalidInputError, match="dataset 'fake' has none \\(no test_mask\\)"):
        apply_protocol(data, "mnist")
    with pytest.raises(
        InvalidInputError,
        match=r"protocol 'cifar10' draws 100 queries per class, but class 0 has only 30 item",
    ):
        apply_protocol(data, "cifar10")
    with pytest.raises(
        InvalidInputError, match="draws 26 training items per class, but class 0 has only 25"
    ):
        apply_protocol(data, "cifar10", query_per_class=5, train_per_class=26)
    with pytest.raises(InvalidInputError, match="unknown protocol override"):
        apply_protocol(data, "cifar10", queries_per_class=5)
    with pytest.raises(InvalidInputError, match="seed must be >= 0"):
        apply_protocol(data, "cifar10", seed=-1)
    with pytest.raises(InvalidInputError, match="query_per_class must be >= 1"):
        apply_protocol(data, "cifar10", query_per_class=0)
    with pytest.raises(InvalidInputError, match="query must be one of"):
        Protocol("x", query="random")
    with pytest.raises(InvalidInputError, match="cannot be held out"):
        Protocol("x", train="database", train_in_database=False)
    with pytest.raises(InvalidInputError, match="needs both test and training items"):
        all_test = Dataset("t", data.X, data.y, test_mask=np.ones(len(data.y), bool))
        apply_protocol(all_test, "mnist")
    with pytest.raises(InvalidInputError, match="too few"):
        apply_protocol(fake(1, 2), "grh")
