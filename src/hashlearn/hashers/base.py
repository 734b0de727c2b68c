"""The estimator contract every hasher follows.

A hasher is built with keyword arguments only (``__init__`` stores them and nothing else), learns
in ``fit(X, y=None)`` which returns ``self``, keeps learned state in attributes ending in an
underscore, and then maps samples to real-valued projections (``transform``) whose signs are the
bits of the packed codes (``encode``).

Models are saved as one safetensors file: the learned arrays are its tensors, and the method name,
constructor parameters and learned scalars are JSON strings in its metadata. Nothing is pickled
(the format: :mod:`hashlearn.hashers.model_format`).
"""

from __future__ import annotations

import json
import os
from typing import Any, ClassVar

import numpy as np

from hashlearn._params import Parameters
from hashlearn._validation import check_features, check_int, check_labels, image_shape_of
from hashlearn._version import __version__
from hashlearn.codes import MAX_BITS, pack_signs
from hashlearn.exceptions import InvalidInputError, NotFittedError
from hashlearn.hashers.model_format import MODEL_FORMAT, read_model_file, write_model_file

__all__ = ["Hasher", "read_model_file"]


_INPUT_ATTRIBUTES = ("image_shape_", "resize_images_")


class Hasher(Parameters):
    """Base class of all hashers.

    Subclasses set ``name`` (their registry name) and ``input_kind`` (``"features"``: 2-D arrays,
    image arrays are flattened; ``"images"``: ``(n, h, w)`` or ``(n, h, w, c)`` arrays), implement
    ``fit`` and ``transform``, and say which learned attributes to save: by listing them in
    ``_saved_arrays`` / ``_saved_values``, or by overriding ``_get_state`` and ``_set_state``.

    A hasher fitted on an image array keeps the images' shape in ``image_shape_`` (None after a
    fit on feature vectors), and its model file keeps it too. ``resize_images_`` (default False;
    kept in the model file when True) says that pictures of another size or colour are resized
    to ``image_shape_`` when encoded from files: it is set for models fitted on a folder of
    pictures resized to one size (``hashlearn fit --images DIR --image-size HxW``); otherwise
    such pictures are refused (:class:`~hashlearn.encoding.ImageEncoder`).
    """

    name: ClassVar[str] = ""
    input_kind: ClassVar[str] = "features"
    supervised: ClassVar[bool] = False

    n_bits: int

    def _check_n_bits(self) -> int:
        return check_int(self.n_bits, "n_bits", minimum=1, maximum=MAX_BITS)

    def _check_params(self) -> None:
        """Check the constructor parameters that ``transform`` reads (enumerated values...);
        called by ``fit`` where a method defines it, and by ``load_hasher`` on every model read,
        so that a damaged value is refused instead of read as another. Raises
        InvalidInputError (or UnknownNameError) naming the parameter."""
        self._check_n_bits()

    # -- estimator API ------------------------------------------------------------------------

    def fit(self, X: Any, y: Any = None) -> Hasher:  # pragma: no cover - abstract
        raise NotImplementedError

    def transform(self, X: Any) -> np.ndarray:  # pragma: no cover - abstract
        """Real-valued projections of shape ``(n, n_bits)``, ``float32``; bit = projection >= 0."""
        raise NotImplementedError

    def encode(self, X: Any) -> np.ndarray:
        """Packed codes of shape ``(n, ceil(n_bits / 8))``, ``uint8`` (see :mod:`hashlearn.codes`)."""
        return pack_signs(self.transform(X))

    def fit_encode(self, X: Any, y: Any = None) -> np.ndarray:
        """``fit(X, y)`` then ``encode(X)``."""
        return self.fit(X, y).encode(X)

    @property
    def is_fitted(self) -> bool:
        # image_shape_ is set on entry to fit (by _check_input), not by a finished fit;
        # resize_images_ is a setting about the inputs, not something learned
        return any(
            k.endswith("_") and not k.startswith("_") and k not in _INPUT_ATTRIBUTES
            for k in vars(self)
        )

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                f"this {type(self).__name__} ({self.name!r}) is not fitted yet; call fit(X, y) before "
                "transform/encode/save"
            )

    def _check_labels(self, y: Any, n_samples: int) -> np.ndarray:
        """Labels of a supervised fit (see :func:`hashlearn._validation.check_labels`); a missing
        ``y`` is an error naming the method."""
        if y is None:
            raise InvalidInputError(
                f"{self.name!r} needs labels: call fit(X, y) with class labels (n,) or a "
                "label-indicator matrix (n, n_classes)"
            )
        return check_labels(y, n_samples)

    def _check_input(
        self, X: Any, name: str = "X", *, fitted_features: int | None = None
    ) -> np.ndarray:
        """``X`` as a ``float32`` array ``(n, d)``, image arrays flattened (``check_features``).

        Called by ``fit`` (``fitted_features`` None), it keeps the image shape ``(h, w, c)`` of an
        image array ``(n, h, w)`` or ``(n, h, w, c)`` with 1 or 3 channels in ``image_shape_``
        (None for anything else), which the model file keeps: a model fitted on raw pixels then takes
        image files (``hashlearn serve``). Once it is set, an image array of another shape is
        refused, even one with as many values per sample.
        """
        array = check_features(X, name, n_features=fitted_features)
        image_shape = image_shape_of(X)
        if fitted_features is None:
            self.image_shape_ = image_shape
        else:
            fitted_shape = getattr(self, "image_shape_", None)
            if image_shape is not None and fitted_shape is not None and image_shape != fitted_shape:
                raise InvalidInputError(
                    f"{name} has images of shape {image_shape}, but the hasher was fitted on "
                    f"{tuple(fitted_shape)}"
                )
        return array

    # -- persistence --------------------------------------------------------------------------

    # Learned attributes that the default _get_state / _set_state save and restore: arrays (as
    # tensors) and JSON-able values (in the metadata), each stored under its name without the "_".
    _saved_arrays: ClassVar[tuple[str, ...]] = ()
    _saved_values: ClassVar[tuple[str, ...]] = ()

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Learned arrays (saved as tensors) and JSON-able learned values (saved in metadata)."""
        arrays = {name.rstrip("_"): np.asarray(getattr(self, name)) for name in self._saved_arrays}
        values = {name.rstrip("_"): getattr(self, name) for name in self._saved_values}
        return arrays, values

    def _set_state(self, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
        for name in self._saved_arrays:
            setattr(self, name, arrays[name.rstrip("_")])
        for name in self._saved_values:
            setattr(self, name, values[name.rstrip("_")])

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the fitted model to ``path`` (one safetensors file; atomic: temp file + rename)."""
        metadata, tensors = self._model_file()
        write_model_file(path, metadata, tensors)

    def _model_file(self) -> tuple[dict[str, str], dict[str, np.ndarray]]:
        """The metadata (strings) and tensors of this fitted model's file."""
        self._check_fitted()
        arrays, values = self._get_state()
        metadata = {
            "format": MODEL_FORMAT,
            "format_version": "1",
            "method": self.name,
            "params": json.dumps(self.get_params(deep=False)),
            "state": json.dumps(values),
        }
        image_shape = getattr(self, "image_shape_", None)
        if image_shape is not None:
            metadata["image_shape"] = json.dumps([int(s) for s in image_shape])
        if getattr(self, "resize_images_", False):
            metadata["resize_images"] = "true"
        metadata["hashlearn_version"] = __version__
        tensors = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
        return metadata, tensors  # write_model_file adds the digests
