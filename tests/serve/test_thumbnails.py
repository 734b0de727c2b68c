"""``GET /items/{id}/thumbnail``: real photos shrunk to at most 256 px and 48 KiB, made once and
cached on disk, with an ETag; bad ids, path tricks and broken files answered with 4xx."""

from __future__ import annotations

import io
import os
import threading
import warnings

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")

with warnings.catch_warnings():  # starlette's notice about its test client's HTTP library
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

from PIL import Image

from _serve_support import TOKEN, open_test_service, png_bytes
from hashlearn.serve import ServeLimits, create_app, open_service
from hashlearn.serve.catalog import ItemCatalog
from hashlearn.serve.thumbnails import THUMBNAIL_MAX_BYTES, ThumbnailCache

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


@pytest.fixture
def photo_service(photo_files, tmp_path):
    service = open_service(
        photo_files["model"],
        photo_files["index"],
        images_dir=photo_files["codes"],
        data_dir=tmp_path / "data",
    )
    yield service
    service.close()


def photo_ids(service):
    return sorted(service.image_names)


def test_photo_thumbnails_are_small_and_keep_the_shape(photo_service, photo_files):
    client = TestClient(create_app(photo_service))
    originals = thumbnails = 0
    for item in photo_ids(photo_service):
        source = photo_files["folder"] / photo_service.image_names[item]
        original = client.get(f"/items/{item}/image")
        answer = client.get(f"/items/{item}/thumbnail")
        assert answer.status_code == 200, answer.text
        assert original.content == source.read_bytes()
        assert len(answer.content) <= THUMBNAIL_MAX_BYTES < 50_000
        assert answer.headers["cache-control"] == "private, max-age=60"
        assert answer.headers["etag"].startswith('"') and answer.headers["etag"].endswith('"')
        width, height = Image.open(source).size
        small = Image.open(io.BytesIO(answer.content))
        if max(width, height) > 256:
            assert answer.headers["content-type"] == "image/jpeg" and small.format == "JPEG"
            assert max(small.size) == 256
            # the aspect ratio is kept to the pixel
            expected = round(min(width, height) * 256 / max(width, height))
            assert abs(min(small.size) - expected) <= 1, (source.name, small.size, expected)
        else:
            assert small.size == (width, height)  # never enlarged
        originals += len(original.content)
        thumbnails += len(answer.content)
    print(
        f"\n{len(photo_ids(photo_service))} photos: originals {originals:,} bytes, "
        f"thumbnails {thumbnails:,} bytes"
    )
    assert thumbnails * 5 < originals


