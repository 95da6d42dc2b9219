"""The web app's callbacks over a real Searcher (tiny models), without a server or a browser."""

from __future__ import annotations

import re
import shutil

import pytest
from PIL import Image

from app.web.backend import MAX_K, RERANK_METHODS, Refine, UploadRejected
from retrieval.errors import BadQueryError
from app.web.indexing import IndexJobError, IndexJobs
from sample_media import BROKEN, SAMPLE
from retrieval.query.types import Query
from retrieval.query.search import Searcher

from .support import indexed_copy

EVERY_ITEM = Refine(collapse=False)  # the sample's copies stay separate results

CAPTION = re.compile(r"^#\d+ · -?\d\.\d{3} · \S.*$")


@pytest.fixture(scope="module")
def backend(tmp_path_factory, tiny_settings, tiny_encoder):
    from app.web.server import open_backend

    _, index_dir = indexed_copy(tmp_path_factory.mktemp("handlers"), tiny_settings, tiny_encoder)
    return open_backend(index_dir, tiny_settings, tiny_encoder, max_upload_mb=1)


def test_results_are_cached_thumbnails_with_captions(backend):
    page = backend.views.result_page(backend.search("a cat", None, 5, "any"), "“a cat”")
    assert len(page.items) == 5
    assert page.summary.startswith("5 results")
    assert "encode" in page.timings
    assert "search" in page.timings
    assert "total" in page.timings
    for rank, item in enumerate(page.items, 1):
        assert CAPTION.match(item.caption)
        assert item.caption.startswith(f"#{rank} · ")
        assert item.thumbnail.parent == backend.thumbnails.directory
        with Image.open(item.thumbnail) as thumb:
            assert max(thumb.size) <= 320
        if item.hit.kind == "video":
            assert "@ 0:" in item.caption
    again = backend.views.result_page(backend.search("a cat", None, 5, "any"), "")
    assert [i.thumbnail for i in again.items] == [i.thumbnail for i in page.items]  # made once


def test_same_results_as_the_searcher_and_the_api(backend, tiny_settings, tiny_encoder):
    direct = Searcher.open(backend.index_dir, tiny_settings, encoder=tiny_encoder).search(Query("sunrise"), 7, "any")
    via_web = backend.search("sunrise", None, 7, "any")
    assert [h.path for h in via_web.hits] == [h.path for h in direct.hits]
    api = backend.api_search("sunrise", 7, "any")
    assert [h["path"] for h in api["hits"]] == [str(h.path) for h in direct.hits]
    assert set(api["timings"]) >= {"encode_s", "search_s"}


def test_queries_never_load_a_model_and_take_the_search_options(backend, monkeypatch):
    from retrieval.models.encoder import ClipEncoder

    def no_load(*_, **__):
        raise AssertionError("a query loaded the CLIP model")

    monkeypatch.setattr(ClipEncoder, "from_settings", no_load)
    encoder = backend.searcher.encoder
    under = backend.search("2:a cat -a dog", None, 5, "any", refine=Refine(under="photos/space")).hits
    assert {h.path.parent.name for h in under} == {"space"}
    like = backend.api_search("", 3, "any", like="photos/cat_chelsea.jpg")
    assert like["hits"][0]["path"].endswith("photos/cat_chelsea.jpg")
    assert backend.searcher.encoder is encoder
    with pytest.raises(BadQueryError, match="photos/nope.jpg is not an indexed item"):
        backend.search("", None, 3, "any", refine=Refine(like="photos/nope.jpg"))
    with pytest.raises(BadQueryError, match="not an indexed item"):
        backend.search("img:/etc/hostname +cat", None, 3, "any")  # the server reads no other files
    with pytest.raises(BadQueryError, match="stands alone"):
        backend.search("cats", None, 3, "any", refine=Refine(like="photos/cat_chelsea.jpg"))


@pytest.mark.parametrize("text, kind, k, rerank", [
    ("", "any", 5, "none"),
    ("   ", "any", 5, "none"),
    ("x", "audio", 5, "none"),
    ("x", "any", 0, "none"),
    ("x", "any", MAX_K + 1, "none"),
    ("x", "any", "many", "none"),
    ("x", "any", 5, "rerank-harder"),
])
def test_bad_queries_say_what_to_fix(backend, text, kind, k, rerank):
    with pytest.raises(BadQueryError):
        backend.search(text, None, k, kind, rerank)


