"""Stable int64 FAISS ids that carry their media kind, media id and frame number.

Packing these into the id lets a search restrict itself to one kind with a FAISS
IDSelectorRange, and remove all vectors of a media item with another, with no lookup table.
Layout (high to low): 1 kind bit at bit 52 | 40 bits media id | 12 bits frame index.
"""

from __future__ import annotations

from typing import Literal

MediaKind = Literal["image", "video"]

FRAME_BITS = 12
MEDIA_BITS = 40
KIND_SHIFT = FRAME_BITS + MEDIA_BITS
MAX_FRAMES = 1 << FRAME_BITS
MAX_MEDIA_ID = (1 << MEDIA_BITS) - 1
_KIND_CODE: dict[str, int] = {"image": 0, "video": 1}


def vector_id(kind: MediaKind, media_id: int, frame_index: int = 0) -> int:
    if not 0 < media_id <= MAX_MEDIA_ID:
        raise ValueError(f"media id {media_id} out of range 1..{MAX_MEDIA_ID}")
    if not 0 <= frame_index < MAX_FRAMES:
        raise ValueError(f"frame index {frame_index} out of range 0..{MAX_FRAMES - 1}")
    return (_KIND_CODE[kind] << KIND_SHIFT) | (media_id << FRAME_BITS) | frame_index


def media_id_of(vid: int) -> int:
    return (vid >> FRAME_BITS) & MAX_MEDIA_ID


def frame_index_of(vid: int) -> int:
    return vid & (MAX_FRAMES - 1)


def kind_of(vid: int) -> MediaKind:
    return "video" if vid >> KIND_SHIFT else "image"


def kind_id_range(kind: MediaKind) -> tuple[int, int]:
    """Half-open [lo, hi) range holding every vector id of that kind."""
    lo = _KIND_CODE[kind] << KIND_SHIFT
    return lo, lo + (1 << KIND_SHIFT)


def media_id_range(kind: MediaKind, media_id: int) -> tuple[int, int]:
    """Half-open [lo, hi) range holding every frame id of one media item."""
    lo = vector_id(kind, media_id, 0)
    return lo, lo + MAX_FRAMES
