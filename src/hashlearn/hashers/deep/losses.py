"""Deep hashing losses as small modules sharing one interface, :class:`HashLoss`.

A loss is called as ``loss(outputs, labels, indices) -> scalar`` on a mini-batch:

- ``outputs``: ``(b, n_bits)`` float, the raw real network outputs; each loss applies its own
  squashing (``tanh`` and so on). The code of a sample is ``sign(output)`` with ``sign(0) = +1``.
- ``labels``: the batch's labels, ``(b,)`` int64 class labels or ``(b, c)`` bool/float multi-label
  indicators. Two samples are *similar* when their class labels are equal, or when they share at
  least one label (see :func:`pairwise_similarity`).
- ``indices``: ``(b,)`` int64 positions of the batch in the training set, for losses that keep
  per-sample state (memories of outputs or codes, per-sample targets).

``setup(n_train, n_bits, labels, generator)`` is called once before training with all training
labels and a seeded generator; ``on_epoch_end(epoch)`` after each epoch. State changes made during
``forward`` (writing the memory of outputs, HashNet's iteration counter) happen only in training
mode (``loss.train()``, the default); in ``loss.eval()`` mode the loss is a pure function of its
inputs, which is what validation losses and gradient checks want.

Regularisers (:class:`QuantizationL1`, :class:`BitBalance`, :class:`DeCov`...) are losses too and
are added to a main loss with :class:`CombinedLoss`. :func:`create_loss` builds the main losses by
name with their papers' defaults.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hashlearn._validation import check_float, check_int
from hashlearn.exceptions import InvalidInputError, NotFittedError, UnknownNameError


def pairwise_similarity(labels: torch.Tensor, others: torch.Tensor | None = None) -> torch.Tensor:
    """``S[i, j] = 1`` when ``labels[i]`` and ``others[j]`` (default: ``labels``) are similar.

    Similar means equal class labels (1-D integer labels) or at least one shared label (2-D
    multi-label indicators). Returns a float32 tensor of shape ``(len(labels), len(others))``.
    """
    others = labels if others is None else others
    if labels.ndim == 1:
        return (labels[:, None] == others[None, :]).to(torch.float32)
    return (labels.to(torch.float32) @ others.to(torch.float32).T > 0).to(torch.float32)


def _label_matrix(labels: torch.Tensor) -> torch.Tensor:
    """Labels as a float ``(n, c)`` indicator matrix: one-hot for class labels."""
    if labels.ndim == 1:
        return F.one_hot(labels.long(), int(labels.max()) + 1).to(torch.float32)
    return labels.to(torch.float32)


def _pair_likelihood(theta: torch.Tensor, similarity: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of pairwise labels under ``P(s = 1) = sigmoid(theta)``:
    ``log(1 + exp(theta)) - s theta``, with the numerically stable softplus."""
    return F.softplus(theta) - similarity * theta


def _balanced_mean(values: torch.Tensor, similarity: torch.Tensor) -> torch.Tensor:
    """``sum_ij w_ij values_ij / |S|`` with ``w = |S| / |S_1|`` on similar and ``|S| / |S_0|`` on
    dissimilar pairs, which is the mean over similar pairs plus the mean over dissimilar pairs
    (a class with no pair in the batch contributes nothing)."""
    total = values.new_zeros(())
    for mask in (similarity > 0.5, similarity <= 0.5):
        if mask.any():
            total = total + values[mask].mean()
    return total


def _check_batch(
    loss: nn.Module, outputs: torch.Tensor, labels: torch.Tensor, min_size: int
) -> None:
    if outputs.ndim != 2:
        raise InvalidInputError(
            f"{type(loss).__name__} needs outputs of shape (batch, n_bits), got {tuple(outputs.shape)}"
        )
    if len(labels) != len(outputs):
        raise InvalidInputError(f"{len(labels)} labels for a batch of {len(outputs)} outputs")
    if len(outputs) < min_size:
        raise InvalidInputError(
            f"{type(loss).__name__} needs at least {min_size} samples in a batch, got {len(outputs)}"
        )


