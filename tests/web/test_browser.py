"""The app in a real browser: Debian's chromium driven by Playwright, one page for all four tabs.

(The README's screenshots come from scripts/screenshots.py; test_screenshots.py runs it.)
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from sample_media import BROKEN, SAMPLE

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]
TIMEOUT_MS = 30_000

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs Debian's chromium at {CHROMIUM}")


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


def _open_page(browser, web_server, width: int, height: int):
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(web_server.url)
    _text_box(page, "search-query").wait_for()
    _first_screen(page)  # before any test searches: it would replace that search's results
    return page


def _first_screen(page) -> None:
    page.wait_for_function("(document.querySelector('#search-summary')?.innerText ?? '').includes('This index holds')")


@pytest.fixture(scope="module")
def page(browser, web_server):
    return _open_page(browser, web_server, 1280, 900)


@pytest.fixture(scope="module")
def phone_page(browser, web_server):
    return _open_page(browser, web_server, 375, 812)


def _text_box(page, elem_id: str):
    return page.locator(f"#{elem_id} textarea, #{elem_id} input").first


def _set_k(page, prefix: str, k: int) -> None:
    box = page.locator(f"#{prefix}-k input[type=number]")
    box.fill(str(k))
    box.press("Enter")


def _gallery_count(page, prefix: str, n: int) -> None:
    page.wait_for_function(
        f"document.querySelectorAll('#{prefix}-gallery .thumbnail-item').length === {n}", timeout=TIMEOUT_MS)


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_the_first_screen_shows_what_the_index_holds_and_how_to_search(request, web_server, width):
    page = request.getfixturevalue("page" if width == "desktop" else "phone_page")
    page.reload()
    _first_screen(page)
    counts = web_server.backend.searcher.store.catalog.counts()
    summary = page.inner_text("#search-summary")
    assert f"{counts.images} photos and {counts.videos} videos" in summary
    assert "type what you are looking for" in summary
    expected = web_server.backend.newest(12)
    _gallery_count(page, "search", len(expected))
    assert len(expected) == 12  # the sample holds more than one screen
    captions = page.locator("#search-gallery .caption-label").all_inner_texts()
    assert [_caption_path(f"# · 0 · {c}") for c in captions] == [
        h.path.relative_to(web_server.backend.root).as_posix() for h in expected]
    assert not [c for c in captions if "_copy" in c]  # copies collapse into their originals here too
    # Media on the first screen, below the search box (at phone width the options follow the results).
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_function("document.querySelector('#search-gallery img')?.complete")
    first = page.locator("#search-gallery img").first.bounding_box()
    assert first["y"] + 40 < page.viewport_size["height"], width  # at least 40 px of it on the screen
    assert page.locator("#search-query").bounding_box()["y"] < first["y"]
    page.locator("#search-gallery .thumbnail-item").first.click()
    page.wait_for_function("document.querySelector('#search-detail-text').innerText.includes('/media/')")
    assert "score" not in page.inner_text("#search-detail-text")  # no query scored these
    page.wait_for_function("!document.querySelector('#search-like').disabled")
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]


def test_search_shows_k_results_and_the_selected_one(page):
    _set_k(page, "search", 8)
    _text_box(page, "search-query").fill("a cat on a sofa")
    page.click("#search-button")
    _gallery_count(page, "search", 8)
    captions = page.locator("#search-gallery .caption-label").all_inner_texts()
    assert [c.split(" · ")[0] for c in captions] == [f"#{i}" for i in range(1, 9)]
    assert re.search(r"encode .* search .* total", page.inner_text("#search-timings"))
    # Thumbnails come from the cache, not the originals.
    assert all("/web/thumbnails/" in src for src in
               page.locator("#search-gallery img").evaluate_all("els => els.map(e => e.src)"))
    page.locator("#search-gallery .thumbnail-item").first.click()
    page.wait_for_function("document.querySelector('#search-detail-text').innerText.includes('score')")
    assert "/media/" in page.inner_text("#search-detail-text")  # the full path of the file


def _caption_path(caption: str) -> str:
    return caption.split(" · ")[2].split(" (+")[0]  # '#1 · 0.088 · photos/x.jpg (+1 near-duplicate)'


def test_a_folder_filter_and_more_like_this(page):
    page.locator("#search-filters .label-wrap").first.click()  # open the accordion
    under = _text_box(page, "search-under")
    under.fill("photos/space")
    _set_k(page, "search", 8)
    _text_box(page, "search-query").fill("a cat")
    page.click("#search-button")
    _gallery_count(page, "search", 2)  # only two photos live in photos/space
    captions = page.locator("#search-gallery .caption-label").all_inner_texts()
    assert all(_caption_path(c).startswith("photos/space/") for c in captions), captions
    assert "cosine similarities" in page.inner_text("#search-score-note")

    under.fill("")
    page.click("#search-button")
    _gallery_count(page, "search", 8)
    like_button = page.locator("#search-like")
    assert like_button.is_disabled()  # nothing selected yet
    third = page.locator("#search-gallery .thumbnail-item").nth(2)
    chosen = _caption_path(page.locator("#search-gallery .caption-label").nth(2).inner_text())
    third.click()
    page.wait_for_function("!document.querySelector('#search-like').disabled")
    like_button.click()
    page.wait_for_function(f"document.querySelector('#search-summary').innerText.includes({chosen!r})")
    assert "more like" in page.inner_text("#search-summary")
    _gallery_count(page, "search", 8)
    first = page.locator("#search-gallery .caption-label").first.inner_text()
    assert _caption_path(first) == chosen  # the item itself comes first


def test_a_reranked_search_shows_moves_and_what_the_model_saw(page):
    page.locator("#search-rerank input").click()
    page.get_by_role("option", name="grid", exact=True).click()
    assert page.locator("#search-rerank input").input_value() == "grid"
    _set_k(page, "search", 6)
    _set_k(page, "search-rerank", 6)  # candidates reranked
    _text_box(page, "search-query").fill("a cup of coffee")
    page.click("#search-button")
    # The status streams: "Working… reranking" first, then what the reranker did (or a fallback note).
    page.wait_for_function("/^(✓ Reranked|⚠)/.test(document.querySelector('#search-status').innerText.trim())")
    status = page.inner_text("#search-status")
    _gallery_count(page, "search", 6)
    captions = page.locator("#search-gallery .caption-label").all_inner_texts()
    assert all(re.match(r"^#\d+( [↑↓]\d+)? · was #\d+ · ", c) for c in captions), captions
    if "fell back" in status:
        assert "first-stage order kept" in status
    assert re.search(r"rerank .* total", page.inner_text("#search-timings"))

    panel = page.locator("#search-saw")
    panel.locator(".label-wrap").first.click()  # open the accordion
    page.wait_for_selector("#search-saw-images img")
    text = panel.inner_text()
    assert "What the model saw · marked grid · 1 call" in text
    assert "prompt tokens" in text
    assert "Parsed ranking" in text
    assert "rerank (MLLM)" in text
    page.locator("#search-saw-images img").first.evaluate("img => img.decode()")
    panel.locator(".label-wrap").first.click()  # closed again for the next tests
    # No reranking for the next tests: a click on a first-stage result would be undone by the reranked ones.
    page.locator("#search-rerank input").click()
    page.get_by_role("option", name="none", exact=True).click()
    assert page.locator("#search-rerank input").input_value() == "none"


def test_the_pointwise_baseline_reranks_from_the_search_tab(page):
    page.locator("#search-rerank input").click()
    page.get_by_role("option", name="pointwise", exact=True).click()
    _set_k(page, "search", 4)
    _set_k(page, "search-rerank", 4)
    _text_box(page, "search-query").fill("a cup of coffee")
    page.click("#search-button")
    page.wait_for_function("/^(✓ Reranked|⚠)/.test(document.querySelector('#search-status').innerText.trim())")
    _gallery_count(page, "search", 4)
    panel = page.locator("#search-saw")
    panel.locator(".label-wrap").first.click()
    page.wait_for_selector("#search-saw-images img")
    assert "What the model saw · pointwise yes/no · 1 call" in panel.inner_text()  # 4 pairs, one batched forward
    panel.locator(".label-wrap").first.click()
    page.locator("#search-rerank input").click()
    page.get_by_role("option", name="none", exact=True).click()
    assert page.locator("#search-rerank input").input_value() == "none"


def _show_filters(page, shown: bool) -> None:
    """Open or close the Search tab's filters accordion, whatever state an earlier test left it in."""
    if page.locator("#search-hub-norm").is_visible() != shown:
        page.locator("#search-filters .label-wrap").first.click()
        page.locator("#search-hub-norm").wait_for(state="visible" if shown else "hidden")


