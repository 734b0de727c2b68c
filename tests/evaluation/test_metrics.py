"""Tests of hashlearn.codes.ranking / .metrics and the evaluation driver: hand-computed cases, loop references, bad input."""

from __future__ import annotations

from fractions import Fraction as F

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hashlearn.codes import pack_bits
from hashlearn.codes.metrics import pooled_precision_within_radius, pooled_recall_within_radius
from hashlearn.evaluation import (
    average_precision,
    evaluate_codes,
    evaluate_retrieval,
    hamming_ranking,
    mean_average_precision,
    precision_at_k,
    precision_within_radius,
    recall_at_k,
    recall_within_radius,
    relevance_matrix,
)
from hashlearn.exceptions import CodeFormatError, InvalidInputError

# --------------------------------------------------------------------------------------------
# A tiny hand-checked example with ties in Hamming distance.
#
# 8-bit codes (bit i of the row is bit i of the code). Database, by position:
#   db 0: 1000 0000   popcount 1
#   db 1: 1110 0000   popcount 3
#   db 2: 0000 0000   popcount 0
#   db 3: 0100 0000   popcount 1
#   db 4: 1100 0000   popcount 2
# Database labels: [7, 7, 3, 3, 7].
#
# Query A = 0000 0000, label 7: distances by position [1, 3, 0, 1, 2].
#   Ranking (ties by position: db 0 before db 3): db 2, db 0, db 3, db 4, db 1
#   distances [0, 1, 1, 2, 3]; relevant [0, 1, 0, 1, 1]; 3 relevant in the database.
#   (Breaking the tie the other way would give relevant [0, 0, 1, 1, 1].)
# Query B = 0000 0000, label 9: same ranking, nothing relevant.
# Query C = 0000 1111, label 3: distances = 4 + popcount -> [5, 7, 4, 5, 6].
#   Ranking: db 2, db 0, db 3, db 4, db 1 (same order), distances [4, 5, 5, 6, 7],
#   relevant [1, 0, 1, 0, 0]; 2 relevant in the database; nothing within radius 2.
# --------------------------------------------------------------------------------------------

DB_BITS = np.array(
    [
        [1, 0, 0, 0, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 0],
        [0, 1, 0, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0, 0, 0],
    ]
)
DB_LABELS = np.array([7, 7, 3, 3, 7])
QUERY_BITS = np.array(
    [
        [0, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 1, 1, 1, 1],
    ]
)
QUERY_LABELS = np.array([7, 9, 3])

RANKED_DIST = np.array([[0, 1, 1, 2, 3], [0, 1, 1, 2, 3], [4, 5, 5, 6, 7]])
RANKED_IDX = np.array([[2, 0, 3, 4, 1], [2, 0, 3, 4, 1], [2, 0, 3, 4, 1]])
RANKED_REL = np.array([[0, 1, 0, 1, 1], [0, 0, 0, 0, 0], [1, 0, 1, 0, 0]], dtype=bool)


def close(actual, expected) -> None:
    np.testing.assert_allclose(
        np.asarray(actual, dtype=float), [float(e) for e in expected], rtol=0, atol=1e-12
    )


def test_hand_ranking_breaks_ties_by_position():
    distances, indices = hamming_ranking(pack_bits(QUERY_BITS), pack_bits(DB_BITS))
    assert distances.dtype == np.int32 and indices.dtype == np.int64
    np.testing.assert_array_equal(distances, RANKED_DIST)
    np.testing.assert_array_equal(indices, RANKED_IDX)
    relevant = relevance_matrix(QUERY_LABELS, DB_LABELS)
    np.testing.assert_array_equal(np.take_along_axis(relevant, indices, axis=1), RANKED_REL)


def test_hand_ranking_k_and_k_beyond_database():
    q, d = pack_bits(QUERY_BITS), pack_bits(DB_BITS)
    distances, indices = hamming_ranking(q, d, k=2)
    np.testing.assert_array_equal(indices, RANKED_IDX[:, :2])
    np.testing.assert_array_equal(distances, RANKED_DIST[:, :2])
    distances, indices = hamming_ranking(q, d, k=50)  # clipped to the 5 database items
    np.testing.assert_array_equal(indices, RANKED_IDX)
    np.testing.assert_array_equal(distances, RANKED_DIST)


