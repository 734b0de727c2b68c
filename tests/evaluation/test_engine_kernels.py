"""The evaluation engine gives the same metrics, to the last bit, with every Hamming kernel
variant this CPU can run, and those metrics equal the plain building blocks'.

Class labels with codes wider than 64 bits take their distances from the kernel layer
(:func:`hashlearn.codes.kernels.distances`), so the variant decides how they are computed; every
variant must give the ``numba`` fallback's metrics exactly (``np.array_equal`` on float64), and
those must equal the plain reference (a stable ``argsort`` ranking, then
``average_precision`` / ``precision_at_k``). Variants the CPU cannot run are skipped, with the
reason printed.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hashlearn.codes import kernels, pack_bits
from hashlearn.evaluation import (
    average_precision,
    evaluate_retrieval,
    hamming_ranking,
    precision_at_k,
    recall_at_k,
    relevance_matrix,
)

AVAILABLE = kernels.available_kernels()
OPTIONS = {"ks": (1, 5, 40), "map_at": (3, 40), "ndcg_at": (7,), "radius": 3}


def _variant_param(name: str):
    if name in AVAILABLE:
        return pytest.param(name, id=name)
    info = kernels.kernel_info()
    reason = f"{name} kernel not runnable here: {info['cpu']}; native library: {info['native']}"
    return pytest.param(name, id=name, marks=pytest.mark.skip(reason=reason))


VARIANT_PARAMS = [_variant_param(name) for name in kernels.VARIANTS]


def _evaluate(variant, *args, **kwargs):
    previous = kernels.kernel_variant()
    kernels.use_kernel(variant)
    try:
        return evaluate_retrieval(*args, **kwargs)
    finally:
        kernels.use_kernel(previous)


def _assert_same_bits(result, expected):
    assert list(result.per_query) == list(expected.per_query)
    for name, values in expected.per_query.items():
        assert np.array_equal(result.per_query[name], values), name
    for name, values in expected.pr_curve.items():
        assert np.array_equal(result.pr_curve[name], values), name
    assert np.array_equal(result.n_relevant, expected.n_relevant)


def _plain(q_codes, q_labels, d_codes, d_labels):
    """mAP, mAP@3, P@5 and R@5 per query from the full stable ranking."""
    _, order = hamming_ranking(q_codes, d_codes)
    ranked = np.take_along_axis(relevance_matrix(q_labels, d_labels), order, axis=1)
    return {
        "mAP": average_precision(ranked),
        "mAP@3": average_precision(ranked, k=3),
        "P@5": precision_at_k(ranked, 5),
        "R@5": recall_at_k(ranked, 5),
    }


@st.composite
def problems(draw):
    """Codes of 1-300 bits drawn from a small pool (duplicates, so ties at every distance), a
    few classes, a database of up to 60 items and up to 9 queries."""
    n_bits = draw(st.integers(1, 300))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n = draw(st.integers(1, 60))
    nq = draw(st.integers(1, 9))
    pool = rng.integers(0, 2, size=(draw(st.integers(1, 6)), n_bits), dtype=np.uint8)
    bits = pool[rng.integers(0, len(pool), size=n + nq)]
    flip = rng.random(bits.shape) < draw(st.sampled_from([0.0, 0.05, 0.5]))
    codes = pack_bits(bits ^ flip)
    labels = rng.integers(0, draw(st.integers(1, 4)), size=n + nq)
    return codes[n:], labels[n:], codes[:n], labels[:n]


@pytest.mark.parametrize("variant", VARIANT_PARAMS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=problems())
def test_every_variant_gives_the_fallbacks_metrics_and_the_plain_ones(variant, problem):
    q, q_labels, d, d_labels = problem
    for ties in ("average", "position"):
        expected = _evaluate("numba", q, q_labels, d, d_labels, ties=ties, **OPTIONS)
        _assert_same_bits(
            _evaluate(variant, q, q_labels, d, d_labels, ties=ties, **OPTIONS), expected
        )
    for name, values in _plain(q, q_labels, d, d_labels).items():  # ties by position
        assert expected.per_query[name] == pytest.approx(values, abs=1e-12), name


@pytest.mark.parametrize("variant", VARIANT_PARAMS)
@pytest.mark.parametrize("n_bits", [72, 128, 200, 256])
def test_several_blocks_and_query_groups(variant, n_bits):
    """More items than one distance block (4096) and more queries than one group (64), codes
    near four class centres (realistic ties); both tie orders, against the fallback bit for bit
    and against the plain building blocks."""
    rng = np.random.default_rng(n_bits)
    centres = rng.integers(0, 2, size=(4, n_bits), dtype=np.uint8)
    labels = rng.integers(0, 4, size=9000 + 70)
    codes = pack_bits(centres[labels] ^ (rng.random((len(labels), n_bits)) < 0.2))
    codes[100:200] = codes[5]  # exact duplicates
    q, q_labels, d, d_labels = codes[9000:], labels[9000:], codes[:9000], labels[:9000]
    for ties in ("position", "average"):
        expected = _evaluate("numba", q, q_labels, d, d_labels, ties=ties, **OPTIONS)
        _assert_same_bits(
            _evaluate(variant, q, q_labels, d, d_labels, ties=ties, **OPTIONS), expected
        )
        if ties == "position":
            for name, values in _plain(q, q_labels, d, d_labels).items():
                assert expected.per_query[name] == pytest.approx(values, abs=1e-12), name
