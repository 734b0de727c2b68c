"""Image files as the models' input: PNG and JPEG bytes checked and decoded, then made arrays.

:func:`read_image` opens only PNG and JPEG, checks the pixel count from the header before any
pixel is decoded (decompression bombs), and refuses a file that fails to decode (truncated,
corrupt) with an :class:`~hashlearn.exceptions.InvalidInputError`. :func:`as_model_array` turns a
decoded image into an array of the model's input shape: grey (``c = 1``) or RGB (``c = 3``),
``float32`` in [0, 1] (``uint8 / 255``, 16-bit PNGs ``/ 65535``); transparent pixels are laid over
black. An image of another size, or one in colour for a grey model, is refused unless resizing is
asked for (then bilinear). Folders of files
(:mod:`hashlearn.encoding.files`) and the search service's uploads go through these same two
steps, so a picture gets the same code either way.
"""

from __future__ import annotations

import codecs
import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from hashlearn._imaging import (
    conversion_bytes,
    describe_image,
    has_colour,
    image_array,
    is_grey,
    upright,
)
from hashlearn._validation import check_image_shape
from hashlearn.encoding.errors import ImageMismatchError, TooLargeError
from hashlearn.exceptions import InvalidInputError

__all__ = [
    "IMAGE_FORMATS",
    "DecodedImage",
    "ImageHeader",
    "as_model_array",
    "image_header",
    "parse_image_shape",
    "read_image",
]

IMAGE_FORMATS = {"PNG": "png", "JPEG": "jpg"}
"""Image formats read (Pillow format name -> file extension the service stores them under)."""


@dataclass(frozen=True)
class DecodedImage:
    """An image file that passed the checks and decoded completely.

    Attributes
    ----------
    data : bytes
        The file as read (stored as is when the search service adds the image).
    image : PIL.Image.Image or None
        The decoded image; None once its pixels are let go (the search service keeps only the
        file of an added image).
    extension : str
        ``"png"`` or ``"jpg"``.
    """

    data: bytes
    image: Any
    extension: str


@dataclass(frozen=True)
class ImageHeader:
    """What the header of a PNG or JPEG file says, before any pixel is decoded.

    Attributes
    ----------
    width, height : int
    mode : str
        Pillow's mode of the decoded pixels (``"RGBA"``, ``"L"``, ``"I;16"``, ...).
    transparent : bool
        A colour of the palette or of the pixels is transparent (``tRNS``).
    """

    width: int
    height: int
    mode: str
    transparent: bool

    def conversion_bytes(self, channels: int, size: tuple[int, int] | None = None) -> int:
        """Most bytes decoding it and making it a ``channels``-channel array of ``size`` hold
        at once (see :func:`hashlearn._imaging.conversion_bytes`)."""
        return conversion_bytes(
            self.width,
            self.height,
            self.mode,
            transparent=self.transparent,
            channels=channels,
            size=size,
        )


def image_header(data: bytes, *, max_bytes: int, max_pixels: int) -> ImageHeader:
    """The header of a PNG or JPEG file, checked as :func:`read_image` checks it, without
    decoding its pixels (so what decoding will cost is known first).

    Raises
    ------
    TooLargeError, InvalidInputError
        As :func:`read_image`, but for a file whose pixels do not decode.
    """
    image = _open_checked(data, max_bytes=max_bytes, max_pixels=max_pixels)
    with image:
        return ImageHeader(
            width=image.size[0],
            height=image.size[1],
            mode=image.mode,
            transparent="transparency" in image.info,
        )


def read_image(data: bytes, *, max_bytes: int, max_pixels: int) -> DecodedImage:
    """Check and decode a PNG or JPEG file.

    Parameters
    ----------
    data : bytes
        The file's bytes.
    max_bytes : int
        Largest accepted file size.
    max_pixels : int
        Largest accepted ``width * height``, checked before decoding.

    Returns
    -------
    DecodedImage

    Raises
    ------
    TooLargeError
        The file is longer than ``max_bytes`` or has more than ``max_pixels`` pixels.
    InvalidInputError
        The bytes are empty, not a PNG or JPEG image, or do not decode (truncated or corrupt).
    """
    image = _open_checked(data, max_bytes=max_bytes, max_pixels=max_pixels)
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidInputError(
            f"the {image.format} image cannot be decoded, it is truncated or corrupt: {exc}"
        ) from None
    return DecodedImage(data=data, image=image, extension=IMAGE_FORMATS[image.format])


