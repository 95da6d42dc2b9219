"""Fusing several first-stage ranked lists: CombSUM, CombMNZ, RRF and the ViC interleave.

Score fusions normalise each list's scores over the whole list it returned, by min-max or by
z-score ("zmuv" in ranx: zero mean, unit variance), as ranx's comb_sum / comb_mnz with
norm="min-max" / "zmuv" do; an id absent from a list adds nothing there.

Ties are broken by round-robin order (rank 1 of every list in list order, then rank 2, ...),
so equal fused scores never depend on dict or hash order, nor on which item is the ground truth.

One implementation over item-indexed arrays (`fuse_dense`) serves a search (one query) and eval (a whole
benchmark at once), so both rank by the same arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np

RRF_K = 60  # the constant from Cormack et al.; damps the weight of the very top ranks


@dataclass(frozen=True)
class RankedList:
    """One retriever's result, best first; a higher score is better."""

    ids: list[Hashable]
    scores: list[float]

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.scores):
            raise ValueError(f"{len(self.ids)} ids but {len(self.scores)} scores")
        if len(set(self.ids)) != len(self.ids):
            raise ValueError("a ranked list must not repeat an id")
        if not all(math.isfinite(s) for s in self.scores):
            raise ValueError("scores must be finite numbers")


@dataclass(frozen=True)
class DenseLists:
    """K retrievers' ranked lists for Q queries over items 0..n-1, indexed by item: where each list places
    each item, and the score it gives it. Every operation of a fusion is then elementwise.

    Eval fuses every query of a benchmark at once through this form; a search fuses its one query
    through it too (`fuse_lists`), so both rank by the same arithmetic.
    """

    position: np.ndarray  # (K, Q, n) 0-based place of the item in list k; -1 where list k does not hold it
    scores: np.ndarray  # (K, Q, n) list k's score of the item (read only where it holds it)

    # What every fusion of the same lists shares, computed once (eval runs several on one benchmark).
    @cached_property
    def listed(self) -> np.ndarray:
        """(K, Q, n) list k holds the item."""
        return self.position >= 0

    @cached_property
    def first_seen(self) -> np.ndarray:
        """(Q, n) round-robin position of the item's first appearance (rank 1 of every list in list order,
        then rank 2, ...): the tie-break; int64 max where no list holds it."""
        n_lists = len(self.position)
        first = np.full(self.position.shape[1:], np.iinfo(np.int64).max, dtype=np.int64)
        for k in range(n_lists):
            round_robin = np.multiply(self.position[k], n_lists, dtype=np.int64) + k
            np.minimum(first, round_robin, out=first, where=self.listed[k])
        return first


@dataclass(frozen=True)
class FusedScores:
    totals: np.ndarray  # (Q, n_items) fused scores; 0 for items no list holds
    present: np.ndarray  # (Q, n_items) some list holds the item
    first_seen: np.ndarray  # (Q, n_items) round-robin position of its first appearance: the tie-break

    def order(self) -> np.ndarray:
        """(Q, n_items) item indices: present ones by fused score, ties by round-robin order; then the rest."""
        return np.lexsort((self.first_seen, -self.totals, ~self.present), axis=-1)


# (scores, valid) -> float64 scores normalised over each row's valid entries, 0 where not valid.
Normalizer = Callable[[np.ndarray, np.ndarray], np.ndarray]


