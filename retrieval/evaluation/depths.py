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
    # ViC's code (mohammad2012191/ViC, Scripts/ensemble_retrieval.py): Config.num_images = 14 S-Grids in one
    # call for text-to-video, as a single-list reranker (M=1) and as a fuser.
    "sgrid": PaperDepth(14, 14, None, "ViC: num_images = 14 for t2v, one call (Scripts/ensemble_retrieval.py)"),
    "vic": PaperDepth(14, 14, None, "ViC: num_images = 14 for t2v, one call (Scripts/ensemble_retrieval.py)"),
}


def paper_key(method: Method) -> str | None:
    """The PAPER_DEPTHS key of a reranked method; None for methods without a model (and SQAF alone)."""
    if method.kind == "rerank":
        return method.target
    if method.kind == "vic":
        return "vic"
    return None


@dataclass(frozen=True)
class DepthPlan:
    depths: dict[str, MethodDepth]  # by method name (as the report shows it)
    notes: list[str]  # what differs from the papers, and why: printed and recorded


def plan_depths(methods: list[Method], candidates: int, rerank_k: int | None = None,
                rerank_window: int | None = None, rerank_step: int | None = None) -> DepthPlan:
    """Each reranked method's depth and window: the paper's, unless the user set them (`rerank_k` etc.).

    `candidates` is how many items a query can rank (the gallery). A single-call method sees its whole
    depth in one call when it fits in one (MAX_CANDIDATES marks); ViC's interleaved list, duplicates
    included, cannot slide, so a ViC depth past one call is an error.
    """
    depths: dict[str, MethodDepth] = {}
    notes: list[str] = []
    if rerank_k is not None and rerank_k > candidates:
        raise EvalInputError(f"--rerank-k {rerank_k} is larger than the {candidates} items a query can rank: "
                             f"pass --rerank-k {candidates} or less")
    for method in methods:
        key = paper_key(method)
        if key is None:
            continue
        paper = PAPER_DEPTHS[key]
        depth = rerank_k if rerank_k is not None else paper.depth
        source = paper.source if rerank_k is None else f"--rerank-k {rerank_k} (paper: {paper.depth}; {paper.source})"
        if depth > candidates:
            notes.append(f"{method.name}: the paper reranks {depth}, this benchmark has {candidates} items per "
                         f"query: reranks all {candidates}")
            depth = candidates
        if key == "vic":
            if depth > MAX_CANDIDATES:
                raise EvalInputError(f"{method.name} ranks its interleaved list in one call, at most "
                                     f"{MAX_CANDIDATES} candidates; --rerank-k {depth} asks for more: pass "
                                     f"--rerank-k {MAX_CANDIDATES} or less")
            if rerank_window is not None and rerank_window != depth:
                notes.append(f"{method.name}: ranks its {depth} candidates in one call as ViC does; "
                             f"--rerank-window {rerank_window} does not apply to it")
            depths[method.name] = MethodDepth(depth, depth, 1, source)
            continue
        if paper.step is None:  # a single-call method: the whole depth in one call when it fits
            window = min(depth, MAX_CANDIDATES) if rerank_window is None else rerank_window
            step = rerank_step or max(1, window // 2)
        else:
            window = rerank_window or paper.window
            step = rerank_step or paper.step
        window = max(2, min(window, depth))
        step = min(step, window - 1) if window > 1 else 1
        planned = MethodDepth(depth, window, step, source)
        if paper.step is None and planned.calls_needed > 1:
            why = (f"--rerank-window {rerank_window}" if rerank_window is not None
                   else f"one call shows at most {MAX_CANDIDATES} candidates")
            notes.append(f"{method.name}: the paper ranks its candidates in one call; {depth} are ranked here in "
                         f"sliding windows of {window}, step {step} ({why})")
        depths[method.name] = planned
    return DepthPlan(depths, notes)
