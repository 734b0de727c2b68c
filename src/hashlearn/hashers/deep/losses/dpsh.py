"""Deep Pairwise-Supervised Hashing's pairwise likelihood loss (Li, Wang & Kang, IJCAI 2016)."""

from __future__ import annotations

import torch

from hashlearn._validation import check_float
from hashlearn.exceptions import InvalidInputError, NotFittedError
from hashlearn.hashers.deep.losses.base import check_batch
from hashlearn.hashers.deep.losses.memory import MemoryLoss
from hashlearn.hashers.deep.losses.pairs import pair_in_batch

__all__ = ["BALANCES", "DPSHLoss"]

BALANCES = ("paper", "batch")


class DPSHLoss(MemoryLoss):
    """Deep Pairwise-Supervised Hashing (Li, Wang & Kang, "Feature Learning based Deep Supervised
    Hashing with Pairwise Labels", IJCAI 2016, eq. 2 relaxed as eq. 3), on the raw outputs ``u``::

        J = - sum_{i,j} (s_ij theta_ij - log(1 + exp(theta_ij))) + eta sum_i ||b_i - u_i||^2,
        theta_ij = 1/2 u_i^T u_j,   b_i = sign(u_i)

    over the ``n_train^2`` pairs and the ``n_train`` samples of the training set. Divided by its
    number of pairs, ``J / n_train^2`` is the mean pair likelihood plus ``eta / n_train`` times
    the mean quantisation error of a sample: that is the paper's balance between the two terms.

    Which pairs a batch of ``b`` samples sees, and how the two terms are weighed:

    - ``memory=True``: each batch sample ``i`` is paired with every training sample ``j``, whose
      ``u_j`` is the memory of its latest output (:class:`MemoryLoss`), and the loss is
      ``(likelihoods + eta sum_batch ||b_i - u_i||^2) / (b n_train)``: the paper's balance, and
      exactly the normalisation of the authors' group's released PyTorch code
      (``jiangqy/DPSH-pytorch``, ``DPSH_CIFAR_10.py``: both terms divided by
      ``num_train * batch_size``). ``balance`` does not apply.
    - ``memory=False`` (default): the ordered pairs ``i != j`` inside the batch, and
      ``balance="batch"`` (default) divides both sums by their number:
      ``(likelihoods + eta sum_batch ||b_i - u_i||^2) / (b (b - 1))``. The quantisation term
      then weighs ``n_train / (b - 1)`` times more than in the paper at the same ``eta``: the
      default ``eta = 0.1`` is a paper ``eta`` of ``0.1 n_train / (b - 1)`` (3.1 for 4,000
      training images in batches of 128, 0.24 for 300).
    - ``memory=False, balance="paper"``: in-batch pairs with the quantisation sum scaled by
      ``(b - 1) / n_train``, ``(likelihoods + eta (b - 1) / n_train sum_batch ||b_i - u_i||^2)
      / (b (b - 1))``, whose expectation over batches is ``J / n_train^2``: ``eta`` means what
      it means in the paper (``n_train`` comes from :meth:`setup`).

    Why the default is not the paper's balance: it makes the weight of the quantisation term
    per pair ``eta / n_train``, so one ``eta`` means different training on different amounts of
    data, while ``balance="batch"`` weighs it ``eta / (b - 1)`` whatever the data size. Measured
    with the small CNN, batches of 128: 16 bits, 25 epochs on 300 digits (separation of
    different- and same-class code distances, as in the tests), and 12 bits, 12 epochs on 4,000
    mnist5k images (best validation mAP on the other 1,000, mean of seeds 0, 1, 2):
    ``balance="batch"`` at ``eta=0.1``: 4.25 and 0.701; the paper's balance at ``eta=10``: 0.0
    (every code the same) and 0.710; at ``eta=1``: 4.48 and 0.649 (``eta=50``: 0.690 on
    mnist5k). No paper ``eta`` served both sizes.

    In-batch pairs are the default because, trained from scratch (the paper fine-tunes a CNN-F
    pre-trained on ImageNet), the memory variant collapsed: on mnist5k with the small CNN every
    output converged to one constant code (validation mAP 0.11 after 12 epochs at eta 0.1 or
    10), while in-batch pairs reached 0.63. The released code's settings (memory pairs,
    ``eta = 50``, SGD) are ``preset="paper"`` of the ``dpsh`` hasher.
    """

    def __init__(self, eta: float = 0.1, memory: bool = False, balance: str = "batch") -> None:
        super().__init__()
        self.eta = check_float(eta, "eta", minimum=0.0)
        self.use_memory = bool(memory)
        if balance not in BALANCES:
            raise InvalidInputError(
                f"balance must be one of {', '.join(map(repr, BALANCES))}, got {balance!r}"
            )
        self.balance = balance

    def quantisation_weight(self, batch_size: int) -> float:
        """The factor on ``eta sum_batch ||b_i - u_i||^2`` before the division by the number of
        pairs: ``(b - 1) / n_train`` for in-batch pairs with the paper's balance, else 1."""
        if self.use_memory or self.balance == "batch":
            return 1.0
        if self.memory is None:
            raise NotFittedError(
                "DPSHLoss with balance='paper' scales by the training set size: call "
                "setup(...) first, or use balance='batch'"
            )
        return (batch_size - 1) / len(self.memory)

    def forward(
        self, outputs: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor
    ) -> torch.Tensor:
        check_batch(self, outputs, labels, min_size=1 if self.use_memory else 2)
        weight = self.quantisation_weight(len(outputs))
        if self.use_memory:
            likelihood, n_pairs = self._pair_with_memory(outputs, indices)
        else:
            likelihood, n_pairs = pair_in_batch(outputs, labels)
        codes = torch.where(outputs >= 0, 1.0, -1.0).to(outputs.dtype)
        quantisation = ((codes - outputs) ** 2).sum()
        return (likelihood + self.eta * weight * quantisation) / n_pairs
