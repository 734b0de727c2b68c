"""PCA hashing, ITQ and CCA-ITQ: the invariants of Gong et al. (TPAMI 2013) and retrieval quality."""

import numpy as np
import pytest

import hashlearn.hashers
from hashlearn import create_hasher, load_hasher
from hashlearn.exceptions import InvalidInputError, NotFittedError
from hashlearn.hashers.itq import (
    ITQ,
    ITQCCA,
    iterative_quantization,
    random_rotation,
    regularized_cca,
)
from hashlearn.hashers.lsh import LSH
from hashlearn.hashers.pca import PCAH

MINE = {
    "pcah": ("hashlearn.hashers.pca", "PCAH", "PCA hashing"),
    "itq": ("hashlearn.hashers.itq", "ITQ", "Iterative Quantization"),
    "itq-cca": ("hashlearn.hashers.itq", "ITQCCA", "CCA-ITQ"),
}


@pytest.fixture(params=sorted(MINE))
def registered(request):
    """Each of this module's hashers, checked to be registered under its name."""
    assert hashlearn.hashers.get_hasher_class(request.param).__name__ == MINE[request.param][1]
    return request.param


# -- the estimator contract (a condensed copy of tests/test_hashers.py for unregistered classes) --


def test_contract_round_trip(registered, digits_small, tmp_path):
    X, y = digits_small
    hasher = create_hasher(registered, n_bits=12, random_state=0)
    assert hasher.fit(X, y) is hasher
    codes = hasher.encode(X)
    assert codes.dtype == np.uint8 and codes.shape == (len(X), 2)
    projections = hasher.transform(X)
    assert projections.dtype == np.float32 and projections.shape == (len(X), 12)
    np.testing.assert_array_equal(codes, np.packbits(projections >= 0, axis=1, bitorder="little"))
    again = create_hasher(registered, n_bits=12, random_state=0).fit(X, y).encode(X)
    np.testing.assert_array_equal(again, codes)
    hasher.save(tmp_path / "m.safetensors")
    loaded = load_hasher(tmp_path / "m.safetensors")
    assert type(loaded) is type(hasher) and loaded.get_params() == hasher.get_params()
    np.testing.assert_array_equal(loaded.encode(X), codes)


def test_contract_errors(registered, digits_small):
    X, y = digits_small
    with pytest.raises(NotFittedError, match="not fitted yet"):
        create_hasher(registered, n_bits=12).encode(X)
    bad = X.copy()
    bad[3, 2, 2] = np.nan
    with pytest.raises(InvalidInputError, match="NaN or infinite values in 1 row"):
        create_hasher(registered, n_bits=12).fit(bad, y)
    with pytest.raises(InvalidInputError, match="n_bits must be >= 1"):
        create_hasher(registered, n_bits=0).fit(X, y)
    with pytest.raises(InvalidInputError, match="random_state must be an integer"):
        create_hasher(registered, n_bits=8, random_state="seven").fit(X, y)
    with pytest.raises(InvalidInputError, match=r"n_bits <= min\(n_samples, n_features\).*= 64"):
        create_hasher(registered, n_bits=65).fit(X, y)
    hasher = create_hasher(registered, n_bits=12).fit(X, y)
    with pytest.raises(InvalidInputError, match="fitted on 64"):
        hasher.encode(np.zeros((2, 9, 9), np.float32))


def test_bad_parameters(digits_small):
    X, y = digits_small
    with pytest.raises(InvalidInputError, match="n_iter must be >= 0, got -1"):
        ITQ(8, n_iter=-1).fit(X)
    with pytest.raises(InvalidInputError, match="needs labels"):
        ITQCCA(8).fit(X)
    with pytest.raises(InvalidInputError, match=r"regularization must be > 0\.0, got 0\.0"):
        ITQCCA(8, regularization=0.0).fit(X, y)
    with pytest.raises(InvalidInputError, match="single class"):
        ITQCCA(8).fit(X, np.zeros(len(X), int))


# -- PCA hashing --------------------------------------------------------------------------------


