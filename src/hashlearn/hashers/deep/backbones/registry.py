"""Backbones by name: the networks written here, and the torchvision and timm families.

``BACKBONES`` holds the built-in networks (one ``register`` line each); ``FAMILIES`` holds the
builders of ``"<family>:<model>"`` names. Entries are ``"module:attribute"`` strings imported
when first built: this module imports neither torch nor any network, nor the optional packages
(``describe_backbones`` only asks whether they are installed).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

from hashlearn._registry import Registry

__all__ = ["BACKBONES", "FAMILIES", "describe_backbones", "list_backbones"]

_PACKAGE = "hashlearn.hashers.deep.backbones"

# name -> the network class, called as cls(in_shape, n_bits, **params)
BACKBONES: Registry[Callable[..., Any]] = Registry("backbone")
# family -> builder(model_name, in_shape, n_bits, **params), for names "<family>:<model_name>"
FAMILIES: Registry[Callable[..., Any]] = Registry("backbone family")

# fmt: off
BACKBONES.register("small-cnn", f"{_PACKAGE}.small_cnn:SmallCNN", "seed 000's conv-pool-conv-pool-fc digit network (~10-30k parameters)")
BACKBONES.register("small-resnet", f"{_PACKAGE}.resnet:SmallResNet", "CIFAR-style ResNet-14 (He et al. 2016): widths 16/32/64, global pooling (~175k)")
BACKBONES.register("dsh-cifar", f"{_PACKAGE}.dsh_net:DSHNet", "the DSH paper's CIFAR-10 net: conv(5x5)-pool x3 (32/32/64), fc 500 (0.37M on 28x28)")

FAMILIES.register("timm", f"{_PACKAGE}.adapters:build_timm", "any timm model, random init or weights=<local file>")
FAMILIES.register("torchvision", f"{_PACKAGE}.adapters:build_torchvision", "any torchvision.models classifier, random init or weights=<local file>")
# fmt: on


def list_backbones(*, include_families: bool = True) -> list[str]:
    """Backbone names, sorted: the built-in networks and (unless ``include_families`` is false)
    the patterns ``"timm:<name>"`` and ``"torchvision:<name>"``."""
    return sorted(describe_backbones(include_families=include_families))


def describe_backbones(*, include_families: bool = True) -> dict[str, str]:
    """``{name: one-line description}``: the built-in networks, then (unless
    ``include_families`` is false) the patterns ``"timm:<name>"`` and ``"torchvision:<name>"``,
    whose description says whether the package is installed."""
    described = BACKBONES.describe()
    if include_families:
        for family, description in FAMILIES.describe().items():
            installed = importlib.util.find_spec(family) is not None
            status = (
                "installed" if installed else f"not installed: pip install 'hashlearn[{family}]'"
            )
            described[f"{family}:<name>"] = f"{description} ({status})"
    return described
