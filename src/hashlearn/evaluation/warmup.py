"""Compile the evaluation engine's kernels once, ahead of the first evaluation (cached on disk
by numba; ``make install`` calls :func:`warm_up`, as for :func:`hashlearn.index.warm_up`)."""

from __future__ import annotations

import time

import numpy as np

from hashlearn.evaluation.retrieval import evaluate_retrieval

__all__ = ["warm_up"]


def warm_up() -> float:
    """Evaluate tiny random codes with class labels and with multi-label indicators, ties by
    position and averaged; returns the seconds it took."""
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    classes = rng.integers(0, 3, 40)
    multilabel = rng.integers(0, 2, (40, 5)).astype(bool)
    for code_size in (8, 16):  # up to 64 bits, one fused loop; wider, distance blocks
        codes = rng.integers(0, 256, (40, code_size), dtype=np.uint8)
        for labels in (classes, multilabel):
            for ties in ("position", "average"):
                evaluate_retrieval(codes[:6], labels[:6], codes, labels, ndcg_at=(5,), ties=ties)
    return time.perf_counter() - start
