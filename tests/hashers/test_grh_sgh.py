"""Graph Regularised Hashing (GRH) and Stochastic Generative Hashing (SGH)."""

import warnings

import numpy as np
import pytest

import hashlearn.hashers
from hashlearn import load_hasher
from hashlearn.exceptions import InvalidInputError, UnknownNameError
from hashlearn.hashers import grh
from hashlearn.hashers.grh import GRH, LabelGraph, graph_regularise
from hashlearn.hashers.linear_classifiers import (
    logistic_loss,
    newton_linear_classifier,
    squared_hinge,
)
from hashlearn.hashers.lsh import LSH
from hashlearn.hashers.sgh import SGH, _description_length, flip_cost

REGISTRY = {
    "grh": ("hashlearn.hashers.grh", "GRH", "Graph Regularised Hashing"),
    "sgh": ("hashlearn.hashers.sgh", "SGH", "Stochastic Generative Hashing"),
}


@pytest.fixture(scope="module")
def mnist():
    from hashlearn.datasets import default_split, load_dataset

    return default_split(load_dataset("mnist5k"), random_state=0)


def retrieval_map(hasher, split):
    from hashlearn.evaluation import evaluate_codes

    query, db = split.query, split.database
    return evaluate_codes(hasher.encode(query.X), query.y, hasher.encode(db.X), db.y)["mAP"]


def mean_hamming(bits, labels):
    """Mean Hamming distance over same-label pairs and over different-label pairs."""
    distances = (bits[:, None, :] != bits[None, :, :]).sum(-1)
    same = labels[:, None] == labels[None, :]
    off_diagonal = ~np.eye(len(labels), dtype=bool)
    return distances[same & off_diagonal].mean(), distances[~same].mean()


# -- GRH: graph regularisation ------------------------------------------------------------------


def test_graph_regularisation_by_hand():
    # class 0 = samples 0..2, class 1 = sample 3; class-0 bit means: (1+1-1)/3 = 1/3, (1-1-1)/3 = -1/3
    codes = np.array([[1, 1], [1, -1], [-1, -1], [-1, 1]], dtype=np.float32)
    labels = np.array([0, 0, 0, 1])
    # alpha = 1: every sample takes its class majority
    np.testing.assert_array_equal(
        graph_regularise(codes, labels, 1.0), [[1, -1], [1, -1], [1, -1], [-1, 1]]
    )
    # alpha = 0.8: 0.8 * (1/3) - 0.2 > 0, so the minority bits of class 0 flip
    np.testing.assert_array_equal(
        graph_regularise(codes, labels, 0.8), [[1, -1], [1, -1], [1, -1], [-1, 1]]
    )
    # alpha = 0.75: 0.75 * (1/3) - 0.25 = 0, a tie, which keeps the current bit
    np.testing.assert_array_equal(graph_regularise(codes, labels, 0.75), codes)
    # anchored at all-ones codes: 0.6 * (+-1/3) + 0.4 > 0 in class 0; 0.6 * -1 + 0.4 < 0 for 3
    anchor = np.ones_like(codes)
    np.testing.assert_array_equal(
        graph_regularise(codes, labels, 0.6, anchor), [[1, 1], [1, 1], [1, 1], [-1, 1]]
    )


def test_alpha_at_most_one_half_never_changes_a_bit():
    """|D^-1 S L| <= 1, so the tutorial's alpha = 0.25 leaves every code as it is."""
    rng = np.random.default_rng(0)
    codes = np.where(rng.random((200, 16)) < 0.5, -1.0, 1.0)
    labels = rng.integers(0, 5, 200)
    for alpha in (0.0, 0.25, 0.5):
        np.testing.assert_array_equal(graph_regularise(codes, labels, alpha), codes)
    assert (graph_regularise(codes, labels, 0.9) != codes).any()


@pytest.mark.parametrize("multilabel", [False, True])
def test_neighbour_mean_matches_the_dense_adjacency(multilabel, monkeypatch):
    """The per-label-set fast path equals D^-1 S B with the explicit n x n adjacency."""
    monkeypatch.setattr(grh, "_BLOCK_ENTRIES", 7)  # several row blocks
    rng = np.random.default_rng(1)
    n = 60
    codes = np.where(rng.random((n, 5)) < 0.5, -1.0, 1.0)
    if multilabel:
        labels = rng.random((n, 4)) < 0.3
        labels[:3] = False  # samples without any label have no neighbours
        S = (labels.astype(int) @ labels.T.astype(int) > 0).astype(float)
    else:
        labels = rng.integers(0, 6, n)
        S = np.equal.outer(labels, labels).astype(float)
    degree = S.sum(axis=1, keepdims=True)
    dense = np.divide(S @ codes, degree, out=np.zeros_like(codes), where=degree > 0)
    np.testing.assert_allclose(LabelGraph(labels).neighbour_mean(codes), dense, atol=1e-6)


