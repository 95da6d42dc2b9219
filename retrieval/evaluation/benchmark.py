"""`gridrank eval --dataset`: a public benchmark, embedded with the models, reranked with them if asked.
(Precomputed scores run without any model: evaluation/precomputed.py.)"""

from __future__ import annotations

import dataclasses
import logging
from functools import partial
from collections.abc import Callable
from pathlib import Path

from retrieval.errors import EvalInputError
from retrieval.datasets import DATASETS, read_dataset
from retrieval.models.encoder import ClipEncoder
from retrieval.evaluation.depths import plan_depths
from retrieval.evaluation.dataset_tasks import RETRIEVERS, HubRows, dataset_tasks, precomputed_dataset_tasks
from retrieval.evaluation.precomputed import load_similarities
from retrieval.evaluation.plan import plan_methods
from retrieval.evaluation.reranking import Reranking
from retrieval.evaluation.runner import (EvalOptions, EvalReport, PlannedTask, Progress, common_settings, method_names,
                                         outcome_log, run_tasks)
from retrieval.evaluation.submission import SERVERS, write_submissions
from retrieval.query.hub_banks import read_query_bank
from retrieval.settings import Settings

log = logging.getLogger("gridrank.eval")


def run_dataset(name: str, root: Path, split: str | None, task: str | None, options: EvalOptions,
                settings: Settings, load_encoder: Callable[[Settings], ClipEncoder], progress: Progress) -> EvalReport:
    if name not in DATASETS:
        raise EvalInputError(f"unknown --dataset {name!r}: choose one of {', '.join(DATASETS)}")
    if task is not None and task != DATASETS[name].task:
        raise EvalInputError(f"--dataset {name} is a {DATASETS[name].task} benchmark, not {task}")
    dataset = read_dataset(name, root, split)
    matrices = None
    if options.sims:
        if dataset.task == "cir":
            raise EvalInputError(f"--sims with --dataset {name}: composed benchmarks rank with CLIP here (SQAF blends "
                                 "the model's caption into CLIP's query vector); use --sims alone with --gt")
        matrices = load_similarities(list(options.sims))
    # Check the methods and their depths against the task before any model loads.
    retrievers = list(matrices) if matrices else RETRIEVERS[dataset.media]
    forward = plan_methods(retrievers, options.rerank, options.fuse, forward=True, has_media=True,
                           media=dataset.media, composed=dataset.task == "cir")
    reverse = dataset.reverse_direction
    backward = plan_methods(retrievers, options.rerank, options.fuse, forward=False, has_media=True,
                            media=dataset.media) if reverse else []
    model_methods = [m.name for m in forward + backward if m.kind in ("sqaf", "rerank", "vic")]
    # The papers' depths and windows unless the user set rerank_k/window/step (flag, env or config).
    chosen = [getattr(settings, key) if key in settings.model_fields_set else None
              for key in ("rerank_k", "rerank_window", "rerank_step")]
    depths = plan_depths(dataset.task, forward, len(dataset.gallery) - (1 if dataset.exclude_reference else 0),
                         *chosen)
    if reverse:
        depths += plan_depths(reverse, backward, len(dataset.queries), *chosen)
    recorded = {**common_settings(dataset.task, options), "mode": "dataset", "dataset": dataset.name,
                "split": dataset.split, "root": str(root.resolve()), "gallery": len(dataset.gallery),
                "queries": len(dataset.queries)}
    encoder = None
    if matrices:
        if options.hub_norm:
            raise EvalInputError("--hub-norm with --dataset and --sims: the banks would have to match each matrix; "
                                 "use --sims with --gt and --query-bank-sims, or --dataset alone with --query-bank")
        tasks = precomputed_dataset_tasks(dataset, matrices, options.limit)
        recorded["sims"] = [str(p.resolve()) for p in options.sims]
    else:
        hub = None
        if options.hub_norm:
            if dataset.task == "cir":
                raise EvalInputError("--hub-norm: composed queries (a reference image and a change) have no query "
                                     "bank here; use it with t2i and t2v benchmarks")
            if options.query_bank is None:
                raise EvalInputError("--hub-norm with --dataset needs --query-bank QUERIES.txt: other queries (e.g. "
                                     "the training split's captions), one per line")
            hub = HubRows(options.hub_norm, read_query_bank(options.query_bank))
            recorded |= {"hub_norm": list(options.hub_norm), "query_bank": str(options.query_bank.resolve())}
        encoder = load_encoder(settings)
        tasks = dataset_tasks(dataset, encoder, settings, options.out, options.limit, progress, hub)
        recorded["clip_model"], recorded["clip_pretrained"] = settings.model_identity
        if dataset.task == "cir":
            recorded["composed_text_weight"] = settings.composed_text_weight
        if dataset.media == "video":
            recorded["frames_per_video"] = settings.frames_per_video
    planned = [PlannedTask(t, plan_methods([n for n in t.retrievers if n not in t.derived], options.rerank,
                                           options.fuse, forward=i == 0, has_media=True, media=dataset.media,
                                           composed=t.direction == "cir", derived=list(t.derived)))
               for i, t in enumerate(tasks)]
    recorded["methods"] = method_names(planned)
    reranking = None
    if model_methods:
        from retrieval.query.service import candidate_options, make_backend, make_reranker

        for note in depths.notes:
            log.warning(note)
        backend, model_name = make_backend(settings)
        reranking = Reranking(make_reranker(settings, backend, model_name), depths.depths,
                              partial(candidate_options, settings), dataset, encoder, settings.sqaf_caption_weight)
        recorded |= {"reranker_model": model_name, "reranker_url": settings.reranker_url,
                     "cot_max_new_tokens": settings.cot_max_new_tokens,
                     "list_max_new_tokens": settings.list_max_new_tokens,
                     "depths": {name: vars(d) for name, d in depths.depths.items()}, "depth_notes": depths.notes,
                     "grid_cell_size": settings.grid_cell_size, "reranker_max_pixels": settings.reranker_max_pixels}
        if dataset.task == "cir":
            recorded["sqaf_caption_weight"] = settings.sqaf_caption_weight
        if dataset.media == "video":
            recorded |= {"sgrid_frames_side": settings.sgrid_frames_side, "sgrid_size": settings.sgrid_size}
    report = run_tasks(planned, options.out, recorded, reranking, progress)
    if dataset.name not in SERVERS:
        return report
    # The composed task's rankings, in the files its test server takes (val too: to check them there).
    (cir,) = planned
    outcomes = {m.name: [o for o in outcome_log(options.out, "cir", m.name).load().values()
                         if o.query < cir.task.n_queries] for m in cir.methods}
    paths, notes = write_submissions(dataset, outcomes, options.out)
    for note in notes:
        log.warning(note)
    if not dataset.has_ground_truth:
        notes.insert(0, f"the {dataset.split} split has no public ground truth: no metrics here; submit the files in "
                        f"{options.out / 'submission'} to the {dataset.name.upper()} test server")
    return dataclasses.replace(report, submissions=paths, notes=notes)
