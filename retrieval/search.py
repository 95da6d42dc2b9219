"""Query-time search: encode the query, FAISS top-N, group video frames into videos."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from retrieval.encoder import ClipEncoder
from retrieval.ids import MediaKind, media_id_of
from retrieval.index_store import IndexStore
from retrieval.rerank.reranker import RerankReport
from retrieval.settings import Settings
from retrieval.vector_index import Neighbours

SearchKind = Literal["any", "image", "video"]


@dataclass(frozen=True)
class Query:
    """Text, an example image, or both (composed: the image, changed as the text says)."""

    text: str | None = None
    image: Image.Image | None = None

    def __post_init__(self) -> None:
        if not (self.text and self.text.strip()) and self.image is None:
            raise ValueError("a query needs text, an image, or both")


@dataclass(frozen=True)
class SearchHit:
    media_id: int
    path: Path
    kind: MediaKind
    score: float
    rank: int  # 1-based, final
    timestamp: float | None = None  # videos: start of the best-matching frame, in seconds
    frame_index: int | None = None
    first_stage_rank: int | None = None  # rank before reranking or fusion (same as rank without them)


@dataclass(frozen=True)
class StageTimings:
    encode_s: float
    search_s: float
    rerank_s: float = 0.0
    caption_s: float = 0.0  # SQAF: the MLLM writing the composed query's target caption


@dataclass(frozen=True)
class SearchResponse:
    hits: list[SearchHit]
    timings: StageTimings
    rerank: RerankReport | None = None
    caption: str | None = None  # SQAF target caption, for composed queries that were reranked
    fusion: str | None = None  # which fusion produced the first-stage list, if any


@dataclass(frozen=True)
class BestFrame:
    media_id: int
    vector_id: int
    score: float


def best_frame_per_media(neighbours: Neighbours) -> list[BestFrame]:
    """Keep each media item's best-scoring vector, in score order (FAISS returns them sorted)."""
    seen: set[int] = set()
    best: list[BestFrame] = []
    for vid, score in zip(neighbours.ids.tolist(), neighbours.scores.tolist()):
        media_id = media_id_of(vid)
        if media_id not in seen:
            seen.add(media_id)
            best.append(BestFrame(media_id, vid, score))
    return best


def blend(image_vector: np.ndarray, text_vector: np.ndarray, text_weight: float) -> np.ndarray:
    """normalize((1 - a) * image + a * text): the composed query of SQUARE's SQAF."""
    mixed = (1.0 - text_weight) * image_vector + text_weight * text_vector
    return (mixed / max(float(np.linalg.norm(mixed)), 1e-12)).astype(np.float32)


class Searcher:
    """Holds an open index and a loaded encoder: queries never pay a model load."""

    def __init__(self, store: IndexStore, encoder: ClipEncoder, composed_text_weight: float = 0.8):
        self.store = store
        self.encoder = encoder
        self.composed_text_weight = composed_text_weight

    @classmethod
    def open(cls, index_dir: Path, settings: Settings, encoder: ClipEncoder | None = None,
             load_encoder: Callable[[Settings], ClipEncoder] = ClipEncoder.from_settings) -> Searcher:
        store = IndexStore.open(index_dir)
        store.check_model(*settings.model_identity)  # before a possibly long model load
        encoder = encoder or load_encoder(settings)
        store.check_model(*settings.model_identity, dim=encoder.dim)
        return cls(store, encoder, settings.composed_text_weight)

    def encode(self, query: Query) -> np.ndarray:
        text = self.encoder.encode_texts([query.text])[0] if query.text and query.text.strip() else None
        image = self.encoder.encode_images([query.image])[0] if query.image is not None else None
        if text is not None and image is not None:
            return blend(image, text, self.composed_text_weight)
        return text if text is not None else image

    def search(self, query: Query, k: int = 10, kind: SearchKind = "any") -> SearchResponse:
        started = time.perf_counter()
        vector = self.encode(query)
        encoded = time.perf_counter()
        hits = self.search_vector(vector, k, kind)
        return SearchResponse(hits, StageTimings(encoded - started, time.perf_counter() - encoded))

    def search_vector(self, vector: np.ndarray, k: int, kind: SearchKind = "any") -> list[SearchHit]:
        """Top-k media for a query vector; a video scores by its best frame, which gives the moment."""
        if k < 1:
            raise ValueError("k must be at least 1")
        self.store.refresh()
        frames = self.store.frames
        restrict = None if kind == "any" else kind
        n = k if kind == "image" else 4 * k
        while True:
            neighbours = frames.search(vector, n, restrict)
            best = best_frame_per_media(neighbours)
            # Many frames of few videos can crowd the top n: widen until k media or the index runs out.
            if len(best) >= k or len(neighbours.ids) < n or n >= len(frames):
                break
            n *= 4
        return self._hits(best[:k])

    def search_video_means(self, vector: np.ndarray, k: int) -> list[SearchHit]:
        """Videos ranked by their mean-pooled frame vector: a second retriever for fusion."""
        self.store.refresh()
        neighbours = self.store.videos.search(vector, k)
        return self._hits([BestFrame(int(m), -1, float(s)) for m, s in zip(neighbours.ids, neighbours.scores)])

    def hits_for_media(self, media_ids: list[int]) -> list[SearchHit]:
        """Hits for media found by another retriever (no vector score: 0), in the given order."""
        return self._hits([BestFrame(m, -1, 0.0) for m in media_ids])

    def _hits(self, best: list[BestFrame]) -> list[SearchHit]:
        catalog = self.store.catalog
        media = catalog.media_by_ids(b.media_id for b in best)
        frames = catalog.frames_by_vector_ids(b.vector_id for b in best if b.vector_id >= 0)
        root = self.store.info.root
        hits: list[SearchHit] = []
        for b in best:
            record = media.get(b.media_id)
            if record is None:  # removed by a writer after our vectors were loaded
                continue
            frame = frames.get(b.vector_id)
            is_video = record.kind == "video"
            rank = len(hits) + 1
            hits.append(SearchHit(
                b.media_id, root / record.path, record.kind, b.score, rank,
                frame.timestamp if frame and is_video else None,
                frame.frame_index if frame and is_video else None,
                first_stage_rank=rank,
            ))
        return hits
