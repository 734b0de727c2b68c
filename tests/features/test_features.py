"""Feature extractors: registry, shapes, hand checks against references, persistence, errors."""

import json

import numpy as np
import pytest
from safetensors.numpy import load as load_safetensors
from safetensors.numpy import save as save_safetensors
from skimage.feature import hog as skimage_hog

import hashlearn.features.base
from hashlearn import create_hasher
from hashlearn.datasets import default_split, load_dataset
from hashlearn.evaluation import evaluate_codes
from hashlearn.exceptions import InvalidInputError, NotFittedError, UnknownNameError
from hashlearn.features import (
    FeaturePipeline,
    create_features,
    describe_features,
    features_from_dict,
    features_to_dict,
    list_features,
)
from hashlearn.features.gist import block_means, gabor_transfer_functions, prefilter
from hashlearn.features.normalize import L2Center

NAMES = ["gist", "hog", "l2-center", "pixels"]
# Output width for 28 x 28 grey and 32 x 32 colour images.
DIMS = {
    "pixels": (784, 3072),
    "l2-center": (784, 3072),
    "hog": (324, 324),  # 4 x 4 cells -> 3 x 3 blocks of 2 x 2 cells x 9 bins
    "gist": (512, 512),  # 4 scales x 8 orientations x 4 x 4 blocks
}


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist5k")


@pytest.fixture(scope="module")
def digits(mnist):
    """200 real 28 x 28 digits, 20 per class."""
    idx = np.concatenate([np.flatnonzero(mnist.y == c)[:20] for c in range(10)])
    return mnist.X[idx], mnist.y[idx]


@pytest.fixture(scope="module")
def colour():
    return np.random.default_rng(0).random((40, 32, 32, 3), dtype=np.float32)


@pytest.fixture(scope="module")
def mnist_hog(mnist):
    """HOG of all 5,000 mnist5k images (the largest input of this file)."""
    return create_features("hog").fit(mnist.X[:10]).transform(mnist.X)


# -- registry -------------------------------------------------------------------------------------


def test_list_features_describes_every_name():
    # "timm" and "torchvision" (pretrained networks) are tested in test_embeddings.py
    assert list_features() == sorted([*NAMES, "timm", "torchvision"])
    listed = describe_features()
    assert sorted(listed) == list_features()
    assert all(isinstance(text, str) and text for text in listed.values())


def test_unknown_names_and_parameters_fail_clearly():
    with pytest.raises(
        UnknownNameError, match="available: gist, hog, l2-center, pixels, timm, torchvision"
    ):
        create_features("sift")
    with pytest.raises(UnknownNameError, match="'nope'"):
        create_features("gist", postprocess="nope")
    with pytest.raises(InvalidInputError, match="no parameter"):
        create_features("hog", n_bins=9)
    with pytest.raises(InvalidInputError, match="reads images"):
        create_features("hog", postprocess="gist")


# -- shapes and dtypes ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_dtypes_on_digits_and_colour_images(name, digits, colour):
    X, _ = digits
    extractor = create_features(name)
    assert extractor.fit(X) is extractor
    features = extractor.transform(X)
    assert features.dtype == np.float32 and features.shape == (len(X), DIMS[name][0])
    assert np.isfinite(features).all()
    features = create_features(name).fit_transform(colour)
    assert features.dtype == np.float32 and features.shape == (len(colour), DIMS[name][1])


def test_hog_on_all_of_mnist5k(mnist, mnist_hog):
    assert mnist_hog.dtype == np.float32 and mnist_hog.shape == (len(mnist.X), 324)
    assert np.isfinite(mnist_hog).all()


def test_pixels_flattens_and_accepts_feature_arrays(colour):
    np.testing.assert_array_equal(
        create_features("pixels").fit_transform(colour), colour.reshape(len(colour), -1)
    )
    flat = np.arange(12, dtype=np.float64).reshape(3, 4)
    out = create_features("pixels").fit_transform(flat)
    assert out.dtype == np.float32 and out.shape == (3, 4)


@pytest.mark.parametrize("name", ["gist", "hog"])
def test_batching_does_not_change_the_result(name, digits):
    X, _ = digits
    whole = create_features(name, batch_size=1000).fit_transform(X[:30])
    pieces = create_features(name, batch_size=7).fit_transform(X[:30])
    np.testing.assert_allclose(pieces, whole, rtol=1e-5, atol=1e-6)