def test_refined_codes_move_toward_same_label_neighbours(mnist):
    """On real digits, GRH pulls same-label codes together much more than different-label ones."""
    X, y = mnist.train.X[:1500], mnist.train.y[:1500]
    lsh = LSH(32, normalize=True, random_state=0).fit(X)  # GRH's initial hyperplanes
    initial = np.where(lsh.transform(X) >= 0, 1.0, -1.0)
    refined = graph_regularise(initial, y, 0.9)
    hasher = GRH(32, random_state=0).fit(X, y)
    learned = hasher.transform(X) >= 0
    same0, diff0 = mean_hamming(initial > 0, y)
    for bits in (refined > 0, learned):
        same, diff = mean_hamming(bits, y)
        # measured: same-label 13.5 -> 3.3 (refined), 4.2 (learned); different 16.3 -> 16.8, 16.1
        assert same < same0 - 4
        assert diff > diff0 - 1  # different labels stay apart


# -- GRH: the learners ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_problem(digits_small):
    X, y = digits_small
    X = X.reshape(len(X), -1).astype(np.float32)
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    X -= X.mean(axis=0)
    rng = np.random.default_rng(0)
    noisy = X @ rng.standard_normal((64, 3)) + 0.05 * rng.standard_normal((len(X), 3))
    Y = np.where(np.column_stack([noisy, y - 4.5]) >= 0, 1.0, -1.0).astype(np.float32)
    return X, Y


@pytest.mark.parametrize("C", [0.1, 1.0, 10.0])
def test_batched_newton_svm_matches_liblinear(small_problem, C):
    from sklearn.svm import LinearSVC

    X, Y = small_problem
    zeros = np.zeros((X.shape[1], Y.shape[1]), np.float32), np.zeros(Y.shape[1], np.float32)
    W, b = newton_linear_classifier(X, Y, squared_hinge, C, *zeros, tol=1e-6)
    for k in range(Y.shape[1]):
        reference = LinearSVC(C=C, tol=1e-8, max_iter=100_000).fit(X, Y[:, k])
        scale = np.abs(reference.coef_).max()
        np.testing.assert_allclose(W[:, k], reference.coef_[0], atol=1e-4 * scale)
        assert b[k] == pytest.approx(reference.intercept_[0], abs=1e-4 * float(scale))


def test_batched_newton_logistic_matches_sklearn(small_problem):
    from sklearn.linear_model import LogisticRegression

    X, Y = small_problem
    zeros = np.zeros((X.shape[1], Y.shape[1]), np.float32), np.zeros(Y.shape[1], np.float32)
    W, b = newton_linear_classifier(
        X, Y, logistic_loss, 1.0, *zeros, tol=1e-6, penalize_intercept=False
    )
    for k in range(Y.shape[1]):
        reference = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(X, Y[:, k])
        scale = np.abs(reference.coef_).max()
        np.testing.assert_allclose(W[:, k], reference.coef_[0], atol=2e-3 * scale)
        assert b[k] == pytest.approx(reference.intercept_[0], abs=2e-3 * float(scale))


def test_unknown_learner_lists_the_valid_ones(digits_small):
    X, y = digits_small
    with pytest.raises(UnknownNameError, match="available: svm, logistic, passive-aggressive"):
        GRH(8, learner="random-forest").fit(X, y)
    with pytest.raises(UnknownNameError, match="available: l2-center, center, none"):
        GRH(8, preprocess="whiten").fit(X, y)
    with pytest.raises(InvalidInputError, match="alpha must be <= 1"):
        GRH(8, alpha=1.5).fit(X, y)
    with pytest.raises(InvalidInputError, match="needs learner='passive-aggressive'"):
        GRH(8).partial_fit(X, y)
    with pytest.raises(InvalidInputError, match="needs labels"):
        GRH(8, learner="passive-aggressive").partial_fit(X)


@pytest.mark.parametrize("learner", ["svm", "logistic", "passive-aggressive"])
@pytest.mark.parametrize("preprocess", ["l2-center", "none"])
def test_every_learner_separates_digit_classes(digits_small, learner, preprocess):
    X, y = digits_small
    hasher = GRH(16, learner=learner, preprocess=preprocess, random_state=0).fit(X, y)
    same, diff = mean_hamming(hasher.transform(X) >= 0, y)
    assert same + 3 < diff


