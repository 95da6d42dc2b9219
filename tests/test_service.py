"""The full search path with reranking and fusion: tiny real models, and scripted model text."""

import shutil
from functools import partial

import numpy as np
import pytest
from PIL import Image

from fake_chat_server import Reply, completion, start_server
from indexer.pipeline import run_index
from retrieval.rerank.backends.local import LocalBackend
from retrieval.rerank.backends.server import ServerBackend
from retrieval.rerank.fusion import RankedList, combmnz, combsum, rrf, zscore_normalize
from retrieval.query.types import Query, ResultShape
from retrieval.query.search import Searcher, blend
from retrieval.rerank.marks import letter_marks, number_marks
from retrieval.rerank.parser import parse_cot, parse_ranking
from retrieval.query.request import SearchRequest
from retrieval.query.service import SearchService, make_backend

from sample_media import SAMPLE


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, tiny_settings, tiny_encoder):
    media = tmp_path_factory.mktemp("service") / "media"
    shutil.copytree(SAMPLE, media)
    run_index(media, media / ".gridrank", tiny_settings, encoder=tiny_encoder)
    return Searcher.open(media / ".gridrank", tiny_settings, encoder=tiny_encoder)


@pytest.fixture(scope="module")
def tiny_service(indexed, tiny_settings):
    settings = tiny_settings.model_copy(update={"reranker_max_pixels": 112 * 112, "grid_cell_size": 64,
                                                "sgrid_size": 96})
    backend, name = make_backend(settings)
    assert isinstance(backend, LocalBackend)
    assert name == "tiny-qwen2-vl"
    return SearchService(indexed, settings, backend, name)


@pytest.fixture
def scripted(indexed, tiny_settings):
    """A SearchService whose model is a local chat server answering the given replies in order."""
    servers = []

    def make(*replies, **settings_update):
        server = start_server(*replies)
        servers.append(server)
        settings = tiny_settings.model_copy(update=settings_update)
        backend = ServerBackend(server.base_url, "scripted", timeout_s=0.5, retries=0, backoff_s=0.01)
        return SearchService(indexed, settings, backend, "scripted"), server

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("method", ["grid", "cot", "first"])
def test_every_method_runs_end_to_end_through_the_tiny_qwen2_vl(tiny_service, method):
    response = tiny_service.run(SearchRequest(Query("a cat"), k=5, kind="image", rerank=method, rerank_k=6))
    report = response.rerank
    assert sorted(report.order) == list(range(6))
    assert [h.rank for h in response.hits] == [1, 2, 3, 4, 5]
    # the page is the top 5 of the reranked 6, each hit keeping its first-stage rank
    assert [h.first_stage_rank for h in response.hits] == [i + 1 for i in report.order[:5]]
    assert len({h.path for h in response.hits}) == 5
    assert report.calls == 1
    assert report.prompt_tokens > report.visual_tokens > 0
    assert response.timings.rerank_s >= report.seconds > 0
    assert report.images_sent
    if method == "first":
        assert report.completion_tokens == 0
        assert report.fallback is None
    else:
        assert report.completion_tokens > 0
        assert report.raw_outputs
        # random weights write garbage: whatever it says, the order is what the parser reads from it, and an
        # answer that names no candidate is a recorded fallback (first-stage order)
        parsed = (parse_ranking(report.raw_outputs[0], 6, letter_marks(6)) if method == "grid"
                  else parse_cot(report.raw_outputs[0], 6, number_marks(6)).ranking)
        assert report.order == parsed.order
        assert (report.fallback is not None) == (parsed.mentioned == 0)


def test_first_ranks_by_the_logits_over_the_marks(tiny_service):
    response = tiny_service.run(SearchRequest(Query("a cat"), k=4, kind="image", rerank="first", rerank_k=4))
    first_stage = tiny_service.searcher.search(Query("a cat"), k=4, kind="image").hits
    from retrieval.query.service import build_candidate
    from retrieval.rerank.grids import make_marked_grid
    from retrieval.rerank.prompts import first_prompt
    from retrieval.query.service import candidate_options

    options = candidate_options(tiny_service.settings)
    grid = make_marked_grid([build_candidate(h, tiny_service.searcher.store.catalog, options).image
                             for h in first_stage], 64)
    scores = tiny_service._backend.first_token_logprobs(first_prompt("a cat", list("ABCD")), [grid.image], "ABCD")
    expected = sorted(range(4), key=lambda i: -scores.logprobs["ABCD"[i]])
    assert response.rerank.order == expected
    assert [h.path for h in response.hits] == [first_stage[i].path for i in expected]


