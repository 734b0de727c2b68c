"""A chain of feature extractors, fitted and applied one after the other.

``FeaturePipeline([GIST(), L2Center()])`` fits each step on the output of the previous one and
transforms through all of them; ``create_features("gist", postprocess="l2-center")`` builds the
same. Only the first step may read images; the later ones read ``(n, d)`` features.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hashlearn.exceptions import InvalidInputError
from hashlearn.features.base import FeatureExtractor


class FeaturePipeline(FeatureExtractor):
    """Steps applied in order: ``transform(X) = steps[-1].transform(... steps[0].transform(X))``.

    Parameters
    ----------
    steps : non-empty list of feature extractors; all but the first must read ``(n, d)``
        features (``input_kind == "features"``).

    The steps hold the learned state; the pipeline is fitted when all of them are.
    """

    name = "pipeline"

    def __init__(self, steps: list[FeatureExtractor]) -> None:
        self.steps = steps

    @property
    def input_kind(self) -> str:  # type: ignore[override]
        return self._checked_steps()[0].input_kind

    def _checked_steps(self) -> list[FeatureExtractor]:
        steps = self.steps
        if not isinstance(steps, (list, tuple)) or len(steps) == 0:
            raise InvalidInputError(
                f"steps must be a non-empty list of feature extractors, got {steps!r}"
            )
        for i, step in enumerate(steps):
            if not isinstance(step, FeatureExtractor):
                raise InvalidInputError(
                    f"steps[{i}] must be a feature extractor, got {step!r} ({type(step).__name__})"
                )
            if i > 0 and step.input_kind != "features":
                raise InvalidInputError(
                    f"steps[{i}] ({step.name!r}) reads images, but it would receive the feature "
                    f"vectors of {steps[i - 1].name!r}; only the first step may read images"
                )
        return list(steps)

    def get_config(self) -> dict[str, Any]:
        """``{"name": "pipeline", "steps": [config of each step]}``."""
        return {"name": self.name, "steps": [step.get_config() for step in self._checked_steps()]}

    def fit(self, X: Any, y: Any = None) -> FeaturePipeline:
        """Fit every step on the output of the previous one."""
        steps = self._checked_steps()
        for step in steps[:-1]:
            X = step.fit_transform(X, y)
        steps[-1].fit(X, y)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """``X`` through every step: ``float32`` ``(n, d_last)``."""
        self._check_fitted()
        for step in self.steps:
            X = step.transform(X)
        return X

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        for step in self._checked_steps():
            X = step.fit_transform(X, y)
        return X

    @property
    def is_fitted(self) -> bool:
        return all(step.is_fitted for step in self._checked_steps())

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays: dict[str, np.ndarray] = {}
        values: list[dict[str, Any]] = []
        for i, step in enumerate(self._checked_steps()):
            step_arrays, step_values = step._get_state()
            arrays.update({f"steps.{i}.{key}": array for key, array in step_arrays.items()})
            values.append(step_values)
        return arrays, {"steps": values}

    def _set_state(self, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
        steps = self._checked_steps()
        if len(values["steps"]) != len(steps):
            raise InvalidInputError(
                f"the saved state has {len(values['steps'])} steps, this pipeline {len(steps)}"
            )
        for i, (step, step_values) in enumerate(zip(steps, values["steps"])):
            prefix = f"steps.{i}."
            step_arrays = {
                key[len(prefix) :]: array for key, array in arrays.items() if key.startswith(prefix)
            }
            step._set_state(step_arrays, step_values)
