"""How deep each reranked method reorders in eval, and how many candidates one model call sees: by default
its paper's numbers, each with its source, so that a reported number means what the paper's means.

A setting that cannot be honoured is never capped silently: it is an error, or a note that is printed and
recorded in run.json and the report.
"""

from __future__ import annotations

from dataclasses import dataclass

from retrieval.errors import EvalInputError
from retrieval.evaluation.methods import Method
from retrieval.rerank.marks import MAX_CANDIDATES
from retrieval.rerank.names import RERANKER_INFO


@dataclass(frozen=True)
class MethodDepth:
    depth: int  # first-stage candidates the model reorders; below them the first stage's order stays
    window: int  # candidates shown in one model call
    step: int  # sliding-window step when depth > window
    source: str  # where the numbers come from

    @property
    def calls_needed(self) -> int:
        """Model calls of one bottom-up sliding pass (1 when the whole depth fits in one call)."""
        if self.depth <= self.window:
            return 1
        return 1 + -(-(self.depth - self.window) // self.step)


@dataclass(frozen=True)
class PaperDepth:
    depth: int
    window: int
    step: int | None  # None: the paper ranks its whole depth in one call
    source: str


# Keyed by what a method runs: a rerank method's name, or "vic" for ViC fusion.
PAPER_DEPTHS: dict[str, PaperDepth] = {
    # SQUARE's EBR ranks its top candidates "in a single pass" as one marked grid (arXiv 2509.26330, §EBR);
    # its code is not public, so the depth is one 3x3 grid, the layout DESIGN describes.
    "grid": PaperDepth(9, 9, None, "SQUARE EBR: one marked grid, single pass (3x3)"),
    # CoTRR's code (freshfish15/CoTRR, models/config/config.py): TOP_N_FOR_RERANK = 10, ranked in one call.
    "cot": PaperDepth(10, 10, None, "CoTRR: TOP_N_FOR_RERANK = 10, one call (models/config/config.py)"),
    # FIRST's code (gangiswag/llm-reranker, bash/run_rerank_llm.sh): --llm_top_k 100 --window_size 20
    # --step_size 10, RankGPT's bottom-up sliding window.
    "first": PaperDepth(100, 20, 10, "FIRST: llm_top_k 100, window 20, step 10 (bash/run_rerank_llm.sh)"),
    # The pointwise baseline has no paper of its own (dedicated rerankers score whatever list they are given):
    # the top 20, the most one listwise call here sees, so that it reaches at least as deep as each listwise row.
    "pointwise": PaperDepth(20, 20, None, "baseline, no paper depth: the top 20, as deep as one listwise call"),
    # ViC's code (mohammad2012191/ViC, Scripts/ensemble_retrieval.py): Config.num_images = 14 S-Grids in one
    # call for text-to-video, as a single-list reranker (M=1) and as a fuser.
    "sgrid": PaperDepth(14, 14, None, "ViC: num_images = 14 for t2v, one call (Scripts/ensemble_retrieval.py)"),
    "sgrid-vic": PaperDepth(14, 14, None, "ViC: num_images = 14 for t2v, one call (Scripts/ensemble_retrieval.py)"),
    "vic": PaperDepth(14, 14, None, "ViC: num_images = 14 for t2v, one call (Scripts/ensemble_retrieval.py)"),
    # Video-to-text, the same code: Config.num_captions = 20 captions ranked for the query video in one call.
    "sgrid-v2t": PaperDepth(20, 20, None, "ViC: num_captions = 20 for v2t, one call (Scripts/ensemble_retrieval.py)"),
    "sgrid-vic-v2t": PaperDepth(20, 20, None, "ViC: num_captions = 20 for v2t, one call (Scripts/ensemble_retrieval.py)"),
    "vic-v2t": PaperDepth(20, 20, None, "ViC: num_captions = 20 for v2t, one call (Scripts/ensemble_retrieval.py)"),
}
# Directions whose model ranks captions for a video (ViC's video-to-text): one call, no sliding window.
CAPTION_DIRECTIONS = ("v2t",)


def paper_key(direction: str, method: Method) -> str | None:
    """The PAPER_DEPTHS key of a reranked method; None for methods without a model (and SQAF alone)."""
    if method.kind == "rerank":
        key = method.target
    elif method.kind == "vic":
        key = "vic"
    else:
        return None
    return f"{key}-{direction}" if direction in CAPTION_DIRECTIONS else key


def depth_key(direction: str, method: Method) -> str:
    """How run.json, the report and eval's model side name one method's depth: a name may run in two directions."""
    return f"{direction} {method.name}"


@dataclass(frozen=True)
class DepthPlan:
    depths: dict[str, MethodDepth]  # by depth_key(direction, method)
    notes: list[str]  # what differs from the papers, and why: printed and recorded

    def __add__(self, other: DepthPlan) -> DepthPlan:
        return DepthPlan({**self.depths, **other.depths}, [*self.notes, *other.notes])


def plan_depths(direction: str, methods: list[Method], candidates: int, rerank_k: int | None = None,
                rerank_window: int | None = None, rerank_step: int | None = None) -> DepthPlan:
    """Each reranked method's depth and window in `direction`: the paper's, unless the user set them.

    `candidates` is how many items a query can rank (the gallery; for video-to-text the captions). A
    single-call method sees its whole depth in one call when it fits in one (MAX_CANDIDATES marks);
    ViC's interleaved list, duplicates included, cannot slide, nor can a caption ranking, so a depth
    past one call is an error there.
    """
    depths: dict[str, MethodDepth] = {}
    notes: list[str] = []
    if rerank_k is not None and rerank_k > candidates:
        raise EvalInputError(f"--rerank-k {rerank_k} is larger than the {candidates} items a query can rank: "
                             f"pass --rerank-k {candidates} or less")
    for method in methods:
        key = paper_key(direction, method)
        if key is None:
            continue
        name = depth_key(direction, method)
        paper = PAPER_DEPTHS[key]
        depth = rerank_k if rerank_k is not None else paper.depth
        source = paper.source if rerank_k is None else f"--rerank-k {rerank_k} (paper: {paper.depth}; {paper.source})"
        if depth > candidates:
            whose = "the paper" if RERANKER_INFO[method.target].listwise else "the baseline by default"
            notes.append(f"{name}: {whose} reranks {depth}, this benchmark has {candidates} items per "
                         f"query: reranks all {candidates}")
            depth = candidates
        if key == "vic" or direction in CAPTION_DIRECTIONS:
            what = "its interleaved list" if key.startswith("vic") else "a video's captions"
            if depth > MAX_CANDIDATES:
                raise EvalInputError(f"{name} ranks {what} in one call, at most {MAX_CANDIDATES} candidates; "
                                     f"--rerank-k {depth} asks for more: pass --rerank-k {MAX_CANDIDATES} or less")
            if rerank_window is not None and rerank_window != depth:
                notes.append(f"{name}: ranks its {depth} candidates in one call as ViC does; "
                             f"--rerank-window {rerank_window} does not apply to it")
            depths[name] = MethodDepth(depth, depth, 1, source)
            continue
        if not RERANKER_INFO[method.target].listwise:  # each candidate scored alone: no windows
            depths[name] = MethodDepth(depth, depth, 1, source)
            continue
        if paper.step is None:  # a single-call method: the whole depth in one call when it fits
            window = min(depth, MAX_CANDIDATES) if rerank_window is None else rerank_window
            step = rerank_step or max(1, window // 2)
        else:
            window = rerank_window or paper.window
            step = rerank_step or paper.step
        window = max(2, min(window, depth))  # a call ranks at least two
        step = min(step, window - 1)
        planned = MethodDepth(depth, window, step, source)
        if paper.step is None and planned.calls_needed > 1:
            why = (f"--rerank-window {rerank_window}" if rerank_window is not None
                   else f"one call shows at most {MAX_CANDIDATES} candidates")
            notes.append(f"{name}: the paper ranks its candidates in one call; {depth} are ranked here in "
                         f"sliding windows of {window}, step {step} ({why})")
        depths[name] = planned
    return DepthPlan(depths, notes)