@pytest.mark.parametrize("method", ["sgrid", "sgrid-vic", "pointwise"])
def test_sgrid_on_videos(tiny_service, method):
    response = tiny_service.run(SearchRequest(Query("a ball"), k=4, kind="video", rerank=method))
    assert response.hits
    assert all(h.kind == "video" and h.timestamp is not None for h in response.hits)
    assert response.rerank.method == method
    assert response.rerank.visual_tokens > 0
    # The model saw the first-stage top video as the method's own S-Grid: ViC's (stretched, frames from first
    # to last, no timestamps) for sgrid-vic, gridrank's for sgrid.
    from retrieval.query.service import candidate_options
    from retrieval.rerank.candidates import video_sgrid

    top = tiny_service.searcher.search(Query("a ball"), k=1, kind="video").hits[0]
    expected = video_sgrid(top.path, candidate_options(tiny_service.settings, method))
    assert np.array_equal(np.asarray(response.rerank.images_sent[0]), np.asarray(expected))
    other = video_sgrid(top.path, candidate_options(tiny_service.settings,
                                                    "sgrid" if method == "sgrid-vic" else "sgrid-vic"))
    assert not np.array_equal(np.asarray(expected), np.asarray(other))


def test_scripted_ranking_reorders_the_hits(scripted):
    service, server = scripted(Reply(body=completion("Ranking: C > A > B")))
    first = service.searcher.search(Query("coffee"), k=3, kind="image").hits
    response = service.run(SearchRequest(Query("coffee"), k=3, kind="image", rerank="grid", rerank_k=3))
    assert [h.path for h in response.hits] == [first[2].path, first[0].path, first[1].path]
    assert [h.first_stage_rank for h in response.hits] == [3, 1, 2]
    assert response.rerank.fallback is None
    sent = server.requests[0]["json"]["messages"]
    assert any(part.get("type") == "image_url" for m in sent for part in m["content"] if isinstance(part, dict))


def test_cot_rationale_is_returned(scripted):
    answer = '{"reasoning": "B shows the cup up close.", "ranking": [2, 1, 3]}'
    service, _ = scripted(Reply(body=completion(answer)))
    response = service.run(SearchRequest(Query("coffee"), k=3, kind="image", rerank="cot", rerank_k=3))
    assert response.rerank.rationale == "B shows the cup up close."
    assert [h.first_stage_rank for h in response.hits] == [2, 1, 3]


@pytest.mark.parametrize("reply,why", [
    (Reply(body="<html>bad gateway</html>"), "model call failed"),
    (Reply(body=completion("I cannot help with that."), delay_s=2.0), "model call failed"),
    (Reply(body=completion("no idea, sorry")), "named no candidate"),
])
def test_failures_fall_back_to_first_stage_order_and_say_so(scripted, reply, why):
    service, _ = scripted(reply)
    first = service.searcher.search(Query("coffee"), k=5, kind="image").hits
    response = service.run(SearchRequest(Query("coffee"), k=5, kind="image", rerank="grid", rerank_k=5))
    assert [h.path for h in response.hits] == [h.path for h in first]
    assert why in response.rerank.fallback


def test_first_without_logprobs_generates_a_list_instead(scripted):
    service, _ = scripted(Reply(body=completion("B")), Reply(body=completion("B > A")))
    response = service.run(SearchRequest(Query("coffee"), k=3, kind="image", rerank="first", rerank_k=3))
    assert "ranked by a generated list instead" in response.rerank.fallback
    assert [h.first_stage_rank for h in response.hits][:2] == [2, 1]


def test_sliding_window_covers_more_candidates_than_one_call(scripted):
    service, server = scripted(Reply(body=completion("A > B")), rerank_window=4, rerank_step=2)
    response = service.run(SearchRequest(Query("coffee"), k=10, kind="image", rerank="grid", rerank_k=10))
    assert response.rerank.calls == len(server.requests) == 4  # windows start at 6, 4, 2, 0
    assert sorted(response.rerank.order) == list(range(10))


