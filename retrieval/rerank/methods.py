"""The one registry of ranking methods: each reranker and fusion, registered once with its name,
its implementation, what it can rank and a one-line help. The CLI's choices, the web menus, request
validation and eval all read it.

A reranker's `rank_window` ranks one window of candidates with one model call and returns local
indices, best first; the Reranker (reranker.py) runs it over windows and handles failed calls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal

from PIL import Image

from retrieval.errors import BadQueryError
from retrieval.rerank.backends.base import Generation, LogprobsUnavailable, RerankBackend
from retrieval.rerank.chat import Prompt
from retrieval.rerank.fusion import RankedList, combmnz, combsum, rrf, zscore_normalize
from retrieval.rerank.grids import make_marked_grid
from retrieval.rerank.marks import letter_marks, number_marks
from retrieval.rerank.parser import ParsedRanking, parse_cot, parse_ranking
from retrieval.rerank.prompts import cot_prompt, first_prompt, grid_ranking_prompt, sgrid_ranking_prompt
from retrieval.rerank.types import Candidate, RerankOptions, RerankQuery, RerankReport

WindowRanker = Callable[[RerankBackend, RerankOptions, RerankQuery, Sequence[Candidate], RerankReport], list[int]]
Fuser = Callable[[Sequence[RankedList]], RankedList]
MediaKinds = tuple[Literal["image", "video"], ...]


@dataclass(frozen=True)
class RerankMethodSpec:
    name: str
    label: str  # how the UI names it
    help: str  # one line, for --help and the API description
    marks: Literal["letters", "numbers"]  # how candidates are labelled for the model
    media: MediaKinds  # what its candidates may be: photos, and videos shown as S-Grids
    rank_window: WindowRanker


@dataclass(frozen=True)
class FusionSpec:
    name: str
    label: str
    help: str
    fuse: Fuser | None  # None: the MLLM ranks the interleaved lists (ViC)

    @property
    def needs_model(self) -> bool:
        return self.fuse is None


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


def rank_sgrid(backend: RerankBackend, options: RerankOptions, query: RerankQuery, window: Sequence[Candidate],
               report: RerankReport) -> list[int]:
    """ViC: each video one S-Grid image ("Image-i"), subtitles as text, a generated ranking of the numbers."""
    subtitles = [c.subtitle for c in window]
    prompt = sgrid_ranking_prompt(query.text, len(window), subtitles if any(subtitles) else None)
    shown = [c.image for c in window]
    generation = _ask(backend, prompt, shown, options.max_new_tokens_list, shown, report)
    return _order(parse_ranking(generation.text, len(window), number_marks(len(window))), report)


RERANKERS: dict[str, RerankMethodSpec] = {spec.name: spec for spec in (
    RerankMethodSpec("grid", "marked grid", "one marked grid of the candidates, ranked in one call (SQUARE)",
                     "letters", ("image", "video"), rank_grid),
    RerankMethodSpec("cot", "chain of thought", "separate labelled images, reasoned ranking in JSON (CoTRR)",
                     "numbers", ("image", "video"), rank_cot),
    RerankMethodSpec("first", "single token", "the marked grid, ranked by first-token logits: no decoding (FIRST)",
                     "letters", ("image", "video"), rank_first),
    RerankMethodSpec("sgrid", "S-Grid", "each video as one grid of its frames, ranked in one call (ViC)",
                     "numbers", ("video",), rank_sgrid),
)}

FUSIONS: dict[str, FusionSpec] = {spec.name: spec for spec in (
    FusionSpec("combsum", "CombSUM", "sum of min-max normalized scores", combsum),
    FusionSpec("combmnz", "CombMNZ", "CombSUM times the number of retrievers that found the item", combmnz),
    FusionSpec("combsum-z", "CombSUM (z-score)", "sum of z-score normalized scores",
               partial(combsum, normalize=zscore_normalize)),
    FusionSpec("combmnz-z", "CombMNZ (z-score)", "CombMNZ over z-score normalized scores",
               partial(combmnz, normalize=zscore_normalize)),
    FusionSpec("rrf", "RRF", "reciprocal rank fusion, k = 60", rrf),
    FusionSpec("vic", "ViC fusion", "interleave the retrievers' lists, then one S-Grid ranking by the MLLM (ViC)",
               None),
)}

RERANK_METHODS: tuple[str, ...] = tuple(RERANKERS)
FUSION_METHODS: tuple[str, ...] = tuple(FUSIONS)


def reranker_spec(name: str) -> RerankMethodSpec:
    try:
        return RERANKERS[name]
    except KeyError:
        raise BadQueryError(f"unknown rerank method {name!r}: choose one of {', '.join(RERANKERS)}") from None


def fusion_spec(name: str) -> FusionSpec:
    try:
        return FUSIONS[name]
    except KeyError:
        raise BadQueryError(f"unknown fusion {name!r}: choose one of {', '.join(FUSIONS)}") from None


def rerankers_for(kind: Literal["image", "video"]) -> tuple[str, ...]:
    """The rerankers whose candidates may be of this kind."""
    return tuple(name for name, spec in RERANKERS.items() if kind in spec.media)


def method_label(name: str) -> str:
    spec = RERANKERS.get(name) or FUSIONS.get(name)
    return spec.label if spec else name


def choices_help(kind: Literal["rerank", "fusion"]) -> str:
    """'grid (one marked grid..., SQUARE), cot (...)': the methods with their help, for --help texts."""
    specs = RERANKERS.values() if kind == "rerank" else FUSIONS.values()
    return "; ".join(f"{spec.name}: {spec.help}" for spec in specs)
