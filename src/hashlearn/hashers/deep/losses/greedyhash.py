"""GreedyHash's loss: a classifier on the signs of the outputs, trained through the sign with
the gradient passed straight through, plus a cubic pull to +-1 (Su, Zhang, Han & Tian,
NeurIPS 2018)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hashlearn._validation import check_float
from hashlearn.exceptions import InvalidInputError, NotFittedError
from hashlearn.hashers.deep.losses.base import HashLoss, check_batch, check_setup

__all__ = ["GreedyHashLoss", "StraightThroughSign", "straight_through_sign"]


class StraightThroughSign(torch.autograd.Function):
    """``sign(h)`` (``sign(0) = +1``, the codes' convention) in the forward pass; in the
    backward pass the incoming gradient is passed to ``h`` unchanged (GreedyHash's hash
    layer)."""

    @staticmethod
    def forward(ctx: Any, h: torch.Tensor) -> torch.Tensor:
        return torch.where(h >= 0, 1.0, -1.0).to(h.dtype)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> torch.Tensor:
        return grad_output


def straight_through_sign(h: torch.Tensor) -> torch.Tensor:
    """:class:`StraightThroughSign` applied to ``h``."""
    return StraightThroughSign.apply(h)  # type: ignore[no-any-return]


class GreedyHashLoss(HashLoss):
    """GreedyHash (Su, Zhang, Han & Tian, "Greedy Hash: Towards Fast Optimization for Accurate
    Hash Coding in CNN", NeurIPS 2018), supervised, on the raw outputs ``h``.

    The codes ``b = sign(h)`` are used as they are in the forward pass and the gradient of the
    loss in ``b`` is given to ``h`` unchanged (:func:`straight_through_sign`): each step moves
    ``h`` towards the best discrete ``b`` (the paper's greedy principle). The loss is the softmax
    cross-entropy of a linear classifier without bias on ``b`` (``W``: ``(n_classes, n_bits)``,
    trained with the network) plus ``alpha`` times the mean over samples and bits of
    ``| |h| - 1 |^3``, the paper's ``||h - sign(h)||_3^3`` that keeps ``h`` near the codes so
    the passed-through gradient stays accurate. ``alpha = 0.1`` is the authors' CIFAR-10 setting
    (their ImageNet script uses 1). ``W`` starts as PyTorch's ``nn.Linear`` does, uniform in
    ``+-1/sqrt(n_bits)``, drawn from the setup generator.

    The paper trains on class labels only: multi-label indicators are refused.
    """

    classifier: nn.Parameter | None

    def __init__(self, alpha: float = 0.1) -> None:
        super().__init__()
        self.alpha = check_float(alpha, "alpha", minimum=0.0)
        self.register_parameter("classifier", None)

    def setup(
        self, n_train: int, n_bits: int, labels: torch.Tensor, generator: torch.Generator
    ) -> None:
        check_setup(self, n_train, n_bits, labels)
        if labels.ndim != 1:
            raise InvalidInputError(
                "GreedyHash's classifier takes one class label per sample (y of shape (n,)), as "
                f"in its paper; got multi-label indicators of shape {tuple(labels.shape)}. Use "
                "a method that takes them: csq, dpn, orthohash or a pairwise one"
            )
        n_classes = int(labels.max()) + 1
        bound = 1.0 / math.sqrt(n_bits)
        weights = torch.rand(n_classes, n_bits, generator=generator, device=generator.device)
        weights = (2.0 * weights - 1.0) * bound
        self.classifier = nn.Parameter(weights.to(labels.device, torch.get_default_dtype()))

    def forward(
        self, outputs: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor
    ) -> torch.Tensor:
        check_batch(self, outputs, labels, min_size=1)
        if self.classifier is None:
            raise NotFittedError("GreedyHashLoss trains a classifier: call setup(...) first")
        if labels.ndim != 1:
            raise InvalidInputError(
                f"GreedyHashLoss takes class labels of shape (b,), got {tuple(labels.shape)}"
            )
        codes = straight_through_sign(outputs)
        logits = codes @ self.classifier.to(outputs.dtype).T
        classification = F.cross_entropy(logits, labels.long())
        penalty = (outputs.abs() - 1.0).abs().pow(3).mean()
        return classification + self.alpha * penalty
