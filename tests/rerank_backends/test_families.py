"""Every reranking method through the local backend on a tiny random model of each family users run.

The README's family x method table is this test's: test_the_readme_table_is_what_this_test_runs keeps
them the same. Rankings from random weights mean nothing; the code paths are the real ones.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from indexer.pipeline import run_index
from retrieval.models.tiny_vlm_families import TINY_FAMILIES
from retrieval.query.request import SearchRequest
from retrieval.query.search import Searcher
from retrieval.query.service import SearchService, candidate_options, make_reranker
from retrieval.query.types import Query
from retrieval.rerank.backends.base import BackendError
from retrieval.rerank.backends.local import LocalBackend
from retrieval.rerank.candidates import video_sgrid
from retrieval.rerank.prompts import sqaf_caption_prompt
from retrieval.rerank.types import Candidate
from sample_media import SAMPLE

README = Path(__file__).resolve().parents[2] / "README.md"
# What each method runs on: (search kind, how the request asks for it).
METHODS = {
    "grid": ("image", {"rerank": "grid"}),
    "cot": ("image", {"rerank": "cot"}),
    "first": ("image", {"rerank": "first"}),
    "sgrid": ("video", {"rerank": "sgrid"}),
    "sgrid-vic": ("video", {"rerank": "sgrid-vic"}),
    "vic": ("video", {"fuse": "vic"}),
    "pointwise": ("image", {"rerank": "pointwise"}),
}
OTHER_STEPS = ("SQAF caption", "v2t captions")  # composed queries' caption; ViC's video-to-text ranking
NOT_YET: tuple[str, ...] = ()  # methods the README lists as not built yet


@pytest.fixture(scope="module")
def media(tmp_path_factory, tiny_settings, tiny_encoder) -> Searcher:
    root = tmp_path_factory.mktemp("families") / "media"
    shutil.copytree(SAMPLE / "videos", root / "videos")
    (root / "photos").mkdir()
    for photo in sorted((SAMPLE / "photos").glob("*.jpg"))[:5]:
        shutil.copy(photo, root / "photos" / photo.name)
    run_index(root, root / ".gridrank", tiny_settings, encoder=tiny_encoder)
    return Searcher.open(root / ".gridrank", tiny_settings, encoder=tiny_encoder)


@pytest.mark.parametrize("family", list(TINY_FAMILIES))
def test_every_method_runs_on_each_family(family, media, tiny_settings, tmp_path_factory):
    model_dir = TINY_FAMILIES[family].build(tmp_path_factory.mktemp("models") / family)
    settings = tiny_settings.model_copy(update={"reranker_max_pixels": 112 * 112, "grid_cell_size": 64,
                                                "sgrid_size": 96, "cot_max_new_tokens": 24})
    backend = LocalBackend(model_dir, device="cpu", max_pixels=settings.reranker_max_pixels)
    service = SearchService(media, settings, backend, family)
    for method, (kind, asks) in METHODS.items():
        response = service.run(SearchRequest(Query("a red ball"), k=3, kind=kind, rerank_k=3, **asks))
        report = response.rerank
        assert report is not None, method
        assert report.calls >= 1 and report.visual_tokens > 0 and report.images_sent, method
        assert sorted(report.order) == list(range(len(report.order))), method
        assert (report.completion_tokens == 0) == (method in ("first", "pointwise")), method

    # SQAF: the model writes the composed query's target caption before the reranker runs.
    reference = Image.open(next((SAMPLE / "photos").glob("*.jpg"))).convert("RGB")
    composed = service.run(SearchRequest(Query("make it red", reference), k=3, kind="image", rerank="grid",
                                         rerank_k=3))
    assert composed.timings.caption_s > 0 and composed.rerank.calls == 1

    # ViC's video-to-text: the query video's S-Grid, candidate captions ranked in one call.
    video = next(h for h in media.search(Query("a ball"), k=1, kind="video").hits)
    reranker = make_reranker(settings, backend, family)
    options = candidate_options(settings, "sgrid-vic")
    report = reranker.rerank_captions(Candidate(video_sgrid(video.path, options)), ["a ball", "a cat", "the sun"])
    assert report.calls == 1 and report.visual_tokens > 0 and sorted(report.order) == [0, 1, 2]

    # Pointwise in batched forwards gives each pair the score it gets alone (left padding is right).
    photos = [Image.open(p).convert("RGB") for p in sorted((SAMPLE / "photos").glob("*.jpg"))[:5]]
    one_by_one = LocalBackend(model_dir, device="cpu", max_pixels=settings.reranker_max_pixels, pointwise_batch=1)
    batched = backend.pointwise_scores("a red ball", None, photos)
    assert batched.calls == 1 and one_by_one.pointwise_scores("a red ball", None, photos).calls == 5
    assert batched.scores == pytest.approx(one_by_one.pointwise_scores("a red ball", None, photos).scores, abs=1e-4)


def test_a_family_the_local_backend_does_not_run_is_named_with_those_it_does(tmp_path):
    from transformers import LlavaConfig

    LlavaConfig().save_pretrained(tmp_path)
    with pytest.raises(BackendError, match="is a llava model; the local backend runs Qwen2-VL, Qwen2.5-VL, "
                                           "Qwen3-VL, InternVL3.5 \\(-HF\\): serve it with vLLM"):
        LocalBackend(tmp_path, device="cpu").generate(sqaf_caption_prompt("x"), [Image.new("RGB", (8, 8))], 2)


def test_the_readme_table_is_what_this_test_runs():
    lines = README.read_text().split("### Model families", 1)[1].splitlines()
    header = next(line for line in lines if line.startswith("| family |"))
    columns = [c.strip().strip("`") for c in header.strip("|").split("|")][1:]
    assert columns == [*METHODS, *OTHER_STEPS, *NOT_YET]
    rows = {cells[0]: cells[1:] for line in lines if line.startswith("| ") and not line.startswith(("| family", "|---"))
            for cells in [[c.strip() for c in line.strip("|").split("|")]] if cells[0] in TINY_FAMILIES}
    assert list(rows) == list(TINY_FAMILIES)
    for family, cells in rows.items():
        assert cells == ["tested"] * (len(METHODS) + len(OTHER_STEPS)) + ["not yet"] * len(NOT_YET), family