def _open_checked(data: bytes, *, max_bytes: int, max_pixels: int) -> Any:
    """The PNG or JPEG of ``data`` opened (header read, pixels not), its size checked."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise InvalidInputError("the image file is empty")
    if len(data) > max_bytes:
        raise TooLargeError(
            f"the image file is {len(data)} bytes long; the limit is {max_bytes} bytes"
        )
    try:
        image = Image.open(io.BytesIO(data), formats=list(IMAGE_FORMATS))
    except Image.DecompressionBombError as exc:  # Pillow's own, far larger, bound
        raise TooLargeError(f"the image has too many pixels: {exc}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise InvalidInputError(_not_png_or_jpeg(data)) from None
    width, height = image.size
    if width * height > max_pixels:
        raise TooLargeError(
            f"the image is {width}x{height} = {width * height} pixels; the limit is {max_pixels} "
            "pixels"
        )
    if width == 0 or height == 0:
        raise InvalidInputError(f"the image is empty ({width}x{height} pixels)")
    return image


def _not_png_or_jpeg(data: bytes) -> str:
    """Why a file that is not a PNG or JPEG is refused, in words (never its raw bytes)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as other:  # any format Pillow knows; header only
            kind = other.format
    except Exception:  # not an image Pillow knows, whatever the reason
        kind = None
    if kind:
        return f"the file is a {kind} image, not a PNG or JPEG: convert it to PNG or JPEG"
    if data.startswith(b"%PDF"):
        return "the file is a PDF document, not a PNG or JPEG image: choose a PNG or JPEG file"
    for name, magic in (("PNG", b"\x89PNG"), ("JPEG", b"\xff\xd8\xff")):
        if data.startswith(magic):
            return f"the file starts as a {name} image but its header is truncated or corrupt"
    if _looks_like_text(data[:512]):
        return "the file is text, not a PNG or JPEG image: choose a PNG or JPEG file"
    return (
        "the file is not a PNG or JPEG image (nor any image format known): choose a PNG or "
        "JPEG file"
    )


def _looks_like_text(head: bytes) -> bool:
    """UTF-8 without control characters other than tab, newline and carriage return."""
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return not any(ord(c) < 32 and c not in "\t\n\r" for c in text)


def as_model_array(
    image: Any, image_shape: tuple[int, int, int], *, resize: bool = False
) -> np.ndarray:
    """A decoded image as a model's input.

    Parameters
    ----------
    image : PIL.Image.Image
        A decoded image (see :func:`read_image`).
    image_shape : tuple of int
        ``(h, w, c)`` the model takes, ``c`` 1 (grey) or 3 (RGB).
    resize : bool, default False
        Resize an image of another size (bilinear), and make a colour image grey for a grey
        model. False: such an image is refused, since a model reads a picture unlike those it
        was fitted on as noise and still gives it a code. A grey picture (or an RGB file whose
        channels are equal) is always taken by a colour model, its grey repeated in R, G and B:
        that is what a colour camera records of a grey scene.

    Returns
    -------
    numpy.ndarray of float32, shape (h, w, c)
        Values in [0, 1]; EXIF rotation applied, transparency laid over black.

    Raises
    ------
    ImageMismatchError
        Without ``resize``: the image's size differs from the model's, or it shows colour and
        the model is grey.
    """
    height, width, channels = image_shape
    image = upright(image)
    if not resize:
        size = (image.size[1], image.size[0])
        colour = channels == 1 and has_colour(image)
        if size != (height, width) or colour:
            own = (*size, 3 if colour or not is_grey(image) else 1)
            raise ImageMismatchError(
                f"the image is {describe_image(*own)} but the model takes "
                f"{describe_image(height, width, channels)} images; resize explicitly (--resize, "
                "resize=True) or use a model fitted on images like this one"
            )
    return image_array(image, channels, (height, width))


def parse_image_shape(text: str) -> tuple[int, int, int]:
    """``"28x28"`` or ``"32x32x3"`` -> ``(h, w, c)``.

    Raises
    ------
    InvalidInputError
        ``text`` is not two or three positive integers joined by ``x``.
    """
    try:
        values = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InvalidInputError(
            f"image shape must look like 28x28 or 32x32x3, got {text!r}"
        ) from None
    return check_image_shape(values)
