"""Tests of the hash-table indexes: every search against a brute-force scan (and LinearIndex)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _reference import assert_results_equal, hamming, knn, probed, range_search
from hashlearn.codes import pack_bits
from hashlearn.exceptions import (
    CodeFormatError,
    FileFormatError,
    InvalidInputError,
    UnknownNameError,
)
from hashlearn.index import (
    PAD_DISTANCE,
    PAD_ID,
    LinearIndex,
    _blocks,
    _table_probe,
    _table_state,
    get_num_threads,
    load_index,
    set_num_threads,
)
from hashlearn.index._format import write_index_file
from hashlearn.index.hash_table import HashTableIndex
from hashlearn.index.multi_table import MultiTableIndex, concatenate_codes

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------- references


def clustered_codes(rng: np.random.Generator, n: int, n_bits: int) -> np.ndarray:
    """``n`` codes around a few centres (so buckets and duplicates are shared), some exact copies."""
    centres = rng.integers(0, 2, (int(rng.integers(1, 6)), n_bits))
    bits = centres[rng.integers(0, len(centres), n)]
    flips = rng.random((n, n_bits)) < rng.choice([0.0, 0.02, 0.1, 0.5])
    return pack_bits(bits ^ flips)


def feature_reference(query_feature, features, metric):
    """float32 feature distances, computed in float64 as documented."""
    x = features.astype(np.float64)
    q = query_feature.astype(np.float64)
    if metric == "l2":
        return np.sqrt(((x - q) ** 2).sum(axis=1)).astype(np.float32)
    q_norm, x_norm = np.sqrt((q * q).sum()), np.sqrt((x * x).sum(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where((q_norm == 0) | (x_norm == 0), 1.0, 1.0 - (x @ q) / (q_norm * x_norm))
    return np.maximum(value, 0.0).astype(np.float32)


def brute_rerank(codes, ids, features, queries, query_features, k, metric, candidates):
    k = min(k, len(ids))
    D = np.full((len(queries), k), np.inf, dtype=np.float32)
    I = np.full((len(queries), k), PAD_ID, dtype=np.int64)
    for q in range(len(queries)):
        keep = np.flatnonzero(candidates[q])
        dist = feature_reference(query_features[q], features[keep], metric)
        order = np.lexsort((ids[keep], dist))[:k]
        D[q, : len(order)] = dist[order]
        I[q, : len(order)] = ids[keep[order]]
    return D, I


def integer_features(rng, n, d):
    """Small integers as float32: every float64 sum is exact, so distances match bit for bit."""
    return rng.integers(-3, 4, (n, d)).astype(np.float32)


# ---------------------------------------------------------------------- exactness, properties


@st.composite
def index_case(draw, max_bits=300):
    n_bits = draw(st.integers(1, max_bits))
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.integers(0, 40))
    rng = np.random.default_rng(seed)
    codes = clustered_codes(rng, n, n_bits)
    ids = rng.choice(10 * n + 5, n, replace=False).astype(np.int64)
    queries = np.concatenate([codes[: draw(st.integers(0, 3))], clustered_codes(rng, 3, n_bits)])
    removed = ids[rng.random(n) < draw(st.sampled_from([0.0, 0.3]))]
    return n_bits, codes, ids, queries, removed


@SETTINGS
@given(case=index_case(), data=st.data())
def test_hash_table_index_is_exact(case, data):
    n_bits, codes, ids, queries, removed = case
    key_bits = data.draw(st.integers(1, min(64, n_bits)), label="key_bits")
    k = data.draw(st.integers(1, 50), label="k")
    radius = data.draw(st.one_of(st.just(0), st.integers(0, n_bits + 2)), label="radius")
    index = HashTableIndex(n_bits, key_bits=key_bits)
    index.add_with_ids(codes, ids)
    assert index.remove_ids(removed) == len(removed)
    keep = ~np.isin(ids, removed)
    assert_results_equal(index.search(queries, k), knn(codes[keep], ids[keep], queries, k))
    expected_range = range_search(codes[keep], ids[keep], queries, radius)
    assert_results_equal(index.range_search(queries, radius), expected_range)
    assert_results_equal(
        index.search(queries, k, max_radius=radius),
        knn(codes[keep], ids[keep], queries, k, max_distance=radius),
    )


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), data=st.data())
def test_multi_table_index_range_search_is_exact(seed, data):
    rng = np.random.default_rng(seed)
    n_tables = data.draw(st.integers(1, 5), label="n_tables")
    bits_per_table = data.draw(st.integers(1, min(64, 300 // n_tables)), label="bits_per_table")
    n_bits = n_tables * bits_per_table
    n = data.draw(st.integers(0, 40), label="n")
    codes = clustered_codes(rng, n, n_bits)
    ids = rng.permutation(n).astype(np.int64) * 3
    queries = np.concatenate([codes[:2], clustered_codes(rng, 3, n_bits)])
    index = MultiTableIndex(n_tables, bits_per_table)
    index.add_with_ids(codes, ids)
    removed = ids[rng.random(n) < 0.2]
    index.remove_ids(removed)
    keep = ~np.isin(ids, removed)
    codes, ids = codes[keep], ids[keep]
    radius = data.draw(st.integers(0, n_bits + 1), label="radius")
    assert_results_equal(
        index.range_search(queries, radius), range_search(codes, ids, queries, radius)
    )

    # Approximate search: the best k among the probed candidates...
    k = data.draw(st.integers(1, 45), label="k")
    probe = data.draw(st.integers(0, 3), label="probe_radius")
    candidates = probed(codes, queries, n_tables, bits_per_table, probe)
    expected = knn(codes, ids, queries, k, allowed=candidates)
    assert_results_equal(index.search(queries, k, probe_radius=probe), expected)
    # ... and, probing every bucket, the exact k-NN.
    expected = knn(codes, ids, queries, k)
    assert_results_equal(index.search(queries, k, probe_radius=bits_per_table), expected)


@pytest.mark.parametrize("probe_cost", [0, 10**30], ids=["always-enumerate", "always-scan"])
def test_bit_flip_enumeration_and_bucket_scan_agree(monkeypatch, probe_cost):
    """Both ways of finding the buckets within a radius give the exact results."""
    monkeypatch.setattr(_table_state, "PROBE_COST", probe_cost)
    rng = np.random.default_rng(5)
    n_bits = 75
    codes = clustered_codes(rng, 400, n_bits)
    queries = np.concatenate([codes[:3], clustered_codes(rng, 4, n_bits)])
    ids = np.arange(len(codes), dtype=np.int64)
    for key_bits in (1, 7, 10):
        index = HashTableIndex(n_bits, key_bits=key_bits)
        index.add(codes)
        for k in (1, 5, 500):
            assert_results_equal(index.search(queries, k), knn(codes, ids, queries, k))
        for radius in (0, 2, 6):
            assert_results_equal(
                index.range_search(queries, radius), range_search(codes, ids, queries, radius)
            )
    wide = np.ascontiguousarray(codes[:, :7])
    wide[:, 6] &= 0x03  # the first 50 bits
    multi = MultiTableIndex(5, 10)
    multi.add(wide)
    q = np.ascontiguousarray(queries[:, :7])
    q[:, 6] &= 0x03
    for radius in (0, 5, 12):
        assert_results_equal(multi.range_search(q, radius), range_search(wide, ids, q, radius))
    for probe in (0, 1, 3):  # an item found in several tables is counted once
        candidates = probed(wide, q, 5, 10, probe)
        expected = knn(wide, ids, q, 20, allowed=candidates)
        assert_results_equal(multi.search(q, 20, probe_radius=probe), expected)


@pytest.mark.parametrize(
    ("width", "d"), [(5, 0), (5, 3), (5, 5), (64, 1), (64, 2), (64, 63), (64, 64)]
)
def test_probe_level_finds_the_keys_at_key_distance_d(width, d):
    """The enumeration of the C(width, d) flip masks, up to 64-bit keys."""
    rng = np.random.default_rng(width + d)
    mask = np.uint64(2**width - 1)
    qkey = np.frombuffer(rng.bytes(8), dtype=np.uint64)[0] & mask
    flips = np.zeros(60, dtype=np.uint64)  # keys at distance d, then at random distances
    for i in range(30):
        for bit in rng.choice(width, d, replace=False):
            flips[i] |= np.uint64(1) << np.uint64(bit)
    flips[30:] = np.frombuffer(rng.bytes(8 * 30), dtype=np.uint64) & mask
    keys = np.unique(qkey ^ flips)
    n_slots = 256
    slots = _table_probe.build_slots(keys, n_slots, np.uint64(64 - 8))
    found = np.empty(len(keys), dtype=np.int64)
    n_found = _table_probe.probe_level(qkey, width, d, keys, 100, slots, np.uint64(64 - 8), found)
    expected = np.flatnonzero(np.bitwise_count(keys ^ qkey) == d) + 100
    np.testing.assert_array_equal(np.sort(found[:n_found]), expected)


def test_larger_index_matches_linear_index():
    """A few thousand clustered items, many buckets: the enumeration path at several levels."""
    rng = np.random.default_rng(1)
    n_bits = 32
    codes = clustered_codes(rng, 3000, n_bits)
    queries = np.concatenate([codes[:20], clustered_codes(rng, 20, n_bits)])
    linear = LinearIndex(n_bits)
    linear.add(codes)
    for key_bits in (12, 32):
        index = HashTableIndex(n_bits, key_bits=key_bits)
        index.add(codes)
        for k in (1, 10, 100):
            assert_results_equal(index.search(queries, k), linear.search(queries, k))
        for radius in (0, 3):
            assert_results_equal(
                index.range_search(queries, radius), linear.range_search(queries, radius)
            )


@pytest.fixture
def threads():
    """``set_num_threads``, with the thread count restored afterwards."""
    previous = get_num_threads()
    yield set_num_threads
    set_num_threads(previous)


def test_query_blocks(threads):
    threads(2)
    assert _blocks.query_blocks(7, 8) == [(0, 7)]  # a small batch runs in the calling thread
    assert _blocks.query_blocks(20, 8) == [
        (0, 3),
        (3, 6),
        (6, 9),
        (9, 12),
        (12, 15),
        (15, 18),
        (18, 20),
    ]
    threads(1)
    assert _blocks.query_blocks(8, 8) == [(0, 2), (2, 4), (4, 6), (6, 8)]


def test_results_do_not_depend_on_the_threads(threads):
    """Batches of 8 queries or more are split in blocks over the threads."""
    rng = np.random.default_rng(6)
    n, n_bits = 2000, 24
    codes, features = clustered_codes(rng, n, n_bits), integer_features(rng, n, 3)
    queries = np.concatenate([codes[:30], clustered_codes(rng, 30, n_bits)])
    query_features = integer_features(rng, len(queries), 3)
    ids = np.arange(n, dtype=np.int64)
    single, multi = HashTableIndex(n_bits, key_bits=10), MultiTableIndex(3, 8)
    for index in (single, multi):
        index.add(codes, features=features)
    candidates = hamming(queries, codes) <= 4
    expected = [
        knn(codes, ids, queries, 7),
        range_search(codes, ids, queries, 4),
        brute_rerank(codes, ids, features, queries, query_features, 5, "l2", candidates),
        range_search(codes, ids, queries, 6),
    ]
    for n_threads in (1, 3):
        threads(n_threads)
        got = [
            single.search(queries, 7),
            single.range_search(queries, 4),
            single.search_rerank(queries, query_features, 5, 4, metric="l2"),
            multi.range_search(queries, 6),
        ]
        for g, e in zip(got, expected, strict=True):
            assert_results_equal(g, e)


def test_nbytes_counts_features_and_tables():
    index = HashTableIndex(16, key_bits=8)
    codes = np.arange(32, dtype=np.uint8).reshape(16, 2)  # 16 buckets: keys 0, 2, ..., 30
    index.add(codes, features=np.ones((16, 3)))
    assert index.nbytes == 16 * (2 + 8) + 16 * 3 * 4  # codes and ids, float32 features
    index.search(codes[:1], 1)  # builds the table:
    tables = 8 + 16 * 8 + 2 * 8 + 17 * 8 + 16 * 8 + 32 * 8 + 2 * 8 + 8  # starts .. shifts
    per_item = 16 * 8 * 3  # feature norms, positions by rank, codes padded to 8-byte words
    assert index.nbytes == 16 * (2 + 8) + 16 * 3 * 4 + tables + per_item
    index.remove_ids([0])
    assert index.nbytes == 15 * (2 + 8 + 12)  # the table is dropped until the next search


def test_empty_index():
    queries = np.zeros((2, 3), dtype=np.uint8)
    for index in (HashTableIndex(20, key_bits=9), MultiTableIndex(4, 5)):
        D, I = index.search(queries, 3)
        assert D.shape == I.shape == (2, 0)  # an empty index: no column
        lims, D, I = index.range_search(queries, 5)
        assert lims.tolist() == [0, 0, 0] and len(D) == len(I) == 0
        index.add(np.zeros((1, 3), dtype=np.uint8), features=np.ones((1, 2)))
        index.remove_ids([0])
        D, I = index.search_rerank(queries, np.ones((2, 2)), 2, 3)
        assert (D == np.inf).all() and (I == PAD_ID).all()
        assert index.ntotal == 0
    assert HashTableIndex(8).n_buckets == 0


# ---------------------------------------------------------------------- hand-computed cases


def test_hash_table_index_small_case():
    index = HashTableIndex(8, key_bits=4)
    codes = np.array(
        [[0b0000_0000], [0b0000_0001], [0b1111_0000], [0b0000_0011], [0b1000_0000]], dtype=np.uint8
    )
    index.add(codes)
    assert index.n_buckets == 3  # low nibbles 0 (ids 0, 2, 4), 1 and 3
    query = np.zeros((1, 1), dtype=np.uint8)
    D, I = index.search(query, 3)
    assert D.tolist() == [[0, 1, 1]] and I.tolist() == [[0, 1, 4]]
    D, I = index.search(query, 3, max_radius=0)
    assert D.tolist() == [[0, PAD_DISTANCE, PAD_DISTANCE]] and I.tolist() == [[0, -1, -1]]
    lims, D, I = index.range_search(query, 1)
    assert lims.tolist() == [0, 3] and D.tolist() == [0, 1, 1] and I.tolist() == [0, 1, 4]
    D, I = index.search(query, 6)  # k beyond ntotal: ntotal columns
    assert D.tolist() == [[0, 1, 1, 2, 4]] and I.tolist() == [[0, 1, 4, 3, 2]]
    assert repr(index) == "HashTableIndex(n_bits=8, key_bits=4, ntotal=5)"


def test_multi_table_index_small_case():
    index = MultiTableIndex(2, 4)  # table 0: low nibble, table 1: high nibble
    index.add(np.array([[0x00], [0x11], [0x0F], [0xF3]], dtype=np.uint8))
    query = np.zeros((1, 1), dtype=np.uint8)
    D, I = index.search(query, 3)  # buckets: low 0 -> {0}; high 0 -> {0, 2}
    assert D.tolist() == [[0, 4, PAD_DISTANCE]] and I.tolist() == [[0, 2, -1]]
    D, I = index.search(query, 4, probe_radius=1)  # id 1 (0x11) is one flip away in both
    assert D.tolist() == [[0, 2, 4, PAD_DISTANCE]] and I.tolist() == [[0, 1, 2, -1]]
    D, I = index.search(query, 4, probe_radius=4)
    assert D.tolist() == [[0, 2, 4, 6]] and I.tolist() == [[0, 1, 2, 3]]
    lims, D, I = index.range_search(query, 2)  # probes radius 1 per table, keeps <= 2
    assert lims.tolist() == [0, 2] and D.tolist() == [0, 2] and I.tolist() == [0, 1]
    assert (index.n_tables, index.bits_per_table, index.n_bits) == (2, 4, 8)
    assert repr(index) == "MultiTableIndex(n_tables=2, bits_per_table=4, ntotal=4)"


def test_concatenate_codes_small_case():
    a = np.array([[0b101]], dtype=np.uint8)
    b = np.array([[0b011]], dtype=np.uint8)
    assert concatenate_codes([a, b], 3).tolist() == [[0b011_101]]


@SETTINGS
@given(
    n_tables=st.integers(1, 6),
    bits=st.integers(1, 150),
    n=st.integers(0, 5),
    seed=st.integers(0, 2**32 - 1),
)
def test_concatenate_codes_equals_packing_concatenated_bits(n_tables, bits, n, seed):
    rng = np.random.default_rng(seed)
    parts = [rng.integers(0, 2, (n, bits)) for _ in range(n_tables)]
    got = concatenate_codes([pack_bits(p) for p in parts], bits)
    expected = np.packbits(np.concatenate(parts, axis=1).astype(bool), axis=1, bitorder="little")
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == np.uint8 and got.flags.c_contiguous


def test_concatenate_codes_errors():
    a = np.zeros((2, 1), dtype=np.uint8)
    with pytest.raises(InvalidInputError, match="at least one"):
        concatenate_codes([], 4)
    with pytest.raises(InvalidInputError, match="list of code arrays"):
        concatenate_codes(a, 4)
    with pytest.raises(InvalidInputError, match="same number of rows"):
        concatenate_codes([a, a[:1]], 4)
    with pytest.raises(CodeFormatError, match=r"codes\[1\]"):
        concatenate_codes([a, np.full((2, 1), 0xF0, dtype=np.uint8)], 4)
    with pytest.raises(InvalidInputError, match="more than 4096"):
        concatenate_codes([np.zeros((1, 8), np.uint8)] * 65, 64)


# ---------------------------------------------------------------------- re-ranking by features


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_hash_table_rerank_matches_numpy(metric):
    rng = np.random.default_rng(2)
    n_bits, n, d = 21, 300, 6
    codes = clustered_codes(rng, n, n_bits)
    features = integer_features(rng, n, d)
    features[:3] = 0  # zero vectors: cosine distance 1
    ids = rng.choice(10_000, n, replace=False).astype(np.int64)
    index = HashTableIndex(n_bits, key_bits=9)
    index.add_with_ids(codes[:150], ids[:150], features=features[:150])
    index.add_with_ids(codes[150:], ids[150:], features=features[150:])
    removed = ids[::7]
    index.remove_ids(removed)
    keep = ~np.isin(ids, removed)
    queries = np.concatenate([codes[:4], clustered_codes(rng, 4, n_bits)])
    query_features = integer_features(rng, len(queries), d)
    query_features[0] = 0
    for radius, k in [(0, 5), (3, 10), (21, 400)]:
        candidates = hamming(queries, codes[keep]) <= radius
        expected = brute_rerank(
            codes[keep], ids[keep], features[keep], queries, query_features, k, metric, candidates
        )
        got = index.search_rerank(queries, query_features, k, radius, metric=metric)
        assert_results_equal(got, expected)


def test_multi_table_rerank_matches_numpy():
    rng = np.random.default_rng(3)
    n_tables, bits_per_table, n, d = 3, 6, 200, 4
    codes = clustered_codes(rng, n, n_tables * bits_per_table)
    features = integer_features(rng, n, d)
    ids = np.arange(n, dtype=np.int64)
    index = MultiTableIndex(n_tables, bits_per_table)
    index.add(codes, features=features)
    queries = clustered_codes(rng, 6, n_tables * bits_per_table)
    query_features = integer_features(rng, 6, d)
    for probe, metric in [(0, "cosine"), (1, "l2"), (6, "cosine")]:
        candidates = probed(codes, queries, n_tables, bits_per_table, probe)
        expected = brute_rerank(
            codes, ids, features, queries, query_features, 7, metric, candidates
        )
        got = index.search_rerank(queries, query_features, 7, probe_radius=probe, metric=metric)
        assert_results_equal(got, expected)


def test_rerank_hand_case():
    index = HashTableIndex(4)
    codes = np.array([[0], [1], [3], [15]], dtype=np.uint8)
    index.add(codes, features=[[1, 0], [0, 1], [1, 1], [-1, 0]])
    D, I = index.search_rerank(np.array([[0]], dtype=np.uint8), [[2, 0]], k=4, radius=2)
    # candidates within 2 bits: ids 0, 1, 2; cosine distances 0, 1, 1 - 1/sqrt(2)
    assert I.tolist() == [[0, 2, 1, -1]]
    np.testing.assert_allclose(D[0, :3], [0, 1 - 2**-0.5, 1], rtol=1e-6)
    assert D[0, 3] == np.inf
    D, I = index.search_rerank(
        np.array([[0]], dtype=np.uint8), [[2, 0]], k=2, radius=4, metric="l2"
    )
    assert I.tolist() == [[0, 2]] and D.tolist() == [[1.0, np.float32(np.sqrt(2))]]


def test_rerank_probes_two_bits_on_one_table_and_own_buckets_on_several_by_default():
    rng = np.random.default_rng(5)
    codes = clustered_codes(rng, 120, 16)
    features = integer_features(rng, 120, 3)
    queries, query_features = codes[:6], integer_features(rng, 6, 3)
    single, multi = HashTableIndex(16, key_bits=8), MultiTableIndex(2, 8)
    for index, default in ((single, 2), (multi, 0)):
        index.add(codes, features=features)
        assert_results_equal(
            index.search_rerank(queries, query_features, 9),
            index.search_rerank(queries, query_features, 9, default),
        )


# ---------------------------------------------------------------------- persistence


@pytest.mark.parametrize("mmap", [False, True])
@pytest.mark.parametrize("with_features", [False, True])
def test_save_load_round_trip(tmp_path, mmap, with_features):
    rng = np.random.default_rng(4)
    codes = clustered_codes(rng, 60, 40)
    features = integer_features(rng, 60, 3) if with_features else None
    queries = clustered_codes(rng, 5, 40)
    single, multi = HashTableIndex(40, key_bits=13), MultiTableIndex(4, 10)
    for index in (single, multi):
        index.add_with_ids(codes, np.arange(60) * 2, features=features)
        index.remove_ids([0, 10])
        path = tmp_path / f"{type(index).__name__}.hlindex"
        index.save(path)
        loaded = type(index).load(path, mmap=mmap)
        assert type(load_index(path, mmap=mmap)) is type(index)
        assert loaded.ntotal == 58 and loaded.has_features == with_features
        np.testing.assert_array_equal(loaded.ids, index.ids)
        assert_results_equal(loaded.search(queries, 7), index.search(queries, 7))
        assert_results_equal(loaded.range_search(queries, 9), index.range_search(queries, 9))
        if with_features:
            query_features = integer_features(rng, 5, 3)
            assert_results_equal(
                loaded.search_rerank(queries, query_features, 4, 12),
                index.search_rerank(queries, query_features, 4, 12),
            )
        new_features = features[:2] if with_features else None
        for target in (index, loaded):  # the memory maps are copied by the first change
            target.remove_ids([4])
            target.add_with_ids(codes[:2], [1001, 1003], features=new_features)
        assert loaded.ntotal == 59
        assert_results_equal(loaded.search(queries, 9), index.search(queries, 9))
        if with_features:
            assert_results_equal(
                loaded.search_rerank(queries, query_features, 9, 40, metric="l2"),
                index.search_rerank(queries, query_features, 9, 40, metric="l2"),
            )
    assert HashTableIndex.load(tmp_path / "HashTableIndex.hlindex").key_bits == 13
    loaded_multi = MultiTableIndex.load(tmp_path / "MultiTableIndex.hlindex")
    assert (loaded_multi.n_tables, loaded_multi.bits_per_table) == (4, 10)


def test_empty_index_round_trip_keeps_the_feature_mode(tmp_path):
    index = HashTableIndex(10)
    index.save(tmp_path / "a")
    loaded = HashTableIndex.load(tmp_path / "a")
    loaded.add(np.zeros((1, 2), np.uint8), features=[[1.0]])  # mode still open
    index.add(np.zeros((1, 2), np.uint8), features=[[1.0, 2.0]])
    index.remove_ids([0])
    index.save(tmp_path / "b")
    loaded = HashTableIndex.load(tmp_path / "b")
    assert loaded.has_features and loaded.n_features == 2
    with pytest.raises(InvalidInputError, match="pass features="):
        loaded.add(np.zeros((1, 2), np.uint8))


def _write(path, index_type, n_bits, params, codes=None, extra=None):
    codes = np.zeros((2, (n_bits + 7) // 8), np.uint8) if codes is None else codes
    arrays = {"codes": codes, "ids": np.arange(len(codes), dtype=np.int64), **(extra or {})}
    write_index_file(path, index_type=index_type, n_bits=n_bits, arrays=arrays, params=params)


@pytest.mark.parametrize(
    ("index_type", "params", "extra", "match"),
    [
        ("HashTableIndex", {"key_bits": 17}, None, "key_bits must be <= 16"),
        ("HashTableIndex", {"key_bits": "8"}, None, "key_bits must be an integer"),
        ("HashTableIndex", {"key_bits": 8, "has_features": False}, None, "invalid parameters"),
        ("HashTableIndex", {}, {"features": np.ones((2, 2))}, "float32 features of shape"),
        ("HashTableIndex", {}, {"features": np.ones((3, 2), np.float32)}, r"shape \(2, d >= 1"),
        ("HashTableIndex", {}, {"features": np.ones((2, 0), np.float32)}, "found float32 .2, 0."),
        (
            "HashTableIndex",
            {},
            {"features": np.array([[1, np.nan], [0, 0]], np.float32)},
            "non-finite",
        ),
        ("MultiTableIndex", {"n_tables": 3, "bits_per_table": 5}, None, "does not match"),
    ],
)
def test_bad_files(tmp_path, index_type, params, extra, match):
    path = tmp_path / "bad.hlindex"
    _write(path, index_type, 16, params, extra=extra)
    with pytest.raises(FileFormatError, match=match):
        load_index(path)


def test_other_index_types_and_corrupt_files(tmp_path):
    linear = LinearIndex(16)
    linear.save(tmp_path / "linear")
    with pytest.raises(FileFormatError, match="not a HashTableIndex"):
        HashTableIndex.load(tmp_path / "linear")
    index = HashTableIndex(16)
    index.add(np.ones((3, 2), np.uint8))
    index.save(tmp_path / "table")
    data = (tmp_path / "table").read_bytes()
    (tmp_path / "truncated").write_bytes(data[:-5])
    with pytest.raises(FileFormatError):
        HashTableIndex.load(tmp_path / "truncated")


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("cls", "args", "match"),
    [
        (HashTableIndex, (8, 0), "key_bits must be >= 1"),
        (HashTableIndex, (8, 9), "key_bits must be <= 8"),
        (HashTableIndex, (100, 65), "key_bits must be <= 64"),
        (HashTableIndex, (8, 2.0), "key_bits must be an integer"),
        (MultiTableIndex, (0, 8), "n_tables"),
        (MultiTableIndex, (2, 0), "bits_per_table"),
        (MultiTableIndex, (2, 65), "bits_per_table"),
        (MultiTableIndex, (65, 64), "n_tables \\* bits_per_table"),
        (MultiTableIndex, (2, 4, 9), r"n_bits \(9\) does not match the layout"),
    ],
)
def test_bad_layouts(cls, args, match):
    with pytest.raises(InvalidInputError, match=match):
        cls(*args)


def test_default_layouts():
    assert HashTableIndex(20).key_bits == 20
    assert HashTableIndex(200).key_bits == 64
    assert MultiTableIndex(2, 4, n_bits=8).n_bits == MultiTableIndex(2, 4).n_bits == 8


@pytest.mark.parametrize("make", [lambda: HashTableIndex(12, 5), lambda: MultiTableIndex(3, 4)])
def test_feature_errors(make):
    codes = np.zeros((2, 2), np.uint8)
    index = make()
    with pytest.raises(
        InvalidInputError, match=r"shape \(2, d\) \(one row per code\), got \(3, 4\)"
    ):
        index.add(codes, features=np.ones((3, 4)))
    with pytest.raises(InvalidInputError, match="2-D"):
        index.add(codes, features=np.ones(2))
    with pytest.raises(InvalidInputError, match="NaN or infinite"):
        index.add(codes, features=[[1, np.nan], [0, 0]])
    with pytest.raises(InvalidInputError, match="NaN or infinite"):
        index.add(codes, features=[[1e300, 0], [0, 0]])  # inf as float32
    with pytest.raises(InvalidInputError, match="must hold numbers"):
        index.add(codes, features=[["a", "b"], ["c", "d"]])
    assert index.ntotal == 0
    index.add(codes, features=np.ones((2, 4)))
    with pytest.raises(InvalidInputError, match=r"shape \(2, 4\) \(as stored in this index\)"):
        index.add(codes, features=np.ones((2, 5)))
    with pytest.raises(InvalidInputError, match="pass features="):
        index.add_with_ids(codes, [10, 11])
    with pytest.raises(UnknownNameError, match="unknown metric 'hamming'"):
        index.search_rerank(codes, np.ones((2, 4)), 1, 0, metric="hamming")
    with pytest.raises(UnknownNameError, match="unknown metric None"):
        index.search_rerank(codes, np.ones((2, 4)), 1, 0, metric=None)
    with pytest.raises(InvalidInputError, match=r"shape \(2, 4\)"):
        index.search_rerank(codes, np.ones((2, 3)), 1, 0)
    with pytest.raises(InvalidInputError, match="NaN"):
        index.search_rerank(codes, np.full((2, 4), np.nan), 1, 0)
    with pytest.raises(InvalidInputError, match="k must be >= 1"):
        index.search_rerank(codes, np.ones((2, 4)), 0, 0)
    assert index.ntotal == 2 and index.n_features == 4

    plain = make()
    plain.add(codes)
    with pytest.raises(InvalidInputError, match="stores no features"):
        plain.add(codes, features=np.ones((2, 4)))
    with pytest.raises(InvalidInputError, match="stores no features"):
        plain.search_rerank(codes, np.ones((2, 4)), 1, 0)
    plain.reset()  # a fresh start: the feature mode is open again
    plain.add(codes, features=np.ones((2, 4)))
    assert plain.has_features


def test_bad_search_arguments():
    index = HashTableIndex(12, key_bits=6)
    index.add(np.zeros((3, 2), np.uint8))
    queries = np.zeros((1, 2), np.uint8)
    with pytest.raises(InvalidInputError, match="max_radius must be >= 0"):
        index.search(queries, 1, max_radius=-1)
    with pytest.raises(InvalidInputError, match="radius must be >= 0"):
        index.range_search(queries, -1)
    with pytest.raises(InvalidInputError, match="k must be >= 1"):
        index.search(queries, 0)
    with pytest.raises(CodeFormatError, match="queries"):
        index.search(np.zeros((1, 3), np.uint8), 1)
    with pytest.raises(InvalidInputError, match="ids must be unique"):
        index.add_with_ids(np.zeros((2, 2), np.uint8), [7, 7])
    multi = MultiTableIndex(2, 6)
    multi.add(np.zeros((3, 2), np.uint8))
    with pytest.raises(InvalidInputError, match="probe_radius must be >= 0"):
        multi.search(queries, 1, probe_radius=-1)
    with pytest.raises(InvalidInputError, match="radius must be an integer"):
        multi.range_search(queries, 1.5)


def test_huge_radius_is_bounded():
    """A radius far beyond the key width scans the buckets instead of enumerating flips."""
    index = HashTableIndex(64)
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (50, 8), dtype=np.uint8)
    index.add(codes)
    ids = np.arange(50, dtype=np.int64)
    assert_results_equal(
        index.range_search(codes[:2], 10**9), range_search(codes, ids, codes[:2], 64)
    )
    multi = MultiTableIndex(2, 32)
    multi.add(codes)
    assert (multi.search(codes[:1], 50, probe_radius=10**9)[1] >= 0).all()
