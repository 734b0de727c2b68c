"""A decoded picture as a float array: the one conversion that training folders, encoded folders
and the search service's uploads all go through, so a picture gives the same array every way.

EXIF rotation is applied, 16-bit grey is scaled by 65535, transparent pixels are laid over black,
and the picture is made grey (``c = 1``) or RGB (``c = 3``) and, when asked, resized with bilinear
filtering. Values are ``float32`` in [0, 1]. Pillow is imported only when a picture is converted.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "GREY_MODES",
    "conversion_bytes",
    "describe_image",
    "has_colour",
    "image_array",
    "is_grey",
    "upright",
]

GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
"""Pillow modes of pictures without colour."""

_SIXTEEN_BIT = ("I", "I;16", "I;16B", "I;16L", "I;16N")
_ONE_BYTE = ("1", "L", "P")  # Pillow keeps these in one byte a pixel, "I;16" in two, others in four
_ALPHA_MODES = ("RGBA", "LA", "PA")


def conversion_bytes(
    width: int,
    height: int,
    mode: str,
    *,
    transparent: bool = False,
    channels: int = 3,
    size: tuple[int, int] | None = None,
) -> int:
    """Most bytes that decoding a ``width x height`` picture and making it an array (as
    :func:`has_colour`, :func:`upright` and :func:`image_array` do) hold at once: an upper
    estimate, known from the file's header before a pixel is decoded.

    Per pixel of the picture: its decoded form (1, 2 or 4 bytes by Pillow ``mode``), an upright
    copy, then the larger of the colour check (of a colour mode: an RGB copy, its array,
    comparisons: 9 bytes) and the conversion (16-bit: a float array and its temporaries, 13 bytes;
    with alpha or a transparent colour: an RGBA copy, a black backdrop, their blend and the grey
    or RGB result, 16 bytes; else the grey or RGB result, 4 bytes); plus the ``float32`` result,
    of ``size`` or of the picture. A 5000 x 5000 RGBA PNG (94 KiB as a file) comes to 600 MB
    (measured: 490 MB).

    Parameters
    ----------
    width, height : int
        The picture's size in pixels.
    mode : str
        Its Pillow mode (``"RGBA"``, ``"L"``, ``"I;16"``, ...).
    transparent : bool
        It has a transparent colour (``"transparency"`` in its info).
    channels : int
        1 or 3: the channels of the result.
    size : (height, width), optional
        The size it is resized to; None keeps its own.
    """
    pixels = int(width) * int(height)
    stored = 1 if mode in _ONE_BYTE else 2 if mode.startswith("I;16") else 4
    if mode in _SIXTEEN_BIT:
        converting = 13
    elif mode in _ALPHA_MODES or transparent:
        converting = 16
    else:
        converting = 4
    out_h, out_w = size if size is not None else (height, width)
    result = int(out_h) * int(out_w) * (4 * channels + (4 if size is not None else 0))
    checking = 0 if mode in GREY_MODES else 9
    return pixels * (2 * stored + max(checking, converting)) + result


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