def test_hand_average_precision():
    # A: relevant at ranks 2, 4, 5 -> AP = (1/2 + 2/4 + 3/5) / 3 = 8/15
    # B: nothing relevant -> 0
    # C: relevant at ranks 1, 3 -> AP = (1/1 + 2/3) / 2 = 5/6
    close(average_precision(RANKED_REL), [F(8, 15), 0, F(5, 6)])
    assert mean_average_precision(RANKED_REL) == pytest.approx(float((F(8, 15) + F(5, 6)) / 3))
    # AP@3: A top 3 = [0, 1, 0] -> R_3 = 1, AP@3 = (1/2) / 1 = 1/2
    #       C top 3 = [1, 0, 1] -> R_3 = 2, AP@3 = (1/1 + 2/3) / 2 = 5/6
    close(average_precision(RANKED_REL, k=3), [F(1, 2), 0, F(5, 6)])
    # AP@1: A top 1 irrelevant -> 0 (no relevant item in the top 1); C -> 1/1
    close(average_precision(RANKED_REL, k=1), [0, 0, 1])
    # k beyond the database: the whole ranking, R_k = all relevant -> the full-ranking AP
    close(average_precision(RANKED_REL, k=10), [F(8, 15), 0, F(5, 6)])
    assert mean_average_precision(RANKED_REL, k=3) == pytest.approx(float((F(1, 2) + F(5, 6)) / 3))


def test_hand_average_precision_truncated_ranking_needs_n_relevant():
    # Only the top 3 are given, but the database holds 3 (A) and 2 (C) relevant items.
    # Full-ranking AP from the prefix: A = (1/2) / 3 = 1/6, C = (1/1 + 2/3) / 2 = 5/6
    close(average_precision(RANKED_REL[:, :3], n_relevant=[3, 0, 2]), [F(1, 6), 0, F(5, 6)])
    # Without n_relevant the prefix is taken as the whole ranking: A = (1/2) / 1
    close(average_precision(RANKED_REL[:, :3]), [F(1, 2), 0, F(5, 6)])


def test_hand_precision_and_recall_at_k():
    # P@3: A 1/3, B 0, C 2/3.  P@10 divides by 10 although only 5 items exist: A 3/10, C 2/10
    close(precision_at_k(RANKED_REL, 3), [F(1, 3), 0, F(2, 3)])
    close(precision_at_k(RANKED_REL, 10), [F(3, 10), 0, F(2, 10)])
    # R@3: A 1/3, B 0 (no relevant item in the database), C 2/2
    close(recall_at_k(RANKED_REL, 3), [F(1, 3), 0, 1])
    close(recall_at_k(RANKED_REL, 10), [1, 0, 1])
    # With a truncated ranking, recall needs the database counts: A 1/3, C 2/2
    close(recall_at_k(RANKED_REL[:, :3], 3, n_relevant=[3, 0, 2]), [F(1, 3), 0, 1])
    close(recall_at_k(RANKED_REL[:, :3], 2, n_relevant=[6, 0, 4]), [F(1, 6), 0, F(1, 4)])


def test_hand_precision_and_recall_within_radius():
    # radius 2: A items at distance 0,1,1,2 -> relevant [0,1,0,1] -> P = 2/4, R = 2/3
    #           B 4 items, none relevant -> P = 0, R = 0
    #           C no item within distance 2 -> P = 0 by convention, R = 0
    close(precision_within_radius(RANKED_DIST, RANKED_REL, radius=2), [F(1, 2), 0, 0])
    close(recall_within_radius(RANKED_DIST, RANKED_REL, radius=2), [F(2, 3), 0, 0])
    # radius 1: A items at 0,1,1 -> [0,1,0] -> P = 1/3, R = 1/3
    close(precision_within_radius(RANKED_DIST, RANKED_REL, radius=1), [F(1, 3), 0, 0])
    close(recall_within_radius(RANKED_DIST, RANKED_REL, radius=1), [F(1, 3), 0, 0])
    # radius 0: A only db 2 (irrelevant) -> 0; C none
    close(precision_within_radius(RANKED_DIST, RANKED_REL, radius=0), [0, 0, 0])
    # radius 5: C items at 4,5,5 -> [1,0,1] -> P = 2/3, R = 2/2
    close(precision_within_radius(RANKED_DIST, RANKED_REL, radius=5), [F(3, 5), 0, F(2, 3)])
    close(recall_within_radius(RANKED_DIST, RANKED_REL, radius=5), [1, 0, 1])
    # default radius is 2; n_relevant is honoured: A 2/6
    close(recall_within_radius(RANKED_DIST, RANKED_REL, n_relevant=[6, 1, 2]), [F(1, 3), 0, 0])


