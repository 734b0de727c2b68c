"""Files written by hashlearn 0.1.0 (``tests/fixtures/v0_1_0``, see ``make_v0_1_0.py``) still load
and give the codes and search results recorded when they were written."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
from sklearn.datasets import load_digits

from hashlearn import load_hasher, load_index

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "v0_1_0"
EXPECTED = np.load(FIXTURES / "expected.npz")
MODELS = ["lsh16", "itq24", "ksh12", "hog_itq16", "dsh12"]
INDEXES = ["linear", "hash-table", "mih", "multi-table"]


def _probe_images() -> np.ndarray:
    return (load_digits().images[1500:1540] / 16.0).astype(np.float32)


@pytest.mark.parametrize("name", MODELS)
def test_saved_model_gives_the_recorded_codes(name):
    model = load_hasher(FIXTURES / f"{name}.safetensors")
    images = _probe_images()
    inputs = images if name in {"hog_itq16", "dsh12"} else images.reshape(len(images), -1)
    np.testing.assert_array_equal(model.encode(inputs), EXPECTED[f"codes_{name}"])


@pytest.mark.parametrize("mmap", [False, True])
@pytest.mark.parametrize("name", INDEXES)
def test_saved_index_gives_the_recorded_results(name, mmap):
    index = load_index(FIXTURES / f"{name}.hlindex", mmap=mmap)
    queries = EXPECTED["queries"]
    distances, ids = index.search(queries, 10)
    np.testing.assert_array_equal(distances, EXPECTED[f"search_{name}_D"])
    np.testing.assert_array_equal(ids, EXPECTED[f"search_{name}_I"])
    lims, r_distances, r_ids = index.range_search(queries, 3)
    np.testing.assert_array_equal(lims, EXPECTED[f"range_{name}_lims"])
    np.testing.assert_array_equal(r_distances, EXPECTED[f"range_{name}_D"])
    np.testing.assert_array_equal(r_ids, EXPECTED[f"range_{name}_I"])
