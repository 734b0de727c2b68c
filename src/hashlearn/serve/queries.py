"""Queries of the search service: image files, feature vectors and codes, each turned into a code.

Image files are read and made the model's input by :mod:`hashlearn.encoding.images` (the same
path as folders of pictures); :class:`QueryEncoder` adds what only requests carry: one feature
vector, a code in hex or base64, and the checks of each.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np

from hashlearn.codes import check_codes
from hashlearn.encoding import ImageEncoder
from hashlearn.exceptions import InvalidInputError

__all__ = ["QueryEncoder", "decode_base64"]


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


class QueryEncoder(ImageEncoder):
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

    def encode_image(self, image: Any) -> np.ndarray:
        """Code ``uint8 (1, code_size)`` of a decoded image (see
        :func:`~hashlearn.encoding.read_image`).

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
        array = self.image_array(image)
        return self.encode(array[None])

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
            return self.encode(array.reshape(1, *self.image_shape))
        return self.encode(array[None])

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
        spare = 8 * self.code_size - self.n_bits
        if spare and code[0, -1] >> (8 - spare):
            top = int(code[0, -1]).bit_length() + 8 * (self.code_size - 1)
            raise InvalidInputError(
                f"{name} is a {top}-bit code, but this service's model makes {self.n_bits}-bit "
                f"codes (bits beyond bit {self.n_bits} must be 0): send a code of this model"
            )
        return check_codes(code, self.n_bits, name=name)
