"""Reranked methods in eval: an MLLM reranks the main retriever's top-K (SQAF first for composed
queries), or ranks the retrievers' interleaved lists (ViC). Needs the models and the benchmark's media."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from retrieval.datasets import RetrievalDataset
from retrieval.evaluation.depths import CAPTION_DIRECTIONS, MethodDepth, depth_key
from retrieval.evaluation.methods import Method, QueryCost, RankedQuery, retriever_lists
from retrieval.evaluation.metrics import pessimistic_order
from retrieval.evaluation.tasks import RankingTask
from retrieval.media.image_io import load_rgb
from retrieval.models.encoder import ClipEncoder
from retrieval.query.service import sqaf_query
from retrieval.rerank.candidates import CandidateOptions, media_image
from retrieval.rerank.fusion import collapse_duplicates, round_robin_interleave
from retrieval.rerank.marks import MAX_CANDIDATES
from retrieval.rerank.reranker import Reranker
from retrieval.rerank.types import Candidate, RerankQuery, RerankReport


@dataclass
class Reranking:
    """What reranked methods need: the models, the benchmark's media and each method's depth and window."""

    reranker: Reranker  # its options' window and step are replaced by each method's
    depths: dict[str, MethodDepth]  # by depth_key(direction, method) (evaluation/depths.py)
    options: Callable[[str | None], CandidateOptions]  # how a rerank method shows candidates (service.candidate_options)
    dataset: RetrievalDataset
    encoder: ClipEncoder | None  # SQAF: embeds the generated target caption (None: precomputed first stages)
    caption_weight: float  # SQAF's b
    # SQAF's caption and first-stage scores per composed query: the `+sqaf` row and every reranker on it share one.
    _sqaf: dict[tuple[str, int], tuple[str | None, np.ndarray]] = field(default_factory=dict, repr=False)
    _rerankers: dict[str, Reranker] = field(default_factory=dict, repr=False)

    def depth(self, direction: str, method: Method) -> int | None:
        planned = self.depths.get(depth_key(direction, method))
        return planned.depth if planned else None

    def _reranker(self, direction: str, method: Method) -> Reranker:
        key = depth_key(direction, method)
        if key not in self._rerankers:
            planned = self.depths[key]
            # A pointwise method's depth may pass one call's worth; it scores every candidate alone anyway.
            options = replace(self.reranker.options, window=min(planned.window, MAX_CANDIDATES), step=planned.step)
            self._rerankers[key] = Reranker(self.reranker.backend, self.reranker.model_name, options)
        return self._rerankers[key]

    def query(self, row: int) -> RerankQuery:
        query = self.dataset.queries[row]
        if query.reference is None:
            return RerankQuery(query.text)
        path = self.dataset.gallery[query.reference].path
        return RerankQuery(query.text, load_rgb(path, self.options(None).max_image_pixels).image)

    def candidate(self, item: int, method: Method) -> Candidate:
        """A gallery item as `method` shows it (cot: photos as large as the model takes; sgrid-vic and ViC fusion:
        ViC's own S-Grid)."""
        entry = self.dataset.gallery[item]
        return Candidate(media_image(entry.path, self.dataset.media, self.options(method.target)), entry.subtitle)

    def rank(self, task: RankingTask, method: Method, row: int) -> RankedQuery:
        """The final ranking of one query by a model method, and what the reranking cost."""
        started = time.perf_counter()
        planned = self.depths[depth_key(task.direction, method)] if method.kind != "sqaf" else None
        if task.direction in CAPTION_DIRECTIONS:
            # ViC's video-to-text: the row is a gallery video, the items are captions (dataset queries).
            video = self.candidate(row, method)
            base = pessimistic_order(task.retrievers[task.main_retriever][row], task.relevant[row], task.excluded[row])

            def rank_shown(shown: list[int]) -> RerankReport:
                return self._reranker(task.direction, method).rerank_captions(
                    video, [self.dataset.queries[i].text for i in shown])
            caption = None
        else:
            query = self.query(row)
            scores, caption = task.retrievers[task.main_retriever][row], None
            if method.kind in ("sqaf", "rerank") and query.composed and task.query_vectors is not None:
                # As the search does for a reranked composed query: SQAF first, then the first stage again.
                caption, scores = self._sqaf_first_stage(task, row, query)
            base = pessimistic_order(scores, task.relevant[row], task.excluded[row])
            if method.kind == "sqaf":
                return RankedQuery(base, None, caption)

            def rank_shown(shown: list[int]) -> RerankReport:
                images: dict[int, Candidate] = {}  # duplicates (ViC's interleaved list) share one image
                for item in shown:
                    if item not in images:
                        images[item] = self.candidate(item, method)
                return self._reranker(task.direction, method).rerank(method.target, query, [images[i] for i in shown])
        if method.kind == "rerank":
            head = base[: planned.depth]
            report = rank_shown(head.tolist())
            order = np.concatenate([head[report.order], base[len(head):]])
        else:
            order, report = self._vic(task, row, base, planned.depth, rank_shown)
        return RankedQuery(order, QueryCost.of(report, time.perf_counter() - started), caption)

    def _sqaf_first_stage(self, task: RankingTask, row: int, query: RerankQuery) -> tuple[str | None, np.ndarray]:
        key = (task.direction, row)
        if key not in self._sqaf:
            caption, vector = sqaf_query(self.reranker.backend, self.encoder, query.text, query.reference,
                                         task.query_vectors[row], self.caption_weight)
            scores = vector @ task.item_vectors.T if caption else task.retrievers[task.main_retriever][row]
            self._sqaf[key] = (caption, scores)
        return self._sqaf[key]

    @staticmethod
    def _vic(task: RankingTask, row: int, base: np.ndarray, depth: int,
             rank_shown: Callable[[list[int]], RerankReport]) -> tuple[np.ndarray, RerankReport]:
        """ViC: one ranking of the interleaved retriever lists (duplicates kept), then the rest."""
        interleaved = round_robin_interleave(retriever_lists(task, row))
        shown = interleaved[:depth]
        report = rank_shown(shown)
        report.method = "vic"
        head = list(dict.fromkeys([*collapse_duplicates(report.order, shown), *interleaved]))
        placed = set(head)
        return np.array(head + [int(i) for i in base if int(i) not in placed], dtype=np.int64), report
