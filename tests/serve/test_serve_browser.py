"""The search page in headless Chromium (Debian's, driven by Playwright; no browser download):
upload a digit, see its k nearest images, mark label matches, search by radius and by a click."""

from __future__ import annotations

import pytest

pytest.importorskip("httpx", reason="the dev extra (httpx) is not installed")
pytest.importorskip("uvicorn", reason="the serve extra (uvicorn) is not installed")
playwright = pytest.importorskip(
    "playwright.sync_api", reason="Playwright's Python package is not installed (dev extra)"
)

from _serve_support import (  # noqa: E402
    NO_CHROMIUM,
    ServerProcess,
    decoded,
    dsh_files,
    find_chromium,
    png_bytes,
    wait_until,
)
from hashlearn.hashers import load_hasher  # noqa: E402
from hashlearn.index import load_index  # noqa: E402

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)

K = 12  # the page's default k


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return dsh_files(tmp_path_factory.getbasetemp() / "serve-dsh")


def result_ids(page):
    return [
        int(v)
        for v in page.eval_on_selector_all("#results .result", "els => els.map(e => e.dataset.id)")
    ]


def test_page_upload_shows_the_nearest_images(files, tmp_path):
    hasher, index = load_hasher(files.model), load_index(files.index)
    png = png_bytes(files.queries[0])
    query_file = tmp_path / "digit.png"
    query_file.write_bytes(png)
    code = hasher.encode(decoded(png)[None])
    server = ServerProcess(files, tmp_path / "data", tmp_path / "server.log", token=None).start()
    try:
        with playwright.sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1100, "height": 1000})
            problems: list[str] = []
            page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
            page.on(
                "request",
                lambda request: (
                    None
                    if request.url.startswith((server.url, "blob:", "data:"))
                    else problems.append(f"request outside the service: {request.url}")
                ),
            )
            page.goto(server.url + "/")
            page.wait_for_selector("#browse .thumb img")
            assert "400 items" in page.inner_text("#stats")

            # Upload a digit: k result cards, each with its loaded 28x28 image, in library order.
            page.set_input_files("#file-input", str(query_file))
            wait_until(page, f"document.querySelectorAll('#results .result').length === {K}")
            wait_until(
                page,
                "[...document.querySelectorAll('#results .result img')]"
                ".every(img => img.complete && img.naturalWidth === 28)",
            )
            D, I = index.search(code, K)
            assert result_ids(page) == I[0].tolist()
            assert page.inner_text("#query-code") == code[0].tobytes().hex()
            distances = page.eval_on_selector_all(
                "#results .distance", "els => els.map(e => e.textContent)"
            )
            assert distances == [f"distance {d}" for d in D[0].tolist()]
            screenshot = tmp_path / "search-page.png"
            page.screenshot(path=str(screenshot), full_page=True)
            assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

            # Give the query's label: the cards with that label are marked as matches.
            label = int(files.query_labels[0])
            page.select_option("#query-label", str(label))
            wait_until(
                page,
                f"document.querySelectorAll('#results .match, #results .mismatch').length === {K}",
            )
            expected = sum(int(files.y[i - 1000]) == label for i in I[0].tolist())
            assert page.eval_on_selector_all("#results .match", "els => els.length") == expected
            assert f"{expected} share the query's label {label}" in page.inner_text("#summary")

            # The radius slider: every item within radius 1.
            page.eval_on_selector(
                "#radius-input",
                "el => { el.value = '1'; el.dispatchEvent(new Event('input')); "
                "el.dispatchEvent(new Event('change')); }",
            )
            wait_until(
                page, "document.querySelector('#summary').textContent.includes('within radius 1')"
            )
            _, _, ids = index.range_search(code, 1)
            assert result_ids(page) == ids.tolist()

            # Click an indexed image: it is the query, found first at distance 0.
            thumb = page.query_selector("#browse .thumb")
            clicked = int(thumb.get_attribute("title").split()[1].rstrip(","))
            thumb.click()
            wait_until(
                page, f"document.querySelector('#query-image').src.includes('/items/{clicked}/')"
            )
            wait_until(
                page,
                "document.querySelector('#results .result') && "
                "document.querySelector('#results .distance').textContent === 'distance 0'",
            )
            assert page.input_value("#query-label") == str(int(files.y[clicked - 1000]))
            assert clicked in result_ids(page)
            page.screenshot(path=str(tmp_path / "search-by-click.png"), full_page=True)
            browser.close()
        assert problems == []
    finally:
        server.stop()
