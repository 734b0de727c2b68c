"""Every Hamming kernel variant this CPU can run equals the brute-force reference.

Variants the CPU (or the installation) cannot run are skipped, with the reason printed in the
skip line; run the suite on another CPU class to cover them (benchmarks/README.md lists where each
ran). A variant is forced with ``use_kernel`` (``HASHLEARN_KERNEL`` does the same per process).
"""

from __future__ import annotations

import os
import subprocess
import sys
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _reference import assert_results_equal, knn, range_search, to_codes
from hashlearn.codes import kernels
from hashlearn.codes.kernels import native
from hashlearn.exceptions import InvalidInputError, UnknownNameError
from hashlearn.index import LinearIndex

AVAILABLE = kernels.available_kernels()
INFO = kernels.kernel_info()


def _variant_param(name: str):
    if name in AVAILABLE:
        return pytest.param(name, id=name)
    reason = f"{name} kernel not runnable here: {INFO['cpu']}; native library: {INFO['native']}"
    return pytest.param(name, id=name, marks=pytest.mark.skip(reason=reason))


VARIANT_PARAMS = [_variant_param(name) for name in kernels.VARIANTS]


@pytest.fixture
def variant(request):
    previous = kernels.kernel_variant()
    kernels.use_kernel(request.param)
    yield request.param
    kernels.use_kernel(previous)


@st.composite
def scans(draw):
    n_bits = draw(st.integers(1, 300))
    top = 2**n_bits - 1
    pool = draw(st.lists(st.integers(0, top), min_size=1, max_size=6))
    values = draw(st.lists(st.one_of(st.sampled_from(pool), st.integers(0, top)), max_size=70))
    ids = draw(
        st.lists(st.integers(0, 2**40), min_size=len(values), max_size=len(values), unique=True)
    )
    removed = draw(st.lists(st.sampled_from(ids), max_size=len(ids))) if ids else []
    n_queries = draw(st.sampled_from([1, 3, 4, 5, 9, 20]))
    queries = draw(
        st.lists(
            st.one_of(st.sampled_from(pool), st.integers(0, top)),
            min_size=n_queries,
            max_size=n_queries,
        )
    )
    k = draw(st.integers(1, len(values) + 4))
    radius = draw(st.integers(0, n_bits))
    return n_bits, values, ids, removed, queries, k, radius


@pytest.mark.parametrize("variant", VARIANT_PARAMS, indirect=True)
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(case=scans())
def test_variant_equals_brute_force(variant, case):
    """Widths 1-300 bits, duplicates, k > ntotal, removals, ids past 2**31, 1-20 queries (the
    direct row-major path and the staged block path)."""
    n_bits, values, ids, removed, query_values, k, radius = case
    codes, queries = to_codes(values, n_bits), to_codes(query_values, n_bits)
    index = LinearIndex(n_bits)
    index.add_with_ids(codes, np.array(ids, dtype=np.int64) + 2**33)
    index.remove_ids(np.array(removed, dtype=np.int64) + 2**33)
    kept = [i for i in range(len(ids)) if ids[i] not in set(removed)]
    kept_codes = codes[kept] if kept else codes[:0]
    kept_ids = np.array([ids[i] for i in kept], dtype=np.int64) + 2**33
    assert_results_equal(index.search(queries, k), knn(kept_codes, kept_ids, queries, k))
    assert_results_equal(
        index.range_search(queries, radius), range_search(kept_codes, kept_ids, queries, radius)
    )


