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


def linspace_indices(n_total: int, n_pick: int) -> list[int]:
    """ViC's frame choice: n_pick indices spread from the first frame to the last, numpy.linspace(0, n_total - 1,
    n_pick) truncated to integers (Scripts/ensemble_retrieval.py, get_first_frame). A video shorter than n_pick
    frames repeats frames (ViC raises there instead)."""
    if n_pick < 0:
        raise ValueError(f"n_pick must be >= 0, got {n_pick}")
    if n_pick and n_total < 1:
        raise ValueError(f"cannot pick {n_pick} indices from {n_total} items")
    if n_pick == 1:
        return [0]
    # Exact in integers: floor(i * (n_total - 1) / (n_pick - 1)), as linspace's float values truncate.
    return [i * (n_total - 1) // (n_pick - 1) for i in range(n_pick)]
