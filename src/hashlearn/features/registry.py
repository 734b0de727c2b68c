"""The feature extractors that :func:`~hashlearn.features.create_features` builds by name.

One ``register`` line per extractor: its name (what users type and what model files record),
its class as ``"module:Class"`` (imported when the extractor is first built, so listing names
imports no extractor module) and one line saying what it computes.
"""

from __future__ import annotations

from typing import Any

from hashlearn._registry import Registry

__all__ = ["FEATURES", "describe_features", "list_features"]

FEATURES: Registry[Any] = Registry("feature extractor")
FEATURES.register(
    "pixels",
    "hashlearn.features.pixels:Pixels",
    "raw values, each image flattened to one vector",
)
FEATURES.register(
    "hog",
    "hashlearn.features.hog:HOG",
    "Histogram of Oriented Gradients on a 4x4 cell grid (Dalal & Triggs, CVPR 2005)",
)
FEATURES.register(
    "gist",
    "hashlearn.features.gist:GIST",
    "GIST: energies of 4x8 Gabor filters on a 4x4 grid (Oliva & Torralba, IJCV 2001)",
)
FEATURES.register(
    "torchvision",
    "hashlearn.features.embeddings:TorchvisionEmbedding",
    "'torchvision:<model>': a torchvision classifier's penultimate features, ImageNet weights",
)
FEATURES.register(
    "timm",
    "hashlearn.features.embeddings:TimmEmbedding",
    "'timm:<model>': a timm model's pre-logits features, its default pretrained weights",
)
FEATURES.register(
    "l2-center",
    "hashlearn.features.normalize:L2Center",
    "L2-normalise each row, then subtract the training mean (for (n, d) features)",
)


def list_features() -> list[str]:
    """Registered extractor names, sorted."""
    return FEATURES.names()


def describe_features() -> dict[str, str]:
    """Registered feature extractors with a one-line description each, in name order."""
    return FEATURES.describe()
