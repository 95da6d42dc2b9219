"""First stages and score fusions over every query of a task at once: numpy, no model, no loop per query.

The same rankings as a query-by-query run would give (tests/test_eval_batch.py holds them side by
side): a retriever's order is pessimistic on ties (metrics.pessimistic_order), a fusion's is its own
order (rerank/fusion.py, the code a search fuses with), items no retriever returned tie at the bottom,
pessimistically. Excluded items (a composed query's reference) are never counted.

Only the ground truth's ranks are needed, so they are counted (how many items come before each
ground truth) rather than sorted; only the fused lists' inputs, each retriever's top list, are sorted,
once per task for every fusion.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from retrieval.evaluation.methods import FUSION_DEPTH, Method
from retrieval.evaluation.results import SUBSET_TOP, QueryOutcome
from retrieval.evaluation.tasks import RankingTask
from retrieval.rerank.fusion import SCORE_FUSIONS, DenseLists

PAIR_BLOCK = 1 << 24  # (ground-truth pairs x items) compared per block: bounds memory on large galleries


@dataclass(frozen=True)
class _Masks:
    relevant: np.ndarray  # (queries x items) bool
    excluded: np.ndarray
    in_subset: np.ndarray | None  # CIRR: each query's image set, its reference left out
    pairs: tuple[np.ndarray, np.ndarray]  # (query row, item) of every ground truth, in task order
    # The pessimistic tie-break among equal scores: irrelevant items first, then by index (distinct per row;
    # int32: half the memory of int64 to gather).
    tie_order: np.ndarray

    @classmethod
    def of(cls, task: RankingTask) -> _Masks:
        relevant = np.zeros((task.n_queries, task.n_items), dtype=bool)
        excluded = np.zeros_like(relevant)
        for row, (items, left_out) in enumerate(zip(task.relevant, task.excluded)):
            relevant[row, list(items)] = True
            excluded[row, list(left_out)] = True
        in_subset = None
        if task.subsets is not None:
            in_subset = np.zeros_like(relevant)
            for row, subset in enumerate(task.subsets):
                if subset is not None:
                    in_subset[row, list(subset)] = True
            in_subset &= ~excluded
        rows = np.repeat(np.arange(task.n_queries), [len(items) for items in task.relevant])
        items = np.array([i for items in task.relevant for i in items], dtype=np.int64)
        n = task.n_items
        tie_order = relevant * np.int32(n) + np.arange(n, dtype=np.int32)
        return cls(relevant, excluded, in_subset, (rows, items), tie_order)


def pessimistic_orders(scores: np.ndarray, relevant: np.ndarray, excluded: np.ndarray) -> np.ndarray:
    """Every row's items best first, ties with the ground truth against it, excluded items last (then by index).

    float32 scores (what CLIP gives) and up to 2^20 items fold into one int64 key per item, so one
    quicksort replaces a three-key lexsort (half the time); the keys are distinct, so the order is the same.
    The key is built in int32 where it can be and the two masks, which are sparse, are set by index:
    building it had cost more than the sort.
    """
    n = scores.shape[1]
    if scores.dtype != np.float32 or n > 1 << 20:
        return np.lexsort((relevant, -scores.astype(np.float64), excluded), axis=-1)
    bits = (scores + np.float32(0)).view(np.int32)  # + 0 turns -0.0 into 0.0: they compare equal
    # IEEE floats as integers in descending order: flip the magnitude bits of non-negative ones, and
    # the sign bit of every one so that the order holds as unsigned numbers (in [0, 2^32)).
    descending = (bits ^ (~(bits >> 31) & np.int32(0x7FFFFFFF))).view(np.uint32)
    key = np.left_shift(descending, 21, dtype=np.int64)
    key |= np.arange(n)
    key[relevant] |= 1 << 20
    key[excluded] |= 1 << 53
    return np.argsort(key, axis=-1)


def _ranks_before(primary: np.ndarray, secondary: np.ndarray, masks: _Masks, among: np.ndarray) -> np.ndarray:
    """For every ground-truth pair (q, r): 1 + how many items j of `among[q]` come before r, where j comes
    first if primary[q, j] > primary[q, r], or they are equal and secondary[q, j] < secondary[q, r].
    (Secondary keys are distinct within a row, so no two items tie.)"""
    rows, items = masks.pairs
    ranks = np.empty(len(rows), dtype=np.int64)
    step = max(1, PAIR_BLOCK // max(primary.shape[1], 1))
    for start in range(0, len(rows), step):
        q, r = rows[start:start + step], items[start:start + step]
        p, s = primary[q], secondary[q]
        p_r, s_r = primary[q, r][:, None], secondary[q, r][:, None]
        before = ((p > p_r) | ((p == p_r) & (s < s_r))) & among[q]
        ranks[start:start + step] = before.sum(axis=1) + 1
    return ranks


def _retriever_keys(scores: np.ndarray, masks: _Masks) -> tuple[np.ndarray, np.ndarray]:
    """Keys for the pessimistic rule: higher score first; on a tie irrelevant items first, then by index."""
    return scores, masks.tie_order  # the scores as given: float32 compares as float64 would


def _fusion_keys(method: Method, top_lists: DenseLists, masks: _Masks) -> tuple[np.ndarray, np.ndarray]:
    """Keys for a fused ranking: listed items by fused score, ties by round-robin order; then the
    unlisted ones, pessimistically (irrelevant first, then by index)."""
    fused = SCORE_FUSIONS[method.target].dense(top_lists)
    primary = np.where(fused.present, fused.totals, -np.inf)
    secondary = np.where(fused.present, fused.first_seen - np.iinfo(np.int64).max, masks.tie_order)
    return primary, secondary


def _top_lists(task: RankingTask, masks: _Masks) -> DenseLists:
    """Each retriever's top FUSION_DEPTH per query, pessimistic on ties, excluded items never listed: where
    each list places each item (its scores are the matrix itself)."""
    matrices = task.fusion_inputs
    # int32: half the memory of int64 to fill, and a gallery holds fewer than 2^31 items.
    position = np.full((len(matrices), *masks.relevant.shape), -1, dtype=np.int32)

    def place(k: int) -> None:
        top = pessimistic_orders(matrices[k], masks.relevant, masks.excluded)[:, :FUSION_DEPTH]
        np.put_along_axis(position[k], top, np.arange(top.shape[1], dtype=np.int32), axis=-1)
        position[k][masks.excluded] = -1  # they sort last: in the list only when it holds every item

    # The sorts dominate, and numpy sorts without the GIL: one thread per core.
    with ThreadPoolExecutor(max_workers=min(len(matrices), os.cpu_count() or 1)) as pool:
        list(pool.map(place, range(len(matrices))))
    return DenseLists(position, np.stack(matrices))


def outcomes(task: RankingTask, methods: list[Method]) -> dict[str, list[QueryOutcome]]:
    """Every query's outcome under each retriever or score fusion in `methods`, by method name."""
    masks = _Masks.of(task)
    top_lists = _top_lists(task, masks) if any(m.kind == "fusion" for m in methods) else None

    def ranked(method: Method) -> list[QueryOutcome]:
        if method.kind == "retriever":
            primary, secondary = _retriever_keys(task.retrievers[method.target], masks)
        elif method.kind == "fusion" and top_lists is not None:
            primary, secondary = _fusion_keys(method, top_lists, masks)
        else:
            raise ValueError(f"{method.name} needs a model: it is ranked query by query")
        ranks = _ranks_before(primary, secondary, masks, ~masks.excluded)
        subset_ranks = (_ranks_before(primary, secondary, masks, masks.in_subset)
                        if masks.in_subset is not None else None)
        tops = _tops(primary, secondary, masks, task.keep_top) if task.keep_top else None
        return _per_query(task, masks, ranks, subset_ranks, tops)

    # Methods are independent and their numpy work runs without the GIL: one thread per core.
    with ThreadPoolExecutor(max_workers=min(len(methods), os.cpu_count() or 1) or 1) as pool:
        return dict(zip((m.name for m in methods), pool.map(ranked, methods)))