def test_the_rerank_menus_offer_the_methods_of_the_core():
    from app.web.backend import API_RERANK_METHODS, FUSION_METHODS, VIDEO_RERANK_METHODS
    from retrieval.rerank.names import FUSION_METHODS as CORE_FUSION, RERANK_METHODS as CORE

    assert RERANK_METHODS == ("none", "grid", "cot", "first", "pointwise")
    assert VIDEO_RERANK_METHODS == ("none", "sgrid", "pointwise", "sgrid-vic")
    assert FUSION_METHODS == ("none", *CORE_FUSION)
    assert API_RERANK_METHODS == ("none", *CORE)


def test_uploads_are_decoded_with_the_guard(backend, tmp_path):
    photo = next(SAMPLE.rglob("*.jpg"))
    assert backend.load_upload(str(photo)).mode == "RGB"
    cases = {
        BROKEN / "text_as.jpg": "not an image",
        BROKEN / "huge_pixels.png": "pixels",
        BROKEN / "zero_bytes.jpg": "not an image",
    }
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG" + b"\0" * (2 * 2**20))
    cases[big] = "limited to 1 MB"
    for path, reason in cases.items():
        with pytest.raises(UploadRejected, match=reason):
            backend.load_upload(str(path))
    with pytest.raises(UploadRejected, match="reference image"):
        backend.load_upload(None)


def test_composed_query_gives_results(backend):
    image = backend.load_upload(str(next(SAMPLE.rglob("cat_*.jpg"))))
    hits = backend.search("but asleep", image, 4, "image").hits
    assert len(hits) == 4
    assert all(h.kind == "image" for h in hits)


def test_detail_of_a_photo_is_a_bounded_preview(backend):
    hit = backend.search("a photo", None, 1, "image").hits[0]
    detail = backend.views.detail(hit)
    assert detail.video is None
    assert detail.image is not None
    with Image.open(detail.image) as preview:
        assert max(preview.size) <= 1600
    assert str(hit.path) in detail.text
    assert "Open the original" in detail.text


def _red_ball(backend):
    hits = backend.search("a red ball", None, 50, "video", refine=EVERY_ITEM).hits
    return next(h for h in hits if h.path.name == "red_ball_bouncing.mp4"), hits


def test_video_moments_have_sgrid_player_start_and_subtitles(backend):
    red_ball, hits = _red_ball(backend)
    response = backend.search("a red ball", None, len(hits), "video", refine=EVERY_ITEM)
    results = {r.hit.path.name: r for r in backend.views.video_results(response)}
    assert len(results) == len(hits)
    result = results["red_ball_bouncing.mp4"]
    with Image.open(result.sgrid) as grid:
        assert grid.size == (448, 448)
    assert result.video == red_ball.path.resolve()
    assert result.start == red_ball.timestamp
    vtt = result.subtitles.read_text()
    assert vtt.startswith("WEBVTT")
    assert "bounces to the right" in vtt
    assert "best moment" in result.caption
    assert re.search(r"best moment \*\*\d:\d\d\.\d \(\d:\d\d\.\d-\d:\d\d\.\d\)", result.caption)  # the segment
    # No subtitles: an empty track, so the player drops the previous video's (Gradio keeps it on None).
    assert "-->" not in results["yellow_sun_rising.mp4"].subtitles.read_text()

    detail = backend.views.detail(red_ball)
    assert detail.video == red_ball.path.resolve()
    assert detail.start == red_ball.timestamp
    assert detail.subtitles is not None


def test_index_tab_rejects_bad_folders(backend):
    jobs = IndexJobs(backend)
    for folder, reason in (("", "Type the path"), ("relative/dir", "absolute"), ("/no/such/dir", "No folder")):
        with pytest.raises(IndexJobError, match=reason):
            jobs.start(folder)


