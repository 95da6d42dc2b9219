"""`gridrank eval --dataset`: a public benchmark, embedded with the models, reranked with them if asked.
(Precomputed scores run without any model: evaluation/precomputed.py.)"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from retrieval.errors import EvalInputError
from retrieval.datasets import DATASETS, read_dataset
from retrieval.models.encoder import ClipEncoder
from retrieval.evaluation.dataset_tasks import RETRIEVERS, dataset_tasks
from retrieval.evaluation.plan import plan_methods
from retrieval.rerank.names import FUSION_INFO
from retrieval.evaluation.reranking import Reranking
from retrieval.evaluation.runner import (EvalOptions, EvalReport, PlannedTask, Progress, common_settings, method_names,
                                         run_tasks)
from retrieval.settings import Settings

log = logging.getLogger("gridrank.eval")


def run_dataset(name: str, root: Path, split: str | None, task: str | None, options: EvalOptions,
                settings: Settings, load_encoder: Callable[[Settings], ClipEncoder], progress: Progress) -> EvalReport:
    if name not in DATASETS:
        raise EvalInputError(f"unknown --dataset {name!r}: choose one of {', '.join(DATASETS)}")
    if task is not None and task != DATASETS[name].task:
        raise EvalInputError(f"--dataset {name} is a {DATASETS[name].task} benchmark, not {task}")
    dataset = read_dataset(name, root, split)
    # Check the methods against the task before any model loads.
    model_methods = [m.name for m in plan_methods(RETRIEVERS[dataset.media], options.rerank, options.fuse,
                                                  forward=True, has_media=True, media=dataset.media,
                                                  composed=dataset.task == "cir")
                     if m.kind in ("sqaf", "rerank", "vic")]
    encoder = load_encoder(settings)
    tasks = dataset_tasks(dataset, encoder, settings, options.out, options.limit, progress)
    planned = [PlannedTask(t, plan_methods(list(t.retrievers), options.rerank, options.fuse, forward=i == 0,
                                           has_media=True, media=dataset.media, composed=t.direction == "cir"))
               for i, t in enumerate(tasks)]
    clip_model, clip_pretrained = settings.model_identity
    recorded = {**common_settings(dataset.task, options), "mode": "dataset", "dataset": dataset.name,
                "split": dataset.split, "root": str(root.resolve()), "gallery": len(dataset.gallery),
                "queries": len(dataset.queries), "clip_model": clip_model, "clip_pretrained": clip_pretrained,
                "methods": method_names(planned)}
    if dataset.task == "cir":
        recorded["composed_text_weight"] = settings.composed_text_weight
    if dataset.media == "video":
        recorded["frames_per_video"] = settings.frames_per_video
    reranking = None
    if model_methods:
        from retrieval.query.service import candidate_options, make_backend, make_reranker

        backend, model_name = make_backend(settings)
        reranking = Reranking(make_reranker(settings, backend, model_name), settings.rerank_k,
                              candidate_options(settings), dataset, encoder, settings.sqaf_caption_weight)
        recorded |= {"reranker_model": model_name, "reranker_url": settings.reranker_url,
                     "rerank_k": settings.rerank_k, "rerank_window": settings.rerank_window,
                     "rerank_step": settings.rerank_step, "grid_cell_size": settings.grid_cell_size,
                     "reranker_max_pixels": settings.reranker_max_pixels}
        if dataset.task == "cir":
            recorded["sqaf_caption_weight"] = settings.sqaf_caption_weight
        if dataset.media == "video":
            recorded |= {"sgrid_frames_side": settings.sgrid_frames_side, "sgrid_size": settings.sgrid_size}
        if any(FUSION_INFO[f].needs_model for f in options.fuse) and settings.rerank_k > settings.rerank_window:
            # ViC ranks its interleaved list in one call: never capped silently.
            note = (f"vic shows the model {settings.rerank_window} candidates in one call (rerank_window), not "
                    f"rerank_k {settings.rerank_k}: raise rerank_window to show more")
            log.warning(note)
            recorded["vic_depth"] = note
    return run_tasks(planned, options.out, recorded, reranking, progress)
