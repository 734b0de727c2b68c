"""Near-duplicate robustness on real photos: the library function, the command and the report."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from _photos import photos, write_photo_folder
from hashlearn import create_hasher
from hashlearn.cli import main
from hashlearn.encoding import TRANSFORMS, as_model_array, measure_robustness
from hashlearn.exceptions import FileFormatError, InvalidInputError
from hashlearn.features import create_features
from hashlearn.hashers import FeatureHasher
from hashlearn.report.robustness_sections import load_robustness, robustness_steps
from hashlearn.report.writer import FigureWriter

N_BITS = 16


@pytest.fixture(scope="module")
def pictures():
    """12 real colour photos, longer side 96 pixels."""
    return [image for _, image in photos(96)]


@pytest.fixture(scope="module")
def model(pictures):
    """HOG of 48 x 48 images + 16-bit ITQ, fitted on the photos and 4 random crops of each."""
    rng = np.random.default_rng(0)
    train = []
    for image in pictures:
        train.append(image)
        for _ in range(4):
            w, h = image.size
            cw, ch = int(w * rng.uniform(0.5, 0.9)), int(h * rng.uniform(0.5, 0.9))
            x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            train.append(image.crop((x, y, x + cw, y + ch)))
    X = np.stack([as_model_array(image, (48, 48, 3), resize=True) for image in train])
    hasher = create_hasher("itq", n_bits=N_BITS, random_state=0)
    return FeatureHasher(create_features("hog"), hasher).fit(X)


def test_the_photo_itself_is_found_at_distance_0_and_ranked_by_its_ties(model, pictures):
    result = measure_robustness(model, pictures, transforms=["identity"], radius=0)
    assert result.distances.tolist() == [[0] * len(pictures)]
    # by hand: the rank is 1 + half the other photos that share the original's code
    codes = model.encode(np.stack([as_model_array(p, (48, 48, 3), resize=True) for p in pictures]))
    same = (codes[:, None, :] == codes[None, :, :]).all(axis=2).sum(axis=1) - 1
    np.testing.assert_array_equal(result.ranks[0], 1 + same / 2)
    np.testing.assert_array_equal(result.others[0], same)
    (row,) = result.rows()
    assert row["within_radius"] == 1.0 and row["copies"] == len(pictures)
    assert row["top1"] == np.mean(same == 0)


def test_a_radius_of_every_bit_finds_every_photo(model, pictures):
    result = measure_robustness(model, pictures, transforms=["darker"], radius=N_BITS)
    assert result.rows()[0]["within_radius"] == 1.0
    assert result.others.tolist() == [[len(pictures) - 1] * len(pictures)]


def test_flip_invariance_finds_every_mirrored_copy(model, pictures):
    plain = measure_robustness(model, pictures, transforms=["flip", "half"], radius=1)
    both = measure_robustness(
        model, pictures, transforms=["flip", "half"], radius=1, flip_invariant=True
    )
    assert plain.distances[0].mean() > 2  # HOG is not mirror-invariant
    assert both.distances[0].tolist() == [0] * len(pictures)  # mirrored back: the same pixels
    assert both.rows()[0]["within_radius"] == 1.0
    assert (both.distances[1] <= plain.distances[1]).all()  # the nearer of two, never farther


def test_transforms_change_the_photos_as_described(pictures):
    image = pictures[0]
    assert TRANSFORMS["half"][0](image).size == (image.width // 2, image.height // 2)
    assert TRANSFORMS["crop80"][0](image).size == (
        round(image.width * 0.8),
        round(image.height * 0.8),
    )
    flipped = np.asarray(TRANSFORMS["flip"][0](image))
    np.testing.assert_array_equal(flipped, np.asarray(image)[:, ::-1])
    darker = np.asarray(TRANSFORMS["darker"][0](image), np.float64)
    assert np.abs(darker - 0.7 * np.asarray(image, np.float64)).max() <= 1
    assert TRANSFORMS["rotate5"][0](image).getpixel((0, 0)) == (0, 0, 0)


def test_bad_arguments_fail_clearly(model, pictures, tmp_path):
    with pytest.raises(InvalidInputError, match=r"unknown transform.*'blur'"):
        measure_robustness(model, pictures, transforms=["half", "blur"])
    with pytest.raises(InvalidInputError, match="at least 2 photos"):
        measure_robustness(model, pictures[:1])
    with pytest.raises(InvalidInputError, match="Pillow images; item 1"):
        measure_robustness(model, [pictures[0], np.zeros((4, 4))])
    (tmp_path / "bad.png").write_bytes(b"not a picture")
    with pytest.raises(InvalidInputError, match=r"bad\.png"):
        measure_robustness(model, tmp_path)
    result = measure_robustness(model, pictures[:3], transforms=["identity"])
    with pytest.raises(InvalidInputError, match=r"\.csv or \.json"):
        result.write(tmp_path / "table.txt")


def test_command_prints_the_table_and_writes_csv_and_json(model, tmp_path, capsys):
    folder = tmp_path / "photos"
    write_photo_folder(folder, max_side=96)
    model.save(tmp_path / "model.safetensors")
    argv = ["robustness", "--model", str(tmp_path / "model.safetensors"), "--images", str(folder)]
    status = main([*argv, "--transforms", "identity,flip", "--out", str(tmp_path / "t.csv"),
                   "--radius", "1", "--quiet"])  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == f"12 photos of {folder}, {N_BITS}-bit codes, radius 1"
    assert lines[1].split() == [
        "transform", "copies", "within_r1", "top1", "median_rank", "mean_rank", "mean_distance",
        "others_within_r1",
    ]  # fmt: skip
    assert lines[3].split()[:3] == ["identity", "12", "1.00"]
    with open(tmp_path / "t.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["transform"] for row in rows] == ["identity", "flip"]
    assert float(rows[0]["within_radius"]) == 1.0
    status = main([*argv, "--transforms", "flip", "--flip-invariant", "--out",
                   str(tmp_path / "r.json"), "--quiet"])  # fmt: skip
    assert status == 0 and "flip-invariant" in capsys.readouterr().out
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["rows"][0]["within_radius"] == 1.0 and len(saved["names"]) == 12
    assert saved["names"][0] == "astronaut.png"


def test_command_errors_are_one_line(model, tmp_path, capsys):
    model.save(tmp_path / "model.safetensors")
    status = main(["robustness", "--model", str(tmp_path / "model.safetensors"), "--images",
                   str(tmp_path / "missing")])  # fmt: skip
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "missing: no such folder" in err
    with pytest.raises(SystemExit) as exc:
        main(["robustness", "--model", "m", "--images", "d", "--transforms", "blur"])
    assert exc.value.code == 2 and "unknown transform(s) blur" in capsys.readouterr().err


def test_report_section_shows_the_table_and_figure(model, pictures, tmp_path):
    result = measure_robustness(model, pictures, transforms=["identity", "half"], radius=2)
    result.write(tmp_path / "r.json")
    document = load_robustness(tmp_path / "r.json")
    writer = FigureWriter(tmp_path / "files")
    writer.folder.mkdir()
    (step,) = robustness_steps(document, writer)
    html = step()
    assert "<h2>Near-duplicate robustness</h2>" in html
    assert "<td>identity</td><td>the photo itself" in html and "within r=2" in html
    assert Image.open(tmp_path / "files" / "robustness.png").size[0] > 400
    with pytest.raises(FileFormatError, match="not the output of"):
        load_robustness({"rows": []})