def test_a_thumbnail_is_made_once_then_read_from_the_cache(photo_service, monkeypatch):
    client = TestClient(create_app(photo_service))
    item = photo_ids(photo_service)[0]
    first = client.get(f"/items/{item}/thumbnail")
    cached = list((photo_service.store.directory / "thumbnails").iterdir())
    assert [p.name for p in cached] == [f"{item}-{first.headers['etag'].strip(chr(34))}.thumb"]
    assert cached[0].read_bytes() == first.content

    def no_second_make(*args):
        raise AssertionError("the thumbnail was made again")

    monkeypatch.setattr(ThumbnailCache, "_make", no_second_make)
    second = client.get(f"/items/{item}/thumbnail")
    assert second.content == first.content and second.headers["etag"] == first.headers["etag"]
    # the browser's revalidation: 304, no body
    again = client.get(f"/items/{item}/thumbnail", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
    stale = client.get(f"/items/{item}/thumbnail", headers={"If-None-Match": '"other"'})
    assert stale.status_code == 200 and stale.content == first.content


def test_a_changed_image_gets_a_new_thumbnail_and_the_old_one_goes(files, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for path in (files["folder"] / "images").iterdir():
        (images / path.name).write_bytes(path.read_bytes())
    service = open_service(
        files["folder"] / "lsh.safetensors",
        files["folder"] / "db.hlindex",
        data_dir=tmp_path / "data",
        images_dir=images,
    )
    try:
        client = TestClient(create_app(service))
        before = client.get("/items/100/thumbnail")
        # an 8x8 PNG is its own thumbnail, byte for byte
        assert before.content == (images / "100.png").read_bytes()
        assert before.headers["content-type"] == "image/png"
        bigger = np.kron(files["X"][5], np.ones((40, 40)))  # 320 x 320: shrunk to 256
        (images / "100.png").write_bytes(png_bytes(bigger))
        os.utime(images / "100.png", ns=(1, 10**18))  # a modification time of its own
        after = client.get("/items/100/thumbnail")
        assert after.headers["etag"] != before.headers["etag"]
        assert Image.open(io.BytesIO(after.content)).size == (256, 256)
        cached = sorted(p.name for p in (tmp_path / "data" / "thumbnails").iterdir())
        assert cached == [f"100-{after.headers['etag'].strip(chr(34))}.thumb"]
    finally:
        service.close()


def test_concurrent_first_requests_agree(photo_service):
    client = TestClient(create_app(photo_service))
    item = photo_ids(photo_service)[-1]
    answers: list[bytes] = []
    barrier = threading.Barrier(6)

    def fetch():
        barrier.wait()
        answers.append(client.get(f"/items/{item}/thumbnail").content)

    threads = [threading.Thread(target=fetch) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 6 and len(set(answers)) == 1 and len(answers[0]) > 1000
    names = [p.name for p in (photo_service.store.directory / "thumbnails").iterdir()]
    assert len(names) == 1 and names[0].endswith(".thumb")  # no temporary file left


def test_unknown_ids_items_without_images_and_path_tricks(files, tmp_path):
    service = open_test_service(files, tmp_path / "data")
    try:
        client = TestClient(create_app(service, token=TOKEN))
        assert client.get("/items/100/thumbnail").status_code == 200
        missing = client.get("/items/99/thumbnail")
        assert (
            missing.status_code == 404 and "item 99 is not in the index" in missing.json()["error"]
        )
        no_image = client.get("/items/200/thumbnail")  # indexed, but only ids 100..129 have PNGs
        assert no_image.status_code == 404 and "has no image" in no_image.json()["error"]
        for path in (
            "/items/..%2F..%2Fetc%2Fpasswd/thumbnail",
            "/items/%2E%2E/thumbnail",
            "/items/100%2F..%2F101/thumbnail",
            "/items/-1/thumbnail",
            "/items/1e3/thumbnail",
        ):
            answer = client.get(path)
            assert 400 <= answer.status_code < 500, (path, answer.status_code)
            assert answer.headers["content-type"] == "application/json"
        assert sorted(os.listdir(tmp_path / "data" / "thumbnails")) == [
            "100-" + (client.get("/items/100/thumbnail").headers["etag"].strip('"')) + ".thumb"
        ]
    finally:
        service.close()


def test_an_image_name_leading_out_of_the_folder_is_not_served(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    (tmp_path / "secret.png").write_bytes(png_bytes(np.zeros((4, 4))))
    (images / "ok.png").write_bytes(png_bytes(np.ones((4, 4))))
    catalog = ItemCatalog(
        np.array([1, 2, 3], dtype=np.int64),
        store=None,
        images_dir=images,
        image_names={1: "ok.png", 2: "../secret.png", 3: str(tmp_path / "secret.png")},
    )
    assert catalog.image_of(1) == (images / "ok.png", "image/png")
    assert catalog.image_of(2) is None and catalog.image_of(3) is None


def test_broken_image_files_are_a_4xx_not_a_500(files, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for path in (files["folder"] / "images").iterdir():
        (images / path.name).write_bytes(path.read_bytes())
    photo = io.BytesIO()
    Image.fromarray(np.full((400, 300, 3), 128, dtype=np.uint8)).save(photo, "JPEG")
    (images / "101.jpg").write_bytes(photo.getvalue()[: len(photo.getvalue()) // 2])  # truncated
    (images / "101.png").unlink()
    (images / "102.png").write_text("this is not an image\n")
    bomb = io.BytesIO()
    Image.new("L", (5000, 5000)).save(bomb, "PNG")  # 25 M pixels, a few kB
    (images / "103.png").write_bytes(bomb.getvalue())
    service = open_service(
        files["folder"] / "lsh.safetensors",
        files["folder"] / "db.hlindex",
        data_dir=tmp_path / "data",
        images_dir=images,
        limits=ServeLimits(max_image_pixels=1_000_000),  # the uploads' pixel limit applies
    )
    try:
        client = TestClient(create_app(service), raise_server_exceptions=False)
        truncated = client.get("/items/101/thumbnail")
        assert truncated.status_code == 422
        assert truncated.json()["error"].startswith("the image of item 101 cannot be shown: ")
        assert "truncated or corrupt" in truncated.json()["error"]
        text = client.get("/items/102/thumbnail")
        assert text.status_code == 422
        assert "is text, not a PNG or JPEG image" in text.json()["error"]
        assert "b'" not in text.json()["error"]
        too_big = client.get("/items/103/thumbnail")
        assert too_big.status_code == 422 and "25000000 pixels" in too_big.json()["error"]
        assert client.get("/items/100/thumbnail").status_code == 200
    finally:
        service.close()


def test_deleting_an_item_drops_its_thumbnail(files, tmp_path):
    service = open_test_service(files, tmp_path / "data")
    try:
        client = TestClient(create_app(service, token=TOKEN))
        image = png_bytes(files["X"][0])
        added = client.post(
            "/items",
            files={"image": ("digit.png", image, "image/png")},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert added.status_code == 201, added.text
        item = added.json()["items"][0]["id"]
        assert client.get(f"/items/{item}/thumbnail").content == image
        assert len(list((tmp_path / "data" / "thumbnails").glob(f"{item}-*.thumb"))) == 1
        client.delete(f"/items/{item}", headers={"Authorization": f"Bearer {TOKEN}"})
        assert list((tmp_path / "data" / "thumbnails").glob(f"{item}-*.thumb")) == []
        assert client.get(f"/items/{item}/thumbnail").status_code == 404
    finally:
        service.close()


def test_stats_say_whether_there_are_labels(photo_service, files, tmp_path):
    assert photo_service.stats()["has_labels"] is False
    assert photo_service.stats()["labels"] == []
    labelled = open_test_service(files, tmp_path / "labelled")
    try:
        assert labelled.stats()["has_labels"] is True
        stats = TestClient(create_app(labelled)).get("/stats").json()
        assert stats["has_labels"] is True and stats["labels"] == list(range(10))
    finally:
        labelled.close()
