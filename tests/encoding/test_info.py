"""describe_file: what a model, index or codes file holds, as data and as the lines of `info`."""

import numpy as np
import pytest

from hashlearn import create_hasher
from hashlearn.encoding import (
    ArraysFileInfo,
    IndexFileInfo,
    ModelFileInfo,
    describe_file,
    model_input,
    write_codes,
)
from hashlearn.exceptions import FileFormatError, InvalidInputError
from hashlearn.features import create_features
from hashlearn.hashers import FeatureHasher
from hashlearn.index import create_index


def test_models_indexes_and_arrays_are_described(digits_small, tmp_path):
    X, _ = digits_small
    model = create_hasher("lsh", n_bits=12, random_state=0).fit(X)
    model.save(tmp_path / "m.safetensors")
    codes = model.encode(X)
    write_codes(tmp_path / "c.npz", codes, 12)
    index = create_index("mih", 12)
    index.add(codes)
    index.save(tmp_path / "i.hlindex")

    info = describe_file(tmp_path / "m.safetensors")
    assert isinstance(info, ModelFileInfo)
    assert (info.method, info.n_bits, info.features) == ("lsh", 12, None)
    assert info.params["random_state"] == 0 and info.format_version is not None
    assert info.input == "images 8x8x1, flattened to 64 values" == model_input(model)
    assert info.lines()[0].startswith(f"{tmp_path / 'm.safetensors'}: lsh model, 12 bits (")

    info = describe_file(tmp_path / "i.hlindex")
    assert isinstance(info, IndexFileInfo)
    assert (info.index_class, info.ntotal, info.n_bits) == ("MultiIndexHashingIndex", 300, 12)
    assert info.lines()[1].startswith("  300 items, 12 bits, ")

    info = describe_file(tmp_path / "c.npz")
    assert isinstance(info, ArraysFileInfo) and info.size > 0
    assert str(info.arrays["codes"]) == "uint8 (300, 2)" and info.arrays["n_bits"].value == 12
    assert info.lines()[1:] == ["  codes: uint8 (300, 2)", "  n_bits: 12"]


def test_feature_models_and_files_hashlearn_did_not_write(digits_small, tmp_path):
    X, _ = digits_small
    hasher = create_hasher("itq", n_bits=8, random_state=0)
    model = FeatureHasher(create_features("hog"), hasher).fit(X)
    assert model_input(model) == "images 8x8x1, through the features below"
    assert model_input(create_hasher("lsh", 8).fit(X.reshape(len(X), -1))).startswith("feature")
    model.save(tmp_path / "f.safetensors")
    info = describe_file(tmp_path / "f.safetensors")
    assert info.method == "itq" and info.features["name"] == "hog"
    assert info.lines()[-1].startswith('  features: {"name": "hog"')
    (tmp_path / "notes.txt").write_text("hello, world")
    with pytest.raises(FileFormatError, match="none of what hashlearn writes"):
        describe_file(tmp_path / "notes.txt")
    with pytest.raises(InvalidInputError, match=r"missing\.npz: no such file"):
        describe_file(tmp_path / "missing.npz")
    np.save(tmp_path / "a.npy", np.zeros(3))
    assert describe_file(tmp_path / "a.npy").lines()[1] == "  (array): float64 (3,)"
