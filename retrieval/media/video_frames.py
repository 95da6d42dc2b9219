"""Read frames sampled uniformly over a video with decord: for indexing and for S-Grids."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
import decord
import numpy as np

from retrieval.store.ids import MAX_FRAMES
from retrieval.media.sampling import linspace_indices, sample_uniform_indices


@dataclass(frozen=True)
class VideoFrames:
    frames: np.ndarray  # (n, H, W, 3) uint8 RGB
    timestamps: list[float]  # start of each frame, seconds
    total_frames: int
    duration: float | None


def frames_wanted(n: int, every_s: float | None, duration: float | None) -> int:
    """`n`, or one frame every `every_s` seconds when that is set and the duration known."""
    if every_s and duration:
        return max(1, min(MAX_FRAMES, math.ceil(duration / every_s)))
    return n


def read_uniform_frames(path: Path, n: int, max_side: int | None = None, every_s: float | None = None,
                        spread: Literal["centres", "ends"] = "centres") -> VideoFrames:
    """`min(n, total)` frames at the centres of equal segments of the video (see frames_wanted); with
    spread="ends", exactly n frames from the first to the last, as ViC samples them (linspace_indices).

    With `max_side`, decord scales frames while decoding (aspect kept) so large videos cost less.
    Raises ValueError for a video that FFmpeg cannot open or that has no frames; decord's own errors
    pass through.
    """
    _check_opens(path)
    reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    total = len(reader)
    if total == 0:
        raise ValueError("video has no decodable frames")
    if max_side:
        height, width = reader[0].shape[:2]
        scale = max_side / max(height, width)
        if scale < 1:
            reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1,
                                        width=max(2, round(width * scale)), height=max(2, round(height * scale)))
    fps = reader.get_avg_fps()
    duration = total / fps if fps > 0 else None
    if spread == "ends":
        indices = linspace_indices(total, n)
    else:
        indices = sample_uniform_indices(total, min(frames_wanted(n, every_s, duration), total))
    frames = reader.get_batch(indices).asnumpy()
    timestamps = [float(t) for t in reader.get_frame_timestamp(indices)[:, 0]]
    return VideoFrames(frames, timestamps, total, duration)


def _check_opens(path: Path) -> None:
    """Open the container with PyAV first: for a file FFmpeg cannot read, decord writes two error lines to
    stderr from C++ (every run, for every broken video) before it raises; PyAV says it in the exception only."""
    try:
        av.open(str(path)).close()
    except av.FFmpegError as e:
        raise ValueError(f"not a video FFmpeg can open ({e.strerror or type(e).__name__})") from None
