"""FeatureHasher: a feature extractor and a hasher fitted, saved, loaded and served as one model."""

import json

import numpy as np
import pytest
from safetensors.numpy import load as load_safetensors

from _serve_support import decoded, png_bytes
from hashlearn import create_hasher, load_dataset, load_hasher
from hashlearn.exceptions import FileFormatError, InvalidInputError, NotFittedError
from hashlearn.features import create_features
from hashlearn.hashers import FeatureHasher
from hashlearn.hashers.model_format import write_model_file


def metadata_of(path):
    data = path.read_bytes()
    return json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])["__metadata__"]


def test_fit_equals_extracting_then_hashing(digits_small):
    X, y = digits_small
    model = FeatureHasher(
        create_features("hog+l2-center"), create_hasher("itq", n_bits=16, random_state=0)
    )
    assert model.fit(X, y) is model
    extractor = create_features("hog+l2-center").fit(X)
    hasher = create_hasher("itq", n_bits=16, random_state=0).fit(extractor.transform(X))
    np.testing.assert_array_equal(model.encode(X), hasher.encode(extractor.transform(X)))
    assert (model.name, model.n_bits, model.input_kind) == ("itq", 16, "images")
    assert model.image_shape_ == (8, 8, 1) and not model.supervised


def test_save_and_load_keep_the_extractor(digits_small, tmp_path):
    X, y = digits_small
    extractor = create_features("hog+l2-center").fit(X)
    hasher = create_hasher("ksh", n_bits=12, random_state=0, n_anchors=50)
    hasher.fit(extractor.transform(X), y)
    model = FeatureHasher(extractor, hasher)  # fitted parts: ready without a fit
    path = tmp_path / "model.safetensors"
    model.save(path)
    meta = metadata_of(path)
    assert meta["method"] == "ksh" and meta["format_version"] == "2"
    assert json.loads(meta["features"])["config"]["steps"][0]["name"] == "hog"
    tensors = load_safetensors(path.read_bytes())
    assert "features.steps.1.mean" in tensors  # the l2-center step's training mean
    loaded = load_hasher(path)
    assert isinstance(loaded, FeatureHasher) and loaded.image_shape_ == (8, 8, 1)
    assert loaded.features.get_config() == extractor.get_config()
    np.testing.assert_array_equal(loaded.encode(X), model.encode(X))
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]


def test_a_hasher_alone_is_still_a_version_1_file(digits_small, tmp_path):
    X, _ = digits_small
    create_hasher("lsh", n_bits=8, random_state=0).fit(X).save(tmp_path / "lsh.safetensors")
    meta = metadata_of(tmp_path / "lsh.safetensors")
    assert meta["format_version"] == "1" and "features" not in meta
    assert not isinstance(load_hasher(tmp_path / "lsh.safetensors"), FeatureHasher)


def test_bad_parts_and_unfitted_use_are_refused(digits_small):
    X, _ = digits_small
    deep = FeatureHasher(create_features("hog"), create_hasher("dsh", n_bits=8))
    with pytest.raises(InvalidInputError, match="deep hashers learn their own features"):
        deep.fit(X)
    with pytest.raises(InvalidInputError, match="features must be a feature extractor"):
        FeatureHasher("hog", create_hasher("lsh", n_bits=8)).fit(X)
    with pytest.raises(InvalidInputError, match="hasher must be a hasher"):
        FeatureHasher(create_features("hog"), "lsh").fit(X)
    with pytest.raises(InvalidInputError, match="features must be a feature extractor"):
        FeatureHasher("hog", create_hasher("lsh", n_bits=8)).encode(X)  # not an AttributeError
    with pytest.raises(NotFittedError, match="not fitted yet"):
        FeatureHasher(create_features("hog"), create_hasher("lsh", n_bits=8)).encode(X)
    model = FeatureHasher(create_features("hog"), create_hasher("lsh", n_bits=8)).fit(X)
    with pytest.raises(InvalidInputError, match="images of shape"):
        model.encode(X.reshape(len(X), 4, 16))


