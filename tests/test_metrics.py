"""Metrics against values worked out by hand, including ties and several ground truths."""

import numpy as np
import pytest

from retrieval.evaluation.metrics import (average_precision_at_k, best_rank, mean_average_precision_at_k, mean_rank,
                               median_rank, pessimistic_order, ranks_of, recall_at_k)


def test_order_is_by_score_and_ties_go_against_the_ground_truth():
    scores = np.array([0.2, 0.9, 0.5, 0.9, 0.1])
    # Item 3 ties item 1 at 0.9: the irrelevant item 1 goes first.
    assert pessimistic_order(scores, [3]).tolist() == [1, 3, 2, 0, 4]
    assert pessimistic_order(scores, [1]).tolist() == [3, 1, 2, 0, 4]
    assert ranks_of(pessimistic_order(scores, [3]), [3]) == [2]


def test_all_equal_scores_give_the_worst_rank():
    scores = np.zeros(5)
    order = pessimistic_order(scores, [0, 2])
    assert ranks_of(order, [0, 2]) == [4, 5]
    assert best_rank(ranks_of(order, [0, 2]), 5) == 4


def test_excluded_items_leave_the_ranking():
    scores = np.array([1.0, 0.8, 0.6])  # item 0 is the reference image of a composed query
    order = pessimistic_order(scores, [2], exclude=[0])
    assert order.tolist() == [1, 2]
    assert ranks_of(order, [2]) == [2]


def test_a_missing_ground_truth_is_a_miss():
    assert best_rank([], 10) == 11


def test_recall_at_k_counts_queries_with_any_hit_in_the_top_k():
    best = [1, 3, 6, 50, 51]
    assert recall_at_k(best, 1) == pytest.approx(1 / 5)
    assert recall_at_k(best, 5) == pytest.approx(2 / 5)
    assert recall_at_k(best, 10) == pytest.approx(3 / 5)
    assert recall_at_k(best, 50) == pytest.approx(4 / 5)
    with pytest.raises(ValueError):
        recall_at_k(best, 0)


def test_recall_with_five_captions_per_image_counts_the_best_caption():
    # Image query, 8 captions, its captions are 2, 5, 6 (scores tie between caption 5 and 7).
    scores = np.array([0.9, 0.1, 0.4, 0.2, 0.3, 0.6, 0.0, 0.6])
    ranks = ranks_of(pessimistic_order(scores, [2, 5, 6]), [2, 5, 6])
    assert ranks == [3, 4, 8]  # 0.9 (0), 0.6 (7, irrelevant first), 0.6 (5), 0.4 (2) ... 0.0 (6)
    assert recall_at_k([best_rank(ranks, 8)], 1) == 0.0
    assert recall_at_k([best_rank(ranks, 8)], 3) == 1.0


def test_average_precision_as_circo_defines_it():
    # Hits at ranks 1, 3 and 6 of 4 relevant items.
    assert average_precision_at_k([1, 3, 6, 60], 4, 5) == pytest.approx((1 / 1 + 2 / 3) / 4)
    assert average_precision_at_k([1, 3, 6, 60], 4, 10) == pytest.approx((1 + 2 / 3 + 3 / 6) / 4)
    # Fewer than k relevant items: divide by their number, so finding them all scores 1.
    assert average_precision_at_k([1, 2], 2, 5) == pytest.approx(1.0)
    # More relevant items than k: divide by k.
    assert average_precision_at_k([2], 10, 5) == pytest.approx((1 / 2) / 5)
    assert average_precision_at_k([], 3, 5) == 0.0
    with pytest.raises(ValueError):
        average_precision_at_k([1], 0, 5)


def test_map_averages_over_queries():
    value = mean_average_precision_at_k([[1], [2, 3]], [1, 2], 5)
    assert value == pytest.approx((1.0 + (1 / 2 + 2 / 3) / 2) / 2)


def test_map_with_ties_against_the_ground_truth():
    scores = np.array([0.5, 0.5, 0.5, 0.1])  # everything relevant ties with item 1
    ranks = ranks_of(pessimistic_order(scores, [0, 2]), [0, 2])
    assert ranks == [2, 3]
    assert average_precision_at_k(ranks, 2, 5) == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_median_and_mean_rank():
    assert median_rank([1, 2, 10]) == 2.0
    assert median_rank([1, 2, 3, 10]) == 2.5
    assert mean_rank([1, 2, 3, 10]) == 4.0
    assert np.isnan(mean_rank([]))
