"""Reranking in the web app: the menus' methods end to end, the streamed status, the panel, the locks.

The tiny Qwen2-VL (random weights) shows that every method runs and fills the panel; a scripted
chat-completions server shows that arrows and first-stage ranks follow the model's order.
"""

from __future__ import annotations

import re
import threading
import time

import numpy as np
import pytest
from PIL import Image

from app.web.backend import WebBackend
from app.web.formatting import done_status
from retrieval.errors import BadQueryError
from retrieval.rerank.windows import MAX_RERANK_K
from fake_chat_server import Reply, completion, start_server
from retrieval.query.types import Query
from retrieval.query.search import blend
from sample_media import SAMPLE

MOVED = re.compile(r"^#(\d+)( [↑↓]\d+)? · was #(\d+) · ")


def _open(index_dir, settings, encoder) -> WebBackend:
    from app.web.server import open_backend

    return open_backend(index_dir, settings, encoder, max_upload_mb=1)


@pytest.fixture(scope="module")
def backend(web_index, web_settings, tiny_encoder) -> WebBackend:
    """The tiny profile's local reranker (the tiny Qwen2-VL), small inputs."""
    return _open(web_index[1], web_settings, tiny_encoder)


@pytest.fixture
def scripted(web_index, web_settings, tiny_encoder):
    """A WebBackend whose reranker is a local chat server answering the given replies (settings.reranker_url)."""
    servers = []

    def make(*replies: Reply, **update) -> tuple[WebBackend, object]:
        server = start_server(*replies)
        servers.append(server)
        settings = web_settings.model_copy(update={"reranker_url": server.base_url, "reranker_model": "scripted",
                                                   "reranker_timeout_s": 5.0, **update})
        return _open(web_index[1], settings, tiny_encoder), server

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


def _first_stage(backend: WebBackend, text: str, k: int, kind: str = "image"):
    return backend.searcher.search(Query(text), k, kind).hits


@pytest.mark.parametrize("method, kind", [("grid", "image"), ("cot", "image"), ("first", "image"),
                                          ("sgrid", "video")])
def test_each_method_gives_a_permutation_and_fills_the_panel(backend, method, kind):
    n = 4 if kind == "image" else 3
    response = backend.search("a cat", None, n, kind, method, n)
    report = response.rerank
    assert report is not None
    assert sorted(report.order) == list(range(n))
    assert sorted(h.first_stage_rank for h in response.hits) == list(range(1, n + 1))  # a permutation
    assert [h.rank for h in response.hits] == list(range(1, n + 1))

    view = backend.views.model_view(response)
    assert view.images
    assert all(p.is_file() and p.parent == backend.thumbnails.directory for p in view.images)
    assert len(view.images) == len(report.images_sent)
    assert f"{report.prompt_tokens:,} prompt tokens ({report.visual_tokens:,} visual)" in view.summary
    assert report.visual_tokens > 0
    assert f"{report.visual_tokens:,} visual tokens" in view.label
    for stage in ("encode (CLIP)", "search (FAISS)", "rerank (MLLM)", "total"):
        assert stage in view.timings
    assert "| rerank (MLLM) | —" not in view.timings  # the rerank took time
    assert "Parsed ranking:" in view.ranking
    if method == "first":  # logits over the marks: no text
        assert "no text is generated" in view.raw
        assert not report.fallback
    else:
        assert view.raw == report.raw_outputs[0]
    if method == "cot":
        assert view.reasoning == (report.rationale or "")

    page = backend.views.result_page(response, "“a cat”")
    for hit, item in zip(response.hits, page.items):
        moved = MOVED.match(item.caption)
        assert moved and int(moved[1]) == hit.rank and int(moved[3]) == hit.first_stage_rank, item.caption

    # Random weights: whatever the model wrote, a flagged fallback is said in the status and the panel.
    status = done_status(response)
    if report.fallback:
        assert status.startswith("⚠")
        assert report.fallback in status
        assert "Fell back" in view.summary
        assert "fell back" in view.label
    else:
        assert status.startswith("✓ Reranked")


