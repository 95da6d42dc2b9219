"""Eval's all-queries-at-once path (evaluation/batch.py) against a query-by-query reference."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.evaluation import batch
from retrieval.evaluation.methods import Method, retriever_lists
from retrieval.evaluation.metrics import pessimistic_order, ranks_of
from retrieval.evaluation.tasks import RankingTask
from retrieval.rerank.methods import fusion_spec


def _task(seed: int, n_queries=30, n_items=25, with_excluded=True) -> RankingTask:
    rng = np.random.default_rng(seed)
    # Rounded scores: ties between items, and between a ground truth and others, are common.
    retrievers = {name: np.round(rng.normal(size=(n_queries, n_items)), 1).astype(np.float32)
                  for name in ("a", "b", "c")}
    relevant = [tuple(sorted(rng.choice(n_items, size=rng.integers(1, 4), replace=False).tolist()))
                for _ in range(n_queries)]
    excluded = [tuple(int(i) for i in rng.choice([i for i in range(n_items) if i not in rel], size=1))
                if with_excluded else () for rel in relevant]
    subsets = [tuple(sorted({*rel, *rng.choice(n_items, size=4, replace=False).tolist()} - set(ex)))
               for rel, ex in zip(relevant, excluded)]
    return RankingTask("cir", retrievers, relevant, excluded, subsets)


def _reference_order(task: RankingTask, method: Method, row: int) -> np.ndarray:
    """One query at a time, as a search ranks: the fused list, then what no retriever returned, pessimistically."""
    relevant, excluded = task.relevant[row], task.excluded[row]
    if method.kind == "retriever":
        return pessimistic_order(task.retrievers[method.target][row], relevant, excluded)
    fused = fusion_spec(method.target).fuse(retriever_lists(task, row))
    rest = [int(i) for i in pessimistic_order(np.zeros(task.n_items), relevant, excluded) if i not in fused.ids]
    return np.array([*fused.ids, *rest])


METHODS = [Method("a", "retriever", "a"), *(Method(name, "fusion", name) for name in
                                             ("combsum", "combmnz", "combsum-z", "combmnz-z", "rrf"))]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.name)
def test_every_query_at_once_ranks_as_one_query_at_a_time(seed, method):
    task = _task(seed)
    outcomes = batch.outcomes(task, [method])[method.name]
    for row, outcome in enumerate(outcomes):
        order = _reference_order(task, method, row)
        assert outcome.ranks == tuple(ranks_of(order, task.relevant[row])), (method.name, row)
        in_subset = order[np.isin(order, task.subsets[row])]
        assert outcome.subset_ranks == tuple(ranks_of(in_subset, task.relevant[row])), (method.name, row)
        assert outcome.n_relevant == len(task.relevant[row])


def test_a_fusion_deeper_than_the_lists_ranks_unlisted_items_last_and_pessimistically(monkeypatch):
    # Lists of 2 over 6 items: the ground truth (item 5) is in no list and ties with items 2-4 at the bottom.
    monkeypatch.setattr(batch, "FUSION_DEPTH", 2)
    scores = np.array([[0.9, 0.8, 0.1, 0.1, 0.1, 0.1]], dtype=np.float32)
    task = RankingTask("t2i", {"a": scores, "b": scores[:, ::-1].copy()}, [(5,)], [()])
    (outcome,) = batch.outcomes(task, [Method("rrf", "fusion", "rrf")])["rrf"]
    # b ranks item 5 (0.9) then item 4 (0.8): item 5 is listed, and RRF ties it with a's rank 1 (item 0).
    assert outcome.ranks == (2,)  # a's rank 1 (item 0) first, then b's rank 1 (item 5)
    task = RankingTask("t2i", {"a": scores, "b": scores}, [(5,)], [()])
    (outcome,) = batch.outcomes(task, [Method("rrf", "fusion", "rrf")])["rrf"]
    assert outcome.ranks == (6,)  # unlisted: after 0, 1 and the other unlisted items 2, 3, 4


def test_the_one_key_sort_orders_as_the_three_key_lexsort():
    # float32 scores fold into one int64 key per item; -0.0 must tie 0.0 as the comparison says.
    rng = np.random.default_rng(1)
    for _ in range(10):
        scores = np.round(rng.standard_normal((40, 300)), 1).astype(np.float32)
        scores[0, :5] = [-0.0, 0.0, -1e-30, 1e30, -1e30]
        relevant, excluded = rng.random(scores.shape) < 0.05, rng.random(scores.shape) < 0.02
        expected = np.lexsort((relevant, -scores.astype(np.float64), excluded), axis=-1)
        assert (batch.pessimistic_orders(scores, relevant, excluded) == expected).all()
