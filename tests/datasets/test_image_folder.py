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
    by_name = load_dataset(f"folder:{tmp_path}", verbose=False)
    np.testing.assert_array_equal(by_name.X, data.X)
    assert by_name.classes == data.classes


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
    with pytest.raises(InvalidInputError, match="holds no images"):
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


def _write_flat(root, names, size=(8, 6)):
    """Grey images whose every pixel is the image's position in ``names`` (times 10)."""
    for i, name in enumerate(names):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("L", size, 10 * i).save(path)


def test_multi_label_csv(tmp_path):
    root = tmp_path / "images"
    _write_flat(root, ["a.png", "sub/b.png", "sub/deeper/c.png"])
    (tmp_path / "labels.csv").write_text(
        "filename,labels\nsub/b.png,sky;sea\na.png,dog\n./sub/deeper/c.png, sea ; dog;\n"
    )
    data = load_image_folder(root, tmp_path / "labels.csv", verbose=False)
    assert data.classes == ("dog", "sea", "sky")
    assert data.y.dtype == bool and data.y.shape == (3, 3)
    # rows in CSV order: b, a, c
    assert data.y.astype(int).tolist() == [[0, 1, 1], [1, 0, 0], [1, 1, 0]]
    assert data.X.shape == (3, 6, 8)
    np.testing.assert_allclose(data.X[:, 0, 0], [10 / 255, 0.0, 20 / 255])
    assert data.n_classes == 3


def test_multi_label_csv_without_header_and_bare_names(tmp_path):
    root = tmp_path / "images"
    _write_flat(root, ["x/one.png", "y/two.png"])
    (root / "tags.csv").write_text("one.png,cat\ntwo.png,cat;bird\n")  # CSV inside root is fine
    data = load_image_folder(root, root / "tags.csv", verbose=False)
    assert data.classes == ("bird", "cat")
    assert data.y.astype(int).tolist() == [[0, 1], [1, 1]]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("a.png,dog\nb.png,\n", r"line 2: 'b.png' has no labels"),
        ("a.png,dog\nb.png,cat\nzz.png,cat\n", r"line 3: no image 'zz.png' below"),
        ("a.png,dog\n", r"1 image\(s\) below .* have no row in .*first 'b.png'"),
        (
            "a.png,dog\nb.png,cat\na.png,cat\n",
            r"line 3: 'a.png' is listed again \(first on line 1\)",
        ),
        ("a.png,dog,cat\nb.png,cat\n", r"line 1: expected 'filename,label1;label2'"),
        ("filename,labels\n", "lists no images"),
    ],
)
def test_multi_label_csv_errors(tmp_path, rows, message):
    root = tmp_path / "images"
    _write_flat(root, ["a.png", "b.png"])
    (tmp_path / "labels.csv").write_text(rows)
    with pytest.raises(InvalidInputError, match=message):
        load_image_folder(root, tmp_path / "labels.csv", verbose=False)


def test_multi_label_csv_ambiguous_or_missing(tmp_path):
    root = tmp_path / "images"
    _write_flat(root, ["p/a.png", "q/a.png"])
    (tmp_path / "labels.csv").write_text("a.png,dog\n")
    with pytest.raises(InvalidInputError, match=r"'a\.png' matches 2 images"):
        load_image_folder(root, tmp_path / "labels.csv", verbose=False)
    (tmp_path / "labels.csv").write_text("p/a.png,dog\nq/a.png,cat\n")
    assert load_image_folder(root, tmp_path / "labels.csv", verbose=False).y.shape == (2, 2)
    with pytest.raises(InvalidInputError, match=r"labels file .* does not exist"):
        load_image_folder(root, tmp_path / "nope.csv", verbose=False)


def _photos():
    """Real colour photos shipped with scikit-image, as uint8 RGB arrays."""
    from skimage import data

    return {"astronaut": data.astronaut(), "coffee": data.coffee(), "chelsea": data.chelsea()}


def test_a_flat_folder_is_an_unlabelled_dataset(tmp_path):
    photos = _photos()
    for name, pixels in photos.items():
        Image.fromarray(pixels).save(tmp_path / f"{name}.jpg", quality=95)
    Image.fromarray(photos["coffee"][:, :, 0]).save(tmp_path / "coffee-grey.png")
    data = load_image_folder(tmp_path, image_size=(48, 64), verbose=False)
    assert data.y is None and not data.labelled and data.n_classes == 0 and len(data) == 4
    assert data.files == ("astronaut.jpg", "chelsea.jpg", "coffee-grey.png", "coffee.jpg")
    assert data.X.shape == (4, 48, 64, 3) and "4 unlabelled images" in data.description
    # the grey picture is the colour set's grey channel, repeated into R, G and B
    grey = data.X[2]
    np.testing.assert_array_equal(grey[..., 0], grey[..., 2])
    # an unsupervised hasher fits on it without labels
    codes = create_hasher("itq", n_bits=2, random_state=0).fit(data.X).encode(data.X)
    assert codes.shape == (4, 1)


def test_a_folder_is_read_as_the_encoder_reads_its_pictures(tmp_path):
    from hashlearn.encoding import read_image_file

    pixels = _photos()["chelsea"]
    rgba = np.dstack([pixels, np.full(pixels.shape[:2], 128, np.uint8)])
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "cat.png")
    data = load_image_folder(tmp_path, image_size=(30, 40), verbose=False)
    shape = (30, 40, 3)
    encoded = read_image_file(tmp_path / "cat.png", shape, resize=True)
    np.testing.assert_array_equal(data.X[0], encoded)


def test_images_beside_class_folders_are_refused(tmp_path):
    _write_digits(tmp_path, per_class=1, classes=("one",))
    Image.new("L", (28, 28)).save(tmp_path / "stray.png")
    with pytest.raises(InvalidInputError, match=r"both images \('stray.png'.*sub-folders \('one'"):
        load_image_folder(tmp_path, verbose=False)