def _upper_pairs(n: int, device: torch.device) -> torch.Tensor:
    """Boolean ``(n, n)`` mask of the unordered pairs ``i < j``."""
    return torch.triu(torch.ones(n, n, dtype=torch.bool, device=device), diagonal=1)


class HashLoss(nn.Module):
    """Base class of hashing losses (see the module docstring for the calling convention)."""

    def setup(
        self, n_train: int, n_bits: int, labels: torch.Tensor, generator: torch.Generator
    ) -> None:
        """Create per-dataset state from all training ``labels`` (``(n_train,)`` int64 or
        ``(n_train, c)`` indicators) and the seeded ``generator``. Default: nothing."""

    def forward(
        self, outputs: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor
    ) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def on_epoch_end(self, epoch: int) -> None:
        """Update state once per epoch (discrete steps, schedules). Default: nothing."""


def _check_setup(loss: HashLoss, n_train: int, n_bits: int, labels: torch.Tensor) -> None:
    check_int(n_train, "n_train", minimum=1)
    check_int(n_bits, "n_bits", minimum=1)
    if labels.ndim not in (1, 2) or len(labels) != n_train:
        raise InvalidInputError(
            f"{type(loss).__name__}.setup needs {n_train} labels of shape (n,) or (n, c), "
            f"got shape {tuple(labels.shape)}"
        )


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

    def forward(
        self, outputs: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor
    ) -> torch.Tensor:
        _check_batch(self, outputs, labels, min_size=2)
        similarity = pairwise_similarity(labels).to(outputs.dtype)
        squared_norms = (outputs * outputs).sum(dim=1)
        distances = (
            squared_norms[:, None] + squared_norms[None, :] - 2.0 * outputs @ outputs.T
        ).clamp_min(0.0)
        pair_terms = 0.5 * similarity * distances + 0.5 * (1.0 - similarity) * (
            self.margin - distances
        ).clamp_min(0.0)
        pair_loss = pair_terms[_upper_pairs(len(outputs), outputs.device)].mean()
        regulariser = (outputs.abs() - 1.0).abs().sum(dim=1).mean()
        return pair_loss + 2.0 * self.alpha * regulariser


class _MemoryLoss(HashLoss):
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
        _check_setup(self, n_train, n_bits, labels)
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
        return _pair_likelihood(theta, similarity.to(outputs.dtype)).sum(), theta.numel()


