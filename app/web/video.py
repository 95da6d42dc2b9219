"""One frame of a video at a moment (decord), and subtitles as WebVTT, for the Video tab."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import decord
import numpy as np
from PIL import Image

from retrieval.store.catalog import SubtitleCue


def read_frame_at(path: Path, seconds: float | None) -> Image.Image:
    """The frame showing at `seconds` (the first frame when None)."""
    reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    if len(reader) == 0:
        raise ValueError("video has no decodable frames")
    fps = reader.get_avg_fps() or 25.0
    index = 0 if seconds is None else min(len(reader) - 1, max(0, int(seconds * fps)))
    return Image.fromarray(np.ascontiguousarray(reader[index].asnumpy()))


def vtt_time(seconds: float) -> str:
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def cues_to_vtt(cues: Sequence[SubtitleCue]) -> str:
    """A WebVTT document (what browsers' <track> reads) from stored cues."""
    blocks = ["WEBVTT", ""]
    for cue in cues:
        text = " ".join(cue.text.split()).replace("-->", "->")
        blocks += [f"{vtt_time(cue.start)} --> {vtt_time(cue.end)}", text, ""]
    return "\n".join(blocks)


def cue_at(cues: Sequence[SubtitleCue], seconds: float | None) -> SubtitleCue | None:
    """The cue on screen at `seconds`, else the nearest one; None without cues."""
    if not cues:
        return None
    if seconds is None:
        return cues[0]
    for cue in cues:
        if cue.start <= seconds <= cue.end:
            return cue
    return min(cues, key=lambda c: min(abs(c.start - seconds), abs(c.end - seconds)))
