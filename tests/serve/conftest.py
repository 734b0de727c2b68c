"""Fixtures of the in-process service tests: LSH on the 8x8 digits, served with labels and images;
and a folder of real colour photos without labels, with a model fitted on it."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from _serve_support import TOKEN, lsh_files, open_test_service


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """LSH (12 bits) on the 8x8 digits, indexed with ids 100.., labels, and PNGs of 30 items."""
    return lsh_files(tmp_path_factory.mktemp("serve"))


@pytest.fixture
def service(files, tmp_path):
    service = open_test_service(files, tmp_path / "data")
    yield service
    service.close()


@pytest.fixture
def client(service):
    pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
    with warnings.catch_warnings():  # starlette's notice about its test client's HTTP library
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient
    from hashlearn.serve import create_app

    return TestClient(create_app(service, token=TOKEN))


# ---------------------------------------------------------------------- an unlabelled photo folder
PHOTO_SHAPE = (64, 64, 3)  # what the photo model takes


def _save(image, path, quality=92):
    """Save ``uint8 (h, w[, c])`` as PNG or JPEG by the suffix of ``path``."""
    from PIL import Image

    picture = Image.fromarray(image)
    if path.suffix == ".png":
        picture.save(path)
    else:
        picture.convert("RGB").save(path, quality=quality)


def build_photo_folder(folder):
    """24 real colour photos without labels: 10 that scikit-image and scikit-learn ship (as JPEG,
    two as PNG) and 14 copies of them (resized, re-encoded, cropped, flipped), some with long
    names. Returns the folder."""
    from PIL import Image
    from skimage import data
    from sklearn.datasets import load_sample_images

    folder.mkdir(parents=True, exist_ok=True)
    samples = load_sample_images()
    photos = {
        "astronaut.jpg": data.astronaut(),
        "coffee.jpg": data.coffee(),
        "chelsea.jpg": data.chelsea(),
        "rocket.jpg": data.rocket(),
        "hubble_deep_field.jpg": data.hubble_deep_field(),
        "immunohistochemistry.png": data.immunohistochemistry(),
        "retina.jpg": data.retina(),
        "colorwheel.png": data.colorwheel(),
        "china.jpg": samples.images[0],
        "flower.jpg": samples.images[1],
    }
    for name, image in photos.items():
        _save(image, folder / name, quality=95)

    def resized(image, factor):
        h, w = image.shape[:2]
        size = (max(1, round(w * factor)), max(1, round(h * factor)))
        return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))

    def cropped(image, share):
        h, w = image.shape[:2]
        dh, dw = round(h * (1 - share) / 2), round(w * (1 - share) / 2)
        return image[dh : h - dh, dw : w - dw]

    copies = {
        "astronaut-half-size.jpg": resized(photos["astronaut.jpg"], 0.5),
        "a very long file name of the coffee photograph resized to a third of its size.jpg": (
            resized(photos["coffee.jpg"], 1 / 3)
        ),
        "chelsea_the_cat_reencoded_at_jpeg_quality_30_for_the_near_duplicate_check.jpg": (
            photos["chelsea.jpg"]
        ),
        "rocket-crop-80.jpg": cropped(photos["rocket.jpg"], 0.8),
        "rocket-flipped.jpg": photos["rocket.jpg"][:, ::-1],
        "china-small.png": resized(photos["china.jpg"], 0.25),
        "flower-crop-70.jpg": cropped(photos["flower.jpg"], 0.7),
        "flower-flipped.jpg": photos["flower.jpg"][:, ::-1],
        "hubble-half-size.jpg": resized(photos["hubble_deep_field.jpg"], 0.5),
        "retina-quarter.jpg": resized(photos["retina.jpg"], 0.25),
        "immunohistochemistry-crop.jpg": cropped(photos["immunohistochemistry.png"], 0.8),
        "coffee-flipped.jpg": photos["coffee.jpg"][:, ::-1],
        "astronaut-crop-80.jpg": cropped(photos["astronaut.jpg"], 0.8),
        "colorwheel-half.png": resized(photos["colorwheel.png"], 0.5),
    }
    for name, image in copies.items():
        _save(image, folder / name, quality=30 if "quality_30" in name else 90)
    return folder


@pytest.fixture(scope="session")
def photo_files(tmp_path_factory):
    """The photo folder, a 16-bit HOG + ITQ model fitted on it (and its mirror images), and the
    folder made ready to serve (codes, index); no labels anywhere."""
    from hashlearn import create_hasher
    from hashlearn.encoding import prepare_folder
    from hashlearn.encoding.files import list_image_files, read_image_file
    from hashlearn.features import create_features
    from hashlearn.hashers import FeatureHasher

    root = tmp_path_factory.mktemp("photos")
    folder = build_photo_folder(root / "photos")
    files = list_image_files(folder)
    X = np.stack([read_image_file(path, PHOTO_SHAPE, resize=True) for path in files])
    X = np.concatenate([X, X[:, :, ::-1]])  # 48 images: enough for 16 bits
    model = FeatureHasher(create_features("hog"), create_hasher("itq", n_bits=16, random_state=0))
    model.fit(X)
    model.resize_images_ = True  # fitted on photos resized to one size: it resizes what it codes
    model.save(root / "photos.safetensors")
    prepared = prepare_folder(root / "photos.safetensors", folder, root / "work", verbose=False)
    return {
        "folder": folder,
        "model": root / "photos.safetensors",
        "index": prepared.index,
        "codes": prepared.codes,
        "data_dir": prepared.data_dir,
    }
