"""Backbone networks by name. Each maps ``(n, c, h, w)`` float32 images to ``(n, n_bits)`` real
outputs, whose signs are the code bits.

Built in (always available, plain PyTorch):

- ``"small-cnn"``: :class:`SmallCNN`, the conv-pool-conv-pool-fc digit network of seed 000.
- ``"small-resnet"``: :class:`SmallResNet`, a CIFAR-style ResNet (He et al., CVPR 2016), the
  backbone of seed 001 (DSH with a small ResNet on MNIST).
- ``"dsh-cifar"``: :class:`DSHNet`, the CIFAR-10 network of DSH (Liu et al., CVPR 2016).

Families, when the optional package is installed (imported only when such a name is built):

- ``"torchvision:<name>"``: any classification model of ``torchvision.models``
  (``pip install 'hashlearn[torchvision]'``), e.g. ``"torchvision:resnet18"``.
- ``"timm:<name>"``: any model of ``timm`` (``pip install 'hashlearn[timm]'``),
  e.g. ``"timm:resnet18"``.

Every backbone ends in a :class:`HashHead` and takes ``weights=`` a local state-dict file
(``.safetensors`` preferred; ``.pt``/``.pth``/``.bin`` are read with
``torch.load(weights_only=True)``, never unpickled). Nothing is downloaded: family models start
from random weights unless a file is given.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from hashlearn._validation import check_float, check_int
from hashlearn.exceptions import FileFormatError, InvalidInputError, UnknownNameError

__all__ = [
    "DSHNet",
    "HashHead",
    "SmallCNN",
    "SmallResNet",
    "create_backbone",
    "list_backbones",
    "load_state_dict_file",
    "load_weights",
]

WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")


# -- shared pieces ------------------------------------------------------------------------------


def _check_dropout(dropout: Any) -> float:
    return check_float(dropout, "dropout", minimum=0.0, maximum=0.999)


def _check_int_tuple(
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


def _check_in_shape(in_shape: Any) -> tuple[int, int, int]:
    c, h, w = _check_int_tuple(in_shape, "in_shape (c, h, w)", length=3)
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
        self.dropout = _check_dropout(dropout)

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


# -- built-in backbones -------------------------------------------------------------------------


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
        c, _, _ = _check_in_shape(in_shape)
        c1, c2 = _check_int_tuple(channels, "channels", length=2)
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
        c, _, _ = _check_in_shape(in_shape)
        widths = _check_int_tuple(widths, "widths")
        if isinstance(blocks_per_stage, Sequence) and not isinstance(blocks_per_stage, str):
            blocks = _check_int_tuple(blocks_per_stage, "blocks_per_stage", length=len(widths))
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
        c, h, w = _check_in_shape(in_shape)
        c1, c2, c3 = _check_int_tuple(channels, "channels", length=3)
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


_BACKBONES: dict[str, tuple[Callable[..., nn.Module], str]] = {
    "small-cnn": (SmallCNN, "seed 000's conv-pool-conv-pool-fc digit network (~10-30k parameters)"),
    "small-resnet": (
        SmallResNet,
        "CIFAR-style ResNet-14 (He et al. 2016): widths 16/32/64, global pooling (~175k)",
    ),
    "dsh-cifar": (
        DSHNet,
        "the DSH paper's CIFAR-10 net: conv(5x5)-pool x3 (32/32/64), fc 500 (0.37M on 28x28)",
    ),
}


# -- weight files -------------------------------------------------------------------------------


def load_state_dict_file(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a state dict (parameter name -> tensor) from a local file, on the CPU.

    ``.safetensors`` files (preferred) are read with safetensors; ``.pt``, ``.pth`` and ``.bin``
    with ``torch.load(weights_only=True)``, which refuses anything but tensors and plain
    containers (no pickled code runs). A checkpoint that wraps the state dict under a
    ``"state_dict"`` or ``"model"`` key is unwrapped.

    Raises
    ------
    InvalidInputError : ``path`` is not a path, does not exist, or has another suffix.
    FileFormatError : the file cannot be read or does not hold a state dict.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidInputError(f"weights must be a path to a local file, got {path!r}")
    file = Path(path)
    if not file.is_file():
        raise InvalidInputError(f"weights file {str(file)!r} does not exist")
    suffix = file.suffix.lower()
    if suffix not in WEIGHT_SUFFIXES:
        raise InvalidInputError(
            f"weights file {str(file)!r} must end in one of {', '.join(WEIGHT_SUFFIXES)}"
        )
    try:
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(file, device="cpu")
        else:
            state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # safetensors, unpickling and I/O errors alike
        raise FileFormatError(f"cannot read weights file {str(file)!r}: {exc}") from None
    if isinstance(state, Mapping) and not all(isinstance(v, torch.Tensor) for v in state.values()):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), Mapping):
                state = state[key]
                break
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise FileFormatError(
            f"weights file {str(file)!r} does not hold a state dict (names -> tensors)"
        )
    return dict(state)


def _summarise(items: list[str], limit: int = 10) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" (and {len(items) - limit} more)" if len(items) > limit else "")


def load_weights(
    net: nn.Module,
    path: str | os.PathLike[str],
    label: str,
    *,
    optional: Collection[str] = (),
    grey_input_key: str | None = None,
) -> None:
    """Load the state dict in file ``path`` into ``net``, checking that it fits exactly.

    Every key of ``net.state_dict()`` must be in the file with the same shape, and the file may
    hold no other key; otherwise :class:`InvalidInputError` names the missing, unexpected and
    mismatched keys. Exceptions: BatchNorm's ``num_batches_tracked`` counters may be missing;
    keys in ``optional`` (a replaced classifier) may be missing or of another shape, and are
    then left as initialised; the weight named ``grey_input_key`` (the first convolution of a
    network adapted to 1-channel input) may come with 3 input channels, which are summed.
    """
    state = load_state_dict_file(path)
    own = net.state_dict()
    missing = [
        k
        for k in own
        if k not in state and k not in optional and not k.endswith("num_batches_tracked")
    ]
    unexpected = [k for k in state if k not in own]
    mismatched = []
    to_load = {}
    for key, target in own.items():
        if key not in state:
            continue
        value = state[key]
        if (
            key == grey_input_key
            and value.ndim == 4
            and value.shape[1] == 3
            and target.shape[1] == 1
            and value.shape[0] == target.shape[0]
            and value.shape[2:] == target.shape[2:]
        ):
            value = value.sum(dim=1, keepdim=True)
        if value.shape != target.shape:
            if key not in optional:
                mismatched.append(
                    f"{key} (file {tuple(value.shape)}, network {tuple(target.shape)})"
                )
            continue
        to_load[key] = value
    if missing or unexpected or mismatched:
        problems = []
        if missing:
            problems.append(f"missing keys: {_summarise(missing)}")
        if unexpected:
            problems.append(f"unexpected keys: {_summarise(unexpected)}")
        if mismatched:
            problems.append(f"shape mismatches: {_summarise(mismatched)}")
        raise InvalidInputError(
            f"weights file {str(path)!r} does not fit backbone {label!r}; " + "; ".join(problems)
        )
    net.load_state_dict(to_load, strict=False)


# -- torchvision and timm families --------------------------------------------------------------


def _import_optional(package: str, backbone: str) -> Any:
    """Import ``package`` or raise ``ModuleNotFoundError`` naming the pip extra to install."""
    try:
        return importlib.import_module(package)
    except ImportError:
        raise ModuleNotFoundError(
            f"backbone {backbone!r} needs the optional package {package!r}, which is not "
            f"installed: pip install 'hashlearn[{package}]' (or: pip install {package})",
            name=package,
        ) from None


def _check_model_kwargs(model_kwargs: Any, label: str) -> dict[str, Any]:
    if model_kwargs is None:
        return {}
    if not isinstance(model_kwargs, Mapping) or not all(isinstance(k, str) for k in model_kwargs):
        raise InvalidInputError(
            f"model_kwargs must be a dict of keyword arguments, got {model_kwargs!r}"
        )
    refused = sorted(
        {"weights", "pretrained", "pretrained_cfg_overlay", "checkpoint_path"} & set(model_kwargs)
    )
    if refused:
        raise InvalidInputError(
            f"{label}: model_kwargs {refused} would fetch or load weights; nothing is downloaded "
            "here: pass weights='<local file>.safetensors' to create_backbone instead"
        )
    if "num_classes" in model_kwargs:
        raise InvalidInputError(
            f"{label}: do not set num_classes in model_kwargs; the classifier is replaced by the "
            "hash head with n_bits outputs"
        )
    return dict(model_kwargs)


def _attach_hash_head(
    model: nn.Module,
    label: str,
    in_shape: tuple[int, int, int],
    n_bits: int,
    dropout: float,
    weights: str | os.PathLike[str] | None,
) -> nn.Module:
    """Turn a classification model into a hashing backbone, in place (state-dict keys unchanged).

    - The classifier, taken to be the last ``nn.Linear`` in module order (``fc`` of ResNets,
      ``classifier.6`` of VGG, ``heads.head`` of ViT, ``head.fc`` of many timm models), is
      replaced by a :class:`HashHead` with the same input size.
    - 1-channel input: the first convolution is adapted in place by summing its filters over
      the 3 colour channels, which computes exactly what the RGB network computes on the grey
      image repeated into 3 channels; a 3-channel weights file is summed the same way on load.
      Other channel counts than 1 and 3 are refused.
    - ``weights``: a state dict of the model (for example an ImageNet checkpoint saved as
      safetensors); the classifier's keys may be missing or of the original shape (the hash head
      then keeps its random init); every other key must fit.
    - A dummy forward checks that the network takes ``in_shape`` and returns ``(1, n_bits)``.
    """
    c = in_shape[0]
    if c not in (1, 3):
        raise InvalidInputError(
            f"{label} takes 1- or 3-channel images, got in_shape {in_shape} with {c} channels"
        )
    linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise InvalidInputError(f"{label} has no nn.Linear classifier to replace by a hash head")
    head_name = linears[-1]
    classifier = model.get_submodule(head_name)
    parent_name, _, child = head_name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, HashHead(classifier.in_features, n_bits, dropout=dropout))
    grey_input_key = None
    if c == 1:
        convs = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
        if not convs or convs[0][1].in_channels != 3 or convs[0][1].groups != 1:
            raise InvalidInputError(
                f"{label}: cannot adapt to 1-channel images (its first layer is not a 3-channel "
                "convolution); give it 3-channel images"
            )
        conv_name, conv = convs[0]
        with torch.no_grad():
            conv.weight = nn.Parameter(conv.weight.sum(dim=1, keepdim=True))
        conv.in_channels = 1
        grey_input_key = f"{conv_name}.weight"
    if weights is not None:
        load_weights(
            model,
            weights,
            label,
            optional=(f"{head_name}.weight", f"{head_name}.bias"),
            grey_input_key=grey_input_key,
        )
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(1, *in_shape))
    except Exception as exc:  # each library words its size checks differently
        raise InvalidInputError(
            f"{label} does not accept inputs of shape {in_shape}: {exc}"
        ) from None
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (1, n_bits):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise InvalidInputError(
            f"{label}: after replacing {head_name!r} by the hash head the output is {shape}, "
            f"not (1, {n_bits}); this model's last Linear layer is not its classifier"
        )
    return model


def _build_torchvision(
    model_name: str,
    in_shape: tuple[int, int, int],
    n_bits: int,
    *,
    dropout: float = 0.0,
    model_kwargs: Mapping[str, Any] | None = None,
    weights: str | os.PathLike[str] | None = None,
) -> nn.Module:
    """``torchvision.models.get_model(model_name, weights=None, **model_kwargs)``, randomly
    initialised, with a hash head (see :func:`_attach_hash_head`)."""
    label = f"torchvision:{model_name}"
    torchvision = _import_optional("torchvision", label)
    models = importlib.import_module("torchvision.models")
    try:
        available = sorted(torchvision.models.list_models(module=models))
    except TypeError:  # torchvision < 0.16: no module filter
        available = sorted(torchvision.models.list_models())
    if model_name not in available:
        raise UnknownNameError(
            f"unknown torchvision classification model {model_name!r}; available: "
            f"{', '.join(available)}"
        )
    kwargs = _check_model_kwargs(model_kwargs, label)
    try:
        model = models.get_model(model_name, weights=None, **kwargs)
    except TypeError as exc:
        raise InvalidInputError(f"bad model_kwargs for {label}: {exc}") from None
    return _attach_hash_head(model, label, in_shape, n_bits, _check_dropout(dropout), weights)


def _build_timm(
    model_name: str,
    in_shape: tuple[int, int, int],
    n_bits: int,
    *,
    dropout: float = 0.0,
    model_kwargs: Mapping[str, Any] | None = None,
    weights: str | os.PathLike[str] | None = None,
) -> nn.Module:
    """``timm.create_model(model_name, pretrained=False, **model_kwargs)``, randomly
    initialised, with a hash head (see :func:`_attach_hash_head`)."""
    label = f"timm:{model_name}"
    timm = _import_optional("timm", label)
    if not timm.is_model(model_name):
        raise UnknownNameError(
            f"unknown timm model {model_name!r}; see timm.list_models('*{model_name[:8]}*')"
        )
    kwargs = _check_model_kwargs(model_kwargs, label)
    try:
        model = timm.create_model(model_name, pretrained=False, **kwargs)
    except TypeError as exc:
        raise InvalidInputError(f"bad model_kwargs for {label}: {exc}") from None
    return _attach_hash_head(model, label, in_shape, n_bits, _check_dropout(dropout), weights)


_FAMILIES: dict[str, tuple[Callable[..., nn.Module], str]] = {
    "timm": (_build_timm, "any timm model, random init or weights=<local file>"),
    "torchvision": (
        _build_torchvision,
        "any torchvision.models classifier, random init or weights=<local file>",
    ),
}


# -- registry -----------------------------------------------------------------------------------


def list_backbones(*, include_families: bool = True) -> dict[str, str]:
    """Backbone names and one-line descriptions: the built-in networks, then (unless
    ``include_families`` is false) the patterns ``"timm:<name>"`` and ``"torchvision:<name>"``,
    whose description says whether the package is installed."""
    names = {name: _BACKBONES[name][1] for name in sorted(_BACKBONES)}
    if include_families:
        for family in sorted(_FAMILIES):
            installed = importlib.util.find_spec(family) is not None
            status = (
                "installed" if installed else f"not installed: pip install 'hashlearn[{family}]'"
            )
            names[f"{family}:<name>"] = f"{_FAMILIES[family][1]} ({status})"
    return names


def _check_kwargs(label: str, builder: Callable[..., nn.Module], kwargs: Mapping[str, Any]) -> None:
    parameters = inspect.signature(builder).parameters
    valid = sorted(
        {p for p in parameters if p not in ("self", "model_name", "in_shape", "n_bits")}
        | {"weights"}
    )
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise InvalidInputError(
            f"unknown argument(s) {', '.join(map(repr, unknown))} for backbone {label!r}; "
            f"valid: {', '.join(valid)}"
        )


def create_backbone(
    name: str, in_shape: tuple[int, int, int], n_bits: int, **kwargs: Any
) -> nn.Module:
    """Build backbone ``name`` for ``(c, h, w)`` inputs with ``n_bits`` outputs.

    Parameters
    ----------
    name : a key of :func:`list_backbones`, or ``"torchvision:<model>"`` / ``"timm:<model>"``.
    in_shape : ``(c, h, w)`` of the images it will get, as ``(n, c, h, w)`` float32 tensors.
    n_bits : number of outputs; the network returns ``(n, n_bits)`` float32.
    **kwargs : the backbone's own parameters (see its class), plus for every backbone
        ``weights``: a local state-dict file to start from (``.safetensors`` preferred) and
        ``dropout`` before the hash head; for the families, ``model_kwargs``: a dict passed to
        the library's model constructor.

    Returns
    -------
    nn.Module in training mode, on the CPU, seeded by torch's global generator (wrap the call in
    ``torch.random.fork_rng`` + ``torch.manual_seed`` for reproducible weights).

    Raises
    ------
    UnknownNameError : unknown backbone name (the message lists the available ones).
    InvalidInputError : unknown keyword arguments (the message lists the valid ones), bad
        values, or a weights file that does not fit.
    ModuleNotFoundError : a family's package is not installed (the message names the extra).
    """
    if not isinstance(name, str):
        raise InvalidInputError(f"backbone name must be a string, got {name!r}")
    in_shape = _check_in_shape(in_shape)
    n_bits = check_int(n_bits, "n_bits", minimum=1)
    family, sep, model_name = name.partition(":")
    if sep and family in _FAMILIES and model_name:
        builder = _FAMILIES[family][0]
        _check_kwargs(name, builder, kwargs)
        return builder(model_name, in_shape, n_bits, **kwargs)
    if name not in _BACKBONES:
        available = [*sorted(_BACKBONES), *(f"{f}:<name>" for f in sorted(_FAMILIES))]
        raise UnknownNameError(f"unknown backbone {name!r}; available: {', '.join(available)}")
    builder = _BACKBONES[name][0]
    _check_kwargs(name, builder, kwargs)
    weights = kwargs.pop("weights", None)
    net = builder(in_shape, n_bits, **kwargs)
    if weights is not None:
        load_weights(net, weights, name)
    return net