def test_an_extractor_this_version_cannot_rebuild_is_a_file_format_error(digits_small, tmp_path):
    X, _ = digits_small
    path = tmp_path / "model.safetensors"
    FeatureHasher(create_features("hog"), create_hasher("lsh", n_bits=8, random_state=0)).fit(
        X
    ).save(path)
    meta, tensors = metadata_of(path), load_safetensors(path.read_bytes())
    saved = json.loads(meta["features"])
    saved["config"]["name"] = "sift"
    meta["features"] = json.dumps(saved)
    write_model_file(path, meta, tensors)  # signed again: only the value is wrong
    with pytest.raises(FileFormatError, match=r"cannot rebuild.*unknown feature extractor 'sift'"):
        load_hasher(path)
    meta["format_version"] = "3"
    write_model_file(path, meta, tensors)
    with pytest.raises(FileFormatError, match="newer than this hashlearn reads"):
        load_hasher(path)


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_the_service_encodes_image_files_with_the_models_extractor(digits_small, tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from hashlearn import LinearIndex
    from hashlearn.serve import create_app, open_service

    X, _ = digits_small
    model = FeatureHasher(create_features("hog"), create_hasher("itq", n_bits=16, random_state=0))
    model.fit(X).save(tmp_path / "model.safetensors")
    index = LinearIndex(16)
    index.add(model.encode(X))
    index.save(tmp_path / "db.hlindex")
    service = open_service(
        tmp_path / "model.safetensors", tmp_path / "db.hlindex", data_dir=tmp_path / "data"
    )
    try:
        png = png_bytes(X[5])
        response = TestClient(create_app(service)).post(
            "/search?k=5", files={"image": ("q.png", png, "image/png")}
        )
        assert response.status_code == 200, response.text
        D, I = index.search(model.encode(decoded(png)[None]), 5)
        assert [(h["id"], h["distance"]) for h in response.json()["hits"]] == list(
            zip(I[0].tolist(), D[0].tolist())
        )
        assert service.stats()["image_shape"] == [8, 8, 1]
    finally:
        service.close()


def test_cli_fit_with_features_writes_a_model_that_encodes_images(digits_small, tmp_path, capsys):
    from hashlearn.cli import main

    X, y = digits_small
    train, model_path = str(tmp_path / "train.npz"), str(tmp_path / "itq.safetensors")
    np.savez(train, X=X, y=y)
    argv = ["fit", "--method", "itq", "--bits", "16", "--features", "hog+l2-center", "--seed", "0"]
    assert main([*argv, "--data", train, "--out", model_path]) == 0
    codes = str(tmp_path / "codes.npy")
    assert main(["encode", "--model", model_path, "--data", train, "--out", codes]) == 0
    expected = FeatureHasher(
        create_features("hog+l2-center"), create_hasher("itq", n_bits=16, random_state=0)
    ).fit_encode(X)
    np.testing.assert_array_equal(np.load(codes), expected)
    argv = ["fit", "--method", "dsh", "--features", "hog", "--data", train, "--out", codes]
    assert main(argv) == 2
    assert "deep hashers learn their own features" in capsys.readouterr().err


def test_benchmark_saves_shallow_models_with_their_extractor(tmp_path):
    from hashlearn.experiments import make_config, run_config
    from hashlearn.report.model import encode_split

    config = make_config(
        "digits", ["lsh"], [16], 1, features="hog", models_dir=str(tmp_path / "models")
    )
    (row,) = run_config(config, verbose=False)
    model = load_hasher(row.model_path)
    assert isinstance(model, FeatureHasher) and model.image_shape_ == (8, 8, 1)
    encoded = encode_split(model, "digits", 0)  # the report reads the images through it
    data = load_dataset("digits")
    assert encoded.database_codes.shape[1] == 2 and len(encoded.query) + len(
        encoded.database
    ) <= len(data.X)


def test_nested_params_reach_the_extractor_and_the_hasher():
    from sklearn.base import clone

    model = FeatureHasher(create_features("hog"), create_hasher("itq", n_bits=16))
    params = model.get_params()
    assert params["hasher__n_bits"] == 16 and params["features__orientations"] == 9
    assert set(model.get_params(deep=False)) == {"features", "hasher"}
    model.set_params(hasher__n_bits=24, features__orientations=6)
    assert model.n_bits == 24 and model.features.orientations == 6
    copy = clone(model)
    assert copy.hasher is not model.hasher and copy.get_params(deep=False).keys() == {
        "features",
        "hasher",
    }
    assert copy.get_params()["hasher__n_bits"] == 24
    with pytest.raises(InvalidInputError, match="ITQ has no parameter 'bogus'"):
        model.set_params(hasher__bogus=1)
    with pytest.raises(InvalidInputError, match="FeatureHasher has no parameter 'n_bits'"):
        model.set_params(n_bits=8)


def test_pixels_features_keep_the_image_shape_too(digits_small, tmp_path):
    X, _ = digits_small
    model = FeatureHasher(create_features("pixels+l2-center"), create_hasher("itq", n_bits=8))
    assert model.fit(X).image_shape_ == (8, 8, 1)
    model.save(tmp_path / "m.safetensors")
    loaded = load_hasher(tmp_path / "m.safetensors")
    assert loaded.image_shape_ == (8, 8, 1)
    np.testing.assert_array_equal(loaded.encode(X), model.encode(X))
    flat = FeatureHasher(create_features("pixels"), create_hasher("itq", n_bits=8))
    assert flat.fit(X.reshape(len(X), -1)).image_shape_ is None  # vectors: no images known
