"""Tests of hashlearn.index: LinearIndex against the brute-force reference, faiss, and the file format."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from contextlib import contextmanager, nullcontext
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _reference import assert_results_equal, check_index, hamming, knn, range_search, to_codes
from hashlearn import _parallel
from hashlearn.codes import kernels
from hashlearn.exceptions import CodeFormatError, FileFormatError, InvalidInputError
from hashlearn.index import (
    PAD_DISTANCE,
    PAD_ID,
    BinaryIndex,
    LinearIndex,
    UnknownIdError,
    load_index,
    set_num_threads,
)
from hashlearn.index._format import ALIGNMENT, MAGIC, read_index_file, write_index_file
from hashlearn.index._format import writing as format_writing

INT32_MAX = 2**31 - 1
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------- reference


def rows(codes: np.ndarray) -> list[bytes]:
    return [row.tobytes() for row in codes]


@contextmanager
def scan_plan(query_block: int, n_parts: int, block_codes: int):
    """Force the numba scans and their work split: tiny query blocks, database parts and cache
    blocks (the native variants' splits are tested in tests/codes/test_kernels.py)."""
    previous = kernels.kernel_variant()
    plan = (query_block, n_parts, block_codes)
    kernels.use_kernel("numba")
    try:
        with mock.patch.object(kernels.numba_scan, "_plan", lambda n, nq, code_size: plan):
            yield
    finally:
        kernels.use_kernel(previous)


def check_against_reference(index: LinearIndex, items: dict[int, bytes], queries, ks, radii):
    ids = np.array(list(items), dtype=np.int64)
    codes = np.frombuffer(b"".join(items.values()), np.uint8).reshape(len(items), index.code_size)
    check_index(index, codes, ids, queries, ks, radii)


# ---------------------------------------------------------------------- property tests


@st.composite
def index_cases(draw):
    n_bits = draw(st.integers(1, 300))
    top = 2**n_bits - 1
    # A small pool of codes, sampled with repetition, makes duplicate codes (equal distances) common.
    pool = draw(st.lists(st.integers(0, top), min_size=1, max_size=6))
    values = draw(
        st.lists(st.one_of(st.sampled_from(pool), st.integers(0, top)), min_size=0, max_size=30)
    )
    ids = draw(
        st.lists(
            st.one_of(st.integers(0, 60), st.integers(0, 2**63 - 1)),
            min_size=len(values),
            max_size=len(values),
            unique=True,
        )
    )
    n_chunks = draw(st.integers(1, 3))
    cuts = sorted(
        draw(st.lists(st.integers(0, len(values)), min_size=n_chunks - 1, max_size=n_chunks - 1))
    )
    removed = draw(st.lists(st.sampled_from(ids), max_size=len(ids))) if ids else []
    unknown = draw(st.lists(st.integers(0, 2**63 - 1).filter(lambda x: x not in ids), max_size=2))
    queries = draw(
        st.lists(st.one_of(st.sampled_from(pool), st.integers(0, top)), min_size=1, max_size=4)
    )
    n_left = len(values) - len(set(removed))
    ks = draw(st.lists(st.integers(1, n_left + 5), min_size=1, max_size=3))
    radii = draw(st.lists(st.integers(0, n_bits), min_size=1, max_size=3))
    # (query block, database parts, cache block): the default plan, or tiny blocks and many parts.
    scan = draw(st.sampled_from([None, (4, 1, 1), (4, 3, 2), (8, 2, 5), (4, 7, 3)]))
    return n_bits, values, ids, cuts, removed + unknown, queries, ks, radii, scan


@SETTINGS
@given(index_cases())
def test_search_and_range_search_match_reference(case):
    n_bits, values, ids, cuts, to_remove, query_values, ks, radii, scan = case
    codes = to_codes(values, n_bits)
    queries = to_codes(query_values, n_bits)
    ids_array = np.array(ids, dtype=np.int64)
    index = LinearIndex(n_bits)
    for start, stop in zip([0, *cuts], [*cuts, len(values)], strict=True):
        index.add_with_ids(codes[start:stop], ids_array[start:stop])
    items = dict(zip(ids, rows(codes), strict=True))
    with scan_plan(*scan) if scan else nullcontext():
        check_against_reference(index, items, queries, ks, radii)
        removed = index.remove_ids(np.array(to_remove, dtype=np.int64))
        assert removed == len(set(to_remove) & set(items))
        for i in set(to_remove):
            items.pop(i, None)
        check_against_reference(index, items, queries, ks, radii)
    assert index.ids.tolist() == [i for i in ids if i in items]  # insertion order kept
    if items:
        some = list(items)[::2]
        assert rows(index.get_codes(some)) == [items[i] for i in some]


@SETTINGS
@given(
    n_bits=st.integers(1, 300),
    sizes=st.lists(st.integers(0, 12), min_size=1, max_size=4),
    k=st.integers(1, 60),
    data=st.data(),
)
def test_add_assigns_sequential_ids(n_bits, sizes, k, data):
    top = 2**n_bits - 1
    index = LinearIndex(n_bits)
    items: dict[int, bytes] = {}
    for size in sizes:
        values = data.draw(st.lists(st.integers(0, top), min_size=size, max_size=size))
        codes = to_codes(values, n_bits)
        first = index.ntotal
        index.add(codes)
        items.update(zip(range(first, first + size), rows(codes), strict=True))
    assert index.ids.tolist() == list(range(sum(sizes)))
    queries = to_codes(data.draw(st.lists(st.integers(0, top), min_size=1, max_size=3)), n_bits)
    check_against_reference(index, items, queries, [k], [data.draw(st.integers(0, n_bits))])


@pytest.mark.parametrize("n_bits", [1, 7, 64, 300])
def test_empty_index_returns_padding(n_bits):
    index = LinearIndex(n_bits)
    queries = np.zeros((3, (n_bits + 7) // 8), dtype=np.uint8)
    D, L = index.search(queries, 4)
    assert (D == PAD_DISTANCE).all() and (L == PAD_ID).all()
    assert PAD_DISTANCE == INT32_MAX and PAD_ID == -1
    lims, D, L = index.range_search(queries, n_bits)
    assert lims.tolist() == [0, 0, 0, 0] and D.shape == L.shape == (0,)
    D, L = index.search(queries[:0], 4)
    assert D.shape == L.shape == (0, 0)
    lims, D, L = index.range_search(queries[:0], 1)
    assert lims.tolist() == [0]


def test_results_have_no_more_columns_than_the_index_has_items():
    """Issue 18, item 13: results were sized queries x k, so ``-k 20000000`` with 10 queries
    allocated 2.5 GB and ``-k 10000000000`` ended in MemoryError; they now have ``min(k,
    ntotal)`` columns."""
    index = LinearIndex(8)
    index.add_with_ids(np.array([[0b1], [0b11]], dtype=np.uint8), [7, 3])
    D, L = index.search(np.array([[0]], dtype=np.uint8), 4)
    assert D.tolist() == [[1, 2]]
    assert L.tolist() == [[7, 3]]
    D, L = index.search(np.zeros((10, 1), np.uint8), 10**10)
    assert D.shape == L.shape == (10, 2)


def test_ties_are_broken_by_id_not_insertion_order():
    index = LinearIndex(16)
    codes = np.zeros((4, 2), dtype=np.uint8)
    index.add_with_ids(codes, [40, 10, 30, 20])
    D, L = index.search(codes[:1], 3)
    assert L.tolist() == [[10, 20, 30]] and D.tolist() == [[0, 0, 0]]
    _, D, L = index.range_search(codes[:1], 0)
    assert L.tolist() == [10, 20, 30, 40]


def test_range_search_is_inclusive():
    index = LinearIndex(8)
    index.add(np.array([[0b0], [0b1], [0b11], [0b111]], dtype=np.uint8))
    _, D, L = index.range_search(np.array([[0]], dtype=np.uint8), 2)
    assert D.tolist() == [0, 1, 2] and L.tolist() == [0, 1, 2]


# ---------------------------------------------------------------------- blocked scan


@pytest.mark.parametrize("plan", [(4, 1, 17), (8, 3, 5), (4, 2, 1000)])
@pytest.mark.parametrize("n_bits", [13, 24, 32, 64, 200])
def test_blocked_scan_matches_reference(n_bits, plan):
    rng = np.random.default_rng(n_bits)
    width = (n_bits + 7) // 8
    n = 240
    values = [int(v) for v in rng.integers(0, 2 ** min(n_bits, 62), size=n)]
    values[::9] = [values[0]] * len(values[::9])  # many exact duplicates
    codes = to_codes(values, n_bits)
    ids = rng.permutation(10 * n)[:n].astype(np.int64) * 3 + 5
    queries = np.concatenate(
        [codes[:4], to_codes([int(v) for v in rng.integers(0, 2 ** min(n_bits, 62), 13)], n_bits)]
    )
    assert queries.shape[1] == width
    index = LinearIndex(n_bits)
    index.add_with_ids(codes[:100], ids[:100])
    index.add_with_ids(codes[100:], ids[100:])
    items = dict(zip(ids.tolist(), rows(codes), strict=True))
    with scan_plan(*plan):
        check_against_reference(
            index, items, queries, [1, 5, 17, 40, n, n + 3], [0, n_bits // 3, n_bits]
        )
        index.remove_ids(ids[::3])
        for i in ids[::3].tolist():
            del items[i]
        check_against_reference(index, items, queries, [1, 9, 60, n], [n_bits // 2])


def test_default_blocks_on_a_larger_index_match_hamming_distance():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, size=(5000, 4), dtype=np.uint8)
    queries = rng.integers(0, 256, size=(300, 4), dtype=np.uint8)
    index = LinearIndex(32)
    index.add(codes)
    k = 25
    ids = np.arange(5000)
    assert_results_equal(index.search(queries, k), knn(codes, ids, queries, k))
    lims, RD, RI = index.range_search(queries, 10)
    assert_results_equal((lims, RD, RI), range_search(codes, ids, queries, 10))
    assert np.all(RD <= 10)


def test_repeated_adds_grow_storage_geometrically():
    index = LinearIndex(64)
    reallocations, storage = 0, index._store._codes
    for i in range(2000):
        index.add_with_ids(np.full((1, 8), i % 256, dtype=np.uint8), [2000 - i])
        if index._store._codes is not storage:
            reallocations, storage = reallocations + 1, index._store._codes
    assert reallocations <= 12
    assert index.ntotal == 2000 and index.ids.tolist() == list(range(2000, 0, -1))
    _, L = index.search(np.zeros((1, 8), dtype=np.uint8), 3)
    assert L.tolist() == [[208, 464, 720]]  # the codes equal to 0, smallest ids first


# ---------------------------------------------------------------------- faiss


@pytest.mark.parametrize("n_bits", [8, 64, 72, 256])
def test_search_matches_faiss(n_bits):
    faiss = pytest.importorskip("faiss")
    rng = np.random.default_rng(n_bits)
    width = n_bits // 8
    codes = rng.integers(0, 256, size=(700, width), dtype=np.uint8)
    codes[::7] = codes[3]  # duplicates
    queries = np.concatenate([codes[:5], rng.integers(0, 256, size=(40, width), dtype=np.uint8)])
    ours = LinearIndex(n_bits)
    ours.add(codes)
    reference = faiss.IndexBinaryFlat(n_bits)
    reference.add(codes)
    full = hamming(queries, codes)
    for k in (1, 10, 100):
        D, L = ours.search(queries, k)
        fD, fL = reference.search(queries, k)
        np.testing.assert_array_equal(D, fD)
        # Ids agree wherever the distance is unique among all items (no tie to break).
        counts = np.stack([np.bincount(row, minlength=n_bits + 1) for row in full])
        unique = np.take_along_axis(counts, D.astype(np.int64), axis=1) == 1
        np.testing.assert_array_equal(L[unique], fL[unique])
    # faiss' range search is strict (< radius); ours is inclusive (<= radius).
    radius = n_bits // 3
    lims, D, L = ours.range_search(queries, radius)
    f_lims, f_D, f_L = reference.range_search(queries, radius + 1)
    np.testing.assert_array_equal(lims, f_lims)
    for q in range(len(queries)):
        a, b = slice(lims[q], lims[q + 1]), slice(f_lims[q], f_lims[q + 1])
        assert sorted(zip(D[a], L[a], strict=True)) == sorted(zip(f_D[b], f_L[b], strict=True))


# ---------------------------------------------------------------------- persistence


def random_codes(rng: np.random.Generator, n: int, n_bits: int) -> np.ndarray:
    codes = rng.integers(0, 256, size=(n, (n_bits + 7) // 8), dtype=np.uint8)
    codes[:, -1] &= 0xFF >> (-n_bits % 8)  # the unused high bits stay 0
    return codes


def make_index(n_bits=20, n=50, seed=0) -> LinearIndex:
    rng = np.random.default_rng(seed)
    index = LinearIndex(n_bits)
    index.add_with_ids(random_codes(rng, n, n_bits), rng.permutation(1000)[:n] + 1)
    return index


@pytest.mark.parametrize("mmap", [False, True])
@pytest.mark.parametrize("n_bits", [5, 20, 64, 300])
def test_save_load_round_trip(tmp_path, mmap, n_bits):
    index = make_index(n_bits)
    index.remove_ids(index.ids[::4])
    path = tmp_path / "index.hlindex"
    index.save(path)
    queries = random_codes(np.random.default_rng(1), 6, n_bits)
    for loaded in (LinearIndex.load(path, mmap=mmap), load_index(str(path), mmap=mmap)):
        assert type(loaded) is LinearIndex
        assert (loaded.n_bits, loaded.ntotal) == (n_bits, index.ntotal)
        np.testing.assert_array_equal(loaded.ids, index.ids)
        for got, expected in zip(loaded.search(queries, 7), index.search(queries, 7), strict=True):
            np.testing.assert_array_equal(got, expected)
        for got, expected in zip(
            loaded.range_search(queries, n_bits // 2),
            index.range_search(queries, n_bits // 2),
            strict=True,
        ):
            np.testing.assert_array_equal(got, expected)
        assert isinstance(loaded._store._codes, np.memmap) == mmap
        assert not (mmap and loaded._store._codes.flags.writeable)
        # A loaded index (memory-mapped or not) stays usable: add and remove copy as needed.
        extra = index.get_codes(index.ids[:2])
        loaded.add_with_ids(extra, [5000, 5001])
        assert loaded.remove_ids([5000, int(index.ids[0])]) == 2
        assert loaded.ids.tolist() == [*index.ids[1:].tolist(), 5001]
    # The file is untouched by those changes.
    np.testing.assert_array_equal(load_index(path).ids, index.ids)


@pytest.mark.parametrize("mmap", [False, True])
def test_save_load_empty_index(tmp_path, mmap):
    path = tmp_path / "empty.hlindex"
    LinearIndex(33).save(path)
    loaded = load_index(path, mmap=mmap)
    assert (loaded.n_bits, loaded.ntotal, loaded.ids.tolist()) == (33, 0, [])
    loaded.add(np.zeros((2, 5), dtype=np.uint8))
    assert loaded.ids.tolist() == [0, 1]


def test_file_layout(tmp_path):
    path = tmp_path / "index.hlindex"
    index = make_index(12, 9)
    index.save(path)
    data = path.read_bytes()
    magic, version, header_length = struct.unpack("<8sII", data[:16])
    assert (magic, version) == (MAGIC, 1)
    header = json.loads(data[16 : 16 + header_length].decode("utf-8"))
    assert header["index_type"] == "linear"  # the registry name
    assert (header["n_bits"], header["code_size"], header["ntotal"]) == (12, 2, 9)
    assert len(header["sha256"]) == 64
    start = -(-(16 + header_length) // ALIGNMENT) * ALIGNMENT
    assert len(data) == start + header["payload_nbytes"]
    sections = {s["name"]: s for s in header["sections"]}
    assert sections["codes"]["dtype"] == "|u1" and sections["codes"]["shape"] == [9, 2]
    assert sections["ids"]["dtype"] == "<i8" and sections["ids"]["shape"] == [9]
    for section in sections.values():
        assert (start + section["offset"]) % ALIGNMENT == 0
    offset = start + sections["ids"]["offset"]
    np.testing.assert_array_equal(np.frombuffer(data[offset : offset + 72], "<i8"), index.ids)


@pytest.mark.parametrize("mmap", [False, True])
def test_format_stores_extra_arrays_and_params(tmp_path, mmap):
    path = tmp_path / "custom.hlindex"
    arrays = {
        "codes": np.arange(6, dtype=np.uint8).reshape(3, 2),
        "ids": np.array([4, 5, 6], dtype=np.int64),
        "buckets": np.arange(12, dtype=">i4").reshape(3, 4),  # big-endian in, little-endian on disk
        "empty": np.zeros((0, 3), dtype=np.float32),
        "flags": np.array([True, False]),
    }
    write_index_file(
        path, index_type="Custom", n_bits=16, arrays=arrays, params={"m": 2, "name": "é"}
    )
    file = read_index_file(path, mmap=mmap)
    assert (file.index_type, file.n_bits, file.ntotal, file.code_size) == ("Custom", 16, 3, 2)
    assert file.params == {"m": 2, "name": "é"}
    assert list(file.arrays) == list(arrays)
    for name, array in arrays.items():
        np.testing.assert_array_equal(file.arrays[name], array)
        assert file.arrays[name].shape == array.shape
    assert file.arrays["buckets"].dtype == np.dtype("<i4")
    with pytest.raises(FileFormatError, match="index type 'Custom' is not known"):
        load_index(path)
    with pytest.raises(FileFormatError, match="holds a Custom, not a LinearIndex"):
        LinearIndex.load(path)


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "index.hlindex"
    make_index(seed=1).save(path)
    before = path.read_bytes()
    calls = []

    def failing_write(handle, array):
        calls.append(array)
        handle.write(b"partial")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(format_writing, "_write_section", failing_write)
    with pytest.raises(OSError, match="disk full"):
        make_index(seed=2, n=80).save(path)
    assert calls
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["index.hlindex"]  # no temporary file left behind
    monkeypatch.undo()
    np.testing.assert_array_equal(load_index(path).ids, make_index(seed=1).ids)


@pytest.fixture
def saved(tmp_path) -> tuple[Path, bytes]:
    path = tmp_path / "index.hlindex"
    make_index(24, 40).save(path)
    return path, path.read_bytes()


@pytest.mark.parametrize("mmap", [False, True])
def test_truncated_file(saved, mmap):
    path, data = saved
    path.write_bytes(data[:-10])
    with pytest.raises(
        FileFormatError, match=rf"truncated: expected {len(data)} bytes, got {len(data) - 10}"
    ):
        load_index(path, mmap=mmap)
    path.write_bytes(data[:100])
    with pytest.raises(FileFormatError, match="truncated: expected at least"):
        load_index(path, mmap=mmap)
    path.write_bytes(data[:5])
    with pytest.raises(FileFormatError, match="truncated: expected at least 16 bytes, got 5"):
        load_index(path, mmap=mmap)


@pytest.mark.parametrize("mmap", [False, True])
def test_corrupted_payload(saved, mmap):
    path, data = saved
    for position in (len(data) - 1, len(data) - 400):
        corrupted = bytearray(data)
        corrupted[position] ^= 0x10
        path.write_bytes(bytes(corrupted))
        with pytest.raises(FileFormatError, match="checksum mismatch: the file is corrupted"):
            load_index(path, mmap=mmap)
    # verify=False trusts the file (and reads it anyway).
    assert load_index(path, mmap=mmap, verify=False).ntotal == 40


def test_corrupted_header_value_fails_the_checksum(saved):
    path, data = saved
    old = b'"ntotal":40'
    assert old in data
    # Same length, different meaning: only the checksum can tell.
    path.write_bytes(data.replace(b'"index_type":"linear"', b'"index_type":"lineaR"'))
    with pytest.raises(FileFormatError, match="checksum mismatch"):
        read_index_file(path)
    path.write_bytes(data.replace(old, b'"ntotal":41'))
    with pytest.raises(FileFormatError, match="corrupted header"):
        load_index(path)
    path.write_bytes(data.replace(b'"sections":[', b'"sections";['))
    with pytest.raises(FileFormatError, match="corrupted header: it is not valid JSON"):
        load_index(path)


@pytest.mark.parametrize(
    "content",
    [
        b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(100),
        bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8)),
        b"hello",
        b"PK\x03\x04 a zip file",
    ],
    ids=["png", "random", "short-text", "zip"],
)
def test_foreign_file(tmp_path, content):
    path = tmp_path / "foreign.bin"
    path.write_bytes(content)
    with pytest.raises(FileFormatError, match="not a hashlearn index file"):
        load_index(path)
    with pytest.raises(FileFormatError, match="not a hashlearn index file"):
        LinearIndex.load(path, mmap=True)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.hlindex"
    path.write_bytes(b"")
    with pytest.raises(FileFormatError, match=r"empty \(0 bytes\)"):
        load_index(path)


def test_newer_format_version(saved):
    path, data = saved
    path.write_bytes(data[:8] + struct.pack("<L", 2) + data[12:])
    with pytest.raises(FileFormatError, match=r"format version 2.*reads format version 1 at most"):
        load_index(path)
    path.write_bytes(data[:8] + struct.pack("<L", 0) + data[12:])
    with pytest.raises(FileFormatError, match="unsupported index format version 0"):
        load_index(path)


def test_trailing_bytes(saved):
    path, data = saved
    path.write_bytes(data + b"junk")
    with pytest.raises(FileFormatError, match="4 unexpected trailing bytes"):
        load_index(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_index(tmp_path / "nope.hlindex")


# ---------------------------------------------------------------------- bad input


@pytest.fixture
def index() -> LinearIndex:
    index = LinearIndex(12)
    index.add_with_ids(np.array([[1, 0], [2, 0], [3, 15]], dtype=np.uint8), [10, 20, 30])
    return index


@pytest.mark.parametrize(
    ("codes", "match"),
    [
        (np.zeros((2, 2), dtype=np.int64), "must have dtype uint8.*got int64"),
        (np.zeros((2, 2), dtype=np.float32), "must have dtype uint8.*got float32"),
        (np.zeros((2, 3), dtype=np.uint8), "are 3 bytes wide, but 12-bit codes take 2 bytes"),
        (np.zeros(2, dtype=np.uint8), "must be 2-D"),
        (np.array([[0, 16]], dtype=np.uint8), "bits set beyond bit 12"),
        ([[0, 0]], "must be a numpy.ndarray of uint8, got list"),
    ],
)
def test_bad_codes(index, codes, match):
    with pytest.raises(CodeFormatError, match=match):
        index.add(codes)
    with pytest.raises(CodeFormatError, match=match):
        index.add_with_ids(codes, np.arange(100, 100 + len(codes)))
    with pytest.raises(CodeFormatError, match=match):
        index.search(codes, 1)
    with pytest.raises(CodeFormatError, match=match):
        index.range_search(codes, 1)
    assert index.ntotal == 3


def test_bad_queries_are_named(index):
    with pytest.raises(CodeFormatError, match="queries are 1 bytes wide"):
        index.search(np.zeros((1, 1), dtype=np.uint8), 1)


@pytest.mark.parametrize(
    ("k", "match"),
    [
        (0, "k must be >= 1, got 0"),
        (-3, "k must be >= 1, got -3"),
        (2.5, "k must be an integer"),
        (True, "k must be an integer"),
    ],
)
def test_bad_k(index, k, match):
    with pytest.raises(InvalidInputError, match=match):
        index.search(np.zeros((1, 2), dtype=np.uint8), k)


@pytest.mark.parametrize(
    ("radius", "match"), [(-1, "radius must be >= 0, got -1"), (1.0, "radius must be an integer")]
)
def test_bad_radius(index, radius, match):
    with pytest.raises(InvalidInputError, match=match):
        index.range_search(np.zeros((1, 2), dtype=np.uint8), radius)


def test_numpy_integers_are_accepted_for_k_and_radius(index):
    queries = np.zeros((1, 2), dtype=np.uint8)
    assert index.search(queries, np.int32(2))[1].tolist() == [[10, 20]]
    assert index.range_search(queries, np.int64(1))[2].tolist() == [10, 20]


@pytest.mark.parametrize(
    ("ids", "match"),
    [
        (np.array([1.0, 2.0]), "ids must hold integers, got dtype float64"),
        ([1.5, 2], "ids must hold integers, got dtype float64"),
        (np.array([True, False]), "ids must hold integers, got dtype bool"),
        ([7, 7], "id 7 appears more than once"),
        ([20, 40], r"id 20 is already in the index \(1 of the 2"),
        ([1, -1], "ids must be >= 0.*got -1 at position 1"),
        ([1, 2, 3], "ids has 3 entries but there are 2 codes"),
        ([1], "ids has 1 entries but there are 2 codes"),
        ([[1, 2]], "ids must be a 1-D array"),
        (np.array([2**63, 1], dtype=np.uint64), "must fit in int64"),
        (["a", "b"], "ids must hold integers"),
    ],
)
def test_bad_ids(index, ids, match):
    with pytest.raises(InvalidInputError, match=match):
        index.add_with_ids(np.zeros((2, 2), dtype=np.uint8), ids)
    assert index.ntotal == 3 and index.ids.tolist() == [10, 20, 30]


@pytest.mark.parametrize("dtype", [np.int8, np.uint16, np.int32, np.uint64, np.int64])
def test_integer_id_dtypes_are_accepted(dtype):
    index = LinearIndex(8)
    index.add_with_ids(np.zeros((2, 1), dtype=np.uint8), np.array([3, 4], dtype=dtype))
    assert index.ids.dtype == np.int64 and index.ids.tolist() == [3, 4]


def test_add_refuses_sequential_ids_already_taken():
    index = LinearIndex(8)
    index.add_with_ids(np.zeros((1, 1), dtype=np.uint8), [2])
    with pytest.raises(InvalidInputError, match=r"add\(\) assigns sequential ids 1..2, but id 2"):
        index.add(np.zeros((2, 1), dtype=np.uint8))
    index.add(np.zeros((1, 1), dtype=np.uint8))  # id 1 is free
    assert index.ids.tolist() == [2, 1]


@pytest.mark.parametrize(
    ("n_bits", "match"),
    [
        (0, "n_bits must be >= 1"),
        (4097, "n_bits must be <= 4096"),
        (8.0, "n_bits must be an integer"),
    ],
)
def test_bad_n_bits(n_bits, match):
    with pytest.raises(InvalidInputError, match=match):
        LinearIndex(n_bits)


def test_get_codes_and_unknown_ids(index):
    assert index.get_codes([30, 10]).tolist() == [[3, 15], [1, 0]]
    with pytest.raises(UnknownIdError, match=r"id 99 is not in the index \(1 of the 2 ids"):
        index.get_codes([10, 99])
    with pytest.raises(KeyError):
        index.get_codes([99])
    with pytest.raises(InvalidInputError):
        index.get_codes([99])


def test_remove_ids(index):
    assert index.remove_ids([99, 20, 20, -1]) == 1
    assert index.ids.tolist() == [10, 30]
    assert index.remove_ids(np.array([], dtype=np.int64)) == 0
    with pytest.raises(InvalidInputError, match="ids must hold integers"):
        index.remove_ids([1.0])
    index.add_with_ids(np.zeros((1, 2), dtype=np.uint8), [20])  # a removed id can come back
    assert index.ids.tolist() == [10, 30, 20]
    index.reset()
    assert (index.ntotal, index.n_bits, index.ids.tolist()) == (0, 12, [])
    index.add(np.zeros((1, 2), dtype=np.uint8))
    assert index.ids.tolist() == [0]


def test_misc_api(index):
    assert isinstance(index, BinaryIndex)
    assert (index.n_bits, index.code_size, len(index)) == (12, 2, 3)
    assert repr(index) == "LinearIndex(n_bits=12, ntotal=3)"
    ids = index.ids
    ids[0] = 999
    assert index.ids[0] == 10  # ids returns a copy
    with pytest.raises(TypeError):
        BinaryIndex(8)  # abstract


def test_index_does_not_import_torch():
    code = "import sys, hashlearn.index; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("codes", "ids", "match"),
    [
        (np.zeros((2, 1), dtype=np.uint8), np.array([3, 3]), "holds id 3 more than once"),
        (np.zeros((2, 1), dtype=np.uint8), np.array([3, -1]), r"holds a negative id \(-1\)"),
        (np.array([[0], [0x80]], dtype=np.uint8), np.array([1, 2]), "invalid codes.*beyond bit 7"),
    ],
)
def test_file_with_invalid_items(tmp_path, codes, ids, match):
    path = tmp_path / "bad.hlindex"
    write_index_file(path, index_type="LinearIndex", n_bits=7, arrays={"codes": codes, "ids": ids})
    with pytest.raises(FileFormatError, match=match):
        load_index(path)


# ---------------------------------------------------------------------- storage


def test_ascending_ids_cost_code_plus_eight_bytes_per_item():
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 256, size=(1000, 8), dtype=np.uint8)
    index = LinearIndex(64)
    index.add(codes[:600])
    index.add_with_ids(codes[600:], np.arange(700, 1100))  # still ascending
    assert index.nbytes == 1000 * (8 + 8)
    assert index._store.order()[1] is None  # rank is the position: nothing extra is held
    queries = codes[::97]
    D_asc, I_asc = index.search(queries, 7)
    lims_asc, RD_asc, RI_asc = index.range_search(queries, 28)

    shuffled = LinearIndex(64)
    order = rng.permutation(1000)
    shuffled.add_with_ids(codes[order], index.ids[order])
    assert shuffled.nbytes > 1000 * (8 + 8)  # out of order: an id map is needed
    shuffled.search(queries[:1], 1)
    assert shuffled.nbytes == 1000 * (8 + 8 + 16 + 16)  # ... and a rank cache while searching
    D, I = shuffled.search(queries, 7)
    np.testing.assert_array_equal(D, D_asc)
    np.testing.assert_array_equal(I, I_asc)
    lims, RD, RI = shuffled.range_search(queries, 28)
    np.testing.assert_array_equal(lims, lims_asc)
    np.testing.assert_array_equal(RD, RD_asc)
    np.testing.assert_array_equal(RI, RI_asc)

    # Removing items keeps the order; removing the out-of-order ones restores the compact form.
    index.remove_ids(np.arange(0, 1100, 3))
    assert index.nbytes == index.ntotal * 16
    late = LinearIndex(64)
    late.add_with_ids(codes[:3], [5, 1, 9])
    assert late.nbytes > 3 * 16
    late.remove_ids([1])
    assert late.nbytes == 2 * 16 and late.get_codes([9]).tolist() == [codes[2].tolist()]


def test_parallel_map_nested_in_a_pool_thread_runs_inline():
    set_num_threads(2)
    try:
        inner = _parallel.parallel_map(
            lambda i: _parallel.parallel_map(lambda j: (i, j), [(0,), (1,)]), [(0,), (1,), (2,)]
        )
    finally:
        set_num_threads(os.cpu_count() or 1)
    assert inner == [[(i, 0), (i, 1)] for i in range(3)]


@pytest.mark.parametrize("n_bits", [8, 64, 128, 185, 256, 320, 600])
def test_every_word_of_a_code_counts(n_bits):
    # One kernel per word count (1, 2, 3, 4, any): a flipped bit in the last word must show.
    code_size = (n_bits + 7) // 8
    index = LinearIndex(n_bits)
    index.add(np.zeros((1, code_size), dtype=np.uint8))
    query = np.zeros((1, code_size), dtype=np.uint8)
    query[0, -1] = 1
    assert index.search(query, 1)[0].tolist() == [[1]]
    assert index.range_search(query, 0)[0].tolist() == [0, 0]


def test_search_results_are_written_as_npz_by_name(tmp_path):
    from hashlearn.index import write_search_results

    index = LinearIndex(16)
    index.add(to_codes([v * 7 for v in range(20)], 16))
    queries = to_codes([0, 5, 300], 16)
    D, I = index.search(queries, 3)
    write_search_results(tmp_path / "knn.npz", D, I)
    lims, RD, RI = index.range_search(queries, 4)
    write_search_results(tmp_path / "range.npz", RD, RI, lims)
    with np.load(tmp_path / "knn.npz", allow_pickle=False) as saved:
        assert saved.files == ["distances", "ids"]
        np.testing.assert_array_equal(saved["distances"], D)
        np.testing.assert_array_equal(saved["ids"], I)
    with np.load(tmp_path / "range.npz", allow_pickle=False) as saved:
        assert saved.files == ["lims", "distances", "ids"]
        for name, array in (("lims", lims), ("distances", RD), ("ids", RI)):
            np.testing.assert_array_equal(saved[name], array)
