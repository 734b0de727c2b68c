"""A compact CIFAR-style ResNet, ``"small-resnet"`` (He, Zhang, Ren & Sun, CVPR 2016)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from hashlearn._validation import check_int
from hashlearn.hashers.deep.backbones.base import HashHead, check_in_shape, check_int_tuple

__all__ = ["BasicBlock", "SmallResNet"]


class BasicBlock(nn.Module):
    """The two-layer residual block of He et al. (CVPR 2016, Fig. 2): ``relu(F(x) + s(x))`` with
    ``F = conv3x3(stride) -> BN -> ReLU -> conv3x3 -> BN``. The shortcut ``s`` is the identity, or
    a 1x1 convolution + BN (the paper's option B) when the width or the resolution changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x), inplace=True)


class SmallResNet(nn.Module):
    """A compact ResNet for small images (He, Zhang, Ren & Sun, "Deep Residual Learning for Image
    Recognition", CVPR 2016, Section 4.2, the CIFAR-10 networks), the backbone of seed 001.

    ``conv3x3(widths[0]) -> BN -> ReLU``, then one stage per width of ``blocks_per_stage``
    :class:`BasicBlock` s, the first block of every stage after the first halving the resolution
    (stride 2), then global average pooling and :class:`HashHead`. The defaults, widths
    (16, 32, 64) with 2 blocks each, are the paper's 6n+2-layer net with n = 2 (14 layers).
    Deviations from the paper: shortcuts that change shape are 1x1 convolutions + BN (option B,
    so any widths work) rather than zero-padded identities (option A). Weights are initialised
    as in the paper (He et al. 2015 normal init of the convolutions, BN scale 1 and shift 0).

    The global pooling makes it work at any input size (1x1 and up: 8x8 digits, 28x28 MNIST,
    32x32 CIFAR, 224x224 ImageNet-sized crops) and any channel count; compute grows with h * w.

    Parameters
    ----------
    in_shape : ``(c, h, w)`` of the input images.
    n_bits : number of outputs.
    widths : channels of each stage; their number is the number of stages.
    blocks_per_stage : residual blocks per stage, one int for all stages or one per stage.
    dropout : dropout before the last layer (:class:`HashHead`).

    State-dict keys: ``stem.*``, ``stages.<stage>.<block>.{conv1,bn1,conv2,bn2,shortcut}.*``,
    ``head.*``.
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        n_bits: int,
        widths: Sequence[int] = (16, 32, 64),
        blocks_per_stage: int | Sequence[int] = 2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        c, _, _ = check_in_shape(in_shape)
        widths = check_int_tuple(widths, "widths")
        if isinstance(blocks_per_stage, Sequence) and not isinstance(blocks_per_stage, str):
            blocks = check_int_tuple(blocks_per_stage, "blocks_per_stage", length=len(widths))
        else:
            blocks = (check_int(blocks_per_stage, "blocks_per_stage", minimum=1),) * len(widths)
        self.stem = nn.Sequential(
            nn.Conv2d(c, widths[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        stages = []
        in_channels = widths[0]
        for i, (width, n_blocks) in enumerate(zip(widths, blocks)):
            layers = []
            for j in range(n_blocks):
                stride = 2 if i > 0 and j == 0 else 1
                layers.append(BasicBlock(in_channels, width, stride))
                in_channels = width
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = HashHead(in_channels, n_bits, dropout=dropout)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, c, h, w)`` float32 -> ``(n, n_bits)`` float32."""
        return self.head(self.pool(self.stages(self.stem(x))))
