"""Uniform sampling of frames over a video's length, shared by the indexer and the S-Grids."""

from __future__ import annotations


def uniform_indices(n_total: int, n_pick: int) -> list[int]:
    """Indices of the centres of `n_pick` equal segments of range(n_total).

    Picking centres rather than edges avoids the first and last frames, which are often black
    or a fade. With n_pick > n_total indices repeat, which keeps grids full for short videos.
    """
    if n_total <= 0 or n_pick <= 0:
        return []
    return [min(n_total - 1, int((i + 0.5) * n_total / n_pick)) for i in range(n_pick)]