def test_pcah_by_hand():
    """Points on the line through (2, 1), slightly off it: one bit, the side of the mean."""
    X = np.array([[-2.0, -1.1], [-1.0, -0.4], [1.0, 0.6], [2.0, 0.9], [0.2, 0.0]]) + 5.0
    hasher = PCAH(1).fit(X)
    np.testing.assert_allclose(hasher.mean_, [5.04, 5.0], rtol=1e-6)
    direction = hasher.components_[:, 0]
    assert direction[0] > 0  # sign convention: largest-magnitude entry positive
    assert abs(direction @ np.array([2.0, 1.0]) / np.sqrt(5)) > 0.99
    np.testing.assert_array_equal(hasher.transform(X)[:, 0] >= 0, [False, False, True, True, True])


@pytest.mark.parametrize("n_samples, n_bits", [(300, 16), (12, 6)])  # d < n, and d > n (Gram)
def test_pcah_bits_are_signs_of_sklearn_pca_up_to_flips(digits_small, n_samples, n_bits):
    from sklearn.decomposition import PCA

    X = digits_small[0].reshape(len(digits_small[0]), -1)[:n_samples]
    hasher = PCAH(n_bits).fit(X)
    reference = PCA(n_components=n_bits, svd_solver="full").fit(X)
    cosines = hasher.components_.T @ reference.components_.T
    np.testing.assert_allclose(np.abs(cosines), np.eye(n_bits), atol=1e-4)
    flips = np.sign(np.diag(cosines))
    ours = hasher.transform(X)
    theirs = reference.transform(X) * flips
    np.testing.assert_allclose(ours, theirs, atol=1e-3 * np.abs(theirs).max())
    clear = np.abs(theirs) > 1e-3 * np.abs(theirs).max()  # ignore points on a hyperplane
    np.testing.assert_array_equal((ours >= 0)[clear], (theirs >= 0)[clear])
    np.testing.assert_allclose(
        hasher.explained_variance_ * n_samples / (n_samples - 1),
        reference.explained_variance_,
        rtol=1e-4,
    )


# -- ITQ properties -----------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [ITQ, ITQCCA])
def test_quantization_loss_never_rises_and_rotation_is_orthogonal(cls, digits_small):
    X, y = digits_small
    hasher = cls(12, random_state=3).fit(X, y)
    losses = np.array(hasher.quantization_loss_)
    assert len(losses) == 51
    assert np.all(np.diff(losses) <= 1e-9 * losses[0]), losses
    assert losses[-1] < losses[0]
    R = hasher.rotation_.astype(np.float64)
    np.testing.assert_allclose(R.T @ R, np.eye(12), atol=1e-5)
    np.testing.assert_allclose(R @ R.T, np.eye(12), atol=1e-5)
    # the last recorded loss is that of the learned rotation, ||sign(VR) - VR||^2
    V = (X.reshape(len(X), -1) - hasher.mean_).astype(np.float64) @ hasher.components_
    Z = V @ R
    np.testing.assert_allclose(
        np.sum((np.where(Z >= 0, 1.0, -1.0) - Z) ** 2), losses[-1], rtol=1e-4
    )


def test_procrustes_step_is_optimal():
    """After one iteration R maximises tr(R^T V^T B) for B = sign(V R_0): no rotation does better."""
    rng = np.random.default_rng(0)
    V = rng.standard_normal((200, 5))
    R, losses = iterative_quantization(V, 1, np.random.default_rng(1))
    R0 = random_rotation(5, np.random.default_rng(1))
    B = np.where(V @ R0 >= 0, 1.0, -1.0)
    best = np.trace(R.T @ V.T @ B)
    for seed in range(50):
        assert np.trace(random_rotation(5, np.random.default_rng(seed)).T @ V.T @ B) <= best
    assert losses[1] <= losses[0]


def test_itq_recovers_rotated_hypercube_codes():
    """Data = binary codes rotated by an unknown orthogonal Q: ITQ undoes Q up to bit order/sign."""
    rng = np.random.default_rng(0)
    codes = rng.choice([-1.0, 1.0], size=(400, 3))
    X = codes @ random_rotation(3, rng).T
    hasher = ITQ(3, random_state=0).fit(X)
    bits = np.where(hasher.transform(X) >= 0, 1.0, -1.0)
    agreement = np.abs(bits.T @ codes) / len(X)  # |correlation| of every (learned, true) bit pair
    np.testing.assert_allclose(np.sort(agreement.max(axis=1)), 1.0)
    # not exactly zero: the codes' sample mean is subtracted first, so the points sit near the corners
    assert hasher.quantization_loss_[-1] < 0.05 * hasher.quantization_loss_[0]


