"""One contract suite for every registered hasher."""

import json

import numpy as np
import pytest

from hashlearn import create_hasher, list_hashers, load_hasher
from hashlearn.exceptions import (
    FileFormatError,
    InvalidInputError,
    NotFittedError,
    UnknownNameError,
)
from hashlearn.hashers import get_hasher_class

# Settings that keep each method's fit to a second or two; everything else is the default.
DEEP = tuple(name for name in list_hashers() if get_hasher_class(name).input_kind == "images")
FAST = {name: {"epochs": 2, "verbose": False} for name in DEEP}
N_BITS = 12


def make(name, **extra):
    return create_hasher(name, n_bits=N_BITS, random_state=0, **{**FAST.get(name, {}), **extra})


@pytest.fixture(params=list_hashers())
def name(request):
    return request.param


def test_fit_returns_self_and_codes_have_the_packed_layout(name, digits_small):
    X, y = digits_small
    hasher = make(name)
    assert hasher.fit(X, y) is hasher
    codes = hasher.encode(X)
    assert codes.dtype == np.uint8 and codes.shape == (len(X), 2)
    assert not (codes[:, -1] & 0xF0).any()  # bits 12..15 are padding
    projections = hasher.transform(X)
    assert projections.dtype == np.float32 and projections.shape == (len(X), N_BITS)
    np.testing.assert_array_equal(codes, np.packbits(projections >= 0, axis=1, bitorder="little"))


def test_same_seed_same_codes(name, digits_small):
    X, y = digits_small
    first = make(name).fit(X, y).encode(X)
    second = make(name).fit(X, y).encode(X)
    np.testing.assert_array_equal(first, second)


def test_save_load_round_trip(name, digits_small, tmp_path):
    X, y = digits_small
    hasher = make(name).fit(X, y)
    path = tmp_path / "model.safetensors"
    hasher.save(path)
    data = path.read_bytes()  # a safetensors file: 8-byte header length, then a JSON header
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
    assert header["__metadata__"]["method"] == name
    loaded = load_hasher(path)
    assert type(loaded) is type(hasher) and loaded.get_params() == hasher.get_params()
    np.testing.assert_array_equal(loaded.encode(X), hasher.encode(X))
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]  # no temp file left


def test_the_image_shape_of_the_fit_is_kept_and_checked(name, digits_small, tmp_path):
    X, y = digits_small  # (n, 8, 8) images
    hasher = make(name).fit(X, y)
    assert tuple(hasher.image_shape_) == (8, 8, 1)
    hasher.save(tmp_path / "model.safetensors")
    assert tuple(load_hasher(tmp_path / "model.safetensors").image_shape_) == (8, 8, 1)
    np.testing.assert_array_equal(hasher.encode(X[..., None]), hasher.encode(X))
    with pytest.raises(
        InvalidInputError,
        match=r"images of shape \(4, 16, 1\), but the hasher was fitted on \(8, 8, 1\)",
    ):
        hasher.encode(X.reshape(len(X), 4, 16))
    if hasher.input_kind == "features":
        flat = X.reshape(len(X), -1)
        np.testing.assert_array_equal(hasher.encode(flat), hasher.encode(X))
        refit = make(name).fit(flat, y)
        assert refit.image_shape_ is None
        refit.save(tmp_path / "flat.safetensors")
        assert load_hasher(tmp_path / "flat.safetensors").image_shape_ is None


def test_a_failed_fit_leaves_the_hasher_unfitted(digits_small):
    X, _ = digits_small
    hasher = make("ksh")
    with pytest.raises(InvalidInputError, match="needs labels"):
        hasher.fit(X)  # the images are checked (and their shape noted) before the labels
    assert not hasher.is_fitted
    with pytest.raises(NotFittedError):
        hasher.encode(X)


def test_encode_before_fit_fails_clearly(name, digits_small):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        make(name).encode(digits_small[0])
    with pytest.raises(NotFittedError, match="not fitted yet"):
        make(name).save("never-written.safetensors")


def test_nan_and_wrong_shapes_are_rejected(name, digits_small):
    X, y = digits_small
    bad = X.copy()
    bad[3, 2, 2] = np.nan
    with pytest.raises(InvalidInputError, match="NaN or infinite values in 1 row"):
        make(name).fit(bad, y)
    hasher = make(name).fit(X, y)
    with pytest.raises(InvalidInputError, match="fitted on"):
        hasher.encode(np.zeros((2, 9, 9), dtype=np.float32))
    with pytest.raises(InvalidInputError, match="empty"):
        hasher.encode(np.zeros((0, 8, 8), dtype=np.float32))
    with pytest.raises(InvalidInputError, match="must hold numbers"):
        hasher.encode(np.array([["a"] * 64]))


def test_bad_parameters_are_rejected(name, digits_small):
    X, y = digits_small
    with pytest.raises(InvalidInputError, match="n_bits must be >= 1"):
        create_hasher(name, n_bits=0, **FAST.get(name, {})).fit(X, y)
    with pytest.raises(InvalidInputError, match="has no parameter"):
        create_hasher(name, n_bits=8, not_a_parameter=3)
    with pytest.raises(InvalidInputError, match="random_state must be an integer"):
        create_hasher(name, n_bits=8, random_state="seven", **FAST.get(name, {})).fit(X, y)


