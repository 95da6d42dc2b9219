"""Uniform sampling of frames over a video's length, shared by the indexer and the S-Grids."""

from __future__ import annotations


def sample_uniform_indices(n_total: int, n_pick: int) -> list[int]:
    """Indices at the centres of n_pick equal segments of range(n_total), in order.

    When n_pick > n_total the indices repeat evenly, which pads a short video uniformly.
    """
    if n_pick < 0:
        raise ValueError(f"n_pick must be >= 0, got {n_pick}")
    if n_pick and n_total < 1:
        raise ValueError(f"cannot pick {n_pick} indices from {n_total} items")
    # floor((i + 0.5) * n_total / n_pick) in integers: exact, and always < n_total.
    return [(2 * i + 1) * n_total // (2 * n_pick) for i in range(n_pick)]
