"""Which no-download default finds near-duplicate colour photos best: measured on real photos.

The photos are the colour pictures installed packages ship (scikit-image's sample data,
scikit-learn's two sample images, matplotlib's Grace Hopper): 12 colour photos, and scikit-image's 10 grey photos (camera, coins,
moon, text...) as RGB: 22 photos. Each model is fitted,
without labels, on a training set made from them that holds none of the measured edits: every
photo and 15 random crops of it (50-90% of each side, at a random place, some mirrored
vertically) -> 352 images. Then ``hashlearn.encoding.measure_robustness`` edits every photo (half
size, JPEG q30, 80% centre crop, 5 degree rotation, horizontal mirror, brightness x1.3 and x0.7)
and searches each copy among the 22 originals' codes.

Run: ``python benchmarks/photo_near_duplicates.py [--bits 32] [--radius R]``; prints one table per
model and a summary (recall and precision at the radius over all copies but the mirrored ones,
mean rank). The figures quoted in docs/photos.md come from this script.
"""

from __future__ import annotations

import argparse
import pathlib
import time

import numpy as np
from PIL import Image

from hashlearn import create_hasher
from hashlearn.encoding import measure_robustness
from hashlearn.features import create_features
from hashlearn.hashers import FeatureHasher

SKIMAGE = (
    "astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field",
    "stereo_motorcycle", "colorwheel", "retina",
)  # fmt: skip
SKIMAGE_GREY = (
    "brick",
    "camera",
    "cell",
    "clock",
    "coins",
    "grass",
    "gravel",
    "moon",
    "page",
    "text",
)


def shipped_photos(max_side: int = 256, grey: bool = True) -> list[Image.Image]:
    import matplotlib
    import skimage.data
    from sklearn.datasets import load_sample_images

    arrays = []
    for name in SKIMAGE:
        array = getattr(skimage.data, name)()
        arrays.append(array[0] if isinstance(array, tuple) else array)
    arrays += list(load_sample_images().images)
    photos = [Image.fromarray(a).convert("RGB") for a in arrays]
    hopper = pathlib.Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if hopper.is_file():
        photos.append(Image.open(hopper).convert("RGB"))
    if grey:
        photos += [Image.fromarray(getattr(skimage.data, n)()).convert("RGB") for n in SKIMAGE_GREY]
    out = []
    for photo in photos:
        scale = max_side / max(photo.size)
        out.append(photo.resize((round(photo.width * scale), round(photo.height * scale))))
    return out


def training_set(photos: list[Image.Image], side: int, crops: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    images = []
    for photo in photos:
        images.append(photo)
        for _ in range(crops):
            w, h = photo.size
            cw, ch = round(w * rng.uniform(0.5, 0.9)), round(h * rng.uniform(0.5, 0.9))
            left, top = rng.integers(0, w - cw + 1), rng.integers(0, h - ch + 1)
            crop = photo.crop((left, top, left + cw, top + ch))
            if rng.random() < 0.3:
                crop = crop.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
            images.append(crop)
    return np.stack(
        [
            np.asarray(i.resize((side, side), Image.Resampling.BILINEAR), np.float32) / 255.0
            for i in images
        ]
    )


def random_cnn() -> object:
    """The embedding extractor on a randomly initialised network: the project's ``SmallResNet``
    (widths 16/32/64, 64 pooled features), since no pretrained weights can be fetched here and
    torchvision's published wheels do not load beside the CPU build of torch."""
    from hashlearn.features.embeddings import PretrainedEmbedding
    from hashlearn.hashers.deep.backbones import SmallResNet

    class RandomSmallResNet(PretrainedEmbedding):
        name = family = "small-resnet"

        def _build(self) -> object:
            return SmallResNet((3, 32, 32), 10)

    return RandomSmallResNet(model="small-resnet", weights=None, image_size=64, verbose=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, default=32)
    parser.add_argument("--radius", type=int, default=None, help="default: bits // 8")
    parser.add_argument("--crops", type=int, default=15)
    args = parser.parse_args()
    radius = args.bits // 8 if args.radius is None else args.radius
    photos = shipped_photos()
    options = {
        "hog+itq (64x64)": (lambda: create_features("hog"), 64),
        "hog+itq (128x128)": (lambda: create_features("hog"), 128),
        "gist+l2-center+itq (64x64)": (lambda: create_features("gist+l2-center"), 64),
        "pixels+itq (32x32)": (lambda: create_features("pixels"), 32),
        "random small-resnet+itq (64x64)": (random_cnn, 64),
    }
    summary = []
    for label, (features, side) in options.items():
        X = training_set(photos, side, args.crops)
        start = time.perf_counter()
        model = FeatureHasher(features(), create_hasher("itq", n_bits=args.bits, random_state=0))
        model.fit(X)
        fit_s = time.perf_counter() - start
        for flip in (False, True):
            start = time.perf_counter()
            result = measure_robustness(model, photos, radius=radius, flip_invariant=flip)
            name = label + (" flip-invariant" if flip else "")
            print(f"\n{name}: {args.bits} bits, radius {radius}\n{result.table()}")
            keep = [t for t, n in enumerate(result.transforms) if n != "flip"]
            true = (result.distances[keep] <= radius).sum()
            false = result.others[keep].sum()
            summary.append(
                (
                    name,
                    true / result.distances[keep].size,
                    true / max(1, true + false),
                    float(result.ranks[keep].mean()),
                    float((result.distances[result.transforms.index("flip")] <= radius).mean()),
                    fit_s,
                    time.perf_counter() - start,
                )
            )
    print(
        f"\nsummary ({len(photos)} photos, 6 edits without the mirror, {args.bits} bits, r={radius})"
    )
    print(f"{'model':48s} recall  precision  mean_rank  flip_recall  fit_s  measure_s")
    for name, recall, precision, rank, flip, fit_s, measure_s in summary:
        print(
            f"{name:48s} {recall:6.2f}  {precision:9.2f}  {rank:9.2f}  {flip:11.2f}  "
            f"{fit_s:5.1f}  {measure_s:9.1f}"
        )


if __name__ == "__main__":
    main()
