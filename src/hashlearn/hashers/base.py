"""The estimator contract every hasher follows, and its file format.

A hasher is built with keyword arguments only (``__init__`` stores them and nothing else), learns
in ``fit(X, y=None)`` which returns ``self``, keeps learned state in attributes ending in an
underscore, and then maps samples to real-valued projections (``transform``) whose signs are the
bits of the packed codes (``encode``).

Models are saved as one safetensors file: the learned arrays are its tensors, and the method name,
constructor parameters and learned scalars are JSON strings in its metadata. Nothing is pickled.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, ClassVar

import numpy as np

from hashlearn._io import atomic_write
from hashlearn._params import Parameters
from hashlearn._validation import check_features, check_int, check_labels, image_shape_of
from hashlearn.codes import MAX_BITS, pack_signs
from hashlearn.exceptions import FileFormatError, InvalidInputError, NotFittedError

MODEL_FORMAT = "hashlearn.hasher"
# The newest version this hashlearn reads. Version 2 files also hold a feature extractor
# (``FeatureHasher``); files of a hasher alone are still written as version 1.
MODEL_FORMAT_VERSION = 2


class Hasher(Parameters):
    """Base class of all hashers.

    Subclasses set ``name`` (their registry name) and ``input_kind`` (``"features"``: 2-D arrays,
    image arrays are flattened; ``"images"``: ``(n, h, w)`` or ``(n, h, w, c)`` arrays), implement
    ``fit`` and ``transform``, and say which learned attributes to save: by listing them in
    ``_saved_arrays`` / ``_saved_values``, or by overriding ``_get_state`` and ``_set_state``.

    A hasher fitted on an image array keeps the images' shape in ``image_shape_`` (None after a
    fit on feature vectors), and its model file keeps it too.
    """

    name: ClassVar[str] = ""
    input_kind: ClassVar[str] = "features"
    supervised: ClassVar[bool] = False

    n_bits: int

    def _check_n_bits(self) -> int:
        return check_int(self.n_bits, "n_bits", minimum=1, maximum=MAX_BITS)

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
        # image_shape_ is set on entry to fit (by _check_input), not by a finished fit
        return any(
            k.endswith("_") and not k.startswith("_") and k != "image_shape_" for k in vars(self)
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
        from safetensors.numpy import save as save_safetensors

        metadata, tensors = self._model_file()
        payload = save_safetensors(tensors, metadata=metadata)
        with atomic_write(path) as handle:
            handle.write(payload)

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
        from hashlearn._version import __version__

        metadata["hashlearn_version"] = __version__
        tensors = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
        metadata["sha256"] = arrays_digest(tensors)
        return metadata, tensors


def read_model_file(path: str | os.PathLike[str]) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """Read and check a model file; return its metadata and arrays. Raises FileFormatError."""
    from safetensors.numpy import load as load_safetensors

    path = os.fspath(path)
    with open(path, "rb") as handle:
        data = handle.read()
    if len(data) < 8:
        raise FileFormatError(f"{path!r} is not a hashlearn model: only {len(data)} bytes long")
    header_len = int.from_bytes(data[:8], "little")
    if header_len > len(data) - 8 or header_len > 100_000_000:
        raise FileFormatError(
            f"{path!r} is not a hashlearn model file, or it is truncated "
            f"(header claims {header_len} bytes, file has {len(data) - 8} after the length)"
        )
    try:
        header = json.loads(data[8 : 8 + header_len])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise FileFormatError(
            f"{path!r} is not a hashlearn model file: its header is not JSON"
        ) from None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(metadata, dict) or metadata.get("format") != MODEL_FORMAT:
        raise FileFormatError(
            f"{path!r} is a safetensors file but not a hashlearn model (no hashlearn metadata)"
        )
    try:
        version = int(metadata.get("format_version", ""))
    except ValueError:
        raise FileFormatError(f"{path!r} has an unreadable format version") from None
    if version > MODEL_FORMAT_VERSION:
        raise FileFormatError(
            f"{path!r} was written in model format version {version}, newer than this hashlearn "
            f"reads ({MODEL_FORMAT_VERSION}); upgrade hashlearn"
        )
    try:
        arrays = load_safetensors(data)
    except Exception as exc:  # safetensors raises its own error type for truncated/corrupt data
        raise FileFormatError(f"{path!r} is truncated or corrupted: {exc}") from None
    if metadata.get("sha256") != arrays_digest(arrays):
        raise FileFormatError(
            f"{path!r} is corrupted: its arrays do not match their SHA-256 checksum"
        )
    return metadata, arrays


def arrays_digest(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over every array's name, dtype, shape and bytes, in name order (hex)."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()