def test_a_hub_correction_on_an_index_without_banks_says_how_to_build_them(page):
    was_open = page.locator("#search-hub-norm").is_visible()
    _show_filters(page, True)
    page.locator("#search-hub-norm input").click()
    page.get_by_role("option", name="qbnorm", exact=True).click()
    _text_box(page, "search-query").fill("a cup of coffee")
    page.click("#search-button")
    page.wait_for_function("document.querySelector('#search-summary').innerText.includes('--query-bank')")
    assert "needs the index's hubness banks" in page.inner_text("#search-summary")
    page.locator("#search-hub-norm input").click()
    page.get_by_role("option", name="none", exact=True).click()
    _show_filters(page, was_open)  # as the earlier tests left it


def test_composed_search_with_an_uploaded_image(page, tmp_path):
    page.get_by_role("tab", name="Composed").click()
    fake = tmp_path / "not_a_photo.png"
    fake.write_text("plain text under an image name")
    page.set_input_files("#composed-reference input[type=file]", str(fake))
    page.click("#composed-button")
    page.wait_for_function("document.querySelector('#composed-summary').innerText.includes('was not used')")
    assert page.locator("#composed-gallery .thumbnail-item").count() == 0
    toast = page.locator("[data-testid=toast-body]")  # a gr.Warning, not an error page
    assert "not_a_photo.png was not used" in toast.inner_text()
    assert "not an image" in toast.inner_text()
    page.locator("[data-testid=toast-close]").click()
    toast.wait_for(state="detached")

    page.locator("#composed-reference button[aria-label='Remove Image']").first.click()
    page.set_input_files("#composed-reference input[type=file]", str(SAMPLE / "photos" / "cat_chelsea.jpg"))
    _text_box(page, "composed-text").fill("the same cat, but asleep")
    page.wait_for_selector("#composed-reference img")
    _set_k(page, "composed", 6)
    page.click("#composed-button")
    _gallery_count(page, "composed", 6)
    assert "this image + “the same cat, but asleep”" in page.inner_text("#composed-summary")