# Three queries, one of which has an empty Hamming ball at radius 0. 4-bit codes, bit i of the
# row is bit i of the code:
#   db 0: 0000 (label 0)   db 1: 0001 (label 0)   db 2: 0011 (label 1)   db 3: 0111 (label 1)
#   q 0: 0000 (label 0) -> distances 0, 1, 2, 3, relevant db 0, 1
#   q 1: 0011 (label 0) -> distances 2, 1, 0, 1, relevant db 0, 1
#   q 2: 1111 (label 1) -> distances 4, 3, 2, 1, relevant db 2, 3: nothing within radius 0
CONV_DB = [[0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 1], [0, 1, 1, 1]]
CONV_Q = [[0, 0, 0, 0], [0, 0, 1, 1], [1, 1, 1, 1]]
CONV_DB_LABELS, CONV_Q_LABELS = [0, 0, 1, 1], [0, 0, 1]
CONV_DIST = [[0, 1, 2, 3], [2, 1, 0, 1], [4, 3, 2, 1]]
CONV_REL = [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1]]


def test_hand_precision_conventions_with_an_empty_ball():
    # radius 0: q0 retrieves db 0 (good), q1 db 2 (bad), q2 nothing
    #   per query: 1, 0, 0 (empty ball = 0)          -> mean 1/3
    #   pooled:    (1 + 0 + 0) good / (1 + 1 + 0) retrieved = 1/2: q2 adds nothing
    close(precision_within_radius(CONV_DIST, CONV_REL, radius=0), [1, 0, 0])
    assert pooled_precision_within_radius(CONV_DIST, CONV_REL, radius=0) == pytest.approx(0.5)
    # radius 1: q0 {db 0, 1} 2/2, q1 {db 1, 2, 3} 1/3, q2 {db 3} 1/1
    #   per query mean (1 + 1/3 + 1) / 3 = 7/9; pooled (2 + 1 + 1) / (2 + 3 + 1) = 2/3
    close(precision_within_radius(CONV_DIST, CONV_REL, radius=1), [1, F(1, 3), 1])
    assert pooled_precision_within_radius(CONV_DIST, CONV_REL, radius=1) == pytest.approx(2 / 3)
    # pooled recall: good pairs found / all relevant pairs (2 per query): r0 1/6, r1 4/6
    assert pooled_recall_within_radius(CONV_DIST, CONV_REL, radius=0) == pytest.approx(1 / 6)
    assert pooled_recall_within_radius(CONV_DIST, CONV_REL, radius=1) == pytest.approx(4 / 6)
    # nothing retrieved by any query: 0, as for one query
    assert pooled_precision_within_radius([[3], [4]], [[1], [1]], radius=0) == 0.0


def test_evaluate_retrieval_precision_conventions_and_curve_length():
    args = (pack_bits(CONV_Q), CONV_Q_LABELS, pack_bits(CONV_DB), CONV_DB_LABELS)
    # radius:        0     1     2      3     4
    # retrieved q0:  1     2     3      4     4      good: 1 2 2 2 2
    # retrieved q1:  1     3     4      4     4      good: 0 1 2 2 2
    # retrieved q2:  0     1     2      3     4      good: 0 1 2 2 2
    per_query = [
        F(1, 3),
        F(7, 9),
        (F(2, 3) + F(1, 2) + 1) / 3,
        (F(1, 2) * 2 + F(2, 3)) / 3,
        F(1, 2),
    ]
    pooled = [F(1, 2), F(4, 6), F(6, 9), F(6, 11), F(6, 12)]
    recall = [F(1, 6), F(4, 6), 1, 1, 1]  # per query (1/2, 0, 0) ... and pooled alike here
    a = evaluate_retrieval(*args, radius=0, n_bits=4)
    b = evaluate_retrieval(*args, radius=0, n_bits=4, precision_convention="pooled")
    assert a.pr_curve["radius"].tolist() == [0, 1, 2, 3, 4]  # stops at the code length
    close(a.pr_curve["precision"], per_query)
    close(b.pr_curve["precision"], pooled)
    close(a.pr_curve["recall"], recall)
    close(b.pr_curve["recall"], recall)
    assert a.precision_convention == "per-query" and b.precision_convention == "pooled"
    assert a.metrics["P@r0"] == pytest.approx(1 / 3) and b.metrics["P@r0"] == pytest.approx(0.5)
    # pooled: the empty ball's query has no precision (NaN), the metric is not their mean
    assert np.isnan(b.per_query["P@r0"][2]) and b.per_query["P@r0"][:2].tolist() == [1.0, 0.0]
    assert evaluate_codes(*args, radius=0, precision_convention="pooled")["P@r0"] == 0.5
    # without n_bits the curve spans the packed width, flat past the code length
    wide = evaluate_retrieval(*args, radius=0)
    assert len(wide.pr_curve["radius"]) == 9
    close(wide.pr_curve["precision"][4:], [F(1, 2)] * 5)
    with pytest.raises(InvalidInputError, match="precision_convention must be one of"):
        evaluate_codes(*args, precision_convention="weiss")
    with pytest.raises(InvalidInputError, match="n_bits=9 does not fit codes of 1 bytes"):
        evaluate_codes(*args, n_bits=9)
    with pytest.raises(InvalidInputError, match="differ beyond bit 3"):
        evaluate_codes(*args, n_bits=3)


