"""Small pictures of the items for the web page, made on first request and kept on disk.

A thumbnail is the item's image shrunk so its longest side is at most ``max_side`` pixels (never
enlarged) and encoded as JPEG in at most ``max_bytes`` bytes; an image already that small (PNG or
JPEG, both sides within ``max_side``, the file within ``max_bytes``, no EXIF rotation) is its own
thumbnail, byte for byte. The source is decoded by :func:`hashlearn.encoding.read_image`, with the
same byte and pixel limits as uploads.

Cache folder layout (``DATA_DIR/thumbnails`` by default, beside the store of writes)::

    thumbnails/ID-FINGERPRINT.thumb   the thumbnail of item ID, PNG or JPEG bytes

``FINGERPRINT`` is a digest of the source file's path, size and modification time and of the
thumbnail settings, so a changed image gets a new file (the old one is removed) and the same
digest serves as the HTTP ``ETag``. File names are built from the integer id and the hex digest
only, never from a request's text. Each file is written to a temporary name and renamed into
place: concurrent requests for one thumbnail may both make it, and a reader sees either no file
or a complete one.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hashlearn._io import atomic_write
from hashlearn.encoding import TooLargeError, image_header, read_image
from hashlearn.exceptions import InvalidInputError
from hashlearn.serve.decoding import DecodeBudget, describe_header
from hashlearn.serve.errors import ItemImageError, ItemNotFoundError

__all__ = ["THUMBNAIL_MAX_BYTES", "THUMBNAIL_SIDE", "Thumbnail", "ThumbnailCache"]

THUMBNAIL_SIDE = 256
"""Default longest side of a thumbnail, in pixels."""
THUMBNAIL_MAX_BYTES = 48 * 1024
"""Default largest thumbnail file, in bytes."""

_FORMAT_VERSION = "1"  # changes when the way thumbnails are made changes: new fingerprints
_QUALITIES = (85, 75, 60, 45, 30)  # JPEG qualities tried in turn until the file fits
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Thumbnail:
    """A thumbnail as answered: its bytes, media type and entity tag (quoted, for ``ETag``)."""

    data: bytes
    media_type: str
    etag: str


class ThumbnailCache:
    """Makes thumbnails of item images and keeps them in a folder.

    Parameters
    ----------
    directory : path
        The cache folder; created when missing.
    max_image_bytes, max_image_pixels : int
        Limits of the source images (as for uploads, see
        :class:`~hashlearn.serve.limits.ServeLimits`).
    max_side : int
        Longest side of a thumbnail, pixels.
    max_bytes : int
        Largest thumbnail file, bytes.
    budget : DecodeBudget or None
        Held while a source image is decoded and shrunk (shared with the uploads' decodes).

    Raises
    ------
    InvalidInputError
        ``directory`` cannot be created, or a size is not positive.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_image_bytes: int,
        max_image_pixels: int,
        max_side: int = THUMBNAIL_SIDE,
        max_bytes: int = THUMBNAIL_MAX_BYTES,
        budget: DecodeBudget | None = None,
    ) -> None:
        if max_side < 16 or max_bytes < 4096:
            raise InvalidInputError(
                f"thumbnails need max_side >= 16 and max_bytes >= 4096, got {max_side} and "
                f"{max_bytes}"
            )
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidInputError(
                f"cannot create the thumbnail folder {os.fspath(self.directory)!r}: {exc}"
            ) from None
        self.max_image_bytes = max_image_bytes
        self.max_image_pixels = max_image_pixels
        self.max_side = max_side
        self.max_bytes = max_bytes
        self.budget = budget

    def etag(self, item_id: int, source: Path) -> str:
        """The entity tag of the thumbnail of ``source`` (quoted), from the file's metadata only.

        Raises
        ------
        ItemNotFoundError
            ``source`` no longer exists.
        """
        try:
            stat = source.stat()
        except FileNotFoundError:
            raise ItemNotFoundError(f"item {item_id} has no image") from None
        key = (
            f"{_FORMAT_VERSION}|{self.max_side}|{self.max_bytes}|{self.max_image_pixels}|"
            f"{int(item_id)}|{os.fspath(source)}|{stat.st_size}|{stat.st_mtime_ns}"
        )
        return '"' + hashlib.sha256(key.encode()).hexdigest()[:24] + '"'

    def get(self, item_id: int, source: Path) -> Thumbnail:
        """The thumbnail of item ``item_id`` whose image file is ``source``: read from the cache,
        or made and stored.

        Raises
        ------
        ItemNotFoundError
            ``source`` no longer exists.
        ItemImageError
            ``source`` is not a PNG or JPEG image, does not decode, or is over the limits.
        """
        etag = self.etag(item_id, source)
        path = self.directory / f"{int(item_id)}-{etag.strip(chr(34))}.thumb"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            data = self._make(item_id, source)
            with atomic_write(path, clean=False) as handle:  # the store cleans this folder
                handle.write(data)
            self._remove_others(item_id, keep=path)
        return Thumbnail(data, _media_type(data), etag)

    def forget(self, item_id: int) -> None:
        """Remove the cached thumbnails of ``item_id`` (its item was deleted)."""
        self._remove_others(item_id, keep=None)

    def _remove_others(self, item_id: int, keep: Path | None) -> None:
        for old in self.directory.glob(f"{int(item_id)}-*.thumb"):
            if old != keep:
                with contextlib.suppress(FileNotFoundError):
                    old.unlink()

    def _make(self, item_id: int, source: Path) -> bytes:
        try:
            data = source.read_bytes()
        except FileNotFoundError:
            raise ItemNotFoundError(f"item {item_id} has no image") from None
        try:
            header = image_header(
                data, max_bytes=self.max_image_bytes, max_pixels=self.max_image_pixels
            )
            # copies while shrinking: at most what converting it to a small RGB array holds
            cost = header.conversion_bytes(3, (self.max_side, self.max_side))
            holding = (
                self.budget.hold(cost, describe_header(header))
                if self.budget is not None
                else contextlib.nullcontext()
            )
            with holding:
                return self._decode_and_shrink(item_id, data)
        except TooLargeError as exc:  # over the limits, or over the decode budget alone
            raise ItemImageError(f"the image of item {item_id} cannot be shown: {exc}") from None
        except ItemImageError:
            raise
        except InvalidInputError as exc:
            raise ItemImageError(f"the image of item {item_id} cannot be shown: {exc}") from None

    def _decode_and_shrink(self, item_id: int, data: bytes) -> bytes:
        try:
            decoded = read_image(
                data, max_bytes=self.max_image_bytes, max_pixels=self.max_image_pixels
            )
        except InvalidInputError as exc:  # TooLargeError too
            raise ItemImageError(f"the image of item {item_id} cannot be shown: {exc}") from None
        image = decoded.image
        rotated = image.getexif().get(0x0112, 1) not in (1, None)  # EXIF orientation
        if max(image.size) <= self.max_side and len(data) <= self.max_bytes and not rotated:
            return data
        return self._shrink(image)

    def _shrink(self, image: Any) -> bytes:
        from PIL import Image, ImageOps

        image = _as_8bit(ImageOps.exif_transpose(image))
        side = self.max_side
        while True:
            small = image.copy()
            small.thumbnail((side, side), Image.Resampling.LANCZOS)
            for quality in _QUALITIES:
                buffer = io.BytesIO()
                small.save(buffer, "JPEG", quality=quality, optimize=True)
                if buffer.tell() <= self.max_bytes:
                    return buffer.getvalue()
            side = max(16, side * 3 // 4)  # still too large at the lowest quality: smaller


def _as_8bit(image: Any) -> Any:
    """``image`` as 8-bit grey (``L``) or ``RGB``, transparency laid over white."""
    from PIL import Image

    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):  # 16-bit grey: scale, not clip
        values = np.asarray(image, dtype=np.float32) / 65535.0
        return Image.fromarray(np.round(np.clip(values, 0, 1) * 255).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        return image.convert("RGB")
    return image.convert("L" if image.mode in _GREY_MODES else "RGB")


def _media_type(data: bytes) -> str:
    return "image/png" if data.startswith(_PNG_MAGIC) else "image/jpeg"