def test_the_stream_says_what_the_model_does_before_the_results(web_index, web_settings, tiny_encoder):
    fresh = _open(web_index[1], web_settings, tiny_encoder)  # its model not loaded yet
    updates = list(fresh.search_stream("a cat", None, 3, "image", "grid", 5))
    assert [u.final for u in updates] == [False, True]
    first, last = updates
    assert first.status.startswith("**Working…** Loading the reranker model `tiny-qwen2-vl`")
    assert "reranking 5 candidates (grid)" in first.status
    assert first.response.rerank is None
    assert len(first.response.hits) == 3  # first-stage results meanwhile
    assert [h.path for h in first.response.hits] == [h.path for h in _first_stage(fresh, "a cat", 3)]
    assert last.response.rerank is not None
    assert last.status == done_status(last.response)
    assert fresh.views.result_page(first.response, "").items[0].caption.startswith("#1 · ")  # no arrows yet

    again = next(iter(fresh.search_stream("a dog", None, 3, "image", "first", 4)))
    assert again.status.startswith("**Working…** Reranking 4 candidates with `tiny-qwen2-vl` (first)")

    plain = list(fresh.search_stream("a dog", None, 3, "image"))
    assert len(plain) == 1
    assert plain[0].final
    assert plain[0].status == ""


def test_arrows_and_first_stage_ranks_follow_the_scripted_order(scripted):
    backend, server = scripted(Reply(body=completion("C > A > B")))
    first = _first_stage(backend, "coffee", 3)
    response = backend.search("coffee", None, 3, "image", "grid", 3)
    assert [h.path for h in response.hits] == [first[2].path, first[0].path, first[1].path]
    assert [h.first_stage_rank for h in response.hits] == [3, 1, 2]
    captions = [item.caption for item in backend.views.result_page(response, "").items]
    assert [c.split(" · ")[:2] for c in captions] == [["#1 ↑2", "was #3"], ["#2 ↓1", "was #1"],
                                                      ["#3 ↓1", "was #2"]]
    view = backend.views.model_view(response)
    assert "C > A > B" in view.ranking
    assert "#3, #1, #2" in view.ranking
    assert view.raw == "C > A > B"
    assert "scripted" in view.summary
    assert "Fell back" not in view.summary
    assert done_status(response).startswith("✓ Reranked 3 candidates by marked grid with `scripted`")
    assert len(server.requests) == 1


def test_a_fallback_is_said_clearly(scripted):
    backend, _ = scripted(Reply(body=completion("I would rather not say.")))
    first = _first_stage(backend, "coffee", 4)
    response = backend.search("coffee", None, 4, "image", "grid", 4)
    assert [h.path for h in response.hits] == [h.path for h in first]
    status = done_status(response)
    assert status.startswith("⚠ **The reranker fell back to first-stage order**")
    assert "named no candidate" in status
    view = backend.views.model_view(response)
    assert "⚠ **Fell back:**" in view.summary
    assert view.label.endswith("fell back")
    assert [item.caption.split(" · ")[:2] for item in backend.views.result_page(response, "").items][0] == ["#1", "was #1"]


def test_cot_reasoning_is_shown(scripted):
    answer = '{"reasoning": "2 shows the cup up close; 1 is a cat.", "ranking": [2, 1, 3]}'
    backend, _ = scripted(Reply(body=completion(answer)))
    response = backend.search("coffee", None, 3, "image", "cot", 3)
    view = backend.views.model_view(response)
    assert view.reasoning == "2 shows the cup up close; 1 is a cat."
    assert "2 > 1 > 3" in view.ranking
    assert len(view.images) == 3  # separate images, numbered


def test_composed_query_shows_the_sqaf_caption_and_takes_the_weights(scripted, tiny_encoder):
    caption = "a black and white photo of a cup of coffee"
    backend, server = scripted(Reply(body=completion(caption)), Reply(body=completion("A > B > C")))
    reference = Image.open(SAMPLE / "photos" / "cat_chelsea.jpg").convert("RGB")
    updates = list(backend.search_stream("but black and white", reference, 3, "image", "grid", 3,
                                         text_weight=0.6, caption_weight=0.3))
    assert "riting the target caption (SQAF), then reranking 3 candidates" in updates[0].status
    response = updates[-1].response
    assert response.caption == caption
    assert response.timings.caption_s > 0
    base = blend(tiny_encoder.encode_images([reference])[0], tiny_encoder.encode_texts(["but black and white"])[0],
                 0.6)
    expected = backend.searcher.search_vector(blend(base, tiny_encoder.encode_texts([caption])[0], 0.3), 3, "image")
    assert [h.path for h in response.hits] == [h.path for h in expected]
    view = backend.views.model_view(response, composed=True)
    assert caption in view.summary
    assert "after your reference image" in view.summary
    assert "| caption (SQAF) | —" not in view.timings
    assert len(server.requests) == 2
    # The sliders are per query: the served settings and searcher keep theirs.
    assert backend.searcher.composed_text_weight == backend.settings.composed_text_weight == 0.8


