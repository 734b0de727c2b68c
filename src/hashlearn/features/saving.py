"""Fitted feature extractors as plain data (no pickle), and back.

:func:`features_to_dict` gives a JSON-able ``config`` and ``state`` plus a flat dict of numpy
``arrays`` (ready for safetensors); :func:`features_from_dict` rebuilds the fitted extractor.
Model files of :class:`~hashlearn.hashers.FeatureHasher` store their extractor this way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hashlearn.exceptions import InvalidInputError
from hashlearn.features.base import FeatureExtractor
from hashlearn.features.create import create_features
from hashlearn.features.pipeline import FeaturePipeline

__all__ = ["features_from_dict", "features_to_dict"]


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
