"""Tests of MultiIndexHashingIndex: exact results against a brute-force reference and LinearIndex."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _reference import check_index, to_codes
from hashlearn.exceptions import CodeFormatError, FileFormatError, InvalidInputError
from hashlearn.index import LinearIndex, _mih_tables, create_index, load_index, set_num_threads
from hashlearn.index import mih as mih_module
from hashlearn.index._format import write_index_file
from hashlearn.index.mih import MultiIndexHashingIndex

INT32_MAX = 2**31 - 1
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------- reference


# ---------------------------------------------------------------------- property tests


@st.composite
def index_cases(draw):
    n_bits = draw(st.integers(1, 300))
    top = 2**n_bits - 1
    lowest = -(-n_bits // 64)
    n_substrings = draw(
        st.one_of(
            st.none(), st.integers(lowest, min(n_bits, lowest + 12)), st.integers(lowest, n_bits)
        )
    )
    # A small pool of codes, sampled with repetition, makes duplicate codes (equal distances) common.
    pool = draw(st.lists(st.integers(0, top), min_size=1, max_size=6))
    code = st.one_of(st.sampled_from(pool), st.integers(0, top))
    values = draw(st.lists(code, max_size=40))
    ids = draw(
        st.lists(
            st.one_of(st.integers(0, 80), st.integers(0, 2**62)),
            min_size=len(values), max_size=len(values), unique=True,
        )
    )  # fmt: skip
    n_chunks = draw(st.integers(1, 3))
    cuts = sorted(
        draw(st.lists(st.integers(0, len(values)), min_size=n_chunks - 1, max_size=n_chunks - 1))
    )
    removed = draw(st.lists(st.sampled_from(ids), max_size=len(ids))) if ids else []
    readded = draw(st.lists(code, min_size=len(set(removed)), max_size=len(set(removed))))
    # Queries: pool codes, stored codes with a few bits flipped, or random codes.
    flips = st.lists(st.integers(0, n_bits - 1), max_size=3)
    near = st.tuples(st.sampled_from(pool), flips).map(
        lambda t: t[0] ^ sum(1 << b for b in set(t[1]))
    )
    queries = draw(st.lists(st.one_of(near, st.integers(0, top)), min_size=1, max_size=4))
    ks = draw(st.lists(st.integers(1, len(values) + 5), min_size=1, max_size=3))
    radii = draw(
        st.lists(st.one_of(st.integers(0, 3), st.integers(0, n_bits + 2)), min_size=1, max_size=3)
    )
    return n_bits, n_substrings, values, ids, cuts, removed, readded, queries, ks, radii


@SETTINGS
@given(index_cases())
def test_matches_brute_force_through_adds_removes_and_readds(case):
    n_bits, n_substrings, values, ids, cuts, removed, readded, query_values, ks, radii = case
    codes = to_codes(values, n_bits)
    ids_array = np.array(ids, dtype=np.int64)
    queries = to_codes(query_values, n_bits)
    index = MultiIndexHashingIndex(n_bits, n_substrings=n_substrings)
    for start, stop in zip([0, *cuts], [*cuts, len(values)], strict=True):
        index.add_with_ids(codes[start:stop], ids_array[start:stop])
    check_index(index, codes, ids_array, queries, ks, radii)

    gone = sorted(set(removed))
    assert index.remove_ids(np.array([*gone, 2**63 - 1], dtype=np.int64)) == len(gone)
    keep = ~np.isin(ids_array, gone)
    codes, ids_array = codes[keep], ids_array[keep]
    check_index(index, codes, ids_array, queries, ks, radii)

    # The removed ids come back with other codes.
    back = to_codes(readded, n_bits)
    index.add_with_ids(back, np.array(gone, dtype=np.int64))
    codes = np.concatenate([codes, back])
    ids_array = np.concatenate([ids_array, np.array(gone, dtype=np.int64)])
    check_index(index, codes, ids_array, queries, ks, radii)
    assert index.ids.tolist() == ids_array.tolist()  # insertion order kept


@SETTINGS
@given(
    n_bits=st.integers(1, 300),
    sizes=st.lists(st.integers(0, 30), min_size=1, max_size=3),
    data=st.data(),
)
def test_add_assigns_sequential_ids(n_bits, sizes, data):
    top = 2**n_bits - 1
    index = MultiIndexHashingIndex(n_bits)
    parts = []
    for size in sizes:
        part = to_codes(
            data.draw(st.lists(st.integers(0, top), min_size=size, max_size=size)), n_bits
        )
        index.add(part)
        parts.append(part)
    codes = np.concatenate(parts)
    ids = np.arange(len(codes), dtype=np.int64)
    assert index.ids.tolist() == ids.tolist()
    queries = to_codes(data.draw(st.lists(st.integers(0, top), min_size=1, max_size=3)), n_bits)
    k = data.draw(st.integers(1, len(codes) + 3))
    check_index(index, codes, ids, queries, [k], [data.draw(st.integers(0, n_bits))])


# ---------------------------------------------------------------------- hand-computed cases


def test_hand_computed_search_and_ties():
    # 8-bit codes; distances to the query 0b00000000: 0, 1, 1, 2, 8.
    codes = to_codes([0b00000000, 0b00000010, 0b00000001, 0b00000011, 0b11111111], 8)
    index = MultiIndexHashingIndex(8, n_substrings=2)
    index.add_with_ids(codes, [50, 7, 3, 9, 1])
    query = to_codes([0b00000000], 8)
    D, I = index.search(query, 4)
    assert D.tolist() == [[0, 1, 1, 2]]
    assert I.tolist() == [[50, 3, 7, 9]]  # the two items at distance 1 in id order
    D, I = index.search(query, 7)  # k beyond ntotal: ntotal columns
    assert D.tolist() == [[0, 1, 1, 2, 8]]
    assert I.tolist() == [[50, 3, 7, 9, 1]]
    lims, D, I = index.range_search(query, 1)
    assert lims.tolist() == [0, 3] and D.tolist() == [0, 1, 1] and I.tolist() == [50, 3, 7]
    lims, D, I = index.range_search(to_codes([0b11111110, 0b00000011], 8), 0)
    assert lims.tolist() == [0, 0, 1] and D.tolist() == [0] and I.tolist() == [9]


def test_substrings_split_the_code_evenly():
    assert MultiIndexHashingIndex(10, n_substrings=3).substring_bits == [4, 3, 3]
    assert MultiIndexHashingIndex(64, n_substrings=4).substring_bits == [16] * 4
    assert MultiIndexHashingIndex(300, n_substrings=5).substring_bits == [60] * 5
    index = MultiIndexHashingIndex(7, n_substrings=7)
    assert index.substring_bits == [1] * 7 and index.n_substrings == 7


@pytest.mark.parametrize(
    ("n_bits", "ntotal", "expected"),
    [
        (64, 10_000_000, 4),  # log2(1e7) - 7 = 16.3 bits per substring
        (64, 1_000_000, 5),  # 12.9 bits
        (64, 1000, 8),  # at least 8 bits
        (64, 0, 8),
        (128, 2**30, 6),  # 23 bits
        (300, 100, 38),
        (4096, 1, 512),
        (16, 10**9, 1),
        (4096, 2**40, 124),  # 33 bits
        (5, 10, 1),
    ],
)
def test_automatic_number_of_substrings(n_bits, ntotal, expected):
    assert _mih_tables.auto_substrings(n_bits, ntotal) == expected


def test_automatic_substrings_follow_the_number_of_items():
    rng = np.random.default_rng(0)
    index = MultiIndexHashingIndex(64)
    assert index.n_substrings == 8
    index.add(rng.integers(0, 256, size=(1 << 16, 8), dtype=np.uint8))
    assert index.n_substrings == 7  # 64 / (16 - 7)
    fixed = MultiIndexHashingIndex(64, n_substrings=3)
    fixed.add(rng.integers(0, 256, size=(10, 8), dtype=np.uint8))
    assert fixed.n_substrings == 3


def test_tables_are_built_lazily_and_reported():
    rng = np.random.default_rng(1)
    index = MultiIndexHashingIndex(64, n_substrings=4)
    index.add(rng.integers(0, 256, size=(500, 8), dtype=np.uint8))
    usage = index.memory_usage()
    assert usage["tables"] == 0 and usage["items"] == 500 * 16
    index.build_tables()
    usage = index.memory_usage()
    # 4 tables of 16-bit substrings: 500 entries (4-byte rank + 8-byte code) and 2**16 + 1
    # 4-byte offsets each, plus 2 * 5 int64 table pointers.
    assert usage["tables"] == 4 * (500 * 12 + (2**16 + 1) * 4) + 80
    assert usage["total"] == usage["items"] + usage["tables"] == index.nbytes
    index.remove_ids([3])
    assert index.memory_usage()["tables"] == 0
    index.search(np.zeros((1, 8), dtype=np.uint8), 1)
    assert index.memory_usage()["tables"] > 0
    assert index.remove_ids([3]) == 0 and index.memory_usage()["tables"] > 0  # nothing changed


def test_empty_index():
    index = MultiIndexHashingIndex(20)
    queries = np.zeros((2, 3), dtype=np.uint8)
    D, I = index.search(queries, 3)
    assert D.shape == I.shape == (2, 0)  # no item, no column
    lims, D, I = index.range_search(queries, 20)
    assert lims.tolist() == [0, 0, 0] and D.shape == I.shape == (0,)
    assert index.search(queries[:0], 3)[0].shape == (0, 0)
    index.add(to_codes([5], 20))
    index.reset()
    assert index.ntotal == 0 and index.search(queries, 1)[1].tolist() == [[], []]


# ---------------------------------------------------------------------- against LinearIndex


@pytest.mark.parametrize("ascending_ids", [True, False])
def test_near_duplicate_queries_match_linear_index(ascending_ids):
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 256, size=(4000, 8), dtype=np.uint8)
    codes[3000:3200] = codes[:200]  # exact duplicates: ties broken by id
    ids = np.arange(4000, dtype=np.int64) if ascending_ids else rng.permutation(10**6)[:4000]
    queries = codes[rng.integers(0, 4000, size=300)].copy()
    for row in queries:
        for bit in rng.choice(64, size=int(rng.integers(0, 4)), replace=False):
            row[bit // 8] ^= np.uint8(1 << (bit % 8))
    queries[:5] = rng.integers(0, 256, size=(5, 8), dtype=np.uint8)  # far from everything
    mih, linear = MultiIndexHashingIndex(64), LinearIndex(64)
    for index in (mih, linear):
        index.add_with_ids(codes, ids)
    assert mih.n_substrings == 8  # 4000 items: 8-bit substrings (the minimum)
    for k in (1, 10, 100, 4003):
        for got, expected in zip(mih.search(queries, k), linear.search(queries, k), strict=True):
            np.testing.assert_array_equal(got, expected)
    for radius in (0, 1, 2, 3, 4, 9, 64):
        for got, expected in zip(
            mih.range_search(queries, radius), linear.range_search(queries, radius), strict=True
        ):
            np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("n_substrings", [1, 2, 3])
def test_long_substrings_use_sorted_tables(n_substrings):
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 256, size=(1500, 8), dtype=np.uint8)
    codes[700:900] = codes[:200]
    queries = codes[rng.integers(0, 1500, size=40)].copy()
    queries[:, 0] ^= np.uint8(1)
    mih = MultiIndexHashingIndex(64, n_substrings=n_substrings)
    mih.add(codes)
    mih.build_tables()
    assert not mih._tables.direct.any()  # 22..64-bit substrings: sorted values, binary search
    ids = np.arange(1500, dtype=np.int64)
    check_index(mih, codes, ids, queries, [1, 5, 1600], [0, 1, 2, 7, 30])


@pytest.mark.parametrize(("n_bits", "n_substrings"), [(64, 1), (128, 2), (63, 1)])
def test_probe_counts_beyond_int64_fall_back_to_a_scan(n_bits, n_substrings):
    """With 64-bit substrings, the masks within 32 bits outnumber int64: the search must see
    that probing costs more than a scan, not overflow and probe forever."""
    rng = np.random.default_rng(8)
    width = n_bits // 8 + (n_bits % 8 > 0)
    codes = rng.integers(0, 256, size=(50, width), dtype=np.uint8)
    codes[:, -1] &= np.uint8((1 << (n_bits - 8 * (width - 1))) - 1)
    index = MultiIndexHashingIndex(n_bits, n_substrings=n_substrings)
    index.add(codes)
    radii = [n_bits // 2, n_bits // 2 + 5, n_bits]
    check_index(index, codes, np.arange(50), codes[:3] ^ np.uint8(1), [50], radii)


def test_results_do_not_depend_on_the_thread_count():
    rng = np.random.default_rng(4)
    codes = rng.integers(0, 256, size=(2000, 4), dtype=np.uint8)
    queries = codes[:50] ^ np.uint8(1)
    index = MultiIndexHashingIndex(32)
    index.add(codes)
    results = []
    try:
        for threads in (1, 2, 3):
            set_num_threads(threads)
            results.append((*index.search(queries, 7), *index.range_search(queries, 6)))
    finally:
        set_num_threads(2)
    for other in results[1:]:
        for got, expected in zip(other, results[0], strict=True):
            np.testing.assert_array_equal(got, expected)


def test_concurrent_searches_share_one_build():
    rng = np.random.default_rng(7)
    codes = rng.integers(0, 256, size=(3000, 8), dtype=np.uint8)
    queries = codes[:64] ^ np.uint8(2)
    index = MultiIndexHashingIndex(64)
    index.add(codes)
    expected = LinearIndex(64)
    expected.add(codes)
    want_d, want_i = expected.search(queries, 5)
    builds = []
    real_build = mih_module.build_tables

    def counting_build(*args):
        builds.append(1)
        return real_build(*args)

    with (
        mock.patch.object(mih_module, "build_tables", counting_build),
        ThreadPoolExecutor(max_workers=4) as pool,
    ):
        results = list(pool.map(lambda _: index.search(queries, 5), range(8)))
    assert len(builds) == 1
    for got_d, got_i in results:
        np.testing.assert_array_equal(got_d, want_d)
        np.testing.assert_array_equal(got_i, want_i)


def test_tables_built_while_items_change_are_not_kept():
    codes = to_codes([0b1, 0b11, 0b111], 16)
    index = MultiIndexHashingIndex(16)
    index.add(codes)
    real_build = mih_module.build_tables

    def build_then_add(*args):
        tables = real_build(*args)
        index.add_with_ids(to_codes([0], 16), [100])  # a change while the tables were built
        return tables

    query = to_codes([0], 16)
    with mock.patch.object(mih_module, "build_tables", build_then_add):
        D, I = index.search(query, 2)
    assert (D.tolist(), I.tolist()) == ([[1, 2]], [[0, 1]])  # the items the build saw
    assert index._tables is None  # not kept: the next search rebuilds
    D, I = index.search(query, 2)
    assert (D.tolist(), I.tolist()) == ([[0, 1]], [[100, 0]])


def test_created_by_name():
    index = create_index("mih", 32, n_substrings=4)
    assert isinstance(index, MultiIndexHashingIndex) and index.substring_bits == [8] * 4
    assert repr(index) == "MultiIndexHashingIndex(n_bits=32, n_substrings=4, ntotal=0)"


def test_int64_tables(monkeypatch):
    """Indexes of 2**31 items or more keep int64 entries and offsets; forced here on a small one."""
    monkeypatch.setattr(_mih_tables, "INT32_LIMIT", 0)
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 256, size=(300, 2), dtype=np.uint8)
    index = MultiIndexHashingIndex(16, n_substrings=2)
    index.add(codes)
    index.build_tables()
    assert index._tables.entries.dtype == np.int64 and index._tables.offsets.dtype == np.int64
    check_index(index, codes, np.arange(300), codes[:20] ^ np.uint8(3), [1, 12], [0, 3])


# ---------------------------------------------------------------------- persistence


@pytest.mark.parametrize("mmap", [False, True])
@pytest.mark.parametrize("n_substrings", [None, 3])
def test_save_load_round_trip(tmp_path, mmap, n_substrings):
    rng = np.random.default_rng(6)
    codes = rng.integers(0, 256, size=(300, 5), dtype=np.uint8)
    index = MultiIndexHashingIndex(40, n_substrings=n_substrings)
    index.add_with_ids(codes, rng.permutation(1000)[:300])
    path = tmp_path / "index.hlindex"
    index.save(path)
    queries = codes[:30] ^ np.uint8(1)
    for loaded in (MultiIndexHashingIndex.load(path, mmap=mmap), load_index(str(path), mmap=mmap)):
        assert isinstance(loaded, MultiIndexHashingIndex)
        assert loaded.n_bits == 40 and loaded.ids.tolist() == index.ids.tolist()
        assert loaded._n_substrings == n_substrings
        assert isinstance(loaded._store.codes, np.memmap) == mmap
        for got, expected in zip(loaded.search(queries, 9), index.search(queries, 9), strict=True):
            np.testing.assert_array_equal(got, expected)
        for got, expected in zip(
            loaded.range_search(queries, 4), index.range_search(queries, 4), strict=True
        ):
            np.testing.assert_array_equal(got, expected)
    # A memory-mapped index takes changes (its arrays are copied first).
    loaded = MultiIndexHashingIndex.load(path, mmap=True)
    loaded.add_with_ids(codes[:2], [5000, 5001])
    assert loaded.remove_ids([5000]) == 1
    assert loaded.search(codes[1:2], 1)[1].tolist() == [[index.ids[1]]]


def test_save_load_empty(tmp_path):
    path = tmp_path / "empty.hlindex"
    MultiIndexHashingIndex(9, n_substrings=2).save(path)
    loaded = load_index(path)
    assert isinstance(loaded, MultiIndexHashingIndex) and loaded.ntotal == 0
    assert loaded.substring_bits == [5, 4]


@pytest.mark.parametrize("bad", [0, 17, "4", 2.0])
def test_file_with_invalid_n_substrings(tmp_path, bad):
    path = tmp_path / "bad.hlindex"
    codes = np.zeros((1, 2), dtype=np.uint8)
    write_index_file(
        path, index_type="MultiIndexHashingIndex", n_bits=16,  # the name files of 0.1 hold
        arrays={"codes": codes, "ids": np.zeros(1, dtype=np.int64)}, params={"n_substrings": bad},
    )  # fmt: skip
    with pytest.raises(FileFormatError, match="n_substrings"):
        load_index(path)


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("n_bits", "n_substrings", "message"),
    [
        (64, 0, "n_substrings must be >= 1"),
        (64, 65, "n_substrings must be <= 64"),
        (65, 1, "n_substrings must be >= 2 for 65-bit codes"),
        (300, 4, "n_substrings must be >= 5 for 300-bit codes"),
        (64, 2.0, "n_substrings must be an integer"),
        (64, True, "n_substrings must be an integer"),
        (64, "3", "n_substrings must be an integer"),
    ],
)
def test_invalid_n_substrings(n_bits, n_substrings, message):
    with pytest.raises(InvalidInputError, match=message):
        MultiIndexHashingIndex(n_bits, n_substrings=n_substrings)


def test_invalid_inputs():
    index = MultiIndexHashingIndex(12)
    index.add(to_codes([1, 2, 3], 12))
    with pytest.raises(CodeFormatError, match="uint8"):
        index.search(np.zeros((1, 2), dtype=np.int64), 1)
    with pytest.raises(CodeFormatError, match="2 bytes"):
        index.range_search(np.zeros((1, 3), dtype=np.uint8), 1)
    with pytest.raises(CodeFormatError, match="beyond bit 12"):
        index.add(np.full((1, 2), 255, dtype=np.uint8))
    with pytest.raises(InvalidInputError, match="k must be >= 1"):
        index.search(to_codes([1], 12), 0)
    with pytest.raises(InvalidInputError, match="radius must be >= 0"):
        index.range_search(to_codes([1], 12), -1)
    with pytest.raises(InvalidInputError, match="already in the index"):
        index.add_with_ids(to_codes([1], 12), [2])
    with pytest.raises(InvalidInputError, match="sequential ids"):
        index.add_with_ids(to_codes([1], 12), [4])
        index.add(to_codes([1, 1], 12))  # ids 3 and 4
    with pytest.raises(InvalidInputError, match=">= 0"):
        index.add_with_ids(to_codes([1], 12), [-4])
    assert index.ntotal == 4
