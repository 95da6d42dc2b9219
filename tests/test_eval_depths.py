"""Each reranked method's depth and window in eval: its paper's unless set, never capped silently."""

import pytest

from retrieval.errors import EvalInputError
from retrieval.evaluation.depths import PAPER_DEPTHS, MethodDepth, plan_depths
from retrieval.evaluation.plan import plan_methods

IMAGE_METHODS = plan_methods(["clip"], ["none", "grid", "cot", "first"], [], forward=True, has_media=True)
VIDEO_METHODS = plan_methods(["clip", "clip-mean"], ["sgrid"], ["rrf", "vic"], forward=True, has_media=True,
                             media="video")


def test_by_default_each_method_runs_at_its_papers_depth_and_window():
    plan = plan_depths("t2i", IMAGE_METHODS, candidates=1000) + plan_depths("t2v", VIDEO_METHODS, candidates=1000)
    assert plan.depths == {
        "t2i clip+grid": MethodDepth(9, 9, 4, PAPER_DEPTHS["grid"].source),
        "t2i clip+cot": MethodDepth(10, 10, 5, PAPER_DEPTHS["cot"].source),  # CoTRR: top 10 in one call
        "t2i clip+first": MethodDepth(100, 20, 10, PAPER_DEPTHS["first"].source),  # FIRST: 100, windows of 20 by 10
        "t2v clip+sgrid": MethodDepth(14, 14, 7, PAPER_DEPTHS["sgrid"].source),  # ViC t2v: 14 S-Grids, one call
        "t2v vic": MethodDepth(14, 14, 1, PAPER_DEPTHS["vic"].source),
    }
    assert plan.notes == []
    assert [plan.depths[m].calls_needed for m in ("t2i clip+grid", "t2i clip+cot", "t2i clip+first", "t2v vic")] == [1, 1, 9, 1]
    assert "TOP_N_FOR_RERANK = 10" in plan.depths["t2i clip+cot"].source


def test_a_set_depth_applies_to_every_method_and_single_call_methods_see_it_in_one_call():
    plan = plan_depths("t2i", IMAGE_METHODS, candidates=1000, rerank_k=16)
    assert {name: (d.depth, d.window) for name, d in plan.depths.items()} == {
        "t2i clip+grid": (16, 16), "t2i clip+cot": (16, 16), "t2i clip+first": (16, 16)}
    assert plan.depths["t2i clip+cot"].source.startswith("--rerank-k 16 (paper: 10;")
    assert plan.notes == []


def test_a_single_call_method_past_one_call_slides_and_says_so():
    plan = plan_depths("t2i", IMAGE_METHODS, candidates=1000, rerank_k=30)
    assert (plan.depths["t2i clip+cot"].window, plan.depths["t2i clip+cot"].step) == (20, 10)
    assert plan.depths["t2i clip+cot"].calls_needed == 2
    assert any(n.startswith("t2i clip+cot: the paper ranks its candidates in one call; 30 are ranked here in sliding "
                            "windows of 20") for n in plan.notes)
    assert not any(n.startswith("t2i clip+first") for n in plan.notes)  # FIRST slides in its paper too


def test_a_set_window_below_the_depth_is_a_note_for_single_call_methods():
    plan = plan_depths("t2i", IMAGE_METHODS, candidates=1000, rerank_window=5, rerank_step=2)
    assert (plan.depths["t2i clip+grid"].window, plan.depths["t2i clip+grid"].step) == (5, 2)
    assert any("t2i clip+grid" in n and "--rerank-window 5" in n for n in plan.notes)
    assert (plan.depths["t2i clip+first"].depth, plan.depths["t2i clip+first"].window) == (100, 5)


def test_vic_cannot_slide_so_a_depth_past_one_call_is_an_error():
    with pytest.raises(EvalInputError, match="t2v vic ranks its interleaved list in one call, at most 20"):
        plan_depths("t2v", VIDEO_METHODS, candidates=1000, rerank_k=21)
    plan = plan_depths("t2v", VIDEO_METHODS, candidates=1000, rerank_k=20, rerank_window=8)
    assert plan.depths["t2v vic"] == MethodDepth(20, 20, 1, plan.depths["t2v vic"].source)
    assert any("t2v vic: ranks its 20 candidates in one call" in n for n in plan.notes)


def test_depth_past_the_gallery_is_an_error_when_set_and_a_note_when_the_papers():
    with pytest.raises(EvalInputError, match="--rerank-k 12 is larger than the 6 items a query can rank"):
        plan_depths("t2i", IMAGE_METHODS, candidates=6, rerank_k=12)
    plan = plan_depths("t2i", IMAGE_METHODS, candidates=6)
    assert {d.depth for d in plan.depths.values()} == {6}
    assert "t2i clip+first: the paper reranks 100, this benchmark has 6 items per query: reranks all 6" in plan.notes


def test_methods_without_a_model_get_no_depth():
    methods = plan_methods(["clip"], ["grid"], [], forward=True, has_media=True, composed=True)
    assert list(plan_depths("cir", methods, candidates=100).depths) == ["cir clip+sqaf+grid"]


def test_a_resumed_run_may_add_methods_but_not_change_a_methods_depth(tmp_path):
    import json

    from retrieval.evaluation.runner import check_resumable

    grid = {"depth": 9, "window": 9, "step": 4, "source": "SQUARE"}
    check_resumable(tmp_path, {"task": "t2i", "depths": {"clip+grid": grid}, "depth_notes": []})
    first = {"depth": 6, "window": 6, "step": 3, "source": "FIRST"}
    check_resumable(tmp_path, {"task": "t2i", "depths": {"clip+first": first}, "depth_notes": ["a note"]})
    recorded = json.loads((tmp_path / "run.json").read_text())
    assert recorded["depths"] == {"clip+grid": grid, "clip+first": first}
    assert recorded["depth_notes"] == ["a note"]
    with pytest.raises(EvalInputError, match=r"depths of clip\+grid: .*'depth': 9.* -> .*'depth': 5"):
        check_resumable(tmp_path, {"task": "t2i", "depths": {"clip+grid": {**grid, "depth": 5}}})


def test_video_to_text_ranks_vics_20_captions_in_one_call():
    methods = plan_methods(["clip", "clip-mean"], ["sgrid"], ["vic"], forward=False, has_media=True, media="video")
    assert [m.name for m in methods][-2:] == ["clip+sgrid", "vic"]
    plan = plan_depths("v2t", methods, candidates=1000)
    assert plan.depths["v2t vic"] == MethodDepth(20, 20, 1, PAPER_DEPTHS["vic-v2t"].source)
    assert "num_captions = 20" in plan.depths["v2t clip+sgrid"].source
    with pytest.raises(EvalInputError, match="v2t clip\\+sgrid ranks a video's captions in one call"):
        plan_depths("v2t", methods, candidates=1000, rerank_k=30)


def test_the_pointwise_baseline_reaches_20_deep_and_needs_no_windows():
    methods = plan_methods(["clip"], ["pointwise"], [], forward=True, has_media=True)
    assert plan_depths("t2i", methods, candidates=1000).depths["t2i clip+pointwise"].depth == 20
    deep = plan_depths("t2i", methods, candidates=1000, rerank_k=50)
    assert deep.depths["t2i clip+pointwise"].depth == 50 and deep.notes == []  # scored alone: no sliding
    small = plan_depths("t2i", methods, candidates=6)  # no paper to name: the note says whose depth it is
    assert small.notes == ["t2i clip+pointwise: the baseline by default reranks 20, this benchmark has 6 items per "
                           "query: reranks all 6"]
