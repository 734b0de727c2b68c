"""Queries of the search service: image files, feature vectors and codes, each turned into a code.

Image files are read with Pillow under the service's limits: only PNG and JPEG are opened, the
pixel count is checked from the header before any pixel is decoded (decompression bombs), and a
file that fails to decode (truncated, corrupt) is an :class:`~hashlearn.exceptions.InvalidInputError`.
Decoded images become arrays of the model's input shape: grey (``c = 1``) or RGB (``c = 3``),
resized with bilinear filtering when their size differs, ``float32`` in [0, 1] (``uint8 / 255``,
16-bit PNGs ``/ 65535``); transparent pixels are laid over black.
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from hashlearn._validation import check_image_shape
from hashlearn.codes import check_codes, n_bytes
from hashlearn.exceptions import InvalidInputError
from hashlearn.hashers import Hasher
from hashlearn.serve.errors import TooLargeError

__all__ = [
    "IMAGE_FORMATS",
    "MEDIA_TYPES",
    "QueryEncoder",
    "UploadedImage",
    "decode_base64",
    "parse_image_shape",
    "read_image",
]

IMAGE_FORMATS = {"PNG": "png", "JPEG": "jpg"}
"""Image formats the service reads (Pillow format name -> file extension it is stored under)."""

MEDIA_TYPES = {"png": "image/png", "jpg": "image/jpeg"}
"""Content type of each stored image extension."""


@dataclass(frozen=True)
class UploadedImage:
    """An image file that passed the checks and decoded completely.

    Attributes
    ----------
    data : bytes
        The file as received (stored as is when the image is added).
    image : PIL.Image.Image
        The decoded image.
    extension : str
        ``"png"`` or ``"jpg"``.
    """

    data: bytes
    image: Any
    extension: str


def read_image(data: bytes, *, max_bytes: int, max_pixels: int) -> UploadedImage:
    """Check and decode an uploaded PNG or JPEG file.

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
    UploadedImage

    Raises
    ------
    TooLargeError
        The file is longer than ``max_bytes`` or has more than ``max_pixels`` pixels.
    InvalidInputError
        The bytes are empty, not a PNG or JPEG image, or do not decode (truncated or corrupt).
    """
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
        raise InvalidInputError(
            f"the file is not a PNG or JPEG image (it starts with {data[:8]!r})"
        ) from None
    width, height = image.size
    if width * height > max_pixels:
        raise TooLargeError(
            f"the image is {width}x{height} = {width * height} pixels; the limit is {max_pixels} "
            "pixels"
        )
    if width == 0 or height == 0:
        raise InvalidInputError(f"the image is empty ({width}x{height} pixels)")
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidInputError(
            f"the {image.format} image cannot be decoded, it is truncated or corrupt: {exc}"
        ) from None
    return UploadedImage(data=data, image=image, extension=IMAGE_FORMATS[image.format])


def decode_base64(text: str, name: str) -> bytes:
    """Bytes of a standard base64 string (``+/`` alphabet, padding required).

    Raises
    ------
    InvalidInputError
        ``text`` is not valid base64.
    """
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise InvalidInputError(f"{name} is not valid base64") from None


def _as_model_array(image: Any, image_shape: tuple[int, int, int]) -> np.ndarray:
    """A decoded image as a ``float32 (h, w, c)`` array in [0, 1] of the model's input shape."""
    from PIL import Image, ImageOps

    height, width, channels = image_shape
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):  # 16-bit grey
        values = np.asarray(image, dtype=np.float32) / 65535.0
        image = Image.fromarray(np.round(np.clip(values, 0, 1) * 255).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
    image = image.convert("L" if channels == 1 else "RGB")
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.float32) / 255.0
    return array.reshape(height, width, channels)


