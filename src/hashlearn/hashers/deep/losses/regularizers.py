"""Label-free penalties on the batch outputs, added to a main loss with
:class:`~hashlearn.hashers.deep.losses.combined.CombinedLoss`: quantisation towards +-1, bit
balance, decorrelation of the bits."""

from __future__ import annotations

import torch

from hashlearn._validation import check_float
from hashlearn.exceptions import InvalidInputError
from hashlearn.hashers.deep.losses.base import HashLoss, check_batch

__all__ = [
    "BitBalance",
    "DeCov",
    "PairwiseQuantization",
    "QuantizationL1",
    "QuantizationL2",
    "Regularizer",
]


class Regularizer(HashLoss):
    """A label-free penalty ``weight * penalty(h)`` on the batch outputs, to add to a main loss
    with :class:`CombinedLoss`. ``h`` is the raw output (``activation="identity"``) or
    ``tanh(output)`` (``activation="tanh"``, for losses that squash their outputs)."""

    def __init__(self, weight: float = 1.0, activation: str = "identity") -> None:
        super().__init__()
        self.weight = check_float(weight, "weight", minimum=0.0)
        if activation not in ("identity", "tanh"):
            raise InvalidInputError(f"activation must be 'identity' or 'tanh', got {activation!r}")
        self.activation = activation

    def penalty(self, h: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(
        self, outputs: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor
    ) -> torch.Tensor:
        check_batch(self, outputs, labels, min_size=1)
        h = torch.tanh(outputs) if self.activation == "tanh" else outputs
        return self.weight * self.penalty(h)


class QuantizationL1(Regularizer):
    """DSH's regulariser: batch mean of ``|| |h_i| - 1 ||_1``."""

    def penalty(self, h: torch.Tensor) -> torch.Tensor:
        return (h.abs() - 1.0).abs().sum(dim=1).mean()


class QuantizationL2(Regularizer):
    """Batch mean of ``|| |h_i| - 1 ||_2^2``."""

    def penalty(self, h: torch.Tensor) -> torch.Tensor:
        return ((h.abs() - 1.0) ** 2).sum(dim=1).mean()


class PairwiseQuantization(Regularizer):
    """Distortion of inner products by the sign: mean over all ordered pairs ``(i, j)``
    (``i = j`` included) of ``(h_i^T h_j / K - b_i^T b_j / K)^2``, ``b = sign(h)`` (constant)."""

    def penalty(self, h: torch.Tensor) -> torch.Tensor:
        codes = torch.where(h >= 0, 1.0, -1.0).to(h.dtype)
        return (((h @ h.T) - (codes @ codes.T)) / h.shape[1]).pow(2).mean()


class BitBalance(Regularizer):
    """Each bit half on, half off: ``sum_k (mean_i h_ik)^2``."""

    def penalty(self, h: torch.Tensor) -> torch.Tensor:
        return (h.mean(dim=0) ** 2).sum()


class DeCov(Regularizer):
    """DeCov (Cogswell, Ahmed, Girshick, Zitnick & Batra, "Reducing Overfitting in Deep Networks
    by Decorrelating Representations", ICLR 2016): ``1/2 (||C||_F^2 - ||diag C||_2^2)`` with
    ``C = 1/b sum_i (h_i - mean)(h_i - mean)^T`` the ``(K, K)`` batch covariance of the bits."""

    def penalty(self, h: torch.Tensor) -> torch.Tensor:
        centred = h - h.mean(dim=0)
        covariance = centred.T @ centred / len(h)
        return 0.5 * ((covariance**2).sum() - (torch.diagonal(covariance) ** 2).sum())
