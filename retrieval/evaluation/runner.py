"""Run every planned method on every task query by query, appending outcomes as they finish.

A rerun with the same settings skips the queries already in the JSONL files, so an interrupted
run continues where it stopped; a different setting in the same folder is refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from retrieval.errors import EvalInputError
from retrieval.evaluation import batch
from retrieval.evaluation.methods import FUSION_DEPTH, Method, ModelRanking
from retrieval.evaluation.results import SUBSET_TOP, MethodScores, OutcomeLog, QueryOutcome, score
from retrieval.evaluation.tasks import RankingTask
from retrieval.evaluation.metrics import ranks_of
from retrieval.evaluation.presets import Preset

Progress = Callable[[str, int, int], None]  # (stage, done, total)
RUN_FILE = "run.json"
# Keys that may change between a run and its resumption: they choose what to run, not how.
RESUMABLE_KEYS = ("limit", "methods", "depth_notes")
# Keys holding one entry per method: a method both runs have must agree, a new one joins.
PER_METHOD_KEYS = ("depths",)


@dataclass(frozen=True)
class EvalOptions:
    rerank: list[str]  # "none" and/or rerank methods
    fuse: list[str]  # names from retrieval/rerank/methods.FUSIONS
    out: Path
    limit: int | None = None  # evaluate the first N queries of each direction
    sims: tuple[Path, ...] = ()  # with a dataset: precomputed first stages in place of CLIP's
    preset: Preset | None = None  # a published table row: its numbers go beside the measured ones
    hub_norm: tuple[str, ...] = ()  # --sims: hub corrections to compare (query/hubness.py), each a row per retriever
    query_bank_sims: tuple[Path, ...] = ()  # one per --sims matrix: bank queries x items
    gallery_bank_sims: tuple[Path, ...] = ()  # one per --sims matrix: bank items x items (dbnorm)
    query_bank: Path | None = None  # --dataset with hub_norm: a text file of other queries, one per line


def common_settings(task: str, options: EvalOptions) -> dict[str, Any]:
    try:
        gridrank = version("gridrank")
    except PackageNotFoundError:
        gridrank = "source"
    settings = {"gridrank": gridrank, "task": task,
                "tie_rule": "per row (ties column): raw similarities pessimistic, fused lists their own order",
                "fusion_depth": FUSION_DEPTH, "limit": options.limit}
    if options.preset is not None:
        settings |= {"preset": options.preset.name, "published_source": options.preset.source,
                     "published": [vars(e) for e in options.preset.expected],
                     "preset_settings": options.preset.settings}
    return settings


@dataclass(frozen=True)
class PlannedTask:
    task: RankingTask
    methods: list[Method]


@dataclass(frozen=True)
class EvalReport:
    settings: dict[str, Any]  # the exact settings and model names, as recorded in run.json
    scores: list[MethodScores]
    submissions: list[Path] = field(default_factory=list)  # files for a test server (CIRR, CIRCO)
    notes: list[str] = field(default_factory=list)  # what the report should say beside its numbers


def check_resumable(out: Path, settings: dict[str, Any]) -> None:
    """Refuse to mix runs: the folder's results must come from the same settings."""
    path = out / RUN_FILE
    if path.is_file():
        recorded = json.loads(path.read_text(encoding="utf-8"))
        # A key only one run has (the reranker's, when only one run reranks) cannot make results disagree.
        differ = sorted(k for k in set(recorded) & set(settings)
                        if k not in RESUMABLE_KEYS + PER_METHOD_KEYS and recorded[k] != settings[k])
        changes = [f"{k}: {recorded.get(k)!r} -> {settings.get(k)!r}" for k in differ]
        for key in set(PER_METHOD_KEYS) & set(recorded) & set(settings):
            changes += [f"{key} of {m}: {recorded[key][m]!r} -> {settings[key][m]!r}"
                        for m in sorted(set(recorded[key]) & set(settings[key])) if recorded[key][m] != settings[key][m]]
        if changes:
            raise EvalInputError(f"{out} holds results of a run with other settings ({'; '.join(changes)}): "
                             "pass another --out, or delete the folder to start over")
        merged = {key: {**recorded[key], **settings[key]} for key in PER_METHOD_KEYS if key in recorded and key in settings}
        if recorded.get("depth_notes") or settings.get("depth_notes"):
            merged["depth_notes"] = list(dict.fromkeys([*recorded.get("depth_notes", []), *settings.get("depth_notes", [])]))
        settings = {**recorded, **settings, **merged}
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2, default=str), encoding="utf-8")


def outcome_log(out: Path, direction: str, method: str) -> OutcomeLog:
    return OutcomeLog(out / "results" / f"{direction}.{method}.jsonl")


def run_tasks(planned: list[PlannedTask], out: Path, settings: dict[str, Any], reranking: ModelRanking | None,
              progress: Progress = lambda stage, done, total: None) -> EvalReport:
    check_resumable(out, settings)
    scores = []
    for item in planned:
        task = item.task
        model_free: dict[str, list[QueryOutcome]] | None = None  # computed once, when a method needs it
        for method in item.methods:
            log = outcome_log(out, task.direction, method.name)
            done = log.load()
            stage = f"{task.direction} {method.name}"
            total = task.n_queries
            finished = sum(1 for r in done if r < total)  # a run with a larger --limit may have done more
            progress(stage, finished, total)
            if method.kind in ("retriever", "fusion"):  # no model: every query at once, milliseconds
                if model_free is None:
                    model_free = batch.outcomes(task, [m for m in item.methods if m.kind in ("retriever", "fusion")])
                new = [o for o in model_free[method.name][:total] if o.query not in done]
                log.extend(new)
                done.update((o.query, o) for o in new)
                progress(stage, total, total)
            elif reranking is None:
                raise EvalInputError(f"{method.name} needs a model and the benchmark's media: run it on a --dataset")
            for row in range(total):
                if row in done:
                    continue
                ranked = reranking.rank(task, method, row)
                subset_ranks = subset_top = None
                if task.subsets is not None and task.subsets[row] is not None:
                    in_subset = ranked.order[np.isin(ranked.order, task.subsets[row])]
                    subset_ranks = tuple(ranks_of(in_subset, task.relevant[row]))
                    subset_top = tuple(in_subset[:SUBSET_TOP].tolist()) if task.keep_top else None
                target = task.targets[row] if task.targets else None
                target_rank = ranks_of(ranked.order, (target,))[0] if target is not None else None
                top = tuple(ranked.order[:task.keep_top].tolist()) if task.keep_top else None
                outcome = QueryOutcome(row, tuple(ranks_of(ranked.order, task.relevant[row])),
                                       len(task.relevant[row]), subset_ranks, ranked.cost, ranked.caption, target_rank,
                                       top, subset_top)
                log.append(outcome)
                done[row] = outcome
                finished += 1
                progress(stage, finished, total)
            depth = reranking.depth(task.direction, method) if reranking is not None else None
            scores.append(score(task, method.name, (done[r] for r in range(total)), method.tie_rule, depth))
    return EvalReport(settings, scores)


def method_names(planned: list[PlannedTask]) -> dict[str, list[str]]:
    return {p.task.direction: [m.name for m in p.methods] for p in planned}
