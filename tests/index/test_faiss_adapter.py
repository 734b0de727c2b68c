"""Tests of hashlearn.index.faiss_adapter and faiss_convert: FaissIndex against the brute-force
reference, conversions to and from faiss."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _reference import hamming, knn, probed, range_search, to_codes
from hashlearn.exceptions import (
    CodeFormatError,
    FileFormatError,
    InvalidInputError,
    UnknownNameError,
)
from hashlearn.index import PAD_DISTANCE, PAD_ID, LinearIndex, UnknownIdError, load_index
from hashlearn.index._format import read_index_file, write_index_file
from hashlearn.index.faiss_adapter import FAISS_KINDS, FaissIndex, FaissNotInstalledError
from hashlearn.index.faiss_convert import (
    from_faiss,
    read_faiss_index,
    to_faiss,
    write_faiss_index,
)

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KIND_PARAMS = [
    ("flat", {}),
    ("hash", {"b": 8, "nflip": 1}),
    ("multihash", {"nhash": 3, "b": 6, "nflip": 1}),
]
CODES = np.array([[1, 2], [3, 4]], dtype=np.uint8)


@pytest.fixture(scope="module")
def faiss():
    return pytest.importorskip("faiss")


# ---------------------------------------------------------------------- references


def random_codes(rng: np.random.Generator, n: int, n_bits: int, n_pool: int = 0) -> np.ndarray:
    """Random codes; with ``n_pool`` > 0 they are drawn from a small pool, so ties are common."""
    width = n_bits // 8
    if n_pool:
        pool = rng.integers(0, 256, (n_pool, width), dtype=np.uint8)
        return pool[rng.integers(0, n_pool, n)]
    return rng.integers(0, 256, (n, width), dtype=np.uint8)


def candidates(queries, codes, n_bits, kind, params) -> np.ndarray:
    """``(nq, n)`` bool: items a hash index probes for each query (all of them for "flat"):
    ``nhash`` tables of ``b`` bits, probed within ``nflip`` bits (see ``_reference.probed``)."""
    if kind == "flat":
        return np.ones((len(queries), len(codes)), dtype=bool)
    return probed(codes, queries, params.get("nhash", 1), params["b"], params.get("nflip", 0))


def check_search(D, I, queries, codes, ids, allowed, k):
    """``(D, I)`` is a top-k over the ``allowed`` items, as exact as faiss can make it.

    Distances equal the exact top-k distances among the allowed items; ids below the k-th
    distance of a row are exactly the brute-force ones (sorted by distance, then id); ids at
    the k-th distance are distinct allowed items at that distance, ascending; padding at the end.
    """
    distance = hamming(queries, codes)
    k = min(k, len(ids))  # no more columns than items
    assert D.dtype == np.int32 and I.dtype == np.int64
    assert D.shape == I.shape == (len(queries), k)
    ref_d, ref_i = knn(codes, ids, queries, k, allowed=allowed)
    for q in range(len(queries)):
        n = int((ref_i[q] != PAD_ID).sum())
        assert D[q].tolist() == ref_d[q].tolist()  # padded with PAD_DISTANCE past n
        assert I[q, n:].tolist() == [PAD_ID] * (k - n)
        if not n:
            continue
        kth = ref_d[q, n - 1]
        below = ref_d[q, :n] < kth
        assert I[q, :n][below].tolist() == ref_i[q, :n][below].tolist()
        tied = I[q, :n][~below]
        at_kth = set(ids[allowed[q] & (distance[q] == kth)].tolist())
        assert set(tied.tolist()) <= at_kth
        assert np.all(np.diff(tied) > 0)


def range_as_lists(lims, D, I):
    assert lims.dtype == np.int64 and D.dtype == np.int32 and I.dtype == np.int64
    return [
        list(zip(D[lims[q] : lims[q + 1]].tolist(), I[lims[q] : lims[q + 1]].tolist(), strict=True))
        for q in range(len(lims) - 1)
    ]


def filled(kind, params, n_bits, codes, ids) -> FaissIndex:
    index = FaissIndex(n_bits, kind, **params)
    index.add_with_ids(codes, ids)
    return index


# ---------------------------------------------------------------------- search against references


@pytest.mark.parametrize(("kind", "params"), KIND_PARAMS)
@pytest.mark.parametrize("n_pool", [0, 7])
def test_search_and_range_search_match_brute_force(faiss, kind, params, n_pool):
    rng = np.random.default_rng(len(kind) + n_pool)
    n_bits = 24
    codes = random_codes(rng, 300, n_bits, n_pool)
    ids = rng.choice(10**15, size=300, replace=False).astype(np.int64)
    queries = np.concatenate([random_codes(rng, 20, n_bits), codes[:5]])
    index = FaissIndex(n_bits, kind, **params)
    index.add_with_ids(codes[:100], ids[:100])
    index.add_with_ids(codes[100:], ids[100:])
    allowed = candidates(queries, codes, n_bits, kind, params)
    for k in (1, 5, 40, 400):
        D, I = index.search(queries, k)
        check_search(D, I, queries, codes, ids, allowed, k)
    for radius in (0, 4, 9, n_bits):
        got = range_as_lists(*index.range_search(queries, radius))
        assert got == range_as_lists(*range_search(codes, ids, queries, radius, allowed=allowed))


@pytest.mark.parametrize("n_bits", [8, 64, 136])
def test_flat_distances_equal_linear_index(faiss, n_bits):
    rng = np.random.default_rng(n_bits)
    codes = random_codes(rng, 500, n_bits)  # 8 bits: many ties
    ids = rng.permutation(5000)[:500].astype(np.int64)
    queries = random_codes(rng, 30, n_bits)
    ours, linear = FaissIndex(n_bits), LinearIndex(n_bits)
    for index in (ours, linear):
        index.add_with_ids(codes, ids)
        index.remove_ids(ids[::7])
    for k in (1, 10, 600):
        D, I = ours.search(queries, k)
        D_ref, I_ref = linear.search(queries, k)
        assert np.array_equal(D, D_ref)
        kth = D_ref[:, -1:]  # ids agree wherever the distance is below the row's k-th distance
        assert np.array_equal(np.where(D_ref < kth, I, 0), np.where(D_ref < kth, I_ref, 0))
    for radius in (0, n_bits // 3, n_bits):
        got = ours.range_search(queries, radius)
        for a, b in zip(got, linear.range_search(queries, radius), strict=True):
            assert np.array_equal(a, b)


@st.composite
def small_cases(draw):
    kind, params = draw(st.sampled_from([*KIND_PARAMS[:2], ("multihash", {"nhash": 2, "b": 3})]))
    if kind == "hash":
        b = draw(st.integers(1, 16))
        params = {"b": b, "nflip": draw(st.integers(0, b))}
    values = draw(st.lists(st.integers(0, 2**16 - 1), max_size=25))
    ids = draw(
        st.lists(st.integers(0, 2**63 - 1), min_size=len(values), max_size=len(values), unique=True)
    )
    removed = draw(st.lists(st.sampled_from(ids), max_size=len(ids))) if ids else []
    queries = draw(st.lists(st.integers(0, 2**16 - 1), min_size=1, max_size=4))
    k = draw(st.integers(1, 30))
    radius = draw(st.integers(0, 16))
    return kind, params, values, ids, removed, queries, k, radius


@SETTINGS
@given(small_cases())
def test_small_indexes_match_brute_force(faiss, case):
    kind, params, values, ids, removed, query_values, k, radius = case
    codes, queries = to_codes(values, 16), to_codes(query_values, 16)
    ids = np.array(ids, dtype=np.int64)
    index = FaissIndex(16, kind, **params)
    index.add_with_ids(codes, ids)
    assert index.remove_ids(removed) == len(set(removed))
    keep = ~np.isin(ids, removed)
    codes, ids = codes[keep], ids[keep]
    assert index.ntotal == len(ids)
    assert sorted(index.ids.tolist()) == sorted(ids.tolist())
    allowed = candidates(queries, codes, 16, kind, params)
    check_search(*index.search(queries, k), queries, codes, ids, allowed, k)
    got = range_as_lists(*index.range_search(queries, radius))
    assert got == range_as_lists(*range_search(codes, ids, queries, radius, allowed=allowed))


@pytest.mark.parametrize(
    ("kind", "params"),
    [("hash", {"b": 10, "nflip": 10}), ("multihash", {"nhash": 4, "b": 6, "nflip": 6})],
)
def test_probing_every_bucket_is_exhaustive(faiss, kind, params):
    rng = np.random.default_rng(3)
    codes = random_codes(rng, 400, 32)
    queries = random_codes(rng, 15, 32)
    ours = filled(kind, params, 32, codes, np.arange(400))
    linear = LinearIndex(32)
    linear.add(codes)
    assert np.array_equal(ours.search(queries, 25)[0], linear.search(queries, 25)[0])
    for a, b in zip(ours.range_search(queries, 11), linear.range_search(queries, 11), strict=True):
        assert np.array_equal(a, b)


def test_hash_search_equals_faiss_itself(faiss):
    rng = np.random.default_rng(4)
    codes = random_codes(rng, 500, 64)
    near = codes[:20].copy()
    near[:, 0] ^= 1  # one bit changed
    queries = np.concatenate([random_codes(rng, 20, 64), near])
    ours = filled("multihash", {"nhash": 4, "b": 16, "nflip": 1}, 64, codes, np.arange(500) * 3)
    theirs = faiss.IndexBinaryMultiHash(64, 4, 16)
    theirs.nflip = 1
    theirs.add(codes)
    D, I = ours.search(queries, 10)
    D_ref, I_ref = theirs.search(queries, 10)
    assert np.array_equal(D, D_ref)  # faiss pads with -1 and int32 max too
    I_ref = np.where(I_ref >= 0, I_ref * 3, -1)
    I_ref = np.take_along_axis(I_ref, np.lexsort((I_ref, D_ref)), axis=1)
    below = D < D[:, -1:]
    assert np.array_equal(I[below], I_ref[below])
    assert (D[20:, 0] == 1).all()  # a one-bit change of an item is found at distance 1


# ---------------------------------------------------------------------- ids, padding, range


@pytest.mark.parametrize(("kind", "params"), KIND_PARAMS)
def test_ids_add_remove_reset(faiss, kind, params):
    codes = np.array([[1, 0, 0], [3, 0, 0], [0, 255, 0], [1, 0, 0]], dtype=np.uint8)
    index = FaissIndex(24, kind, **params)
    assert index.ntotal == 0 and len(index) == 0
    index.add(codes[:2])  # ids 0, 1
    index.add_with_ids(codes[2:], np.array([40, 7], dtype=np.uint16))
    assert index.ids.dtype == np.int64 and index.ids.tolist() == [0, 1, 40, 7]
    assert index.ntotal == 4
    assert np.array_equal(index.get_codes([7, 0]), codes[[3, 0]])
    D, I = index.search(codes[:1], 4)
    assert D[0, :2].tolist() == [0, 0] and I[0, :2].tolist() == [0, 7]  # tie ordered by id
    assert index.remove_ids([1, 99, 1]) == 1  # unknown and repeated ids are ignored
    assert index.ids.tolist() == [0, 40, 7]
    with pytest.raises(UnknownIdError, match="id 1 is not in the index"):
        index.get_codes([1])
    D, I = index.search(codes[1:2], 3)
    assert I[0].tolist()[:2] == [0, 7] and 1 not in I[0].tolist()
    with pytest.raises(InvalidInputError, match="already in the index"):
        index.add_with_ids(codes[:1], [40])
    index.add(codes[:1])  # sequential id 3 (ntotal)
    assert index.ids.tolist() == [0, 40, 7, 3]
    index.add_with_ids(codes[:1], [5])
    with pytest.raises(InvalidInputError, match=r"sequential ids 5\.\.6, but id 5 is already"):
        index.add(codes[:2])
    assert index.ntotal == 5
    index.reset()
    assert index.ntotal == 0 and index.ids.tolist() == []
    assert index.search(codes[:1], 2)[1].tolist() == [[]]  # an empty index: no column
    index.add(codes)
    assert index.ids.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("kind", "params", "faiss_bytes"),
    [("flat", {}, 2), ("hash", {"b": 4}, 2 + 8), ("multihash", {"nhash": 2, "b": 4}, 2 + 16)],
)
def test_nbytes_counts_the_faiss_copy(faiss, kind, params, faiss_bytes):
    # Ascending ids: 2 bytes of code and 8 of id per item, plus faiss' code and labels.
    index = filled(kind, params, 16, np.array([[1, 2], [3, 4], [5, 6]], dtype=np.uint8), [1, 4, 9])
    assert index.nbytes == 3 * (2 + 8) + 3 * faiss_bytes
    index.remove_ids([4])
    assert index.nbytes == 2 * (2 + 8) + 2 * faiss_bytes
    index.reset()
    assert index.nbytes == 0


def test_remove_everything_then_search(faiss):
    index = filled("hash", {"b": 4}, 8, np.array([[1], [2]], dtype=np.uint8), [5, 6])
    assert index.remove_ids([5, 6]) == 2
    D, I = index.search(np.array([[1]], dtype=np.uint8), 2)
    assert D.shape == I.shape == (1, 0)
    lims, D, I = index.range_search(np.array([[1]], dtype=np.uint8), 8)
    assert lims.tolist() == [0, 0] and len(D) == len(I) == 0


@pytest.mark.parametrize(("kind", "params"), KIND_PARAMS)
def test_padding(faiss, kind, params):
    index = FaissIndex(24, kind, **params)
    queries = np.zeros((2, 3), dtype=np.uint8)
    D, I = index.search(queries, 3)  # empty index: no column
    assert D.shape == I.shape == (2, 0)
    index.add_with_ids(np.array([[0, 0, 0], [1, 0, 0]], dtype=np.uint8), [9, 4])
    D, I = index.search(queries, 4)  # k beyond ntotal: ntotal columns
    assert D.tolist() == [[0, 1]] * 2
    assert I.tolist() == [[9, 4]] * 2
    D, I = index.search(np.empty((0, 3), dtype=np.uint8), 2)
    assert D.shape == I.shape == (0, 2)


def test_hash_rows_with_few_candidates_are_padded(faiss):
    # b = 8, nflip = 0: only items sharing the query's first byte are candidates.
    codes = np.array([[5, 0], [5, 255], [6, 0]], dtype=np.uint8)
    index = filled("hash", {"b": 8}, 16, codes, [1, 2, 3])
    D, I = index.search(np.array([[5, 0], [7, 0]], dtype=np.uint8), 3)
    assert D.tolist() == [[0, 8, PAD_DISTANCE], [PAD_DISTANCE] * 3]
    assert I.tolist() == [[1, 2, -1], [-1, -1, -1]]


@pytest.mark.parametrize(("kind", "params"), KIND_PARAMS)
def test_range_search_is_inclusive(faiss, kind, params):
    # Distances from the query 0: 0, 1, 2, 3 (ids 10, 20, 30, 40), and 0 again for id 5. The
    # codes differ in their last byte only, so the hash indexes find every one of them.
    codes = np.array([[0, 0, 0], [0, 0, 1], [0, 0, 3], [0, 0, 7], [0, 0, 0]], dtype=np.uint8)
    index = filled(kind, params, 24, codes, [10, 20, 30, 40, 5])
    query = np.zeros((1, 3), dtype=np.uint8)
    assert range_as_lists(*index.range_search(query, 0)) == [[(0, 5), (0, 10)]]
    assert range_as_lists(*index.range_search(query, 2)) == [[(0, 5), (0, 10), (1, 20), (2, 30)]]
    lims, D, I = index.range_search(np.empty((0, 3), dtype=np.uint8), 2)
    assert lims.tolist() == [0] and len(D) == len(I) == 0


def test_thread_setting_is_left_alone(faiss):
    before = faiss.omp_get_max_threads()
    index = filled("flat", {}, 64, random_codes(np.random.default_rng(0), 100, 64), np.arange(100))
    index.search(random_codes(np.random.default_rng(1), 10, 64), 5)
    index.range_search(random_codes(np.random.default_rng(1), 10, 64), 20)
    assert faiss.omp_get_max_threads() == before


# ---------------------------------------------------------------------- save and load


@pytest.mark.parametrize(("kind", "params"), KIND_PARAMS)
@pytest.mark.parametrize("mmap", [False, True])
def test_save_load_round_trip(faiss, tmp_path, kind, params, mmap):
    rng = np.random.default_rng(5)
    codes = random_codes(rng, 200, 32)
    ids = rng.choice(10**12, 200, replace=False)
    index = filled(kind, {**params, "nflip": 2} if params else params, 32, codes, ids)
    index.remove_ids(ids[:20])
    path = tmp_path / "a.hlindex"
    index.save(path)
    file = read_index_file(path)
    assert file.index_type == "faiss" and file.params == {"kind": kind, **index.params}
    assert file.arrays["faiss"].dtype == np.uint8
    queries = random_codes(rng, 10, 32)
    for loaded in (FaissIndex.load(path, mmap=mmap), load_index(path, mmap=mmap)):
        assert isinstance(loaded, FaissIndex)
        assert repr(loaded) == repr(index)
        assert loaded.kind == kind and loaded.params == index.params
        assert np.array_equal(loaded.ids, index.ids)
        assert np.array_equal(loaded.get_codes(ids[20:]), codes[20:])
        for a, b in zip(loaded.search(queries, 7), index.search(queries, 7), strict=True):
            assert np.array_equal(a, b)
        for a, b in zip(
            loaded.range_search(queries, 12), index.range_search(queries, 12), strict=True
        ):
            assert np.array_equal(a, b)
    # A loaded (possibly memory-mapped) index can change.
    assert loaded.remove_ids(ids[20:30]) == 10
    loaded.add_with_ids(codes[:5], ids[:5])
    assert loaded.ntotal == 175
    assert np.array_equal(loaded.search(codes[:5], 1)[1][:, 0], ids[:5])


@pytest.mark.parametrize("mmap", [False, True])
def test_save_load_empty_index(faiss, tmp_path, mmap):
    FaissIndex(16, "hash", b=4).save(tmp_path / "e.hlindex")
    loaded = load_index(tmp_path / "e.hlindex", mmap=mmap)
    assert repr(loaded) == "FaissIndex(n_bits=16, kind='hash', b=4, nflip=0, ntotal=0)"
    loaded.add(np.array([[1, 2]], dtype=np.uint8))
    assert loaded.search(np.array([[1, 2]], dtype=np.uint8), 1)[1].tolist() == [[0]]


def write_faiss_file(path, *, kind="flat", params=None, codes=None, ids=None, blob=None, n_bits=16):
    """An index file of type FaissIndex with the given (possibly inconsistent) parts."""
    codes = np.array([[1, 2], [3, 4]], dtype=np.uint8) if codes is None else codes
    ids = np.array([10, 11]) if ids is None else ids
    arrays = {"codes": codes, "ids": ids}
    if blob is not None:
        arrays["faiss"] = blob
    write_index_file(
        path,
        index_type="FaissIndex",
        n_bits=n_bits,
        arrays=arrays,
        params={"kind": kind, **(params or {})},
    )


def flat_blob(faiss, codes):
    flat = faiss.IndexBinaryFlat(8 * codes.shape[1])
    flat.add(codes)
    return faiss.serialize_index_binary(flat)


def test_corrupted_faiss_blob(faiss, tmp_path):
    good = flat_blob(faiss, CODES)
    path = tmp_path / "f.hlindex"
    write_faiss_file(path, blob=good)
    assert load_index(path).ntotal == 2  # the parts are consistent
    for blob in (good[: len(good) // 2], np.frombuffer(b"not a faiss index", dtype=np.uint8)):
        write_faiss_file(path, blob=blob)
        with pytest.raises(FileFormatError, match="faiss index stored in the file is corrupted"):
            load_index(path)


def hash_blob(faiss, codes, b=4, nflip=0):
    index = faiss.IndexBinaryHash(8 * codes.shape[1], b)
    index.nflip = nflip
    index.add(codes)
    return faiss.serialize_index_binary(index)


@pytest.mark.parametrize(
    ("make_blob", "settings", "match"),
    [
        (lambda f: flat_blob(f, CODES[::-1].copy()), {}, "its codes differ"),
        (lambda f: hash_blob(f, CODES), {}, "it is a IndexBinaryHash, expected a IndexBinaryFlat"),
        (lambda f: flat_blob(f, CODES[[0, 1, 0]]), {}, "it holds 3 codes of 16 bits, the file 2"),
        (lambda f: None, {}, "no 'faiss' section"),
        (lambda f: np.zeros(4, dtype=np.int32), {}, "no 'faiss' section of uint8"),
        (
            lambda f: hash_blob(f, CODES, nflip=0),
            {"kind": "hash", "params": {"b": 4, "nflip": 1}},
            "its parameters differ from those in the file header",
        ),
        (
            lambda f: flat_blob(f, CODES),
            {"kind": "ivf"},
            "invalid parameters: unknown FaissIndex kind 'ivf'",
        ),
        (
            lambda f: flat_blob(f, CODES),
            {"params": {"b": 3}},
            "invalid parameters: unknown parameter",
        ),
        (
            lambda f: flat_blob(f, CODES),
            {"n_bits": 12, "codes": np.array([[1, 2], [3, 4]], dtype=np.uint8)},
            "invalid parameters: FaissIndex needs n_bits to be a multiple of 8",
        ),
    ],
)
def test_inconsistent_faiss_files(faiss, tmp_path, make_blob, settings, match):
    path = tmp_path / "f.hlindex"
    write_faiss_file(path, blob=make_blob(faiss), **settings)
    with pytest.raises(FileFormatError, match=match):
        load_index(path)


def test_corrupted_file_fails_the_checksum(faiss, tmp_path):
    path = tmp_path / "c.hlindex"
    filled("flat", {}, 16, np.array([[1, 2], [3, 4]], dtype=np.uint8), [1, 2]).save(path)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # inside the faiss section, the last one
    path.write_bytes(bytes(data))
    with pytest.raises(FileFormatError, match="checksum mismatch"):
        load_index(path)
    with pytest.raises(FileFormatError, match="faiss index stored in the file"):
        load_index(path, verify=False)


# ---------------------------------------------------------------------- conversion to and from faiss


def linear_with(codes, ids, n_bits) -> LinearIndex:
    index = LinearIndex(n_bits)
    index.add_with_ids(codes, ids)
    return index


@pytest.mark.parametrize("source", ["linear", "faiss_hash"])
def test_to_faiss_and_back(faiss, source):
    rng = np.random.default_rng(6)
    codes = random_codes(rng, 300, 40)
    ids = rng.choice(2**62, 300, replace=False)
    if source == "linear":
        index = linear_with(codes, ids, 40)
    else:
        index = filled("hash", {"b": 8}, 40, codes, ids)
    exported = to_faiss(index)
    assert isinstance(exported, faiss.IndexBinaryIDMap2)
    assert isinstance(faiss.downcast_IndexBinary(exported.index), faiss.IndexBinaryFlat)
    assert exported.d == 40 and exported.ntotal == 300
    assert np.array_equal(faiss.vector_to_array(exported.id_map), ids)
    queries = random_codes(rng, 12, 40)
    linear = linear_with(codes, ids, 40)
    D, I = exported.search(queries, 5)
    D_ref, I_ref = linear.search(queries, 5)
    assert np.array_equal(D, D_ref)
    I = np.take_along_axis(I, np.lexsort((I, D)), axis=1)  # faiss leaves ties unordered
    below = D < D[:, -1:]
    assert np.array_equal(I[below], I_ref[below])
    back = from_faiss(exported)
    assert isinstance(back, LinearIndex) and back.n_bits == 40
    assert np.array_equal(back.ids, ids)
    assert np.array_equal(back.get_codes(ids), codes)
    for a, b in zip(back.search(queries, 9), linear.search(queries, 9), strict=True):
        assert np.array_equal(a, b)


def test_from_faiss_flat_and_id_maps(faiss):
    codes = np.array([[1], [2], [3]], dtype=np.uint8)
    flat = faiss.IndexBinaryFlat(8)
    flat.add(codes)
    index = from_faiss(flat)
    assert index.ids.tolist() == [0, 1, 2] and np.array_equal(index.get_codes([0, 1, 2]), codes)
    id_map = faiss.IndexBinaryIDMap(faiss.IndexBinaryFlat(8))
    id_map.add_with_ids(codes, np.array([30, 10, 20], dtype=np.int64))
    index = from_faiss(id_map)
    assert index.ids.tolist() == [30, 10, 20]
    assert np.array_equal(index.get_codes([10]), codes[1:2])
    empty = from_faiss(faiss.IndexBinaryFlat(16))
    assert empty.n_bits == 16 and empty.ntotal == 0
    assert to_faiss(empty).ntotal == 0


def test_from_faiss_errors(faiss):
    with pytest.raises(InvalidInputError, match="got a IndexBinaryHash"):
        from_faiss(faiss.IndexBinaryHash(16, 4))
    with pytest.raises(InvalidInputError, match="IndexBinaryIDMap2 over a IndexBinaryHash"):
        from_faiss(faiss.IndexBinaryIDMap2(faiss.IndexBinaryHash(16, 4)))
    with pytest.raises(InvalidInputError, match="got IndexFlatL2"):
        from_faiss(faiss.IndexFlatL2(8))
    with pytest.raises(InvalidInputError, match="got ndarray"):
        from_faiss(np.zeros((2, 2), dtype=np.uint8))
    negative = faiss.IndexBinaryIDMap(faiss.IndexBinaryFlat(8))
    negative.add_with_ids(np.array([[1], [2]], dtype=np.uint8), np.array([4, -3], dtype=np.int64))
    with pytest.raises(InvalidInputError, match="cannot become a LinearIndex: ids must be >= 0"):
        from_faiss(negative)


def test_to_faiss_errors(faiss):
    with pytest.raises(InvalidInputError, match="multiple of 8, got n_bits=12"):
        to_faiss(LinearIndex(12))
    with pytest.raises(InvalidInputError, match="takes a hashlearn BinaryIndex, got ndarray"):
        to_faiss(np.zeros((2, 2), dtype=np.uint8))

    class NoCodes(LinearIndex):
        get_codes = None

    with pytest.raises(InvalidInputError, match="NoCodes cannot give its codes"):
        to_faiss(NoCodes(8))


def test_write_and_read_faiss_index(faiss, tmp_path):
    rng = np.random.default_rng(7)
    codes = random_codes(rng, 100, 32)
    ids = rng.choice(10**9, 100, replace=False)
    index = linear_with(codes, ids, 32)
    path = tmp_path / "x.faissindex"
    path.write_bytes(b"old content")
    write_faiss_index(index, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.faissindex"]  # no temporary left
    direct = faiss.read_index_binary(str(path))  # faiss reads it itself
    assert isinstance(direct, faiss.IndexBinaryIDMap2) and direct.ntotal == 100
    back = read_faiss_index(path)
    assert np.array_equal(back.ids, ids) and np.array_equal(back.get_codes(ids), codes)
    queries = random_codes(rng, 8, 32)
    for a, b in zip(back.search(queries, 6), index.search(queries, 6), strict=True):
        assert np.array_equal(a, b)
    # A plain flat index written by faiss is read with ids 0 .. n - 1.
    flat = faiss.IndexBinaryFlat(32)
    flat.add(codes[:3])
    faiss.write_index_binary(flat, str(tmp_path / "flat.faissindex"))
    assert read_faiss_index(tmp_path / "flat.faissindex").ids.tolist() == [0, 1, 2]


def test_write_faiss_index_is_atomic(faiss, tmp_path, monkeypatch):
    path = tmp_path / "x.faissindex"
    path.write_bytes(b"old content")

    real_write = faiss.write_index_binary

    def failing_write(index, writer):
        real_write(index, writer)  # the whole index reaches the temporary file, then it fails
        raise RuntimeError("Error in write_index_binary at index_write.cpp:1: Error: disk full")

    monkeypatch.setattr(faiss, "write_index_binary", failing_write)
    with pytest.raises(OSError, match=r"could not write .*disk full"):
        write_faiss_index(linear_with(np.array([[1]], dtype=np.uint8), [1], 8), path)
    assert path.read_bytes() == b"old content"
    assert [p.name for p in tmp_path.iterdir()] == ["x.faissindex"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_faiss_index(LinearIndex(8), tmp_path / "nope" / "x.faissindex")
    with pytest.raises(IsADirectoryError):
        write_faiss_index(LinearIndex(8), tmp_path)


def test_read_faiss_index_errors(faiss, tmp_path):
    with pytest.raises(FileNotFoundError):
        read_faiss_index(tmp_path / "missing.faissindex")
    codes = np.array([[1, 2], [3, 4]], dtype=np.uint8)
    good = tmp_path / "good.faissindex"
    write_faiss_index(linear_with(codes, [5, 6], 16), good)
    data = good.read_bytes()
    float_index = tmp_path / "float.faissindex"
    faiss.write_index(faiss.IndexFlatL2(4), str(float_index))
    hash_index = faiss.IndexBinaryHash(16, 4)
    hash_index.add(codes)
    faiss.write_index_binary(hash_index, str(tmp_path / "hash.faissindex"))
    cases = {
        "empty": b"",
        "garbage": b"this is not a faiss index at all",
        "truncated": data[: len(data) - 5],
        "float": float_index.read_bytes(),
    }
    for name, content in cases.items():
        path = tmp_path / f"{name}.bad"
        path.write_bytes(content)
        with pytest.raises(FileFormatError, match="not a readable faiss binary index file"):
            read_faiss_index(path)
    with pytest.raises(
        FileFormatError, match=r"hash\.faissindex: from_faiss reads .* IndexBinaryHash"
    ):
        read_faiss_index(tmp_path / "hash.faissindex")


# ---------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("n_bits", "kind", "params", "error", "match"),
    [
        (12, "flat", {}, InvalidInputError, "n_bits to be a multiple of 8, got n_bits=12"),
        (0, "flat", {}, InvalidInputError, "n_bits must be >= 1"),
        (
            16,
            "ivf",
            {},
            UnknownNameError,
            "unknown FaissIndex kind 'ivf'; known kinds: flat, hash, multihash",
        ),
        (16, 3, {}, UnknownNameError, "unknown FaissIndex kind 3"),
        (16, "flat", {"b": 4}, InvalidInputError, "unknown parameter.*'b'.*it takes no parameters"),
        (16, "hash", {"b": 4, "nprobe": 2}, InvalidInputError, "'nprobe'.*it takes b, nflip"),
        (16, "hash", {}, InvalidInputError, "kind 'hash' needs b"),
        (16, "hash", {"b": 17}, InvalidInputError, "b must be <= 16"),
        (128, "hash", {"b": 65}, InvalidInputError, "b must be <= 64"),
        (16, "hash", {"b": 0}, InvalidInputError, "b must be >= 1"),
        (16, "hash", {"b": 4, "nflip": 5}, InvalidInputError, "nflip must be <= 4"),
        (16, "hash", {"b": 4, "nflip": -1}, InvalidInputError, "nflip must be >= 0"),
        (16, "hash", {"b": 4.0}, InvalidInputError, "b must be an integer"),
        (16, "multihash", {"b": 4}, InvalidInputError, "needs nhash"),
        (16, "multihash", {"b": 4, "nhash": 5}, InvalidInputError, "nhash \\* b must be <= n_bits"),
        (16, "multihash", {"b": 4, "nhash": 0}, InvalidInputError, "nhash must be >= 1"),
    ],
)
def test_bad_construction(faiss, n_bits, kind, params, error, match):
    with pytest.raises(error, match=match):
        FaissIndex(n_bits, kind, **params)


def test_kinds_and_numpy_params(faiss):
    assert FAISS_KINDS == ("flat", "hash", "multihash")
    index = FaissIndex(np.int64(32), "multihash", nhash=np.int32(2), b=np.int8(16))
    assert index.params == {"nhash": 2, "b": 16, "nflip": 0}
    assert all(type(v) is int for v in index.params.values())
    assert index.code_size == 4 and index.n_bits == 32


@pytest.mark.parametrize(("kind", "params"), KIND_PARAMS)
def test_bad_queries_k_radius_and_codes(faiss, kind, params):
    index = filled(kind, params, 24, np.zeros((2, 3), dtype=np.uint8), [1, 2])
    with pytest.raises(CodeFormatError, match="queries are 2 bytes wide"):
        index.search(np.zeros((1, 2), dtype=np.uint8), 1)
    with pytest.raises(CodeFormatError, match="queries must have dtype uint8"):
        index.range_search(np.zeros((1, 3), dtype=np.int64), 1)
    with pytest.raises(InvalidInputError, match="k must be >= 1"):
        index.search(np.zeros((1, 3), dtype=np.uint8), 0)
    with pytest.raises(InvalidInputError, match="radius must be >= 0"):
        index.range_search(np.zeros((1, 3), dtype=np.uint8), -1)
    with pytest.raises(CodeFormatError, match="codes are 4 bytes wide"):
        index.add(np.zeros((1, 4), dtype=np.uint8))
    with pytest.raises(InvalidInputError, match="ids must be >= 0"):
        index.add_with_ids(np.zeros((1, 3), dtype=np.uint8), [-5])
    with pytest.raises(InvalidInputError, match="ids has 2 entries but there are 1 codes"):
        index.add_with_ids(np.zeros((1, 3), dtype=np.uint8), [7, 8])
    assert index.ntotal == 2  # failed calls change nothing
    assert index.search(np.zeros((1, 3), dtype=np.uint8), 3)[1].tolist() == [[1, 2]]


# ---------------------------------------------------------------------- without faiss


def test_module_imports_without_faiss():
    code = (
        "import sys; sys.modules['faiss'] = None\n"
        "import hashlearn.index.faiss_adapter as fa\n"
        "try:\n"
        "    fa.FaissIndex(8)\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.startswith("FaissNotInstalledError ")
    assert 'pip install "hashlearn[faiss]"' in result.stdout
    # With faiss installed, importing the module still does not import it (it loads slowly).
    code = "import sys, hashlearn.index.faiss_adapter; print('faiss' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_loading_without_faiss_is_a_clear_import_error(faiss, monkeypatch, tmp_path):
    filled("hash", {"b": 4}, 16, CODES, [1, 2]).save(tmp_path / "h.hlindex")
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(FaissNotInstalledError, match=r'pip install "hashlearn\[faiss\]"'):
        load_index(tmp_path / "h.hlindex")


def test_missing_faiss_is_a_clear_import_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "faiss", None)  # makes "import faiss" fail
    for call in (
        lambda: FaissIndex(8),
        lambda: to_faiss(LinearIndex(8)),
        lambda: from_faiss(object()),
        lambda: read_faiss_index(tmp_path / "x"),
        lambda: write_faiss_index(LinearIndex(8), tmp_path / "x"),
    ):
        with pytest.raises(
            FaissNotInstalledError, match=r'pip install "hashlearn\[faiss\]"'
        ) as info:
            call()
        assert isinstance(info.value, ImportError) and info.value.name == "faiss"
