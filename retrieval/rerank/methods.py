"""The one registry of ranking methods: each reranker and fusion of names.py bound to its
implementation. The service, the Reranker and eval run methods from here; what users see of a
method (name, label, help, media) is names.py's.

A reranker's `rank_window` ranks one window of candidates with one model call and returns local
indices, best first; the Reranker (reranker.py) runs it over windows and handles failed calls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from PIL import Image

from retrieval.rerank.backends.base import Generation, LogprobsUnavailable, RerankBackend
from retrieval.rerank.chat import Prompt
from retrieval.rerank.fusion import SCORE_FUSIONS, ScoreFusion
from retrieval.rerank.grids import make_marked_grid
from retrieval.rerank.marks import letter_marks, number_marks
from retrieval.rerank.names import FUSION_INFO, RERANKER_INFO, FusionInfo, RerankMethodInfo, fusion_info, reranker_info
from retrieval.rerank.parser import ParsedRanking, parse_cot, parse_ranking
from retrieval.rerank.prompts import (caption_ranking_prompt, cot_prompt, first_prompt, grid_ranking_prompt,
                                      sgrid_ranking_prompt, vic_sgrid_prompt)
from retrieval.rerank.types import Candidate, RerankOptions, RerankQuery, RerankReport

WindowRanker = Callable[[RerankBackend, RerankOptions, RerankQuery, Sequence[Candidate], RerankReport], list[int]]


@dataclass(frozen=True)
class RerankMethodSpec(RerankMethodInfo):
    rank_window: WindowRanker = field(kw_only=True)


@dataclass(frozen=True)
class FusionSpec(FusionInfo):
    fuse: ScoreFusion | None = field(kw_only=True)  # None: the MLLM ranks the interleaved lists (ViC)


# -- one model call, recorded and parsed ---------------------------------------------------------


def _ask(backend: RerankBackend, prompt: Prompt, images: Sequence[Image.Image], max_new_tokens: int,
         shown: Sequence[Image.Image], report: RerankReport) -> Generation:
    generation = backend.generate(prompt, images, max_new_tokens)
    report.images_sent.extend(shown)
    report.raw_outputs.append(generation.text)
    report.add_call(generation.prompt_tokens, generation.completion_tokens, generation.visual_tokens,
                    generation.seconds)
    return generation


def _order(parsed: ParsedRanking, report: RerankReport) -> list[int]:
    if parsed.mentioned == 0:
        report.note_fallback("the model's answer named no candidate: first-stage order kept")
    return parsed.order


def _with_reference(query: RerankQuery, shown: Sequence[Image.Image]) -> list[Image.Image]:
    return [query.reference, *shown] if query.composed else list(shown)


# -- the rerankers ---------------------------------------------------------------------------------


def rank_grid(backend: RerankBackend, options: RerankOptions, query: RerankQuery, window: Sequence[Candidate],
              report: RerankReport) -> list[int]:
    """SQUARE: one marked grid of the window, a generated ranking of its letters."""
    marks = letter_marks(len(window))
    grid = make_marked_grid([c.image for c in window], options.cell_size, marks).image
    prompt = grid_ranking_prompt(query.text, marks, composed=query.composed)
    generation = _ask(backend, prompt, _with_reference(query, [grid]), options.max_new_tokens_list, [grid], report)
    return _order(parse_ranking(generation.text, len(window), marks), report)


def rank_cot(backend: RerankBackend, options: RerankOptions, query: RerankQuery, window: Sequence[Candidate],
             report: RerankReport) -> list[int]:
    """CoTRR: numbered images, a deconstruct / judge / synthesize answer in JSON, its reasoning kept."""
    marks = number_marks(len(window))
    shown = [c.image for c in window]
    prompt = cot_prompt(query.text, marks, composed=query.composed)
    generation = _ask(backend, prompt, _with_reference(query, shown), options.max_new_tokens_cot, shown, report)
    output = parse_cot(generation.text, len(window), marks)
    report.rationale = output.reasoning if report.rationale is None else f"{report.rationale}\n\n{output.reasoning}"
    if output.ranking.mentioned and not output.from_json:
        report.note_fallback("the chain-of-thought answer has no JSON ranking (cut off at the token budget?): "
                             "its order is the order in which its text first mentions the candidates")
    return _order(output.ranking, report)


def rank_first(backend: RerankBackend, options: RerankOptions, query: RerankQuery, window: Sequence[Candidate],
               report: RerankReport) -> list[int]:
    """FIRST: the first answer token's log-probabilities over the grid's letters, one forward, no decoding."""
    marks = letter_marks(len(window))
    grid = make_marked_grid([c.image for c in window], options.cell_size, marks).image
    prompt = first_prompt(query.text, marks, composed=query.composed)
    try:
        scores = backend.first_token_logprobs(prompt, _with_reference(query, [grid]), marks)
    except LogprobsUnavailable as e:
        report.note_fallback(f"no first-token logprobs ({e}): ranked by a generated list instead")
        return rank_grid(backend, options, query, window, report)
    report.images_sent.append(grid)
    report.add_call(scores.prompt_tokens, 0, scores.visual_tokens, scores.seconds)
    # Highest first-token probability first; ties keep first-stage order (sorted is stable).
    return sorted(range(len(window)), key=lambda i: -scores.logprobs[marks[i]])


def _rank_videos(build_prompt: Callable[[str, int, list[str | None] | None], Prompt]) -> WindowRanker:
    """A ranker of videos shown as S-Grids ("Image-i"), subtitles as text, answered with a list of numbers."""
    def rank(backend: RerankBackend, options: RerankOptions, query: RerankQuery, window: Sequence[Candidate],
             report: RerankReport) -> list[int]:
        subtitles = [c.subtitle for c in window]
        prompt = build_prompt(query.text, len(window), subtitles if any(subtitles) else None)
        shown = [c.image for c in window]
        generation = _ask(backend, prompt, shown, options.max_new_tokens_list, shown, report)
        return _order(parse_ranking(generation.text, len(window), number_marks(len(window))), report)
    return rank


def rank_pointwise(backend: RerankBackend, options: RerankOptions, query: RerankQuery, window: Sequence[Candidate],
                   report: RerankReport) -> list[int]:
    """The baseline: each candidate scored alone (prompts.pointwise_prompt), best score first; ties keep
    first-stage order. Batched forward passes, logits only, no decoding."""
    scores = backend.pointwise_scores(query.text, query.reference, [c.image for c in window])
    report.images_sent.extend(c.image for c in window)
    report.add_call(scores.prompt_tokens, 0, scores.visual_tokens, scores.seconds, calls=scores.calls)
    return sorted(range(len(window)), key=lambda i: -scores.scores[i])


# ViC: gridrank's S-Grids and prompt (sgrid), or ViC's own exactly (sgrid-vic: the candidates come as
# names.RerankMethodInfo.sgrid_style "vic" builds them).
rank_sgrid = _rank_videos(sgrid_ranking_prompt)
rank_sgrid_vic = _rank_videos(vic_sgrid_prompt)


def rank_captions(backend: RerankBackend, options: RerankOptions, video: Candidate, captions: Sequence[str],
                  report: RerankReport) -> list[int]:
    """ViC video-to-text: the query video's S-Grid (and subtitle), its candidate captions ranked in one call."""
    prompt = caption_ranking_prompt(captions, video.subtitle)
    generation = _ask(backend, prompt, [video.image], options.max_new_tokens_list, [video.image], report)
    return _order(parse_ranking(generation.text, len(captions), number_marks(len(captions))), report)


_WINDOW_RANKERS: dict[str, WindowRanker] = {"grid": rank_grid, "cot": rank_cot, "first": rank_first,
                                             "sgrid": rank_sgrid, "sgrid-vic": rank_sgrid_vic,
                                             "pointwise": rank_pointwise}
_FUSERS: dict[str, ScoreFusion | None] = {**SCORE_FUSIONS, "vic": None}
assert _WINDOW_RANKERS.keys() == RERANKER_INFO.keys() and _FUSERS.keys() == FUSION_INFO.keys()

RERANKERS: dict[str, RerankMethodSpec] = {
    name: RerankMethodSpec(**vars(info), rank_window=_WINDOW_RANKERS[name]) for name, info in RERANKER_INFO.items()}
FUSIONS: dict[str, FusionSpec] = {
    name: FusionSpec(**vars(info), fuse=_FUSERS[name]) for name, info in FUSION_INFO.items()}


def reranker_spec(name: str) -> RerankMethodSpec:
    return RERANKERS[reranker_info(name).name]


def fusion_spec(name: str) -> FusionSpec:
    return FUSIONS[fusion_info(name).name]
