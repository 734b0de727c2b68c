"""A memory of every training sample's latest output, for losses that pair a batch with the
whole training set (DPSH, DSDH)."""

from __future__ import annotations

import torch

from hashlearn.exceptions import InvalidInputError, NotFittedError
from hashlearn.hashers.deep.losses.base import HashLoss, check_setup
from hashlearn.hashers.deep.losses.pairs import pair_likelihood, pairwise_similarity

__all__ = ["MemoryLoss"]


class MemoryLoss(HashLoss):
    """Keeps ``memory`` ``(n_train, n_bits)``, the latest detached outputs of every training
    sample (zeros until first seen), and the training labels, to pair a batch with all of them."""

    memory: torch.Tensor | None
    train_labels: torch.Tensor | None

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("memory", None)
        self.register_buffer("train_labels", None)

    def setup(
        self, n_train: int, n_bits: int, labels: torch.Tensor, generator: torch.Generator
    ) -> None:
        check_setup(self, n_train, n_bits, labels)
        self.memory = torch.zeros(n_train, n_bits, device=labels.device)
        self.train_labels = labels.clone()

    def _remember(self, outputs: torch.Tensor, indices: torch.Tensor) -> None:
        """Write the batch's detached outputs into the memory (training mode only)."""
        if self.memory is None:
            raise NotFittedError(f"{type(self).__name__} keeps a memory: call setup(...) first")
        if self.training:
            self.memory[indices] = outputs.detach().to(self.memory.dtype)

    def _pair_with_memory(
        self, outputs: torch.Tensor, indices: torch.Tensor
    ) -> tuple[torch.Tensor, int]:
        """Write the batch into the memory (training mode), then return the summed pairwise
        likelihood of ``theta_ij = 1/2 u_i^T U_j`` over batch ``i`` x all training ``j``, and the
        number ``b * n_train`` of those pairs. Gradients flow through the batch side only."""
        if self.memory is None or self.train_labels is None:
            raise NotFittedError(f"{type(self).__name__} keeps a memory: call setup(...) first")
        if outputs.shape[1] != self.memory.shape[1]:
            raise InvalidInputError(
                f"outputs have {outputs.shape[1]} bits, setup was for {self.memory.shape[1]}"
            )
        self._remember(outputs, indices)
        memory = self.memory.to(outputs.dtype)
        similarity = pairwise_similarity(self.train_labels[indices], self.train_labels)
        theta = 0.5 * outputs @ memory.T
        return pair_likelihood(theta, similarity.to(outputs.dtype)).sum(), theta.numel()
