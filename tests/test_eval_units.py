"""Pure pieces of the eval runner: video scores from frames, reverse ground truth, method planning."""

import numpy as np
import pytest

from retrieval.evaluation.embeddings import VideoEmbeddings
from retrieval.evaluation.plan import plan_methods
from retrieval.evaluation.tasks import invert_relevance


def test_videos_score_by_their_best_frame_and_by_their_mean_frame():
    # Video 0 has frames e0 and e1, video 1 has one frame e2.
    frames = np.eye(3, dtype=np.float32)
    videos = VideoEmbeddings(frames, np.array([0, 2]))
    queries = np.array([[0.2, 0.9, 0.0], [0.0, 0.0, 1.0]], dtype=np.float32)
    assert videos.best_frame_scores(queries) == pytest.approx(np.array([[0.9, 0.0], [0.0, 1.0]]))
    s = 1 / np.sqrt(2)
    assert videos.mean_pooled() == pytest.approx(np.array([[s, s, 0], [0, 0, 1]]))


def test_reverse_ground_truth_lists_every_caption_of_an_image():
    # Captions 0-2 describe image 1, caption 3 image 0, caption 4 both (a multi-label case).
    assert invert_relevance([(1,), (1,), (1,), (0,), (0, 1)], 3) == [(3, 4), (0, 1, 2, 4), ()]


def test_planned_methods_put_the_baseline_first_and_rerank_videos_both_ways_as_vic():
    names = [m.name for m in plan_methods(["clip", "clip-mean"], ["none", "sgrid"], ["rrf", "vic"], forward=True,
                                          has_media=True, media="video")]
    assert names == ["clip", "clip-mean", "rrf", "clip+sgrid", "vic"]
    backward = [m.name for m in plan_methods(["clip", "clip-mean"], ["none", "sgrid"], ["rrf", "vic"],
                                             forward=False, has_media=True, media="video")]
    assert backward == ["clip", "clip-mean", "rrf", "clip+sgrid", "vic"]  # ViC's video-to-text: captions ranked
    images = [m.name for m in plan_methods(["clip"], ["none", "grid"], [], forward=False, has_media=True)]
    assert images == ["clip"]  # no image-to-text reranking: no paper here does it


def test_composed_reranking_credits_sqaf_with_its_own_row():
    # A reranked composed query reranks SQAF's first stage: SQAF alone is a row, and the rerankers say what
    # they reranked. Without a reranker no caption is written, so no SQAF row.
    planned = plan_methods(["clip"], ["none", "grid", "cot"], [], forward=True, has_media=True, composed=True)
    assert [(m.name, m.kind) for m in planned] == [("clip", "retriever"), ("clip+sqaf", "sqaf"),
                                                    ("clip+sqaf+grid", "rerank"), ("clip+sqaf+cot", "rerank")]
    assert [m.name for m in plan_methods(["clip"], ["none"], [], forward=True, has_media=True, composed=True)] == [
        "clip"]
    assert [m.name for m in plan_methods(["clip"], ["grid"], [], forward=True, has_media=True)] == ["clip", "clip+grid"]
