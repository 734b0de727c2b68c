"""Deep Supervised Hashing's contrastive loss (Liu, Wang, Shan & Chen, CVPR 2016)."""

from __future__ import annotations

from typing import Any

import torch

from hashlearn._validation import check_float
from hashlearn.hashers.deep.losses.base import HashLoss, check_batch
from hashlearn.hashers.deep.losses.pairs import pairwise_similarity, upper_pairs

__all__ = ["DSHLoss"]


class DSHLoss(HashLoss):
    """Deep Supervised Hashing loss (Liu, Wang, Shan & Chen, "Deep Supervised Hashing for Fast
    Image Retrieval", CVPR 2016, eq. 5-6), on the raw outputs ``b``.

    For every unordered pair ``i < j`` of the mini-batch, with ``D = ||b_i - b_j||^2``::

        L_ij = 1/2 S_ij D + 1/2 (1 - S_ij) max(m - D, 0) + alpha (|| |b_i| - 1 ||_1 + || |b_j| - 1 ||_1)

    and the loss is the mean of ``L_ij`` over the ``n (n - 1) / 2`` pairs. Since each sample takes
    part in ``n - 1`` pairs, the regulariser equals ``2 alpha`` times the per-sample mean of
    ``|| |b| - 1 ||_1``. The margin ``m`` is usually ``2 n_bits`` (the paper's choice).
    """

    def __init__(self, margin: float, alpha: float = 0.01) -> None:
        super().__init__()
        self.margin = check_float(margin, "margin", minimum=0.0, strict_minimum=True)
        self.alpha = check_float(alpha, "alpha", minimum=0.0)

    @classmethod
    def for_code_length(cls, n_bits: int, **params: Any) -> DSHLoss:
        """The paper's margin ``2 n_bits`` unless ``params`` gives one."""
        params.setdefault("margin", 2.0 * n_bits)
        return cls(**params)

    def forward(
        self, outputs: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor
    ) -> torch.Tensor:
        check_batch(self, outputs, labels, min_size=2)
        similarity = pairwise_similarity(labels).to(outputs.dtype)
        squared_norms = (outputs * outputs).sum(dim=1)
        distances = (
            squared_norms[:, None] + squared_norms[None, :] - 2.0 * outputs @ outputs.T
        ).clamp_min(0.0)
        pair_terms = 0.5 * similarity * distances + 0.5 * (1.0 - similarity) * (
            self.margin - distances
        ).clamp_min(0.0)
        pair_loss = pair_terms[upper_pairs(len(outputs), outputs.device)].mean()
        regulariser = (outputs.abs() - 1.0).abs().sum(dim=1).mean()
        return pair_loss + 2.0 * self.alpha * regulariser