def test_hand_evaluate_codes():
    result = evaluate_codes(
        pack_bits(QUERY_BITS),
        QUERY_LABELS,
        pack_bits(DB_BITS),
        DB_LABELS,
        ks=(3, 10),
        map_at=(3,),
        radius=2,
    )
    expected = {
        "mAP": (F(8, 15) + 0 + F(5, 6)) / 3,
        "mAP@3": (F(1, 2) + 0 + F(5, 6)) / 3,
        "P@3": (F(1, 3) + 0 + F(2, 3)) / 3,
        "R@3": (F(1, 3) + 0 + 1) / 3,
        "P@10": (F(3, 10) + 0 + F(2, 10)) / 3,
        "R@10": F(2, 3),
        "P@r2": F(1, 2) / 3,
        "R@r2": F(2, 3) / 3,
    }
    assert list(result) == list(expected)
    for key, value in expected.items():
        assert result[key] == pytest.approx(float(value), abs=1e-12), key
        assert isinstance(result[key], float)


def test_evaluate_codes_defaults_and_options():
    q, d = pack_bits(QUERY_BITS), pack_bits(DB_BITS)
    assert list(evaluate_codes(q, QUERY_LABELS, d, DB_LABELS)) == [
        "mAP",
        "mAP@10",
        "P@10",
        "R@10",
        "P@r2",
        "R@r2",
    ]
    assert list(evaluate_codes(q, QUERY_LABELS, d, DB_LABELS, ks=(), map_at=None, radius=None)) == [
        "mAP"
    ]
    assert list(evaluate_codes(q, QUERY_LABELS, d, DB_LABELS, ks=5, map_at=(5, 5), radius=0)) == [
        "mAP",
        "mAP@5",
        "P@5",
        "R@5",
        "P@r0",
        "R@r0",
    ]


# --------------------------------------------------------------------------------------------
# relevance
# --------------------------------------------------------------------------------------------


def test_relevance_single_label():
    relevant = relevance_matrix([1, 2], [2, 1, 1, 3])
    assert relevant.dtype == np.bool_ and relevant.shape == (2, 4)
    np.testing.assert_array_equal(relevant, [[0, 1, 1, 0], [1, 0, 0, 0]])


def test_relevance_multi_label_share_at_least_one():
    queries = np.array([[1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 0, 0]])
    db = np.array(
        [
            [0, 0, 0, 0],  # no label: relevant to nothing
            [1, 0, 0, 0],  # shares class 0 with query 0
            [0, 1, 0, 1],  # shares class 1 with query 2
            [0, 0, 1, 1],  # shares class 2 with query 0
            [1, 1, 1, 1],  # shares something with every query that has a label
        ]
    )
    expected = [
        [0, 1, 0, 1, 1],
        [0, 0, 0, 0, 0],  # query without labels
        [0, 0, 1, 0, 1],
    ]
    np.testing.assert_array_equal(relevance_matrix(queries, db), expected)
    np.testing.assert_array_equal(
        relevance_matrix(queries.astype(bool), db.astype(float)), expected
    )


def test_relevance_multi_label_matches_loop():
    rng = np.random.default_rng(3)
    q = rng.random((20, 6)) < 0.3
    d = rng.random((30, 6)) < 0.3
    expected = [[any(q[i, c] and d[j, c] for c in range(6)) for j in range(30)] for i in range(20)]
    np.testing.assert_array_equal(relevance_matrix(q, d), expected)


