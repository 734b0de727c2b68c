"""What the trainer reads: batch sources, the seeded batch order, augmentation, devices.

Training and validation data are *batch sources* (:class:`BatchSource`): anything with
``__len__``, ``labels`` (all labels, on the CPU) and ``get_batch(indices) -> (images, labels)``.
:class:`ArrayDataset` is the in-memory one; an image-folder reader only has to follow the same
protocol. The trainer sees nothing but the sources it is given: in particular it never sees a
query set, so model selection cannot leak test data.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from hashlearn._validation import check_images, check_labels
from hashlearn.exceptions import InvalidInputError

__all__ = [
    "ArrayDataset",
    "BatchSource",
    "apply_augmentation",
    "as_source",
    "augment_batch",
    "augment_draws",
    "batch_indices",
    "check_sources",
    "input_dtype",
    "load_batch",
    "resolve_device",
    "standardize",
]


@runtime_checkable
class BatchSource(Protocol):
    """What the trainer reads data through; arrays and image folders alike.

    ``labels``: all labels, a CPU tensor, ``(n,)`` int64 class labels or ``(n, c)`` float32
    multi-label indicators (the losses' ``setup`` needs them all, and validation ranks by them).
    ``get_batch(indices)``: ``indices`` a ``(b,)`` int64 tensor of positions, on the training
    device (the CPU or a GPU: a source that reads from disk calls ``indices.tolist()``); returns
    images ``(b, c, h, w)`` float32 and their labels, on any device (the trainer moves them).
    """

    @property
    def labels(self) -> torch.Tensor: ...

    def __len__(self) -> int: ...

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


class ArrayDataset:
    """Images and labels held in memory as tensors (on the CPU until :meth:`to` moves them).

    Parameters
    ----------
    images : array-like of shape (n, h, w) or (n, h, w, c)
        Float images; stored as ``(n, c, h, w)`` float32, standardised when ``mean``/``std`` given.
    labels : array-like of shape (n,) or (n, n_classes)
        Integer class labels, or multi-label 0/1 indicators (stored as float32).
    mean, std : numpy.ndarray of shape (c,), optional
        Per-channel standardisation; both or neither.
    """

    def __init__(
        self,
        images: Any,
        labels: Any,
        *,
        mean: np.ndarray | None = None,
        std: np.ndarray | None = None,
        name: str = "images",
    ) -> None:
        array = check_images(images, name)
        y = check_labels(labels, len(array), f"labels of {name}")
        self.images = standardize(array, mean, std)
        self._labels = torch.from_numpy(y if y.ndim == 1 else y.astype(np.float32))
        self._device_labels = self._labels

    @property
    def labels(self) -> torch.Tensor:
        return self._labels

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(c, h, w)``."""
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    def __len__(self) -> int:
        return len(self.images)

    def to(self, device: torch.device) -> ArrayDataset:
        """Move images and batch labels to ``device`` (``labels`` stays on the CPU); returns self."""
        self.images = self.images.to(device)
        self._device_labels = self._labels.to(device)
        return self

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        indices = indices.to(self.images.device, non_blocking=True)
        # Indexing (not index_select) keeps the strides of the stored tensor; for one channel,
        # those are the ones the network was always trained with (conv kernels round by layout).
        return self.images[indices], self._device_labels[indices]


def standardize(
    images: np.ndarray, mean: np.ndarray | None, std: np.ndarray | None
) -> torch.Tensor:
    """``(n, h, w, c)`` float32 -> ``(n, c, h, w)`` float32 tensor, ``(x - mean) / std`` per channel
    when ``mean`` and ``std`` (``(c,)`` float32) are given."""
    if mean is not None and std is not None:
        images = (images - mean) / std
    return (
        torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
        .permute(0, 3, 1, 2)
        .contiguous()
    )


def as_source(data: Any, name: str) -> BatchSource:
    """``data`` as a batch source: a source is kept, a tuple ``(images, labels)`` of arrays
    becomes an :class:`ArrayDataset`; ``name`` labels the error messages."""
    if isinstance(data, tuple) and len(data) == 2:
        return ArrayDataset(data[0], data[1], name=name)
    if isinstance(data, BatchSource):
        return data
    raise InvalidInputError(
        f"{name} must be a BatchSource (such as ArrayDataset) or a tuple (images, labels), "
        f"got {type(data).__name__}"
    )


def check_sources(train: BatchSource, validation: BatchSource | None) -> None:
    """Raise InvalidInputError unless both sources hold at least 2 items and labels of the same
    kind (class labels, or indicators of as many classes)."""
    if len(train) < 2:
        raise InvalidInputError(f"training needs at least 2 images, got {len(train)}")
    if validation is None:
        return
    if len(validation) < 2:
        raise InvalidInputError(f"validation needs at least 2 images, got {len(validation)}")
    if validation.labels.shape[1:] != train.labels.shape[1:]:
        raise InvalidInputError(
            f"validation labels have shape {tuple(validation.labels.shape)}, training labels "
            f"{tuple(train.labels.shape)}: both must be class labels, or indicators of the same "
            "classes"
        )


def resolve_device(device: str) -> torch.device:
    """``"auto"`` picks CUDA when available, else the CPU; otherwise any torch device string."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise InvalidInputError(
            f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda[:i]'"
        ) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError(f"device {device!r} was asked for but CUDA is not available")
    return resolved


def augment_batch(images: torch.Tensor, generator: torch.Generator, padding: int) -> torch.Tensor:
    """Random crop with zero padding, then random horizontal flip, per image of a batch.

    Each image of ``images`` ``(b, c, h, w)`` is padded by ``padding`` pixels of zeros on every
    side (zero is the mean colour of standardised images), cropped back to ``h x w`` at an offset
    drawn uniformly from ``[0, 2 padding]^2``, and mirrored left-right with probability 1/2. All
    draws come from ``generator`` (a CPU generator): 1 uniform and 2 integers per image
    (:func:`augment_draws`). Returns a new tensor; ``images`` is not modified.
    """
    flip, offsets = augment_draws(len(images), generator, padding)
    return apply_augmentation(images, flip, offsets, padding)


def augment_draws(
    b: int, generator: torch.Generator, padding: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The random draws of :func:`augment_batch` for ``b`` images: ``flip`` ``(b,)`` bool, then
    crop ``offsets`` ``(b, 2)`` int64 in ``[0, 2 padding]``. A distributed run draws them for the
    global batch and gives each process its rows."""
    flip = torch.rand(b, generator=generator) < 0.5
    offsets = torch.randint(0, 2 * padding + 1, (b, 2), generator=generator)
    return flip, offsets


def apply_augmentation(
    images: torch.Tensor, flip: torch.Tensor, offsets: torch.Tensor, padding: int
) -> torch.Tensor:
    """Crop and flip ``images`` ``(b, c, h, w)`` with the draws of :func:`augment_draws`."""
    b, c, h, w = images.shape
    device = images.device
    padded = nn.functional.pad(images, (padding, padding, padding, padding))
    rows = offsets[:, :1] + torch.arange(h)  # (b, h)
    cols = offsets[:, 1:] + torch.arange(w)  # (b, w)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    rows, cols = rows.to(device), cols.to(device)
    batch = torch.arange(b, device=device)[:, None, None, None]
    channel = torch.arange(c, device=device)[None, :, None, None]
    return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]


