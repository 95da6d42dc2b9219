import pytest
from hypothesis import given, strategies as st

from retrieval.rerank.windows import sliding_window_rerank


class ScriptedRanker:
    """Stands in for the model: sorts each window by a hidden true relevance, logs windows."""

    def __init__(self, relevance):
        self.relevance = relevance
        self.windows = []

    def __call__(self, ids):
        self.windows.append(list(ids))
        return sorted(ids, key=lambda i: -self.relevance[i])


def test_best_item_bubbles_from_the_bottom_to_the_top_in_one_pass():
    order = list(range(10))
    relevance = {i: 0.0 for i in order}
    relevance[9] = 1.0  # the best candidate is last in first-stage order
    ranker = ScriptedRanker(relevance)
    result = sliding_window_rerank(order, window=4, step=2, rank_window=ranker)
    assert result[0] == 9
    assert sorted(result) == order


def test_windows_go_bottom_up_and_the_last_is_clipped_at_the_top():
    ranker = ScriptedRanker({i: 0.0 for i in range(9)})
    sliding_window_rerank(list(range(9)), window=4, step=2, rank_window=ranker)
    assert ranker.windows == [[5, 6, 7, 8], [3, 4, 5, 6], [1, 2, 3, 4], [0, 1, 2]]


def test_short_list_is_one_window_and_trivial_lists_make_no_call():
    ranker = ScriptedRanker({"a": 1, "b": 3, "c": 2})
    assert sliding_window_rerank(["a", "b", "c"], 5, 2, ranker) == ["b", "c", "a"]
    assert ranker.windows == [["a", "b", "c"]]
    ranker.windows.clear()
    assert sliding_window_rerank([], 5, 2, ranker) == []
    assert sliding_window_rerank(["a"], 5, 2, ranker) == ["a"]
    assert ranker.windows == []


def test_input_is_not_mutated():
    order = [0, 1, 2, 3, 4]
    sliding_window_rerank(order, 3, 1, ScriptedRanker({i: i for i in order}))
    assert order == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("window, step", [(4, 4), (3, 5), (4, 0), (0, 0), (3, -1)])
def test_window_must_exceed_step_and_step_be_positive(window, step):
    with pytest.raises(ValueError, match="window > step > 0"):
        sliding_window_rerank([1, 2, 3], window, step, lambda ids: ids)


def test_rank_window_must_return_a_reordering():
    with pytest.raises(ValueError, match="reordering"):
        sliding_window_rerank([1, 2, 3], 2, 1, lambda ids: ids[:1])
    with pytest.raises(ValueError, match="reordering"):
        sliding_window_rerank([1, 2, 3], 2, 1, lambda ids: [ids[0], ids[0]])
    with pytest.raises(ValueError, match="repeated"):
        sliding_window_rerank([1, 1, 2], 2, 1, lambda ids: ids)


@given(
    st.lists(st.floats(0, 1), min_size=0, max_size=60),
    st.integers(2, 12).flatmap(lambda w: st.tuples(st.just(w), st.integers(1, w - 1))),
)
def test_one_pass_puts_the_true_top_window_minus_step_first(relevances, window_step):
    window, step = window_step
    order = list(range(len(relevances)))
    relevance = dict(enumerate(relevances))
    result = sliding_window_rerank(order, window, step, ScriptedRanker(relevance))
    assert sorted(result) == order
    # Every window carries its best window - step items into the next, so they end on top.
    top = window - step
    by_relevance = sorted(order, key=lambda i: -relevance[i])
    assert [relevance[i] for i in result[:top]] == [relevance[i] for i in by_relevance[:top]]
