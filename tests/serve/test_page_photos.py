"""The search page over an unlabelled collection of real colour photos, in headless Chromium
(Debian's, driven by Playwright; no browser download), 1280 px and 390 px wide: before and after a
query, no broken image, no text running out of its box, no page wider than the window, thumbnails
under 50 KB, no label controls, nothing fetched from another host; and the API docs at /docs
render from the service's own files."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

pytest.importorskip("httpx", reason="the dev extra (httpx) is not installed")
pytest.importorskip("uvicorn", reason="the serve extra (uvicorn) is not installed")
playwright = pytest.importorskip(
    "playwright.sync_api", reason="Playwright's Python package is not installed (dev extra)"
)

from _serve_support import (  # noqa: E402
    NO_CHROMIUM,
    find_chromium,
    free_port,
    stop_process,
    wait_for_health,
    wait_until,
)

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)

# The server: the library's own entry points, in a child process that ends by itself when the
# test process goes away or after LIFETIME seconds, whatever happens to the test.
LIFETIME = 120
_SERVER = """
import os, sys, threading, time
from hashlearn.serve import open_service, run_server

model, index, images, data_dir, port, parent = sys.argv[1:7]

def watchdog():
    deadline = time.monotonic() + {lifetime}
    while time.monotonic() < deadline and os.getppid() == int(parent):
        time.sleep(0.2)
    os._exit(0)

threading.Thread(target=watchdog, daemon=True).start()
service = open_service(model, index, images_dir=images, data_dir=data_dir)
run_server(service, port=int(port), log_level="warning", access_log=False)
"""

# Text boxes of the page that must hold their text (scrollWidth <= clientWidth).
TEXT_BOXES = "#results .result > div, #stats, #summary, #status, #query code, h1, h2, footer"


class PhotoServer:
    def __init__(self, photo_files, data_dir, log):
        import os

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log, "wb")
        self.log = log
        command = [
            sys.executable, "-c", _SERVER.format(lifetime=LIFETIME),
            str(photo_files["model"]), str(photo_files["index"]), str(photo_files["codes"]),
            str(data_dir), str(self.port), str(os.getpid()),
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout=60.0):
        if wait_for_health(self.process, self.url, self.log, timeout):
            return self
        raise RuntimeError(f"no answer from /health in {timeout} s:\n{self.log.read_text()}")

    def stop(self):
        stop_process(self.process)
        self._log.close()


ALL_IMAGES_LOADED = """
[...document.querySelectorAll('img')]
  .filter(img => img.getClientRects().length > 0)
  .every(img => img.complete)
