"""Query-time search: encode the query, FAISS top-N, group video frames into videos."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retrieval.errors import BadQueryError, UnknownItemError
from retrieval.query.kinds import SearchKind
from retrieval.query.types import (MediaFilter, Query, QueryTerm, ResultShape, SearchHit, SearchResponse, Segment,
                                   StageTimings)
from retrieval.models.encoder import ClipEncoder
from retrieval.query import hub_banks
from retrieval.query.filters import media_condition, milvus_expression
from retrieval.query.hub_banks import HUB_POOL
from retrieval.query.grouping import group_duplicates, merge_segments, original_of
from retrieval.store.catalog import MediaRecord
from retrieval.store.ids import kind_of, media_id_of
from retrieval.store.index_store import IndexStore
from retrieval.settings import Settings
from retrieval.query.mix import mix
from retrieval.store.vector_index import IdSubset, Neighbours
from retrieval.vectors import l2_normalize


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
    return l2_normalize(mixed)


class Searcher:
    """Holds an open index and a loaded encoder: queries never pay a model load."""

    def __init__(self, store: IndexStore, encoder: ClipEncoder, composed_text_weight: float = 0.8,
                 default_shape: ResultShape | None = None):
        self.store = store
        self.encoder = encoder
        self.composed_text_weight = composed_text_weight
        self.default_shape = default_shape or ResultShape()  # the settings' collapsing, cutoff and moments
        self._allowed_cache: tuple[tuple[int, MediaFilter], IdSubset] | None = None
        self._hub_banks: tuple[int, hub_banks.StoredBanks] | None = None  # (the file's mtime, its banks)

    @classmethod
    def open(cls, index_dir: Path, settings: Settings, encoder: ClipEncoder | None = None,
             load_encoder: Callable[[Settings], ClipEncoder] = ClipEncoder.from_settings) -> Searcher:
        store = IndexStore.open(index_dir)
        store.check_model(*settings.model_identity)  # before a possibly long model load
        encoder = encoder or load_encoder(settings)
        store.check_model(*settings.model_identity, dim=encoder.dim)
        return cls(store, encoder, settings.composed_text_weight, ResultShape.from_settings(settings))

    def encode(self, query: Query) -> np.ndarray:
        if query.like is not None:
            return self.stored_vector(query.like)
        if query.terms:
            return self._mixed(query.terms)
        text = self.encoder.encode_texts([query.text])[0] if query.text and query.text.strip() else None
        image = self.encoder.encode_images([query.image])[0] if query.image is not None else None
        if text is not None and image is not None:
            return blend(image, text, self.composed_text_weight)
        return text if text is not None else image

    def _mixed(self, terms: tuple[QueryTerm, ...]) -> np.ndarray:
        texts = [t.text for t in terms if t.text is not None]
        images = [t.image for t in terms if t.image is not None]
        text_vectors = iter(self.encoder.encode_texts(texts) if texts else [])
        image_vectors = iter(self.encoder.encode_images(images) if images else [])
        vectors = [next(text_vectors) if t.text is not None else next(image_vectors) if t.image is not None
                   else self.stored_vector(t.media_id) for t in terms]
        return mix(np.stack(vectors), [t.weight for t in terms])

    # -- indexed items --------------------------------------------------------------------------

    def find_item(self, ref: str) -> int | None:
        """The media id of an indexed item named by a path relative to the root (or the current
        folder), or an absolute path inside the root; None if it names none."""
        root = self.store.info.root
        path = Path(ref).expanduser()
        for candidate in ([path] if path.is_absolute() else [root / path, Path.cwd() / path]):
            try:
                rel = candidate.resolve().relative_to(root).as_posix()
            except (ValueError, OSError):
                continue
            media_id = self.store.catalog.media_id_for_path(rel)
            if media_id is not None and self.store.catalog.frames_of(media_id):
                return media_id
        return None

    def require_item(self, ref: str) -> int:
        media_id = self.find_item(ref)
        if media_id is None:
            raise UnknownItemError(
                f"{ref} is not an indexed item of {self.store.info.root}: give its path relative to that folder "
                "(or an absolute path inside it) as `gridrank status` and search results show it")
        return media_id

    def stored_vector(self, media_id: int) -> np.ndarray:
        """An item's vector from the index, no re-encode: a video's is the normalized mean of its frames."""
        frames = self.store.catalog.frames_of(media_id)
        if not frames:
            raise UnknownItemError(f"media id {media_id} has no vectors in the index")
        mean = self.store.frames.vectors(np.array([f.vector_id for f in frames], dtype=np.int64)).mean(axis=0)
        return l2_normalize(mean)

    # -- filters ------------------------------------------------------------------------------

    def allowed_media_ids(self, media_filter: MediaFilter) -> np.ndarray:
        """The ids of the items media_filter passes, ascending."""
        return self.store.catalog.media_ids_where(media_condition(media_filter))

    def _frame_restriction(self, media_filter: MediaFilter) -> IdSubset | str:
        """What restricts a frame search to media_filter: the ids it passes (kept for the next query with the
        same filter and index), or, for a Milvus store, which filters by itself, the filter as its expression."""
        if self.store.frames.filters_by_fields:
            return milvus_expression(media_filter)
        key = (self.store.info.generation, media_filter)
        if self._allowed_cache is None or self._allowed_cache[0] != key:
            self._allowed_cache = (key, IdSubset(self.store.catalog.vector_ids_where(media_condition(media_filter))))
        return self._allowed_cache[1]

    # -- searching ------------------------------------------------------------------------------

    def search(self, query: Query, k: int = 10, kind: SearchKind = "any", shape: ResultShape | None = None
               ) -> SearchResponse:
        started = time.perf_counter()
        vector = self.encode(query)
        encoded = time.perf_counter()
        hits = self.search_vector(vector, k, kind, shape)
        return SearchResponse(hits, StageTimings(encoded - started, time.perf_counter() - encoded))

    def search_vector(self, vector: np.ndarray, k: int, kind: SearchKind = "any",
                      shape: ResultShape | None = None) -> list[SearchHit]:
        """Top-k media for a query vector; a video scores by its best frame, which gives the moment.

        Filters are applied inside the FAISS search (an id selector over the allowed ids), and the
        search widens until k results remain after the score cutoff and duplicate collapsing.
        """
        if k < 1:
            raise BadQueryError("k must be at least 1")
        shape = shape or self.default_shape
        media_filter = dataclasses.replace(shape.filter, kind=None if kind == "any" else kind)
        self.store.refresh()
        frames = self.store.frames
        allowed = self._frame_restriction(media_filter) if media_filter.active else None
        n = k if kind == "image" else 4 * k
        if shape.hub_norm != "none":  # hubs sit high in the raw list: reorder a pool well below them
            n = max(n, HUB_POOL)
        while True:
            if allowed is None:
                neighbours = frames.search(vector, n, media_filter.kind)
            else:
                neighbours = frames.search_among(vector, n, allowed)
            # Many frames of few videos, or duplicates, can crowd the top n: widen until k results
            # or the index (or the part above the score cutoff) runs out.
            exhausted = len(neighbours.ids) < n or n >= len(frames)
            neighbours = self._hub_normalized(neighbours, shape.hub_norm)
            if shape.min_score is not None:
                keep = neighbours.scores >= shape.min_score
                exhausted = exhausted or not bool(keep.all())
                neighbours = Neighbours(neighbours.ids[keep], neighbours.scores[keep])
            hits = self._grouped(neighbours, vector, shape)
            if len(hits) >= k or exhausted:
                return hits[:k]
            n *= 4

    def _hub_normalized(self, neighbours: Neighbours, method: str) -> Neighbours:
        if method == "none":
            return neighbours
        path = self.store.index_dir / hub_banks.HUB_FILE
        if not path.is_file():
            raise BadQueryError(f"hub_norm {method} needs the index's hubness banks, and this index has none: run "
                                f"gridrank index ROOT --query-bank QUERIES.txt (one typical query per line)")
        stamp = path.stat().st_mtime_ns  # an index run rewrites the banks for the vectors it added
        if self._hub_banks is None or self._hub_banks[0] != stamp:
            self._hub_banks = (stamp, hub_banks.load(self.store.index_dir))
        return self._hub_banks[1].reorder(neighbours, method)

    def _grouped(self, neighbours: Neighbours, vector: np.ndarray, shape: ResultShape) -> list[SearchHit]:
        """Best frame per media, video frames merged into moments, duplicates collapsed into groups."""
        best = best_frame_per_media(neighbours)
        if shape.pinned is not None:
            best = [self._best_frame_of(shape.pinned, vector)] + [b for b in best if b.media_id != shape.pinned]
        catalog = self.store.catalog
        media = catalog.media_by_ids(b.media_id for b in best)
        best = [b for b in best if b.media_id in media]  # removed by a writer after our vectors were loaded
        video_frames = [(v, s) for v, s in zip(neighbours.ids.tolist(), neighbours.scores.tolist())
                        if kind_of(v) == "video"]
        times = catalog.frames_by_vector_ids(v for v, _ in video_frames)
        by_media: dict[int, list[tuple[float, float]]] = {}
        for v, score in video_frames:
            if v in times and times[v].timestamp is not None:
                by_media.setdefault(media_id_of(v), []).append((times[v].timestamp, score))
        collapsed = self._collapsed([media[b.media_id] for b in best], [b.vector_id for b in best], shape,
                                    pinned=0 if shape.pinned is not None else None)
        copies = {best[shown].media_id: others for shown, others in collapsed}
        return [dataclasses.replace(
            hit, duplicates=copies[hit.media_id],
            segment=_segment_of(by_media.get(hit.media_id, []), hit.timestamp, hit.score, shape.segment_gap_s)
            if hit.kind == "video" else None)
            for hit in self._hits([best[shown] for shown, _ in collapsed])]

    def _collapsed(self, records: list[MediaRecord], vector_ids: list[int], shape: ResultShape,
                   pinned: int | None = None) -> list[tuple[int, tuple[Path, ...]]]:
        """Duplicate groups of `records` (best first), as `shape` collapses them: for each group, the
        position of the member shown (its original, or `pinned`) and the paths of the others."""
        threshold = shape.near_duplicate_threshold
        if not shape.collapse:
            return [(i, ()) for i in range(len(records))]
        vectors = (self.store.frames.vectors(np.array(vector_ids, dtype=np.int64))
                   if threshold is not None and records else np.empty((0, 0), np.float32))
        groups = group_duplicates(vectors, [r.content_hash for r in records], threshold)
        paths, mtimes = [r.path for r in records], [r.mtime_ns for r in records]
        root = self.store.info.root
        collapsed = []
        for group in groups:
            shown = original_of(group, paths, mtimes, pinned)
            collapsed.append((shown, tuple(root / paths[i] for i in group if i != shown)))
        return collapsed

    def _best_frame_of(self, media_id: int, vector: np.ndarray) -> BestFrame:
        frames = self.store.catalog.frames_of(media_id)
        scores = [float(self.store.frames.reconstruct(f.vector_id) @ vector) for f in frames]
        best = int(np.argmax(scores))
        return BestFrame(media_id, frames[best].vector_id, scores[best])

    def search_video_means(self, vector: np.ndarray, k: int, shape: ResultShape | None = None) -> list[SearchHit]:
        """Videos ranked by their mean-pooled frame vector: a second retriever for fusion."""
        self.store.refresh()
        media_filter = (shape or self.default_shape).filter
        if media_filter.active:
            video_filter = dataclasses.replace(media_filter, kind="video")
            neighbours = self.store.videos.search_among(vector, k, milvus_expression(video_filter)
                                                        if self.store.videos.filters_by_fields
                                                        else IdSubset(self.allowed_media_ids(video_filter)))
        else:
            neighbours = self.store.videos.search(vector, k)
        hits = self._hits([BestFrame(int(m), -1, float(s)) for m, s in zip(neighbours.ids, neighbours.scores)])
        if shape is not None and shape.min_score is not None:
            hits = [h for h in hits if h.score >= shape.min_score]
        return hits

    def newest(self, k: int) -> list[SearchHit]:
        """The k newest items, copies collapsed as a search collapses them (no query: every score is 0).

        A video is shown at its middle frame. More candidates than k are read, so k remain after
        collapsing unless the index holds fewer.
        """
        self.store.refresh()
        records, middle = [], []
        for record in self.store.catalog.newest_media(4 * k):
            frames = self.store.catalog.frames_of(record.id)
            if frames:  # else removed by a writer since
                records.append(record)
                middle.append(frames[len(frames) // 2].vector_id)
        collapsed = self._collapsed(records, middle, self.default_shape)[:k]
        copies = {records[shown].id: others for shown, others in collapsed}
        hits = self._hits([BestFrame(records[shown].id, middle[shown], 0.0) for shown, _ in collapsed])
        return [dataclasses.replace(hit, duplicates=copies[hit.media_id]) for hit in hits]

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


def _segment_of(frames: list[tuple[float, float]], best_t: float | None, best_score: float, gap_s: float
                ) -> Segment | None:
    """The moment holding a video hit's best frame, from its frame hits in the list."""
    if best_t is None:
        return None
    for segment in merge_segments(frames or [(best_t, best_score)], gap_s):
        if segment.start <= best_t <= segment.end:
            return segment
    return Segment(best_t, best_t, best_t, best_score)  # a pinned item whose frames were not in the list
