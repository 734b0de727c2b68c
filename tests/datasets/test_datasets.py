import io

import numpy as np
import pytest

from hashlearn import load_dataset, retrieval_split
from hashlearn.datasets import Dataset, default_split, list_datasets, load_arrays, save_split
from hashlearn.exceptions import FileFormatError, InvalidInputError, UnknownNameError


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
        UnknownNameError,
        match=r"unknown dataset 'mnist-60k'; available: cifar10, digits, fashion-mnist, mnist, "
        r"mnist5k \(or arrays:<file.npz>, folder:<image folder>\)",
    ):
        load_dataset("mnist-60k")
    assert set(list_datasets()) == {"cifar10", "digits", "fashion-mnist", "mnist", "mnist5k"}


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


def test_save_split_writes_each_part_as_npz(tmp_path):
    split = retrieval_split(
        np.arange(40.0).reshape(20, 2), np.arange(20) % 2, n_query=4, n_validation=2
    )
    paths = save_split(split, tmp_path / "parts")
    assert list(paths) == ["query", "database", "train", "validation"]
    for part, path in paths.items():
        subset = getattr(split, part)
        assert path == str(tmp_path / "parts" / f"{part}.npz")
        with np.load(path, allow_pickle=False) as saved:
            assert sorted(saved.files) == ["X", "indices", "y"]
            np.testing.assert_array_equal(saved["X"], subset.X)
            np.testing.assert_array_equal(saved["y"], subset.y)
            np.testing.assert_array_equal(saved["indices"], subset.indices)


def test_embedded_datasets_have_no_test_mask():
    assert load_dataset("digits").test_mask is None


def test_dataset_checks_its_test_mask():
    X, y = np.zeros((4, 2), np.float32), np.arange(4)
    assert Dataset("d", X, y, test_mask=np.array([0, 0, 1, 1], bool)).test_mask.sum() == 2
    with pytest.raises(InvalidInputError, match=r"test_mask must be a bool array of shape \(4,\)"):
        Dataset("d", X, y, test_mask=np.array([0, 0, 1, 1]))
    with pytest.raises(InvalidInputError, match="X has 4 items but y has 3"):
        Dataset("d", X, y[:3])


def test_load_arrays_npz_features(tmp_path):
    X = np.arange(12, dtype=np.float64).reshape(6, 2) - 3.5
    y = np.array([0, 1, 2, 0, 1, 2], dtype=np.int32)
    np.savez(tmp_path / "feats.npz", X=X, y=y, test_mask=np.array([0, 0, 0, 0, 1, 1], bool))
    data = load_arrays(tmp_path / "feats.npz")
    assert data.name == "feats" and data.X.dtype == np.float32 and data.X.shape == (6, 2)
    np.testing.assert_array_equal(data.X, X.astype(np.float32))  # values kept as stored
    assert data.y.dtype == np.int64 and data.y.tolist() == [0, 1, 2, 0, 1, 2]
    assert data.test_mask.tolist() == [False] * 4 + [True] * 2
    same = load_dataset(f"arrays:{tmp_path / 'feats.npz'}")
    np.testing.assert_array_equal(same.X, data.X)
    np.savez(tmp_path / "other.npz", feats=X, labels=y)
    data = load_arrays(tmp_path / "other.npz", x_key="feats", y_key="labels")
    assert data.test_mask is None and data.n_classes == 3


def test_load_arrays_multi_label_and_npy_pair(tmp_path):
    X = np.ones((3, 4, 4), np.float32)  # images are fine too
    tags = np.array([[1, 0, 1], [0, 0, 1], [1, 1, 0]], dtype=np.uint8)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "tags.npy", tags)
    data = load_arrays(tmp_path / "X.npy", labels=tmp_path / "tags.npy")
    assert data.X.shape == (3, 4, 4) and data.y.dtype == bool and data.y.shape == (3, 3)
    assert data.y.tolist() == tags.astype(bool).tolist() and data.n_classes == 3
    with pytest.raises(InvalidInputError, match="pass labels="):
        load_arrays(tmp_path / "X.npy")


def test_load_arrays_errors(tmp_path):
    X, y = np.zeros((4, 2)), np.arange(4)
    np.savez(tmp_path / "a.npz", X=X, labels=y)
    with pytest.raises(InvalidInputError, match=r"has no array 'y'; it holds 'X', 'labels'"):
        load_arrays(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", X=X, y=y[:3])
    with pytest.raises(InvalidInputError, match="has 3 labels but X has 4 items"):
        load_arrays(tmp_path / "b.npz")
    bad = X.copy()
    bad[2, 1] = np.nan
    np.savez(tmp_path / "c.npz", X=bad, y=y)
    with pytest.raises(InvalidInputError, match=r"NaN or infinite values in 1 row.*first at row 2"):
        load_arrays(tmp_path / "c.npz")
    np.savez(tmp_path / "d.npz", X=np.array([[1], "a", None, 2.0], dtype=object), y=y)
    with pytest.raises(FileFormatError, match="allow_pickle=False"):
        load_arrays(tmp_path / "d.npz")
    np.savez(tmp_path / "e.npz", X=np.array([["a", "b"]] * 4), y=y)
    with pytest.raises(InvalidInputError, match="must hold numbers"):
        load_arrays(tmp_path / "e.npz")
    np.savez(tmp_path / "f.npz", X=X, y=np.array([[0, 2]] * 4))
    with pytest.raises(InvalidInputError, match="0/1 multi-label indicator"):
        load_arrays(tmp_path / "f.npz")
    np.savez(tmp_path / "g.npz", X=X, y=np.array([0.5, 1, 2, 3]))
    with pytest.raises(InvalidInputError, match="integer class labels"):
        load_arrays(tmp_path / "g.npz")
    with pytest.raises(InvalidInputError, match=r"missing\.npz: no such file"):
        load_arrays(tmp_path / "missing.npz")
    (tmp_path / "h.npz").write_bytes(b"not a zip")
    with pytest.raises(FileFormatError, match="cannot read"):
        load_arrays(tmp_path / "h.npz")


def test_load_arrays_reads_through_the_shared_checked_reader(tmp_path):
    """Issue 18, item 8: dataset arrays were read by np.load directly: a broken zip member or an
    .npy header announcing 10**12 values ended in BadZipFile or MemoryError, not a refusal."""
    X, y = np.zeros((4, 2), np.float32), np.arange(4)
    np.savez(tmp_path / "a.npz", X=X, y=y)
    raw = bytearray((tmp_path / "a.npz").read_bytes())
    raw[len(raw) // 3] ^= 0xFF  # inside the stored bytes of X: a CRC mismatch
    (tmp_path / "b.npz").write_bytes(bytes(raw))
    with pytest.raises(FileFormatError, match="cannot read"):
        load_arrays(tmp_path / "b.npz")
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (10**6, 10**6)}
    )
    (tmp_path / "c.npy").write_bytes(header.getvalue() + bytes(64))
    np.save(tmp_path / "y.npy", y)
    with pytest.raises(FileFormatError, match="truncated"):
        load_arrays(tmp_path / "c.npy", labels=tmp_path / "y.npy")
