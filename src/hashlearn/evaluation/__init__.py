"""Retrieval evaluation: Hamming ranking, relevance and the metrics of the hashing literature.

See :mod:`hashlearn.codes.ranking` and :mod:`hashlearn.codes.metrics` for the exact definitions
(tie order, mAP vs. mAP@k, empty-result conventions, the per-query and pooled precision within a
Hamming radius).
"""

from hashlearn.codes.metrics import (
    PRECISION_CONVENTIONS,
    average_precision,
    mean_average_precision,
    pooled_precision_within_radius,
    pooled_recall_within_radius,
    precision_at_k,
    precision_within_radius,
    recall_at_k,
    recall_within_radius,
)
from hashlearn.codes.ranking import hamming_ranking, relevance_matrix
from hashlearn.evaluation.exact import FEATURE_METRICS, evaluate_features
from hashlearn.evaluation.neighbours import (
    DEFAULT_NEIGHBOUR_SHARE,
    nearest_neighbours,
    with_neighbour_relevance,
)
from hashlearn.evaluation.protocols import Protocol, apply_protocol
from hashlearn.evaluation.registry import describe_protocols, get_protocol, list_protocols
from hashlearn.evaluation.retrieval import RetrievalEvaluation, evaluate_codes, evaluate_retrieval
from hashlearn.evaluation.warmup import warm_up

__all__ = [
    "DEFAULT_NEIGHBOUR_SHARE",
    "FEATURE_METRICS",
    "PRECISION_CONVENTIONS",
    "Protocol",
    "RetrievalEvaluation",
    "apply_protocol",
    "average_precision",
    "describe_protocols",
    "evaluate_codes",
    "evaluate_features",
    "evaluate_retrieval",
    "get_protocol",
    "hamming_ranking",
    "list_protocols",
    "mean_average_precision",
    "nearest_neighbours",
    "pooled_precision_within_radius",
    "pooled_recall_within_radius",
    "precision_at_k",
    "precision_within_radius",
    "recall_at_k",
    "recall_within_radius",
    "relevance_matrix",
    "warm_up",
    "with_neighbour_relevance",
]
