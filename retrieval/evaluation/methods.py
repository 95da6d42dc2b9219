"""How each compared method ranks one query: a first-stage retriever, a fusion of them, or an MLLM
reranking of the main retriever's top-K (ViC: of the retrievers' interleaved lists)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np

from retrieval.errors import EvalInputError
from retrieval.datasets import RetrievalDataset
from retrieval.models.encoder import ClipEncoder
from retrieval.media.image_io import load_rgb
from retrieval.evaluation.metrics import pessimistic_order
from retrieval.rerank.candidates import CandidateOptions, media_image
from retrieval.rerank.fusion import RankedList, collapse_duplicates, round_robin_interleave
from retrieval.rerank.methods import fusion_spec
from retrieval.rerank.reranker import Reranker
from retrieval.rerank.types import Candidate, RerankQuery, RerankReport
from retrieval.evaluation.tasks import RankingTask
from retrieval.query.service import sqaf_query

FUSION_DEPTH = 1000  # each retriever contributes its top 1000; items outside every list rank last

MethodKind = Literal["retriever", "fusion", "rerank", "vic"]


# How each kind of method breaks ties; the report names the rule on every row. None looks at the
# ground truth to favour it: raw similarities rank a tied ground truth last (metrics.pessimistic_order);
# a fused list is the fusion's own ranking, whose ties fall by the best input rank, then the retrievers'
# order (fusion.py); a reranked head is the model's order, the tail below it stays pessimistic.
TIE_RULES: dict[MethodKind, str] = {
    "retriever": "pessimistic",
    "fusion": "fused order",
    "rerank": "model order, then pessimistic",
    "vic": "model order, then pessimistic",
}


@dataclass(frozen=True)
class Method:
    name: str  # as the report shows it
    kind: MethodKind
    target: str  # the retriever, fusion or rerank method it runs

    @property
    def tie_rule(self) -> str:
        return TIE_RULES[self.kind]


@dataclass(frozen=True)
class QueryCost:
    """What reranking one query cost."""

    latency_s: float  # wall time: building the candidates' images and the model calls
    calls: int
    prompt_tokens: int
    completion_tokens: int
    visual_tokens: int
    fallback: str | None

    @classmethod
    def of(cls, report: RerankReport, latency_s: float) -> QueryCost:
        return cls(latency_s, report.calls, report.prompt_tokens, report.completion_tokens, report.visual_tokens,
                   report.fallback)


@dataclass(frozen=True)
class RankedQuery:
    order: np.ndarray  # item indices, best first
    cost: QueryCost | None = None  # reranked methods
    caption: str | None = None  # composed queries, reranked: SQAF's generated target caption


@dataclass
class Reranking:
    """What reranked methods need: the models, the benchmark's media and how many candidates to rerank."""

    reranker: Reranker
    rerank_k: int
    options: CandidateOptions
    dataset: RetrievalDataset
    encoder: ClipEncoder  # SQAF: embeds the generated target caption
    caption_weight: float  # SQAF's b

    def query(self, row: int) -> RerankQuery:
        query = self.dataset.queries[row]
        if query.reference is None:
            return RerankQuery(query.text)
        path = self.dataset.gallery[query.reference].path
        return RerankQuery(query.text, load_rgb(path, self.options.max_image_pixels).image)

    def candidate(self, item: int) -> Candidate:
        return Candidate(media_image(self.dataset.gallery[item].path, self.dataset.media, self.options))


def rank_query(task: RankingTask, method: Method, row: int, reranking: Reranking | None) -> RankedQuery:
    """The final ranking of one query and, for reranked methods, its cost."""
    relevant, excluded = task.relevant[row], task.excluded[row]
    if method.kind == "retriever":
        return RankedQuery(pessimistic_order(task.retrievers[method.target][row], relevant, excluded))
    if method.kind == "fusion":
        fused = fusion_spec(method.target).fuse(_retriever_lists(task, row))
        return RankedQuery(fused_order(fused.ids, task.n_items, relevant, excluded))
    if reranking is None:
        raise EvalInputError(f"{method.name} needs a model and the benchmark's media: run it on a --dataset")
    started = time.perf_counter()
    query = reranking.query(row)
    scores, caption = task.retrievers[task.main_retriever][row], None
    if method.kind == "rerank" and query.composed and task.query_vectors is not None:
        # As the search does for a reranked composed query: SQAF first, then the first stage again.
        caption, vector = sqaf_query(reranking.reranker.backend, reranking.encoder, query.text, query.reference,
                                     task.query_vectors[row], reranking.caption_weight)
        scores = vector @ task.item_vectors.T if caption else scores
    base = pessimistic_order(scores, relevant, excluded)
    if method.kind == "rerank":
        head = base[: reranking.rerank_k]
        report = reranking.reranker.rerank(method.target, query, [reranking.candidate(int(i)) for i in head])
        order = np.concatenate([head[report.order], base[len(head):]])
    else:
        order, report = _vic(task, row, reranking, query, base)
    return RankedQuery(order, QueryCost.of(report, time.perf_counter() - started), caption)


def fused_order(fused_ids: list, n_items: int, relevant, excluded) -> np.ndarray:
    """A fused list as ranked (its own tie rule), then the items no retriever returned: those tie at
    the bottom, pessimistically."""
    head = np.asarray(fused_ids, dtype=np.int64)
    head = head[~np.isin(head, np.asarray(list(excluded), dtype=np.int64))]
    rest = pessimistic_order(np.zeros(n_items), relevant, excluded)
    return np.concatenate([head, rest[~np.isin(rest, head)]])


def _retriever_lists(task: RankingTask, row: int) -> list[RankedList]:
    lists = []
    for scores in task.retrievers.values():
        top = pessimistic_order(scores[row], task.relevant[row], task.excluded[row])[:FUSION_DEPTH]
        lists.append(RankedList(top.tolist(), scores[row][top].tolist()))
    return lists


def _vic(task: RankingTask, row: int, reranking: Reranking, query: RerankQuery, base: np.ndarray
         ) -> tuple[np.ndarray, RerankReport]:
    """ViC: one S-Grid ranking of the interleaved retriever lists (duplicates kept), then the rest."""
    interleaved = round_robin_interleave(_retriever_lists(task, row))
    shown = interleaved[: min(reranking.rerank_k, reranking.reranker.options.window)]
    images: dict[int, Candidate] = {}  # duplicates of a video share one S-Grid
    for item in shown:
        if item not in images:
            images[item] = reranking.candidate(item)
    report = reranking.reranker.rerank("sgrid", query, [images[i] for i in shown])
    report.method = "vic"
    head = list(dict.fromkeys([*collapse_duplicates(report.order, shown), *interleaved]))
    placed = set(head)
    return np.array(head + [int(i) for i in base if int(i) not in placed], dtype=np.int64), report
