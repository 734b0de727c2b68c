"""Real colour photos from the images that installed packages ship (scikit-image, scikit-learn,
matplotlib), as Pillow images or arrays, for the tests of photo features and near-duplicates."""

from __future__ import annotations

import functools
import pathlib

import numpy as np
from PIL import Image

# scikit-image's sample photos (``skimage.data.<name>``); ``cat`` is ``chelsea`` again, left out.
SKIMAGE_PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "immunohistochemistry",
    "hubble_deep_field",
    "stereo_motorcycle",
    "colorwheel",
    "retina",
)


@functools.cache
def _originals() -> tuple[tuple[str, Image.Image], ...]:
    import matplotlib
    import skimage.data
    from sklearn.datasets import load_sample_images

    photos = []
    for name in SKIMAGE_PHOTOS:
        array = getattr(skimage.data, name)()
        if isinstance(array, tuple):  # stereo_motorcycle: (left, right, disparity)
            array = array[0]
        photos.append((name, Image.fromarray(array).convert("RGB")))
    samples = load_sample_images()
    for path, array in zip(samples.filenames, samples.images):
        photos.append((pathlib.Path(path).stem, Image.fromarray(array)))
    hopper = pathlib.Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if hopper.is_file():
        photos.append(("grace_hopper", Image.open(hopper).convert("RGB")))
    return tuple(photos)


def photos(max_side: int = 160) -> list[tuple[str, Image.Image]]:
    """``(name, RGB image)`` of every shipped colour photo (12 with matplotlib's), each shrunk so
    that its longer side is ``max_side`` pixels (aspect ratio kept)."""
    out = []
    for name, image in _originals():
        scale = max_side / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        out.append((name, image.resize(size, Image.Resampling.LANCZOS)))
    return out


def photo_array(side: int = 64, n: int | None = None) -> np.ndarray:
    """The photos as ``float32 (n, side, side, 3)`` in [0, 1] (squashed to squares)."""
    images = [image.resize((side, side), Image.Resampling.BILINEAR) for _, image in photos()]
    return np.stack([np.asarray(image, np.float32) / 255.0 for image in images[:n]])


def write_photo_folder(folder: pathlib.Path, max_side: int = 160) -> list[pathlib.Path]:
    """Each photo saved as ``folder/<name>.png``; returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, image in photos(max_side):
        path = folder / f"{name}.png"
        image.save(path)
        paths.append(path)
    return paths
