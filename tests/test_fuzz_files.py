"""Fuzzing of model and index files (issue 18: "every outcome is a hashlearn exception").

Small real files (an LSH model of images, a HOG + ITQ FeatureHasher, a GRH model, a DSH network;
linear, hash-table and MIH indexes) are mutated by bit flips, truncations, splices of their own
bytes and overwrites, and loaded. Each outcome must be either a ``HashlearnError`` or a file that
gives exactly the codes (search results) of the original: the checksums cover every byte that
has a meaning, so no mutation may load and change an answer. (Before the model metadata were
checksummed, 64 of 1,500 random bit flips of model files loaded silently, some changing most
codes.) Bounded: a few hundred examples, each within a deadline, and the memory the process
grows by is bounded too.
"""

from __future__ import annotations

import datetime
import resource

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hashlearn import create_hasher, load_hasher, load_index
from hashlearn.exceptions import HashlearnError
from hashlearn.features import create_features
from hashlearn.hashers import FeatureHasher
from hashlearn.hashers.model_format import read_model_file
from hashlearn.index import INDEX_FILE_MAGIC, create_index
from hashlearn.index._format.layout import PREAMBLE

FUZZ = settings(
    max_examples=250,
    deadline=datetime.timedelta(seconds=5),
    derandomize=True,  # the same mutations on every run
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
MEMORY_BUDGET_MB = 300  # the most the process may grow by over one fuzz test


@st.composite
def mutated(draw, original: bytes) -> bytes:
    """``original`` with one mutation: a bit flipped, cut short, a range of its own bytes
    copied elsewhere (over or into it), a range deleted, or a few bytes overwritten."""
    n = len(original)
    kind = draw(
        st.sampled_from(["flip", "flip", "truncate", "splice", "insert", "delete", "bytes"])
    )
    at = draw(st.integers(0, n - 1))
    if kind == "flip":
        data = bytearray(original)
        data[at] ^= 1 << draw(st.integers(0, 7))
        return bytes(data)
    if kind == "truncate":
        return original[:at]
    start = draw(st.integers(0, n - 1))
    stop = draw(st.integers(start, min(n, start + 64)))
    if kind == "splice":
        return original[:at] + original[start:stop] + original[at + stop - start :]
    if kind == "insert":
        return original[:at] + original[start:stop] + original[at:]
    if kind == "delete":
        return original[:start] + original[stop:]
    payload = draw(st.binary(min_size=1, max_size=8))
    return original[:at] + payload + original[at + len(payload) :]


def _header_end(data: bytes) -> int:
    """Where the JSON header of a model (safetensors) or index file ends."""
    if data.startswith(INDEX_FILE_MAGIC):
        return PREAMBLE.size + PREAMBLE.unpack(data[: PREAMBLE.size])[2]
    return 8 + int.from_bytes(data[:8], "little")


def _peak_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


@pytest.fixture(scope="module")
def models(digits_small, tmp_path_factory):
    """name -> (file bytes, inputs, codes of the inputs, metadata)."""
    X, y = digits_small
    folder = tmp_path_factory.mktemp("models")
    fitted = {
        "lsh": create_hasher("lsh", n_bits=16, random_state=0).fit(X[:, :4, :4]),
        "grh": create_hasher("grh", n_bits=8, random_state=0).fit(X.reshape(len(X), -1), y),
        "hog_itq": FeatureHasher(
            create_features("hog"), create_hasher("itq", n_bits=8, random_state=0)
        ).fit(X),
        "dsh": create_hasher(
            "dsh",
            n_bits=8,
            epochs=1,
            random_state=0,
            verbose=False,
            device="cpu",
            backbone_params={"channels": [2, 2], "hidden": 4},
        ).fit(X[:32], y[:32]),
    }
    inputs = {
        "lsh": X[:20, :4, :4],
        "grh": X[:20].reshape(20, -1),
        "hog_itq": X[:20],
        "dsh": X[:20],
    }
    found = {}
    for name, model in fitted.items():
        path = folder / f"{name}.safetensors"
        model.save(path)
        codes = load_hasher(path).encode(inputs[name])
        found[name] = (path.read_bytes(), inputs[name], codes, read_model_file(path)[0])
    return found


@pytest.fixture(scope="module")
def indexes(tmp_path_factory):
    """name -> (file bytes, queries, search results)."""
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (30, 2), dtype=np.uint8)
    queries = rng.integers(0, 256, (5, 2), dtype=np.uint8)
    folder = tmp_path_factory.mktemp("indexes")
    found = {}
    for name in ("linear", "hash-table", "mih"):
        index = create_index(name, 16)
        index.add_with_ids(codes, np.arange(100, 130))
        path = folder / f"{name}.hlindex"
        index.save(path)
        found[name] = (path.read_bytes(), queries, index.search(queries, 4))
    return found


def test_mutated_model_files_are_refused_or_unchanged(models, tmp_path):
    """Item 4: bit flips in a model's metadata loaded silently, some changing most codes."""
    path = tmp_path / "mutated.safetensors"
    before = _peak_mb()
    outcomes = {"loaded": 0, "refused": 0}

    @FUZZ
    @given(data=st.data())
    def check(data):
        name = data.draw(st.sampled_from(sorted(models)))
        original, inputs, codes, metadata = models[name]
        path.write_bytes(data.draw(mutated(original)))
        try:
            model = load_hasher(path)
        except HashlearnError:
            outcomes["refused"] += 1
            return
        outcomes["loaded"] += 1
        np.testing.assert_array_equal(model.encode(inputs), codes, err_msg=name)
        # nothing that has a meaning changed: not even a value that the codes do not show
        assert read_model_file(path)[0] == metadata, name

    check()
    assert outcomes["refused"] > outcomes["loaded"]
    assert _peak_mb() - before < MEMORY_BUDGET_MB


@pytest.mark.parametrize("mmap", [False, True])
def test_mutated_index_files_are_refused_or_unchanged(indexes, tmp_path, mmap):
    path = tmp_path / "mutated.hlindex"
    before = _peak_mb()

    @FUZZ
    @given(data=st.data())
    def check(data):
        name = data.draw(st.sampled_from(sorted(indexes)))
        original, queries, (distances, ids) = indexes[name]
        path.write_bytes(data.draw(mutated(original)))
        try:
            index = load_index(path, mmap=mmap)
            found = index.search(queries, 4)
        except HashlearnError:
            return
        np.testing.assert_array_equal(found[0], distances, err_msg=name)
        np.testing.assert_array_equal(found[1], ids, err_msg=name)

    check()
    assert _peak_mb() - before < MEMORY_BUDGET_MB