# --------------------------------------------------------------------------------------------
# hamming_ranking against a bit-by-bit reference
# --------------------------------------------------------------------------------------------


def reference_ranking(q_bits: np.ndarray, d_bits: np.ndarray) -> tuple[list, list]:
    distances, indices = [], []
    for qrow in q_bits.tolist():
        pairs = sorted(
            (sum(a != b for a, b in zip(qrow, drow, strict=True)), j)
            for j, drow in enumerate(d_bits.tolist())
        )
        distances.append([p[0] for p in pairs])
        indices.append([p[1] for p in pairs])
    return distances, indices


def test_hamming_ranking_matches_reference_random_widths():
    rng = np.random.default_rng(0)
    for case in range(60):
        n_bits = int(rng.integers(1, 131))
        nq, n = int(rng.integers(1, 6)), int(rng.integers(1, 50))
        if case % 2:  # few distinct codes: many duplicates and ties
            pool = rng.integers(0, 2, size=(int(rng.integers(1, 4)), n_bits))
            d_bits = pool[rng.integers(0, len(pool), size=n)]
            q_bits = pool[rng.integers(0, len(pool), size=nq)]
        else:
            d_bits = rng.integers(0, 2, size=(n, n_bits))
            q_bits = rng.integers(0, 2, size=(nq, n_bits))
        ref_d, ref_i = reference_ranking(q_bits, d_bits)
        q, d = pack_bits(q_bits), pack_bits(d_bits)
        chunk = int(rng.integers(1, 4))
        distances, indices = hamming_ranking(q, d, chunk_size=chunk)
        np.testing.assert_array_equal(distances, ref_d)
        np.testing.assert_array_equal(indices, ref_i)
        k = int(rng.integers(1, n + 3))
        dk, ik = hamming_ranking(q, d, k=k)
        assert dk.shape == ik.shape == (nq, min(k, n))
        np.testing.assert_array_equal(dk, distances[:, :k])
        np.testing.assert_array_equal(ik, indices[:, :k])


def test_hamming_ranking_all_identical_codes_is_database_order():
    codes = pack_bits(np.ones((40, 13), dtype=int))
    distances, indices = hamming_ranking(codes[:3], codes, k=25)
    assert not distances.any()
    np.testing.assert_array_equal(indices, np.tile(np.arange(25), (3, 1)))


def test_hamming_ranking_default_chunking_bounds_memory(monkeypatch):
    import hashlearn.codes.ranking as metrics

    rng = np.random.default_rng(5)
    q = pack_bits(rng.integers(0, 2, size=(23, 40)))
    d = pack_bits(rng.integers(0, 2, size=(300, 40)))
    full = hamming_ranking(q, d)
    monkeypatch.setattr(metrics, "_CHUNK_BYTES", 8 * 300 * 4)  # 4 queries per chunk
    calls = []
    original = metrics.hamming_distance

    def spy(a, b):
        calls.append(a.shape[0])
        return original(a, b)

    monkeypatch.setattr(metrics, "hamming_distance", spy)
    chunked = hamming_ranking(q, d)
    assert max(calls) == 4 and sum(calls) == 23
    np.testing.assert_array_equal(chunked[0], full[0])
    np.testing.assert_array_equal(chunked[1], full[1])


def test_hamming_ranking_empty_inputs():
    codes = pack_bits(np.zeros((3, 8), dtype=int))
    distances, indices = hamming_ranking(codes[:0], codes)
    assert distances.shape == indices.shape == (0, 3)
    distances, indices = hamming_ranking(codes, codes[:0], k=4)
    assert distances.shape == indices.shape == (3, 0)


# --------------------------------------------------------------------------------------------
# metrics against plain-loop references on random rankings
# --------------------------------------------------------------------------------------------


def ref_ap(rel: list[bool], n_relevant: int, k: int | None) -> float:
    if k is not None:
        rel = rel[:k]
    hits, total = 0, 0.0
    for i, r in enumerate(rel, start=1):
        if r:
            hits += 1
            total += hits / i
    denominator = hits if k is not None else n_relevant
    return total / denominator if denominator else 0.0


def ref_precision_at(rel: list[bool], k: int) -> float:
    return sum(1 for r in rel[:k] if r) / k


def ref_recall_at(rel: list[bool], k: int, n_relevant: int) -> float:
    return sum(1 for r in rel[:k] if r) / n_relevant if n_relevant else 0.0


