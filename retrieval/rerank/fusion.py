"""Fusing several first-stage ranked lists: CombSUM, RRF and the ViC interleave.

Ties are broken by round-robin order (rank 1 of every list in list order, then rank 2, ...),
so equal fused scores never depend on dict or hash order.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass
import math

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


def combsum(lists: Sequence[RankedList]) -> RankedList:
    """Sum of each list's min-max normalized scores; an id absent from a list gets 0 there."""
    totals = dict.fromkeys(_round_robin(lists), 0.0)
    for ranked in lists:
        for id_, score in zip(ranked.ids, minmax_normalize(ranked.scores)):
            totals[id_] += score
    return _by_score(totals)


def rrf(lists: Sequence[RankedList], k: int = RRF_K) -> RankedList:
    """Reciprocal rank fusion: sum of 1 / (k + rank) with 1-based ranks; scores are ignored."""
    if k < 0:
        raise ValueError(f"RRF k must be >= 0, got {k}")
    totals = dict.fromkeys(_round_robin(lists), 0.0)
    for ranked in lists:
        for rank, id_ in enumerate(ranked.ids, start=1):
            totals[id_] += 1.0 / (k + rank)
    return _by_score(totals)


def minmax_normalize(scores: Sequence[float]) -> list[float]:
    """Scale to [0, 1]; all-equal scores carry no ranking signal and become zeros."""
    if not scores:
        return []
    low, high = min(scores), max(scores)
    if high == low:
        return [0.0] * len(scores)
    return [(s - low) / (high - low) for s in scores]


def round_robin_interleave(lists: Sequence[RankedList], limit: int | None = None) -> list[Hashable]:
    """ViC candidate list: rank 1 of each list, then rank 2, ..., keeping duplicates.

    An id that several retrievers rank high shows up several times near the top, which is
    how the model sees their agreement. `limit` caps the length (the slots one call holds).
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


def _by_score(totals: dict[Hashable, float]) -> RankedList:
    # sorted() is stable, so equal totals keep the round-robin order they were inserted in.
    ranked = sorted(totals.items(), key=lambda item: -item[1])
    return RankedList([id_ for id_, _ in ranked], [score for _, score in ranked])
