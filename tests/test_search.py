"""Search for each kind through the real encoder and FAISS (tiny random weights: assert structure)."""

import numpy as np
import pytest
from PIL import Image

from indexer.pipeline import run_index
from retrieval.store.index_store import ModelMismatchError
from retrieval.query.types import Query, ResultShape
from retrieval.query.search import Searcher, best_frame_per_media, blend
from retrieval.settings import load_settings
from retrieval.store.vector_index import Neighbours
from retrieval.store.ids import vector_id

EVERY_ITEM = ResultShape(collapse=False)  # the sample's copies of a photo and a video stay separate results


@pytest.fixture(scope="module")
def searcher(tmp_path_factory, store_settings, tiny_encoder):
    import shutil

    from sample_media import SAMPLE

    media = tmp_path_factory.mktemp("search") / "media"
    shutil.copytree(SAMPLE, media)
    run_index(media, media / ".gridrank", store_settings, encoder=tiny_encoder)
    return Searcher.open(media / ".gridrank", store_settings, encoder=tiny_encoder)


def test_text_to_image(searcher):
    response = searcher.search(Query("a cat"), k=3, kind="image")
    assert [h.rank for h in response.hits] == [1, 2, 3]
    assert all(h.kind == "image" and h.timestamp is None and h.path.is_file() for h in response.hits)
    scores = [h.score for h in response.hits]
    assert scores == sorted(scores, reverse=True)
    assert response.timings.encode_s > 0
    assert response.timings.search_s > 0


def test_image_query_finds_itself_first(searcher):
    path = sorted(p for p in searcher.store.catalog.media_by_path() if p.endswith(".jpg"))[0]
    hit = searcher.search(Query(image=Image.open(searcher.store.info.root / path)), k=1, kind="image").hits[0]
    assert hit.path == searcher.store.info.root / path
    assert hit.score > 0.99


def test_text_to_video_gives_one_hit_per_video_with_its_moment(searcher):
    videos = searcher.store.catalog.counts().videos
    hits = searcher.search(Query("a red ball bouncing"), k=50, kind="video", shape=EVERY_ITEM).hits
    assert len(hits) == videos
    assert len({h.media_id for h in hits}) == videos
    for hit in hits:
        assert hit.kind == "video"
        assert hit.timestamp is not None
        assert hit.frame_index is not None


def test_any_kind_mixes_images_and_videos(searcher):
    counts = searcher.store.catalog.counts()
    hits = searcher.search(Query("something"), k=100, shape=EVERY_ITEM).hits
    assert len(hits) == counts.images + counts.videos
    assert {h.kind for h in hits} == {"image", "video"}


def test_video_means_retriever(searcher):
    vector = searcher.encode(Query("sunrise"))
    hits = searcher.search_video_means(vector, k=10)
    assert len(hits) == searcher.store.catalog.counts().videos
    assert all(h.kind == "video" and h.timestamp is None for h in hits)


def test_composed_query_blends_image_and_text(searcher, tiny_encoder):
    image = Image.new("RGB", (50, 50), "red")
    vector = searcher.encode(Query("in blue", image))
    expected = blend(tiny_encoder.encode_images([image])[0], tiny_encoder.encode_texts(["in blue"])[0], 0.8)
    assert np.allclose(vector, expected, atol=1e-5)
    assert np.isclose(np.linalg.norm(vector), 1.0, atol=1e-5)


def test_best_frame_per_media_keeps_the_first_of_each():
    ids = np.array([vector_id("video", 2, 5), vector_id("image", 1), vector_id("video", 2, 1)])
    best = best_frame_per_media(Neighbours(ids, np.array([0.9, 0.8, 0.7], np.float32)))
    assert [(b.media_id, b.vector_id) for b in best] == [(2, ids[0]), (1, ids[1])]


def test_another_model_is_a_clear_error(searcher):
    other = load_settings(None, clip_model="RN50", clip_pretrained="openai")
    with pytest.raises(ModelMismatchError, match="gridrank-tiny-clip.*RN50"):
        Searcher.open(searcher.store.index_dir, other)


def test_query_needs_something():
    with pytest.raises(ValueError):
        Query("  ")
