"""Retrieval metrics as pure functions of where the ground truth landed in a ranking.

Tie rule (pessimistic): an item that scores the same as a ground-truth item is ranked before
it. A model that gives every item the same score therefore gets the worst possible rank, never
a lucky one, and results do not depend on the order items happen to be stored in.

Every metric below takes ranks: 1-based positions of a query's relevant items in its final
ranking (first stage, fused or reranked). `ranks_of` turns a ranking into them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pessimistic_order(scores: np.ndarray, relevant: Sequence[int], exclude: Sequence[int] = ()) -> np.ndarray:
    """Item indices best first: higher score first, and among equal scores irrelevant items first.

    `exclude` drops items from the ranking (the reference image of a composed query).
    """
    is_relevant = np.zeros(len(scores), dtype=np.int8)
    is_relevant[list(relevant)] = 1
    # lexsort sorts by its last key first: descending score, then irrelevant (0) before relevant (1).
    order = np.lexsort((is_relevant, -np.asarray(scores, dtype=np.float64)))
    if len(exclude):
        order = order[~np.isin(order, list(exclude))]
    return order


def ranks_of(order: Sequence[int], relevant: Sequence[int]) -> list[int]:
    """1-based positions of the relevant items in `order`, ascending; items not in it are left out."""
    positions = np.flatnonzero(np.isin(np.asarray(order), np.asarray(list(relevant), dtype=np.int64))) + 1
    return positions.tolist()


def best_rank(ranks: Sequence[int], n_items: int) -> int:
    """Rank of the first relevant item; n_items + 1 when none was ranked (it counts as a miss)."""
    return min(ranks, default=n_items + 1)


def recall_at_k(best_ranks: Sequence[int], k: int) -> float:
    """Share of queries with at least one relevant item in the top k (R@K; CIRR's Recall_subset@K
    when the ranks come from the query's subset)."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if not best_ranks:
        return float("nan")
    return sum(1 for r in best_ranks if r <= k) / len(best_ranks)


def average_precision_at_k(ranks: Sequence[int], n_relevant: int, k: int) -> float:
    """AP@k as CIRCO defines it: sum over hits i <= k of precision@i, over min(k, n_relevant)."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if n_relevant < 1:
        raise ValueError("a query needs at least one relevant item")
    hits = sorted(r for r in ranks if r <= k)
    precision_sum = sum(found / rank for found, rank in enumerate(hits, start=1))
    return precision_sum / min(k, n_relevant)


def mean_average_precision_at_k(rank_lists: Sequence[Sequence[int]], n_relevant: Sequence[int], k: int) -> float:
    if len(rank_lists) != len(n_relevant):
        raise ValueError(f"{len(rank_lists)} rank lists but {len(n_relevant)} relevant counts")
    if not rank_lists:
        return float("nan")
    return float(np.mean([average_precision_at_k(r, n, k) for r, n in zip(rank_lists, n_relevant)]))


def median_rank(best_ranks: Sequence[int]) -> float:
    """MdR: median rank of the first relevant item (lower is better)."""
    return float(np.median(best_ranks)) if len(best_ranks) else float("nan")


def mean_rank(best_ranks: Sequence[int]) -> float:
    """MnR: mean rank of the first relevant item (lower is better)."""
    return float(np.mean(best_ranks)) if len(best_ranks) else float("nan")