def _pair_in_batch(outputs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Summed pairwise likelihood of ``theta_ij = 1/2 u_i^T u_j`` over the ordered pairs
    ``i != j`` of the batch, and their number ``b (b - 1)``."""
    off_diagonal = ~torch.eye(len(outputs), dtype=torch.bool, device=outputs.device)
    theta = 0.5 * outputs @ outputs.T
    similarity = pairwise_similarity(labels).to(outputs.dtype)
    return _pair_likelihood(theta, similarity)[off_diagonal].sum(), int(off_diagonal.sum())


class DPSHLoss(_MemoryLoss):
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
        _check_batch(self, outputs, labels, min_size=1 if self.use_memory else 2)
        if self.use_memory:
            likelihood, n_pairs = self._pair_with_memory(outputs, indices)
        else:
            likelihood, n_pairs = _pair_in_batch(outputs, labels)
        codes = torch.where(outputs >= 0, 1.0, -1.0).to(outputs.dtype)
        quantisation = ((codes - outputs) ** 2).sum()
        return (likelihood + self.eta * quantisation) / n_pairs


class HashNetLoss(HashLoss):
    """HashNet (Cao, Long, Wang & Yu, "HashNet: Deep Learning to Hash by Continuation", ICCV 2017).

    ``h = tanh(beta z)`` and, over the unordered pairs ``i < j`` of the batch, the weighted
    likelihood ``sum_ij w_ij (log(1 + exp(alpha <h_i, h_j>)) - alpha s_ij <h_i, h_j>) / |S|``
    with ``w_ij = |S| / |S_1|`` on similar and ``|S| / |S_0|`` on dissimilar pairs, counted per
    batch (so the loss is the mean over similar pairs plus the mean over dissimilar pairs).
    ``alpha`` defaults to ``10 / n_bits``.

    Continuation: ``beta = beta0 (1 + gamma t)^power`` with ``t`` the iteration counter rounded
    down to a multiple of ``step`` (``beta`` changes every ``step`` iterations). ``iteration``
    counts the forward calls made in training mode and is part of ``state_dict()``.
    """

    def __init__(
        self,
        alpha: float | None = None,
        beta0: float = 1.0,
        gamma: float = 0.005,
        step: int = 200,
        power: float = 0.5,
    ) -> None:
        super().__init__()
        self.alpha = (
            None if alpha is None else check_float(alpha, "alpha", minimum=0.0, strict_minimum=True)
        )
        self.beta0 = check_float(beta0, "beta0", minimum=0.0, strict_minimum=True)
        self.gamma = check_float(gamma, "gamma", minimum=0.0)
        self.step = check_int(step, "step", minimum=1)
        self.power = check_float(power, "power", minimum=0.0)
        self.iteration = 0

    def get_extra_state(self) -> dict[str, int]:
        """The iteration counter, so that checkpoints (``state_dict``) resume the schedule."""
        return {"iteration": self.iteration}

    def set_extra_state(self, state: dict[str, int]) -> None:
        self.iteration = int(state["iteration"])

    @property
    def beta(self) -> float:
        """The current scale of ``tanh(beta z)``."""
        t = (self.iteration // self.step) * self.step
        return self.beta0 * (1.0 + self.gamma * t) ** self.power

    def forward(
        self, outputs: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor
    ) -> torch.Tensor:
        _check_batch(self, outputs, labels, min_size=2)
        alpha = 10.0 / outputs.shape[1] if self.alpha is None else self.alpha
        h = torch.tanh(self.beta * outputs)
        inner = alpha * (h @ h.T)
        similarity = pairwise_similarity(labels).to(outputs.dtype)
        upper = _upper_pairs(len(outputs), outputs.device)
        loss = _balanced_mean(_pair_likelihood(inner, similarity)[upper], similarity[upper])
        if self.training:
            self.iteration += 1
        return loss


class DSDHLoss(_MemoryLoss):
    """Deep Supervised Discrete Hashing (Li, Sun, He & Tan, NIPS 2017). With ``U`` the outputs,
    ``B`` in ``{-1, 1}^(n_train x n_bits)`` discrete codes and ``W`` a linear classifier::

        min  - sum_ij (s_ij theta_ij - log(1 + exp(theta_ij))) + mu sum_i ||y_i - W^T b_i||^2
             + nu ||W||_F^2 + eta sum_i ||b_i - u_i||^2,        theta_ij = 1/2 u_i^T u_j

    :meth:`forward` is the network's part: the pairwise likelihood plus ``eta ||b_i - u_i||^2``
    with ``b_i`` read from ``B``, divided by the number of pairs (as :class:`DPSHLoss`). The pairs
    are the batch's own (default), or the batch against the memory of all outputs with
    ``memory_pairs=True``; the memory ``U`` is kept either way for the ``B`` update. In-batch pairs
    are the default for the reason given in :class:`DPSHLoss`. ``eta = 1`` was chosen on the
    mnist5k validation split among 55, 1 and 0.1 (validation mAP after 12 epochs at 12 bits: 0.29,
    0.76, 0.72): with 55 the ``B`` update follows the outputs and the classifier term is lost. :meth:`on_epoch_end` updates ``W`` in closed form,
    ``W = (B^T B + nu/mu I)^-1 B^T Y``, then ``B`` by discrete cyclic coordinate descent: with
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
        self.targets = _label_matrix(labels).to(labels.device)
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
        _check_batch(self, outputs, labels, min_size=1 if self.memory_pairs else 2)
        if self.memory_pairs:
            likelihood, n_pairs = self._pair_with_memory(outputs, indices)
        else:
            self._remember(outputs, indices)
            likelihood, n_pairs = _pair_in_batch(outputs, labels)
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
        _check_batch(self, outputs, labels, min_size=2)
        n_bits = outputs.shape[1]
        h = torch.tanh(outputs)
        unit = F.normalize(h, dim=1)
        distance = (0.5 * n_bits * (1.0 - unit @ unit.T)).clamp_min(1e-6)
        similarity = pairwise_similarity(labels).to(outputs.dtype)
        cross_entropy = similarity * torch.log1p(distance / self.gamma) + (
            1.0 - similarity
        ) * torch.log1p(self.gamma / distance)
        upper = _upper_pairs(len(outputs), outputs.device)
        pair_loss = _balanced_mean(cross_entropy[upper], similarity[upper])
        cos_to_ones = h.abs().sum(dim=1) / (h.norm(dim=1).clamp_min(1e-12) * math.sqrt(n_bits))
        quantisation = torch.log1p(0.5 * n_bits * (1.0 - cos_to_ones) / self.gamma).mean()
        return pair_loss + self.lambda_q * quantisation


def hadamard_matrix(n: int) -> torch.Tensor:
    """Sylvester's Hadamard matrix of order ``n`` (a power of 2): float32 ``(n, n)`` of +-1 whose
    rows are mutually orthogonal, i.e. at Hamming distance ``n / 2``."""
    check_int(n, "n", minimum=1)
    if n & (n - 1):
        raise InvalidInputError(f"Sylvester's Hadamard matrix needs a power of 2, got {n}")
    H = torch.ones(1, 1)
    while len(H) < n:
        H = torch.cat([torch.cat([H, H], dim=1), torch.cat([H, -H], dim=1)])
    return H


def hash_centers(
    n_classes: int,
    n_bits: int,
    generator: torch.Generator,
    kind: str = "hadamard",
    tries: int = 100,
) -> torch.Tensor:
    """Hash centres of CSQ: float32 ``(n_classes, n_bits)`` of +-1.

    ``kind="hadamard"`` takes the first ``n_classes`` rows of ``[H; -H]`` (``H`` Sylvester's
    Hadamard matrix of order ``n_bits``) when ``n_bits`` is a power of 2 and ``n_classes <=
    2 n_bits``: centres then lie at Hamming distance ``n_bits / 2`` (``n_bits`` for a row and its
    negation). Otherwise, and for ``kind="random"``, centres are Bernoulli(1/2) draws from
    ``generator``: among up to ``tries`` draws the one with the largest minimum pairwise Hamming
    distance is kept, stopping early once it reaches ``n_bits / 2``.
    """
    check_int(n_classes, "n_classes", minimum=1)
    check_int(n_bits, "n_bits", minimum=1)
    if kind not in ("hadamard", "random"):
        raise InvalidInputError(f"centers must be 'hadamard' or 'random', got {kind!r}")
    if kind == "hadamard" and not n_bits & (n_bits - 1) and n_classes <= 2 * n_bits:
        H = hadamard_matrix(n_bits)
        return torch.cat([H, -H])[:n_classes]
    best, best_distance = None, -1.0
    for _ in range(check_int(tries, "tries", minimum=1)):
        bits = torch.rand(n_classes, n_bits, generator=generator, device=generator.device) < 0.5
        centers = torch.where(bits, 1.0, -1.0).cpu()
        distances = 0.5 * (n_bits - centers @ centers.T) + n_bits * torch.eye(n_classes)
        if float(distances.min()) > best_distance:
            best, best_distance = centers, float(distances.min())
        if best_distance >= n_bits / 2:
            break
    return best  # type: ignore[return-value]


class CSQLoss(HashLoss):
    """Central Similarity Quantization (Yuan, Wang, Zhang, Tay, Jie, Liu & Feng, "Central
    Similarity Quantization for Efficient Image and Video Retrieval", CVPR 2020).

    Each class has a hash centre (:func:`hash_centers`); a sample's target ``c`` is its class's
    centre, or for multi-label data the sign of the sum of its labels' centres with ties (and
    samples without labels) broken by fair coin flips from the setup generator. With
    ``h = tanh(z)`` the loss is the binary cross-entropy between ``(h + 1) / 2 = sigmoid(2 z)`` and
    ``(c + 1) / 2``, averaged over samples and bits, plus ``lambda_q`` times the mean of the
    paper's smooth quantisation loss ``log cosh(|h| - 1)``.
    """

    centers: torch.Tensor | None
    targets: torch.Tensor | None

    def __init__(self, lambda_q: float = 1e-4, centers: str = "hadamard") -> None:
        super().__init__()
        self.lambda_q = check_float(lambda_q, "lambda_q", minimum=0.0)
        if centers not in ("hadamard", "random"):
            raise InvalidInputError(f"centers must be 'hadamard' or 'random', got {centers!r}")
        self.center_kind = centers
        self.register_buffer("centers", None)
        self.register_buffer("targets", None)

    def setup(
        self, n_train: int, n_bits: int, labels: torch.Tensor, generator: torch.Generator
    ) -> None:
        _check_setup(self, n_train, n_bits, labels)
        label_matrix = _label_matrix(labels).cpu()
        centers = hash_centers(label_matrix.shape[1], n_bits, generator, self.center_kind)
        votes = label_matrix @ centers
        coins = torch.rand(votes.shape, generator=generator, device=generator.device).cpu() < 0.5
        targets = torch.where(votes > 0, 1.0, -1.0)
        targets = torch.where(votes == 0, torch.where(coins, 1.0, -1.0), targets)
        self.centers = centers.to(labels.device)
        self.targets = targets.to(labels.device)

    def forward(
        self, outputs: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor
    ) -> torch.Tensor:
        _check_batch(self, outputs, labels, min_size=1)
        if self.targets is None:
            raise NotFittedError("CSQLoss assigns hash centres: call setup(...) first")
        targets = (self.targets[indices].to(outputs.dtype) + 1.0) / 2.0
        central = F.binary_cross_entropy_with_logits(2.0 * outputs, targets)
        h = torch.tanh(outputs)
        quantisation = torch.log(torch.cosh(h.abs() - 1.0)).mean()
        return central + self.lambda_q * quantisation


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
        _check_batch(self, outputs, labels, min_size=1)
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


_LOSSES: dict[str, type[HashLoss]] = {
    "csq": CSQLoss,
    "dch": DCHLoss,
    "dpsh": DPSHLoss,
    "dsdh": DSDHLoss,
    "dsh": DSHLoss,
    "hashnet": HashNetLoss,
}


_REGULARIZERS: dict[str, type[Regularizer]] = {
    "bit-balance": BitBalance,
    "decov": DeCov,
    "pairwise-quantization": PairwiseQuantization,
    "quantization-l1": QuantizationL1,
    "quantization-l2": QuantizationL2,
}


def list_regularizers() -> list[str]:
    """Names accepted by :func:`create_regularizer`, sorted."""
    return sorted(_REGULARIZERS)


def create_regularizer(name: str, weight: float, activation: str = "identity") -> Regularizer:
    """Build a regulariser by name (``"bit-balance"``, ``"decov"``, ``"quantization-l1"``...)."""
    if name not in _REGULARIZERS:
        raise UnknownNameError(
            f"unknown regularizer {name!r}; available: {', '.join(list_regularizers())}"
        )
    return _REGULARIZERS[name](weight=weight, activation=activation)


def list_losses() -> list[str]:
    """Names accepted by :func:`create_loss`, sorted."""
    return sorted(_LOSSES)


def create_loss(name: str, n_bits: int, **params: Any) -> HashLoss:
    """Build a main loss by name with its paper's defaults, overridden by ``params``.

    ``n_bits`` sets the defaults that depend on it: DSH's margin ``2 n_bits`` and HashNet's
    ``alpha = 10 / n_bits``.
    """
    if name not in _LOSSES:
        raise UnknownNameError(f"unknown loss {name!r}; available: {', '.join(list_losses())}")
    n_bits = check_int(n_bits, "n_bits", minimum=1)
    cls = _LOSSES[name]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise InvalidInputError(
            f"loss {name!r} has no parameter(s) {unknown}; it takes {', '.join(accepted)}"
        )
    if name == "dsh":
        params.setdefault("margin", 2.0 * n_bits)
    if name == "hashnet" and params.get("alpha") is None:
        params["alpha"] = 10.0 / n_bits
    return cls(**params)
