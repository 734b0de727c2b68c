"""Spectral Hashing (``sh``) and Spherical Hashing (``sph``): contract, hand-computed cases and the
properties each paper builds its codes on."""

import numpy as np
import pytest

import hashlearn.hashers
from hashlearn import create_hasher, load_hasher
from hashlearn.datasets import default_split, load_dataset
from hashlearn.evaluation import evaluate_codes
from hashlearn.exceptions import InvalidInputError
from hashlearn.hashers.spectral import SpectralHashing
from hashlearn.hashers.spherical import SphericalHashing

REGISTRY_LINES = {
    "sh": ("hashlearn.hashers.spectral", "SpectralHashing", "Spectral Hashing"),
    "sph": ("hashlearn.hashers.spherical", "SphericalHashing", "Spherical Hashing"),
}


@pytest.fixture(scope="module")
def mnist():
    return default_split(load_dataset("mnist5k"), random_state=0)


@pytest.fixture(scope="module")
def sh_mnist(mnist):
    return SpectralHashing(n_bits=32, random_state=0).fit(mnist.train.X)


@pytest.fixture(scope="module")
def sph_mnist(mnist):
    return SphericalHashing(n_bits=32, random_state=0).fit(mnist.train.X)


def mean_average_precision(hasher, split):
    query, database = hasher.encode(split.query.X), hasher.encode(split.database.X)
    return evaluate_codes(query, split.query.y, database, split.database.y)["mAP"]


# -- the estimator contract, through the registry --------------------------------------------------


@pytest.mark.parametrize("name", sorted(REGISTRY_LINES))
def test_registry_fit_encode_save_load_round_trip(name, digits_small, tmp_path):
    assert hashlearn.hashers.get_hasher_class(name).__name__ == REGISTRY_LINES[name][1]
    X, y = digits_small
    hasher = create_hasher(name, n_bits=12, random_state=0)
    assert hasher.fit(X, y) is hasher
    projections = hasher.transform(X)
    assert projections.dtype == np.float32 and projections.shape == (len(X), 12)
    codes = hasher.encode(X)
    np.testing.assert_array_equal(codes, np.packbits(projections >= 0, axis=1, bitorder="little"))
    np.testing.assert_array_equal(
        create_hasher(name, n_bits=12, random_state=0).fit(X).encode(X), codes
    )
    hasher.save(tmp_path / "model.safetensors")
    loaded = load_hasher(tmp_path / "model.safetensors")
    assert type(loaded) is type(hasher) and loaded.get_params() == hasher.get_params()
    np.testing.assert_array_equal(loaded.encode(X), codes)
    np.testing.assert_array_equal(loaded.transform(X), projections)


# -- Spectral Hashing ------------------------------------------------------------------------------


def rectangle_grid():
    """A regular grid on [0, 4] x [0, 1.5]: PCA keeps the axes, the box is the rectangle itself."""
    gx, gy = np.meshgrid(np.linspace(0, 4, 41), np.linspace(0, 1.5, 16), indexing="ij")
    return np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)


def test_spectral_hashing_on_a_rectangle_matches_the_closed_form():
    # omega = k pi / side: x modes pi/4 * (1, 2, 3, 4, 5), y modes pi/1.5 * (1, 2). The five smallest:
    # x1 (0.785), x2 (1.571), y1 (2.094), x3 (2.356), x4 (3.142); more bits than the 2 features.
    X = rectangle_grid()
    hasher = SpectralHashing(n_bits=5).fit(X)
    np.testing.assert_array_equal(hasher.bit_directions_, [0, 0, 1, 0, 0])
    np.testing.assert_array_equal(hasher.bit_modes_, [1, 2, 1, 3, 4])
    np.testing.assert_allclose(np.abs(hasher.components_), np.eye(2), atol=1e-6)
    np.testing.assert_allclose(hasher.upper_ - hasher.lower_, [4.0, 1.5], rtol=1e-6)
    sides = np.array([4.0, 1.5])
    np.testing.assert_allclose(
        hasher.eigenvalues_, (np.array([1, 2, 1, 3, 4]) * np.pi / sides[[0, 0, 1, 0, 0]]) ** 2
    )
    # phi_k = sin(pi/2 + k pi (u - a) / (b - a)) = cos(k pi u / side) for the coordinate u in [0, side]
    expected = np.cos(
        hasher.bit_modes_ * np.pi * X[:, hasher.bit_directions_] / sides[[0, 0, 1, 0, 0]]
    )
    np.testing.assert_allclose(hasher.transform(X), expected, atol=1e-5)
    # the first bit splits the long side in half: 1 on x < 2, 0 on x > 2
    bits = hasher.transform(X)[:, 0] >= 0
    np.testing.assert_array_equal(bits[X[:, 0] != 2], X[X[:, 0] != 2, 0] < 2)