def test_itq_cca_directions_and_label_formats(digits_small):
    X, y = digits_small
    hasher = ITQCCA(12, random_state=0).fit(X, y)
    # centred one-hot labels of 10 classes have rank 9: nine directions, three zero columns
    assert hasher.n_directions_ == 9
    rho = hasher.canonical_correlations_
    assert np.all((rho[:9] > 0) & (rho[:9] <= 1 + 1e-6)) and np.all(np.diff(rho) <= 1e-7)
    np.testing.assert_array_equal(rho[9:], 0)
    np.testing.assert_array_equal(hasher.components_[:, 9:], 0)
    # a one-hot indicator matrix is the same supervision as the class labels
    one_hot = np.eye(10, dtype=bool)[y]
    same = ITQCCA(12, random_state=0).fit(X, one_hot)
    np.testing.assert_array_equal(same.encode(X), hasher.encode(X))
    # genuine multi-label indicators (the class plus a tag that cuts across classes) are accepted
    tag = np.random.default_rng(0).random(len(y)) < 0.3
    multi = np.column_stack([one_hot, y % 2 == 0, tag])
    fitted = ITQCCA(12, random_state=0).fit(X, multi)
    assert fitted.n_directions_ == 10  # centred rank: 9 (classes; "even" is their sum) + 1 (tag)
    # fewer bits than directions: the top n_bits directions
    assert ITQCCA(4, random_state=0).fit(X, y).n_directions_ == 4


def test_cca_solves_the_generalized_eigenproblem(digits_small):
    """C_xy C_yy^+ C_yx w = lambda^2 (C_xx + rho I) w, w^T (C_xx + rho I) w = 1 (TPAMI 2013, Sec. 3)."""
    import scipy.linalg

    X, y = digits_small
    Xc = X.reshape(len(X), -1).astype(np.float64)
    Xc -= Xc.mean(axis=0)
    Y = np.eye(10)[y]
    Yc = Y - Y.mean(axis=0)
    directions, correlations = regularized_cca(Xc, Y, 1e-2)
    n, d = Xc.shape
    cov_xx = Xc.T @ Xc / n
    B = cov_xx + 1e-2 * np.trace(cov_xx) / d * np.eye(d)
    cov_xy = Xc.T @ Yc / n
    A = cov_xy @ np.linalg.pinv(Yc.T @ Yc / n, rcond=1e-10, hermitian=True) @ cov_xy.T
    values, vectors = scipy.linalg.eigh(A, B)
    values, vectors = values[::-1][:9], vectors[:, ::-1][:, :9]
    np.testing.assert_allclose(correlations**2, values, rtol=1e-6)
    np.testing.assert_allclose(np.abs(directions.T @ B @ vectors), np.eye(9), atol=1e-6)
    np.testing.assert_allclose(A @ directions, B @ directions * correlations**2, atol=1e-8)


# -- retrieval on mnist5k pixels ----------------------------------------------------------------


def test_mnist5k_map_ordering():
    """itq > pcah, itq > lsh and itq-cca > itq at 32 bits (Gong et al., TPAMI 2013, Figs. 6-9)."""
    from hashlearn.datasets import default_split, load_dataset
    from hashlearn.evaluation import evaluate_codes

    split = default_split(load_dataset("mnist5k"), random_state=0)

    def mean_ap(hasher):
        hasher.fit(split.train.X, split.train.y)
        return evaluate_codes(
            hasher.encode(split.query.X),
            split.query.y,
            hasher.encode(split.database.X),
            split.database.y,
            ks=None,
            map_at=None,
            radius=None,
        )["mAP"]

    lsh, pcah = mean_ap(LSH(32, random_state=0)), mean_ap(PCAH(32, random_state=0))
    itq, itq_cca = mean_ap(ITQ(32, random_state=0)), mean_ap(ITQCCA(32, random_state=0))
    # measured: lsh 0.288, pcah 0.250, itq 0.438, itq-cca 0.755
    assert itq > max(lsh, pcah) + 0.05, (itq, lsh, pcah)
    assert itq_cca > itq + 0.15, (itq_cca, itq)
    assert itq > 0.35 and itq_cca > 0.6