def test_sqaf_blends_the_target_caption_into_a_composed_query(scripted, tiny_encoder):
    caption = "a black and white photo of a cup of coffee"
    service, server = scripted(Reply(body=completion(caption)), Reply(body=completion("A > B > C")))
    reference = Image.open(SAMPLE / "photos" / "cat_chelsea.jpg").convert("RGB")
    response = service.run(SearchRequest(Query("but black and white", reference), k=3, kind="image",
                                         rerank="grid", rerank_k=3))
    assert response.caption == caption
    base = blend(tiny_encoder.encode_images([reference])[0], tiny_encoder.encode_texts(["but black and white"])[0],
                 0.8)
    expected = blend(base, tiny_encoder.encode_texts([caption])[0], 0.5)
    first_stage = service.searcher.search_vector(expected, 3, "image")
    assert [h.path for h in response.hits] == [h.path for h in first_stage]
    assert len(server.requests) == 2
    assert response.timings.caption_s > 0


@pytest.mark.parametrize("fuse,fuser", [("combsum", combsum), ("rrf", rrf), ("combmnz", combmnz),
                                       ("combsum-z", partial(combsum, normalize=zscore_normalize))])
def test_score_fusion_of_video_retrievers(indexed, tiny_settings, fuse, fuser, tiny_encoder):
    service = SearchService(indexed, tiny_settings)
    response = service.run(SearchRequest(Query("a ball"), k=10, kind="video", fuse=fuse))
    vector = tiny_encoder.encode_texts(["a ball"])[0]
    frames = indexed.search_vector(vector, 10, "video", ResultShape(collapse=False))  # fused lists: not collapsed
    means = indexed.search_video_means(vector, 10)
    subtitles = service._subtitle_scores(vector)
    ranked_subs = sorted(subtitles.items(), key=lambda item: -item[1])
    expected = fuser([RankedList([h.media_id for h in frames], [h.score for h in frames]),
                      RankedList([h.media_id for h in means], [h.score for h in means]),
                      RankedList([m for m, _ in ranked_subs], [s for _, s in ranked_subs])])
    assert [h.media_id for h in response.hits] == expected.ids
    assert np.allclose([h.score for h in response.hits], expected.scores)
    assert response.fusion == fuse
    assert service._backend is None  # no model needed


def test_vic_fusion_ranks_unique_videos_once(scripted):
    service, server = scripted(Reply(body=completion("[3, 1, 2]")))
    response = service.run(SearchRequest(Query("a ball"), k=10, kind="video", fuse="vic"))
    ids = [h.media_id for h in response.hits]
    assert len(ids) == len(set(ids)) == service.searcher.store.catalog.counts().videos
    assert response.rerank.method == "vic"
    assert response.rerank.fallback is None
    prompt = server.requests[0]["json"]["messages"]
    text = " ".join(p.get("text", "") for m in prompt for p in m["content"] if isinstance(p, dict))
    assert "Image-1: " in text
    assert "Subtitle-" in text
    # As ViC does it: its own words, no system prompt of ours.
    assert 'Given the user query: "a ball", rank these' in text and "-ranked-elements list instantly" in text
    assert [m["role"] for m in prompt] == ["user"]


def test_vic_moves_count_videos_so_a_kept_order_shows_no_moves(scripted):
    # The interleaved list holds each video up to once per retriever; "was #N" must count videos.
    service, _ = scripted(Reply(body=completion("no idea")))
    response = service.run(SearchRequest(Query("a ball"), k=10, kind="video", fuse="vic"))
    assert "named no candidate" in response.rerank.fallback
    assert [h.first_stage_rank for h in response.hits] == [h.rank for h in response.hits]


def test_vic_first_stage_ranks_are_places_among_unique_videos(scripted):
    service, _ = scripted(Reply(body=completion("[3, 1, 2]")))
    response = service.run(SearchRequest(Query("a ball"), k=10, kind="video", fuse="vic"))
    assert sorted(h.first_stage_rank for h in response.hits) == list(range(1, len(response.hits) + 1))


def test_fusion_needs_video_kind(indexed, tiny_settings):
    with pytest.raises(ValueError, match="kind video"):
        SearchService(indexed, tiny_settings).run(SearchRequest(Query("x"), kind="image", fuse="rrf"))


