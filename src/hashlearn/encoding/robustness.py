"""How well a model finds near-duplicates: edited copies of photos searched among the originals.

For each photo, :func:`measure_robustness` makes one copy per transform with Pillow (half size,
JPEG at quality 30, an 80% centre crop, a 5 degree rotation, a horizontal mirror, brighter and
darker), encodes the originals and the copies with the model (each decoded and resized to the
model's input exactly as :func:`~hashlearn.encoding.encode_image_files` does with ``resize=True``:
half-size and cropped copies differ in size by design, so they are always resized), and searches every
copy among all the originals' codes. Per transform it reports:

- ``within_radius``: the share of copies whose original is within Hamming distance ``radius``
  (what a hash-table lookup or ``hashlearn dedup`` at that radius finds);
- ``top1``: the share of copies whose original is strictly the nearest original;
- ``median_rank`` / ``mean_rank``: the original's rank among all originals, by distance to the
  copy, ties counted half (``1 + #nearer + #tied / 2``, the mean position under a random order of
  the tied: 1 when the original alone is nearest, ``(n + 1) / 2`` when all codes are equal);
- ``mean_distance``: the mean Hamming distance from copy to original;
- ``others_within_radius``: the mean number of *other* originals within ``radius`` of a copy
  (false matches: a lookup at that radius finds ``within_radius`` true and this many false ones).

``flip_invariant=True`` encodes every copy twice, as it is and mirrored left to right, and keeps
the nearer of the two distances to each original: a mirrored copy is then at distance 0 from its
original (mirroring it back restores the exact pixels), for any model.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hashlearn._progress import progress
from hashlearn._validation import check_int
from hashlearn.codes import hamming_distance
from hashlearn.encoding.encoder import ImageEncoder
from hashlearn.encoding.files import (
    MAX_FILE_BYTES,
    MAX_FILE_PIXELS,
    list_image_files,
)
from hashlearn.encoding.images import as_model_array, read_image
from hashlearn.exceptions import InvalidInputError
from hashlearn.hashers import Hasher

__all__ = [
    "DEFAULT_TRANSFORMS",
    "TRANSFORMS",
    "RobustnessResult",
    "measure_robustness",
]


def _half(image: Any) -> Any:
    from PIL import Image

    size = (max(1, image.width // 2), max(1, image.height // 2))
    return image.resize(size, Image.Resampling.BILINEAR)


def _jpeg(quality: int) -> Callable[[Any], Any]:
    def transform(image: Any) -> Any:
        from PIL import Image

        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        return Image.open(buffer).convert(image.mode)

    return transform


def _crop(share: float) -> Callable[[Any], Any]:
    def transform(image: Any) -> Any:
        w, h = image.size
        cw, ch = max(1, round(w * share)), max(1, round(h * share))
        left, top = (w - cw) // 2, (h - ch) // 2
        return image.crop((left, top, left + cw, top + ch))

    return transform


def _rotate(degrees: float) -> Callable[[Any], Any]:
    def transform(image: Any) -> Any:
        from PIL import Image

        return image.rotate(degrees, resample=Image.Resampling.BILINEAR)  # corners black

    return transform


def _flip(image: Any) -> Any:
    from PIL import Image

    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)


def _brightness(factor: float) -> Callable[[Any], Any]:
    def transform(image: Any) -> Any:
        from PIL import ImageEnhance

        return ImageEnhance.Brightness(image).enhance(factor)

    return transform


TRANSFORMS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "identity": (lambda image: image.copy(), "the photo itself (a check: distance 0, rank 1)"),
    "half": (_half, "resized to half its width and height (bilinear)"),
    "jpeg30": (_jpeg(30), "re-encoded as JPEG at quality 30"),
    "crop80": (_crop(0.8), "the centre 80% of its width and height"),
    "rotate5": (_rotate(5.0), "rotated 5 degrees anticlockwise, same size, corners black"),
    "flip": (_flip, "mirrored left to right"),
    "brighter": (_brightness(1.3), "brightness x 1.3 (Pillow ImageEnhance)"),
    "darker": (_brightness(0.7), "brightness x 0.7 (Pillow ImageEnhance)"),
}
"""Transform name -> (function of a Pillow image, what it does)."""

DEFAULT_TRANSFORMS = ("half", "jpeg30", "crop80", "rotate5", "flip", "brighter", "darker")

COLUMNS = (
    "transform",
    "copies",
    "within_radius",
    "top1",
    "median_rank",
    "mean_rank",
    "mean_distance",
    "others_within_radius",
)


@dataclass(frozen=True)
class RobustnessResult:
    """Distances and ranks of every transformed copy to its original.

    Attributes
    ----------
    names : list of str, one per photo (file paths relative to the folder, or ``"0"``, ``"1"``...).
    transforms : tuple of str, the transforms in order.
    distances : int32 (n_transforms, n_photos), Hamming distance from each copy to its original.
    ranks : float64 (n_transforms, n_photos), the original's rank among all originals (ties
        counted half).
    others : int32 (n_transforms, n_photos), other originals within ``radius`` of each copy.
    radius : int, the Hamming radius of ``within_radius``.
    n_bits : int
    flip_invariant : bool
    """

    names: list[str]
    transforms: tuple[str, ...]
    distances: np.ndarray
    ranks: np.ndarray
    others: np.ndarray
    radius: int
    n_bits: int
    flip_invariant: bool

    def rows(self) -> list[dict[str, Any]]:
        """One summary dict per transform, keys :data:`COLUMNS`."""
        rows = []
        for t, name in enumerate(self.transforms):
            distances, ranks = self.distances[t], self.ranks[t]
            rows.append(
                {
                    "transform": name,
                    "copies": len(distances),
                    "within_radius": float(np.mean(distances <= self.radius)),
                    "top1": float(np.mean(ranks == 1.0)),
                    "median_rank": float(np.median(ranks)),
                    "mean_rank": float(np.mean(ranks)),
                    "mean_distance": float(np.mean(distances)),
                    "others_within_radius": float(np.mean(self.others[t])),
                }
            )
        return rows

    def table(self) -> str:
        """The summary as an aligned plain-text table."""
        from hashlearn._table import format_table

        headers = [c.replace("radius", f"r{self.radius}") for c in COLUMNS]
        body = [
            [
                row["transform"],
                row["copies"],
                f"{row['within_radius']:.2f}",
                f"{row['top1']:.2f}",
                f"{row['median_rank']:g}",
                f"{row['mean_rank']:.2f}",
                f"{row['mean_distance']:.2f}",
                f"{row['others_within_radius']:.2f}",
            ]
            for row in self.rows()
        ]
        return format_table(headers, body)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: the settings, the summary rows and the per-photo distances and ranks (what
        the HTML report's robustness section reads)."""
        return {
            "kind": "hashlearn robustness",
            "radius": self.radius,
            "n_bits": self.n_bits,
            "flip_invariant": self.flip_invariant,
            "n_photos": len(self.names),
            "transforms": {name: TRANSFORMS[name][1] for name in self.transforms},
            "rows": self.rows(),
            "names": list(self.names),
            "distances": self.distances.tolist(),
            "ranks": self.ranks.tolist(),
            "others": self.others.tolist(),
        }

    def write(self, path: str | os.PathLike[str]) -> Path:
        """The summary as ``.csv`` (one row per transform) or everything as ``.json``."""
        import json

        out = Path(path)
        if out.suffix.lower() == ".json":
            out.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        elif out.suffix.lower() == ".csv":
            with open(out, "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=list(COLUMNS))
                writer.writeheader()
                writer.writerows(self.rows())
        else:
            raise InvalidInputError(f"write the results to a .csv or .json file, not {str(out)!r}")
        return out


def _load_photos(images: Any) -> tuple[list[str], list[Any]]:
    from PIL import Image

    if isinstance(images, (str, os.PathLike)):
        folder = Path(images)
        files = list_image_files(folder)
        if not files:
            raise InvalidInputError(f"no .png, .jpg or .jpeg files in {os.fspath(images)!r}")
        photos = []
        for path in files:
            try:
                data = path.read_bytes()
                photo = read_image(data, max_bytes=MAX_FILE_BYTES, max_pixels=MAX_FILE_PIXELS)
            except InvalidInputError as exc:
                raise InvalidInputError(f"{path}: {exc}") from None
            photos.append(photo.image)
        return [p.relative_to(folder).as_posix() for p in files], photos
    photos = list(images)
    for i, photo in enumerate(photos):
        if not isinstance(photo, Image.Image):
            raise InvalidInputError(
                f"images must be a folder or a list of Pillow images; item {i} is "
                f"{type(photo).__name__}"
            )
    return [str(i) for i in range(len(photos))], photos


def _as_rgb(photo: Any) -> Any:
    from PIL import Image, ImageOps

    photo = ImageOps.exif_transpose(photo)
    if photo.mode in ("RGBA", "LA", "PA") or "transparency" in photo.info:
        rgba = photo.convert("RGBA")
        photo = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
    return photo.convert("RGB")


def measure_robustness(
    model: Hasher,
    images: str | os.PathLike[str] | Sequence[Any],
    *,
    transforms: Sequence[str] = DEFAULT_TRANSFORMS,
    radius: int = 2,
    flip_invariant: bool = False,
    image_shape: tuple[int, ...] | None = None,
    batch_size: int = 64,
    verbose: bool = False,
) -> RobustnessResult:
    """Search transformed copies of photos among the originals' codes (see the module's text).

    Parameters
    ----------
    model : a fitted hasher that takes images (a deep hasher, a ``FeatureHasher``...).
    images : a folder of PNG / JPEG photos (searched recursively), or a list of Pillow images.
    transforms : names from :data:`TRANSFORMS`; default :data:`DEFAULT_TRANSFORMS`.
    radius : Hamming radius of ``within_radius``.
    flip_invariant : also encode each copy mirrored and keep the nearer distance.
    image_shape : ``(h, w[, c])`` for a model fitted on flattened pixel vectors.
    batch_size : images encoded at once.
    verbose : a progress bar over the transforms.

    Returns
    -------
    RobustnessResult

    Raises
    ------
    InvalidInputError : an unknown transform, fewer than 2 photos, a file that does not decode, a
        model that does not take images, or a bad ``radius`` / ``batch_size``.
    """
    names = list(transforms)
    unknown = [t for t in names if t not in TRANSFORMS]
    if unknown or not names:
        raise InvalidInputError(
            f"unknown transform(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"choose from {', '.join(TRANSFORMS)}"
        )
    radius = check_int(radius, "radius", minimum=0)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    encoder = ImageEncoder(model, image_shape)
    if encoder.image_shape is None:
        raise InvalidInputError(
            f"this {model.name!r} model takes feature vectors, not images; give the image shape "
            "of a model fitted on flattened pixels"
        )
    shape = encoder.image_shape

    def encode(photos: list[Any]) -> np.ndarray:
        codes = []
        for start in range(0, len(photos), batch_size):
            chunk = photos[start : start + batch_size]
            batch = np.stack([as_model_array(p, shape, resize=True) for p in chunk])
            codes.append(encoder.encode(batch))
        return np.concatenate(codes)

    photo_names, photos = _load_photos(images)
    if len(photos) < 2:
        raise InvalidInputError(f"measuring robustness needs at least 2 photos, got {len(photos)}")
    photos = [_as_rgb(p) for p in photos]
    originals = encode(photos)
    n = len(photos)
    distances = np.empty((len(names), n), dtype=np.int32)
    ranks = np.empty((len(names), n), dtype=np.float64)
    others = np.empty((len(names), n), dtype=np.int32)
    diagonal = np.arange(n)
    for t, name in enumerate(
        progress(names, desc="robustness", unit="transform", disable=not verbose)
    ):
        copies = [TRANSFORMS[name][0](p) for p in photos]
        table = hamming_distance(encode(copies), originals)
        if flip_invariant:
            table = np.minimum(
                table, hamming_distance(encode([_flip(c) for c in copies]), originals)
            )
        own = table[diagonal, diagonal]
        nearer = (table < own[:, None]).sum(axis=1)
        tied = (table == own[:, None]).sum(axis=1) - 1  # the original itself is not a tie
        distances[t] = own
        ranks[t] = 1.0 + nearer + tied / 2.0
        others[t] = (table <= radius).sum(axis=1) - (own <= radius)
    return RobustnessResult(
        names=photo_names,
        transforms=tuple(names),
        distances=distances,
        ranks=ranks,
        others=others,
        radius=radius,
        n_bits=int(model.n_bits),
        flip_invariant=bool(flip_invariant),
    )
