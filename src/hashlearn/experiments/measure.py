"""Measuring one fitted method's codes: metrics, curves and search time as a :class:`BenchmarkRow`.

:func:`measure_run` evaluates the query codes against the database codes
(:func:`~hashlearn.evaluation.evaluate_retrieval`: the metrics and the precision-recall curve by
Hamming radius), draws the hash-table lookup curve (:func:`radius_curve`) and times an exact
k-NN search in a :class:`~hashlearn.index.LinearIndex`.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from hashlearn.evaluation import evaluate_retrieval
from hashlearn.experiments.config import BenchmarkConfig
from hashlearn.experiments.results import BenchmarkRow
from hashlearn.index import HashTableIndex, LinearIndex

__all__ = ["PROBE_BUDGET", "measure_run", "radius_curve"]

PROBE_BUDGET = 250_000  # largest number of buckets one query may probe in the radius curve


def _max_probe_radius(n_bits: int, largest: int) -> int:
    """Largest radius <= ``largest`` whose Hamming ball holds at most PROBE_BUDGET codes."""
    total, radius = 0, -1
    while radius < min(largest, n_bits):
        total += math.comb(n_bits, radius + 1)
        if total > PROBE_BUDGET:
            break
        radius += 1
    return max(radius, 0)


def radius_curve(
    q_codes: np.ndarray,
    q_labels: np.ndarray,
    db_codes: np.ndarray,
    db_labels: np.ndarray,
    n_bits: int,
    largest: int,
) -> dict[str, list[float]]:
    """P@10, ms per query and candidates of an exact hash-table lookup within each radius."""
    index = HashTableIndex(n_bits)
    index.add(db_codes)
    index.range_search(q_codes[:1], 1)  # compiled and built outside the measurement
    out: dict[str, list[float]] = {"radius": [], "P@10": [], "query_ms": [], "candidates": []}
    for r in range(_max_probe_radius(n_bits, largest) + 1):
        start = time.perf_counter()
        lims, distances, ids = index.range_search(q_codes, r)
        ms = 1000 * (time.perf_counter() - start) / len(q_codes)
        hits = np.zeros(len(q_codes))
        for q in range(len(q_codes)):
            part = slice(lims[q], lims[q + 1])
            top = ids[part][np.lexsort((ids[part], distances[part]))[:10]]
            hits[q] = (
                np.count_nonzero(db_labels[top] == q_labels[q])
                if q_labels.ndim == 1
                else (np.count_nonzero((db_labels[top] & q_labels[q]).any(axis=1)))
            )
        out["radius"].append(r)
        out["P@10"].append(float(hits.mean() / 10))
        out["query_ms"].append(ms)
        out["candidates"].append(float(np.diff(lims).mean()))
    return out


def _query_ms(q_codes: np.ndarray, db_codes: np.ndarray, n_bits: int) -> float:
    index = LinearIndex(n_bits)
    index.add(db_codes)
    index.search(q_codes[:1], 1)  # compiled outside the measurement
    start = time.perf_counter()
    index.search(q_codes, min(100, len(db_codes)))
    return 1000 * (time.perf_counter() - start) / len(q_codes)


def measure_run(
    config: BenchmarkConfig,
    split: Any,
    q_codes: np.ndarray,
    db_codes: np.ndarray,
    *,
    method: str,
    hasher: str,
    n_bits: int,
    seed: int,
    features: str,
    fit_s: float,
    encode_s: float,
    tables: int = 1,
    code_bits: int | None = None,
    model_path: str = "",
) -> BenchmarkRow:
    """Evaluate one fitted method's codes of ``split`` as ``config`` says: the metrics, the PR
    curve, the hash-table radius curve and the k-NN query time, as one :class:`BenchmarkRow`."""
    code_bits = n_bits if code_bits is None else code_bits
    evaluation = evaluate_retrieval(
        q_codes,
        split.query.y,
        db_codes,
        split.database.y,
        ks=config.ks,
        map_at=config.map_at,
        ndcg_at=config.ndcg_at,
        radius=config.radius,
        ties=config.ties,
        n_bits=code_bits,
        precision_convention=config.precision_convention,
    )
    pr = {k: evaluation.pr_curve[k].tolist() for k in ("radius", "precision", "recall")}
    curves = {"pr": pr}
    if config.radius_curve:
        curves["radius"] = radius_curve(
            q_codes, split.query.y, db_codes, split.database.y, code_bits, config.radius_curve
        )
    return BenchmarkRow(
        dataset=config.dataset,
        protocol=config.protocol,
        manifest=split.manifest,
        features=features,
        method=method,
        hasher=hasher,
        tables=tables,
        n_bits=n_bits,
        seed=int(seed),
        metrics=evaluation.metrics,
        fit_s=fit_s,
        encode_ms=1000 * encode_s / len(db_codes),
        query_ms=_query_ms(q_codes, db_codes, code_bits),
        sizes=split.sizes(),
        model_path=model_path,
        curves=curves,
    )