def ref_radius(
    dist: list[int], rel: list[bool], radius: int, n_relevant: int
) -> tuple[float, float]:
    inside = [r for d, r in zip(dist, rel, strict=True) if d <= radius]
    hits = sum(1 for r in inside if r)
    precision = hits / len(inside) if inside else 0.0
    recall = hits / n_relevant if n_relevant else 0.0
    return precision, recall


def random_ranking(rng: np.random.Generator):
    nq, length = int(rng.integers(1, 6)), int(rng.integers(1, 40))
    relevant = rng.random((nq, length)) < rng.random()
    distances = np.sort(rng.integers(0, 8, size=(nq, length)), axis=1)
    extra = rng.integers(0, 5, size=nq) * (rng.random(nq) < 0.5)
    n_relevant = relevant.sum(axis=1) + extra
    return relevant, distances, n_relevant


def test_metrics_match_loop_references():
    rng = np.random.default_rng(1)
    for _ in range(300):
        relevant, distances, n_relevant = random_ranking(rng)
        length = relevant.shape[1]
        k = int(rng.integers(1, length + 5))
        radius = int(rng.integers(0, 9))
        rows = relevant.tolist()
        ap = average_precision(relevant, n_relevant)
        ap_k = average_precision(relevant, n_relevant, k=k)
        p_k = precision_at_k(relevant, k)
        r_k = recall_at_k(relevant, k, n_relevant)
        p_r = precision_within_radius(distances, relevant, radius)
        r_r = recall_within_radius(distances, relevant, radius, n_relevant)
        for out in (ap, ap_k, p_k, r_k, p_r, r_r):
            assert out.dtype == np.float64 and out.shape == (len(rows),)
        for i, rel in enumerate(rows):
            n_rel = int(n_relevant[i])
            assert ap[i] == pytest.approx(ref_ap(rel, n_rel, None), abs=1e-12)
            assert ap_k[i] == pytest.approx(ref_ap(rel, n_rel, k), abs=1e-12)
            assert p_k[i] == pytest.approx(ref_precision_at(rel, k), abs=1e-12)
            assert r_k[i] == pytest.approx(ref_recall_at(rel, k, n_rel), abs=1e-12)
            precision, recall = ref_radius(distances[i].tolist(), rel, radius, n_rel)
            assert p_r[i] == pytest.approx(precision, abs=1e-12)
            assert r_r[i] == pytest.approx(recall, abs=1e-12)
        assert mean_average_precision(relevant, n_relevant, k=k) == pytest.approx(ap_k.mean())
        # n_relevant omitted = the ranking is the whole database
        full = relevant.sum(axis=1)
        np.testing.assert_allclose(average_precision(relevant), average_precision(relevant, full))
        np.testing.assert_allclose(recall_at_k(relevant, k), recall_at_k(relevant, k, full))


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.lists(st.booleans(), min_size=6, max_size=6), min_size=1, max_size=4),
    k=st.integers(1, 9),
)
def test_average_precision_hypothesis(rows, k):
    relevant = np.array(rows, dtype=bool)
    ap = average_precision(relevant)
    ap_k = average_precision(relevant, k=k)
    for i, rel in enumerate(rows):
        assert ap[i] == pytest.approx(ref_ap(rel, sum(rel), None), abs=1e-12)
        assert ap_k[i] == pytest.approx(ref_ap(rel, sum(rel), k), abs=1e-12)
        assert 0.0 <= ap_k[i] <= 1.0
    # AP@k with k >= the ranking length is the full-ranking AP
    np.testing.assert_allclose(average_precision(relevant, k=6), ap)


def test_metrics_accept_zero_one_numbers():
    as_int = RANKED_REL.astype(np.int8)
    np.testing.assert_array_equal(average_precision(as_int), average_precision(RANKED_REL))
    np.testing.assert_array_equal(
        precision_within_radius(RANKED_DIST, RANKED_REL.astype(float)),
        precision_within_radius(RANKED_DIST, RANKED_REL),
    )


