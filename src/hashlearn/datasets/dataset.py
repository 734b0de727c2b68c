"""The :class:`Dataset`: images (or features) and their labels, as every loader returns them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hashlearn.exceptions import InvalidInputError


@dataclass(frozen=True)
class Dataset:
    """An image (or feature) set, labelled or not.

    Attributes
    ----------
    name : registry name.
    X : float32 array (n, h, w) or (n, h, w, c), values in [0, 1]; feature sets loaded with
        :func:`hashlearn.datasets.load_arrays` may also be (n, d) with any values.
    y : int64 array (n,) of class labels, a bool (n, n_classes) multi-label indicator, or None
        for unlabelled images (a flat folder; unsupervised methods only).
    description : where the data comes from.
    default_split : keyword arguments of :func:`hashlearn.retrieval_split` for this dataset's
        standard protocol (query / train / validation sizes).
    classes : class names, ``classes[i]`` for label ``i`` (empty when the labels are unnamed).
    test_mask : bool array (n,), True for the items of the dataset's official test set (the
        10,000 t10k images of MNIST, CIFAR-10's test_batch); None when it has none. Items are
        ordered official training set first, then official test set.
    files : for a dataset read from a folder, each item's file relative to the folder; else
        empty.
    """

    name: str
    X: np.ndarray
    y: np.ndarray | None
    description: str = ""
    default_split: dict[str, Any] = field(default_factory=dict)
    classes: tuple[str, ...] = ()
    test_mask: np.ndarray | None = None
    files: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.y is not None and len(self.X) != len(self.y):
            raise InvalidInputError(
                f"dataset {self.name!r}: X has {len(self.X)} items but y has {len(self.y)}"
            )
        mask = self.test_mask
        if mask is not None and (
            not isinstance(mask, np.ndarray)
            or mask.dtype != np.bool_
            or mask.shape != (len(self.X),)
        ):
            raise InvalidInputError(
                f"dataset {self.name!r}: test_mask must be a bool array of shape "
                f"({len(self.X)},), got {getattr(mask, 'dtype', type(mask).__name__)} "
                f"{getattr(mask, 'shape', '')}"
            )

    def __len__(self) -> int:
        return len(self.X)

    @property
    def labelled(self) -> bool:
        """Whether the items have labels (``y`` is not None)."""
        return self.y is not None

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.X.shape[1:])

    @property
    def n_classes(self) -> int:
        """Number of classes: ``max(y) + 1``, the width of a multi-label indicator, or 0 without
        labels."""
        if self.y is None:
            return 0
        if self.y.ndim == 2:
            return int(self.y.shape[1])
        return int(self.y.max()) + 1