def test_multilabel_training(digits_small):
    X, y = digits_small
    # labels: the digit, and "is even"; samples sharing either are neighbours
    Y = np.column_stack([np.eye(10, dtype=bool)[y], y % 2 == 0])
    bits = GRH(16, random_state=0).fit(X, Y).transform(X) >= 0
    distances = (bits[:, None, :] != bits[None, :, :]).sum(-1)
    digit = y[:, None] == y[None, :]
    parity = (y[:, None] % 2 == 0) & (y[None, :] % 2 == 0)
    unrelated = ~digit & ~parity
    assert distances[digit].mean() < distances[parity & ~digit].mean() < distances[unrelated].mean()


def test_constant_refined_bits_get_a_new_random_hyperplane(digits_small):
    X, y = digits_small
    ones = np.zeros(len(y), dtype=np.int64)  # one class: every refined bit is constant
    hasher = GRH(8, alpha=1.0, n_iter=1, random_state=0).fit(X, ones)
    assert not hasher.intercept_.any()  # random planes through the mean, no classifier offsets
    assert len(np.unique(hasher.encode(X), axis=0)) > 10  # not a constant code


# -- GRH: streaming with the passive-aggressive learner -------------------------------------------


def test_partial_fit_on_a_fresh_model_is_fit(digits_small):
    X, y = digits_small
    fitted = GRH(12, learner="passive-aggressive", random_state=3).fit(X, y)
    streamed = GRH(12, learner="passive-aggressive", random_state=3).partial_fit(X, y)
    np.testing.assert_array_equal(streamed.transform(X), fitted.transform(X))


def test_partial_fit_on_two_batches(mnist):
    X, y = mnist.train.X[:2000], mnist.train.y[:2000]
    params = {"learner": "passive-aggressive", "n_epochs": 2, "random_state": 0}
    single = GRH(32, **params).fit(X, y)
    stream = GRH(32, **params).partial_fit(X[:1000], y[:1000]).partial_fit(X[1000:], y[1000:])
    assert stream.n_batches_ == 2
    lsh_map = retrieval_map(LSH(32, normalize=True, random_state=0).fit(X), mnist)
    stream_map, single_map = retrieval_map(stream, mnist), retrieval_map(single, mnist)
    # measured: lsh 0.29, two batches 0.75, single fit 0.74
    assert stream_map > lsh_map + 0.3
    assert abs(stream_map - single_map) < 0.1


def test_partial_fit_continues_after_save_and_load(digits_small, tmp_path):
    assert hashlearn.hashers.get_hasher_class("grh").__name__ == REGISTRY["grh"][1]
    X, y = digits_small
    first, second = slice(0, 150), slice(150, 300)
    hasher = GRH(12, learner="passive-aggressive", random_state=0).partial_fit(X[first], y[first])
    hasher.save(tmp_path / "grh.safetensors")
    reloaded = load_hasher(tmp_path / "grh.safetensors")
    hasher.partial_fit(X[second], y[second])
    reloaded.partial_fit(X[second], y[second])
    np.testing.assert_array_equal(reloaded.transform(X), hasher.transform(X))


# -- SGH ----------------------------------------------------------------------------------------


def test_flip_cost_is_the_exact_reconstruction_difference():
    rng = np.random.default_rng(0)
    m, l, d, var = 6, 4, 9, 0.7
    X = rng.standard_normal((m, d))
    U = rng.standard_normal((l, d))
    a = rng.standard_normal(d)
    h = (rng.random((m, l)) < 0.5).astype(float)

    def cost(h):
        return ((X - h @ U - a) ** 2).sum(axis=1) / (2 * var)

    expected = np.empty((m, l))
    for k in range(l):
        on, off = h.copy(), h.copy()
        on[:, k], off[:, k] = 1.0, 0.0
        expected[:, k] = cost(on) - cost(off)
    np.testing.assert_allclose(flip_cost(X - h @ U - a, h, U, var), expected, rtol=1e-10)


