"""What a model file may hold, checked when it is read (issue 18, items 4, 7 and 8).

Its JSON header is read by the bounded reader; its metadata are covered by a checksum, beside the
tensors' one; every value is checked on load (enumerated parameters, image shapes, known keys,
tensor shapes); a deep network is compared with its configuration before any memory is taken
for it. Files written before the metadata checksum still load, and ``info`` says what was
verified.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from safetensors.numpy import load as load_safetensors
from safetensors.numpy import save as save_safetensors

from hashlearn import create_hasher, load_hasher
from hashlearn.encoding import describe_file
from hashlearn.exceptions import FileFormatError
from hashlearn.features import create_features
from hashlearn.hashers import FeatureHasher
from hashlearn.hashers.model_format import METADATA_DIGEST_KEY, write_model_file

FIXTURES = pathlib.Path(__file__).parents[1] / "fixtures" / "v0_1_0"
SRC = pathlib.Path(__file__).parents[2] / "src"


def header_of(path):
    data = pathlib.Path(path).read_bytes()
    return json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])


def with_header_text(path, out, edit):
    """``path`` with its JSON header text replaced by ``edit(text)`` (tensors kept as they are)."""
    data = pathlib.Path(path).read_bytes()
    n = int.from_bytes(data[:8], "little")
    text = edit(data[8 : 8 + n])
    text += b" " * (-len(text) % 8)
    pathlib.Path(out).write_bytes(len(text).to_bytes(8, "little") + text + data[8 + n :])
    return out


def rewritten(path, out, edit, *, sign=True):
    """``path`` with ``edit(metadata, tensors)`` applied: signed again (``sign``: only the value
    is wrong, as a crafted file or one of an older hashlearn would be) or not (a damaged file)."""
    data = pathlib.Path(path).read_bytes()
    metadata = header_of(path)["__metadata__"]
    tensors = load_safetensors(data)
    edit(metadata, tensors)
    if sign:
        write_model_file(out, metadata, tensors)
    else:
        pathlib.Path(out).write_bytes(save_safetensors(tensors, metadata=metadata))
    return out


def unsigned(metadata, tensors):
    """As a file written before metadata were checksummed."""
    metadata.pop(METADATA_DIGEST_KEY)


def edit_json(key, change):
    def edit(metadata, tensors):
        value = json.loads(metadata[key])
        change(value)
        metadata[key] = json.dumps(value)

    return edit


@pytest.fixture(scope="module")
def grh(digits_small, tmp_path_factory):
    X, y = digits_small
    path = tmp_path_factory.mktemp("grh") / "grh.safetensors"
    create_hasher("grh", n_bits=16, random_state=0).fit(X.reshape(len(X), -1), y).save(path)
    return path


@pytest.fixture(scope="module")
def lsh(digits_small, tmp_path_factory):
    X, _ = digits_small
    path = tmp_path_factory.mktemp("lsh") / "lsh.safetensors"
    create_hasher("lsh", n_bits=16, random_state=0).fit(X).save(path)  # images: 8x8x1 kept
    return path


@pytest.fixture(scope="module")
def dsh(digits_small, tmp_path_factory):
    X, y = digits_small
    path = tmp_path_factory.mktemp("dsh") / "dsh.safetensors"
    model = create_hasher("dsh", n_bits=12, epochs=1, random_state=0, verbose=False, device="cpu")
    model.fit(X[:64], y[:64]).save(path)
    return path


@pytest.fixture(scope="module")
def hog_itq(digits_small, tmp_path_factory):
    X, _ = digits_small
    path = tmp_path_factory.mktemp("hog") / "hog_itq.safetensors"
    model = FeatureHasher(create_features("hog"), create_hasher("itq", n_bits=8, random_state=0))
    model.fit(X).save(path)
    return path


# ----------------------------------------------------------------------------- the JSON header


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda t: t.replace(b'"format_version":"1"', b'"format_version":NaN'), "holds NaN"),
        (lambda t: t.replace(b'"format_version":"1"', b'"x":Infinity'), "holds Infinity"),
        (lambda t: t.replace(b'"format_version":"1"', b'"x":' + b"9" * 5000), "5,000 digits"),
        (lambda t: b'{"x":' + b"[" * 50_000 + b"]" * 50_000 + b"," + t[1:], "nested deeper"),
        (lambda t: t.replace(b'"format_version"', b'"format_\\ud800version"'), "lone surrogate"),
        (lambda t: t.replace(b'"method"', b'"method":"lsh","method"'), "key 'method' twice"),
        (lambda t: t[:20] + b"\xff" + t[21:], "not valid UTF-8"),
    ],
    ids=["nan", "infinity", "5000-digit-int", "deep-nesting", "lone-surrogate", "repeated-key",
         "not-utf8"],
)  # fmt: skip
def test_a_crafted_json_header_is_refused_by_name(lsh, tmp_path, edit, words):
    """Item 8: NaN, Infinity, a 5,000-digit integer, deep nesting or a lone surrogate in a model
    header ended in a traceback (ValueError, RecursionError...) or loaded."""
    path = with_header_text(lsh, tmp_path / "m.safetensors", edit)
    with pytest.raises(FileFormatError, match=r"m\.safetensors") as caught:
        load_hasher(path)
    assert words in str(caught.value)


# ----------------------------------------------------------------------------- the checksum


def test_the_metadata_are_covered_by_the_checksum(grh, digits_small, tmp_path):
    """Item 4: a GRH preprocess value "l2-center" changed to "l2-centar" loaded (its arrays'
    checksum intact) and changed most codes; every flipped bit of the metadata is now refused."""
    assert METADATA_DIGEST_KEY in header_of(grh)["__metadata__"]
    path = with_header_text(
        grh, tmp_path / "m.safetensors", lambda t: t.replace(b"l2-center", b"l2-centar")
    )
    with pytest.raises(FileFormatError, match="metadata do not match their SHA-256 checksum"):
        load_hasher(path)
    data = grh.read_bytes()
    n = int.from_bytes(data[:8], "little")
    start = data.index(b'"__metadata__"')
    rng = np.random.default_rng(0)
    X = digits_small[0].reshape(len(digits_small[0]), -1)
    expected = load_hasher(grh).encode(X)
    for position in rng.choice(np.arange(start, 8 + n), 60, replace=False):
        flipped = bytearray(data)
        flipped[position] ^= 1 << int(rng.integers(8))
        (tmp_path / "f.safetensors").write_bytes(bytes(flipped))
        try:
            model = load_hasher(tmp_path / "f.safetensors")
        except FileFormatError:
            continue
        np.testing.assert_array_equal(model.encode(X), expected)  # e.g. a flipped space


def test_an_unknown_enumerated_value_is_refused_in_a_file_without_the_checksum(grh, tmp_path):
    """Item 4: "l2-centar" was read as centring without normalising."""
    path = rewritten(
        grh,
        tmp_path / "m.safetensors",
        lambda m, t: (
            unsigned(m, t),
            edit_json("params", lambda p: p.update(preprocess="l2-centar"))(m, t),
        ),
    )
    with pytest.raises(FileFormatError, match="unknown GRH preprocessing 'l2-centar'"):
        load_hasher(path)


def test_a_renamed_features_key_is_refused(hog_itq, tmp_path):
    """Item 4: a renamed ``features`` key turned a FeatureHasher into a bare ITQ model."""
    damaged = with_header_text(
        hog_itq, tmp_path / "a.safetensors", lambda t: t.replace(b'"features":', b'"featureS":')
    )
    with pytest.raises(FileFormatError, match=r"unknown key.*'featureS'"):
        load_hasher(damaged)

    def drop(metadata, tensors):
        unsigned(metadata, tensors)
        metadata.pop("features")

    with pytest.raises(FileFormatError, match="format version 2 with no feature extractor entry"):
        load_hasher(rewritten(hog_itq, tmp_path / "b.safetensors", drop))


def test_an_extractor_that_does_not_fit_its_hasher_is_refused(hog_itq, tmp_path):
    """An extractor entry consistent in itself (8 orientations: 288 HOG features per 8x8 image)
    beside an ITQ model of 324 features loaded, and failed at the first encoding."""

    def eight_orientations(features):
        features["config"]["params"]["orientations"] = 8
        features["state"]["n_features"] = 288

    path = rewritten(hog_itq, tmp_path / "a.safetensors", edit_json("features", eight_orientations))
    with pytest.raises(
        FileFormatError, match="gives 288 features per image, its 'itq' hasher takes 324"
    ):
        load_hasher(path)


def test_an_image_shape_that_does_not_fit_the_model_is_refused(lsh, dsh, tmp_path):
    """Item 4: a DSH image shape [29,28,1] (for 28x28) made the service resize uploads to it."""
    path = rewritten(
        lsh, tmp_path / "a.safetensors", lambda m, t: m.update(image_shape="[9, 8, 1]")
    )
    with pytest.raises(
        FileFormatError, match=r"image shape \(9, 8, 1\) has 72 values, but its arrays take 64"
    ):
        load_hasher(path)
    path = rewritten(
        dsh, tmp_path / "b.safetensors", lambda m, t: m.update(image_shape="[9, 8, 1]")
    )
    with pytest.raises(
        FileFormatError, match=r"image shape \(9, 8, 1\) is not the \(8, 8, 1\) its network"
    ):
        load_hasher(path)


@pytest.mark.parametrize(
    ("name", "shape", "words"),
    [
        ("projection", (64, 17), "give 17 values per sample, not the 16 bits"),
        ("projection", (65, 16), "image shape (8, 8, 1) has 64 values, but its arrays take 65"),
        ("mean", (63,), "do not fit together"),
    ],
)
def test_tensors_of_the_wrong_shape_are_refused_at_load(
    lsh, digits_small, tmp_path, name, shape, words
):
    """Item 4: tensors of the wrong shape loaded, then failed at encode with a raw numpy error
    (a 500 in the service)."""

    def edit(metadata, tensors):
        tensors[name] = np.zeros(shape, np.float32)

    path = rewritten(lsh, tmp_path / "m.safetensors", edit)
    with pytest.raises(FileFormatError) as caught:
        load_hasher(path)
    assert words in str(caught.value)


def test_a_deep_network_that_does_not_fit_its_configuration_is_refused(dsh, tmp_path):
    def edit(metadata, tensors):
        assert tensors["net.head.0.weight"].shape[0] == 128
        tensors["net.head.0.weight"] = np.zeros((128, 7), np.float32)

    with pytest.raises(FileFormatError, match=r"'head\.0\.weight' is \(128, 7\) in the file"):
        load_hasher(rewritten(dsh, tmp_path / "m.safetensors", edit))
    with pytest.raises(FileFormatError, match=r"channel_mean is float32 \(3,\)"):
        load_hasher(
            rewritten(
                dsh,
                tmp_path / "c.safetensors",
                lambda m, t: t.update(channel_mean=np.zeros(3, np.float32)),
            )
        )


# ------------------------------------------------------------------- sizes before allocation

_PEAKS = """
import resource, sys
from hashlearn import load_hasher
from hashlearn.exceptions import FileFormatError
import torch  # imported before the baseline is taken
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for path in sys.argv[1:]:
    try:
        load_hasher(path)
        outcome = "loaded"
    except FileFormatError as exc:
        outcome = f"refused: {exc}"
    growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024
    print(f"{growth}\t{outcome}")
