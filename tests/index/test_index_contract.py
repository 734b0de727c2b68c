"""Every exact index type, built by name, against one brute-force reference (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _reference import assert_results_equal, knn, range_search
from hashlearn.codes import pack_bits
from hashlearn.index import (
    PAD_DISTANCE,
    PAD_ID,
    create_index,
    describe_indexes,
    list_indexes,
    load_index,
)
from hashlearn.index.registry import INDEX_TYPES

EXACT_TYPES = ["linear", "hash-table", "mih"]


@st.composite
def cases(draw):
    n_bits = draw(st.integers(1, 300))
    pool = draw(
        st.lists(st.lists(st.booleans(), min_size=n_bits, max_size=n_bits), min_size=1, max_size=4)
    )
    rows = draw(
        st.lists(
            st.one_of(
                st.sampled_from(pool), st.lists(st.booleans(), min_size=n_bits, max_size=n_bits)
            ),
            max_size=40,
        )
    )
    ids = draw(st.lists(st.integers(0, 2**40), min_size=len(rows), max_size=len(rows), unique=True))
    removed = draw(st.lists(st.sampled_from(ids), max_size=len(ids))) if ids else []
    queries = draw(
        st.lists(
            st.one_of(
                st.sampled_from(pool), st.lists(st.booleans(), min_size=n_bits, max_size=n_bits)
            ),
            min_size=1,
            max_size=5,
        )
    )
    k = draw(st.integers(1, len(rows) + 3))
    radius = draw(st.sampled_from([0, 1, n_bits // 4, n_bits]))
    return n_bits, rows, ids, removed, queries, k, radius


def build(index_type, n_bits, data):
    params = {}
    if index_type == "hash-table":
        params["key_bits"] = data.draw(st.integers(1, min(n_bits, 64)))
    elif index_type == "mih":
        fewest = -(-n_bits // 64)  # a substring holds at most 64 bits
        params["n_substrings"] = data.draw(st.integers(fewest, max(fewest, min(n_bits, 8))))
    return create_index(index_type, n_bits, **params)


@pytest.mark.parametrize("index_type", EXACT_TYPES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases(), data=st.data())
def test_exact_indexes_equal_brute_force(index_type, case, data):
    n_bits, rows, ids, removed, query_rows, k, radius = case
    codes = pack_bits(np.array(rows, dtype=bool).reshape(len(rows), n_bits))
    queries = pack_bits(np.array(query_rows, dtype=bool))
    ids = np.array(ids, dtype=np.int64)
    index = build(index_type, n_bits, data)
    half = len(codes) // 2
    index.add_with_ids(codes[:half], ids[:half])
    index.add_with_ids(codes[half:], ids[half:])
    for stage in ("added", "removed"):
        if stage == "removed":
            assert index.remove_ids(np.array(removed, dtype=np.int64)) == len(set(removed))
            keep = ~np.isin(ids, removed)
            codes, ids = codes[keep], ids[keep]
        assert_results_equal(index.search(queries, k), knn(codes, ids, queries, k))
        expected = range_search(codes, ids, queries, radius)
        assert_results_equal(index.range_search(queries, radius), expected)


@pytest.mark.parametrize("index_type", EXACT_TYPES)
def test_empty_index_and_round_trip(tmp_path, index_type):
    index = create_index(index_type, 64)
    queries = np.arange(16, dtype=np.uint8).reshape(2, 8)
    D, I = index.search(queries, 3)
    assert (D == PAD_DISTANCE).all() and (I == PAD_ID).all()
    lims, RD, RI = index.range_search(queries, 64)
    assert lims.tolist() == [0, 0, 0] and len(RD) == len(RI) == 0
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, size=(500, 8), dtype=np.uint8)
    index.add(codes)
    index.save(tmp_path / "index.hlindex")
    for mmap in (False, True):
        loaded = load_index(tmp_path / "index.hlindex", mmap=mmap)
        assert type(loaded) is type(index)
        for got, expected in zip(loaded.search(codes[:9], 5), index.search(codes[:9], 5)):
            np.testing.assert_array_equal(got, expected)


def test_every_registered_type_is_covered():
    assert set(EXACT_TYPES) | {"multi-table", "faiss"} == set(list_indexes())
    assert list_indexes() == sorted(describe_indexes())
    assert all(isinstance(text, str) and text for text in describe_indexes().values())


def test_index_classes_know_their_registry_name():
    for name in list_indexes():
        assert INDEX_TYPES.get(name).type_name == name