def test_index_the_served_folder_again_with_new_and_broken_files(backend):
    root = backend.root
    shutil.copy(next(SAMPLE.rglob("cat_chelsea.jpg")), root / "new_cat.jpg")
    shutil.copy(BROKEN / "text_as.jpg", root / "broken.jpg")
    jobs = IndexJobs(backend)
    jobs.start(str(root))
    snap = jobs.wait(60)
    assert snap.state == "done"
    assert snap.fraction == 1.0
    assert snap.indexed == 1
    assert snap.skipped == 1
    assert snap.done == snap.total == 2
    assert [path for path, _ in snap.skipped_files] == ["broken.jpg"]
    assert "not an image" in snap.skipped_files[0][1]
    assert backend.index_dir == root / ".gridrank"  # same index, updated in place
    names = {h.path.name for h in backend.search("x", None, MAX_K, "image", refine=EVERY_ITEM).hits}
    assert "new_cat.jpg" in names


def test_cancel_keeps_serving_the_old_index(backend, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(SAMPLE / "photos", other)
    served = backend.root
    jobs = IndexJobs(backend)
    jobs.start(str(other))
    jobs.cancel()
    snap = jobs.wait(60)
    assert snap.state == "cancelled"
    assert "Index again to resume" in snap.message
    assert snap.done < snap.total
    assert backend.root == served  # half-done indexes are not swapped in
    partial = Searcher.open(other / ".gridrank", backend.settings, encoder=backend.searcher.encoder)
    assert partial.store.catalog.counts().images == snap.indexed  # committed, readable


def test_indexing_another_folder_switches_the_app_to_it(backend, tmp_path):
    other = tmp_path / "videos_only"
    shutil.copytree(SAMPLE / "videos", other)
    swaps = []
    backend.on_swap(lambda b: swaps.append(b.root))
    jobs = IndexJobs(backend)
    jobs.start(str(other))
    snap = jobs.wait(60)
    assert snap.state == "done", snap.message
    assert backend.root == other.resolve()
    assert backend.index_dir == other.resolve() / ".gridrank"
    assert swaps == [other.resolve()]
    assert backend.access.roots == (other.resolve(),)
    assert {h.kind for h in backend.search("x", None, 10, "any").hits} == {"video"}



def test_concurrent_searches_share_the_encoders_forwards(backend, monkeypatch):
    import threading
    import time

    batcher = backend.searcher.encoder._texts
    encode_now = batcher._encode_now

    def busy_model(texts):
        time.sleep(0.1)  # a model that takes a while: the searches that arrive meanwhile queue up
        return encode_now(texts)

    monkeypatch.setattr(batcher, "_encode_now", busy_model)
    before = batcher.forwards
    results: dict[int, int] = {}
    start = threading.Barrier(8)

    def search(i: int) -> None:
        start.wait()
        results[i] = [h.path for h in backend.search(f"query number {i}", None, 3, "any").hits]

    threads = [threading.Thread(target=search, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    forwards = batcher.forwards - before
    alone = {i: [h.path for h in backend.search(f"query number {i}", None, 3, "any").hits] for i in range(8)}
    assert all(alone.values())  # the index served now has something to find
    assert results == alone  # side by side, each search found what it finds alone
    assert forwards < 8  # first stages ran side by side and shared forwards


def test_the_sqaf_caption_is_shown_as_written_not_html_escaped(backend):
    from app.web.backend import SearchUpdate
    from app.web.ui import _sqaf_line
    from retrieval.query.types import SearchResponse, StageTimings

    response = SearchResponse([], StageTimings(0.0, 0.0), caption='A "sleeping" cat & a dog\'s bed')
    line = _sqaf_line(backend, SearchUpdate(response, True, ""), 0.8, 0.5)
    assert '“A "sleeping" cat & a dog\'s bed”' in line
    assert "&quot;" not in line
    assert "&amp;" not in line


@pytest.mark.parametrize("refine, says", [
    (Refine(under="../elsewhere"), "Folder: give a folder inside the indexed root"),
    (Refine(under="/etc"), "Folder /etc is not inside the indexed folder"),
    (Refine(before="soon"), "before date must be a date"),
])
def test_a_filter_error_names_the_form_field_not_a_cli_flag(backend, refine, says):
    with pytest.raises(BadQueryError, match=says) as error:
        backend.search("a cat", None, 3, "any", refine=refine)
    assert "--" not in str(error.value)