@pytest.mark.parametrize("n_bits", [1, 12, 48, 100])
def test_spectral_hashing_chooses_the_smallest_eigenvalues(n_bits, digits_small):
    """The chosen eigenvalues ascend, and no eigenfunction left out has a smaller one."""
    X, _ = digits_small
    hasher = SpectralHashing(n_bits=n_bits).fit(X)
    directions, modes, eigenvalues = hasher.bit_directions_, hasher.bit_modes_, hasher.eigenvalues_
    assert len(directions) == len(modes) == len(eigenvalues) == n_bits
    assert np.all(np.diff(eigenvalues) >= 0)
    assert np.all(modes >= 1)  # the trivial constant eigenfunction is never used
    sides = hasher.upper_ - hasher.lower_
    np.testing.assert_allclose(eigenvalues, (modes * np.pi / sides[directions]) ** 2)
    assert len(set(zip(directions.tolist(), modes.tolist()))) == n_bits  # no bit twice
    largest = eigenvalues[-1]
    for direction, side in enumerate(sides):
        chosen = np.sort(modes[directions == direction])
        np.testing.assert_array_equal(chosen, np.arange(1, len(chosen) + 1))  # no gaps
        if side > 1e-6 * sides.max():
            next_mode = len(chosen) + 1  # the smallest eigenfunction of this direction left out
            assert (next_mode * np.pi / side) ** 2 >= largest, (direction, next_mode)


def test_spectral_hashing_is_deterministic_whatever_the_seed(digits_small):
    X, _ = digits_small
    first = SpectralHashing(n_bits=16, random_state=0).fit(X).encode(X)
    np.testing.assert_array_equal(
        SpectralHashing(n_bits=16, random_state=7).fit(X).encode(X), first
    )
    np.testing.assert_array_equal(SpectralHashing(n_bits=16).fit(X).encode(X), first)


def test_spectral_hashing_with_fewer_samples_than_features():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 50)).astype(np.float32)
    hasher = SpectralHashing(n_bits=32).fit(X)
    assert hasher.components_.shape == (50, 20)
    gram_free = hasher.components_[:, :19]  # the 19 non-degenerate directions are orthonormal
    np.testing.assert_allclose(gram_free.T @ gram_free, np.eye(19), atol=1e-5)
    assert hasher.transform(X).shape == (20, 32)


def test_spectral_hashing_rejects_data_without_variance():
    with pytest.raises(InvalidInputError, match="every training sample is identical"):
        SpectralHashing(n_bits=4).fit(np.ones((10, 3), np.float32))
    with pytest.raises(InvalidInputError, match="at least 2 samples, got 1"):
        SpectralHashing(n_bits=4).fit(np.ones((1, 3), np.float32))


# -- Spherical Hashing -----------------------------------------------------------------------------


def test_spherical_hashing_one_sphere_by_hand():
    # four points on a line; the radius sits halfway between the 2nd and 3rd closest distances
    X = np.array([[0.0], [1.0], [2.0], [3.0]], np.float32)
    hasher = SphericalHashing(n_bits=1, random_state=0).fit(X)
    pivot = hasher.pivots_[0, 0]
    assert pivot in X[:, 0] and hasher.n_iter_ == 0 and hasher.converged_
    distances = np.sort(np.abs(X[:, 0] - pivot))
    assert hasher.radii_[0] == pytest.approx((distances[1] + distances[2]) / 2)
    np.testing.assert_allclose(
        hasher.transform(X)[:, 0], hasher.radii_[0] - np.abs(X[:, 0] - pivot)
    )
    assert (hasher.transform(X) >= 0).sum() == 2


