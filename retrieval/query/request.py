"""The one search request: the CLI, the web handlers and the API build it, and it checks itself once,
where it is built, so the three never disagree on what a valid search is."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from retrieval.errors import BadQueryError
from retrieval.query.hub_names import HUB_NORMS
from retrieval.query.kinds import KINDS, SearchKind
from retrieval.query.types import MediaFilter, Query
from retrieval.rerank.names import fusion_info, reranker_info
from retrieval.rerank.windows import MAX_RERANK_K, MIN_RERANK_K

MAX_K = 10_000  # results per page


@dataclass(frozen=True)
class SearchRequest:
    query: Query
    k: int = 10
    kind: SearchKind = "any"
    rerank: str | None = None  # a reranker's name (retrieval/rerank/methods.py), None: first stage only
    rerank_k: int | None = None  # None: the settings' rerank_k
    fuse: str | None = None  # videos: fuse best-frame, mean-pooled and subtitle retrievers
    filter: MediaFilter = field(default_factory=MediaFilter)  # folder, dates, extensions (the kind is `kind`)
    min_score: float | None = None  # None: the settings' min_score
    hub_norm: str | None = None  # none, qbnorm or dbnorm (query/hubness.py); None: the settings' hub_norm
    collapse: bool = True  # identical files, and near-duplicates above the threshold, into one result
    page: int = 1  # 1-based; k results per page

    def __post_init__(self) -> None:
        _whole_in("k", self.k, 1, MAX_K)
        _whole_in("page", self.page, 1, None)
        if self.kind not in KINDS:
            raise BadQueryError(f"kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.rerank is not None:
            reranker_info(self.rerank)
        if self.rerank_k is not None:
            _whole_in("candidates reranked (rerank_k)", self.rerank_k, MIN_RERANK_K, MAX_RERANK_K)
        if self.fuse is not None:
            fusion_info(self.fuse)
            if self.kind != "video":
                raise BadQueryError("fusion combines video retrievers: use it with kind video")
        if self.min_score is not None and not (math.isfinite(self.min_score) and -1 <= self.min_score <= 1):
            raise BadQueryError(f"minimum score must be between -1 and 1 (a cosine similarity), not {self.min_score}")
        if self.hub_norm is not None and self.hub_norm not in HUB_NORMS:
            raise BadQueryError(f"hub_norm must be one of {', '.join(HUB_NORMS)}, not {self.hub_norm!r}")
        if self.needs_model and (self.query.terms or self.query.like is not None):
            raise BadQueryError("the reranker needs a text or image query: mixed and more-like-this queries are "
                                "not reranked (drop the rerank method)")

    @property
    def model_fusion(self) -> bool:
        """Whether the fusion is the MLLM's (ViC) rather than a score fusion."""
        return self.fuse is not None and fusion_info(self.fuse).needs_model

    @property
    def needs_model(self) -> bool:
        """Whether the MLLM takes part: a reranker, or a fusion that the model does."""
        return self.rerank is not None or self.model_fusion


def _whole_in(name: str, value: object, low: int, high: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadQueryError(f"{name} must be a whole number, not {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise BadQueryError(f"{name} must be {bound}, not {value}")
