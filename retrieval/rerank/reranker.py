"""Run one reranking method over candidate images with an MLLM backend.

Every method returns a full permutation of the candidates. A failed or timed-out model call, or
an answer that names no candidate, keeps first-stage order for that window and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from PIL import Image

from retrieval.rerank.backends.base import BackendError, LogprobsUnavailable, RerankBackend
from retrieval.rerank.grids import make_marked_grid
from retrieval.rerank.marks import MAX_CANDIDATES, letter_marks, number_marks
from retrieval.rerank.parser import parse_cot, parse_ranking
from retrieval.rerank.prompts import cot_prompt, first_prompt, grid_ranking_prompt, sgrid_ranking_prompt
from retrieval.rerank.windows import sliding_window_rerank

RerankMethod = Literal["grid", "cot", "first", "sgrid"]
RERANK_METHODS: tuple[str, ...] = ("grid", "cot", "first", "sgrid")


@dataclass(frozen=True)
class Candidate:
    """What the model sees of one first-stage hit: a photo, or a video's S-Grid."""

    image: Image.Image
    subtitle: str | None = None


@dataclass(frozen=True)
class RerankQuery:
    text: str  # the search words, or the modification of a composed query
    reference: Image.Image | None = None  # composed queries: the example image

    @property
    def composed(self) -> bool:
        return self.reference is not None


@dataclass
class RerankReport:
    """What reranking did: its order, what the model saw and said, and what it cost."""

    method: str
    model: str
    order: list[int] = field(default_factory=list)  # candidate indices, best first
    rationale: str | None = None
    raw_outputs: list[str] = field(default_factory=list)
    images_sent: list[Image.Image] = field(default_factory=list)
    calls: int = 0
    seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    visual_tokens: int = 0
    fallback: str | None = None  # why (some of) the order is first-stage order; None if it is all the model's

    def add_call(self, prompt_tokens: int | None, completion_tokens: int | None, visual_tokens: int | None,
                 seconds: float) -> None:
        self.calls += 1
        self.seconds += seconds
        self.prompt_tokens += prompt_tokens or 0
        self.completion_tokens += completion_tokens or 0
        self.visual_tokens += visual_tokens or 0

    def note_fallback(self, reason: str) -> None:
        self.fallback = reason if self.fallback is None else f"{self.fallback}; {reason}"


@dataclass(frozen=True)
class RerankOptions:
    cell_size: int = 224
    window: int = 9
    step: int = 4
    max_new_tokens_list: int = 96
    max_new_tokens_cot: int = 768


class Reranker:
    def __init__(self, backend: RerankBackend, model_name: str, options: RerankOptions = RerankOptions()):
        if not 1 < options.window <= MAX_CANDIDATES:
            raise ValueError(f"rerank window must be 2..{MAX_CANDIDATES}, got {options.window}")
        self.backend = backend
        self.model_name = model_name
        self.options = options

    def rerank(self, method: RerankMethod, query: RerankQuery, candidates: Sequence[Candidate]) -> RerankReport:
        if method not in RERANK_METHODS:
            raise ValueError(f"unknown rerank method {method!r}: choose one of {', '.join(RERANK_METHODS)}")
        report = RerankReport(method, self.model_name)
        rank_one_window = {"grid": self._grid, "cot": self._cot, "first": self._first, "sgrid": self._sgrid}[method]

        def rank_window(window: list[int]) -> list[int]:
            try:
                local = rank_one_window(query, [candidates[i] for i in window], report)
            except BackendError as e:
                report.note_fallback(f"model call failed ({e}): first-stage order kept")
                return window
            return [window[i] for i in local]

        # One window when everything fits; otherwise RankGPT's bottom-up pass.
        if len(candidates) <= self.options.window:
            report.order = rank_window(list(range(len(candidates))))
        else:
            step = min(self.options.step, self.options.window - 1)
            report.order = sliding_window_rerank(list(range(len(candidates))), self.options.window, step, rank_window)
        return report

    # Each method ranks one window of candidates and returns local indices, best first.

    def _images(self, query: RerankQuery, shown: Sequence[Image.Image]) -> list[Image.Image]:
        return [query.reference, *shown] if query.composed else list(shown)

    def _parsed(self, text: str, n: int, marks: Sequence[str], report: RerankReport) -> list[int]:
        parsed = parse_ranking(text, n, marks)
        if parsed.mentioned == 0:
            report.note_fallback("the model's answer named no candidate: first-stage order kept")
        return parsed.order

    def _grid(self, query: RerankQuery, window: Sequence[Candidate], report: RerankReport) -> list[int]:
        marks = letter_marks(len(window))
        grid = make_marked_grid([c.image for c in window], self.options.cell_size, marks)
        prompt = grid_ranking_prompt(query.text, marks, composed=query.composed)
        generation = self.backend.generate(prompt, self._images(query, [grid.image]), self.options.max_new_tokens_list)
        report.images_sent.append(grid.image)
        report.raw_outputs.append(generation.text)
        report.add_call(generation.prompt_tokens, generation.completion_tokens, generation.visual_tokens,
                      generation.seconds)
        return self._parsed(generation.text, len(window), marks, report)

    def _cot(self, query: RerankQuery, window: Sequence[Candidate], report: RerankReport) -> list[int]:
        marks = number_marks(len(window))
        prompt = cot_prompt(query.text, marks, composed=query.composed)
        shown = [c.image for c in window]
        generation = self.backend.generate(prompt, self._images(query, shown), self.options.max_new_tokens_cot)
        report.images_sent.extend(shown)
        report.raw_outputs.append(generation.text)
        report.add_call(generation.prompt_tokens, generation.completion_tokens, generation.visual_tokens,
                      generation.seconds)
        output = parse_cot(generation.text, len(window), marks)
        report.rationale = output.reasoning if report.rationale is None else f"{report.rationale}\n\n{output.reasoning}"
        if output.ranking.mentioned == 0:
            report.note_fallback("the model's answer named no candidate: first-stage order kept")
        return output.ranking.order

    def _first(self, query: RerankQuery, window: Sequence[Candidate], report: RerankReport) -> list[int]:
        marks = letter_marks(len(window))
        grid = make_marked_grid([c.image for c in window], self.options.cell_size, marks)
        prompt = first_prompt(query.text, marks, composed=query.composed)
        images = self._images(query, [grid.image])
        try:
            scores = self.backend.first_token_logprobs(prompt, images, marks)
        except LogprobsUnavailable as e:
            report.note_fallback(f"no first-token logprobs ({e}): ranked by a generated list instead")
            return self._grid(query, window, report)
        report.images_sent.append(grid.image)
        report.add_call(scores.prompt_tokens, 0, scores.visual_tokens, scores.seconds)
        # Highest first-token probability first; ties keep first-stage order (sorted is stable).
        return sorted(range(len(window)), key=lambda i: -scores.logprobs[marks[i]])

    def _sgrid(self, query: RerankQuery, window: Sequence[Candidate], report: RerankReport) -> list[int]:
        subtitles = [c.subtitle for c in window]
        prompt = sgrid_ranking_prompt(query.text, len(window), subtitles if any(subtitles) else None)
        shown = [c.image for c in window]
        generation = self.backend.generate(prompt, shown, self.options.max_new_tokens_list)
        report.images_sent.extend(shown)
        report.raw_outputs.append(generation.text)
        report.add_call(generation.prompt_tokens, generation.completion_tokens, generation.visual_tokens,
                      generation.seconds)
        return self._parsed(generation.text, len(window), number_marks(len(window)), report)
