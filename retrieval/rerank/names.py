"""The ranking methods as users see them: names, labels, help, what each can rank. Data only.

The CLI's --help and choices, the web menus and request validation read this without importing
an implementation (which pulls in PIL, the grids and the parser: `gridrank --help` does not wait
for them). methods.py binds each name to its implementation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from retrieval.errors import BadQueryError

MediaKinds = tuple[Literal["image", "video"], ...]


@dataclass(frozen=True)
class RerankMethodInfo:
    name: str
    label: str  # how the UI names it
    help: str  # one line, for --help and the API description
    marks: Literal["letters", "numbers"]  # how candidates are labelled for the model
    media: MediaKinds  # what its candidates may be: photos, and videos shown as S-Grids
    # How a video becomes one image: gridrank's S-Grid (letterboxed frames at segment centres, timestamps) or
    # ViC's exactly (frames stretched to their cells, linspace over the whole video, no timestamps).
    sgrid_style: Literal["gridrank", "vic"] = "gridrank"
    # How large a photo candidate is shown: a grid cell's size, or as large as the model takes
    # (reranker_max_pixels): CoTRR sends each candidate's file whole and lets the model scale it.
    photo_size: Literal["cell", "model"] = "cell"
    # Listwise methods rank a window of candidates per call (sliding windows past one); a pointwise one scores each
    # candidate alone, so it sees every candidate whatever the window.
    listwise: bool = True


@dataclass(frozen=True)
class FusionInfo:
    name: str
    label: str
    help: str
    needs_model: bool  # True: the MLLM ranks the interleaved lists (ViC)
    reranker: str | None = None  # the rerank method that ranks them


RERANKER_INFO: dict[str, RerankMethodInfo] = {info.name: info for info in (
    RerankMethodInfo("grid", "marked grid", "one marked grid of the candidates, ranked in one call (SQUARE)",
                     "letters", ("image", "video")),
    RerankMethodInfo("cot", "chain of thought", "separate labelled images, reasoned ranking in JSON (CoTRR)",
                     "numbers", ("image", "video"), photo_size="model"),
    RerankMethodInfo("first", "single token",
                     "the marked grid, ranked by first-token logits: no decoding (FIRST)", "letters",
                     ("image", "video")),
    RerankMethodInfo("sgrid", "S-Grid", "each video as one grid of its frames, with timestamps, ranked in one call "
                     "(after ViC)", "numbers", ("video",)),
    RerankMethodInfo("pointwise", "pointwise yes/no", "each candidate alone, scored by the model's 'yes' against "
                     "'no' (a served reranker's score with --reranker-url): the baseline", "numbers",
                     ("image", "video"), photo_size="model", listwise=False),
    RerankMethodInfo("sgrid-vic", "S-Grid (ViC exact)", "ViC's own S-Grid and prompt words: frames stretched to "
                     "their cells, spread over the whole video, no timestamps", "numbers", ("video",), "vic"),
)}

FUSION_INFO: dict[str, FusionInfo] = {info.name: info for info in (
    FusionInfo("combsum", "CombSUM", "sum of min-max normalized scores", False),
    FusionInfo("combmnz", "CombMNZ", "CombSUM times the number of retrievers that found the item", False),
    FusionInfo("combsum-z", "CombSUM (z-score)", "sum of z-score normalized scores", False),
    FusionInfo("combmnz-z", "CombMNZ (z-score)", "CombMNZ over z-score normalized scores", False),
    FusionInfo("rrf", "RRF", "reciprocal rank fusion, k = 60", False),
    FusionInfo("vic", "ViC fusion", "interleave the retrievers' lists, then one S-Grid ranking by the MLLM, as ViC "
               "does it (sgrid-vic)", True, "sgrid-vic"),
)}

RERANK_METHODS: tuple[str, ...] = tuple(RERANKER_INFO)
FUSION_METHODS: tuple[str, ...] = tuple(FUSION_INFO)


def reranker_info(name: str) -> RerankMethodInfo:
    try:
        return RERANKER_INFO[name]
    except KeyError:
        raise BadQueryError(f"unknown rerank method {name!r}: choose one of {', '.join(RERANKER_INFO)}") from None


def fusion_info(name: str) -> FusionInfo:
    try:
        return FUSION_INFO[name]
    except KeyError:
        raise BadQueryError(f"unknown fusion {name!r}: choose one of {', '.join(FUSION_INFO)}") from None


def rerankers_for(kind: Literal["image", "video"]) -> tuple[str, ...]:
    """The rerankers whose candidates may be of this kind."""
    return tuple(name for name, info in RERANKER_INFO.items() if kind in info.media)


def method_label(name: str) -> str:
    info = RERANKER_INFO.get(name) or FUSION_INFO.get(name)
    return info.label if info else name


def choices_help(kind: Literal["rerank", "fusion"]) -> str:
    """'grid: one marked grid..., SQUARE; cot: ...': the methods with their help, for --help texts."""
    infos = RERANKER_INFO.values() if kind == "rerank" else FUSION_INFO.values()
    return "; ".join(f"{info.name}: {info.help}" for info in infos)
