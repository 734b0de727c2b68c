"""The deep methods registered on top of the trainer: losses by name, regularisers, validation."""

import numpy as np
import pytest

from hashlearn import create_hasher
from hashlearn.exceptions import InvalidInputError, UnknownNameError
from hashlearn.hashers.deep.losses import CombinedLoss, DeCov, create_regularizer

DEEP = ("dpsh", "hashnet", "dsdh", "dch", "csq")


def _separation(hasher, X, y):
    bits = hasher.transform(X) >= 0
    same = y[:, None] == y[None, :]
    distances = (bits[:, None, :] != bits[None, :, :]).sum(-1)
    return distances[~same].mean() - distances[same].mean()


@pytest.mark.parametrize("name", DEEP)
def test_each_method_learns_class_structure(name, digits_small):
    X, y = digits_small
    hasher = create_hasher(
        name, n_bits=16, epochs=25, lr=3e-3, lr_schedule="constant", random_state=0, verbose=False
    )
    hasher.fit(X, y)
    # same-digit codes end up bits closer than different-digit codes (codes independent of
    # the digit would give 0)
    assert _separation(hasher, X, y) > 2.0
    assert len(hasher.history_) == 25


def test_regularizers_are_added_to_the_loss(digits_small):
    X, y = digits_small
    plain = create_hasher("hashnet", n_bits=16, epochs=3, random_state=0, verbose=False)
    regular = create_hasher(
        "hashnet",
        n_bits=16,
        epochs=3,
        random_state=0,
        verbose=False,
        regularizers={"bit-balance": 1.0, "decov": 0.5},
    )
    loss = regular._full_loss()
    assert isinstance(loss, CombinedLoss) and isinstance(loss.regularizers[1], DeCov)
    assert loss.regularizers[0].activation == "tanh"  # HashNet squashes its outputs
    assert not np.array_equal(plain.fit(X, y).transform(X), regular.fit(X, y).transform(X))


def test_dsh_takes_regularizers_too(digits_small):
    loss = create_hasher("dsh", n_bits=8, regularizers={"decov": 0.1})._full_loss()
    assert isinstance(loss, CombinedLoss) and loss.regularizers[0].activation == "identity"


def test_bad_loss_and_regularizer_names(digits_small):
    X, y = digits_small
    with pytest.raises(
        UnknownNameError, match="unknown regularizer 'orthogonal'; available: bit-balance"
    ):
        create_hasher("dpsh", n_bits=8, epochs=1, regularizers={"orthogonal": 1.0}).fit(X, y)
    with pytest.raises(InvalidInputError, match="has no parameter"):
        create_hasher("dpsh", n_bits=8, epochs=1, loss_params={"margin": 3}).fit(X, y)
    with pytest.raises(InvalidInputError, match="loss_params must be a dict"):
        create_hasher("csq", n_bits=8, epochs=1, loss_params=[1, 2]).fit(X, y)
    with pytest.raises(UnknownNameError):
        create_regularizer("nope", 1.0)


def test_loss_params_reach_the_loss():
    loss = create_hasher("dpsh", n_bits=8, loss_params={"eta": 0.5})._make_loss()
    assert loss.eta == 0.5


def test_validation_selects_the_best_epoch_and_saves_history(digits_small, tmp_path):
    from hashlearn import load_hasher

    X, y = digits_small
    hasher = create_hasher("csq", n_bits=16, epochs=6, random_state=0, verbose=False)
    hasher.fit(X[:240], y[:240], X_val=X[240:], y_val=y[240:])
    scores = [row["val_mAP"] for row in hasher.history_]
    assert all(s is not None for s in scores)
    assert hasher.best_epoch_ == 1 + int(np.argmax(scores))
    hasher.save(tmp_path / "csq.safetensors")
    loaded = load_hasher(tmp_path / "csq.safetensors")
    np.testing.assert_array_equal(loaded.encode(X), hasher.encode(X))
    assert loaded.best_epoch_ == hasher.best_epoch_
