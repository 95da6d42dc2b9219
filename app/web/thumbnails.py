"""Small images for the browser, made once and kept on disk.

Gallery thumbnails, larger previews for the full view, video S-Grids and WebVTT subtitles all
live in one cache folder (`cache_dir/web`), named by a hash of the source path, its size and
mtime, and what was made from it: an edited file gets new entries, an unchanged one is never
decoded twice. Writes are atomic (temp file + rename), so concurrent requests are safe.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image, ImageDraw

from app.web import video
from retrieval.store.catalog import SubtitleCue
from retrieval.media.image_io import load_rgb
from retrieval.rerank.grids import make_video_sgrid
from retrieval.media.video_frames import read_uniform_frames

log = logging.getLogger("gridrank.web")

THUMB_SIZE = 320  # gallery cells are ~200 px wide: enough for a sharp thumbnail on HiDPI screens
PREVIEW_SIZE = 1600  # the full view: the whole picture, without sending a 12 MP original
JPEG_QUALITY = 85


class ThumbnailCache:
    def __init__(self, directory: Path, max_image_pixels: int):
        self.directory = directory.resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_image_pixels = max_image_pixels

    # -- what the UI asks for -----------------------------------------------------------------

    def thumbnail(self, path: Path, kind: str, timestamp: float | None = None, size: int = THUMB_SIZE) -> Path:
        """A JPEG at most `size` px on its long side; for a video, the frame at `timestamp`."""
        if kind == "video":
            return self._cached(("frame", size, round(timestamp or 0.0, 2)), path, ".jpg",
                                lambda: _fit(video.read_frame_at(path, timestamp), size))
        return self._cached(("thumb", size), path, ".jpg", lambda: self._load(path, size))

    def preview(self, path: Path, size: int = PREVIEW_SIZE) -> Path:
        """The full view of an image: EXIF-rotated, decoded through the pixel guard, browser-ready."""
        return self._cached(("preview", size), path, ".jpg", lambda: self._load(path, size))

    def sgrid(self, path: Path, g: int = 3, size: int = 448) -> Path:
        """The video's S-Grid: g x g frames sampled uniformly over its length, timestamps drawn in."""

        def make() -> Image.Image:
            # The same frames and layout as the S-Grid a reranker is shown (retrieval.rerank.candidates).
            frames = read_uniform_frames(path, g * g, max_side=size // g * 2)
            return make_video_sgrid([Image.fromarray(f) for f in frames.frames], g, size, frames.timestamps)

        return self._cached(("sgrid", g, size), path, ".jpg", make)

    def subtitles(self, path: Path, cues: Sequence[SubtitleCue]) -> Path:
        """The video's cues as a .vtt file; without cues an empty one, shared by all such videos.

        Always a file: a player told "no subtitles" (None) keeps the previous video's track in Gradio 6.31,
        while an empty track replaces it.
        """
        text = video.cues_to_vtt(cues)
        name = _digest("vtt", str(path) if cues else "", text) + ".vtt"
        target = self.directory / name
        if not target.is_file():
            _write_atomic(target, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        return target

    def model_inputs(self, images: Sequence[Image.Image]) -> list[Path]:
        """The images a reranker was sent (marked grids, S-Grids, photos) as files the browser may fetch.

        Named by their pixels: the same grid sent twice is written once.
        """
        paths = []
        for image in images:
            rgb = image.convert("RGB")
            target = self.directory / (_digest("sent", rgb.size, hashlib.sha256(rgb.tobytes()).hexdigest()) + ".jpg")
            if not target.is_file():
                _write_atomic(target, lambda tmp, rgb=rgb: rgb.save(tmp, "JPEG", quality=90))
            paths.append(target)
        return paths

    def placeholder(self, size: int = THUMB_SIZE) -> Path:
        """A neutral tile for a file that can't be shown any more (removed or unreadable since indexing)."""
        target = self.directory / f"unavailable-{size}.png"
        if not target.is_file():
            tile = Image.new("RGB", (size, size), (90, 90, 90))
            ImageDraw.Draw(tile).text((size // 2, size // 2), "unavailable", fill=(230, 230, 230), anchor="mm")
            _write_atomic(target, lambda tmp: tile.save(tmp, "PNG"))
        return target

    # -- machinery ----------------------------------------------------------------------------

    def _load(self, path: Path, size: int) -> Image.Image:
        return _fit(load_rgb(path, self.max_image_pixels, draft_size=size).image, size)

    def _cached(self, what: tuple, path: Path, suffix: str, make: Callable[[], Image.Image]) -> Path:
        try:
            st = path.stat()
        except OSError:
            return self.placeholder()
        target = self.directory / (_digest(*what, str(path), st.st_size, st.st_mtime_ns) + suffix)
        if target.is_file():
            return target
        try:
            image = make()
        except Exception as e:  # any decoder error: show a placeholder, never fail the whole page
            log.warning("cannot make a %s for %s: %s", what[0], path, e)
            return self.placeholder()
        _write_atomic(target, lambda tmp: image.save(tmp, "JPEG", quality=JPEG_QUALITY, optimize=True))
        return target


def _fit(image: Image.Image, size: int) -> Image.Image:
    image = image.convert("RGB")
    image.thumbnail((size, size), Image.Resampling.LANCZOS)
    return image


def _digest(*parts) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:32]


def _write_atomic(target: Path, write: Callable[[Path], None]) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=target.suffix)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
