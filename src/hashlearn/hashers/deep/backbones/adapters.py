"""Any classification model of torchvision or timm as a hashing backbone.

``"torchvision:<name>"`` builds ``torchvision.models.get_model(name, weights=None)`` (``pip install
'hashlearn[torchvision]'``) and ``"timm:<name>"`` builds ``timm.create_model(name,
pretrained=False)`` (``pip install 'hashlearn[timm]'``); the package is imported only when such a
name is built. The model's classifier is then replaced by a :class:`HashHead`
(:func:`attach_hash_head`). Nothing is downloaded: the model starts from random weights unless a
local ``weights`` file is given."""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from hashlearn.exceptions import InvalidInputError, MissingPackageError, UnknownNameError
from hashlearn.hashers.deep.backbones.base import HashHead, check_dropout
from hashlearn.hashers.deep.backbones.weights import load_weights

__all__ = [
    "attach_hash_head",
    "build_timm",
    "build_torchvision",
    "check_model_kwargs",
    "import_optional",
]


def import_optional(package: str, backbone: str) -> Any:
    """Import ``package`` or raise :class:`~hashlearn.exceptions.MissingPackageError` (a
    ``ModuleNotFoundError``) naming the pip extra to install."""
    try:
        return importlib.import_module(package)
    except ImportError:
        raise MissingPackageError(
            f"backbone {backbone!r} needs the optional package {package!r}, which is not "
            f"installed: pip install 'hashlearn[{package}]' (or: pip install {package})",
            name=package,
        ) from None


def check_model_kwargs(model_kwargs: Any, label: str) -> dict[str, Any]:
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


def attach_hash_head(
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


def build_torchvision(
    model_name: str,
    in_shape: tuple[int, int, int],
    n_bits: int,
    *,
    dropout: float = 0.0,
    model_kwargs: Mapping[str, Any] | None = None,
    weights: str | os.PathLike[str] | None = None,
) -> nn.Module:
    """``torchvision.models.get_model(model_name, weights=None, **model_kwargs)``, randomly
    initialised, with a hash head (see :func:`attach_hash_head`)."""
    label = f"torchvision:{model_name}"
    torchvision = import_optional("torchvision", label)
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
    kwargs = check_model_kwargs(model_kwargs, label)
    try:
        model = models.get_model(model_name, weights=None, **kwargs)
    except TypeError as exc:
        raise InvalidInputError(f"bad model_kwargs for {label}: {exc}") from None
    return attach_hash_head(model, label, in_shape, n_bits, check_dropout(dropout), weights)


def build_timm(
    model_name: str,
    in_shape: tuple[int, int, int],
    n_bits: int,
    *,
    dropout: float = 0.0,
    model_kwargs: Mapping[str, Any] | None = None,
    weights: str | os.PathLike[str] | None = None,
) -> nn.Module:
    """``timm.create_model(model_name, pretrained=False, **model_kwargs)``, randomly
    initialised, with a hash head (see :func:`attach_hash_head`)."""
    label = f"timm:{model_name}"
    timm = import_optional("timm", label)
    if not timm.is_model(model_name):
        raise UnknownNameError(
            f"unknown timm model {model_name!r}; see timm.list_models('*{model_name[:8]}*')"
        )
    kwargs = check_model_kwargs(model_kwargs, label)
    try:
        model = timm.create_model(model_name, pretrained=False, **kwargs)
    except TypeError as exc:
        raise InvalidInputError(f"bad model_kwargs for {label}: {exc}") from None
    return attach_hash_head(model, label, in_shape, n_bits, check_dropout(dropout), weights)
