"""The small digit network of seed 000, ``"small-cnn"``."""

from __future__ import annotations

import torch
from torch import nn

from hashlearn._validation import check_int
from hashlearn.hashers.deep.backbones.base import HashHead, check_in_shape, check_int_tuple

__all__ = ["SmallCNN"]


class SmallCNN(nn.Module):
    """conv-pool-conv-pool-fc-fc, the small digit network of the DSH notebook (seed 000).

    ``conv(5x5, c1) -> ReLU -> maxpool(3) -> conv(5x5, c2) -> ReLU -> avgpool(2) -> fc(hidden)
    -> ReLU -> fc(n_bits)``, with linear outputs (DSH relaxes the binary codes to real values and
    takes their sign). Convolutions are zero-padded ("same") and pooling rounds up, so any input
    size from 1x1 (8x8 digits, 28x28 MNIST, 32x32 CIFAR) works; the size of the first fully
    connected layer is derived from the input shape.

    Parameters
    ----------
    in_shape : ``(c, h, w)`` of the input images.
    n_bits : number of outputs.
    channels : filters of the two convolutions.
    hidden : width of the hidden fully connected layer.
    dropout : dropout before the last layer (:class:`HashHead`).

    State-dict keys: ``features.0.*`` (conv 1), ``features.3.*`` (conv 2), ``head.0.*`` (fc
    hidden), ``head.2.*`` (fc n_bits).
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        n_bits: int,
        channels: tuple[int, int] = (12, 8),
        hidden: int = 128,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        c, _, _ = check_in_shape(in_shape)
        c1, c2 = check_int_tuple(channels, "channels", length=2)
        hidden = check_int(hidden, "hidden", minimum=1)
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
            nn.Linear(n_flat, hidden),
            nn.ReLU(inplace=True),
            HashHead(hidden, n_bits, dropout=dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, c, h, w)`` float32 -> ``(n, n_bits)`` float32."""
        return self.head(self.features(x))