"""

CRAFTED_SIZES = {
    "image-4096x4096x3": edit_json("state", lambda s: s.update(image_shape=[4096, 4096, 3])),
    "image-4096x4096x1": edit_json("state", lambda s: s.update(image_shape=[4096, 4096, 1])),
    "channels-4096": edit_json(
        "params", lambda p: p.update(backbone_params={"channels": [4096, 4096]})
    ),
    "hidden-1e12": edit_json("params", lambda p: p.update(backbone_params={"hidden": 10**12})),
}


def test_crafted_sizes_are_refused_before_memory_is_taken(dsh, tmp_path):
    """Item 7: image shape [4096,4096,3] in a 124 KB DSH file made `hashlearn info` peak at
    2.3 GB, backbone channels [4096,4096] at 3.6 GB; larger values ended in a torch
    RuntimeError. The files are signed again: only the checks of the values can refuse them.
    Each is loaded in turn by one fresh process, whose peak memory may not grow by 100 MB."""
    paths = [
        str(rewritten(dsh, tmp_path / f"{name}.safetensors", edit))
        for name, edit in CRAFTED_SIZES.items()
    ]
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_PEAKS), *paths],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().split("\n")
    assert len(lines) == len(paths), result.stdout
    for name, line in zip(CRAFTED_SIZES, lines):
        growth, outcome = line.split("\t", 1)
        assert outcome.startswith("refused:"), (name, outcome)
        assert "does not match its configuration" in outcome, (name, outcome)
        assert int(growth) < 100, f"{name}: peak memory grew by {growth} MB"


# ----------------------------------------------------------------------------- older files


def test_older_files_load_and_info_says_what_was_verified(tmp_path):
    """Files of hashlearn 0.1.0 have no metadata checksum: they load (their arrays checked) and
    ``info`` no longer says "checksum verified" for them, only for files whose metadata are."""
    old = describe_file(FIXTURES / "lsh16.safetensors")
    assert not old.metadata_verified
    assert "checksum verified" not in old.lines()[0]
    assert (
        "checksum of the arrays verified; the metadata of this older file have none"
        in old.lines()[0]
    )
    model = load_hasher(FIXTURES / "lsh16.safetensors")
    model.save(tmp_path / "new.safetensors")
    new = describe_file(tmp_path / "new.safetensors")
    assert new.metadata_verified and "checksum verified)" in new.lines()[0]


def test_a_saved_model_round_trips_with_both_checksums(grh, dsh, hog_itq, digits_small):
    X, _ = digits_small
    for path, inputs in ((grh, X.reshape(len(X), -1)), (dsh, X), (hog_itq, X)):
        metadata = header_of(path)["__metadata__"]
        assert {"sha256", METADATA_DIGEST_KEY} <= set(metadata)
        model = load_hasher(path)
        assert model.encode(inputs).shape == (len(X), (model.n_bits + 7) // 8)


def test_a_weights_path_in_a_model_file_is_not_read(dsh, digits_small, tmp_path):
    """Item 13: a model file could name any local path as its backbone weights, read at load (an
    oracle of which files exist). The file holds its weights: the path is never opened."""
    X, _ = digits_small
    expected = load_hasher(dsh).encode(X[:10])
    existing = tmp_path / "secret.txt"
    existing.write_text("not weights")
    for weights in (str(existing), str(tmp_path / "missing.safetensors")):
        path = rewritten(
            dsh,
            tmp_path / "m.safetensors",
            edit_json("params", lambda p, w=weights: p.update(backbone_params={"weights": w})),
        )
        np.testing.assert_array_equal(load_hasher(path).encode(X[:10]), expected)