def batch_indices(
    n: int, batch_size: int, generator: torch.Generator, device: torch.device
) -> list[torch.Tensor]:
    """The mini-batches of one epoch: a random permutation of ``range(n)`` drawn from
    ``generator`` (on the CPU), moved to ``device`` and cut into ``(b,)`` int64 slices of
    ``batch_size``; a last batch of a single sample is left out (pairwise losses need two)."""
    order = torch.randperm(n, generator=generator).to(device)
    batches = []
    for begin in range(0, n, batch_size):
        stop = min(begin + batch_size, n)
        if stop - begin >= 2:
            batches.append(order[begin:stop])
    return batches


def load_batch(
    source: BatchSource,
    indices: torch.Tensor,
    device: torch.device,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The images (as ``dtype``) and labels of ``indices`` from ``source``, on ``device``."""
    images, labels = source.get_batch(indices)
    return (
        images.to(device, dtype=dtype, non_blocking=True),
        labels.to(device, non_blocking=True),
    )


def input_dtype(network: nn.Module) -> torch.dtype:
    """The dtype images are given to ``network`` in: that of its first floating-point parameter
    (float64 for a network built in double precision), float32 without one. Under mixed
    precision the parameters, and so the inputs, stay float32."""
    for parameter in network.parameters():
        if parameter.is_floating_point():
            return parameter.dtype
    return torch.float32