class QueryEncoder:
    """Turns queries (images, feature vectors, codes) into packed codes of one hasher.

    Parameters
    ----------
    hasher : Hasher
        A fitted hasher.
    image_shape : tuple of int or None
        ``(h, w)`` or ``(h, w, c)`` of the images the hasher takes. Hashers fitted on image
        arrays know theirs (``image_shape_``); a hasher fitted on flattened pixel vectors needs
        it to accept image files. None (and none known): image files are refused.

    Raises
    ------
    InvalidInputError
        ``image_shape`` is malformed, has other than 1 or 3 channels, or does not fit the hasher.
    """

    def __init__(self, hasher: Hasher, image_shape: tuple[int, ...] | None = None) -> None:
        hasher._check_fitted()
        self.hasher = hasher
        self.n_bits = int(hasher.n_bits)
        self.code_size = n_bytes(self.n_bits)
        fitted_shape = getattr(hasher, "image_shape_", None)
        if fitted_shape is not None:
            fitted_shape = check_image_shape(fitted_shape)
            if image_shape is not None and check_image_shape(image_shape) != fitted_shape:
                raise InvalidInputError(
                    f"image shape {'x'.join(map(str, image_shape))} differs from the "
                    f"{'x'.join(map(str, fitted_shape))} images the model was fitted on"
                )
            image_shape = fitted_shape
        self.image_shape = None if image_shape is None else check_image_shape(image_shape)
        self.n_features = int(np.prod(self.image_shape)) if self.image_shape else None
        if self.image_shape is not None and fitted_shape is None:
            self._check_fits_hasher()

    @property
    def takes_images(self) -> bool:
        """Whether image files can be encoded (the input image shape is known)."""
        return self.image_shape is not None

    def _check_fits_hasher(self) -> None:
        try:
            self.hasher.encode(np.zeros((1, self.n_features), dtype=np.float32))
        except InvalidInputError as exc:
            raise InvalidInputError(
                f"image shape {'x'.join(map(str, self.image_shape or ()))} does not fit the model: "
                f"{exc}"
            ) from None

    def encode_image(self, image: Any) -> np.ndarray:
        """Code ``uint8 (1, code_size)`` of a decoded image (see :func:`read_image`).

        Raises
        ------
        InvalidInputError
            The hasher's input image shape is unknown.
        """
        if self.image_shape is None:
            raise InvalidInputError(
                "this model takes feature vectors, not images: send a 'vector' or a code (start "
                "the service with --image-shape for a model fitted on flattened pixel vectors)"
            )
        array = _as_model_array(image, self.image_shape)
        return self._encode(array[None])

    def encode_vector(self, values: Any) -> np.ndarray:
        """Code ``uint8 (1, code_size)`` of one feature vector (a flattened image for image models).

        Raises
        ------
        InvalidInputError
            ``values`` is not a flat list of finite numbers of the model's input length.
        """
        try:
            vector = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidInputError("vector must be a flat list of numbers") from None
        if vector.ndim != 1 or vector.size == 0:
            raise InvalidInputError(
                f"vector must be a non-empty flat list of numbers, got shape {vector.shape}"
            )
        if not np.isfinite(vector).all():
            bad = int(np.flatnonzero(~np.isfinite(vector))[0])
            raise InvalidInputError(
                f"vector holds NaN or infinite values (first at position {bad})"
            )
        if self.n_features is not None and vector.size != self.n_features:
            raise InvalidInputError(
                f"vector has {vector.size} values, but the model takes {self.n_features}"
                + (
                    f" (a flattened {'x'.join(map(str, self.image_shape))} image)"
                    if self.image_shape
                    else ""
                )
            )
        array = vector.astype(np.float32)
        if getattr(self.hasher, "input_kind", "features") == "images" and self.image_shape:
            return self._encode(array.reshape(1, *self.image_shape))
        return self._encode(array[None])

    def _encode(self, batch: np.ndarray) -> np.ndarray:
        return check_codes(self.hasher.encode(batch), self.n_bits)

    def code_from_hex(self, text: str) -> np.ndarray:
        """Code ``uint8 (1, code_size)`` from hex (two digits per byte, byte 0 first).

        Raises
        ------
        InvalidInputError
            ``text`` is not hex of exactly ``code_size`` bytes, or sets bits beyond ``n_bits``.
        """
        text = text.strip()
        if len(text) != 2 * self.code_size:
            raise InvalidInputError(
                f"code_hex must have {2 * self.code_size} hex digits ({self.n_bits}-bit codes), "
                f"got {len(text)}"
            )
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise InvalidInputError(f"code_hex is not hexadecimal: {text[:40]!r}") from None
        return self._check_raw(raw, "code_hex")

    def code_from_base64(self, text: str) -> np.ndarray:
        """Code ``uint8 (1, code_size)`` from standard base64 of the packed bytes.

        Raises
        ------
        InvalidInputError
            ``text`` is not base64 of exactly ``code_size`` bytes, or sets bits beyond ``n_bits``.
        """
        raw = decode_base64(text.strip(), "code_base64")
        if len(raw) != self.code_size:
            raise InvalidInputError(
                f"code_base64 must decode to {self.code_size} bytes ({self.n_bits}-bit codes), "
                f"got {len(raw)}"
            )
        return self._check_raw(raw, "code_base64")

    def check_code(self, code: Any, name: str = "code") -> np.ndarray:
        """``code`` as a checked ``uint8 (1, code_size)`` array of the model's width.

        Raises
        ------
        InvalidInputError
            ``code`` is not one packed code of ``n_bits`` bits.
        """
        code = check_codes(code, self.n_bits, name=name)
        if len(code) != 1:
            raise InvalidInputError(f"{name} must be one code, got {len(code)}")
        return code

    def _check_raw(self, raw: bytes, name: str) -> np.ndarray:
        code = np.frombuffer(raw, dtype=np.uint8).reshape(1, -1).copy()
        return check_codes(code, self.n_bits, name=name)


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
