"""How each compared method ranks one query: a first-stage retriever, a fusion of them, or (through
evaluation/reranking.py, with the models) an MLLM reranking of the main retriever's top-K."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

from retrieval.evaluation.metrics import pessimistic_order
from retrieval.evaluation.tasks import RankingTask
from retrieval.rerank.fusion import RankedList

if TYPE_CHECKING:
    from retrieval.rerank.types import RerankReport

FUSION_DEPTH = 1000  # each retriever contributes its top 1000; items outside every list rank last

MethodKind = Literal["retriever", "fusion", "sqaf", "rerank", "vic"]


# How each kind of method breaks ties; the report names the rule on every row. None looks at the
# ground truth to favour it: raw similarities rank a tied ground truth last (metrics.pessimistic_order);
# a fused list is the fusion's own ranking, whose ties fall by the best input rank, then the retrievers'
# order (fusion.py); a reranked head is the model's order, the tail below it stays pessimistic.
TIE_RULES: dict[MethodKind, str] = {
    "retriever": "pessimistic",
    "fusion": "fused order",
    "sqaf": "pessimistic",
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


class ModelRanking(Protocol):
    """The model side of eval (evaluation/reranking.Reranking), which `gridrank eval --sims` never imports.
    (Methods without a model rank every query at once: evaluation/batch.py.)"""

    def rank(self, task: RankingTask, method: Method, row: int) -> RankedQuery: ...

    def depth(self, direction: str, method: Method) -> int | None:
        """How many first-stage candidates the model reorders in `direction` (None: it reorders none)."""


def retriever_lists(task: RankingTask, row: int) -> list[RankedList]:
    lists = []
    for scores in task.fusion_inputs:
        top = pessimistic_order(scores[row], task.relevant[row], task.excluded[row])[:FUSION_DEPTH]
        lists.append(RankedList(top.tolist(), scores[row][top].tolist()))
    return lists
