import numpy as np
import pytest
from hypothesis import given, strategies as st

from retrieval.rerank.fusion import (
    RankedList,
    collapse_duplicates,
    combsum,
    minmax_normalize,
    round_robin_interleave,
    rrf,
)


def ranked(*ids, scores=None):
    return RankedList(list(ids), list(scores) if scores is not None else [0.0] * len(ids))


def test_rrf_exact_values_with_k_60():
    fused = rrf([ranked("a", "b", "c"), ranked("b", "c", "d")])
    assert fused.ids == ["b", "c", "a", "d"]
    expected = [1 / 62 + 1 / 61, 1 / 63 + 1 / 62, 1 / 61, 1 / 63]
    assert fused.scores == pytest.approx(expected, abs=1e-15)


def test_rrf_other_k_and_ignores_scores():
    fused = rrf([ranked("x", "y", scores=[0.1, 100.0])], k=0)
    assert fused.ids == ["x", "y"]
    assert fused.scores == [1.0, 0.5]
    with pytest.raises(ValueError):
        rrf([ranked("x")], k=-1)


def test_rrf_ties_follow_round_robin_order():
    assert rrf([ranked("a", "b"), ranked("b", "a")]).ids == ["a", "b"]
    assert rrf([ranked("b", "a"), ranked("a", "b")]).ids == ["b", "a"]
    # Same totals from different lists: rank 1 of list 0, then rank 1 of list 1, ...
    assert rrf([ranked("p"), ranked("q"), ranked("r")]).ids == ["p", "q", "r"]


def test_combsum_min_max_normalizes_and_sums_with_ties():
    first = ranked("a", "b", "c", scores=[0.9, 0.5, 0.1])  # -> 1, 0.5, 0
    second = ranked("c", "a", scores=[3.0, 1.0])  # -> 1, 0
    fused = combsum([first, second])
    # a = 1 + 0, c = 0 + 1 (tie, a seen first in round-robin), b = 0.5
    assert fused.ids == ["a", "c", "b"]
    assert fused.scores == pytest.approx([1.0, 1.0, 0.5])


def test_combsum_missing_ids_count_zero_and_scale_does_not_matter():
    first = ranked("a", "b", scores=[1000, 0])  # -> 1, 0
    second = ranked("b", "c", "d", scores=[0.3, 0.2, 0.1])  # -> 1, 0.5, 0
    fused = combsum([first, second])
    # a = 1 (absent from the second list), b = 0 + 1: a tie, a comes first in round-robin.
    assert fused.ids == ["a", "b", "c", "d"]
    assert fused.scores == pytest.approx([1.0, 1.0, 0.5, 0.0])


def _normalized(normalize, scores):
    values = np.array([scores], dtype=np.float64).reshape(1, -1)
    return normalize(values, np.ones_like(values, dtype=bool))[0].tolist()


def test_all_equal_scores_normalize_to_zero_without_dividing_by_zero():
    assert _normalized(minmax_normalize, [2.5, 2.5, 2.5]) == [0.0, 0.0, 0.0]
    assert _normalized(minmax_normalize, [7.0]) == [0.0]
    assert _normalized(minmax_normalize, []) == []
    assert _normalized(minmax_normalize, [1, 3, 2]) == [0.0, 1.0, 0.5]
    # Padding (valid False) neither counts nor gets a score.
    padded = minmax_normalize(np.array([[1.0, 3.0, 99.0]]), np.array([[True, True, False]]))
    assert padded.tolist() == [[0.0, 1.0, 0.0]]
    fused = combsum([ranked("a", "b", scores=[4, 4]), ranked("b", "a", scores=[1, 0])])
    assert fused.ids == ["b", "a"]
    assert fused.scores == [1.0, 0.0]


def test_empty_inputs():
    for fuse in (combsum, rrf):
        assert fuse([]) == RankedList([], [])
        assert fuse([ranked(), ranked("a")]).ids == ["a"]
    assert round_robin_interleave([]) == []