def minmax_normalize(scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Each row scaled to [0, 1] over its valid entries; all-equal rows carry no signal and become zeros."""
    low = np.min(scores, axis=-1, keepdims=True, initial=np.inf, where=valid).astype(np.float64)
    span = np.max(scores, axis=-1, keepdims=True, initial=-np.inf, where=valid).astype(np.float64) - low
    span[~(span > 0)] = np.inf  # all equal, or no valid entry: dividing by inf gives the zeros
    return np.divide(scores - low, span, out=np.zeros(scores.shape), where=valid)


def zscore_normalize(scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(s - mean) / std over each row's valid entries, std the population one floored at 1e-9 (ranx's zmuv_norm)."""
    n = np.maximum(valid.sum(axis=-1, keepdims=True), 1)
    mean = np.sum(scores, axis=-1, keepdims=True, dtype=np.float64, where=valid) / n
    centered = np.subtract(scores, mean, out=np.zeros(scores.shape), where=valid)
    std = np.sqrt(np.sum(centered * centered, axis=-1, keepdims=True) / n)
    return np.divide(centered, np.maximum(std, 1e-9), out=centered)


FusionKind = Literal["sum", "mnz", "rrf"]


def fuse_dense(lists: DenseLists, kind: FusionKind, normalize: Normalizer = minmax_normalize,
               rrf_k: int = RRF_K) -> FusedScores:
    """CombSUM ("sum": the sum of each list's normalized scores, Fox & Shaw 1993), CombMNZ ("mnz": that sum
    times the number of lists holding the item) or RRF ("rrf": the sum of 1 / (k + rank), 1-based ranks,
    scores ignored), for every query at once. Lists add up in their order, as ranx's fusions do."""
    if rrf_k < 0:
        raise ValueError(f"RRF k must be >= 0, got {rrf_k}")
    n_lists, n_queries, n = lists.position.shape
    totals = np.zeros((n_queries, n))
    for k in range(n_lists):
        listed = lists.listed[k]
        totals += (np.divide(1.0, lists.position[k] + (rrf_k + 1), out=np.zeros((n_queries, n)), where=listed)
                   if kind == "rrf" else normalize(lists.scores[k], listed))
    if kind == "mnz":
        totals *= lists.listed.sum(axis=0)
    return FusedScores(totals, lists.listed.any(axis=0), lists.first_seen)


def fuse_lists(lists: Sequence[RankedList], kind: FusionKind, normalize: Normalizer = minmax_normalize,
               rrf_k: int = RRF_K) -> RankedList:
    """One query's lists (any hashable ids) fused; ties keep round-robin order."""
    unique = list(dict.fromkeys(_round_robin(lists)))  # first appearance in round-robin order
    index = {id_: i for i, id_ in enumerate(unique)}
    position = np.full((len(lists), 1, len(unique)), -1, dtype=np.int64)
    scores = np.zeros((len(lists), 1, len(unique)))
    for k, ranked in enumerate(lists):
        items = [index[id_] for id_ in ranked.ids]
        position[k, 0, items] = np.arange(len(items))
        scores[k, 0, items] = ranked.scores
    fused = fuse_dense(DenseLists(position, scores), kind, normalize, rrf_k)
    order = fused.order()[0][: len(unique)]
    return RankedList([unique[i] for i in order], fused.totals[0, order].tolist())


@dataclass(frozen=True)
class ScoreFusion:
    """One score fusion, for a search's lists (call it) or a benchmark's (`dense`)."""

    kind: FusionKind
    normalize: Normalizer = minmax_normalize

    def __call__(self, lists: Sequence[RankedList]) -> RankedList:
        return fuse_lists(lists, self.kind, self.normalize)

    def dense(self, lists: DenseLists) -> FusedScores:
        return fuse_dense(lists, self.kind, self.normalize)


# The score fusions by the names users pick (rerank/names.py has their words; "vic" needs the model).
SCORE_FUSIONS: dict[str, ScoreFusion] = {
    "combsum": ScoreFusion("sum"), "combmnz": ScoreFusion("mnz"), "combsum-z": ScoreFusion("sum", zscore_normalize),
    "combmnz-z": ScoreFusion("mnz", zscore_normalize), "rrf": ScoreFusion("rrf"),
}


def combsum(lists: Sequence[RankedList], normalize: Normalizer = minmax_normalize) -> RankedList:
    """CombSUM (Fox & Shaw, TREC-2 1993): the sum of each list's normalized scores (min-max by default)."""
    return fuse_lists(lists, "sum", normalize)


def combmnz(lists: Sequence[RankedList], normalize: Normalizer = minmax_normalize) -> RankedList:
    """CombMNZ (Fox & Shaw 1993; ranx's comb_mnz): CombSUM times the number of lists that hold the id,
    so agreement between retrievers counts more than one retriever's high score."""
    return fuse_lists(lists, "mnz", normalize)


def rrf(lists: Sequence[RankedList], k: int = RRF_K) -> RankedList:
    """Reciprocal rank fusion (Cormack et al. 2009): sum of 1 / (k + rank) with 1-based ranks; scores ignored."""
    return fuse_lists(lists, "rrf", rrf_k=k)


def round_robin_interleave(lists: Sequence[RankedList], limit: int | None = None) -> list[Hashable]:
    """ViC candidate list: rank 1 of each list, then rank 2, ..., keeping duplicates.

    An id that several retrievers rank high shows up several times near the top, which is
    how the model sees their agreement. `limit` caps the length (the slots one call holds).
    The first K entries are ViC's exactly: its paper truncates each of M lists to ceil(K/M) and
    interleaves; its code (Scripts/ensemble_retrieval.py, "ViC_duplicate") interleaves lists of K
    and keeps the first K. Both equal this while no list runs out, and so does an exhausted list,
    which all three skip.
    """
    interleaved = list(_round_robin(lists))
    return interleaved if limit is None else interleaved[:limit]


def collapse_duplicates(ranking: Sequence[int], interleaved: Sequence[Hashable]) -> list[Hashable]:
    """Turn a ranking of positions in the interleaved list into a ranking of unique ids.

    An id takes the place of its best-ranked copy; positions the ranking leaves out follow
    in interleaved order.
    """
    if any(not 0 <= p < len(interleaved) for p in ranking):
        raise ValueError(f"ranking {list(ranking)} has positions outside 0..{len(interleaved) - 1}")
    unique = dict.fromkeys(interleaved[p] for p in ranking)
    unique.update(dict.fromkeys(interleaved))  # existing keys keep their place
    return list(unique)


def _round_robin(lists: Sequence[RankedList]) -> Iterator[Hashable]:
    depth = max((len(ranked.ids) for ranked in lists), default=0)
    for position in range(depth):
        for ranked in lists:
            if position < len(ranked.ids):
                yield ranked.ids[position]
