"""A ranking task: one direction of a benchmark as first-stage score matrices and ground truth."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from retrieval.errors import EvalInputError
from retrieval.query.hubness import HubBanks, normalize


@dataclass(frozen=True)
class RankingTask:
    direction: str  # t2i, i2t, cir, t2v, v2t
    retrievers: dict[str, np.ndarray]  # name -> (queries x items) scores; the first is the main first stage
    relevant: list[tuple[int, ...]]  # per query, item indices of the ground truth
    excluded: list[tuple[int, ...]]  # per query, items that are never results (a composed query's reference)
    subsets: list[tuple[int, ...] | None] | None = None  # CIRR: per query, the items Recall_subset ranks
    # CIRCO: per query, the one ground truth that Recall@K, MdR and MnR count (mAP counts them all).
    targets: list[int | None] | None = None
    # Model runs of composed queries: the query and item vectors, for SQAF's caption blending when reranking.
    query_vectors: np.ndarray | None = None
    item_vectors: np.ndarray | None = None
    # Retriever rows computed from the others (hub-normalised scores): compared as rows, never fused.
    derived: tuple[str, ...] = ()
    ground_truth: bool = True  # False: a test split (its server has the ground truth); no metrics
    keep_top: int = 0  # record each query's top this many items, for a test server's submission file

    def __post_init__(self) -> None:
        shapes = {scores.shape for scores in self.retrievers.values()}
        if len(shapes) != 1:
            raise EvalInputError(f"{self.direction}: the similarity matrices differ in shape: {sorted(shapes)}")
        if len(self.relevant) != self.n_queries or len(self.excluded) != self.n_queries:
            raise EvalInputError(f"{self.direction}: {self.n_queries} queries but {len(self.relevant)} ground truths")

    @property
    def main_retriever(self) -> str:
        return next(iter(self.retrievers))

    @property
    def fusion_inputs(self) -> list[np.ndarray]:
        """The first stages a fusion combines: every retriever but the derived rows."""
        return [scores for name, scores in self.retrievers.items() if name not in self.derived]

    @property
    def n_queries(self) -> int:
        return next(iter(self.retrievers.values())).shape[0]

    @property
    def n_items(self) -> int:
        return next(iter(self.retrievers.values())).shape[1]

    @property
    def multiple_ground_truths(self) -> bool:
        return any(len(r) > 1 for r in self.relevant)


def invert_relevance(relevant: Sequence[Sequence[int]], n_items: int) -> list[tuple[int, ...]]:
    """Ground truth of the reverse direction: for each item, the queries that have it as ground truth."""
    inverted: list[list[int]] = [[] for _ in range(n_items)]
    for query, items in enumerate(relevant):
        for item in items:
            inverted[item].append(query)
    return [tuple(queries) for queries in inverted]


def reverse_task(task: RankingTask, direction: str, limit: int | None = None) -> RankingTask:
    """Items as queries over the original queries (i2t from t2i, v2t from t2v): transposed scores."""
    relevant = invert_relevance(task.relevant, task.n_items)
    rows = slice(0, limit)
    return RankingTask(direction, {name: scores.T[rows] for name, scores in task.retrievers.items()},
                       relevant[rows], [()] * len(relevant[rows]))


def hub_normalized_rows(retrievers: dict[str, np.ndarray], banks: dict[str, HubBanks], methods: Sequence[str]
                        ) -> dict[str, np.ndarray]:
    """Rows NAME+qbnorm (and +dbnorm): each retriever's scores renormalised with its own banks (query/hubness.py),
    to be compared beside it as derived rows."""
    return {f"{name}+{method}": normalize(scores, banks[name], method)
            for name, scores in retrievers.items() for method in methods}
