"""A main loss plus regularisers, as one loss."""

from __future__ import annotations

import torch
from torch import nn

from hashlearn.exceptions import InvalidInputError
from hashlearn.hashers.deep.losses.base import HashLoss

__all__ = ["CombinedLoss"]


class CombinedLoss(HashLoss):
    """``main + sum(regularizers)``; ``setup`` and ``on_epoch_end`` reach every part."""

    def __init__(self, main: HashLoss, regularizers: list[HashLoss]) -> None:
        super().__init__()
        for part in [main, *regularizers]:
            if not isinstance(part, HashLoss):
                raise InvalidInputError(f"CombinedLoss takes HashLoss modules, got {part!r}")
        self.main = main
        self.regularizers = nn.ModuleList(regularizers)

    def setup(
        self, n_train: int, n_bits: int, labels: torch.Tensor, generator: torch.Generator
    ) -> None:
        for part in [self.main, *self.regularizers]:
            part.setup(n_train, n_bits, labels, generator)

    def forward(
        self, outputs: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor
    ) -> torch.Tensor:
        loss = self.main(outputs, labels, indices)
        for regularizer in self.regularizers:
            loss = loss + regularizer(outputs, labels, indices)
        return loss

    def on_epoch_end(self, epoch: int) -> None:
        for part in [self.main, *self.regularizers]:
            part.on_epoch_end(epoch)
