"""The one search path behind the CLI, the web UI and its API: first stage, fusion, reranking."""

from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
from PIL import Image

from retrieval.models.encoder import ClipEncoder
from retrieval.rerank.backends.base import BackendError, RerankBackend
from retrieval.rerank.candidates import CandidateOptions, media_image
from retrieval.rerank.fusion import RankedList, ScoreFusion, collapse_duplicates, round_robin_interleave
from retrieval.rerank.methods import fusion_spec, reranker_spec
from retrieval.rerank.names import fusion_info, reranker_info
from retrieval.rerank.prompts import sqaf_caption_prompt
from retrieval.rerank.reranker import Reranker
from retrieval.rerank.types import Candidate, RerankOptions, RerankQuery, RerankReport
from retrieval.query.request import SearchRequest
from retrieval.store.catalog import Catalog
from retrieval.query.types import Query, ResultShape, SearchHit, SearchResponse, StageTimings
from retrieval.query.search import Searcher, blend
from retrieval.settings import Settings


def make_backend(settings: Settings) -> tuple[RerankBackend, str]:
    """The reranker backend the settings ask for, and the model's name for reports."""
    if settings.reranker_url:
        from retrieval.rerank.backends.server import ServerBackend

        backend = ServerBackend(settings.reranker_url, settings.reranker_model, settings.reranker_api_key,
                                timeout_s=settings.reranker_timeout_s)
        return backend, settings.reranker_model
    from retrieval.rerank.backends.local import LocalBackend

    build = settings.model_profile.build_reranker
    source = build(settings.cache_dir) if build is not None else settings.reranker_model
    return LocalBackend(source, settings.device, max_pixels=settings.reranker_max_pixels), settings.reranker_name


def make_reranker(settings: Settings, backend: RerankBackend, model_name: str) -> Reranker:
    s = settings
    return Reranker(backend, model_name, RerankOptions(cell_size=s.grid_cell_size, window=s.rerank_window,
                                                       step=s.rerank_step, max_new_tokens_list=s.list_max_new_tokens,
                                                       max_new_tokens_cot=s.cot_max_new_tokens))


def candidate_options(settings: Settings, method: str | None = None) -> CandidateOptions:
    """How candidates are shown to the model; a rerank method may ask for its own S-Grid (sgrid-vic: ViC's)."""
    s = settings
    info = reranker_info(method) if method else None
    return CandidateOptions(s.grid_cell_size, s.max_image_pixels,
                            s.reranker_max_pixels if info and info.photo_size == "model" else None,
                            s.sgrid_frames_side, s.sgrid_size, info.sgrid_style if info else "gridrank")


def build_candidate(hit: SearchHit, catalog: Catalog, options: CandidateOptions) -> Candidate:
    """What the reranking model is shown of one hit: the photo, or the video's S-Grid and its subtitles."""
    image = media_image(hit.path, hit.kind, options)
    subtitle = None
    if hit.kind == "video":
        subtitle = " ".join(cue.text for cue in catalog.subtitles_of(hit.media_id)) or None
    return Candidate(image, subtitle)


def sqaf_query(backend: RerankBackend, encoder: ClipEncoder, text: str, reference: Image.Image, base: np.ndarray,
               caption_weight: float) -> tuple[str | None, np.ndarray]:
    """SQAF: blend the MLLM's one-sentence description of the target image into a composed query vector."""
    try:
        generation = backend.generate(sqaf_caption_prompt(text), [reference], 64)
    except BackendError:
        return None, base  # the rerank report will say the model failed
    caption = " ".join(generation.text.split())
    if not caption:
        return None, base
    return caption, blend(base, encoder.encode_texts([caption])[0], caption_weight)


