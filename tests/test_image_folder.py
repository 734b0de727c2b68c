import numpy as np
import pytest
from PIL import Image

from hashlearn import create_hasher
from hashlearn.datasets import load_dataset, load_image_folder
from hashlearn.exceptions import FileFormatError, InvalidInputError


def _write_digits(root, per_class=12, classes=("three", "one", "seven")):
    """Real MNIST digits written as 8-bit grey PNGs, one folder per class."""
    data = load_dataset("mnist5k")
    digits = {"one": 1, "three": 3, "seven": 7}
    written = {}
    for name in classes:
        folder = root / name
        folder.mkdir(parents=True)
        images = data.X[data.y == digits[name]][:per_class]
        for i, image in enumerate(images):
            Image.fromarray((image * 255).round().astype(np.uint8), mode="L").save(
                folder / f"{i:03d}.png"
            )
        written[name] = images
    return written


def test_reads_classes_in_sorted_order_with_exact_pixels(tmp_path):
    written = _write_digits(tmp_path)
    (tmp_path / "one" / "notes.txt").write_text("not an image")
    data = load_image_folder(tmp_path, verbose=False)
    assert data.classes == ("one", "seven", "three")
    assert data.X.shape == (36, 28, 28) and data.X.dtype == np.float32
    assert np.bincount(data.y).tolist() == [12, 12, 12]
    # 8-bit PNG round trip: the pixels are the original ones up to 1/255 quantisation
    np.testing.assert_allclose(data.X[data.y == 2], written["three"], atol=0.5 / 255)


def test_resize_and_colour(tmp_path):
    _write_digits(tmp_path, per_class=3)
    Image.new("RGB", (40, 30), (255, 0, 0)).save(tmp_path / "one" / "red.png")
    with pytest.raises(FileFormatError, match=r"red.png' is 40x30 but .* pass image_size"):
        load_image_folder(tmp_path, verbose=False)
    data = load_image_folder(tmp_path, image_size=(16, 16), verbose=False)
    assert data.X.shape == (10, 16, 16, 3)  # one colour image makes the whole set RGB
    grey = load_image_folder(tmp_path, image_size=(16, 16), color="grey", verbose=False)
    assert grey.X.shape == (10, 16, 16)


def test_bad_folders_and_files(tmp_path):
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_image_folder(tmp_path / "missing")
    with pytest.raises(InvalidInputError, match="no class sub-folders"):
        load_image_folder(tmp_path)
    (tmp_path / "a").mkdir()
    with pytest.raises(InvalidInputError, match="holds no images"):
        load_image_folder(tmp_path)
    _write_digits(tmp_path / "b", per_class=2, classes=("one",))
    good = next((tmp_path / "b" / "one").iterdir()).read_bytes()
    (tmp_path / "a" / "truncated.png").write_bytes(good[: len(good) // 2])
    with pytest.raises(FileFormatError, match=r"cannot read image .*truncated\.png"):
        load_image_folder(tmp_path)
    with pytest.raises(InvalidInputError, match="color must be"):
        load_image_folder(tmp_path / "b", color="sepia")


def test_a_deep_hasher_trains_on_an_image_folder(tmp_path):
    _write_digits(tmp_path, per_class=20)
    data = load_image_folder(tmp_path, verbose=False)
    hasher = create_hasher("dsh", n_bits=8, epochs=3, batch_size=32, random_state=0, verbose=False)
    codes = hasher.fit(data.X, data.y).encode(data.X)
    assert codes.shape == (60, 1)
