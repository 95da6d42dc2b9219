"""Turn media files into what the reranking model is shown: photos, or videos as S-Grids."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from PIL import Image, ImageDraw

from retrieval.store.ids import MediaKind
from retrieval.media.image_io import fit_pixels, load_rgb
from retrieval.rerank.grids import make_vic_sgrid, make_video_sgrid
from retrieval.media.video_frames import read_uniform_frames


@dataclass(frozen=True)
class CandidateOptions:
    cell_size: int = 224  # photos are decoded at about this size (JPEG draft mode)
    max_image_pixels: int = 100_000_000
    # Photos shown whole rather than in a grid cell (cot): at most this many pixels, decoded at about its side.
    photo_pixels: int | None = None
    sgrid_frames_side: int = 3
    sgrid_size: int = 448
    sgrid_style: Literal["gridrank", "vic"] = "gridrank"  # the rerank method's (names.RerankMethodInfo)


def unavailable_image(size: int, why: str) -> Image.Image:
    """A grey tile that says why a candidate can't be shown, so one lost file doesn't stop a rerank."""
    tile = Image.new("RGB", (size, size), (90, 90, 90))
    ImageDraw.Draw(tile).text((8, size // 2), f"unavailable: {why}"[:60], fill=(255, 255, 255))
    return tile


def video_sgrid(path: Path, options: CandidateOptions) -> Image.Image:
    g = options.sgrid_frames_side
    if options.sgrid_style == "vic":
        video = read_uniform_frames(path, g * g, max_side=options.sgrid_size // g * 2, spread="ends")
        return make_vic_sgrid([Image.fromarray(f) for f in video.frames], g, options.sgrid_size)
    video = read_uniform_frames(path, g * g, max_side=options.sgrid_size // g * 2)
    frames = [Image.fromarray(f) for f in video.frames]
    return make_video_sgrid(frames, g, options.sgrid_size, video.timestamps)


def media_image(path: Path, kind: MediaKind, options: CandidateOptions) -> Image.Image:
    """What the model is shown of one file: the photo, or the video's S-Grid."""
    try:
        if kind == "image":
            if options.photo_pixels is None:
                return load_rgb(path, options.max_image_pixels, draft_size=options.cell_size).image
            photo = load_rgb(path, options.max_image_pixels, draft_size=math.isqrt(options.photo_pixels)).image
            return fit_pixels(photo, options.photo_pixels)
        return video_sgrid(path, options)
    except Exception as e:  # moved, deleted or broken since it was indexed
        return unavailable_image(options.cell_size, type(e).__name__)
