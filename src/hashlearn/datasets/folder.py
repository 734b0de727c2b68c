"""Image folders: one sub-folder per class, read into a :class:`Dataset`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from hashlearn._validation import check_int
from hashlearn.datasets.base import Dataset
from hashlearn.exceptions import FileFormatError, InvalidInputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
_GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def load_image_folder(
    root: str | os.PathLike[str],
    *,
    image_size: tuple[int, int] | None = None,
    color: str = "auto",
    verbose: bool = True,
) -> Dataset:
    """Read ``root/<class name>/<image file>`` into a labelled :class:`Dataset`.

    Parameters
    ----------
    root : folder with one sub-folder per class; class ``i`` is the ``i``-th sub-folder name in
        sorted order (``Dataset.classes`` lists them). Files with other suffixes than
        ``IMAGE_SUFFIXES`` and hidden files are skipped.
    image_size : ``(height, width)`` to resize every image to (bilinear); ``None`` requires all
        images to have one size.
    color : ``"grey"`` (``X`` of shape (n, h, w)), ``"rgb"`` ((n, h, w, 3)) or ``"auto"`` (rgb when
        any image has colour channels).
    verbose : progress bar when there are more than 2,000 files.

    Returns
    -------
    Dataset with ``X`` float32 in [0, 1] and ``y`` int64 class indices.

    Raises
    ------
    InvalidInputError for a missing root, no class folders, no images or a bad parameter;
    FileFormatError naming the file for an unreadable, truncated or oversized image, or one whose
    size differs when ``image_size`` is None.
    """
    from PIL import Image, UnidentifiedImageError

    root = Path(root)
    if not root.is_dir():
        raise InvalidInputError(f"image folder {str(root)!r} does not exist or is not a folder")
    if color not in ("auto", "grey", "rgb"):
        raise InvalidInputError(f"color must be 'auto', 'grey' or 'rgb', got {color!r}")
    if image_size is not None:
        if not isinstance(image_size, (tuple, list)) or len(image_size) != 2:
            raise InvalidInputError(f"image_size must be (height, width), got {image_size!r}")
        image_size = (
            check_int(image_size[0], "image height", minimum=1, maximum=8192),
            check_int(image_size[1], "image width", minimum=1, maximum=8192),
        )
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise InvalidInputError(
            f"{str(root)!r} has no class sub-folders (expected root/<class>/<image>)"
        )
    files: list[tuple[Path, int]] = []
    for label, name in enumerate(classes):
        files += [
            (p, label)
            for p in sorted((root / name).iterdir())
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
        ]
    if not files:
        raise InvalidInputError(
            f"{str(root)!r} holds no images with suffixes {', '.join(IMAGE_SUFFIXES)}"
        )

    images: list[np.ndarray] = []
    modes: list[bool] = []
    for path, _ in tqdm(
        files, desc="reading images", unit="image", disable=not verbose or len(files) <= 2000
    ):
        try:
            with Image.open(path) as image:
                image.load()
                grey = image.mode in _GREY_MODES
                if image_size is not None:
                    image = image.resize((image_size[1], image_size[0]), Image.Resampling.BILINEAR)
                array = np.asarray(
                    image.convert("L" if color == "grey" or (color == "auto" and grey) else "RGB")
                )
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError) as exc:
            raise FileFormatError(f"cannot read image {str(path)!r}: {exc}") from None
        if images and array.shape[:2] != images[0].shape[:2]:
            raise FileFormatError(
                f"image {str(path)!r} is {array.shape[1]}x{array.shape[0]} but "
                f"{str(files[0][0])!r} is {images[0].shape[1]}x{images[0].shape[0]}; pass image_size"
            )
        images.append(array)
        modes.append(grey)
    if color == "rgb" or (color == "auto" and not all(modes)):
        images = [a if a.ndim == 3 else np.repeat(a[..., None], 3, axis=2) for a in images]
    X = np.stack(images).astype(np.float32) / 255.0
    y = np.array([label for _, label in files], dtype=np.int64)
    return Dataset(
        name=root.name,
        X=X,
        y=y,
        description=f"image folder {str(root)!r}: {len(y)} images in {len(classes)} classes",
        classes=tuple(classes),
    )
