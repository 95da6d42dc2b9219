"""RankGPT-style sliding window: rerank more candidates than one model call can take."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T", bound=Hashable)

# How many first-stage candidates a search may rerank: past one window, the sliding windows take them.
MIN_RERANK_K, MAX_RERANK_K = 2, 200


def sliding_window_rerank(
    order: list[T], window: int, step: int, rank_window: Callable[[list[T]], list[T]]
) -> list[T]:
    """One bottom-up pass of overlapping windows over `order` (distinct ids, best first).

    The first window covers the last `window` items; each next one moves up by `step`, the
    last one is clipped at the top. Consecutive windows overlap by window - step items, so
    whatever a window ranks into its top window - step places is carried into the next one:
    strong candidates from deep in the list can reach the top in a single pass.
    `rank_window` gets a slice of ids and must return the same ids reordered.
    """
    if not window > step > 0:
        raise ValueError(
            f"need window > step > 0 so that windows overlap, got window={window}, step={step}"
        )
    if len(set(order)) != len(order):
        raise ValueError("order must not contain repeated ids")
    result = list(order)
    if len(result) < 2:  # nothing to reorder: save the model call
        return result
    end = len(result)
    while True:
        start = max(0, end - window)
        chunk = result[start:end]
        ranked = list(rank_window(list(chunk)))
        if len(ranked) != len(chunk) or set(ranked) != set(chunk):
            raise ValueError(f"rank_window must return a reordering of {chunk}, got {ranked}")
        result[start:end] = ranked
        if start == 0:
            return result
        end -= step