def _tops(primary: np.ndarray, secondary: np.ndarray, masks: _Masks, keep: int
          ) -> list[tuple[tuple[int, ...], tuple[int, ...] | None]]:
    """Each query's first `keep` items (excluded ones never), and its first SUBSET_TOP within its CIRR set: what a
    test server's submission file lists. Sorted only for test-server runs, whose galleries are a few thousand."""
    order = np.lexsort((secondary, -primary, masks.excluded), axis=-1)
    tops = []
    for row in range(order.shape[0]):
        listed = order[row][~masks.excluded[row, order[row]]]
        in_subset = masks.in_subset[row, listed] if masks.in_subset is not None else None
        tops.append((tuple(listed[:keep].tolist()),
                     tuple(listed[in_subset][:SUBSET_TOP].tolist()) if in_subset is not None else None))
    return tops


def _per_query(task: RankingTask, masks: _Masks, ranks: np.ndarray, subset_ranks: np.ndarray | None,
               tops: list[tuple[tuple[int, ...], tuple[int, ...] | None]] | None = None) -> list[QueryOutcome]:
    rows, items = masks.pairs
    bounds = np.cumsum([0, *(len(items_) for items_ in task.relevant)])
    outcomes_: list[QueryOutcome] = []
    for row, (start, end) in enumerate(zip(bounds[:-1], bounds[1:])):
        in_subset = None
        if subset_ranks is not None and task.subsets[row] is not None:
            members = masks.in_subset[row, items[start:end]]
            in_subset = tuple(sorted(subset_ranks[start:end][members].tolist()))
        target = task.targets[row] if task.targets else None
        target_rank = (int(ranks[start:end][items[start:end] == target][0])
                       if target is not None and target in items[start:end] else None)
        top, subset_top = tops[row] if tops is not None else (None, None)
        outcomes_.append(QueryOutcome(row, tuple(sorted(ranks[start:end].tolist())), int(end - start), in_subset,
                                      target_rank=target_rank, top=top, subset_top=subset_top))
    return outcomes_
