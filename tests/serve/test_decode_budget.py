"""Image decodes under a memory budget (issue 18, item 2): a small PNG of a large picture costs
hundreds of MB to decode, and nothing bounded how many decoded at once. The cost is now read
from the header before decoding; decodes are admitted while their sum fits the budget, an image
over it alone is refused with 413, and one that finds no room in time gets 503 with Retry-After.
"""

from __future__ import annotations

import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from hashlearn._imaging import conversion_bytes
from hashlearn.encoding import TooLargeError, image_header
from hashlearn.serve.decoding import DecodeBudget
from hashlearn.serve.errors import ServiceBusyError

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

MB = 1e6


def big_png(side: int, mode: str = "RGBA") -> bytes:
    """A PNG of ``side x side`` black pixels: a small file for a large picture."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new(mode, (side, side)).save(buffer, "PNG")
    return buffer.getvalue()


def test_the_cost_is_read_from_the_header():
    """The 94 KiB PNG of 5000 x 5000 RGBA pixels of the issue: its cost is known unread."""
    png = big_png(5000)
    assert len(png) < 100_000
    header = image_header(png, max_bytes=10 * 2**20, max_pixels=25_000_000)
    assert (header.width, header.height, header.mode) == (5000, 5000, "RGBA")
    cost = header.conversion_bytes(1, (8, 8))
    assert 490 * MB < cost <= 610 * MB  # measured: 490 MB; estimated high, never low
    assert conversion_bytes(5000, 5000, "L", channels=1, size=(8, 8)) < cost / 3


def test_the_budget_admits_what_fits_and_refuses_clearly():
    budget = DecodeBudget(100_000_000, wait=0.2)
    with pytest.raises(TooLargeError, match=r"decoding the picture takes about 150 MB; .* 100 MB"):
        with budget.hold(150_000_000, "the picture"):
            pass
    with budget.hold(60_000_000, "the first"):
        with budget.hold(40_000_000, "the second"):
            assert budget.held == 100_000_000
        started = time.monotonic()
        with pytest.raises(ServiceBusyError, match="try again") as refused:
            with budget.hold(41_000_000, "the third"):
                pass
        assert 0.15 < time.monotonic() - started < 2
        assert refused.value.status_code == 503 and refused.value.retry_after == 1
    assert budget.held == 0 and budget.peak == 100_000_000


def test_a_waiting_decode_goes_in_when_room_frees():
    budget = DecodeBudget(100, wait=5.0)
    admitted = threading.Event()
    with budget.hold(80, "the first"):

        def second():
            with budget.hold(50, "the second"):
                admitted.set()

        waiter = threading.Thread(target=second)
        waiter.start()
        time.sleep(0.2)
        assert not admitted.is_set()
    waiter.join(5)
    assert admitted.is_set() and budget.held == 0


def test_an_image_over_the_budget_alone_gets_413_and_a_busy_service_503(files, tmp_path):
    """Pins item 2 in the API: the answers name the sizes; Retry-After comes with 503."""
    pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
    from fastapi.testclient import TestClient

    from _serve_support import open_test_service, png_bytes
    from hashlearn.serve import create_app

    service = open_test_service(
        files, tmp_path / "data", resize=True, max_decode_bytes=200_000_000, decode_wait=0.1
    )
    try:
        client = TestClient(create_app(service))
        png = big_png(5000)
        answer = client.post("/search", files={"image": ("big.png", png, "image/png")})
        assert answer.status_code == 413, answer.text
        message = answer.json()["error"]
        assert "5000x5000 RGBA" in message and "MB" in message and "200 MB" in message
        small = png_bytes(files["X"][3])
        with service.decode_budget.hold(199_999_900, "another upload"):  # 896 bytes left
            answer = client.post("/search", files={"image": ("q.png", small, "image/png")})
            assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
            assert "try again" in answer.json()["error"]
        answer = client.post("/search", files={"image": ("q.png", small, "image/png")})
        assert answer.status_code == 200
    finally:
        service.close()


def test_concurrent_uploads_of_a_small_png_of_a_large_picture_stay_in_budget(files, tmp_path):
    """Pins item 2: six uploads at once of one 94 KiB PNG took the server from 320 MB to 2.9 GB;
    its peak memory growth now stays under the decode budget."""
    httpx = pytest.importorskip("httpx", reason="the dev extra (httpx) is not installed")
    pytest.importorskip("uvicorn", reason="the serve extra (uvicorn) is not installed")
    from _child_server import ChildServer

    budget = 450_000_000
    png = big_png(4000)  # 16 megapixels RGBA: about 310 MB each while decoding
    with ChildServer(
        files,
        tmp_path / "data",
        tmp_path / "log",
        resize=True,
        limits={"max_decode_bytes": budget, "decode_wait": 60.0},
    ) as server:
        search = f"{server.url}/search?k=3"
        warm = httpx.post(search, files={"image": ("q.png", big_png(64), "image/png")})
        assert warm.status_code == 200, warm.text
        before = server.memory_kib("VmHWM") * 1024

        def upload(_):
            form = {"image": ("big.png", png, "image/png")}
            return httpx.post(search, files=form, timeout=120).status_code

        with ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(upload, range(4)))
        growth = server.memory_kib("VmHWM") * 1024 - before
    assert statuses == [200] * 4
    assert growth < budget, f"peak memory grew by {growth / MB:.0f} MB"


def test_thumbnails_decode_under_the_budget(tmp_path):
    """Thumbnails hold the budget too: a 24-megapixel photo is still shrunk under the default
    budget, and a stored picture over a small budget alone is refused as not showable (422)."""
    from hashlearn.serve import ServeLimits
    from hashlearn.serve.errors import ItemImageError
    from hashlearn.serve.thumbnails import ThumbnailCache

    source = tmp_path / "photo.png"
    source.write_bytes(big_png(4899, "RGB"))  # 24 megapixels
    default = DecodeBudget(ServeLimits().max_decode_bytes, wait=0)
    cache = ThumbnailCache(
        tmp_path / "thumbs", max_image_bytes=10 * 2**20, max_image_pixels=25_000_000, budget=default
    )
    thumbnail = cache.get(1, source)
    assert thumbnail.media_type == "image/jpeg" and default.held == 0
    assert 300 * MB < default.peak < default.max_bytes
    small = DecodeBudget(100_000_000, wait=0)
    cache = ThumbnailCache(
        tmp_path / "thumbs2", max_image_bytes=10 * 2**20, max_image_pixels=25_000_000, budget=small
    )
    with pytest.raises(ItemImageError, match="4899x4899 RGB image takes about"):
        cache.get(1, source)