def test_spherical_hashing_pivot_update_follows_the_paper(digits_small):
    """One step: p_i += 1/c sum_j 1/2 (o_ij - m/4) / (m/4) (p_i - p_j), with o_ij counted at the
    median radii of the current pivots."""
    X, _ = digits_small
    X = X.reshape(len(X), -1).astype(np.float32)
    m, c = len(X), 6
    params = dict(n_bits=c, max_samples=None, epsilon_mean=0.0, epsilon_std=0.0, random_state=3)
    start = SphericalHashing(max_iter=0, **params).fit(X)
    after = SphericalHashing(max_iter=1, **params).fit(X)
    assert start.n_iter_ == 0 and after.n_iter_ == 1 and not after.converged_

    pivots = start.pivots_.astype(np.float64)
    inside = (start.transform(X) >= 0).astype(np.int64)
    np.testing.assert_array_equal(inside.sum(axis=0), m // 2)  # every sphere holds half the points
    overlaps = inside.T @ inside
    expected = pivots.copy()
    for i in range(c):
        force = np.zeros(X.shape[1])
        for j in range(c):
            if j != i:
                force += 0.5 * (overlaps[i, j] - m / 4) / (m / 4) * (pivots[i] - pivots[j])
        expected[i] += force / c
    np.testing.assert_allclose(after.pivots_, expected, rtol=1e-5, atol=1e-4)


def test_spherical_hashing_balanced_bits_and_overlap_targets(digits_small):
    """Trained on all of a real sample: every sphere holds exactly half the points, and after
    convergence the pairwise overlaps are within the paper's tolerances of m / 4."""
    X, _ = digits_small
    hasher = SphericalHashing(n_bits=16, max_samples=None, random_state=0).fit(X)
    m = len(X)
    assert hasher.converged_ and hasher.n_iter_ < 100 and hasher.n_training_samples_ == m
    bits = hasher.transform(X) >= 0
    np.testing.assert_array_equal(bits.sum(axis=0), m // 2)
    overlaps = bits.T.astype(np.int64) @ bits
    deviation = np.abs(overlaps[np.triu_indices(16, k=1)] - m / 4)
    assert deviation.mean() <= 0.1 * m / 4 and deviation.std() <= 0.15 * m / 4
    np.testing.assert_allclose(hasher.overlap_history_[-1], [deviation.mean(), deviation.std()])
    assert hasher.overlap_history_.shape == (hasher.n_iter_ + 1, 2)
    assert hasher.overlap_history_[-1, 0] < hasher.overlap_history_[0, 0]  # the forces helped


def test_spherical_hashing_on_mnist_converges_with_balanced_bits(sph_mnist, mnist):
    """Trained on a 2000-point subset (the default cap), the bits stay balanced on all the data."""
    hasher = sph_mnist
    m = hasher.n_training_samples_
    assert m == 2000 and hasher.converged_ and hasher.n_iter_ < 100
    mean, std = hasher.overlap_history_[-1]
    assert mean <= 0.1 * m / 4 and std <= 0.15 * m / 4
    balance = (hasher.transform(mnist.train.X) >= 0).mean(axis=0)
    assert np.all((balance >= 0.45) & (balance <= 0.55)), balance


def test_spherical_hashing_rejects_bad_parameters(digits_small):
    X, _ = digits_small
    with pytest.raises(
        InvalidInputError, match=r"n_bits=20 pivots.*the 10 training points.*only 10 distinct"
    ):
        SphericalHashing(n_bits=20, max_samples=10).fit(X)
    repeated = np.repeat(X[:3], 5, axis=0)  # 15 samples, 3 distinct
    with pytest.raises(InvalidInputError, match="only 3 distinct ones"):
        SphericalHashing(n_bits=4).fit(repeated)
    pivots = SphericalHashing(n_bits=3, random_state=0, max_iter=0).fit(repeated).pivots_
    assert len(np.unique(pivots, axis=0)) == 3
    with pytest.raises(InvalidInputError, match="max_samples must be >= 2, got 1"):
        SphericalHashing(n_bits=1, max_samples=1).fit(X)
    with pytest.raises(InvalidInputError, match="max_iter must be >= 0, got -1"):
        SphericalHashing(n_bits=4, max_iter=-1).fit(X)
    with pytest.raises(InvalidInputError, match="epsilon_mean must be >= 0"):
        SphericalHashing(n_bits=4, epsilon_mean=-0.1).fit(X)
    with pytest.raises(InvalidInputError, match="epsilon_std must be a number"):
        SphericalHashing(n_bits=4, epsilon_std="tight").fit(X)


# -- retrieval on MNIST pixels ---------------------------------------------------------------------


def test_retrieval_on_mnist_pixels_is_far_above_chance(sh_mnist, sph_mnist, mnist):
    # measured at 32 bits, seed 0: sh 0.27, sph 0.30, lsh 0.29; chance (10 balanced classes) is 0.1
    assert mean_average_precision(sh_mnist, mnist) > 0.2
    assert mean_average_precision(sph_mnist, mnist) > 0.2
