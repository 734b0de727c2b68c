"""A folder of real image files encoded on a two-node Ray cluster equals ``hashlearn encode`` in
one process, byte for byte; a rerun keeps the finished shards; unreadable files are listed."""

import io

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("ray", reason="the ray extra is not installed")

from _serve_support import png_bytes
from hashlearn import create_hasher, load_hasher
from hashlearn._io import read_arrays
from hashlearn.cli import main
from hashlearn.distributed import encode_files
from hashlearn.encoding import encode_image_files, write_image_codes
from hashlearn.exceptions import InvalidInputError


def jpeg_bytes(image):
    buffer = io.BytesIO()
    Image.fromarray(np.round(image * 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def model_path(tmp_path_factory, digits_small):
    X, _ = digits_small
    path = tmp_path_factory.mktemp("model") / "lsh.safetensors"
    create_hasher("itq", n_bits=24, random_state=0).fit(X).save(path)  # knows its 8x8x1 images
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory, digits_small):
    """45 digits as PNG and JPEG files (some in a sub-folder) and one file that does not decode."""
    X, _ = digits_small
    root = tmp_path_factory.mktemp("photos")
    (root / "sub").mkdir()
    for i in range(45):
        where = root / "sub" if i % 5 == 0 else root
        data = png_bytes(X[i]) if i % 3 else jpeg_bytes(X[i])
        (where / f"digit-{i:02d}{'.png' if i % 3 else '.jpg'}").write_bytes(data)
    (root / "digit-17b.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return root


def arrays(path):
    return read_arrays(path)


def test_ray_workers_equal_one_process_byte_for_byte(ray_cluster, model_path, folder, tmp_path):
    single = encode_image_files(
        load_hasher(model_path), folder, batch_size=4, skip_unreadable=True, verbose=False
    )
    write_image_codes(single, tmp_path / "single.npz")
    out = tmp_path / "out"
    done = encode_files(
        model_path, folder, out, address=ray_cluster, batch_size=4, shard_size=8,
        n_workers=2, skip_unreadable=True, verbose=False,
    )  # fmt: skip
    assert done.n_shards == 6 and done.reused == 0  # 46 files, 8 a shard
    assert sorted(p.name for p in (out / "shards").iterdir()) == [
        f"part-0000{i}.npz" for i in range(6)
    ]
    expected, got = arrays(tmp_path / "single.npz"), arrays(done.codes_path)
    assert sorted(got) == sorted(expected) == ["codes", "ids", "n_bits", "paths", "root"]
    for name in expected:
        assert got[name].dtype == expected[name].dtype, name
        assert got[name].tobytes() == expected[name].tobytes(), name
    assert len(got["codes"]) == 45 and got["codes"].shape[1] == 3
    assert got["ids"].tolist() == list(range(45))  # positions among the files that read
    assert done.result.skipped == single.skipped
    assert [name for name, _ in single.skipped] == ["digit-17b.png"]

    # a rerun keeps the finished shards: one removed is the only one encoded again
    (out / "shards" / "part-00003.npz").unlink()
    kept = (out / "shards" / "part-00001.npz").stat().st_mtime_ns
    again = encode_files(
        model_path, folder, out, address=ray_cluster, batch_size=4, shard_size=8,
        skip_unreadable=True, verbose=False,
    )  # fmt: skip
    assert again.reused == 5 and (out / "shards" / "part-00001.npz").stat().st_mtime_ns == kept
    assert arrays(again.codes_path)["codes"].tobytes() == expected["codes"].tobytes()


def test_an_unreadable_file_stops_the_job_naming_it(ray_cluster, model_path, folder, tmp_path):
    with pytest.raises(InvalidInputError, match=r"digit-17b\.png"):
        encode_files(
            model_path, folder, tmp_path / "out", address=ray_cluster, shard_size=16,
            n_workers=1, verbose=False,
        )  # fmt: skip


def test_cli_encode_on_ray(ray_cluster, model_path, folder, tmp_path, capsys):
    out = tmp_path / "codes"
    argv = ["encode", "--model", str(model_path), "--images", str(folder), "--quiet"]
    argv += ["--shard-size", "16", "--workers", "1"]
    assert main([*argv, "--ray", ray_cluster, "--out", str(out)]) == 2  # digit-17b.png
    assert "digit-17b.png" in capsys.readouterr().err
    assert main([*argv, "--ray", ray_cluster, "--skip-unreadable", "--out", str(out)]) == 0
    single = ["encode", "--model", str(model_path), "--images", str(folder), "--quiet"]
    assert main([*single, "--skip-unreadable", "--out", str(tmp_path / "one.npz")]) == 0
    got, expected = arrays(out / "codes.npz"), arrays(tmp_path / "one.npz")
    for name in ("codes", "ids", "paths"):
        np.testing.assert_array_equal(got[name], expected[name])
    assert "skipped digit-17b.png" in capsys.readouterr().err
