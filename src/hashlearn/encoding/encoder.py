"""A fitted hasher and the shape of the images it takes: decoded images in, packed codes out."""

from __future__ import annotations

from typing import Any

import numpy as np

from hashlearn._validation import check_image_shape
from hashlearn.codes import check_codes, n_bytes
from hashlearn.encoding.images import as_model_array
from hashlearn.exceptions import InvalidInputError
from hashlearn.hashers import Hasher

__all__ = ["ImageEncoder"]


class ImageEncoder:
    """Encodes images with one fitted hasher, knowing the image shape it takes.

    Parameters
    ----------
    hasher : Hasher
        A fitted hasher.
    image_shape : tuple of int or None
        ``(h, w)`` or ``(h, w, c)`` of the images the hasher takes. Hashers fitted on image
        arrays know theirs (``image_shape_``); a hasher fitted on flattened pixel vectors needs
        it to take images. None (and none known): the hasher takes feature vectors only.
    resize : bool or None
        Resize images of another size, and convert grey to colour or back, to the model's input
        (see :func:`~hashlearn.encoding.as_model_array`); False refuses them. None: as the model
        says (``resize_images_``, True for models fitted on a folder of pictures resized to one
        size), else False.

    Attributes
    ----------
    n_bits : int
    code_size : int
        Bytes per packed code.
    image_shape : tuple of int or None
        ``(h, w, c)`` of the images taken; None when images are not.
    n_features : int or None
        ``h * w * c``: the length of a flattened image.
    resize : bool
        Whether images of another size or colour are resized and converted (else refused).

    Raises
    ------
    NotFittedError
        The hasher is not fitted.
    InvalidInputError
        ``image_shape`` is malformed, has other than 1 or 3 channels, or does not fit the hasher.
    """

    def __init__(
        self,
        hasher: Hasher,
        image_shape: tuple[int, ...] | None = None,
        *,
        resize: bool | None = None,
    ) -> None:
        hasher._check_fitted()
        self.resize = bool(getattr(hasher, "resize_images_", False) if resize is None else resize)
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
        """Whether images can be encoded (the input image shape is known)."""
        return self.image_shape is not None

    def _check_fits_hasher(self) -> None:
        try:
            self.hasher.encode(np.zeros((1, self.n_features), dtype=np.float32))
        except InvalidInputError as exc:
            raise InvalidInputError(
                f"image shape {'x'.join(map(str, self.image_shape or ()))} does not fit the model: "
                f"{exc}"
            ) from None

    def image_array(self, image: Any) -> np.ndarray:
        """A decoded image as this model's input ``float32 (h, w, c)`` (see
        :func:`~hashlearn.encoding.as_model_array`; ``image_shape`` must be known).

        Raises
        ------
        InvalidInputError
            The image's size or colour differs from the model's input and ``resize`` is off.
        """
        assert self.image_shape is not None
        return as_model_array(image, self.image_shape, resize=self.resize)

    def encode(self, batch: np.ndarray) -> np.ndarray:
        """Codes ``uint8 (n, code_size)`` of a batch of the hasher's inputs: images
        ``(n, h, w, c)`` or feature vectors ``(n, d)``.

        Raises
        ------
        InvalidInputError
            The hasher refuses the batch, or returns codes of another width.
        """
        return check_codes(self.hasher.encode(batch), self.n_bits)
