"""Refresh the README's screenshots from the running app, in a real browser (Playwright + chromium).

    python scripts/screenshots.py                      # the bundled sample, tiny models, into docs/screenshots
    python scripts/screenshots.py --url http://HOST:7860 --out shots   # an app already running (your models)

Without --url it indexes a private copy of assets/sample with the tiny profile and serves it on a
free loopback port, so it runs offline; the page then carries the tiny profile's banner, as the
README says. Each shot waits for what it shows (results, a decoded frame, the model's answer),
then is scaled to 1000 px wide and reduced in colours until it fits 150 KB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image
from playwright import sync_api

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "assets" / "sample"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]
TIMEOUT_MS = 120_000  # a cold reranker model on a CPU
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}
# What the README shows, in its order: (file name, what it shows).
SHOTS = {
    "first_screen.png": "the Search tab before any search: what the index holds",
    "search.png": "a text search and the selected result",
    "composed.png": "an example picture plus words",
    "video.png": "video moments: S-Grids and players at the match",
    "index.png": "indexing a folder from the browser",
    "rerank_panel.png": "what the reranker model saw",
    "phone.png": "the Search tab at phone width (375 px)",
}


def readme_sized(source: Path, target: Path, width: int = 1000, max_bytes: int = 150_000) -> None:
    """A README-sized PNG: scaled to `width` (never up), then fewer colours until it fits in `max_bytes`."""
    with Image.open(source) as im:
        im = im.convert("RGB")
        if im.width > width:
            im = im.resize((width, round(im.height * width / im.width)), Image.Resampling.LANCZOS)
        for colors in (256, 128, 64, 32):
            im.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
                target, optimize=True)
            if target.stat().st_size <= max_bytes:
                return


def _box(page, elem_id: str):
    return page.locator(f"#{elem_id} textarea, #{elem_id} input").first


def _summary(page, elem_id: str, text: str) -> None:
    page.wait_for_function(f"(document.querySelector('#{elem_id}')?.innerText ?? '').includes({text!r})")


def _set_slider(page, elem_id: str, value: int) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def _images_decoded(page, selector: str) -> None:
    """Wait for the images under `selector` that are on screen (the browser defers the others)."""
    page.wait_for_function(f"Array.from(document.querySelectorAll({selector!r} + ' img'))"
                           ".filter(img => img.getBoundingClientRect().top < window.innerHeight)"
                           ".every(img => img.complete && img.naturalWidth > 0)")


def capture(url: str, out: Path, chromium: str = CHROMIUM) -> list[Path]:
    """Every screenshot of SHOTS that the app at `url` can show, into `out`; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as raw_dir, sync_api.sync_playwright() as p:
        raw = Path(raw_dir)
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=ARGS)

        def save(name: str, shoot) -> None:
            shoot(raw / name)
            readme_sized(raw / name, out / name)
            written.append(out / name)

        def open_page(viewport: dict):
            page = browser.new_page(viewport=viewport)
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(url)
            _summary(page, "search-summary", "This index holds")
            _images_decoded(page, "#search-gallery")
            return page

        page = open_page(DESKTOP)
        save("first_screen.png", lambda path: page.screenshot(path=str(path), full_page=True))

        _box(page, "search-query").fill("a cat on a sofa")
        page.click("#search-button")
        _summary(page, "search-summary", "results for")
        _images_decoded(page, "#search-gallery")
        page.locator("#search-gallery .thumbnail-item").first.click()
        _summary(page, "search-detail-text", "score")
        _images_decoded(page, "#search-detail-image")
        save("search.png", lambda path: page.screenshot(path=str(path), full_page=True))

        page.get_by_role("tab", name="Composed").click()
        page.set_input_files("#composed-reference input[type=file]", str(SAMPLE / "photos" / "cat_chelsea.jpg"))
        _box(page, "composed-text").fill("the same cat, but asleep")
        page.wait_for_selector("#composed-reference img")
        page.click("#composed-button")
        _summary(page, "composed-summary", "this image +")
        _images_decoded(page, "#composed-gallery")
        save("composed.png", lambda path: page.screenshot(path=str(path), full_page=True))

        page.get_by_role("tab", name="Video").click()
        _box(page, "video-query").fill("a red ball bouncing")
        page.click("#video-button")
        _summary(page, "video-summary", "for “a red ball bouncing”")
        page.wait_for_function("Array.from(document.querySelectorAll('[id^=video-player-] video'))"
                               ".filter(v => v.currentSrc).every(v => v.readyState >= 2 && !v.seeking)")
        save("video.png", lambda path: page.screenshot(path=str(path), full_page=True))

        if page.get_by_role("tab", name="Index").count():  # not on a read-only server
            page.get_by_role("tab", name="Index").click()
            page.wait_for_selector("#index-progress .line")
            save("index.png", lambda path: page.screenshot(path=str(path), full_page=True))

        page.get_by_role("tab", name="Search").click()
        page.locator("#search-rerank input").click()
        page.get_by_role("option", name="grid", exact=True).click()
        _set_slider(page, "search-rerank-k", 9)
        _box(page, "search-query").fill("a cup of coffee")
        page.click("#search-button")
        page.wait_for_function("/^(✓ Reranked|⚠)/.test(document.querySelector('#search-status').innerText.trim())")
        panel = page.locator("#search-saw")
        panel.locator(".label-wrap").first.click()
        page.wait_for_selector("#search-saw-images img")
        _images_decoded(page, "#search-saw-images")
        save("rerank_panel.png", lambda path: panel.screenshot(path=str(path)))

        phone = open_page(PHONE)
        save("phone.png", lambda path: phone.screenshot(path=str(path)))
        browser.close()
    return written


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def sample_app() -> Iterator[str]:
    """The app over a private, indexed copy of the sample with the tiny profile; yields its URL."""
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # as the CLI does: no weight-loading bars
    from app.web.server import ServeOptions, open_backend, start
    from indexer.pipeline import run_index
    from retrieval.models.encoder import ClipEncoder
    from retrieval.settings import load_settings

    with tempfile.TemporaryDirectory() as work:
        media = Path(work) / "media"
        shutil.copytree(SAMPLE, media)
        settings = load_settings(None, profile="tiny", cache_dir=Path(work) / "cache")
        encoder = ClipEncoder.from_settings(settings)
        run_index(media, media / ".gridrank", settings, encoder=encoder)
        server = start(open_backend(media / ".gridrank", settings, encoder),
                       ServeOptions(port=_free_port(), quiet=True))
        try:
            yield server.url
        finally:
            server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="an app already running (default: start one on the bundled sample, "
                                      "tiny models)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots",
                        help="where the PNGs go (default: docs/screenshots, what the README shows)")
    parser.add_argument("--chromium", default=CHROMIUM, help=f"the browser to drive (default: {CHROMIUM})")
    args = parser.parse_args(argv)
    if not Path(args.chromium).exists():
        parser.error(f"no browser at {args.chromium}: install Debian's chromium (apt-get install chromium) "
                     "or pass --chromium PATH")
    if args.url:
        written = capture(args.url, args.out, args.chromium)
    else:
        with sample_app() as url:
            written = capture(url, args.out, args.chromium)
    for path in written:
        print(f"{path}  ({path.stat().st_size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
