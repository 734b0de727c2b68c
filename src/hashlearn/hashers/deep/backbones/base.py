"""What every backbone shares: the :class:`HashHead` that ends it, and the checks of its
arguments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from hashlearn._validation import check_float, check_int
from hashlearn.exceptions import InvalidInputError

__all__ = ["HashHead", "check_dropout", "check_in_shape", "check_int_tuple"]


def check_dropout(dropout: Any) -> float:
    return check_float(dropout, "dropout", minimum=0.0, maximum=0.999)


def check_int_tuple(
    value: Any, name: str, *, length: int | None = None, minimum: int = 1
) -> tuple[int, ...]:
    """``value`` as a tuple of ints >= ``minimum`` (of ``length`` items when given)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise InvalidInputError(f"{name} must be a sequence of integers, got {value!r}")
    if length is not None and len(value) != length:
        raise InvalidInputError(f"{name} must have {length} items, got {len(value)}: {value!r}")
    if len(value) == 0:
        raise InvalidInputError(f"{name} must not be empty")
    return tuple(check_int(v, f"{name}[{i}]", minimum=minimum) for i, v in enumerate(value))


def check_in_shape(in_shape: Any) -> tuple[int, int, int]:
    c, h, w = check_int_tuple(in_shape, "in_shape (c, h, w)", length=3)
    return c, h, w


class HashHead(nn.Linear):
    """The last layer of every backbone: optional dropout, then a linear map to ``n_bits`` real
    outputs (the relaxed codes; each loss applies its own tanh or scaling).

    It is an ``nn.Linear`` with dropout in front, so its state-dict keys are ``weight``
    ``(n_bits, in_features)`` and ``bias`` ``(n_bits,)``, exactly those of the plain linear layer
    it replaces (models saved before it existed still load), and its initialisation is
    ``nn.Linear``'s.

    Parameters
    ----------
    in_features : size of the feature vector it reads, ``(n, in_features)`` float.
    n_bits : number of outputs (code length).
    dropout : probability of zeroing a feature during training (0 = no dropout).
    """

    def __init__(self, in_features: int, n_bits: int, dropout: float = 0.0) -> None:
        super().__init__(
            check_int(in_features, "in_features", minimum=1), check_int(n_bits, "n_bits", minimum=1)
        )
        self.dropout = check_dropout(dropout)

    @property
    def n_bits(self) -> int:
        return self.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, in_features)`` -> ``(n, n_bits)``."""
        if self.dropout > 0.0:
            x = F.dropout(x, self.dropout, self.training)
        return super().forward(x)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, dropout={self.dropout}"