def test_progress_bar_only_when_verbose_and_large(digits, capsys, monkeypatch):
    X, _ = digits
    monkeypatch.setattr(hashlearn.features.base, "PROGRESS_MIN_SAMPLES", 50)
    create_features("hog", verbose=False).fit_transform(X)
    assert "hog" not in capsys.readouterr().err
    create_features("hog", verbose=True).fit_transform(X[:50])  # not more than the threshold
    assert "hog" not in capsys.readouterr().err
    create_features("hog", verbose=True).fit_transform(X)
    assert "hog" in capsys.readouterr().err


# -- HOG ------------------------------------------------------------------------------------------


def test_hog_equals_skimage_image_by_image(digits, colour):
    X, _ = digits
    ours = create_features("hog", batch_size=4).fit_transform(X[:10])
    for i in (0, 5, 9):  # first batch, a later batch, the last short batch
        expected = skimage_hog(
            X[i],
            orientations=9,
            pixels_per_cell=(7, 7),
            cells_per_block=(2, 2),
            block_norm="L2-Hys",
        )
        np.testing.assert_allclose(ours[i], expected, rtol=1e-5, atol=1e-6)
    ours = create_features("hog", pixels_per_cell=(4, 8), cells_per_block=3, orientations=6)
    features = ours.fit_transform(colour[:3])
    expected = skimage_hog(
        colour[2],
        orientations=6,
        pixels_per_cell=(4, 8),
        cells_per_block=(3, 3),
        channel_axis=-1,
    )
    assert features.shape == (3, expected.size)
    np.testing.assert_allclose(features[2], expected, rtol=1e-5, atol=1e-6)


def test_hog_rejects_bad_parameters_and_too_small_images(digits):
    X, _ = digits
    with pytest.raises(InvalidInputError, match="block_norm"):
        create_features("hog", block_norm="L3").fit(X)
    with pytest.raises(InvalidInputError, match="orientations"):
        create_features("hog", orientations=0).fit(X)
    with pytest.raises(InvalidInputError, match="fewer than one block"):
        create_features("hog", pixels_per_cell=20).fit(X)


# -- GIST -----------------------------------------------------------------------------------------


def test_gist_dimension_follows_orientations_and_blocks(digits):
    X, _ = digits
    assert create_features("gist").fit(X).n_features_ == 4 * 8 * 16
    gist = create_features("gist", orientations_per_scale=[8, 8, 4], n_blocks=2, image_size=24)
    assert gist.fit_transform(X[:5]).shape == (5, 20 * 4)


def test_gabor_transfer_functions_peak_at_their_centre_frequency():
    bank = gabor_transfer_functions(100, (4, 4))  # frequencies are index / 100 cycles per pixel
    assert bank.shape == (8, 100, 100) and bank.dtype == np.float32
    # scale 0 (0.3 cycles/pixel), orientation 0: peak on the positive fx axis, nothing opposite
    assert bank[0, 0, 30] == pytest.approx(1.0)
    assert bank[0, 0, 70] < 1e-6  # fx = -0.3
    # orientation k = 2 of 4 is turned by -pi/2: peak at fy = -0.3 (row index 70)
    assert bank[2, 70, 0] == pytest.approx(1.0)
    # scale 1 peaks at 0.3 / 1.85 cycles/pixel; radially exp(-3.5 (f / f_1 - 1)^2)
    f1 = 0.3 / 1.85
    assert bank[4, 0, 16] == pytest.approx(np.exp(-3.5 * (0.16 / f1 - 1) ** 2), rel=1e-5)
    # angular fall-off, sigma = 16 * 4^2 / 32^2 = 0.25; 45 degrees off: exp(-2 pi 0.25 (pi/4)^2)
    expected = np.exp(-3.5 * (np.hypot(0.21, 0.21) / 0.3 - 1) ** 2 - 0.5 * np.pi * (np.pi / 4) ** 2)
    assert bank[0, 21, 21] == pytest.approx(expected, rel=1e-5)


