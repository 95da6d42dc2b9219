"""Pure grouping of first-stage hits: video frames into moments, near-duplicates into one result."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath

import numpy as np

from retrieval.query.types import Segment


def merge_segments(frames: Sequence[tuple[float, float]], gap_s: float) -> list[Segment]:
    """(timestamp, score) frame hits of one video -> segments, best segment first.

    Consecutive hits (in time) closer than or exactly `gap_s` apart join one segment.
    """
    ordered = sorted(frames)
    segments: list[Segment] = []
    run: list[tuple[float, float]] = []
    for frame in ordered:
        if run and frame[0] - run[-1][0] > gap_s:
            segments.append(_segment(run))
            run = []
        run.append(frame)
    if run:
        segments.append(_segment(run))
    return sorted(segments, key=lambda s: (-s.score, s.start))


def _segment(run: list[tuple[float, float]]) -> Segment:
    best_t, best_score = max(run, key=lambda f: (f[1], -f[0]))
    return Segment(run[0][0], run[-1][0], best_t, best_score)


def group_duplicates(vectors: np.ndarray, hashes: Sequence[str], threshold: float | None) -> list[list[int]]:
    """Greedy groups over hits in score order: each hit joins the first earlier group whose leader
    has (or has a member with) the same content hash, or (threshold not None) a cosine similarity of at least `threshold`.

    Returns groups of hit positions, each led by its best hit; groups in the order of their leaders.
    A deeper list only appends hits, so earlier groups keep their leaders: pages stay stable.
    """
    groups: list[list[int]] = []
    leader_hash: dict[str, int] = {}
    for i, content_hash in enumerate(hashes):
        g = leader_hash.get(content_hash) if content_hash else None
        if g is None and threshold is not None and groups:
            sims = vectors[[group[0] for group in groups]] @ vectors[i]
            close = np.flatnonzero(sims >= threshold)
            if len(close):
                g = int(close[0])
        if g is None:
            g = len(groups)
            groups.append([])
        if content_hash:
            leader_hash.setdefault(content_hash, g)  # a later copy of any member joins this group
        groups[g].append(i)
    return groups


def original_of(group: Sequence[int], paths: Sequence[str], mtimes_ns: Sequence[int], keep: int | None = None) -> int:
    """The member of a duplicate group to show: the original, not one of its copies.

    The oldest file (to the second: a copy made with `cp -p` or a sync tool keeps its source's
    time), then the shortest file name (copies gain a suffix: "_copy", " (1)", "-2"), then the path.
    `keep` (the item a more-like-this search started from) always stays in front of its group.
    """
    if keep is not None and keep in group:
        return keep
    return min(group, key=lambda i: (mtimes_ns[i] // 1_000_000_000, len(PurePosixPath(paths[i]).name), paths[i]))
