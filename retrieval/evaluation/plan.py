"""Which methods a run compares, checked against what the task and the mode can do."""

from __future__ import annotations

from collections.abc import Sequence

from retrieval.errors import EvalInputError
from retrieval.evaluation.methods import Method
from retrieval.rerank.names import FUSION_INFO, RERANK_METHODS, RERANKER_INFO

RERANK_CHOICES = ("none", *RERANK_METHODS)


def parse_list(value: str | None, allowed: tuple[str, ...], option: str) -> list[str]:
    names = [n.strip() for n in (value or "").split(",") if n.strip()]
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise EvalInputError(f"{option}: unknown {', '.join(unknown)}; choose from {', '.join(allowed)}")
    return list(dict.fromkeys(names))


def plan_methods(retrievers: list[str], rerank: list[str], fuse: list[str], *, forward: bool, has_media: bool,
                 media: str = "image", composed: bool = False, derived: Sequence[str] = ()) -> list[Method]:
    """`retrievers`: the first-stage retrievers' names, the main one first; `derived`: rows computed from them
    (hub-normalised scores), compared beside them but never fused.

    First-stage retrievers always (they are the baseline), then fusions, then rerankers.

    A reranked composed query first gets SQAF's caption blended into its query (as a search does), so
    its reranker reranks that first stage: the plan adds SQAF alone as a row (`clip+sqaf`), and names
    the reranked rows after it (`clip+sqaf+grid`). Each row gets the credit for its own step.

    Rerankers and ViC rank media for a text or composed query on the forward direction (t2i, cir, t2v);
    on a video benchmark's reverse direction (v2t), ViC's methods (sgrid, vic) rank captions for the
    query video, as ViC reports both. Only with a dataset: precomputed scores carry no media.
    """
    model_methods = [m for m in rerank if m != "none"] + [f for f in fuse if FUSION_INFO[f].needs_model]
    if model_methods and not has_media:
        raise EvalInputError(f"{', '.join(model_methods)} needs a model and the benchmark's media; precomputed "
                         "similarities (--sims) can compare first-stage retrievers and combsum/rrf only")
    for name in rerank:
        if name != "none" and media not in RERANKER_INFO[name].media:
            raise EvalInputError(f"--rerank {name} ranks {' and '.join(RERANKER_INFO[name].media)}s, not {media}s: use it "
                                 "with --task t2v; for images use grid")
    score_fusions = [f for f in fuse if not FUSION_INFO[f].needs_model]
    if fuse and len(retrievers) < 2:
        raise EvalInputError(f"--fuse needs several first-stage retrievers; this run has one ({retrievers[0]}). "
                         "Pass several --sims matrices, or use --task t2v (best-frame and mean-pooled retrievers)")
    methods = [Method(name, "retriever", name) for name in [*retrievers, *derived]]
    methods += [Method(f, "fusion", f) for f in score_fusions]
    if forward:
        rerankers = [m for m in rerank if m != "none"]
        first_stage = retrievers[0]
        if composed and rerankers:
            first_stage = f"{retrievers[0]}+sqaf"
            methods.append(Method(first_stage, "sqaf", "sqaf"))
        methods += [Method(f"{first_stage}+{m}", "rerank", m) for m in rerankers]
        methods += [Method(f, "vic", FUSION_INFO[f].reranker) for f in fuse if FUSION_INFO[f].needs_model]
    elif media == "video":  # ViC's video-to-text: the query video's S-Grid, captions as candidates
        methods += [Method(f"{retrievers[0]}+{m}", "rerank", m) for m in rerank if m in ("sgrid", "sgrid-vic")]
        methods += [Method(f, "vic", FUSION_INFO[f].reranker) for f in fuse if FUSION_INFO[f].needs_model]
    return methods
