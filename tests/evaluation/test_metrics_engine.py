"""The compiled evaluation engine against plain references: NDCG, tie-averaged metrics, PR curves.

The references here are deliberately naive (a stable sort, Python loops, every order of tied
items enumerated) so that the fast path is checked against something obviously right.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction as F

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hashlearn.codes import hamming_distance, pack_bits
from hashlearn.evaluation import (
    evaluate_codes,
    evaluate_retrieval,
    precision_within_radius,
    recall_within_radius,
)
from hashlearn.exceptions import InvalidInputError

# Query A of tests/test_metrics.py: distances by database position [1, 3, 0, 1, 2], labels
# [7, 7, 3, 3, 7] against 7. Ranking with ties by position: relevant [0, 1, 0, 1, 1].
DB_BITS = np.array([[1, 0, 0], [1, 1, 1], [0, 0, 0], [0, 1, 0], [1, 1, 0]])
DB_LABELS = np.array([7, 7, 3, 3, 7])
QUERY_A = pack_bits(np.zeros((1, 3), dtype=np.uint8))


def _log2(i: int) -> float:
    return math.log2(i)


def test_ndcg_hand_computed():
    # DCG@3 = 0/log2(2) + 1/log2(3) + 0/log2(4); ideal: three relevant items on top.
    result = evaluate_codes(QUERY_A, [7], pack_bits(DB_BITS), DB_LABELS, ndcg_at=(3, 5))
    ideal3 = 1 + 1 / _log2(3) + 1 / _log2(4)
    assert result["NDCG@3"] == pytest.approx((1 / _log2(3)) / ideal3, abs=1e-15)
    dcg5 = 1 / _log2(3) + 1 / _log2(5) + 1 / _log2(6)
    assert result["NDCG@5"] == pytest.approx(dcg5 / ideal3, abs=1e-15)


def test_ndcg_multilabel_graded_gains():
    # Query labels {0, 1}; items share 2, 0, 1 labels -> gains 3, 0, 1; all at distance 0, so
    # the ranking is by position: gains [3, 0, 1]; ideal [3, 1, 0].
    q_labels = np.array([[1, 1, 0]])
    d_labels = np.array([[1, 1, 1], [0, 0, 1], [0, 1, 0]])
    codes = np.zeros((3, 1), dtype=np.uint8)
    result = evaluate_codes(codes[:1], q_labels, codes, d_labels, ndcg_at=(2, 3), ks=(), map_at=())
    assert result["NDCG@2"] == pytest.approx(3 / (3 + 1 / _log2(3)), abs=1e-15)
    assert result["NDCG@3"] == pytest.approx((3 + 1 / _log2(4)) / (3 + 1 / _log2(3)), abs=1e-15)


def test_tie_average_hand_computed():
    # Tied group at distance 1: db 0 (relevant) and db 3 (not), in either order with
    # probability 1/2: relevant [0, 1, 0, 1, 1] or [0, 0, 1, 1, 1].
    result = evaluate_codes(
        QUERY_A, [7], pack_bits(DB_BITS), DB_LABELS, ks=(2,), map_at=(2, 4), ties="average"
    )
    ap = ((F(1, 2) + F(2, 4) + F(3, 5)) + (F(1, 3) + F(2, 4) + F(3, 5))) / 2 / 3
    assert result["mAP"] == pytest.approx(float(ap), abs=1e-15)
    # top 2: [0, 1] (AP@2 = 1/2) or [0, 0] (no relevant item: 0)
    assert result["mAP@2"] == pytest.approx(0.25, abs=1e-15)
    # top 4: AP@4 = (1/2 + 2/4)/2 or (1/3 + 2/4)/2
    assert result["mAP@4"] == pytest.approx(float((F(1, 1) + F(5, 6)) / 4), abs=1e-15)
    assert result["P@2"] == pytest.approx(0.25, abs=1e-15)
    assert result["R@2"] == pytest.approx(0.5 / 3, abs=1e-15)


# --------------------------------------------------------------------------------------------
# plain references
# --------------------------------------------------------------------------------------------


def _shared(q_label, d_label) -> int:
    if np.ndim(q_label) == 0:
        return int(q_label == d_label)
    return int(np.sum(np.logical_and(q_label, d_label)))


def _metrics_of_order(shared: list[int], n_relevant: int, ideal: list[float], cut: dict) -> dict:
    """Every rank metric of one ranked list of shared-label counts, by the textbook formulas."""
    rel = [s > 0 for s in shared]
    out = {}
    hits, total = 0, 0.0
    for i, r in enumerate(rel, 1):
        if r:
            hits += 1
            total += hits / i
    out["mAP"] = total / n_relevant if n_relevant else 0.0
    for k in cut["map_at"]:
        hits, total = 0, 0.0
        for i, r in enumerate(rel[:k], 1):
            if r:
                hits += 1
                total += hits / i
        out[f"mAP@{k}"] = total / hits if hits else 0.0
    for k in cut["ks"]:
        out[f"P@{k}"] = sum(rel[:k]) / k
        out[f"R@{k}"] = sum(rel[:k]) / n_relevant if n_relevant else 0.0
    for k in cut["ndcg_at"]:
        dcg = sum((2.0**s - 1) / math.log2(i + 1) for i, s in enumerate(shared[:k], 1))
        best = sum(g / math.log2(i + 1) for i, g in enumerate(ideal[:k], 1))
        out[f"NDCG@{k}"] = dcg / best if best else 0.0
    return out


def _reference(q_codes, q_labels, d_codes, d_labels, cut, ties):
    distances = hamming_distance(q_codes, d_codes)
    per_query = []
    for qi in range(len(q_codes)):
        shared = [_shared(q_labels[qi], d_labels[j]) for j in range(len(d_codes))]
        n_relevant = sum(s > 0 for s in shared)
        ideal = sorted((2.0**s - 1 for s in shared), reverse=True)
        order = np.argsort(distances[qi], kind="stable")
        if ties == "position":
            per_query.append(_metrics_of_order([shared[j] for j in order], n_relevant, ideal, cut))
            continue
        groups = [[j for j in order if distances[qi, j] == d] for d in sorted(set(distances[qi]))]
        runs = [
            _metrics_of_order([shared[j] for g in perm for j in g], n_relevant, ideal, cut)
            for perm in itertools.product(*(itertools.permutations(g) for g in groups))
        ]
        per_query.append({key: np.mean([r[key] for r in runs]) for key in runs[0]})
    return {key: np.mean([m[key] for m in per_query]) for key in per_query[0]}


@st.composite
def _small_problem(draw, max_items: int):
    n_bits = draw(st.integers(1, 4))
    n = draw(st.integers(1, max_items))
    nq = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    multilabel = draw(st.booleans())
    rng = np.random.default_rng(seed)
    q = pack_bits(rng.integers(0, 2, size=(nq, n_bits)))
    d = pack_bits(rng.integers(0, 2, size=(n, n_bits)))
    if multilabel:
        return q, rng.random((nq, 3)) < 0.4, d, rng.random((n, 3)) < 0.4
    return q, rng.integers(0, 3, size=nq), d, rng.integers(0, 3, size=n)


CUTS = {"ks": (1, 3, 9), "map_at": (1, 2, 5, 9), "ndcg_at": (1, 4, 9)}


@settings(max_examples=60, deadline=None)
@given(_small_problem(max_items=7))
def test_tie_average_equals_mean_over_every_order(problem):
    q, q_labels, d, d_labels = problem
    result = evaluate_codes(q, q_labels, d, d_labels, radius=None, ties="average", **CUTS)
    expected = _reference(q, q_labels, d, d_labels, CUTS, "average")
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, abs=1e-12), key


@settings(max_examples=60, deadline=None)
@given(_small_problem(max_items=40))
def test_position_ties_equal_the_plain_reference(problem):
    q, q_labels, d, d_labels = problem
    result = evaluate_codes(q, q_labels, d, d_labels, radius=None, **CUTS)
    expected = _reference(q, q_labels, d, d_labels, CUTS, "position")
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, abs=1e-12), key


@pytest.mark.parametrize("n_bits", [7, 64, 200])
def test_wide_codes_many_labels_and_database_order(n_bits):
    rng = np.random.default_rng(n_bits)
    nq, n = 9, 300
    q = pack_bits(rng.integers(0, 2, size=(nq, n_bits)))
    d = pack_bits(rng.integers(0, 2, size=(n, n_bits)))
    # 70 classes: two words of label bits
    q_labels = rng.random((nq, 70)) < 0.05
    d_labels = rng.random((n, 70)) < 0.05
    cut = {"ks": (5, 50), "map_at": (5, 300), "ndcg_at": (10,)}
    result = evaluate_codes(q, q_labels, d, d_labels, radius=None, **cut)
    expected = _reference(q, q_labels, d, d_labels, cut, "position")
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, abs=1e-12), key
    # tie-averaged results do not depend on the order of the database
    perm = rng.permutation(n)
    a = evaluate_codes(q, q_labels, d, d_labels, ties="average", **cut)
    b = evaluate_codes(q, q_labels, d[perm], d_labels[perm], ties="average", **cut)
    for key in a:
        assert a[key] == pytest.approx(b[key], abs=1e-12), key


def test_tie_average_on_large_tie_groups_matches_position_mean():
    # 1 bit and 2 classes: two tie groups of thousands of items. The tie-averaged AP is the mean
    # AP over random shuffles of the database (checked within the sampling error).
    rng = np.random.default_rng(3)
    n = 3000
    d = pack_bits(rng.integers(0, 2, size=(n, 1)))
    d_labels = rng.integers(0, 2, size=n)
    q = pack_bits(np.array([[0]]))
    exact = evaluate_codes(q, [1], d, d_labels, ks=(100,), map_at=(100,), ties="average")
    samples = []
    for _ in range(200):
        perm = rng.permutation(n)
        samples.append(evaluate_codes(q, [1], d[perm], d_labels[perm], ks=(100,), map_at=(100,)))
    for key in ("mAP", "mAP@100", "P@100"):
        values = np.array([s[key] for s in samples])
        assert abs(values.mean() - exact[key]) < 4 * values.std() / np.sqrt(len(values)) + 1e-9


def test_pr_curve_is_the_radius_sweep():
    rng = np.random.default_rng(5)
    q = pack_bits(rng.integers(0, 2, size=(20, 10)))
    d = pack_bits(rng.integers(0, 2, size=(200, 10)))
    q_labels, d_labels = rng.integers(0, 4, size=20), rng.integers(0, 4, size=200)
    evaluation = evaluate_retrieval(q, q_labels, d, d_labels)
    curve = evaluation.pr_curve
    assert curve["radius"].tolist() == list(range(17))  # 10 bits stored in 2 bytes
    distances = hamming_distance(q, d)
    relevant = q_labels[:, None] == d_labels[None, :]
    for r in range(17):
        assert curve["precision"][r] == pytest.approx(
            precision_within_radius(distances, relevant, r).mean(), abs=1e-15
        )
        assert curve["recall"][r] == pytest.approx(
            recall_within_radius(distances, relevant, r).mean(), abs=1e-15
        )
        assert curve["retrieved"][r] == pytest.approx((distances <= r).sum(axis=1).mean())
    assert curve["recall"][-1] == pytest.approx((evaluation.n_relevant > 0).mean())
    assert evaluation.per_query["mAP"].shape == (20,)
    assert evaluation.metrics["mAP"] == pytest.approx(evaluation.per_query["mAP"].mean())


def test_bad_ties_and_cutoffs():
    codes = pack_bits(np.zeros((2, 8), dtype=np.uint8))
    with pytest.raises(InvalidInputError, match="ties"):
        evaluate_codes(codes, [0, 1], codes, [0, 1], ties="random")
    with pytest.raises(InvalidInputError, match="ndcg_at"):
        evaluate_codes(codes, [0, 1], codes, [0, 1], ndcg_at=(0,))
