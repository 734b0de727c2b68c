"""Deep Polarized Network's polarization loss and per-class target codes (Fan, Ng, Ju, Zhang &
Chan, IJCAI 2020)."""

from __future__ import annotations

import torch

from hashlearn._validation import check_float, check_int
from hashlearn.exceptions import InvalidInputError, NotFittedError
from hashlearn.hashers.deep.losses.base import HashLoss, check_batch, check_setup
from hashlearn.hashers.deep.losses.csq import hash_centers
from hashlearn.hashers.deep.losses.pairs import label_matrix

__all__ = ["ClassCodeLoss", "DPNLoss", "class_codes"]

_KINDS = ("bernoulli", "hadamard")


def class_codes(
    n_classes: int, n_bits: int, generator: torch.Generator, kind: str = "bernoulli"
) -> torch.Tensor:
    """One target code per class: float32 ``(n_classes, n_bits)`` of +-1.

    ``kind="bernoulli"`` draws every bit as a fair coin from ``generator``, independently, as
    DPN's and OrthoHash's papers do by default (their released code: ``centroid-method`` /
    ``codebook-method`` ``N`` and ``B``); at a few bits two classes can draw close or equal
    codes. ``kind="hadamard"`` takes CSQ's centres (:func:`hash_centers`): rows of a Hadamard
    matrix, ``n_bits / 2`` apart, when ``n_bits`` is a power of 2 and ``n_classes <= 2 n_bits``,
    else the best spread of 100 random draws.
    """
    check_int(n_classes, "n_classes", minimum=1)
    check_int(n_bits, "n_bits", minimum=1)
    if kind not in _KINDS:
        raise InvalidInputError(f"codes must be one of {', '.join(_KINDS)}; got {kind!r}")
    if kind == "hadamard":
        return hash_centers(n_classes, n_bits, generator, "hadamard")
    coins = torch.rand(n_classes, n_bits, generator=generator, device=generator.device) < 0.5
    return torch.where(coins, 1.0, -1.0).cpu()


class ClassCodeLoss(HashLoss):
    """A loss that gives each class a target binary code: row ``c`` of ``codebook``, drawn by
    :func:`class_codes` in :meth:`setup` (``codes``: ``"bernoulli"`` or ``"hadamard"``).
    DPN and OrthoHash share it."""

    codebook: torch.Tensor | None

    def __init__(self, codes: str = "bernoulli") -> None:
        super().__init__()
        if codes not in _KINDS:
            raise InvalidInputError(f"codes must be one of {', '.join(_KINDS)}; got {codes!r}")
        self.code_kind = codes
        self.register_buffer("codebook", None)

    def setup(
        self, n_train: int, n_bits: int, labels: torch.Tensor, generator: torch.Generator
    ) -> None:
        check_setup(self, n_train, n_bits, labels)
        n_classes = label_matrix(labels).shape[1]
        self.codebook = class_codes(n_classes, n_bits, generator, self.code_kind).to(labels.device)

    def class_targets(self, outputs: torch.Tensor) -> torch.Tensor:
        """The codebook in ``outputs``' dtype.

        Raises
        ------
        NotFittedError
            :meth:`setup` has not drawn the codes yet.
        """
        if self.codebook is None:
            raise NotFittedError(
                f"{type(self).__name__} assigns a code to each class: call setup(...) first"
            )
        return self.codebook.to(outputs.dtype)


class DPNLoss(ClassCodeLoss):
    """Deep Polarized Network (Fan, Ng, Ju, Zhang & Chan, "Deep Polarized Network for
    Supervised Learning of Accurate Binary Hashing Codes", IJCAI 2020), on the raw outputs ``v``.

    Each class ``c`` has a target code ``t_c`` in ``{-1, +1}^K`` (:func:`class_codes`, random by
    default: the paper shows random codes suffice). The polarization loss of a sample pushes
    every output bit past a margin ``m`` on the side of its class's target bit::

        L = 1/n sum_i sum_k max(m - v_ik t_(y_i)k, 0)

    i.e. the hinge is summed over the bits and averaged over the batch, as in the authors'
    released code (margin 1, no other term: their ``ce`` and ``reg`` weights default to 0). For
    multi-label indicators the hinges of all of a sample's labels are summed (the paper's
    NUS-WIDE setting); a sample without labels adds nothing.
    """

    def __init__(self, margin: float = 1.0, codes: str = "bernoulli") -> None:
        super().__init__(codes)
        self.margin = check_float(margin, "margin", minimum=0.0, strict_minimum=True)

    def forward(
        self, outputs: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor
    ) -> torch.Tensor:
        check_batch(self, outputs, labels, min_size=1)
        codebook = self.class_targets(outputs)
        if labels.ndim == 1:
            hinge = (self.margin - outputs * codebook[labels.long()]).clamp_min(0.0)
            return hinge.sum(dim=1).mean()
        per_class = (self.margin - outputs[:, None, :] * codebook[None]).clamp_min(0.0).sum(dim=2)
        return (per_class * labels.to(outputs.dtype)).sum(dim=1).mean()
