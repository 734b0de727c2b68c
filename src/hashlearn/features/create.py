"""Building a feature extractor by name: ``create_features("gist", postprocess="l2-center")``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hashlearn.exceptions import InvalidInputError
from hashlearn.features.base import FeatureExtractor
from hashlearn.features.pipeline import FeaturePipeline
from hashlearn.features.registry import FEATURES

__all__ = ["create_features", "get_features_class"]


def get_features_class(name: str) -> type[FeatureExtractor]:
    """The class registered under ``name``; raises UnknownNameError listing the known names."""
    return FEATURES.get(name)


def create_features(
    name: str, *, postprocess: str | Sequence[str] | None = None, **params: Any
) -> FeatureExtractor:
    """Build the extractor registered under ``name`` with its own parameters.

    ``postprocess`` names extractors of ``(n, d)`` features (e.g. ``"l2-center"``), applied in
    order after it with their default parameters; the result is then a :class:`FeaturePipeline`.
    ``name`` may also spell them out itself: ``"gist+l2-center"`` is
    ``create_features("gist", postprocess=["l2-center"])`` (as a benchmark's ``features`` or the
    command line's ``--features``). ``"<family>:<model>"`` names a pretrained network:
    ``"torchvision:resnet18"`` is ``create_features("torchvision", model="resnet18")``.

    >>> create_features("gist", image_size=32, postprocess="l2-center").get_config()["steps"][1]
    {'name': 'l2-center', 'params': {}}
    """
    if isinstance(name, str) and "+" in name and postprocess is None:
        first, *steps = name.split("+")
        return create_features(first, postprocess=steps, **params)
    family, sep, model = name.partition(":") if isinstance(name, str) else ("", "", "")
    if sep and family in FEATURES and model:  # "torchvision:resnet18" -> model="resnet18"
        if "model" in params:
            raise InvalidInputError(
                f"feature extractor {name!r} names its model; do not pass model={params['model']!r}"
            )
        return create_features(family, postprocess=postprocess, model=model, **params)
    cls = get_features_class(name)
    allowed = cls._param_names()
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise InvalidInputError(
            f"feature extractor {name!r} has no parameter(s) {', '.join(unknown)}; its parameters "
            f"are: {', '.join(allowed) if allowed else '(none)'}"
        )
    extractor = cls(**params)
    if postprocess is None:
        return extractor
    names = [postprocess] if isinstance(postprocess, str) else list(postprocess)
    steps = [extractor]
    for step_name in names:
        step_cls = get_features_class(step_name)
        if step_cls.input_kind != "features":
            raise InvalidInputError(
                f"postprocess step {step_name!r} reads images, not feature vectors; use a "
                "features step such as 'l2-center'"
            )
        steps.append(step_cls())
    return FeaturePipeline(steps)
