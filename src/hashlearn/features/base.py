"""The estimator contract every feature extractor follows.

A feature extractor is the stage between the datasets and the hashers: it maps images (or
feature vectors) to one ``float32`` vector per sample. Like a hasher it is built with keyword
arguments only (``__init__`` stores them and nothing else), learns in ``fit(X, y=None)`` which
returns ``self``, keeps learned state in attributes ending in an underscore, and maps samples with
``transform(X)`` to a ``float32`` array of shape ``(n, d)``.

Extractors are saved without pickle: ``get_config()`` is a JSON-able description (registry name
and constructor parameters) from which an unfitted twin is rebuilt, and ``_get_state()`` returns
the learned arrays and JSON-able learned values that ``_set_state`` restores (see
:func:`hashlearn.features.features_to_dict`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from hashlearn._params import Parameters
from hashlearn._progress import progress
from hashlearn._validation import check_image_shape, check_images, check_int
from hashlearn.exceptions import InvalidInputError, NotFittedError

# A progress bar is shown (when ``verbose``) only for inputs with more samples than this.
PROGRESS_MIN_SAMPLES = 2000


class FeatureExtractor(Parameters):
    """Base class of all feature extractors.

    Subclasses set ``name`` (their registry name) and ``input_kind`` (``"images"``: arrays of shape
    ``(n, h, w)`` or ``(n, h, w, c)``; ``"features"``: ``(n, d)`` arrays, image arrays are
    flattened), implement ``fit`` and ``transform``, and say which learned arrays and values to
    save via ``_get_state`` and ``_set_state``.
    """

    name: ClassVar[str] = ""
    input_kind: ClassVar[str] = "images"

    # -- parameters (get_params, set_params, repr: Parameters) ------------------------------

    def get_config(self) -> dict[str, Any]:
        """``{"name": registry name, "params": constructor arguments}``, JSON-able."""
        return {"name": self.name, "params": _jsonable(self.get_params(deep=False))}

    # -- estimator API ------------------------------------------------------------------------

    def fit(self, X: Any, y: Any = None) -> FeatureExtractor:  # pragma: no cover - abstract
        raise NotImplementedError

    def transform(self, X: Any) -> np.ndarray:  # pragma: no cover - abstract
        """Features of shape ``(n, d)``, ``float32``."""
        raise NotImplementedError

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        """``fit(X, y)`` then ``transform(X)``."""
        return self.fit(X, y).transform(X)

    @property
    def is_fitted(self) -> bool:
        return any(k.endswith("_") and not k.startswith("_") for k in vars(self))

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                f"this {type(self).__name__} ({self.name!r}) is not fitted yet; call fit(X) before "
                "transform"
            )

    # -- persistence --------------------------------------------------------------------------

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:  # pragma: no cover
        """Learned arrays and JSON-able learned values."""
        raise NotImplementedError

    def _set_state(
        self, arrays: dict[str, np.ndarray], values: dict[str, Any]
    ) -> None:  # pragma: no cover
        raise NotImplementedError


class ImageFeatureExtractor(FeatureExtractor):
    """Base of extractors that describe each image on its own (HOG, GIST).

    Nothing is learned from the data but the image shape (``image_shape_``), which ``transform``
    then requires. ``transform`` works through the images ``batch_size`` at a time into a
    preallocated output, so the working memory beyond input and output is that of one batch
    (``float32`` C-contiguous input is used as it is; other input is first converted to it).
    With ``verbose`` a progress bar is shown for more than ``PROGRESS_MIN_SAMPLES`` images.

    Subclasses implement ``_prepare`` (check the parameters, precompute what they alone
    determine), ``_fit_shape`` (check the parameters against the image shape, set their learned
    attributes, return the output dimension) and ``_transform_batch``.
    """

    input_kind = "images"

    batch_size: int
    verbose: bool

    def _prepare(self) -> None:  # pragma: no cover - abstract
        """Check the parameters and precompute what depends on them alone (filters...)."""
        raise NotImplementedError

    def _fit_shape(self, image_shape: tuple[int, int, int]) -> int:  # pragma: no cover
        raise NotImplementedError

    def _transform_batch(self, images: np.ndarray) -> np.ndarray:  # pragma: no cover
        """Features of ``images`` (float32, ``(b, h, w, c)``) as an array of shape ``(b, d)``."""
        raise NotImplementedError

    def fit(self, X: Any, y: Any = None) -> ImageFeatureExtractor:
        """Check the parameters and the images ``X`` (``(n, h, w)`` or ``(n, h, w, c)``)."""
        self._prepare()
        check_int(self.batch_size, "batch_size", minimum=1)
        images = check_images(X)
        image_shape = (int(images.shape[1]), int(images.shape[2]), int(images.shape[3]))
        self.n_features_ = self._fit_shape(image_shape)
        self.image_shape_ = image_shape
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Features ``(n, n_features_)``, ``float32``; the images must have the fitted shape."""
        self._check_fitted()
        images = check_images(X)
        if images.shape[1:] != self.image_shape_:
            raise InvalidInputError(
                f"X has images of shape {tuple(images.shape[1:])} (h, w, c), but this {self.name} "
                f"extractor was fitted on images of shape {self.image_shape_}"
            )
        n = len(images)
        batch_size = check_int(self.batch_size, "batch_size", minimum=1)
        out = np.empty((n, self.n_features_), dtype=np.float32)
        show = bool(self.verbose) and n > PROGRESS_MIN_SAMPLES
        with progress(total=n, desc=self.name, unit="img", disable=not show) as bar:
            for start in range(0, n, batch_size):
                stop = min(n, start + batch_size)
                out[start:stop] = self._transform_batch(images[start:stop])
                bar.update(stop - start)
        return out

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {}, {"image_shape": list(self.image_shape_), "n_features": self.n_features_}

    def _set_state(self, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
        self._prepare()
        image_shape = check_image_shape(values["image_shape"])
        n_features = self._fit_shape(image_shape)
        if values["n_features"] != n_features:
            raise InvalidInputError(
                f"a {self.name} extractor gives {n_features} features for images of shape "
                f"{image_shape}, not the saved {values['n_features']!r}"
            )
        self.image_shape_ = image_shape
        self.n_features_ = n_features


def to_gray(images: np.ndarray) -> np.ndarray:
    """Mean over the channel axis: ``(b, h, w, c)`` -> ``(b, h, w)``, ``float32``."""
    if images.shape[3] == 1:
        return images[..., 0]
    return images.mean(axis=3, dtype=np.float32)


def check_pair(value: Any, name: str, *, minimum: int = 1) -> tuple[int, int]:
    """Return ``value`` (an int, or a pair of ints) as a pair of ints >= ``minimum``."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise InvalidInputError(f"{name} must be a pair (rows, cols), got {value!r}")
        return (
            check_int(value[0], f"{name}[0]", minimum=minimum),
            check_int(value[1], f"{name}[1]", minimum=minimum),
        )
    side = check_int(value, name, minimum=minimum)
    return side, side


def _jsonable(value: Any) -> Any:
    """``value`` with tuples as lists and numpy scalars as Python numbers."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
