"""Central Similarity Quantization's loss and its hash centres (Yuan et al., CVPR 2020)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hashlearn._validation import check_float, check_int
from hashlearn.exceptions import InvalidInputError, NotFittedError
from hashlearn.hashers.deep.losses.base import HashLoss, check_batch, check_setup
from hashlearn.hashers.deep.losses.pairs import label_matrix

__all__ = ["CSQLoss", "hadamard_matrix", "hash_centers"]


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
        check_setup(self, n_train, n_bits, labels)
        indicators = label_matrix(labels).cpu()
        centers = hash_centers(indicators.shape[1], n_bits, generator, self.center_kind)
        votes = indicators @ centers
        coins = torch.rand(votes.shape, generator=generator, device=generator.device).cpu() < 0.5
        targets = torch.where(votes > 0, 1.0, -1.0)
        targets = torch.where(votes == 0, torch.where(coins, 1.0, -1.0), targets)
        self.centers = centers.to(labels.device)
        self.targets = targets.to(labels.device)

    def forward(
        self, outputs: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor
    ) -> torch.Tensor:
        check_batch(self, outputs, labels, min_size=1)
        if self.targets is None:
            raise NotFittedError("CSQLoss assigns hash centres: call setup(...) first")
        targets = (self.targets[indices].to(outputs.dtype) + 1.0) / 2.0
        central = F.binary_cross_entropy_with_logits(2.0 * outputs, targets)
        h = torch.tanh(outputs)
        quantisation = torch.log(torch.cosh(h.abs() - 1.0)).mean()
        return central + self.lambda_q * quantisation
