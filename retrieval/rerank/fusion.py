"""Fusing several first-stage ranked lists: CombSUM, CombMNZ, RRF and the ViC interleave.

Score fusions normalise each list's scores over the whole list it returned, by min-max or by
z-score ("zmuv" in ranx: zero mean, unit variance), as ranx's comb_sum / comb_mnz with
norm="min-max" / "zmuv" do; an id absent from a list adds nothing there.

Ties are broken by round-robin order (rank 1 of every list in list order, then rank 2, ...),
so equal fused scores never depend on dict or hash order.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Sequence
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


Normalizer = Callable[[Sequence[float]], list[float]]


def combsum(lists: Sequence[RankedList], normalize: Normalizer | None = None) -> RankedList:
    """CombSUM (Fox & Shaw, TREC-2 1993): the sum of each list's normalized scores (min-max by default)."""
    totals, _ = _sums(lists, normalize or minmax_normalize)
    return _by_score(totals)


def combmnz(lists: Sequence[RankedList], normalize: Normalizer | None = None) -> RankedList:
    """CombMNZ (Fox & Shaw 1993; ranx's comb_mnz): CombSUM times the number of lists that hold the id,
    so agreement between retrievers counts more than one retriever's high score."""
    totals, counts = _sums(lists, normalize or minmax_normalize)
    return _by_score({id_: total * counts[id_] for id_, total in totals.items()})


def _sums(lists: Sequence[RankedList], normalize: Normalizer) -> tuple[dict[Hashable, float], dict[Hashable, int]]:
    totals = dict.fromkeys(_round_robin(lists), 0.0)
    counts = dict.fromkeys(totals, 0)
    for ranked in lists:
        for id_, score in zip(ranked.ids, normalize(ranked.scores)):
            totals[id_] += score
            counts[id_] += 1
    return totals, counts


def rrf(lists: Sequence[RankedList], k: int = RRF_K) -> RankedList:
    """Reciprocal rank fusion: sum of 1 / (k + rank) with 1-based ranks; scores are ignored."""
    if k < 0:
        raise ValueError(f"RRF k must be >= 0, got {k}")
    totals = dict.fromkeys(_round_robin(lists), 0.0)
    for ranked in lists:
        for rank, id_ in enumerate(ranked.ids, start=1):
            totals[id_] += 1.0 / (k + rank)
    return _by_score(totals)


def zscore_normalize(scores: Sequence[float]) -> list[float]:
    """(s - mean) / std over the list, std the population one floored at 1e-9 (ranx's zmuv_norm)."""
    if not scores:
        return []
    mean = math.fsum(scores) / len(scores)
    std = max(math.sqrt(math.fsum((s - mean) ** 2 for s in scores) / len(scores)), 1e-9)
    return [(s - mean) / std for s in scores]


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
