"""Sidecar subtitles: `clip.srt` or `clip.vtt` next to `clip.mp4`."""

from __future__ import annotations

from pathlib import Path

import webvtt

from retrieval.store.catalog import SubtitleCue


def find_sidecar(video: Path) -> Path | None:
    for ext in (".srt", ".vtt", ".SRT", ".VTT"):
        candidate = video.with_suffix(ext)
        if candidate.is_file():
            return candidate
    return None


def read_subtitles(path: Path) -> list[SubtitleCue]:
    """Cues of an .srt or .vtt file; raises on a malformed file (the caller records why)."""
    captions = webvtt.from_srt(str(path)) if path.suffix.lower() == ".srt" else webvtt.read(str(path))
    return [
        SubtitleCue(_seconds(c.start), _seconds(c.end), " ".join(c.text.split()))
        for c in captions
        if c.text.strip()
    ]


def _seconds(timestamp: str) -> float:
    """'00:01:02.500' -> 62.5; webvtt gives both formats in this form, but whole seconds only
    through its *_in_seconds properties."""
    hours, minutes, seconds = timestamp.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
