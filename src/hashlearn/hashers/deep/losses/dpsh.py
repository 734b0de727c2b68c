"""Deep Pairwise-Supervised Hashing's pairwise likelihood loss (Li, Wang & Kang, IJCAI 2016)."""

from __future__ import annotations

import torch

from hashlearn._validation import check_float
from hashlearn.hashers.deep.losses.base import check_batch
from hashlearn.hashers.deep.losses.memory import MemoryLoss
from hashlearn.hashers.deep.losses.pairs import pair_in_batch

__all__ = ["DPSHLoss"]


class DPSHLoss(MemoryLoss):
    """Deep Pairwise-Supervised Hashing (Li, Wang & Kang, "Feature Learning based Deep Supervised
    Hashing with Pairwise Labels", IJCAI 2016), on the raw outputs ``u``::

        L = - sum_ij (s_ij theta_ij - log(1 + exp(theta_ij))) + eta sum_i ||b_i - u_i||^2,
        theta_ij = 1/2 u_i^T u_j,   b_i = sign(u_i)

    With ``memory=True`` (the paper sums over all pairs of the training set) each batch
    sample ``i`` is paired with every training sample ``j``, whose ``u_j`` is the memory of its
    latest output (needs :meth:`setup`); with ``memory=False`` (default) the pairs are the ordered
    pairs ``i != j`` inside the batch, and no setup is needed. The default is in-batch because,
    trained from scratch (the paper starts from a pre-trained CNN-F), the memory variant collapsed:
    on mnist5k with the small CNN every output converged to one constant code (validation mAP
    0.11 after 12 epochs at eta 0.1 or 10), while in-batch pairs reached 0.63. The sum over the
    batch's share of the objective is divided by its number of pairs (``b * n_train``, or
    ``b (b - 1)``), which keeps the paper's balance between the two terms.
    """

    def __init__(self, eta: float = 0.1, memory: bool = False) -> None:
        super().__init__()
        self.eta = check_float(eta, "eta", minimum=0.0)
        self.use_memory = bool(memory)

    def forward(
        self, outputs: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor
    ) -> torch.Tensor:
        check_batch(self, outputs, labels, min_size=1 if self.use_memory else 2)
        if self.use_memory:
            likelihood, n_pairs = self._pair_with_memory(outputs, indices)
        else:
            likelihood, n_pairs = pair_in_batch(outputs, labels)
        codes = torch.where(outputs >= 0, 1.0, -1.0).to(outputs.dtype)
        quantisation = ((codes - outputs) ** 2).sum()
        return (likelihood + self.eta * quantisation) / n_pairs
