"""Run one reranking method over candidate images with an MLLM backend.

Every method returns a full permutation of the candidates. A failed or timed-out model call, or
an answer that names no candidate, keeps first-stage order for that window and says so.
"""

from __future__ import annotations

from collections.abc import Sequence

from retrieval.rerank.backends.base import BackendError, RerankBackend
from retrieval.rerank.marks import MAX_CANDIDATES
from retrieval.rerank.methods import rank_captions, reranker_spec
from retrieval.rerank.names import reranker_info
from retrieval.rerank.types import Candidate, RerankOptions, RerankQuery, RerankReport
from retrieval.rerank.windows import sliding_window_rerank


class Reranker:
    def __init__(self, backend: RerankBackend, model_name: str, options: RerankOptions = RerankOptions()):
        if not 1 < options.window <= MAX_CANDIDATES:
            raise ValueError(f"rerank window must be 2..{MAX_CANDIDATES}, got {options.window}")
        self.backend = backend
        self.model_name = model_name
        self.options = options

    def rerank(self, method: str, query: RerankQuery, candidates: Sequence[Candidate]) -> RerankReport:
        rank_one_window = reranker_spec(method).rank_window
        report = RerankReport(method, self.model_name)

        def rank_window(window: list[int]) -> list[int]:
            try:
                local = rank_one_window(self.backend, self.options, query, [candidates[i] for i in window], report)
            except BackendError as e:
                report.note_fallback(f"model call failed ({e}): first-stage order kept")
                return window
            return [window[i] for i in local]

        # One window when everything fits (or the method scores each candidate alone); otherwise RankGPT's
        # bottom-up pass.
        if len(candidates) <= self.options.window or not reranker_info(method).listwise:
            report.order = rank_window(list(range(len(candidates))))
        else:
            step = min(self.options.step, self.options.window - 1)
            report.order = sliding_window_rerank(list(range(len(candidates))), self.options.window, step, rank_window)
        return report

    def rerank_captions(self, video: Candidate, captions: Sequence[str]) -> RerankReport:
        """ViC video-to-text: a video's candidate captions (at most one call's worth), ranked in one call."""
        report = RerankReport("sgrid", self.model_name)
        try:
            report.order = rank_captions(self.backend, self.options, video, captions, report)
        except BackendError as e:
            report.note_fallback(f"model call failed ({e}): first-stage order kept")
            report.order = list(range(len(captions)))
        return report