# --------------------------------------------------------------------------------------------
# evaluate_codes: chunk invariance and agreement with the building blocks
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("multilabel", [False, True])
def test_evaluate_codes_chunk_invariant_and_consistent(multilabel):
    rng = np.random.default_rng(7 + multilabel)
    nq, n, n_bits = 37, 250, 12
    q = pack_bits(rng.integers(0, 2, size=(nq, n_bits)))
    d = pack_bits(rng.integers(0, 2, size=(n, n_bits)))
    if multilabel:
        q_labels = rng.random((nq, 5)) < 0.25
        d_labels = rng.random((n, 5)) < 0.25
    else:
        q_labels = rng.integers(0, 6, size=nq)
        d_labels = rng.integers(0, 6, size=n)
    options = {"ks": (1, 10, 300), "map_at": (5, 100), "radius": 3}
    reference = evaluate_codes(q, q_labels, d, d_labels, **options)
    for chunk_size in (1, 2, 5, 36, 37, 1000):
        result = evaluate_codes(q, q_labels, d, d_labels, chunk_size=chunk_size, **options)
        assert result == reference, chunk_size

    distances, indices = hamming_ranking(q, d)
    ranked = np.take_along_axis(relevance_matrix(q_labels, d_labels), indices, axis=1)
    expected = {
        "mAP": mean_average_precision(ranked),
        "mAP@5": mean_average_precision(ranked, k=5),
        "mAP@100": mean_average_precision(ranked, k=100),
        "P@1": precision_at_k(ranked, 1).mean(),
        "R@1": recall_at_k(ranked, 1).mean(),
        "P@10": precision_at_k(ranked, 10).mean(),
        "R@10": recall_at_k(ranked, 10).mean(),
        "P@300": precision_at_k(ranked, 300).mean(),
        "R@300": recall_at_k(ranked, 300).mean(),
        "P@r3": precision_within_radius(distances, ranked, 3).mean(),
        "R@r3": recall_within_radius(distances, ranked, 3).mean(),
    }
    assert set(reference) == set(expected)
    for key, value in expected.items():
        assert reference[key] == pytest.approx(value, abs=1e-12), key
    # k > n: every relevant item is retrieved; queries with nothing relevant score 0
    assert reference["R@300"] == pytest.approx(ranked.any(axis=1).mean())


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [0, -1])
def test_bad_k(k):
    codes = pack_bits(QUERY_BITS)
    with pytest.raises(InvalidInputError, match="k must be >= 1"):
        hamming_ranking(codes, codes, k=k)
    with pytest.raises(InvalidInputError, match="k must be >= 1"):
        average_precision(RANKED_REL, k=k)
    with pytest.raises(InvalidInputError, match="k must be >= 1"):
        mean_average_precision(RANKED_REL, k=k)
    with pytest.raises(InvalidInputError, match="k must be >= 1"):
        precision_at_k(RANKED_REL, k)
    with pytest.raises(InvalidInputError, match="k must be >= 1"):
        recall_at_k(RANKED_REL, k)


@pytest.mark.parametrize("k", [2.0, True, "3"])
def test_k_must_be_an_integer(k):
    with pytest.raises(InvalidInputError, match="k must be an integer"):
        precision_at_k(RANKED_REL, k)


def test_bad_radius():
    with pytest.raises(InvalidInputError, match="radius must be >= 0"):
        precision_within_radius(RANKED_DIST, RANKED_REL, radius=-1)
    with pytest.raises(InvalidInputError, match="radius must be >= 0"):
        recall_within_radius(RANKED_DIST, RANKED_REL, radius=-1)
    with pytest.raises(InvalidInputError, match="radius must be an integer"):
        precision_within_radius(RANKED_DIST, RANKED_REL, radius=1.5)
    q, d = pack_bits(QUERY_BITS), pack_bits(DB_BITS)
    with pytest.raises(InvalidInputError, match="radius must be >= 0"):
        evaluate_codes(q, QUERY_LABELS, d, DB_LABELS, radius=-1)


def test_bad_cutoffs_in_evaluate_codes():
    q, d = pack_bits(QUERY_BITS), pack_bits(DB_BITS)
    with pytest.raises(InvalidInputError, match="ks must be >= 1"):
        evaluate_codes(q, QUERY_LABELS, d, DB_LABELS, ks=(10, 0))
    with pytest.raises(InvalidInputError, match="map_at must be >= 1"):
        evaluate_codes(q, QUERY_LABELS, d, DB_LABELS, map_at=-1)
    with pytest.raises(InvalidInputError, match="chunk_size must be >= 1"):
        evaluate_codes(q, QUERY_LABELS, d, DB_LABELS, chunk_size=0)


def test_bad_relevant():
    with pytest.raises(InvalidInputError, match=r"relevant must be 2-D .*reshape\(1, -1\)"):
        average_precision([True, False])
    with pytest.raises(InvalidInputError, match="relevant must hold booleans or 0/1 values"):
        precision_at_k([[0, 2, 1]], 1)
    with pytest.raises(InvalidInputError, match="relevant holds NaN"):
        precision_at_k([[0.0, np.nan]], 1)
    with pytest.raises(InvalidInputError, match="relevant must hold numbers"):
        precision_at_k([["a", "b"]], 1)


