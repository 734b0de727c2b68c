"""The CIFAR-10 network of Deep Supervised Hashing, ``"dsh-cifar"`` (Liu, Wang, Shan & Chen,
CVPR 2016)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from hashlearn._validation import check_float, check_int
from hashlearn.exceptions import InvalidInputError
from hashlearn.hashers.deep.backbones.base import HashHead, check_in_shape, check_int_tuple

__all__ = ["DSHNet", "WithinChannelLRN"]


class WithinChannelLRN(nn.Module):
    """Caffe's local response normalisation over a ``size x size`` spatial window of each channel
    (``norm_region: WITHIN_CHANNEL``), as used by DSH's CIFAR-10 network::

        y = x / (1 + alpha * mean_{size x size window}(x^2)) ** beta

    The window is zero-padded and the mean always divides by ``size * size``. No parameters.
    """

    def __init__(self, size: int = 3, alpha: float = 5e-5, beta: float = 0.75) -> None:
        super().__init__()
        self.size = check_int(size, "size", minimum=1)
        if self.size % 2 == 0:
            raise InvalidInputError(f"size must be odd, got {size}")
        self.alpha = check_float(alpha, "alpha", minimum=0.0)
        self.beta = check_float(beta, "beta")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean_square = F.avg_pool2d(
            x * x, self.size, stride=1, padding=self.size // 2, count_include_pad=True
        )
        return x / (1.0 + self.alpha * mean_square).pow(self.beta)

    def extra_repr(self) -> str:
        return f"size={self.size}, alpha={self.alpha}, beta={self.beta}"


class DSHNet(nn.Module):
    """The CIFAR-10 network of Deep Supervised Hashing (Liu, Wang, Shan & Chen, "Deep Supervised
    Hashing for Fast Image Retrieval", CVPR 2016, Section 4).

    The paper: three convolution-pooling layers, 5x5 filters with stride 1 (32, 32 and 64 of
    them), pooling over 3x3 patches with stride 2, then a fully connected layer of 500 units and
    the output layer of ``n_bits`` units. The layer order, pooling types and normalisation follow
    the authors' released Caffe definition (based on Caffe's "cifar10_full")::

        conv1 5x5/32 pad 2 -> maxpool 3/2 -> ReLU -> LRN
        conv2 5x5/32 pad 2 -> avgpool 3/2 -> ReLU -> LRN
        conv3 5x5/64 pad 2 -> ReLU -> avgpool 3/2
        fc 500 -> ReLU -> fc n_bits (:class:`HashHead`)

    LRN is Caffe's within-channel normalisation over 3x3 windows, alpha 5e-5, beta 0.75
    (:class:`WithinChannelLRN`; so weak that activations of size 10 are only scaled by 0.996).
    Pooling rounds up as Caffe's does (32x32 -> 16 -> 8 -> 4, so the fc layer reads
    64 * 4 * 4 = 1024 values); the fc input size is derived from ``in_shape`` with a dummy
    forward, so inputs from 8x8 up work. Weights use Caffe's "xavier" filler of the release,
    uniform in ``+-sqrt(3 / fan_in)``, biases 0.

    Parameters
    ----------
    in_shape : ``(c, h, w)`` of the input images; ``h, w >= 8``.
    n_bits : number of outputs.
    channels : filters of the three convolutions (paper: 32, 32, 64).
    hidden : units of the fully connected layer (paper: 500).
    dropout : dropout before the last layer (:class:`HashHead`; the paper uses none).

    State-dict keys: ``features.{0,4,8}.*`` (the convolutions), ``head.0.*`` (fc hidden),
    ``head.2.*`` (fc n_bits).
    """

    min_size = 8

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        n_bits: int,
        channels: tuple[int, int, int] = (32, 32, 64),
        hidden: int = 500,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        c, h, w = check_in_shape(in_shape)
        c1, c2, c3 = check_int_tuple(channels, "channels", length=3)
        hidden = check_int(hidden, "hidden", minimum=1)
        if min(h, w) < self.min_size:
            raise InvalidInputError(
                f"'dsh-cifar' needs images of at least {self.min_size}x{self.min_size} pixels "
                f"(three 3x3 stride-2 poolings), got in_shape {tuple(in_shape)}"
            )
        self.features = nn.Sequential(
            nn.Conv2d(c, c1, 5, padding=2),
            nn.MaxPool2d(3, stride=2, ceil_mode=True),
            nn.ReLU(inplace=True),
            WithinChannelLRN(),
            nn.Conv2d(c1, c2, 5, padding=2),
            nn.AvgPool2d(3, stride=2, ceil_mode=True),
            nn.ReLU(inplace=True),
            WithinChannelLRN(),
            nn.Conv2d(c2, c3, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.AvgPool2d(3, stride=2, ceil_mode=True),
            nn.Flatten(),
        )
        with torch.no_grad():
            n_flat = self.features(torch.zeros(1, c, h, w)).shape[1]
        self.head = nn.Sequential(
            nn.Linear(n_flat, hidden),
            nn.ReLU(inplace=True),
            HashHead(hidden, n_bits, dropout=dropout),
        )
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                fan_in = module.weight[0].numel()
                bound = math.sqrt(3.0 / fan_in)
                nn.init.uniform_(module.weight, -bound, bound)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, c, h, w)`` float32 -> ``(n, n_bits)`` float32."""
        return self.head(self.features(x))