def test_prefilter_removes_constants_and_block_means_average():
    flat = np.full((2, 16, 16), 100.0)
    np.testing.assert_allclose(prefilter(flat, 4.0), 0.0, atol=1e-9)
    images = np.arange(2 * 6 * 6, dtype=np.float64).reshape(2, 6, 6)
    means = block_means(images, 3)
    assert means.shape == (2, 3, 3)
    assert means[1, 2, 0] == pytest.approx(images[1, 4:6, 0:2].mean())


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"image_size": 10**6}, "image_size must be <= 512"),
        ({"orientations_per_scale": [8] * 9}, "9 scales; at most 8"),
        ({"orientations_per_scale": [40]}, r"orientations_per_scale\[0\] must be <= 32"),
        ({"orientations_per_scale": [32, 32, 8]}, "72 filters; at most 64"),
        ({"boundary_extension": 513}, "boundary_extension must be <= 512"),
    ],
)
def test_gist_refuses_filter_banks_too_large_to_build(digits, params, match):
    """Parameters come from model files too: absurd ones fail before any memory is taken."""
    with pytest.raises(InvalidInputError, match=match):
        create_features("gist", **params).fit(digits[0][:2])


def test_gist_is_invariant_to_brightness_and_contrast(digits, colour):
    X, _ = digits
    gist = create_features("gist").fit(X[:20])
    base = gist.transform(X[:20])
    np.testing.assert_allclose(gist.transform(X[:20] * 0.7 + 0.2), base, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(gist.transform(X[:20] + 0.5), base, rtol=1e-3, atol=1e-4)
    assert not np.allclose(gist.transform(X[20:40]), base, atol=1e-2)
    # colour is averaged to grey first
    grey = colour[:5].mean(axis=3)
    np.testing.assert_allclose(
        create_features("gist").fit_transform(colour[:5]),
        create_features("gist").fit_transform(grey),
        rtol=1e-4,
        atol=1e-5,
    )


def test_gist_default_padding_is_a_seamless_mirror_extension(digits):
    """Padding 32 pixels by 16 makes one period of the mirror extension, 80 makes three: same
    filtered values on the image, so the same descriptor."""
    X, _ = digits
    default = create_features("gist").fit_transform(X[:10])
    three_periods = create_features("gist", boundary_extension=80).fit_transform(X[:10])
    np.testing.assert_allclose(default, three_periods, rtol=1e-4, atol=1e-6)


def test_gist_of_a_constant_image_is_zero():
    features = create_features("gist").fit_transform(np.full((2, 32, 32), 0.3, np.float32))
    np.testing.assert_array_equal(features, 0.0)


# -- l2-center and pipelines ----------------------------------------------------------------------


def test_l2_center_normalises_rows_and_subtracts_the_training_mean():
    rng = np.random.default_rng(1)
    train = rng.normal(size=(50, 6)) * rng.uniform(0.1, 10, size=(50, 1))
    new = rng.normal(size=(7, 6))
    new[3] = 0.0
    l2c = create_features("l2-center").fit(train)
    unit = train / np.linalg.norm(train, axis=1, keepdims=True)
    np.testing.assert_allclose(l2c.mean_, unit.mean(axis=0), rtol=1e-5, atol=1e-6)
    out = l2c.transform(new)
    assert out.dtype == np.float32
    rows = out + l2c.mean_
    norms = np.linalg.norm(rows, axis=1)
    np.testing.assert_allclose(np.delete(norms, 3), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(rows[3], 0.0)  # a zero row stays zero before centring
    np.testing.assert_allclose(l2c.fit_transform(train).mean(axis=0), 0.0, atol=1e-6)


def test_postprocess_builds_a_pipeline_equal_to_the_steps_by_hand(digits):
    X, _ = digits
    pipeline = create_features("hog", postprocess="l2-center")
    assert isinstance(pipeline, FeaturePipeline)
    out = pipeline.fit_transform(X)
    by_hand = L2Center().fit_transform(create_features("hog").fit_transform(X))
    np.testing.assert_allclose(out, by_hand, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(pipeline.fit(X).transform(X[:9]), by_hand[:9], atol=1e-7)
    assert pipeline.get_config() == {
        "name": "pipeline",
        "steps": [create_features("hog").get_config(), {"name": "l2-center", "params": {}}],
    }
    with pytest.raises(InvalidInputError, match="only the first step may read images"):
        FeaturePipeline([L2Center(), create_features("hog")]).fit(X)
    with pytest.raises(InvalidInputError, match="non-empty list"):
        FeaturePipeline([]).fit(X)


# -- persistence ----------------------------------------------------------------------------------


def _through_safetensors(data):
    """Store features_to_dict output as safetensors + JSON metadata (no pickle), read it back."""
    meta = json.dumps({"config": data["config"], "state": data["state"]})
    payload = save_safetensors(data["arrays"], metadata={"features": meta})
    assert not payload.startswith(b"\x80")
    header_len = int.from_bytes(payload[:8], "little")
    meta = json.loads(json.loads(payload[8 : 8 + header_len])["__metadata__"]["features"])
    return {**meta, "arrays": load_safetensors(payload)}


@pytest.mark.parametrize(
    "build",
    [
        lambda: create_features("pixels"),
        lambda: create_features("hog", pixels_per_cell=(4, 4), cells_per_block=3),
        lambda: create_features("gist", orientations_per_scale=(8, 4), boundary_extension=5),
        lambda: create_features("l2-center"),
        lambda: create_features("gist", postprocess=["l2-center", "l2-center"]),
    ],
    ids=["pixels", "hog", "gist", "l2-center", "pipeline"],
)
def test_round_trip_through_json_and_safetensors(build, digits):
    X, _ = digits
    extractor = build().fit(X[:40])
    data = features_to_dict(extractor)
    for part in ("config", "state"):  # JSON-able as they are
        assert json.loads(json.dumps(data[part])) == data[part]
    loaded = features_from_dict(_through_safetensors(data))
    assert type(loaded) is type(extractor)
    assert loaded.get_config() == extractor.get_config()
    np.testing.assert_array_equal(loaded.transform(X[40:60]), extractor.transform(X[40:60]))


def test_saving_or_transforming_before_fit_fails_clearly(digits):
    X, _ = digits
    for name in NAMES:
        with pytest.raises(NotFittedError, match="not fitted yet"):
            create_features(name).transform(X)
        with pytest.raises(NotFittedError):
            features_to_dict(create_features(name))
    with pytest.raises(InvalidInputError, match="'config', 'state' and 'arrays'"):
        features_from_dict({"config": {"name": "hog"}})


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_raises_invalid_input_error(name, digits):
    X, _ = digits
    X = X[:10]
    extractor = create_features(name)
    with pytest.raises(InvalidInputError):
        extractor.fit(np.zeros(784, np.float32))  # 1-D
    with pytest.raises(InvalidInputError, match="empty"):
        extractor.fit(X[:0])
    with pytest.raises(InvalidInputError):
        extractor.fit(np.zeros((3, 2, 2, 2, 2), np.float32))  # 5-D
    bad = X.copy()
    bad[4, 3, 3] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        extractor.fit(bad)
    extractor.fit(X)
    with pytest.raises(InvalidInputError, match="NaN"):
        extractor.transform(bad)
    with pytest.raises(InvalidInputError, match="fitted on"):
        extractor.transform(X[:, :20, :20])  # wrong shape after fit
    with pytest.raises(InvalidInputError):
        extractor.transform(np.array([["a"] * 3] * 2))  # not numbers


@pytest.mark.parametrize("name", ["gist", "hog"])
def test_image_extractors_reject_flat_features(name):
    with pytest.raises(InvalidInputError, match="image array"):
        create_features(name).fit(np.zeros((5, 784), np.float32))


# -- retrieval ------------------------------------------------------------------------------------


def test_lsh_on_hog_beats_lsh_on_pixels(mnist, mnist_hog):
    """Measured mAP at 32 bits, seeds 0-4, default split: pixels 0.265 (mean), HOG 0.314."""
    split = default_split(mnist, random_state=0)
    pixels = mnist.X.reshape(len(mnist.X), -1)

    def mean_map(features):
        maps = []
        for seed in range(5):
            lsh = create_hasher("lsh", n_bits=32, random_state=seed)
            lsh.fit(features[split.train.indices])
            maps.append(
                evaluate_codes(
                    lsh.encode(features[split.query.indices]),
                    split.query.y,
                    lsh.encode(features[split.database.indices]),
                    split.database.y,
                )["mAP"]
            )
        return np.mean(maps)

    hog_map, pixel_map = mean_map(mnist_hog), mean_map(pixels)
    assert hog_map > pixel_map + 0.02, (hog_map, pixel_map)
