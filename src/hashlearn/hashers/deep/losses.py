"""Deep hashing losses as small modules: ``loss(outputs, similarity) -> scalar``.

``outputs`` is the ``(n, n_bits)`` real-valued network output of a mini-batch; ``similarity`` the
``(n, n)`` 0/1 matrix, 1 where two samples share a label (see :func:`pairwise_similarity`).
"""

from __future__ import annotations

import torch
from torch import nn


def pairwise_similarity(labels: torch.Tensor) -> torch.Tensor:
    """``S[i, j] = 1`` when samples i and j are similar: equal class labels (1-D int labels) or at
    least one shared label (2-D multi-label indicators); float tensor of shape ``(n, n)``."""
    if labels.ndim == 1:
        return (labels[:, None] == labels[None, :]).to(torch.float32)
    labels = labels.to(torch.float32)
    return (labels @ labels.T > 0).to(torch.float32)


class DSHLoss(nn.Module):
    """Deep Supervised Hashing loss (Liu, Wang, Shan & Chen, CVPR 2016, eq. 5-6).

    For every unordered pair ``i < j`` of the mini-batch, with ``D = ||b_i - b_j||^2``::

        L_ij = 1/2 S_ij D + 1/2 (1 - S_ij) max(m - D, 0) + alpha (|| |b_i| - 1 ||_1 + || |b_j| - 1 ||_1)

    and the loss is the mean of ``L_ij`` over the ``n (n - 1) / 2`` pairs. Since each sample takes
    part in ``n - 1`` pairs, the regulariser equals ``2 alpha`` times the per-sample mean of
    ``|| |b| - 1 ||_1``. The margin ``m`` is usually ``2 n_bits`` (the paper's choice).
    """

    def __init__(self, margin: float, alpha: float = 0.01) -> None:
        super().__init__()
        self.margin = float(margin)
        self.alpha = float(alpha)

    def forward(self, outputs: torch.Tensor, similarity: torch.Tensor) -> torch.Tensor:
        n = outputs.shape[0]
        if n < 2:
            raise ValueError("DSHLoss needs at least 2 samples in a batch to form a pair")
        squared_norms = (outputs * outputs).sum(dim=1)
        distances = (
            squared_norms[:, None] + squared_norms[None, :] - 2.0 * outputs @ outputs.T
        ).clamp_min(0.0)
        pair_terms = 0.5 * similarity * distances + 0.5 * (1.0 - similarity) * (
            self.margin - distances
        ).clamp_min(0.0)
        upper = torch.triu(torch.ones(n, n, dtype=torch.bool, device=outputs.device), diagonal=1)
        pair_loss = pair_terms[upper].mean()
        regulariser = (outputs.abs() - 1.0).abs().sum(dim=1).mean()
        return pair_loss + 2.0 * self.alpha * regulariser