def test_video_moments_start_at_the_match(page, web_server):
    page.get_by_role("tab", name="Video").click()
    _set_k(page, "video", 4)
    _text_box(page, "video-query").fill("a red ball bouncing")
    page.click("#video-button")
    # Four sample videos, one a re-encoded copy of another: it collapses into its original's result.
    page.wait_for_selector("#video-sgrid-2 img")
    hits = web_server.backend.search("a red ball bouncing", None, 4, "video").hits
    assert len(hits) == 3
    assert sum(len(h.duplicates) for h in hits) == 1
    assert page.locator(".video-hit-3").first.is_hidden()
    ids = page.evaluate("Array.from(document.querySelectorAll('[id]')).map(e => e.id).filter(id => id)")
    assert sorted({i for i in ids if ids.count(i) > 1}) == []  # no element id twice in the page
    expected = {h.path.name: h.timestamp for h in hits}
    catalog = web_server.backend.searcher.store.catalog
    subtitled = {h.path.name for h in hits if catalog.subtitles_of(h.media_id)}
    assert subtitled  # the sample has subtitled videos (.srt and .vtt)
    page.wait_for_function("[0,1,2].every(i => { const v = document.querySelector(`#video-player-${i} video`);"
                           " return v && v.readyState >= 1; })")
    players = page.evaluate("[0,1,2].map(i => { const v = document.querySelector(`#video-player-${i} video`);"
                            " return [decodeURIComponent(v.currentSrc), v.currentTime,"
                            " Array.from(v.querySelectorAll('track')).map(t => t.getAttribute('src') || '')]; })")
    # A group of copies plays its original (the sample's copies are named *_copy), the copy is named under it.
    names = [src.rsplit("/", 1)[-1] for src, _, _ in players]
    assert not [n for n in names if "_copy" in n], names
    assert "yellow_sun_rising_copy.mov" in [d.name for h in hits for d in h.duplicates]
    for src, current, tracks in players:
        name = src.rsplit("/", 1)[-1]
        assert abs(current - expected[name]) < 0.1, (name, current, expected[name])
        # Every player has a track (an empty one without subtitles, so no player keeps an earlier video's).
        assert len(tracks) == 1, (name, tracks)
        vtt = Path(tracks[0].split("file=", 1)[1]).read_text(encoding="utf-8")
        assert ("-->" in vtt) == (name in subtitled), (name, vtt)