class SearchService:
    """Holds the searcher and, once first needed, the reranker: neither reloads per query."""

    def __init__(self, searcher: Searcher, settings: Settings, backend: RerankBackend | None = None,
                 backend_name: str | None = None):
        self.searcher = searcher
        self.settings = settings
        self._backend = backend
        self._backend_name = backend_name or settings.reranker_model
        self._backend_lock = threading.Lock()
        self._subtitle_vectors: tuple[int, dict[int, np.ndarray]] | None = None  # (generation, vectors)

    def reranker(self) -> Reranker:
        with self._backend_lock:
            if self._backend is None:
                self._backend, self._backend_name = make_backend(self.settings)
        return make_reranker(self.settings, self._backend, self._backend_name)

    def run(self, request: SearchRequest) -> SearchResponse:
        started = time.perf_counter()
        vector = self.searcher.encode(request.query)
        encode_s = time.perf_counter() - started

        caption, caption_s = None, 0.0
        if request.rerank and request.query.image is not None and request.query.text:
            caption, vector, caption_s = self._sqaf(request.query, vector)

        rerank_k = request.rerank_k or self.settings.rerank_k
        end = request.page * request.k  # a page is cut from the top page*k: pages never overlap
        depth = max(end, rerank_k) if (request.rerank or request.fuse) else end
        shape = self.result_shape(request)
        started = time.perf_counter()
        fusion = fusion_spec(request.fuse) if request.fuse else None
        if fusion is not None and fusion.fuse is not None:
            hits = self._fused(vector, depth, fusion.fuse, shape)
        elif fusion is not None:
            hits = self._video_retrievers_interleaved(vector, depth, shape)
        else:
            hits = self.searcher.search_vector(vector, depth, request.kind, shape)
        search_s = time.perf_counter() - started

        report, rerank_s = None, 0.0
        if not hits:
            pass  # nothing to rerank: an empty result, not a model call over no candidates
        elif fusion is not None and fusion.needs_model:
            hits, report, rerank_s = self._vic(request, hits, rerank_k)
        elif request.rerank:
            hits, report, rerank_s = self._rerank(request, hits[:rerank_k], hits[rerank_k:])
        start = end - request.k
        hits = [dataclasses.replace(h, rank=start + i + 1) for i, h in enumerate(hits[start:end])]
        return SearchResponse(hits, StageTimings(encode_s, search_s, rerank_s, caption_s), report, caption,
                              request.fuse)

    def result_shape(self, request: SearchRequest) -> ResultShape:
        s = self.settings
        return dataclasses.replace(
            ResultShape.from_settings(s), filter=request.filter, pinned=request.query.like, collapse=request.collapse,
            min_score=s.min_score if request.min_score is None else request.min_score,
            hub_norm=s.hub_norm if request.hub_norm is None else request.hub_norm)

    # -- SQAF -----------------------------------------------------------------------------------

    def _sqaf(self, query: Query, base: np.ndarray) -> tuple[str | None, np.ndarray, float]:
        started = time.perf_counter()
        caption, vector = sqaf_query(self.reranker().backend, self.searcher.encoder, query.text, query.image, base,
                                     self.settings.sqaf_caption_weight)
        return caption, vector, time.perf_counter() - started

    # -- reranking ------------------------------------------------------------------------------

    def _rerank(self, request: SearchRequest, head: list[SearchHit], tail: list[SearchHit]
                ) -> tuple[list[SearchHit], RerankReport, float]:
        started = time.perf_counter()
        reranker = self.reranker()
        query = RerankQuery(request.query.text or "", request.query.image)
        if query.composed and not query.text:
            query = RerankQuery("find images like this one", request.query.image)
        method = request.rerank
        if any(h.kind not in reranker_spec(method).media for h in head):
            method = "grid"  # S-Grids are for videos; photos among the candidates go on a marked grid
        options = candidate_options(self.settings, method)
        candidates = [build_candidate(h, self.searcher.store.catalog, options) for h in head]
        report = reranker.rerank(method, query, candidates)
        return [head[i] for i in report.order] + tail, report, time.perf_counter() - started

    # -- video fusion ---------------------------------------------------------------------------

    def _video_lists(self, vector: np.ndarray, depth: int, shape: ResultShape
                     ) -> tuple[list[RankedList], dict[int, SearchHit]]:
        """Best-frame, mean-pooled and (where subtitles exist) subtitle retrievers, as ranked lists."""
        # Not collapsed: the retrievers' lists must name the same videos for fusion to compare them.
        shape = dataclasses.replace(shape, collapse=False)
        frames = self.searcher.search_vector(vector, depth, "video", shape)
        means = self.searcher.search_video_means(vector, depth, shape)
        by_id = {h.media_id: h for h in means} | {h.media_id: h for h in frames}  # best-frame hits carry moments
        lists = [RankedList([h.media_id for h in frames], [h.score for h in frames]),
                 RankedList([h.media_id for h in means], [h.score for h in means])]
        subtitle_scores = self._subtitle_scores(vector)
        if shape.filter.active and subtitle_scores:
            allowed = set(self.searcher.allowed_media_ids(shape.filter).tolist())
            subtitle_scores = {m: v for m, v in subtitle_scores.items() if m in allowed}
        if subtitle_scores:
            ranked = sorted(subtitle_scores.items(), key=lambda item: -item[1])[:depth]
            lists.append(RankedList([m for m, _ in ranked], [s for _, s in ranked]))
            missing = [m for m, _ in ranked if m not in by_id]
            by_id |= {h.media_id: h for h in self.searcher.hits_for_media(missing)}
        return lists, by_id

    def _subtitle_scores(self, vector: np.ndarray) -> dict[int, float]:
        store = self.searcher.store
        generation = store.info.generation
        if self._subtitle_vectors is None or self._subtitle_vectors[0] != generation:
            texts = store.catalog.subtitle_texts()
            ids = list(texts)
            encoded = self.searcher.encoder.encode_texts([texts[i] for i in ids]) if ids else []
            self._subtitle_vectors = (generation, dict(zip(ids, encoded)))
        return {m: float(v @ vector) for m, v in self._subtitle_vectors[1].items()}

    def _fused(self, vector: np.ndarray, depth: int, fuse: ScoreFusion, shape: ResultShape) -> list[SearchHit]:
        lists, by_id = self._video_lists(vector, depth, shape)
        fused = fuse(lists)
        return [dataclasses.replace(by_id[m], score=s, first_stage_rank=i + 1)
                for i, (m, s) in enumerate(zip(fused.ids, fused.scores))]

    def _video_retrievers_interleaved(self, vector: np.ndarray, depth: int, shape: ResultShape
                                      ) -> list[SearchHit]:
        """ViC's candidate list: the retrievers' lists round-robin, duplicates kept."""
        lists, by_id = self._video_lists(vector, depth, shape)
        return [by_id[m] for m in round_robin_interleave(lists)]

    def _vic(self, request: SearchRequest, interleaved: list[SearchHit], rerank_k: int
             ) -> tuple[list[SearchHit], RerankReport, float]:
        """One S-Grid ranking over the interleaved list, then each video where its best copy landed."""
        started = time.perf_counter()
        shown = interleaved[: min(rerank_k, self.settings.rerank_window)]
        method = fusion_info("vic").reranker
        options = candidate_options(self.settings, method)
        built: dict[int, Candidate] = {}  # duplicates of a video share one S-Grid, decoded once
        for h in shown:
            if h.media_id not in built:
                built[h.media_id] = build_candidate(h, self.searcher.store.catalog, options)
        candidates = [built[h.media_id] for h in shown]
        report = self.reranker().rerank(method, RerankQuery(request.query.text or ""), candidates)
        report.method = "vic"
        order = collapse_duplicates(report.order, [h.media_id for h in shown])
        rest = [h.media_id for h in interleaved[len(shown):]]
        unique = list(dict.fromkeys([*order, *rest]))
        # "was #N" counts videos, as the final ranks do: a video's place in the interleaved list without
        # duplicates, so an order the model left alone shows no moves.
        first_stage = {m: i + 1 for i, m in enumerate(dict.fromkeys(h.media_id for h in interleaved))}
        by_id = {h.media_id: h for h in interleaved}
        hits = [dataclasses.replace(by_id[m], first_stage_rank=first_stage[m]) for m in unique]
        return hits, report, time.perf_counter() - started