def test_ranked_list_validation():
    with pytest.raises(ValueError, match="scores"):
        RankedList(["a", "b"], [1.0])
    with pytest.raises(ValueError, match="repeat"):
        RankedList(["a", "a"], [1.0, 0.5])
    with pytest.raises(ValueError, match="finite"):
        RankedList(["a"], [float("nan")])


def test_round_robin_interleave_keeps_duplicates():
    lists = [ranked("a", "b", "c"), ranked("b", "d")]
    assert round_robin_interleave(lists) == ["a", "b", "b", "d", "c"]
    assert round_robin_interleave(lists, limit=3) == ["a", "b", "b"]


def test_collapse_duplicates_first_occurrence_wins():
    interleaved = ["a", "b", "b", "d", "c"]
    assert collapse_duplicates([2, 0, 1, 3, 4], interleaved) == ["b", "a", "d", "c"]
    assert collapse_duplicates([4, 1, 3, 2, 0], interleaved) == ["c", "b", "d", "a"]
    # Positions a ranking leaves out follow in interleaved order.
    assert collapse_duplicates([3], interleaved) == ["d", "a", "b", "c"]
    with pytest.raises(ValueError, match="outside"):
        collapse_duplicates([5], interleaved)


id_lists = st.lists(
    st.lists(st.integers(0, 15), unique=True, max_size=10), min_size=0, max_size=4
)


@given(id_lists, st.data())
def test_fusions_rank_every_id_once(lists_of_ids, data):
    scores = [
        data.draw(st.lists(st.floats(-1e6, 1e6), min_size=len(ids), max_size=len(ids)))
        for ids in lists_of_ids
    ]
    lists = [RankedList(ids, s) for ids, s in zip(lists_of_ids, scores)]
    every_id = {i for ids in lists_of_ids for i in ids}
    for fuse in (combsum, rrf):
        fused = fuse(lists)
        assert sorted(fused.ids) == sorted(every_id)
        assert fused.scores == sorted(fused.scores, reverse=True)
    interleaved = round_robin_interleave(lists)
    assert len(interleaved) == sum(len(ids) for ids in lists_of_ids)
    permutation = data.draw(st.permutations(range(len(interleaved))))
    assert sorted(collapse_duplicates(permutation, interleaved)) == sorted(every_id)


# Two lists, scores worked by hand: A = 1:3, 2:2, 3:1 and B = 2:10, 4:0.
#   min-max: A -> 1:1, 2:0.5, 3:0; B -> 2:1, 4:0
#   z-score: A (mean 2, std sqrt(2/3)) -> 1:+1.2247, 2:0, 3:-1.2247; B (mean 5, std 5) -> 2:+1, 4:-1
HAND = [RankedList([1, 2, 3], [3.0, 2.0, 1.0]), RankedList([2, 4], [10.0, 0.0])]


@pytest.mark.parametrize("name, ids, scores", [
    ("combsum", [2, 1, 4, 3], [1.5, 1.0, 0.0, 0.0]),  # ties keep round-robin order: 1, 2, 4, 3
    ("combmnz", [2, 1, 4, 3], [3.0, 1.0, 0.0, 0.0]),  # 2 is in both lists: (0.5 + 1) x 2
    ("combsum-z", [1, 2, 4, 3], [1.2247, 1.0, -1.0, -1.2247]),
    ("combmnz-z", [2, 1, 4, 3], [2.0, 1.2247, -1.0, -1.2247]),
])
def test_score_fusions_on_hand_worked_lists(name, ids, scores):
    from retrieval.rerank.methods import fusion_spec

    fused = fusion_spec(name).fuse(HAND)
    assert fused.ids == ids
    assert fused.scores == pytest.approx(scores, abs=1e-4)


def test_zscore_of_equal_scores_is_zero_not_a_division_by_zero():
    from retrieval.rerank.fusion import zscore_normalize

    assert _normalized(zscore_normalize, [0.3, 0.3, 0.3]) == [0.0, 0.0, 0.0]
    assert _normalized(zscore_normalize, []) == []