@pytest.mark.parametrize("fuse,rerank", [(None, "grid"), ("vic", None)])
def test_nothing_found_means_nothing_to_rerank(tmp_path, tiny_settings, tiny_encoder, fuse, rerank):
    root = tmp_path / "photos_only"
    root.mkdir()
    Image.new("RGB", (32, 32), "red").save(root / "a.jpg")
    run_index(root, root / ".gridrank", tiny_settings, encoder=tiny_encoder)
    service = SearchService(Searcher.open(root / ".gridrank", tiny_settings, encoder=tiny_encoder), tiny_settings)
    response = service.run(SearchRequest(Query("x"), k=5, kind="video", rerank=rerank, fuse=fuse))
    assert response.hits == []
    assert response.rerank is None


_GOOD = completion("B > A > C")
MALFORMED = {
    "usage Infinity": _GOOD | {"usage": "INF"},  # replaced by a bare Infinity token below
    "usage NaN": _GOOD | {"usage": {"prompt_tokens": "NAN", "completion_tokens": 3}},
    "top_logprobs an integer": completion("B", logprobs={"content": [{"token": "B", "logprob": -0.1,
                                                                       "top_logprobs": 5}]}),
    "NaN logprobs": completion("B", logprobs={"content": [{"token": "B", "logprob": "NAN", "top_logprobs": [
        {"token": "A", "logprob": "NAN"}, {"token": "B", "logprob": -0.1}]}]}),
    "content a list": {"choices": [{"message": {"content": ["B", "A"]}}]},
}


def _raw(body: dict) -> str:
    """JSON as a careless server writes it: Python's json module happily emits Infinity and NaN."""
    import json

    return (json.dumps(body).replace('"INF"', '{"prompt_tokens": Infinity, "completion_tokens": 3}')
            .replace('"NAN"', "NaN"))


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_server_answer_is_a_recorded_fallback(scripted, case):
    service, _ = scripted(Reply(body=_raw(MALFORMED[case])))
    first = service.searcher.search(Query("coffee"), k=3, kind="image").hits
    method = "first" if "logprobs" in case else "grid"
    response = service.run(SearchRequest(Query("coffee"), k=3, kind="image", rerank=method, rerank_k=3))
    assert [h.path for h in response.hits] == [h.path for h in first]  # first-stage order, no crash
    assert "did not answer with chat-completions JSON" in response.rerank.fallback
    field = {"usage Infinity": "usage.prompt_tokens", "usage NaN": "usage.prompt_tokens",
             "top_logprobs an integer": "top_logprobs", "NaN logprobs": "logprob",
             "content a list": "message.content"}[case]
    assert field in response.rerank.fallback  # the reason names the field


def test_a_cot_answer_cut_off_before_its_ranking_is_a_recorded_fallback(scripted):
    cut = '{"reasoning": "Elements: coffee. Image 2 shows a cup; Image 3 shows a mug; Image 1'
    service, _ = scripted(Reply(body=completion(cut)))
    response = service.run(SearchRequest(Query("coffee"), k=3, kind="image", rerank="cot", rerank_k=3))
    assert "has no JSON ranking" in response.rerank.fallback
    assert response.rerank.order == [1, 2, 0]  # the mentions' order, now said to be a fallback
    whole = completion('{"reasoning": "2 fits", "ranking": [2, 1, 3]}')
    service, _ = scripted(Reply(body=whole))
    response = service.run(SearchRequest(Query("coffee"), k=3, kind="image", rerank="cot", rerank_k=3))
    assert response.rerank.fallback is None


def test_cot_shows_photos_as_large_as_the_model_takes_not_at_grid_cell_size(tiny_service):
    # CoTRR sends each candidate whole and the model scales it: here up to reranker_max_pixels (112 x 112 px).
    response = tiny_service.run(SearchRequest(Query("a cat"), k=4, kind="image", rerank="cot", rerank_k=4))
    areas = [image.width * image.height for image in response.rerank.images_sent]
    assert len(areas) == 4
    assert all(2 * 64 * 64 < area <= 112 * 112 for area in areas)  # grid cells are 64 px


def test_pointwise_scores_each_candidate_alone_in_batched_forwards(tiny_service):
    response = tiny_service.run(SearchRequest(Query("a cat"), k=6, kind="image", rerank="pointwise", rerank_k=6))
    report = response.rerank
    assert (report.calls, report.completion_tokens) == (1, 0)  # 6 pairs: one batched forward, no decoding
    assert report.prompt_tokens > report.visual_tokens > 0
    # The order is the candidates' scores, each scored alone, best first.
    scores = tiny_service._backend.pointwise_scores("a cat", None, report.images_sent).scores
    assert report.order == sorted(range(6), key=lambda i: -scores[i])