@pytest.mark.parametrize("variant", VARIANT_PARAMS[:3], indirect=True)
@pytest.mark.parametrize("code_size", [1, 3, 4, 8, 12, 16, 32, 64, 65])
@pytest.mark.parametrize("n_queries", [1, 2, 8, 9, 70])
def test_native_units_and_blocks_equal_brute_force(variant, code_size, n_queries):
    """Several database parts and query blocks per search, blocks of the staged scan with tails,
    and hits overflowing a unit's first buffer (radius search over many near items)."""
    rng = np.random.default_rng(code_size * 100 + n_queries)
    n = 5000
    codes = rng.integers(0, 256, (n, code_size), dtype=np.uint8)
    codes[::7] = codes[3]  # duplicates: many ties at every distance
    queries = np.concatenate(
        [codes[3:4], rng.integers(0, 256, (n_queries - 1, code_size), np.uint8)]
    )
    ids = rng.permutation(10 * n)[:n].astype(np.int64) * 5 + 2**35
    index = LinearIndex(8 * code_size)
    index.add_with_ids(codes, ids)
    radius = 4 * code_size  # about half the items of a random query
    with mock.patch.object(
        native, "_plan", lambda n_items, nq: (max(1, nq // 3), 3, -(-n_items // 3))
    ):
        assert_results_equal(index.search(queries, 25), knn(codes, ids, queries, 25))
        assert_results_equal(
            index.range_search(queries, radius), range_search(codes, ids, queries, radius)
        )
    assert_results_equal(index.search(queries, 7), knn(codes, ids, queries, 7))


def test_the_best_available_variant_is_the_default():
    assert AVAILABLE[-1] == "numba" and AVAILABLE == [v for v in kernels.VARIANTS if v in AVAILABLE]
    expected = os.environ.get(kernels.ENVIRONMENT_VARIABLE) or AVAILABLE[0]
    assert INFO["variant"] == expected
    assert INFO["cpu"] and isinstance(INFO["native"], str)


def test_unknown_and_unsupported_variants_are_refused():
    with pytest.raises(UnknownNameError, match="unknown kernel 'sse9'; available: avx512"):
        kernels.use_kernel("sse9")
    missing = [v for v in kernels.VARIANTS if v not in AVAILABLE]
    for name in missing:
        with pytest.raises(InvalidInputError, match=f"the {name} kernel cannot run here"):
            kernels.use_kernel(name)


def test_environment_variable_forces_a_variant():
    code = (
        "from hashlearn.codes import kernels; import numpy as np;"
        "from hashlearn.index import LinearIndex;"
        "i = LinearIndex(16); i.add(np.zeros((3, 2), np.uint8));"
        "print(kernels.kernel_variant(), i.search(np.zeros((1, 2), np.uint8), 2)[1].tolist())"
    )
    env = {**os.environ, kernels.ENVIRONMENT_VARIABLE: "numba"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["numba", "[[0,", "1]]"], out.stderr
    env[kernels.ENVIRONMENT_VARIABLE] = "mmx"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "unknown kernel 'mmx'" in out.stderr


@st.composite
def distance_blocks(draw):
    n_bits = draw(st.integers(1, 300))
    top = 2**n_bits - 1
    pool = draw(st.lists(st.integers(0, top), min_size=1, max_size=5))
    value = st.one_of(st.sampled_from(pool), st.integers(0, top))
    values = draw(st.lists(value, min_size=1, max_size=90))
    queries = draw(st.lists(value, min_size=1, max_size=11))
    first = draw(st.integers(0, len(values)))
    last = draw(st.integers(first, len(values)))
    return n_bits, values, queries, first, last


@pytest.mark.parametrize("variant", VARIANT_PARAMS, indirect=True)
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(case=distance_blocks())
def test_distance_blocks_equal_brute_force(variant, case):
    """``kernels.distances`` (the evaluation engine's blocks): widths 1-300 bits, duplicates,
    any part ``[first, last)`` of the database, empty parts included."""
    n_bits, values, query_values, first, last = case
    codes, queries = to_codes(values, n_bits), to_codes(query_values, n_bits)
    got = kernels.distances(codes, queries, first, last)
    expected = [[bin(q ^ v).count("1") for v in values[first:last]] for q in query_values]
    assert got.dtype == np.uint16 and got.shape == (len(queries), last - first)
    assert got.tolist() == expected


@pytest.mark.parametrize("variant", VARIANT_PARAMS, indirect=True)
@pytest.mark.parametrize("code_size", [1, 4, 8, 12, 16, 32, 64, 65])
def test_distance_blocks_over_several_staged_blocks(variant, code_size):
    """Enough codes for several staged blocks of the C scan (and a tail), 70 queries (groups of
    four and a remainder), against numpy's popcount."""
    rng = np.random.default_rng(code_size)
    codes = rng.integers(0, 256, (9000, code_size), dtype=np.uint8)
    codes[::5] = codes[1]  # duplicates
    queries = np.concatenate([codes[1:2], rng.integers(0, 256, (69, code_size), np.uint8)])
    expected = np.bitwise_count(queries[:, None, :] ^ codes[None, 13:8990, :]).sum(axis=2)
    assert np.array_equal(kernels.distances(codes, queries, 13, 8990), expected)
