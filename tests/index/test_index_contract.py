"""Every exact index type, built by name, against one brute-force reference (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _reference import assert_results_equal, knn, range_search
from hashlearn.codes import pack_bits
from hashlearn.exceptions import InvalidInputError, UnknownNameError
from hashlearn.index import (
    PAD_DISTANCE,
    PAD_ID,
    create_index,
    describe_indexes,
    list_indexes,
    load_index,
)
from hashlearn.index._format import read_index_file, write_index_file
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


def test_create_index_by_name_and_its_errors():
    multi = create_index("multi-table", 24, n_tables=2)
    assert (multi.n_tables, multi.bits_per_table, multi.n_bits) == (2, 12, 24)
    assert create_index("mih", 32, n_substrings=4).n_substrings == 4
    with pytest.raises(
        InvalidInputError, match="the multi-table index needs the parameter n_tables"
    ):
        create_index("multi-table", 24)
    with pytest.raises(
        InvalidInputError, match=r"n_bits \(24\) must be a multiple of n_tables \(5\)"
    ):
        create_index("multi-table", 24, n_tables=5)
    with pytest.raises(InvalidInputError, match="n_tables must be <= 24"):
        create_index("multi-table", 24, n_tables=25)
    with pytest.raises(InvalidInputError, match="the mih index has no parameter bogus: it takes "):
        create_index("mih", 32, bogus=1)
    with pytest.raises(UnknownNameError, match="unknown index type 'nope'; available: faiss, "):
        create_index("nope", 32)


def test_files_of_hashlearn_0_1_name_the_class(tmp_path):
    codes = np.arange(6, dtype=np.uint8).reshape(3, 2)
    index = create_index("hash-table", 16, key_bits=8)
    index.add(codes)
    index.save(tmp_path / "new.hlindex")
    assert read_index_file(tmp_path / "new.hlindex").index_type == "hash-table"
    arrays = {"codes": codes, "ids": np.arange(3, dtype=np.int64)}
    write_index_file(
        tmp_path / "old.hlindex", index_type="HashTableIndex", n_bits=16, arrays=arrays,
        params={"key_bits": 8},
    )  # fmt: skip
    for load in (load_index, type(index).load):
        old = load(tmp_path / "old.hlindex")
        assert type(old) is type(index)
        for got, expected in zip(old.search(codes, 3), index.search(codes, 3), strict=True):
            np.testing.assert_array_equal(got, expected)
