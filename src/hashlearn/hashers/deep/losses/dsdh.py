"""Deep Supervised Discrete Hashing's loss and discrete code updates (Li, Sun, He & Tan, NIPS 2017)."""

from __future__ import annotations

import torch

from hashlearn._validation import check_float, check_int
from hashlearn.exceptions import NotFittedError
from hashlearn.hashers.deep.losses.base import check_batch
from hashlearn.hashers.deep.losses.memory import MemoryLoss
from hashlearn.hashers.deep.losses.pairs import label_matrix, pair_in_batch

__all__ = ["DSDHLoss"]


class DSDHLoss(MemoryLoss):
    """Deep Supervised Discrete Hashing (Li, Sun, He & Tan, NIPS 2017). With ``U`` the outputs,
    ``B`` in ``{-1, 1}^(n_train x n_bits)`` discrete codes and ``W`` a linear classifier::

        min  - sum_ij (s_ij theta_ij - log(1 + exp(theta_ij))) + mu sum_i ||y_i - W^T b_i||^2
             + nu ||W||_F^2 + eta sum_i ||b_i - u_i||^2,        theta_ij = 1/2 u_i^T u_j

    :meth:`forward` is the network's part: the pairwise likelihood plus ``eta ||b_i - u_i||^2``
    with ``b_i`` read from ``B``, divided by the number of pairs. The pairs are the batch's own
    (default), or the batch against the memory of all outputs with ``memory_pairs=True`` (as the
    authors' code, ``liqi-casia/DSDH-HashingCode``, ``train.m``: ``b x n_train`` pairs, the
    gradient divided by ``batch_size * N``); the memory ``U`` is kept either way for the ``B``
    update. In-batch pairs are the default for the reason given in :class:`DPSHLoss`.

    **Balance.** With memory pairs ``eta`` weighs the quantisation term as in the paper and in
    the code update below. In-batch pairs are divided by ``b (b - 1)`` with the quantisation sum
    left unscaled (``DPSHLoss``'s ``balance="batch"``), so in the network's part the
    quantisation term weighs ``n_train / (b - 1)`` times more than in the paper at the same
    ``eta``, while the code update uses ``eta`` at the paper's weight. It is kept so because
    ``eta = 1`` was chosen in these units on the mnist5k validation split, among 55 (the
    authors' value, ``setup.m``), 1 and 0.1 (validation mAP after 12 epochs at 12 bits: 0.29,
    0.76, 0.72): with 55 the ``B`` update follows the outputs and the classifier term is lost.

    :meth:`on_epoch_end` updates ``W`` in closed form, ``W = (B^T B + nu/mu I)^-1 B^T Y``, then ``B`` by discrete cyclic coordinate descent: with
    ``P = Y W^T + eta/mu U``, each bit column ``k`` becomes
    ``sign(P[:, k] - B' W' w_k^T)`` (``B'``, ``W'`` without bit ``k``), ``dcc_iter`` sweeps.
    ``Y`` is one-hot (class labels) or the multi-label indicators. ``B`` starts as
    ``sign(Y R)`` with ``R`` a standard normal ``(c, n_bits)`` draw from the setup generator: one
    random code per label.
    """

    codes: torch.Tensor | None
    classifier: torch.Tensor | None
    targets: torch.Tensor | None

    def __init__(
        self,
        mu: float = 1.0,
        nu: float = 0.1,
        eta: float = 1.0,
        dcc_iter: int = 1,
        memory_pairs: bool = False,
    ) -> None:
        super().__init__()
        self.memory_pairs = bool(memory_pairs)
        self.mu = check_float(mu, "mu", minimum=0.0, strict_minimum=True)
        self.nu = check_float(nu, "nu", minimum=0.0, strict_minimum=True)
        self.eta = check_float(eta, "eta", minimum=0.0)
        self.dcc_iter = check_int(dcc_iter, "dcc_iter", minimum=1)
        for name in ("codes", "classifier", "targets"):
            self.register_buffer(name, None)

    def setup(
        self, n_train: int, n_bits: int, labels: torch.Tensor, generator: torch.Generator
    ) -> None:
        super().setup(n_train, n_bits, labels, generator)
        # in torch's default dtype, as the memory and codes are (float64 in double precision)
        self.targets = label_matrix(labels).to(labels.device, torch.get_default_dtype())
        # one random code per label, summed over a sample's labels: samples with the same labels
        # start with the same code (per-sample random codes, unlearnable by the network, made
        # the outputs collapse to a constant when trained from scratch)
        label_codes = torch.randn(
            self.targets.shape[1], n_bits, generator=generator, device=generator.device
        ).to(labels.device)
        self.codes = torch.where(self.targets @ label_codes >= 0, 1.0, -1.0)
        self._update_classifier()

    def forward(
        self, outputs: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor
    ) -> torch.Tensor:
        check_batch(self, outputs, labels, min_size=1 if self.memory_pairs else 2)
        if self.memory_pairs:
            likelihood, n_pairs = self._pair_with_memory(outputs, indices)
        else:
            self._remember(outputs, indices)
            likelihood, n_pairs = pair_in_batch(outputs, labels)
        codes = self.codes[indices].to(outputs.dtype)  # type: ignore[index]
        quantisation = ((codes - outputs) ** 2).sum()
        return (likelihood + self.eta * quantisation) / n_pairs

    def _update_classifier(self) -> None:
        B, n_bits = self.codes, self.codes.shape[1]  # type: ignore[union-attr]
        gram = B.T @ B + (self.nu / self.mu) * torch.eye(n_bits, device=B.device)
        self.classifier = torch.linalg.solve(gram, B.T @ self.targets)

    def on_epoch_end(self, epoch: int) -> None:
        if self.codes is None:
            raise NotFittedError("DSDHLoss keeps discrete codes: call setup(...) first")
        self._update_classifier()
        B, W = self.codes.clone(), self.classifier
        P = self.targets @ W.T + (self.eta / self.mu) * self.memory
        for _ in range(self.dcc_iter):
            for k in range(B.shape[1]):
                others = torch.arange(B.shape[1], device=B.device) != k
                column = P[:, k] - B[:, others] @ (W[others] @ W[k])
                B[:, k] = torch.where(column >= 0, 1.0, -1.0)
        self.codes = B

    def discrete_objective(self) -> float:
        """``mu ||Y - B W||^2 + nu ||W||^2 + eta ||B - U||^2``: the part of the objective that
        :meth:`on_epoch_end` minimises (never increases)."""
        if self.codes is None:
            raise NotFittedError("DSDHLoss keeps discrete codes: call setup(...) first")
        B, W, U = self.codes, self.classifier, self.memory
        value = self.mu * ((self.targets - B @ W) ** 2).sum() + self.nu * (W**2).sum()
        return float(value + self.eta * ((B - U) ** 2).sum())
