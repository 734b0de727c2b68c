"""Pairwise pieces shared by the pair-based losses: label similarity, the pairwise likelihood,
class-balanced means and the pair masks of a batch."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "balanced_mean",
    "label_matrix",
    "pair_in_batch",
    "pair_likelihood",
    "pairwise_similarity",
    "upper_pairs",
]


def pairwise_similarity(labels: torch.Tensor, others: torch.Tensor | None = None) -> torch.Tensor:
    """``S[i, j] = 1`` when ``labels[i]`` and ``others[j]`` (default: ``labels``) are similar.

    Similar means equal class labels (1-D integer labels) or at least one shared label (2-D
    multi-label indicators). Returns a float32 tensor of shape ``(len(labels), len(others))``.
    """
    others = labels if others is None else others
    if labels.ndim == 1:
        return (labels[:, None] == others[None, :]).to(torch.float32)
    return (labels.to(torch.float32) @ others.to(torch.float32).T > 0).to(torch.float32)


def label_matrix(labels: torch.Tensor) -> torch.Tensor:
    """Labels as a float ``(n, c)`` indicator matrix: one-hot for class labels (``c`` is the
    largest label + 1)."""
    if labels.ndim == 1:
        return F.one_hot(labels.long(), int(labels.max()) + 1).to(torch.float32)
    return labels.to(torch.float32)


def pair_likelihood(theta: torch.Tensor, similarity: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of pairwise labels under ``P(s = 1) = sigmoid(theta)``:
    ``log(1 + exp(theta)) - s theta``, with the numerically stable softplus."""
    return F.softplus(theta) - similarity * theta


def balanced_mean(values: torch.Tensor, similarity: torch.Tensor) -> torch.Tensor:
    """``sum_ij w_ij values_ij / |S|`` with ``w = |S| / |S_1|`` on similar and ``|S| / |S_0|`` on
    dissimilar pairs, which is the mean over similar pairs plus the mean over dissimilar pairs
    (a class with no pair in the batch contributes nothing)."""
    total = values.new_zeros(())
    for mask in (similarity > 0.5, similarity <= 0.5):
        if mask.any():
            total = total + values[mask].mean()
    return total


def upper_pairs(n: int, device: torch.device) -> torch.Tensor:
    """Boolean ``(n, n)`` mask of the unordered pairs ``i < j``."""
    return torch.triu(torch.ones(n, n, dtype=torch.bool, device=device), diagonal=1)


def pair_in_batch(outputs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Summed pairwise likelihood of ``theta_ij = 1/2 u_i^T u_j`` over the ordered pairs
    ``i != j`` of the batch, and their number ``b (b - 1)``."""
    off_diagonal = ~torch.eye(len(outputs), dtype=torch.bool, device=outputs.device)
    theta = 0.5 * outputs @ outputs.T
    similarity = pairwise_similarity(labels).to(outputs.dtype)
    return pair_likelihood(theta, similarity)[off_diagonal].sum(), int(off_diagonal.sum())