def test_bad_n_relevant():
    with pytest.raises(InvalidInputError, match=r"n_relevant must have shape \(3,\)"):
        average_precision(RANKED_REL, n_relevant=[3, 0])
    with pytest.raises(InvalidInputError, match="n_relevant is smaller than"):
        recall_at_k(RANKED_REL, 2, n_relevant=[1, 0, 2])
    with pytest.raises(InvalidInputError, match="n_relevant must be >= 0"):
        recall_at_k(np.zeros((2, 3), dtype=bool), 2, n_relevant=[0, -1])
    with pytest.raises(InvalidInputError, match="n_relevant must hold whole numbers"):
        recall_at_k(RANKED_REL, 2, n_relevant=[3.5, 0, 2])


def test_bad_distances():
    with pytest.raises(InvalidInputError, match="distances and relevant must have the same shape"):
        precision_within_radius(RANKED_DIST[:, :4], RANKED_REL)
    with pytest.raises(InvalidInputError, match="distances and relevant must have the same shape"):
        recall_within_radius(RANKED_DIST[:2], RANKED_REL)
    with pytest.raises(InvalidInputError, match="distances must be >= 0"):
        precision_within_radius(-RANKED_DIST - 1, RANKED_REL)
    with pytest.raises(InvalidInputError, match="distances holds NaN"):
        precision_within_radius(np.where(RANKED_REL, np.nan, 1.0), RANKED_REL)


def test_bad_labels():
    with pytest.raises(InvalidInputError, match="must both be 1-D class labels or both 2-D"):
        relevance_matrix([1, 2], [[1, 0], [0, 1]])
    with pytest.raises(InvalidInputError, match="same number of classes"):
        relevance_matrix([[1, 0, 0]], [[1, 0], [0, 1]])
    with pytest.raises(
        InvalidInputError, match=r"query_labels must be 1-D class labels .* or a 2-D"
    ):
        relevance_matrix(np.zeros((2, 2, 2)), [1, 2])
    with pytest.raises(InvalidInputError, match=r"db_labels must be 1-D class labels .* or a 2-D"):
        relevance_matrix([1, 2], 3)
    with pytest.raises(InvalidInputError, match="db_labels must hold booleans or 0/1 values"):
        relevance_matrix([[1, 0]], [[1, 2]])
    with pytest.raises(InvalidInputError, match="query_labels must hold integer class labels"):
        relevance_matrix([1.5], [1, 2])
    with pytest.raises(InvalidInputError, match="query_labels holds NaN"):
        relevance_matrix([np.nan], [1, 2])


def test_bad_codes_and_shapes_in_evaluate_codes():
    q, d = pack_bits(QUERY_BITS), pack_bits(DB_BITS)
    with pytest.raises(
        InvalidInputError, match="query_labels has 2 rows but query_codes has 3 codes"
    ):
        evaluate_codes(q, QUERY_LABELS[:2], d, DB_LABELS)
    with pytest.raises(InvalidInputError, match="db_labels has 6 rows but db_codes has 5 codes"):
        evaluate_codes(q, QUERY_LABELS, d, np.append(DB_LABELS, 1))
    with pytest.raises(InvalidInputError, match="no queries"):
        evaluate_codes(q[:0], QUERY_LABELS[:0], d, DB_LABELS)
    with pytest.raises(InvalidInputError, match="no database"):
        evaluate_codes(q, QUERY_LABELS, d[:0], DB_LABELS[:0])
    with pytest.raises(InvalidInputError, match="must both be 1-D class labels or both 2-D"):
        evaluate_codes(q, QUERY_LABELS, d, np.eye(5))
    wide = pack_bits(np.zeros((5, 16), dtype=int))
    with pytest.raises(CodeFormatError, match="different widths"):
        evaluate_codes(q, QUERY_LABELS, wide, DB_LABELS)
    with pytest.raises(CodeFormatError, match="different widths"):
        hamming_ranking(q, wide)
    with pytest.raises(CodeFormatError, match="query_codes must have dtype uint8"):
        hamming_ranking(QUERY_BITS, d)


def test_mean_average_precision_without_queries():
    with pytest.raises(InvalidInputError, match="no queries"):
        mean_average_precision(np.zeros((0, 4), dtype=bool))
