"""Feature extractors behind one registry: ``create_features(name, **params)``, ``list_features()``.

The stage between datasets and hashers: an extractor maps images ``(n, h, w[, c])`` in [0, 1] (or
``(n, d)`` features, for ``pixels`` and ``l2-center``) to a ``float32`` array ``(n, d)``::

    >>> extractor = create_features("hog")            # 324 values per image
    >>> extractor = create_features("gist", postprocess="l2-center")   # a FeaturePipeline

Every extractor is an estimator (``fit(X, y=None) -> self``, ``transform(X)``,
``fit_transform``). A fitted one is saved without pickle by :func:`features_to_dict` (a JSON-able
``config`` and ``state`` plus a flat dict of numpy ``arrays``, ready for safetensors) and rebuilt by
:func:`features_from_dict`. Adding an extractor is one module plus one line in ``_REGISTRY``;
modules are imported when an extractor is first created.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from hashlearn.exceptions import InvalidInputError, UnknownNameError
from hashlearn.features.base import FeatureExtractor
from hashlearn.features.pipeline import FeaturePipeline

# name -> (module, class, one-line description)
_REGISTRY: dict[str, tuple[str, str, str]] = {
    "pixels": (
        "hashlearn.features.pixels",
        "Pixels",
        "raw values, each image flattened to one vector",
    ),
    "hog": (
        "hashlearn.features.hog",
        "HOG",
        "Histogram of Oriented Gradients on a 4x4 cell grid (Dalal & Triggs, CVPR 2005)",
    ),
    "gist": (
        "hashlearn.features.gist",
        "GIST",
        "GIST: energies of 4x8 Gabor filters on a 4x4 grid (Oliva & Torralba, IJCV 2001)",
    ),
    "l2-center": (
        "hashlearn.features.normalize",
        "L2Center",
        "L2-normalise each row, then subtract the training mean (for (n, d) features)",
    ),
}

__all__ = [
    "FeatureExtractor",
    "FeaturePipeline",
    "create_features",
    "describe_features",
    "features_from_dict",
    "features_to_dict",
    "get_features_class",
    "list_features",
]


def describe_features() -> dict[str, str]:
    """Registered feature extractors with a one-line description each."""
    return dict(list_features())


def list_features() -> dict[str, str]:
    """Registered extractor names with a one-line description each, sorted by name."""
    return {name: _REGISTRY[name][2] for name in sorted(_REGISTRY)}


def get_features_class(name: str) -> type[FeatureExtractor]:
    """The class registered under ``name``; raises UnknownNameError listing the known names."""
    if not isinstance(name, str) or name not in _REGISTRY:
        raise UnknownNameError(
            f"unknown feature extractor {name!r}; available: {', '.join(sorted(_REGISTRY))}"
        )
    module_name, class_name, _ = _REGISTRY[name]
    return getattr(importlib.import_module(module_name), class_name)


def create_features(
    name: str, *, postprocess: str | Sequence[str] | None = None, **params: Any
) -> FeatureExtractor:
    """Build the extractor registered under ``name`` with its own parameters.

    ``postprocess`` names extractors of ``(n, d)`` features (e.g. ``"l2-center"``), applied in
    order after it with their default parameters; the result is then a :class:`FeaturePipeline`.
    ``name`` may also spell them out itself: ``"gist+l2-center"`` is
    ``create_features("gist", postprocess=["l2-center"])`` (as a benchmark's ``features`` or the
    command line's ``--features``).

    >>> create_features("gist", image_size=32, postprocess="l2-center").get_config()["steps"][1]
    {'name': 'l2-center', 'params': {}}
    """
    if isinstance(name, str) and "+" in name and postprocess is None:
        first, *steps = name.split("+")
        return create_features(first, postprocess=steps, **params)
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


def features_to_dict(extractor: FeatureExtractor) -> dict[str, Any]:
    """A fitted extractor as plain data, for saving without pickle.

    Returns ``{"config": ..., "state": ..., "arrays": ...}``: ``config`` (``get_config()``) and
    ``state`` (learned values) are JSON-able; ``arrays`` maps flat string keys to the learned numpy
    arrays (e.g. ``{"steps.1.mean": ...}`` for a pipeline), as safetensors stores them.
    """
    if not isinstance(extractor, FeatureExtractor):
        raise InvalidInputError(
            f"expected a feature extractor, got {extractor!r} ({type(extractor).__name__})"
        )
    extractor._check_fitted()
    arrays, state = extractor._get_state()
    return {
        "config": extractor.get_config(),
        "state": state,
        "arrays": {key: np.asarray(array) for key, array in arrays.items()},
    }


def features_from_dict(data: dict[str, Any]) -> FeatureExtractor:
    """The fitted extractor described by ``features_to_dict``'s output (after a JSON round trip)."""
    if not isinstance(data, dict) or not {"config", "state", "arrays"} <= set(data):
        got = f"keys {sorted(data)!r}" if isinstance(data, dict) else type(data).__name__
        raise InvalidInputError(
            "expected a dict with keys 'config', 'state' and 'arrays' (from features_to_dict), "
            f"got {got}"
        )
    extractor = _from_config(data["config"])
    try:
        extractor._set_state(
            {key: np.asarray(array) for key, array in data["arrays"].items()}, data["state"]
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"the saved state does not fit a {extractor.name!r} extractor: {exc!r}"
        ) from None
    return extractor


def _from_config(config: Any) -> FeatureExtractor:
    """An unfitted extractor from ``get_config()`` output."""
    if not isinstance(config, dict) or "name" not in config:
        raise InvalidInputError(f"a features config must be a dict with a 'name', got {config!r}")
    if config["name"] == FeaturePipeline.name:
        steps = config.get("steps")
        if not isinstance(steps, list):
            raise InvalidInputError(f"a pipeline config needs a list of 'steps', got {steps!r}")
        return FeaturePipeline([_from_config(step) for step in steps])
    params = config.get("params", {})
    if not isinstance(params, dict):
        raise InvalidInputError(f"'params' of a features config must be a dict, got {params!r}")
    return create_features(config["name"], **params)
