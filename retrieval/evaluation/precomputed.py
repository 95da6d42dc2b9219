"""Precomputed mode: similarity matrices (.npy, queries x items) and a ground-truth CSV, no model.

gt.csv: a header row `query,item`, then one row per (query row, item column) pair of the ground
truth, 0-based indices into the matrices; several rows for a query with several ground truths.
Queries with no row are left out of the metrics.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from retrieval.errors import EvalInputError
from retrieval.evaluation.plan import plan_methods
from retrieval.evaluation.runner import (EvalOptions, EvalReport, PlannedTask, Progress, common_settings, method_names,
                                         run_tasks)
from retrieval.evaluation.tasks import RankingTask, hub_normalized_rows, reverse_task
from retrieval.query.hub_names import HUB_NORMS
from retrieval.query.hubness import bank_sums

GT_FORMAT = "a CSV with the header `query,item` and one 0-based (row, column) pair per line"
REVERSE = {"t2i": "i2t", "t2v": "v2t"}


def load_similarities(paths: list[Path]) -> dict[str, np.ndarray]:
    matrices: dict[str, np.ndarray] = {}
    for path in paths:
        if not path.is_file():
            raise EvalInputError(f"similarity matrix not found: {path} (a .npy of shape queries x items)")
        try:
            matrix = np.load(path, allow_pickle=False)
        except ValueError as e:
            raise EvalInputError(f"{path} is not a .npy array ({e}); save one with numpy.save") from e
        if matrix.ndim != 2 or not np.issubdtype(matrix.dtype, np.number):
            raise EvalInputError(f"{path}: expected a 2-D numeric array (queries x items), got {matrix.dtype} {matrix.shape}")
        if not np.isfinite(matrix).all():
            raise EvalInputError(f"{path}: holds NaN or infinite scores")
        name = path.stem if path.stem not in matrices else f"{path.stem}-{len(matrices) + 1}"
        # Floats stay as given: converting float64 to float32 could turn close scores into ties.
        matrices[name] = matrix if np.issubdtype(matrix.dtype, np.floating) else matrix.astype(np.float32)
    shapes = {m.shape for m in matrices.values()}
    if len(shapes) > 1:
        raise EvalInputError(f"--sims matrices differ in shape: {', '.join(f'{n} {m.shape}' for n, m in matrices.items())}")
    return matrices


def read_ground_truth(path: Path, n_queries: int, n_items: int) -> list[tuple[int, ...]]:
    if not path.is_file():
        raise EvalInputError(f"ground-truth file not found: {path} ({GT_FORMAT})")
    relevant: list[list[int]] = [[] for _ in range(n_queries)]
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"query", "item"} <= set(reader.fieldnames):
            raise EvalInputError(f"{path}: must be {GT_FORMAT}")
        for line, row in enumerate(reader, start=2):
            try:
                query, item = int(row["query"]), int(row["item"])
            except (TypeError, ValueError):
                raise EvalInputError(f"{path} line {line}: query and item must be integers, got {row}") from None
            if not (0 <= query < n_queries and 0 <= item < n_items):
                raise EvalInputError(f"{path} line {line}: ({query}, {item}) is outside the {n_queries} x {n_items} matrices")
            if item not in relevant[query]:
                relevant[query].append(item)
    return [tuple(r) for r in relevant]


def precomputed_tasks(task: str, matrices: dict[str, np.ndarray], gt_path: Path, limit: int | None,
                      derived: dict[str, np.ndarray] | None = None) -> list[RankingTask]:
    """The forward task (queries with ground truth; with the `derived` rows, hub-normalised, whose banks are
    the forward direction's), and the reverse one for t2i/t2v."""
    n_queries, n_items = next(iter(matrices.values())).shape
    relevant = read_ground_truth(gt_path, n_queries, n_items)
    full = RankingTask(task, matrices, relevant, [()] * n_queries)
    forward = RankingTask(task, {**matrices, **(derived or {})}, relevant, [()] * n_queries,
                          derived=tuple(derived or ()))
    tasks = [_with_ground_truth(forward, limit)]
    if task in REVERSE:
        tasks.append(_with_ground_truth(reverse_task(full, REVERSE[task]), limit))
    return tasks


def _with_ground_truth(task: RankingTask, limit: int | None) -> RankingTask:
    keep = [q for q, r in enumerate(task.relevant) if r][:limit]
    if not keep:
        raise EvalInputError(f"{task.direction}: no query has a ground-truth row")
    rows = slice(0, len(keep)) if keep[-1] == len(keep) - 1 else keep  # a prefix: a view, not a copy
    return RankingTask(task.direction, {n: s[rows] for n, s in task.retrievers.items()},
                       [task.relevant[q] for q in keep], [task.excluded[q] for q in keep], derived=task.derived)


def hub_normalized(matrices: dict[str, np.ndarray], options: EvalOptions) -> dict[str, np.ndarray]:
    """`name+qbnorm` (and `+dbnorm`) rows: each retriever's scores renormalised with its own banks."""
    if not options.hub_norm:
        return {}
    unknown = [h for h in options.hub_norm if h not in HUB_NORMS or h == "none"]
    if unknown:
        raise EvalInputError(f"--hub-norm: unknown {', '.join(unknown)}; choose from qbnorm, dbnorm")
    n_items = next(iter(matrices.values())).shape[1]
    if len(options.query_bank_sims) != len(matrices):
        raise EvalInputError(f"--hub-norm needs one --query-bank-sims matrix per --sims matrix (bank queries x items, "
                             f"{len(matrices)} given in --sims order), got {len(options.query_bank_sims)}")
    galleries: list[Path | None] = list(options.gallery_bank_sims) or [None] * len(matrices)
    if "dbnorm" in options.hub_norm and (len(galleries) != len(matrices) or None in galleries):
        raise EvalInputError("--hub-norm dbnorm needs one --gallery-bank-sims matrix per --sims matrix "
                             "(bank items x items)")
    banks = {name: bank_sums(_bank(query_bank, n_items), _bank(gallery_bank, n_items) if gallery_bank else None)
             for name, query_bank, gallery_bank in zip(matrices, options.query_bank_sims, galleries)}
    return hub_normalized_rows(matrices, banks, options.hub_norm)


def _bank(path: Path, n_items: int) -> np.ndarray:
    (matrix,) = load_similarities([path]).values()
    if matrix.shape[1] != n_items:
        raise EvalInputError(f"{path}: a bank's columns are the gallery's {n_items} items, got shape {matrix.shape}")
    return matrix


def run_precomputed(task: str, sims: list[Path], gt: Path, options: EvalOptions,
                    progress: Progress) -> EvalReport:
    matrices = load_similarities(sims)
    derived = hub_normalized(matrices, options)
    tasks = precomputed_tasks(task, matrices, gt, options.limit, derived)
    planned = [PlannedTask(t, plan_methods(list(matrices), options.rerank, options.fuse, forward=i == 0,
                                           has_media=False, derived=list(t.derived)))
               for i, t in enumerate(tasks)]
    settings = {**common_settings(task, options), "mode": "precomputed",
                "sims": [str(p.resolve()) for p in sims], "shape": list(next(iter(matrices.values())).shape),
                "gt": str(gt.resolve()), "methods": method_names(planned)}
    if options.hub_norm:
        settings |= {"hub_norm": list(options.hub_norm), "query_bank_sims": [str(p.resolve()) for p in
                                                                             options.query_bank_sims],
                     "gallery_bank_sims": [str(p.resolve()) for p in options.gallery_bank_sims]}
    return run_tasks(planned, options.out, settings, None, progress)
