"""A folder of one's own photos, no labels: fit, encode, find the near-duplicates, measure."""

import json

import numpy as np
import pytest
from PIL import Image

from hashlearn.cli import main
from hashlearn.encoding import read_codes

ORIGINALS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "moon", "page")
COPIES = ("half", "q30", "crop80")


def _photos():
    """Real photos shipped by scikit-image and scikit-learn (colour and grey), uint8."""
    from skimage import data
    from sklearn.datasets import load_sample_images

    photos = {name: getattr(data, name)() for name in ORIGINALS}
    photos.update(zip(("china", "flower"), load_sample_images().images))
    return photos


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    """Each photo, a half-size copy, a JPEG quality-30 copy and an 80% centre crop, in one flat
    folder."""
    folder = tmp_path_factory.mktemp("photos")
    for name, pixels in _photos().items():
        image = Image.fromarray(pixels)
        w, h = image.size
        image.save(folder / f"{name}.png")
        image.resize((w // 2, h // 2), Image.Resampling.BILINEAR).save(folder / f"{name}-half.png")
        image.save(folder / f"{name}-q30.jpg", quality=30)
        dw, dh = w // 10, h // 10
        image.crop((dw, dh, w - dw, h - dh)).save(folder / f"{name}-crop80.png")
    return folder


def _encode(model, folder, out, *flags):
    """``hashlearn encode --images`` of ``folder`` with ``model``: its exit status."""
    return main(
        ["encode", "--model", str(model), "--images", str(folder), *flags, "--out", str(out)]
    )


def _groups(csv_path):
    """{group: set of file names} of a ``dedup --out`` CSV."""
    groups: dict[str, set[str]] = {}
    for line in csv_path.read_text().splitlines()[1:]:
        group, _, _, path = line.split(",")
        groups.setdefault(group, set()).add(path)
    return groups


def test_fit_encode_dedup_groups_each_photo_with_its_copies(photo_folder, tmp_path, capsys):
    # the model learns from the photos and random crops of them (60-95% of each side), the
    # recipe of docs/photos.md for a small collection; it never sees the edited copies
    train = tmp_path / "train"
    train.mkdir()
    rng = np.random.default_rng(0)
    for name, pixels in _photos().items():
        image = Image.fromarray(pixels)
        image.save(train / f"{name}.png")
        w, h = image.size
        for j in range(8):
            cw, ch = (int(side * rng.uniform(0.6, 0.95)) for side in (w, h))
            x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            image.crop((x, y, x + cw, y + ch)).save(train / f"{name}-{j}.png")
    model, codes = tmp_path / "m.safetensors", tmp_path / "codes.npz"
    argv = ["fit", "--images", str(train), "--image-size", "64x64", "--method", "itq"]
    argv += ["--features", "hog", "--bits", "32", "--seed", "0", "--quiet", "--out", str(model)]
    assert main(argv) == 0
    assert "on 90 samples of" in capsys.readouterr().out
    assert _encode(model, photo_folder, codes, "--quiet") == 0
    groups_csv = tmp_path / "groups.csv"
    assert main(["dedup", "--codes", str(codes), "--radius", "4", "--out", str(groups_csv)]) == 0
    groups = [frozenset(g) for g in _groups(groups_csv).values()]
    names = (*ORIGINALS, "china", "flower")
    # no group mixes two photos, and every photo is grouped with its half-size and JPEG copies
    assert all(len({path.split("-")[0].split(".")[0] for path in g}) == 1 for g in groups)
    for name in names:
        assert any({f"{name}.png", f"{name}-half.png", f"{name}-q30.jpg"} <= g for g in groups)
    # an 80% crop is further away (see docs/photos.md), but its own photo is its nearest original
    stored = read_codes(codes)
    bits = np.unpackbits(stored.codes, axis=1)[:, :32].astype(int)
    row = {path: i for i, path in enumerate(stored.paths)}
    originals = np.array([bits[row[f"{name}.png"]] for name in names])
    for i, name in enumerate(names):
        distances = (originals != bits[row[f"{name}-crop80.png"]]).sum(axis=1)
        assert distances[i] < np.delete(distances, i).min(), (name, distances.tolist())


def test_a_model_for_other_pictures_is_refused_naming_both(photo_folder, tmp_path, capsys):
    digits = tmp_path / "digits"
    digits.mkdir()
    from hashlearn.datasets import load_dataset

    data = load_dataset("mnist5k")
    for i in range(30):
        Image.fromarray((data.X[i] * 255).astype(np.uint8)).save(digits / f"{i}.png")
    model = tmp_path / "digits.safetensors"
    assert (
        main(
            ["fit", "--images", str(digits), "--method", "lsh", "--bits", "8", "--out", str(model)]
        )
        == 0
    )
    capsys.readouterr()
    out = tmp_path / "c.npz"
    assert _encode(model, photo_folder, out, "--quiet", "--skip-unreadable") == 2
    err = capsys.readouterr().err
    assert "'astronaut-crop80.png'" in err  # the first file, in sorted order
    assert "the image is 410x410 colour but the model takes 28x28 grey images" in err
    assert "--resize" in err and not out.exists()
    # asked for, the pictures are resized and made grey
    assert _encode(model, photo_folder, out, "--quiet", "--resize") == 0


def test_supervised_methods_need_labels(photo_folder, tmp_path, capsys):
    argv = ["fit", "--images", str(photo_folder), "--image-size", "32x32", "--method", "sdh"]
    assert main([*argv, "--out", str(tmp_path / "m.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "'sdh' is supervised" in err and "one sub-folder per class" in err
    np.savez(tmp_path / "x.npz", X=np.random.default_rng(0).normal(size=(50, 6)))
    assert (
        main(
            [
                "fit",
                "--data",
                str(tmp_path / "x.npz"),
                "--method",
                "itq",
                "--bits",
                "4",
                "--out",
                str(tmp_path / "itq.safetensors"),
            ]
        )
        == 0
    )


def test_benchmark_and_tune_an_unlabelled_folder(photo_folder, tmp_path, capsys):
    # photos of several sizes, resized to one; relevance = nearest neighbours in the features
    dataset = ["--dataset", f"folder:{photo_folder}", "--image-size", "48x48"]
    argv = ["benchmark", *dataset, "--methods", "lsh,itq", "--bits", "8", "--features", "gist"]
    argv += ["--ks", "3", "--map-at", "3", "--ndcg-at", "3", "--quiet", "--out", str(tmp_path)]
    assert main([*argv, "--name", "b"]) == 0
    document = json.loads((tmp_path / "b.json").read_text())
    assert "the 2% of the database nearest to the query" in document["metrics"]["mAP"]
    assert document["config"]["image_size"] == "48x48"
    rows = {row["method"]: row for row in document["results"]}
    assert set(rows) == {"lsh", "itq"}
    assert all(0 < row["metrics"]["mAP"] <= 1 for row in rows.values())
    tuned = tmp_path / "tune.json"
    argv = ["tune", *dataset, "--method", "itq", "--bits", "8", "--grid", "n_iter=5,50"]
    assert main([*argv, "--features", "gist", "--quiet", "--out", str(tuned)]) == 0
    tune = json.loads(tuned.read_text())
    assert len(tune["trials"]) == 2 and 0 < tune["test"]["mAP"] <= 1
    capsys.readouterr()
    argv = ["benchmark", *dataset, "--methods", "sdh", "--bits", "8"]
    assert main([*argv, "--quiet", "--out", str(tmp_path)]) == 2
    assert "has no labels, and 'sdh' need(s) them" in capsys.readouterr().err
    assert main(["benchmark", "--dataset", "digits", "--image-size", "8x8", "--quiet"]) == 2
    assert "resizes the pictures of an image folder" in capsys.readouterr().err


def test_fit_on_class_folders_uses_their_labels(tmp_path, capsys):
    from hashlearn.datasets import load_dataset
    from hashlearn.hashers import load_hasher

    data = load_dataset("mnist5k")
    for digit in (0, 1, 7):
        folder = tmp_path / "digits" / f"class-{digit}"
        folder.mkdir(parents=True)
        for i, image in enumerate(data.X[data.y == digit][:20]):
            Image.fromarray((image * 255).round().astype(np.uint8)).save(folder / f"{i}.png")
    model = tmp_path / "ksh.safetensors"
    argv = ["fit", "--images", str(tmp_path / "digits"), "--method", "ksh", "--bits", "8"]
    assert main([*argv, "--param", "n_anchors=30", "--seed", "0", "--out", str(model)]) == 0
    out = capsys.readouterr().out
    assert "on 60 samples of" in out and "3 classes" in out
    hasher = load_hasher(model)
    assert hasher.image_shape_ == (28, 28, 1) and not getattr(hasher, "resize_images_", False)
