"""Embedding a benchmark with the CLIP encoder, cached so that comparing rerankers embeds once.

The cache lives under the report folder: embeddings/<model>/<dataset>-<split>/<name>.npz, with
the ids of what was embedded stored beside the vectors, so a changed dataset is re-embedded
rather than silently mismatched.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from typing import TypeVar

import numpy as np

from retrieval.errors import EvalInputError
from retrieval.models.encoder import ClipEncoder
from retrieval.media.image_io import load_rgb
from retrieval.media.video_frames import read_uniform_frames
from retrieval.vectors import l2_normalize

T = TypeVar("T")
Progress = Callable[[str, int, int], None]  # (stage, done, total)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "model"


class EmbeddingCache:
    def __init__(self, out: Path, model: tuple[str, str], dataset: str, split: str):
        self.folder = out / "embeddings" / _slug("__".join(model)) / f"{_slug(dataset)}-{_slug(split)}"

    def get(self, name: str, ids: Sequence[str], compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        path = self.folder / f"{name}.npz"
        fingerprint = hashlib.sha256(json.dumps(list(ids)).encode()).hexdigest()
        if path.is_file():
            with np.load(path, allow_pickle=False) as stored:
                if str(stored["fingerprint"]) == fingerprint:
                    return {k: stored[k] for k in stored.files if k != "fingerprint"}
        arrays = compute()
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.tmp.npz")
        np.savez(tmp, fingerprint=np.array(fingerprint), **arrays)
        os.replace(tmp, path)  # a crash never leaves half a cache file under the real name
        return arrays


def _readable(read: Callable[[], T], path: Path) -> T:
    """A benchmark file that can't be decoded stops the run: its metrics would not be comparable."""
    try:
        return read()
    except Exception as e:  # PIL, decord and our own guards raise many types
        raise EvalInputError(f"cannot read {path}: {e}. Replace the file from the benchmark's release") from e


def embed_texts(encoder: ClipEncoder, texts: Sequence[str], batch_size: int, progress: Progress) -> np.ndarray:
    parts = []
    for start in range(0, len(texts), batch_size):
        parts.append(encoder.encode_texts(texts[start:start + batch_size]))
        progress("embedding captions", min(start + batch_size, len(texts)), len(texts))
    return np.concatenate(parts) if parts else np.zeros((0, encoder.dim), np.float32)


def embed_images(encoder: ClipEncoder, paths: Sequence[Path], batch_size: int, max_pixels: int,
                 progress: Progress) -> np.ndarray:
    parts = []
    for start in range(0, len(paths), batch_size):
        batch = paths[start:start + batch_size]
        parts.append(encoder.encode_images([_readable(lambda: load_rgb(p, max_pixels, draft_size=encoder.image_size)
                                                      .image, p) for p in batch]))
        progress("embedding images", start + len(batch), len(paths))
    return np.concatenate(parts)


@dataclass(frozen=True)
class VideoEmbeddings:
    frames: np.ndarray  # (all frames, dim), the videos' frames one after the other
    starts: np.ndarray  # index of each video's first frame in `frames`

    def mean_pooled(self) -> np.ndarray:
        means = np.add.reduceat(self.frames, self.starts, axis=0) / np.diff(
            np.append(self.starts, len(self.frames)))[:, None]
        return l2_normalize(means)

    def best_frame_scores(self, queries: np.ndarray) -> np.ndarray:
        """(queries x videos): each video scores by its best-matching frame, as the index does."""
        return np.maximum.reduceat(queries @ self.frames.T, self.starts, axis=1)


def embed_videos(encoder: ClipEncoder, paths: Sequence[Path], frames_per_video: int, progress: Progress
                 ) -> VideoEmbeddings:
    from PIL import Image

    parts, starts, total = [], [], 0
    for number, path in enumerate(paths, start=1):
        video = _readable(lambda: read_uniform_frames(path, frames_per_video, max_side=2 * encoder.image_size), path)
        parts.append(encoder.encode_images([Image.fromarray(f) for f in video.frames]))
        starts.append(total)
        total += len(video.frames)
        progress("embedding videos", number, len(paths))
    return VideoEmbeddings(np.concatenate(parts), np.array(starts, dtype=np.int64))