def _detail_video(page) -> tuple[str, list[str]]:
    return page.evaluate("(() => { const v = document.querySelector('#search-detail-video video');"
                         " if (!v) return ['', []];"
                         " return [decodeURIComponent(v.currentSrc || v.src),"
                         " Array.from(v.querySelectorAll('track')).map(t => t.getAttribute('src') || '')]; })()")


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_a_video_without_subtitles_shows_none_after_one_with_them(request, web_server, width):
    page = request.getfixturevalue("page" if width == "desktop" else "phone_page")
    page.get_by_role("tab", name="Search").click()
    page.locator("#search-kind label", has_text="video").first.click()
    _set_k(page, "search", 4)
    _text_box(page, "search-query").fill("a red ball bouncing")
    page.click("#search-button")
    hits = web_server.backend.search("a red ball bouncing", None, 4, "video").hits
    _gallery_count(page, "search", len(hits))
    catalog = web_server.backend.searcher.store.catalog
    with_subs = [i for i, h in enumerate(hits) if catalog.subtitles_of(h.media_id)]
    without = [i for i, h in enumerate(hits) if not catalog.subtitles_of(h.media_id)]
    assert with_subs
    assert without  # the sample has both
    for first, second in ((with_subs[0], without[0]), (without[0], with_subs[0])):
        for index in (first, second):
            page.locator("#search-gallery .thumbnail-item").nth(index).click()
            name = hits[index].path.name
            page.wait_for_function("name => { const v = document.querySelector('#search-detail-video video');"
                                   " return v && decodeURIComponent(v.currentSrc || v.src).endsWith(name); }",
                                   arg=name)
        src, tracks = _detail_video(page)
        expected = web_server.backend.views.detail(hits[second]).subtitles  # an empty .vtt without subtitles
        assert tracks, src
        assert tracks[-1].endswith(expected.name), (src, tracks)  # never the previous video's track
        has_cues = "-->" in expected.read_text(encoding="utf-8")
        assert has_cues == (second in with_subs)
    page.locator("#search-kind label", has_text="any").first.click()


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_results_fit_the_screen_and_captions_leave_the_picture_visible(request, width):
    page = request.getfixturevalue("page" if width == "desktop" else "phone_page")
    page.get_by_role("tab", name="Search").click()
    _set_k(page, "search", 8)
    _text_box(page, "search-query").fill("a red ball")
    page.click("#search-button")
    _gallery_count(page, "search", 8)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scrolling
    cells = page.evaluate("Array.from(document.querySelectorAll('#search-gallery .thumbnail-item')).map(t => {"
                          " const c = t.querySelector('.caption-label').getBoundingClientRect();"
                          " return [t.getBoundingClientRect().height, c.height]; })")
    assert all(caption <= 0.3 * cell for cell, caption in cells), cells


# Last: it switches the app to another index (three files), which later searches would see.
def test_every_tab_works_at_phone_width(phone_page):
    page = phone_page
    # All four tabs in the bar: none hidden behind Gradio's "More tabs" button.
    for tab in ("Search", "Composed", "Video", "Index"):
        assert page.get_by_role("tab", name=tab).is_visible(), tab
    wide_enough = "el => el.getBoundingClientRect().width >= 230"  # the button wraps below the text box
    # The Search tab's filters, hub correction included, fit the phone's width when open.
    _show_filters(page, True)
    assert page.locator("#search-hub-norm input").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "Search filters"
    _show_filters(page, False)

    page.get_by_role("tab", name="Composed").click()
    page.set_input_files("#composed-reference input[type=file]", str(SAMPLE / "photos" / "cat_chelsea.jpg"))
    page.wait_for_selector("#composed-reference img")
    page.click("#composed-button")
    page.wait_for_function("(document.querySelector('#composed-summary')?.innerText ?? '').includes('results for')")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "Composed"

    page.get_by_role("tab", name="Video").click()
    assert page.locator("#video-query").evaluate(wide_enough)
    _text_box(page, "video-query").fill("a red ball bouncing")
    page.click("#video-button")
    page.wait_for_selector("#video-sgrid-0 img")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "Video"

    page.get_by_role("tab", name="Index").click()
    assert page.locator("#index-folder").evaluate(wide_enough)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "Index"

    page.get_by_role("tab", name="Search").click()
    # The Search tab keeps its button beside the box (a line less above the results), the box still roomy.
    box, button = page.locator("#search-query").bounding_box(), page.locator("#search-button").bounding_box()
    assert box["width"] >= 200 and button["y"] < box["y"] + box["height"] / 2


def test_index_a_folder_and_see_progress_reach_100(page, web_index):
    media, _ = web_index
    shutil.copy(SAMPLE / "photos" / "coffee_cup.jpg", media / "photos" / "coffee_cup_again.jpg")
    shutil.copy(BROKEN / "truncated.jpg", media / "photos" / "truncated.jpg")
    shutil.copy(BROKEN / "text_as.jpg", media / "photos" / "notes_as.jpg")
    page.get_by_role("tab", name="Index").click()
    assert _text_box(page, "index-folder").input_value() == str(media.resolve())
    page.click("#index-start")
    page.wait_for_selector("#index-progress [data-state=done]")
    progress = page.inner_text("#index-progress")
    assert "100%" in progress and "3 / 3 files" in progress, progress
    page.wait_for_function("document.querySelector('#index-skipped').innerText.includes('notes_as.jpg')")
    assert "not an image" in page.inner_text("#index-skipped")
    assert "16" in page.inner_text("#gr-status")  # 15 sample photos + the new one