def test_vic_fusion_through_the_web_backend(scripted):
    backend, _ = scripted(Reply(body=completion("[3, 1, 2]")))
    updates = list(backend.search_stream("a ball", None, 4, "video", "none", 6, "vic"))
    assert not updates[0].final
    assert "(ViC fusion)" in updates[0].status
    response = updates[-1].response
    assert response.rerank.method == "vic"
    assert response.fusion == "vic"
    assert len({h.media_id for h in response.hits}) == len(response.hits)
    assert "Image-3 > Image-1 > Image-2" in backend.views.model_view(response).ranking


def test_score_fusion_needs_no_model(backend):
    updates = list(backend.search_stream("a ball", None, 3, "video", "none", None, "rrf"))
    assert len(updates) == 1
    assert updates[0].response.fusion == "rrf"
    assert updates[0].response.rerank is None


def test_the_api_takes_a_rerank_and_gives_the_cli_json(scripted):
    backend, _ = scripted(Reply(body=completion("B > A > C")))
    data = backend.api_search("coffee", 3, "image", "grid", 3)
    assert [h["first_stage_rank"] for h in data["hits"]] == [2, 1, 3]
    assert data["rerank"]["order"] == [1, 0, 2]
    assert data["rerank"]["method"] == "grid"
    assert data["rerank"]["images_sent"]
    assert all(p.endswith(".jpg") for p in data["rerank"]["images_sent"])
    assert set(data) == {"hits", "timings", "caption", "fusion", "rerank"}
    assert backend.api_search("coffee", 3)["rerank"] is None  # the old positional form


@pytest.mark.parametrize("args", [
    dict(rerank="sgridx"),
    dict(rerank_k=1),
    dict(rerank_k=MAX_RERANK_K + 1),
    dict(rerank_k="lots"),
    dict(fuse="rrf"),  # fusion is for videos
    dict(fuse="mean"),
    dict(text_weight=1.5),
])
def test_bad_rerank_options_say_what_to_fix(backend, args):
    with pytest.raises(BadQueryError):
        backend.search("x", None, 3, "image", **{"rerank": "grid", **args})


def test_clip_searches_do_not_wait_behind_a_rerank(scripted):
    backend, server = scripted(Reply(body=completion("A > B"), delay_s=3.0))
    done = {}

    def rerank():
        done["response"] = backend.search("coffee", None, 2, "image", "grid", 2)

    worker = threading.Thread(target=rerank)
    worker.start()
    deadline = time.monotonic() + 10
    while not server.requests and time.monotonic() < deadline:  # the model call is under way
        time.sleep(0.02)
    assert server.requests
    started = time.perf_counter()
    assert len(backend.search("a cat", None, 5, "any").hits) == 5
    waited = time.perf_counter() - started
    # A second reranked search shows its first-stage results at once, and says it waits its turn.
    first = next(iter(backend.search_stream("a dog", None, 2, "image", "grid", 2)))
    waited_stream = time.perf_counter() - started
    assert "another search is using it" in first.status
    assert worker.is_alive()  # the rerank is still running: nothing above waited for it
    worker.join(20)
    assert waited < 2.0 and waited_stream < 2.0, (waited, waited_stream)
    assert [h.first_stage_rank for h in done["response"].hits] == [1, 2]


def test_model_inputs_are_written_once(backend):
    grid = Image.fromarray(np.full((64, 96, 3), 200, np.uint8))
    first, again = backend.thumbnails.model_inputs([grid, grid.copy()])
    assert first == again
    assert first.is_file()
