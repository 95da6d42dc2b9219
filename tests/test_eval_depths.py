"""Each reranked method's depth and window in eval: its paper's unless set, never capped silently."""

import pytest

from retrieval.errors import EvalInputError
from retrieval.evaluation.depths import PAPER_DEPTHS, MethodDepth, plan_depths
from retrieval.evaluation.plan import plan_methods

IMAGE_METHODS = plan_methods(["clip"], ["none", "grid", "cot", "first"], [], forward=True, has_media=True)
VIDEO_METHODS = plan_methods(["clip", "clip-mean"], ["sgrid"], ["rrf", "vic"], forward=True, has_media=True,
                             media="video")


def test_by_default_each_method_runs_at_its_papers_depth_and_window():
    plan = plan_depths(IMAGE_METHODS + VIDEO_METHODS, candidates=1000)
    assert plan.depths == {
        "clip+grid": MethodDepth(9, 9, 4, PAPER_DEPTHS["grid"].source),
        "clip+cot": MethodDepth(10, 10, 5, PAPER_DEPTHS["cot"].source),  # CoTRR: top 10 in one call
        "clip+first": MethodDepth(100, 20, 10, PAPER_DEPTHS["first"].source),  # FIRST: 100, windows of 20 by 10
        "clip+sgrid": MethodDepth(14, 14, 7, PAPER_DEPTHS["sgrid"].source),  # ViC t2v: 14 S-Grids, one call
        "vic": MethodDepth(14, 14, 1, PAPER_DEPTHS["vic"].source),
    }
    assert plan.notes == []
    assert [plan.depths[m].calls_needed for m in ("clip+grid", "clip+cot", "clip+first", "vic")] == [1, 1, 9, 1]
    assert "TOP_N_FOR_RERANK = 10" in plan.depths["clip+cot"].source


def test_a_set_depth_applies_to_every_method_and_single_call_methods_see_it_in_one_call():
    plan = plan_depths(IMAGE_METHODS, candidates=1000, rerank_k=16)
    assert {name: (d.depth, d.window) for name, d in plan.depths.items()} == {
        "clip+grid": (16, 16), "clip+cot": (16, 16), "clip+first": (16, 16)}
    assert plan.depths["clip+cot"].source.startswith("--rerank-k 16 (paper: 10;")
    assert plan.notes == []


def test_a_single_call_method_past_one_call_slides_and_says_so():
    plan = plan_depths(IMAGE_METHODS, candidates=1000, rerank_k=30)
    assert (plan.depths["clip+cot"].window, plan.depths["clip+cot"].step) == (20, 10)
    assert plan.depths["clip+cot"].calls_needed == 2
    assert any(n.startswith("clip+cot: the paper ranks its candidates in one call; 30 are ranked here in sliding "
                            "windows of 20") for n in plan.notes)
    assert not any(n.startswith("clip+first") for n in plan.notes)  # FIRST slides in its paper too


def test_a_set_window_below_the_depth_is_a_note_for_single_call_methods():
    plan = plan_depths(IMAGE_METHODS, candidates=1000, rerank_window=5, rerank_step=2)
    assert (plan.depths["clip+grid"].window, plan.depths["clip+grid"].step) == (5, 2)
    assert any("clip+grid" in n and "--rerank-window 5" in n for n in plan.notes)
    assert (plan.depths["clip+first"].depth, plan.depths["clip+first"].window) == (100, 5)


def test_vic_cannot_slide_so_a_depth_past_one_call_is_an_error():
    with pytest.raises(EvalInputError, match="vic ranks its interleaved list in one call, at most 20"):
        plan_depths(VIDEO_METHODS, candidates=1000, rerank_k=21)
    plan = plan_depths(VIDEO_METHODS, candidates=1000, rerank_k=20, rerank_window=8)
    assert plan.depths["vic"] == MethodDepth(20, 20, 1, plan.depths["vic"].source)
    assert any("vic: ranks its 20 candidates in one call" in n for n in plan.notes)


def test_depth_past_the_gallery_is_an_error_when_set_and_a_note_when_the_papers():
    with pytest.raises(EvalInputError, match="--rerank-k 12 is larger than the 6 items a query can rank"):
        plan_depths(IMAGE_METHODS, candidates=6, rerank_k=12)
    plan = plan_depths(IMAGE_METHODS, candidates=6)
    assert {d.depth for d in plan.depths.values()} == {6}
    assert "clip+first: the paper reranks 100, this benchmark has 6 items per query: reranks all 6" in plan.notes


def test_methods_without_a_model_get_no_depth():
    methods = plan_methods(["clip"], ["grid"], [], forward=True, has_media=True, composed=True)
    assert list(plan_depths(methods, candidates=100).depths) == ["clip+sqaf+grid"]


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
