"""Deep Cauchy Hashing's loss (Cao, Long, Liu & Wang, CVPR 2018)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from hashlearn._validation import check_float
from hashlearn.hashers.deep.losses.base import HashLoss, check_batch
from hashlearn.hashers.deep.losses.pairs import balanced_mean, pairwise_similarity, upper_pairs

__all__ = ["DCHLoss"]


class DCHLoss(HashLoss):
    """Deep Cauchy Hashing (Cao, Long, Liu & Wang, "Deep Cauchy Hashing for Hamming Space
    Retrieval", CVPR 2018), on continuous codes ``h = tanh(z)``.

    With the normalised distance ``d(h_i, h_j) = K/2 (1 - cos(h_i, h_j))`` (``K = n_bits``) and the
    Cauchy probability ``P(s_ij = 1) = gamma / (gamma + d)``, the cross-entropy of a pair is
    ``s log(1 + d / gamma) + (1 - s) log(1 + gamma / d)``. It is weighted for class imbalance as
    :class:`HashNetLoss` (mean over similar plus mean over dissimilar unordered pairs of the
    batch) and added to ``lambda_q`` times the batch mean of the Cauchy quantisation loss
    ``log(1 + d(|h_i|, 1) / gamma)``. ``d`` is clamped at ``1e-6`` so identical dissimilar codes
    cost a large but finite amount.
    """

    def __init__(self, gamma: float = 20.0, lambda_q: float = 0.1) -> None:
        super().__init__()
        self.gamma = check_float(gamma, "gamma", minimum=0.0, strict_minimum=True)
        self.lambda_q = check_float(lambda_q, "lambda_q", minimum=0.0)

    def forward(
        self, outputs: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor
    ) -> torch.Tensor:
        check_batch(self, outputs, labels, min_size=2)
        n_bits = outputs.shape[1]
        h = torch.tanh(outputs)
        unit = F.normalize(h, dim=1)
        distance = (0.5 * n_bits * (1.0 - unit @ unit.T)).clamp_min(1e-6)
        similarity = pairwise_similarity(labels).to(outputs.dtype)
        cross_entropy = similarity * torch.log1p(distance / self.gamma) + (
            1.0 - similarity
        ) * torch.log1p(self.gamma / distance)
        upper = upper_pairs(len(outputs), outputs.device)
        pair_loss = balanced_mean(cross_entropy[upper], similarity[upper])
        cos_to_ones = h.abs().sum(dim=1) / (h.norm(dim=1).clamp_min(1e-12) * math.sqrt(n_bits))
        quantisation = torch.log1p(0.5 * n_bits * (1.0 - cos_to_ones) / self.gamma).mean()
        return pair_loss + self.lambda_q * quantisation
