"""Backbone networks by name. Each maps ``(n, c, h, w)`` images to ``(n, n_bits)`` real outputs."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from hashlearn.exceptions import InvalidInputError, UnknownNameError


class SmallCNN(nn.Module):
    """conv-pool-conv-pool-fc-fc, the small digit network of the DSH notebook (seed 000).

    ``conv(5x5, c1) -> ReLU -> maxpool(3) -> conv(5x5, c2) -> ReLU -> avgpool(2) -> fc(hidden)
    -> ReLU -> fc(n_bits)``, with linear outputs (DSH relaxes the binary codes to real values and
    takes their sign). Convolutions are zero-padded ("same") and pooling rounds up, so any input
    size from 1x1 (8x8 digits, 28x28 MNIST, 32x32 CIFAR) works; the size of the first fully
    connected layer is derived from the input shape.
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        n_bits: int,
        channels: tuple[int, int] = (12, 8),
        hidden: int = 128,
    ) -> None:
        super().__init__()
        c, _, _ = in_shape
        c1, c2 = channels
        self.features = nn.Sequential(
            nn.Conv2d(c, c1, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, ceil_mode=True),
            nn.Conv2d(c1, c2, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.AvgPool2d(2, ceil_mode=True),
            nn.Flatten(),
        )
        with torch.no_grad():
            n_flat = self.features(torch.zeros(1, *in_shape)).shape[1]
        self.head = nn.Sequential(
            nn.Linear(n_flat, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, n_bits)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


_BACKBONES: dict[str, tuple[Callable[..., nn.Module], str]] = {
    "small-cnn": (SmallCNN, "seed 000's conv-pool-conv-pool-fc digit network (~10-30k parameters)"),
}


def list_backbones() -> dict[str, str]:
    return {name: _BACKBONES[name][1] for name in sorted(_BACKBONES)}


def create_backbone(
    name: str, in_shape: tuple[int, int, int], n_bits: int, **kwargs: object
) -> nn.Module:
    """Build backbone ``name`` for ``(c, h, w)`` inputs with ``n_bits`` outputs."""
    if name not in _BACKBONES:
        raise UnknownNameError(
            f"unknown backbone {name!r}; available: {', '.join(sorted(_BACKBONES))}"
        )
    try:
        return _BACKBONES[name][0](in_shape, n_bits, **kwargs)
    except TypeError as exc:
        raise InvalidInputError(f"bad arguments for backbone {name!r}: {exc}") from None
