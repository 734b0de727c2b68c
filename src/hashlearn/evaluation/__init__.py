"""Retrieval evaluation: Hamming ranking, relevance and the metrics of the hashing literature.

See :mod:`hashlearn.evaluation.metrics` for the exact definitions (tie order, mAP vs. mAP@k,
empty-result conventions).
"""

from hashlearn.evaluation.metrics import (
    average_precision,
    evaluate_codes,
    hamming_ranking,
    mean_average_precision,
    precision_at_k,
    precision_within_radius,
    recall_at_k,
    recall_within_radius,
    relevance_matrix,
)

__all__ = [
    "average_precision",
    "evaluate_codes",
    "hamming_ranking",
    "mean_average_precision",
    "precision_at_k",
    "precision_within_radius",
    "recall_at_k",
    "recall_within_radius",
    "relevance_matrix",
]
