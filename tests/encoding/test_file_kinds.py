"""Files told apart by their first bytes, so that the library (and the service on top of it) names
a wrong file by what it is; and query codes of another width named with both widths."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from hashlearn import create_hasher
from hashlearn._io import file_kind, read_arrays
from hashlearn.encoding import write_codes
from hashlearn.exceptions import CodeFormatError, FileFormatError, InvalidInputError
from hashlearn.hashers import load_hasher
from hashlearn.index import LinearIndex, MultiTableIndex, create_index, load_index


@pytest.fixture
def written(tmp_path, digits_small):
    X, _ = digits_small
    model = create_hasher("lsh", n_bits=12, random_state=0).fit(X)
    model.save(tmp_path / "m.safetensors")
    codes = model.encode(X)
    np.save(tmp_path / "c.npy", codes)
    write_codes(tmp_path / "c.npz", codes, 12)
    index = LinearIndex(12)
    index.add(codes)
    index.save(tmp_path / "i.hlindex")
    picture = io.BytesIO()
    Image.fromarray((X[0].reshape(8, 8) * 16).astype(np.uint8)).save(picture, format="JPEG")
    (tmp_path / "p.jpg").write_bytes(picture.getvalue())
    (tmp_path / "s.json").write_text('{"format": "hashlearn-shards"}')
    (tmp_path / "e").write_bytes(b"")
    return tmp_path, codes


def test_file_kinds(written):
    d, _ = written
    kinds = {name: file_kind(d / name) for name in ("m.safetensors", "c.npy", "c.npz")}
    kinds.update({name: file_kind(d / name) for name in ("i.hlindex", "p.jpg", "s.json", "e")})
    assert kinds == {
        "m.safetensors": "safetensors",
        "c.npy": "npy",
        "c.npz": "npz",
        "i.hlindex": "index",
        "p.jpg": "jpeg",
        "s.json": "json",
        "e": "empty",
    }


@pytest.mark.parametrize(
    ("name", "what"),
    [
        ("i.hlindex", "a hashlearn index"),
        ("c.npz", "an .npz array file"),
        ("p.jpg", "a JPEG image"),
        ("s.json", "a JSON file"),
    ],
)
def test_a_model_file_that_is_something_else_is_named(written, name, what):
    d, _ = written
    with pytest.raises(FileFormatError, match=f"this is {what}, not a hashlearn model"):
        load_hasher(d / name)


def test_arrays_from_a_file_that_is_no_array_file(written):
    d, _ = written
    with pytest.raises(
        InvalidInputError, match=r"not an \.npz or \.npy array file but a JPEG image"
    ):
        read_arrays(d / "p.jpg")
    with pytest.raises(InvalidInputError, match=r"absent\.npy: no such file"):
        read_arrays(d / "absent.npy")
    with pytest.raises(FileNotFoundError):  # the loaders of models and indexes, as open() does
        load_index(d / "absent.hlindex")


def test_queries_of_another_width_name_both(written):
    d, codes = written
    index = load_index(d / "i.hlindex")
    wide = create_hasher("lsh", n_bits=16, random_state=0).fit(
        np.random.default_rng(0).random((50, 64))
    )
    queries = wide.encode(np.random.default_rng(1).random((20, 64)))
    with pytest.raises(
        CodeFormatError, match="16-bit queries, 12-bit index: the queries have bits"
    ):
        index.search(queries, 1)
    with pytest.raises(CodeFormatError, match="3-byte queries, 12-bit index"):
        index.range_search(np.zeros((1, 3), np.uint8), 1)
    D, _ = index.search(codes[:3], 1)
    assert (D[:, 0] == 0).all()


def test_index_parameters_are_named():
    with pytest.raises(
        InvalidInputError, match="the mih index has no parameter m: it takes n_substrings"
    ):
        create_index("mih", 64, m=99)
    with pytest.raises(
        InvalidInputError, match="hash-table index has no parameter n_tables: it takes key_bits"
    ):
        create_index("hash-table", 64, n_tables=2)
    assert MultiTableIndex.parameter_names() == ("n_tables",)
    assert LinearIndex.parameter_names() == ()
    assert create_index("mih", 64, n_substrings=4).ntotal == 0
