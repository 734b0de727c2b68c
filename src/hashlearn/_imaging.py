"""A decoded picture as a float array: the one conversion that training folders, encoded folders
and the search service's uploads all go through, so a picture gives the same array every way.

EXIF rotation is applied, 16-bit grey is scaled by 65535, transparent pixels are laid over black,
and the picture is made grey (``c = 1``) or RGB (``c = 3``) and, when asked, resized with bilinear
filtering. Values are ``float32`` in [0, 1]. Pillow is imported only when a picture is converted.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["GREY_MODES", "describe_image", "has_colour", "image_array", "is_grey", "upright"]

GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
"""Pillow modes of pictures without colour."""

_SIXTEEN_BIT = ("I", "I;16", "I;16B", "I;16L", "I;16N")


def is_grey(image: Any) -> bool:
    """Whether a decoded Pillow image has no colour channels (its mode is one of GREY_MODES)."""
    return image.mode in GREY_MODES


def has_colour(image: Any) -> bool:
    """Whether a decoded Pillow image shows colour: it has colour channels and they are not all
    equal (an RGB file of a grey picture has no colour)."""
    if is_grey(image):
        return False
    rgb = np.asarray(image.convert("RGB"))
    return not (
        np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])
    )


def describe_image(height: int, width: int, channels: int) -> str:
    """``"28x28 grey"`` or ``"512x512 colour"``: a picture or input shape in messages."""
    return f"{height}x{width} {'grey' if channels == 1 else 'colour'}"


def upright(image: Any) -> Any:
    """The image turned as its EXIF orientation says (a copy only when it must turn)."""
    from PIL import ImageOps

    return ImageOps.exif_transpose(image)


def image_array(image: Any, channels: int, size: tuple[int, int] | None = None) -> np.ndarray:
    """A decoded Pillow image as ``float32 (h, w, channels)`` in [0, 1].

    Parameters
    ----------
    image : PIL.Image.Image
        A decoded image, already upright (see :func:`upright`).
    channels : int
        1 (grey) or 3 (RGB).
    size : (height, width), optional
        Resize to this size (bilinear) when it differs; None keeps the image's size.
    """
    from PIL import Image

    if image.mode in _SIXTEEN_BIT:
        values = np.asarray(image, dtype=np.float32) / 65535.0
        image = Image.fromarray(np.round(np.clip(values, 0, 1) * 255).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
    image = image.convert("L" if channels == 1 else "RGB")
    if size is not None and image.size != (size[1], size[0]):
        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.float32) / 255.0
    return array.reshape(image.size[1], image.size[0], channels)
