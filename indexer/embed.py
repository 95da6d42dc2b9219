"""The model stage of an indexing run: decoded media in, media with their frame vectors out.

It runs in the indexing process (indexer/pipeline.py) or in Ray actors (indexer/ray_embedding.py);
both hand the writer the same EmbeddedMedia, so what gets written does not depend on where.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
import torch

from indexer.decode import DecodedMedia, DecodeOptions
from retrieval.models.encoder import ClipEncoder
from retrieval.settings import Settings


@dataclass
class EmbeddedMedia:
    media: DecodedMedia  # without pixels
    vectors: np.ndarray | None = None  # (frames, dim) to store; None when skipped or unchanged


class EmbeddedSource(Protocol):
    """Yields every planned item once, embedded (or skipped / unchanged), in plan order."""

    def __iter__(self) -> Iterator[EmbeddedMedia]: ...

    def drain(self) -> list[EmbeddedMedia]:
        """After a stop or Ctrl-C: items finished (or cheap to finish) but not yet yielded."""
        ...


def decode_options(encoder: ClipEncoder, settings: Settings) -> DecodeOptions:
    return DecodeOptions(encoder.preprocess, encoder.image_size, settings.max_image_pixels, settings.frames_per_video,
                         settings.seconds_per_frame)


def needs_model(media: DecodedMedia) -> bool:
    return not (media.skip_reason or media.unchanged)


def embed_media(encoder: ClipEncoder, decoded: list[DecodedMedia], batch_size: int) -> list[EmbeddedMedia]:
    """Embed the frames of every item (each must need the model) in forwards of at most batch_size frames."""
    if not decoded:
        return []
    pixels = torch.cat([m.pixels for m in decoded])
    vectors = np.concatenate([encoder.encode_pixels(pixels[i : i + batch_size])
                              for i in range(0, len(pixels), batch_size)])
    embedded, offset = [], 0
    for media in decoded:
        n = len(media.pixels)
        embedded.append(EmbeddedMedia(replace(media, pixels=None), vectors[offset : offset + n]))
        offset += n
    return embedded