def test_supervised_hashers_need_labels(name, digits_small):
    hasher = make(name)
    if not hasher.supervised:
        pytest.skip(f"{name} is unsupervised")
    with pytest.raises(InvalidInputError, match="needs labels"):
        hasher.fit(digits_small[0])


def test_unknown_hasher_name():
    with pytest.raises(UnknownNameError, match=r"unknown hasher 'nope'; available: .*dsh.*lsh"):
        create_hasher("nope")


def test_foreign_and_damaged_model_files(tmp_path, digits_small):
    X, y = digits_small
    path = tmp_path / "m.safetensors"
    make("lsh").fit(X, y).save(path)
    data = path.read_bytes()

    (tmp_path / "truncated").write_bytes(data[: len(data) - 10])
    with pytest.raises(FileFormatError, match="truncated or corrupted"):
        load_hasher(tmp_path / "truncated")

    flipped = bytearray(data)
    flipped[-5] ^= 0xFF
    (tmp_path / "flipped").write_bytes(bytes(flipped))
    with pytest.raises(FileFormatError, match="SHA-256"):
        load_hasher(tmp_path / "flipped")

    (tmp_path / "foreign.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(FileFormatError, match="not a hashlearn model"):
        load_hasher(tmp_path / "foreign.png")

    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(FileFormatError, match="only 0 bytes"):
        load_hasher(tmp_path / "empty")

    from safetensors.numpy import save_file

    save_file({"w": np.zeros(3, np.float32)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(FileFormatError, match="not a hashlearn model"):
        load_hasher(tmp_path / "plain.safetensors")


def test_newer_model_format_is_refused(tmp_path, digits_small):
    import json

    X, y = digits_small
    path = tmp_path / "m.safetensors"
    make("lsh").fit(X, y).save(path)
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    header["__metadata__"]["format_version"] = "99"
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + n :])
    with pytest.raises(FileFormatError, match="version 99, newer than this hashlearn reads"):
        load_hasher(path)


def test_lsh_bit_disagreement_matches_angle_over_pi():
    """Sign random projections: P[bit differs] = angle / pi (Charikar 2002)."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal(40)
    for angle in (0.3, 1.0, 2.0, 2.8):
        orth = rng.standard_normal(40)
        orth -= orth @ a / (a @ a) * a
        b = np.cos(angle) * a / np.linalg.norm(a) + np.sin(angle) * orth / np.linalg.norm(orth)
        X = np.stack([a / np.linalg.norm(a), b])
        hasher = create_hasher("lsh", n_bits=4096, center=False, random_state=1).fit(X)
        bits = hasher.transform(X) >= 0
        rate = (bits[0] != bits[1]).mean()
        # 4096 Bernoulli trials: standard deviation <= 0.008; allow 4 of them
        assert abs(rate - angle / np.pi) < 0.032, (angle, rate)


def test_params_work_as_in_scikit_learn(name, digits_small):
    from sklearn.base import clone

    hasher = make(name).fit(*digits_small)
    copy = clone(hasher)
    assert type(copy) is type(hasher) and copy.get_params() == hasher.get_params()
    assert not copy.is_fitted  # clone copies parameters, not what was learned
    assert copy.set_params(n_bits=20) is copy and copy.n_bits == 20 and hasher.n_bits == N_BITS
    with pytest.raises(InvalidInputError, match="has no parameter 'bogus'"):
        copy.set_params(bogus=1)
    assert repr(hasher).startswith(f"{type(hasher).__name__}(n_bits={N_BITS}")


def test_a_deep_model_file_with_an_absurd_image_shape_is_refused(digits_small, tmp_path):
    from safetensors.numpy import load as load_safetensors

    from hashlearn.hashers.model_format import write_model_file

    path = tmp_path / "dsh.safetensors"
    make("dsh").fit(*digits_small).save(path)
    data = path.read_bytes()
    meta = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])["__metadata__"]
    state = json.loads(meta["state"])
    state["image_shape"] = [100_000, 100_000, 1]  # the network would be built for it first
    meta["state"] = json.dumps(state)
    write_model_file(path, meta, load_safetensors(data))  # signed: only the value is wrong
    with pytest.raises(FileFormatError, match="saved image shape is unreadable"):
        load_hasher(path)


def test_a_model_file_with_an_absurd_image_shape_entry_is_refused(digits_small, tmp_path):
    from safetensors.numpy import load as load_safetensors

    from hashlearn.hashers.model_format import write_model_file

    path = tmp_path / "lsh.safetensors"
    make("lsh").fit(*digits_small).save(path)  # fitted on 8x8 images: the entry is there
    data = path.read_bytes()
    meta = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])["__metadata__"]
    assert json.loads(meta["image_shape"]) == [8, 8, 1]
    for bad in ([10**6, 10**6, 1], [8, 8, 2], [8, 0, 1], "x"):
        meta["image_shape"] = json.dumps(bad)
        write_model_file(path, meta, load_safetensors(data))  # signed: only the value is wrong
        with pytest.raises(FileFormatError, match="unreadable image shape"):
            load_hasher(path)
