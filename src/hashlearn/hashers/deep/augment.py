"""Batched image augmentations in torch, and :class:`TwoViews`, the training network of
contrastive methods (CIBHash): each image seen as two random views.

Everything works on a batch ``(b, c, h, w)`` of *standardised* images (what the deep hashers
feed their networks: zero mean, unit variance per channel over the training set), grey
(``c = 1``, digits) or colour (``c = 3``), of any size, on the batch's device. All draws come
from ``generator`` (a CPU generator; ``None``: torch's global one, which the trainer seeds), a
fixed number of draws per image, so a seed gives the same views on the CPU and on a GPU.

The transforms are those of SimCLR-style contrastive learning as CIBHash's authors use them
(random resized crop of 0.5 to 1 of the area, horizontal flip, colour jitter 0.4 applied with
probability 0.7, greyscale with probability 0.2), adapted to standardised tensors: the jitter
factors act around the image's own mean (contrast, saturation) or shift it (brightness, in
standard deviations); hue jitter and the authors' Gaussian blur are left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hashlearn._validation import check_float
from hashlearn.exceptions import InvalidInputError

__all__ = ["Augmentation", "TwoViews", "augment_views", "colour_jitter", "resized_crop"]


@dataclass(frozen=True)
class Augmentation:
    """Strengths of :func:`augment_views` (defaults: CIBHash's, Qiu et al., IJCAI 2021).

    ``crop_scale``: range of the crop's area as a fraction of the image; ``crop_ratio``: range of
    its aspect ratio (width / height). ``flip``: probability of a left-right mirror (0 for digits
    and text, whose mirror images are other symbols). ``jitter``: probability of the colour
    jitter, whose factors are drawn in ``[1 - s, 1 + s]`` for ``s`` = ``brightness``,
    ``contrast``, ``saturation``. ``grayscale``: probability of replacing a colour image by its
    grey version (no effect on grey images).
    """

    crop_scale: tuple[float, float] = (0.5, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: float = 0.5
    jitter: float = 0.7
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    grayscale: float = 0.2

    def __post_init__(self) -> None:
        low, high = self.crop_scale
        if not 0.0 < low <= high <= 1.0:
            raise InvalidInputError(
                f"crop_scale must be 0 < low <= high <= 1, got {self.crop_scale}"
            )
        low, high = self.crop_ratio
        if not 0.0 < low <= high:
            raise InvalidInputError(f"crop_ratio must be 0 < low <= high, got {self.crop_ratio}")
        for name in ("flip", "jitter", "grayscale"):
            check_float(getattr(self, name), name, minimum=0.0, maximum=1.0)
        for name in ("brightness", "contrast", "saturation"):
            check_float(getattr(self, name), name, minimum=0.0, maximum=1.0)


def _uniform(n: int, low: float, high: float, generator: torch.Generator | None) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)


def _rows(rows: tuple[int, int, int] | None, b: int) -> tuple[int, int, int]:
    """``(start, stop, total)`` of a batch of ``b`` images: all of it, or the given rows."""
    if rows is None:
        return 0, b, b
    start, stop, total = rows
    if not 0 <= start <= stop <= total or stop - start != b:
        raise InvalidInputError(f"rows {rows} do not describe a share of {b} images of a batch")
    return start, stop, total


def resized_crop(
    images: torch.Tensor,
    generator: torch.Generator | None = None,
    scale: tuple[float, float] = (0.5, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    flip: float = 0.0,
    rows: tuple[int, int, int] | None = None,
) -> torch.Tensor:
    """A random crop of each image, resized back to ``h x w`` (bilinear), mirrored left-right
    with probability ``flip``. ``rows=(start, stop, total)``: ``images`` are rows
    ``[start, stop)`` of a batch of ``total``; the draws are made for all ``total`` and those
    rows' taken (a share of a distributed batch gets the draws one process would give it).

    Per image: an area fraction ``s ~ U(scale)`` and a log aspect ratio ``log r ~ U(log ratio)``
    give a crop of width ``sqrt(s r)`` and height ``sqrt(s / r)`` (fractions of the image's,
    capped at 1), centred uniformly where it fits. 5 uniform draws per image.
    """
    b = len(images)
    start, stop, total = _rows(rows, b)
    area = _uniform(total, *scale, generator)[start:stop]
    log_ratio = _uniform(total, math.log(ratio[0]), math.log(ratio[1]), generator)[start:stop]
    width = torch.sqrt(area * torch.exp(log_ratio)).clamp(max=1.0)
    height = torch.sqrt(area / torch.exp(log_ratio)).clamp(max=1.0)
    # centres in the [-1, 1] coordinates of affine_grid, where the crop fits inside the image
    cx = (1.0 - width) * (2.0 * _uniform(total, 0.0, 1.0, generator)[start:stop] - 1.0)
    cy = (1.0 - height) * (2.0 * _uniform(total, 0.0, 1.0, generator)[start:stop] - 1.0)
    mirror = torch.rand(total, generator=generator)[start:stop] < flip
    theta = torch.zeros(b, 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = torch.where(mirror, -width, width)
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = height
    theta[:, 1, 2] = cy
    theta = theta.to(images.device, images.dtype)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def colour_jitter(
    images: torch.Tensor,
    generator: torch.Generator | None = None,
    p: float = 0.7,
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.4,
    grayscale: float = 0.2,
    rows: tuple[int, int, int] | None = None,
) -> torch.Tensor:
    """Random photometric changes of standardised images, per image (6 uniform draws each;
    ``rows`` as in :func:`resized_crop`).

    With probability ``p``: contrast ``x -> m + c (x - m)`` around the image's mean ``m``,
    saturation ``x -> g + s (x - g)`` around its grey value ``g`` (mean over channels; colour
    images only), brightness ``x -> x + (k - 1)`` (a shift of up to ``brightness`` standard
    deviations), with ``c, s, k`` drawn in ``[1 - strength, 1 + strength]``. Then, with
    probability ``grayscale``, a colour image becomes ``g`` on every channel.
    """
    b, c = images.shape[:2]
    start, stop, total = _rows(rows, b)
    draws = torch.rand(total, 6, generator=generator, dtype=torch.float64)[start:stop]
    on = draws[:, 0] < p
    factors = 1.0 + (2.0 * draws[:, 1:4] - 1.0) * torch.tensor(
        [contrast, saturation, brightness], dtype=torch.float64
    )
    factors = torch.where(on[:, None], factors, torch.ones_like(factors))
    grey_out = (draws[:, 4] < grayscale) & (c > 1)
    factors = factors.to(images.device, images.dtype)
    k_contrast, k_saturation, k_brightness = (f.view(b, 1, 1, 1) for f in factors.unbind(1))
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    out = mean + k_contrast * (images - mean)
    if c > 1:
        grey = out.mean(dim=1, keepdim=True)
        out = grey + k_saturation * (out - grey)
        out = torch.where(
            grey_out.to(images.device).view(b, 1, 1, 1), out.mean(1, keepdim=True), out
        )
    return out + (k_brightness - 1.0)


def augment_views(
    images: torch.Tensor,
    augmentation: Augmentation | None = None,
    generator: torch.Generator | None = None,
    rows: tuple[int, int, int] | None = None,
) -> torch.Tensor:
    """One random view of each image: :func:`resized_crop` (with its flip), then
    :func:`colour_jitter`, with the strengths of ``augmentation`` (default :class:`Augmentation`;
    ``rows`` as in :func:`resized_crop`). Returns a new tensor of the shape of ``images``."""
    if images.ndim != 4:
        raise InvalidInputError(
            f"augmentation needs images (b, c, h, w), got {tuple(images.shape)}"
        )
    a = Augmentation() if augmentation is None else augmentation
    views = resized_crop(images, generator, a.crop_scale, a.crop_ratio, a.flip, rows)
    return colour_jitter(
        views, generator, a.jitter, a.brightness, a.contrast, a.saturation, a.grayscale, rows
    )


class TwoViews(nn.Module):
    """A network trained on two random views of each image (contrastive methods).

    In training mode, a batch ``(b, c, h, w)`` gives the network's outputs for two views of every
    image, ``(2 b, n_bits)``: rows ``[0, b)`` the first views, rows ``[b, 2 b)`` the second ones
    in the same order. In eval mode (encoding) it is the network itself on the images as given.
    Views are drawn from torch's global generator, which the trainer seeds. State-dict keys are
    the network's under ``network.``.

    ``views = 2`` tells the trainer the outputs are view-major; in a process group it sets
    ``batch_rows`` to ``(start, stop, total)`` of this process's share of the global batch
    before each step, so the share's views are drawn as one process draws them for the whole
    batch, and it gathers the outputs view by view (see
    :mod:`~hashlearn.hashers.deep.trainer.distributed`).
    """

    views = 2

    def __init__(self, network: nn.Module, augmentation: Augmentation | None = None) -> None:
        super().__init__()
        self.network = network
        self.augmentation = Augmentation() if augmentation is None else augmentation
        self.batch_rows: tuple[int, int, int] | None = None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return self.network(images)
        first = augment_views(images, self.augmentation, rows=self.batch_rows)
        second = augment_views(images, self.augmentation, rows=self.batch_rows)
        return self.network(torch.cat([first, second]))
