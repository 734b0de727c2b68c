"""The interface every hashing loss follows, :class:`HashLoss`, and its input checks.

A loss is called as ``loss(outputs, labels, indices) -> scalar`` on a mini-batch:

- ``outputs``: ``(b, n_bits)`` float, the raw real network outputs; each loss applies its own
  squashing (``tanh`` and so on). The code of a sample is ``sign(output)`` with ``sign(0) = +1``.
- ``labels``: the batch's labels, ``(b,)`` int64 class labels or ``(b, c)`` bool/float multi-label
  indicators. Two samples are *similar* when their class labels are equal, or when they share at
  least one label (see :func:`~hashlearn.hashers.deep.losses.pairs.pairwise_similarity`).
- ``indices``: ``(b,)`` int64 positions of the batch in the training set, for losses that keep
  per-sample state (memories of outputs or codes, per-sample targets).

``setup(n_train, n_bits, labels, generator)`` is called once before training with all training
labels and a seeded generator; ``on_epoch_end(epoch)`` after each epoch. State changes made during
``forward`` (writing the memory of outputs, HashNet's iteration counter) happen only in training
mode (``loss.train()``, the default); in ``loss.eval()`` mode the loss is a pure function of its
inputs, which is what validation losses and gradient checks want.

Unsupervised losses (BiHalf, CIBHash) set ``supervised = False``: they read no labels (the
trainer passes placeholders), and their hashers train without any.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from hashlearn._validation import check_int
from hashlearn.exceptions import InvalidInputError

__all__ = ["HashLoss", "check_batch", "check_setup"]


class HashLoss(nn.Module):
    """Base class of hashing losses (see the module docstring for the calling convention)."""

    supervised: ClassVar[bool] = True

    @classmethod
    def for_code_length(cls, n_bits: int, **params: Any) -> HashLoss:
        """The loss for codes of ``n_bits`` bits: ``cls(**params)``, with the defaults that
        depend on ``n_bits`` (DSH's margin, HashNet's ``alpha``) filled in by the losses that
        have some. :func:`~hashlearn.hashers.deep.losses.registry.create_loss` builds through
        here."""
        return cls(**params)

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


def check_batch(
    loss: nn.Module, outputs: torch.Tensor, labels: torch.Tensor, min_size: int
) -> None:
    """Raise InvalidInputError unless ``outputs`` is ``(b, n_bits)`` with ``b >= min_size`` and
    ``labels`` has ``b`` rows; messages name the loss."""
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


def check_setup(loss: HashLoss, n_train: int, n_bits: int, labels: torch.Tensor) -> None:
    """Raise InvalidInputError unless ``setup`` got ``n_train`` labels of shape ``(n,)`` or
    ``(n, c)`` and positive sizes."""
    check_int(n_train, "n_train", minimum=1)
    check_int(n_bits, "n_bits", minimum=1)
    if labels.ndim not in (1, 2) or len(labels) != n_train:
        raise InvalidInputError(
            f"{type(loss).__name__}.setup needs {n_train} labels of shape (n,) or (n, c), "
            f"got shape {tuple(labels.shape)}"
        )