def test_sgh_gradient_is_unbiased():
    """The stochastic-neuron gradient averages to the exact gradient of the expected objective."""
    rng = np.random.default_rng(0)
    d, l = 5, 3
    params = {
        "W": rng.standard_normal((d, l)).astype(np.float32),
        "c": rng.standard_normal(l).astype(np.float32),
        "U": rng.standard_normal((l, d)).astype(np.float32),
        "a": rng.standard_normal(d).astype(np.float32),
        "log_var": np.array(0.3),
        "prior_logit": rng.standard_normal(l),
    }
    x = rng.standard_normal(d).astype(np.float32)
    all_codes = ((np.arange(2**l)[:, None] >> np.arange(l)) & 1).astype(float)

    def expected_objective(W, c):  # E_q[reconstruction] + constant + KL, by enumeration
        q = 1 / (1 + np.exp(-(x @ W + c)))
        theta = 1 / (1 + np.exp(-params["prior_logit"]))
        var = np.exp(params["log_var"])
        probs = np.prod(np.where(all_codes == 1, q, 1 - q), axis=1)
        recon = ((x - all_codes @ params["U"] - params["a"]) ** 2).sum(axis=1) / (2 * var)
        kl = q * np.log(q / theta) + (1 - q) * np.log((1 - q) / (1 - theta))
        return probs @ recon + 0.5 * d * np.log(2 * np.pi * var) + kl.sum()

    W64, c64 = params["W"].astype(float), params["c"].astype(float)
    exact = np.empty(l)
    for k in range(l):  # central differences on the offsets c
        step = np.zeros(l)
        step[k] = 1e-5
        exact[k] = (
            expected_objective(W64, c64 + step) - expected_objective(W64, c64 - step)
        ) / 2e-5
    loss, grads = _description_length(params, np.tile(x, (200_000, 1)), rng)
    assert loss == pytest.approx(expected_objective(W64, c64), rel=0.01)
    tolerance = 0.01 * np.abs(exact).max()
    np.testing.assert_allclose(grads["c"], exact, atol=tolerance)
    # z = x . W + c, so the exact gradient in W is x (outer) the one in c
    np.testing.assert_allclose(grads["W"], np.outer(x, exact), atol=tolerance * np.abs(x).max())


def test_sgh_loss_decreases(digits_small):
    X, _ = digits_small
    hasher = SGH(16, epochs=20, random_state=0).fit(X)
    history = hasher.loss_history_
    assert history.shape == (20,)
    assert history[-1] < history[:3].min()
    assert np.mean(history[-5:]) < np.mean(history[:5]) - 5  # nats per sample; measured 9


def test_sgh_uses_its_bits_and_reconstructs_better_than_the_mean(digits_small):
    X, _ = digits_small
    X = X.reshape(len(X), -1)
    hasher = SGH(16, random_state=0).fit(X)
    bits = (hasher.transform(X) >= 0).astype(np.float32)
    assert 0.05 < bits.mean(axis=0).min() and bits.mean(axis=0).max() < 0.95
    reconstruction = bits @ hasher.decoder_ + hasher.decoder_bias_ + hasher.mean_
    error = ((X - reconstruction) ** 2).sum(axis=1).mean()
    baseline = ((X - X.mean(axis=0)) ** 2).sum(axis=1).mean()
    assert error < 0.6 * baseline


# -- retrieval on real data and the shared contract ----------------------------------------------


def test_grh_and_sgh_beat_lsh_on_mnist(mnist):
    X, y = mnist.train.X, mnist.train.y
    lsh_map = retrieval_map(LSH(32, random_state=0).fit(X), mnist)
    grh_map = retrieval_map(GRH(32, random_state=0).fit(X, y), mnist)
    sgh_map = retrieval_map(SGH(32, random_state=0).fit(X), mnist)
    # measured on the query set: lsh 0.29, sgh 0.40, grh 0.78
    assert grh_map > lsh_map + 0.3
    assert sgh_map > lsh_map + 0.1


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_contract_round_trip_when_registered(name, digits_small, tmp_path):
    assert hashlearn.hashers.get_hasher_class(name).__name__ == REGISTRY[name][1]
    X, y = digits_small
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hasher = hashlearn.hashers.create_hasher(name, n_bits=12, random_state=0).fit(X, y)
    codes = hasher.encode(X)
    assert codes.dtype == np.uint8 and codes.shape == (len(X), 2)
    np.testing.assert_array_equal(
        hashlearn.hashers.create_hasher(name, n_bits=12, random_state=0).fit(X, y).encode(X), codes
    )
    hasher.save(tmp_path / "model.safetensors")
    loaded = load_hasher(tmp_path / "model.safetensors")
    assert type(loaded) is type(hasher) and loaded.get_params() == hasher.get_params()
    np.testing.assert_array_equal(loaded.encode(X), codes)
