"""Decode one media file into preprocessed model inputs, or say why it can't be.

Runs in DataLoader worker processes, so everything here is plain functions on picklable data.
A file that fails for any reason becomes a DecodedMedia with `skip_reason` set: one bad file
never stops a run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from PIL import Image

from indexer.scan import FileEntry
from indexer.subtitles import find_sidecar, read_subtitles
from retrieval.store.catalog import SubtitleCue
from retrieval.media.image_io import ImageRejected, load_rgb
from retrieval.media.video_frames import frames_wanted, read_uniform_frames


@dataclass(frozen=True)
class DecodeOptions:
    preprocess: Callable[[Image.Image], torch.Tensor]
    image_size: int  # the model's input side: JPEGs are decoded at about this size
    max_image_pixels: int
    frames_per_video: int
    seconds_per_frame: float | None


@dataclass(frozen=True)
class WorkItem:
    entry: FileEntry
    previous_hash: str | None  # catalog hash of a changed file, to spot a mere touch


@dataclass
class DecodedMedia:
    entry: FileEntry
    content_hash: str = ""
    unchanged: bool = False  # same bytes as already indexed: nothing to embed
    pixels: torch.Tensor | None = None  # (n, 3, H, W), preprocessed
    timestamps: list[float | None] = field(default_factory=list)
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    taken_at: str | None = None
    cues: list[SubtitleCue] = field(default_factory=list)
    note: str | None = None
    skip_reason: str | None = None


class SkipMedia(Exception):
    """Raised inside decoding with the user-facing reason a file is skipped."""


def file_hash(entry: FileEntry) -> str:
    with entry.abs_path.open("rb") as f:
        return hashlib.file_digest(f, "blake2b").hexdigest()[:32]


def decode_item(item: WorkItem, options: DecodeOptions) -> DecodedMedia:
    entry = item.entry
    result = DecodedMedia(entry)
    try:
        if entry.size == 0:
            raise SkipMedia("empty file (0 bytes)")
        result.content_hash = file_hash(entry)
        if result.content_hash == item.previous_hash:
            result.unchanged = True
            return result
        if entry.kind == "image":
            _decode_image(result, options)
        else:
            _decode_video(result, options)
    except SkipMedia as e:
        result.skip_reason = str(e)
    except PermissionError:
        result.skip_reason = "permission denied: make the file readable by this user"
    except Exception as e:  # decoders raise many types; one bad file must not stop the run
        result.skip_reason = f"cannot decode {entry.kind}: {first_line(e)}"
    if result.skip_reason:
        result.pixels = None
    return result


def _decode_image(result: DecodedMedia, options: DecodeOptions) -> None:
    try:
        loaded = load_rgb(result.entry.abs_path, options.max_image_pixels, draft_size=options.image_size)
    except ImageRejected as e:
        raise SkipMedia(str(e)) from None
    result.width, result.height, result.taken_at = loaded.width, loaded.height, loaded.taken_at
    result.pixels = options.preprocess(loaded.image).unsqueeze(0)
    result.timestamps = [None]


def _decode_video(result: DecodedMedia, options: DecodeOptions) -> None:
    path = result.entry.abs_path
    video = read_uniform_frames(path, options.frames_per_video, every_s=options.seconds_per_frame)
    wanted = frames_wanted(options.frames_per_video, options.seconds_per_frame, video.duration)
    if video.total_frames < wanted:
        result.note = f"only {video.total_frames} frames, fewer than the {wanted} asked: all of them indexed"
    result.duration = video.duration
    result.height, result.width = int(video.frames.shape[1]), int(video.frames.shape[2])
    result.timestamps = list(video.timestamps)
    result.pixels = torch.stack([options.preprocess(Image.fromarray(f)) for f in video.frames])
    sidecar = find_sidecar(path)
    if sidecar is not None:
        try:
            result.cues = read_subtitles(sidecar)
        except Exception as e:  # a bad subtitle file should not cost the video its index entry
            result.note = f"subtitles {sidecar.name} not read: {first_line(e)}"


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__