"""

LAYOUT_PROBLEMS = """
(selector) => {
  const problems = [];
  const shown = (el) => el.getClientRects().length > 0;
  for (const img of document.querySelectorAll('img')) {
    if (shown(img) && !(img.complete && img.naturalWidth > 0)) {
      problems.push(`broken image ${img.getAttribute('src')}`);
    }
  }
  for (const el of document.querySelectorAll(selector)) {
    if (!shown(el)) continue;
    const style = getComputedStyle(el);
    const clamped = style.overflowX === 'hidden' && style.webkitLineClamp !== 'none';
    if (clamped) {
      // cut after some lines with an ellipsis: the whole text must be in the title
      if (!(el.title || '').includes(el.textContent.trim().replace(/^#[0-9]+ /, ''))) {
        problems.push(`cut text without its whole in the title: '${el.textContent.trim()}'`);
      }
    } else if (el.scrollWidth > el.clientWidth) {
      problems.push(`text overflows: '${el.textContent.trim()}' needs ${el.scrollWidth} px of ${el.clientWidth}`);
    }
  }
  const page = document.documentElement;
  if (page.scrollWidth > window.innerWidth) {
    problems.push(`the page is ${page.scrollWidth} px wide in a ${window.innerWidth} px window`);
  }
  return problems;
}
"""

THUMBNAIL_SIZES = """
performance.getEntriesByType('resource')
  .filter(entry => entry.name.includes('/thumbnail'))
  .map(entry => [entry.name, entry.encodedBodySize])
"""


def check_page(page, where):
    """Every layout problem of the page now, and its thumbnails' sizes."""
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")  # lazy images load too
    wait_until(page, ALL_IMAGES_LOADED)
    page.evaluate("window.scrollTo(0, 0)")
    problems = [f"{where}: {p}" for p in page.evaluate(LAYOUT_PROBLEMS, TEXT_BOXES)]
    # No label controls for an unlabelled collection.
    if page.evaluate("document.querySelector('#label-control').getClientRects().length > 0"):
        problems.append(f"{where}: the query label control is shown")
    if "label" in page.inner_text("#results").lower():
        problems.append(f"{where}: result cards speak of labels")
    return problems


def test_photo_page_at_two_widths(photo_files, tmp_path):
    from pathlib import Path

    query = photo_files["folder"] / "coffee.jpg"
    long_name = "a very long file name of the coffee photograph resized to a third of its size.jpg"
    started = time.monotonic()
    server = PhotoServer(photo_files, tmp_path / "data", tmp_path / "server.log").wait_ready()
    ready = time.monotonic()
    screenshots: list[Path] = []
    problems: list[str] = []
    sizes: dict[str, int] = {}

    def watched(page):
        """``page``, its script errors, console errors (a refused request, a policy violation)
        and requests to anywhere but the service recorded in ``problems``."""
        local = (server.url + "/", "blob:", "data:")
        page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
        page.on(
            "console",
            lambda message: (
                problems.append(f"console {message.type}: {message.text}")
                if message.type == "error"
                else None
            ),
        )
        page.on(
            "request",
            lambda request: (
                None
                if request.url.startswith(local)
                else problems.append(f"request outside the service: {request.url}")
            ),
        )
        return page

    try:
        with playwright.sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            for width in (1280, 390):
                page = watched(browser.new_page(viewport={"width": width, "height": 900}))
                page.goto(server.url + "/")
                wait_until(page, "document.querySelectorAll('#browse .thumb img').length === 24")
                assert "24 items" in page.inner_text("#stats")
                # On load: no query box, so no empty image frame.
                assert not page.evaluate("document.querySelector('#query').getClientRects().length")
                problems.extend(check_page(page, f"{width} px, before a query"))
                screenshots.append(tmp_path / f"photos-{width}px-before.png")
                page.screenshot(path=str(screenshots[-1]), full_page=True)

                # Upload one of the photos: 12 results, the photo itself among those at distance 0.
                page.set_input_files("#file-input", str(query))
                wait_until(page, "document.querySelectorAll('#results .result').length === 12")
                cards = page.eval_on_selector_all(
                    "#results .result", "els => els.map(e => e.innerText.split('\\n'))"
                )
                assert any(
                    card[0] == "distance 0" and card[-1].endswith(" coffee.jpg") for card in cards
                ), cards
                titles = page.eval_on_selector_all("#results .name", "els => els.map(e => e.title)")
                assert all(title.startswith("item ") for title in titles), titles
                problems.extend(check_page(page, f"{width} px, after a query"))
                screenshots.append(tmp_path / f"photos-{width}px-after.png")
                page.screenshot(path=str(screenshots[-1]), full_page=True)
                sizes.update(dict(page.evaluate(THUMBNAIL_SIZES)))
                page.close()

            # The long file name, when found, is cut after two lines and whole in the title.
            page = watched(browser.new_page(viewport={"width": 390, "height": 900}))
            page.goto(server.url + "/")
            wait_until(page, "document.querySelectorAll('#browse .thumb').length === 24")
            page.click(f"#browse .thumb[title$='{long_name}']")
            wait_until(page, "document.querySelectorAll('#results .result').length === 12")
            assert page.get_attribute("#results .result .name", "title").endswith(long_name)
            lines, cut = page.eval_on_selector(
                "#results .result .name",
                "el => [el.clientHeight / parseFloat(getComputedStyle(el).lineHeight), "
                "el.scrollHeight > el.clientHeight]",
            )
            assert round(lines) == 2 and cut
            problems.extend(check_page(page, "390 px, a long name"))

            # The API docs: Swagger UI from the service's own files, the operations listed.
            page.goto(server.url + "/docs")
            wait_until(page, "document.querySelectorAll('.opblock').length >= 8")
            assert "/items/{item_id}/thumbnail" in page.inner_text("#swagger-ui")
            screenshots.append(tmp_path / "docs-390px.png")
            page.screenshot(path=str(screenshots[-1]))
            browser.close()
    finally:
        server.stop()
    print(
        f"\nserver ready in {ready - started:.1f} s, browser checks {time.monotonic() - ready:.1f} s"
        "\nscreenshots:\n" + "\n".join(str(path) for path in screenshots)
    )
    print(f"thumbnails loaded: {len(sizes)}, largest {max(sizes.values())} bytes")
    assert problems == [], "\n".join(problems)
    assert len(sizes) >= 24 and all(0 < size < 50_000 for size in sizes.values()), sizes
    for path in screenshots:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
