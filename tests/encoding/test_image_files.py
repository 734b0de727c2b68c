"""A folder of image files: encoded in batches, given ids, indexed and served with its pictures."""

import io
import threading
import time

import numpy as np
import pytest
from PIL import Image

from _serve_support import png_bytes
from hashlearn import create_hasher, load_hasher
from hashlearn.encoding import (
    CodesFile,
    DecodeBudget,
    TooLargeError,
    encode_image_files,
    list_image_files,
    read_codes,
    read_image,
    read_image_names,
    write_image_codes,
)
from hashlearn.exceptions import InvalidInputError
from hashlearn.serve import QueryEncoder


@pytest.fixture(scope="module")
def model(digits_small):
    X, _ = digits_small
    return create_hasher("lsh", n_bits=16, random_state=0).fit(X)  # knows its 8x8x1 images


def jpeg_bytes(image):
    buffer = io.BytesIO()
    Image.fromarray(np.round(image * 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture
def folder(tmp_path, digits_small):
    """23 digits: PNG and JPEG, upper-case suffixes, a sub-folder, and a file that is no image."""
    X, _ = digits_small
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    for i in range(23):
        where = root / "sub" if i % 4 == 0 else root
        suffix = ".png" if i % 3 else ".JPG"
        data = png_bytes(X[i]) if suffix == ".png" else jpeg_bytes(X[i])
        (where / f"digit-{i:02d}{suffix}").write_bytes(data)
    (root / "notes.txt").write_text("not an image")
    return root


def one_by_one(model, files):
    """The slow path: each file through the service's own single-image decoding and encoding."""
    encoder = QueryEncoder(model)
    return np.concatenate(
        [
            encoder.encode_image(
                read_image(f.read_bytes(), max_bytes=10**7, max_pixels=10**7).image
            )
            for f in files
        ]
    )


def test_batches_equal_the_service_one_image_at_a_time(model, folder):
    files = list_image_files(folder)
    assert len(files) == 23 and all(f.suffix.lower() in (".png", ".jpg") for f in files)
    result = encode_image_files(model, folder, batch_size=5, verbose=False)
    assert result.paths == [f.relative_to(folder).as_posix() for f in files]
    np.testing.assert_array_equal(result.codes, one_by_one(model, files))
    assert not result.named and result.ids.tolist() == list(range(23))
    assert result.root == str(folder.resolve()) and result.skipped == []
    flat = encode_image_files(model, folder, recursive=False, verbose=False)
    assert len(flat.paths) == 17 and not any("/" in p for p in flat.paths)


def test_integer_file_names_become_the_ids(model, tmp_path, digits_small):
    X, _ = digits_small
    for item_id, i in ((42, 0), (7, 1), (1000, 2)):
        (tmp_path / f"{item_id}.png").write_bytes(png_bytes(X[i]))
    result = encode_image_files(model, tmp_path, verbose=False)
    assert result.named and result.paths == ["1000.png", "42.png", "7.png"]
    assert result.ids.tolist() == [1000, 42, 7]
    (tmp_path / "0042.png").write_bytes(png_bytes(X[3]))  # 42 twice: positions instead
    result = encode_image_files(model, tmp_path, verbose=False)
    assert not result.named and result.ids.tolist() == [0, 1, 2, 3]


def test_a_file_over_the_size_limit_is_refused(model, folder, monkeypatch):
    import hashlearn.encoding.files

    monkeypatch.setattr(hashlearn.encoding.files, "MAX_FILE_BYTES", 100)
    with pytest.raises(InvalidInputError, match=r"bytes long; the limit is 100 bytes"):
        encode_image_files(model, folder, verbose=False)


def test_a_budget_without_wait_holds_a_decode_until_room_frees():
    budget = DecodeBudget(100)
    events: list[str] = []
    inside, release = threading.Event(), threading.Event()

    def first():
        with budget.hold(60, "a"):
            events.append("a in")
            inside.set()
            release.wait(10)
            events.append("a out")

    def second():
        with budget.hold(60, "b"):
            events.append("b in")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    threads[0].start()
    assert inside.wait(10)
    threads[1].start()
    time.sleep(0.2)
    assert events == ["a in"]  # b waits: 60 + 60 > 100
    release.set()
    for thread in threads:
        thread.join(10)
    assert events == ["a in", "a out", "b in"] and budget.peak == 60 and budget.held == 0
    with pytest.raises(TooLargeError, match=r"takes about 0 MB; at most 0 MB are decoded"):
        with budget.hold(101, "c"):
            pass


def test_a_folder_decodes_under_a_budget_and_a_picture_over_it_is_refused(
    model, folder, monkeypatch
):
    """A 2000x2000 grey PNG (a few kilobytes as a file) costs about 24 MB to decode."""
    import hashlearn.encoding.encode

    buffer = io.BytesIO()
    Image.new("L", (2000, 2000), 128).save(buffer, "PNG")
    (folder / "big.png").write_bytes(buffer.getvalue())
    budgets = []

    class Recorded(DecodeBudget):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            budgets.append(self)

    monkeypatch.setattr(hashlearn.encoding.encode, "DecodeBudget", Recorded)
    small = {"resize": True, "max_decode_bytes": 10_000_000, "verbose": False}
    with pytest.raises(
        InvalidInputError,
        match=r"'big.png' in .*decoding 'big.png' \(2000x2000 L\) takes about 24 MB; at most 10 MB",
    ):
        encode_image_files(model, folder, **small)
    result = encode_image_files(model, folder, skip_unreadable=True, **small)
    assert [name for name, _ in result.skipped] == ["big.png"] and len(result.paths) == 23
    whole = encode_image_files(
        model, folder, resize=True, max_decode_bytes=30_000_000, verbose=False
    )
    assert len(whole.paths) == 24
    assert 24_000_000 <= budgets[-1].peak <= 30_000_000 and budgets[-1].held == 0


def test_unreadable_files_are_named_or_skipped(model, folder):
    whole = png_bytes(np.random.default_rng(0).random((64, 64)))
    (folder / "sub" / "broken.png").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(
        InvalidInputError, match=r"'sub/broken.png' in .*truncated or corrupt.*--skip-unreadable"
    ):
        encode_image_files(model, folder, verbose=False)
    result = encode_image_files(model, folder, skip_unreadable=True, verbose=False)
    assert [name for name, _ in result.skipped] == ["sub/broken.png"] and len(result.paths) == 23


def test_folders_and_models_that_cannot_work(model, tmp_path, digits_small):
    X, _ = digits_small
    with pytest.raises(InvalidInputError, match="missing: no such folder"):
        encode_image_files(model, tmp_path / "missing", verbose=False)
    (tmp_path / "readme.md").write_text("no images here")
    with pytest.raises(InvalidInputError, match=r"no \.png, \.jpg, \.jpeg files"):
        encode_image_files(model, tmp_path, verbose=False)
    (tmp_path / "1.png").write_bytes(png_bytes(X[0]))
    flat = create_hasher("lsh", n_bits=16, random_state=0).fit(X.reshape(len(X), -1))
    with pytest.raises(InvalidInputError, match="takes feature vectors, not images"):
        encode_image_files(flat, tmp_path, verbose=False)
    result = encode_image_files(flat, tmp_path, image_shape=(8, 8), verbose=False)
    pixels = np.asarray(Image.open(tmp_path / "1.png"), dtype=np.float32) / 255
    np.testing.assert_array_equal(result.codes, flat.encode(pixels.reshape(1, -1)))
    with pytest.raises(InvalidInputError, match="batch_size must be >= 1"):
        encode_image_files(model, tmp_path, batch_size=0, verbose=False)


def test_the_npz_round_trip_keeps_paths_inside_the_folder(model, folder, tmp_path):
    result = encode_image_files(model, folder, verbose=False)
    write_image_codes(result, tmp_path / "codes.npz")
    root, names = read_image_names(tmp_path / "codes.npz")
    assert root == folder.resolve() and names == dict(zip(result.ids.tolist(), result.paths))
    np.savez(
        tmp_path / "evil.npz",
        codes=result.codes[:1],
        ids=np.array([0]),
        paths=np.array(["../../etc/passwd"]),
        root=np.array(str(folder)),
    )
    with pytest.raises(InvalidInputError, match="leads outside"):
        read_image_names(tmp_path / "evil.npz")
    np.savez(tmp_path / "codes-only.npz", codes=result.codes)
    with pytest.raises(InvalidInputError, match="has no ids, paths, root"):
        read_image_names(tmp_path / "codes-only.npz")


def test_a_codes_file_names_the_image_of_each_id(model, folder, tmp_path):
    result = encode_image_files(model, folder, verbose=False)
    write_image_codes(result, tmp_path / "codes.npz")
    stored = read_codes(tmp_path / "codes.npz")
    assert stored.paths_by_id() == dict(zip(result.ids.tolist(), result.paths))
    codes = np.zeros((2, 1), np.uint8)
    assert CodesFile(codes, paths=np.array(["a.png", "b.png"])).paths_by_id() == {
        0: "a.png",
        1: "b.png",
    }
    assert CodesFile(codes).paths_by_id() == {}


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_encode_index_and_serve_a_folder_from_the_command_line(model, folder, tmp_path, capsys):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from hashlearn.cli import main
    from hashlearn.index import load_index
    from hashlearn.serve import create_app, open_service

    model.save(tmp_path / "lsh.safetensors")
    codes, index = str(tmp_path / "photos.npz"), str(tmp_path / "photos.hlindex")
    encode = ["encode", "--model", str(tmp_path / "lsh.safetensors"), "--images", str(folder)]
    assert main([*encode, "--quiet", "--out", str(tmp_path / "x.npy")]) == 2
    assert "give an .npz --out" in capsys.readouterr().err
    assert main([*encode, "--quiet", "--out", codes]) == 0
    assert "23 codes of 16 bits, ids 0..n-1 in path order" in capsys.readouterr().out
    assert main(["index", "--codes", codes, "--bits", "16", "--out", index]) == 0
    saved = np.load(codes)
    loaded = load_index(index)
    np.testing.assert_array_equal(np.sort(loaded.ids), np.sort(saved["ids"]))
    service = open_service(
        tmp_path / "lsh.safetensors", index, images_dir=codes, data_dir=tmp_path / "d"
    )
    try:
        client = TestClient(create_app(service))
        picture = client.get("/items/5/image")
        assert picture.status_code == 200
        assert picture.content == (folder / str(saved["paths"][5])).read_bytes()
        query = (folder / str(saved["paths"][5])).read_bytes()
        hits = client.post("/search?k=3", files={"image": ("q", query)}).json()["hits"]
        assert hits[0]["distance"] == 0 and all(hit["has_image"] for hit in hits)
        assert {"path": str(saved["paths"][5])} in [hit["metadata"] for hit in hits]
        names = dict(zip(saved["ids"].tolist(), saved["paths"].tolist()))
        assert all(hit["metadata"] == {"path": names[hit["id"]]} for hit in hits)
    finally:
        service.close()
    assert load_hasher(tmp_path / "lsh.safetensors").image_shape_ == (8, 8, 1)


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_serve_a_folder_in_one_command(model, folder, tmp_path, monkeypatch, capsys):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    import hashlearn.serve.app
    from hashlearn.cli import main
    from hashlearn.serve import create_app

    served = {}
    picture = (folder / "digit-01.png").read_bytes()

    def fake_run_server(service, **options):
        response = TestClient(create_app(service)).post(
            "/search?k=1", files={"image": ("q", picture)}
        )
        served.update(stats=service.stats(), hit=response.json()["hits"][0])

    monkeypatch.setattr(hashlearn.serve.app, "run_server", fake_run_server)
    model.save(tmp_path / "lsh.safetensors")
    argv = ["serve", "--model", str(tmp_path / "lsh.safetensors"), "--images", str(folder)]
    argv += ["--work-dir", str(tmp_path / "work"), "--quiet"]
    assert main(argv) == 0
    assert "built the codes and index" in capsys.readouterr().out
    assert (
        served["stats"]["items"] == 23 and served["stats"]["index_type"] == "MultiIndexHashingIndex"
    )
    assert served["hit"]["distance"] == 0 and served["hit"]["metadata"] == {"path": "digit-01.png"}
    assert main(argv) == 0  # nothing changed: the work is reused
    assert "reusing" in capsys.readouterr().out
    (folder / "digit-01.png").rename(folder / "moved.png")  # the folder changed: built again
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "built the codes" in printed and served["stats"]["items"] == 23
    assert "writes made over the previous index are kept in" in printed
    assert len(list((tmp_path / "work").glob("writes-before-*"))) == 1
    assert served["hit"]["metadata"] == {"path": "moved.png"}
    assert main([*argv, "--item-images", str(folder)]) == 2
    assert "--images DIR shows its own pictures" in capsys.readouterr().err
