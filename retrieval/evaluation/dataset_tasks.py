"""Model runs: embed a benchmark with the CLIP encoder (cached) and turn it into ranking tasks."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retrieval.datasets import RetrievalDataset
from retrieval.errors import EvalInputError
from retrieval.models.encoder import ClipEncoder
from retrieval.evaluation.embeddings import (EmbeddingCache, Progress, VideoEmbeddings, embed_images, embed_texts,
                                             embed_videos)
from retrieval.evaluation.submission import SERVERS, SUBMISSION_DEPTH
from retrieval.evaluation.tasks import RankingTask, hub_normalized_rows, reverse_task
from retrieval.query.hub_banks import gallery_rows
from retrieval.query.hubness import bank_sums
from retrieval.query.search import blend
from retrieval.settings import Settings

# First-stage retrievers per media kind, the main one (the one reranked) first.
RETRIEVERS = {"image": ["clip"], "video": ["clip", "clip-mean"]}


@dataclass(frozen=True)
class HubRows:
    """Hub-normalised rows to add beside the forward task's retrievers (query/hubness.py)."""

    methods: tuple[str, ...]  # qbnorm, dbnorm
    bank_texts: list[str]  # the query bank: other queries, e.g. a training split's captions


def dataset_tasks(dataset: RetrievalDataset, encoder: ClipEncoder, settings: Settings, out: Path,
                  limit: int | None, progress: Progress, hub: HubRows | None = None) -> list[RankingTask]:
    """The forward task (t2i, cir, t2v) on the first `limit` queries, and i2t / v2t where they exist. With
    `hub` (t2i and t2v), the forward task also ranks by each retriever's hub-normalised scores (NAME+qbnorm)."""
    cache = EmbeddingCache(out, settings.model_identity, dataset.name, dataset.split)
    texts = [q.text for q in dataset.queries]
    text_vectors = cache.get("captions", texts, lambda: {
        "vectors": embed_texts(encoder, texts, settings.batch_size, progress)})["vectors"]
    ids = [item.id for item in dataset.gallery]
    paths = [item.path for item in dataset.gallery]
    queries = dataset.queries[:limit]
    relevant = [q.relevant for q in dataset.queries]

    if dataset.media == "video":
        stored = cache.get(f"videos-{settings.frames_per_video}f", ids, lambda: vars(
            embed_videos(encoder, paths, settings.frames_per_video, progress)))
        videos = VideoEmbeddings(stored["frames"], stored["starts"])
        best_frame, mean_pooled = RETRIEVERS["video"]
        means = videos.mean_pooled()
        retrievers = {best_frame: videos.best_frame_scores(text_vectors), mean_pooled: text_vectors @ means.T}
        full = RankingTask("t2v", retrievers, relevant, [()] * len(relevant))
        derived = {}
        if hub is not None:
            bank = embed_texts(encoder, hub.bank_texts, settings.batch_size, progress)
            # The gallery bank is a sample of the videos, as mean-pooled vectors, for both retrievers.
            gallery = means[gallery_rows(len(means))] @ means.T
            derived = _hub_rows(retrievers, {best_frame: videos.best_frame_scores(bank), mean_pooled: bank @ means.T},
                                gallery, hub.methods)
        return [_prefix(_with_rows(full, derived), limit), reverse_task(full, "v2t", limit)]

    image_vectors = cache.get("images", ids, lambda: {"vectors": embed_images(
        encoder, paths, settings.batch_size, settings.max_image_pixels, progress)})["vectors"]
    if dataset.task == "t2i":
        (clip,) = RETRIEVERS["image"]
        retrievers = {clip: text_vectors @ image_vectors.T}
        full = RankingTask("t2i", retrievers, relevant, [()] * len(relevant))
        derived = {}
        if hub is not None:
            bank = embed_texts(encoder, hub.bank_texts, settings.batch_size, progress)
            derived = _hub_rows(retrievers, {clip: bank @ image_vectors.T},
                                image_vectors[gallery_rows(len(image_vectors))] @ image_vectors.T, hub.methods)
        return [_prefix(_with_rows(full, derived), limit), reverse_task(full, "i2t", limit)]

    # Composed: normalize((1-a) * reference + a * text), the same query the search uses.
    query_vectors = np.stack([blend(image_vectors[q.reference], text_vectors[n], settings.composed_text_weight)
                              for n, q in enumerate(queries)]) if queries else np.zeros((0, encoder.dim), np.float32)
    excluded = [(q.reference,) if dataset.exclude_reference and q.reference is not None else () for q in queries]
    subsets = [q.subset for q in queries] if any(q.subset is not None for q in queries) else None
    (clip,) = RETRIEVERS["image"]
    targets = [q.target for q in queries] if any(q.target is not None for q in queries) else None
    keep_top = SUBMISSION_DEPTH if dataset.name in SERVERS else 0
    return [RankingTask("cir", {clip: query_vectors @ image_vectors.T}, [q.relevant for q in queries], excluded,
                        subsets, targets=targets, query_vectors=query_vectors, item_vectors=image_vectors,
                        ground_truth=dataset.has_ground_truth, keep_top=keep_top)]


def precomputed_dataset_tasks(dataset: RetrievalDataset, matrices: dict[str, np.ndarray], limit: int | None
                              ) -> list[RankingTask]:
    """A benchmark's queries, media and ground truth, ranked first by other retrievers' similarity matrices
    (queries x gallery, in the dataset's order: ViC's matrices for its CSVs): the forward task and its reverse."""
    expected = (len(dataset.queries), len(dataset.gallery))
    for name, matrix in matrices.items():
        if matrix.shape != expected:
            raise EvalInputError(f"--sims {name}: shape {matrix.shape}, but {dataset.name} {dataset.split} has "
                                 f"{expected[0]} queries x {expected[1]} {dataset.media}s: rows must be its queries and "
                                 "columns its gallery, in the order its files list them")
    relevant = [q.relevant for q in dataset.queries]
    full = RankingTask(dataset.task, matrices, relevant, [()] * len(relevant))
    tasks = [_prefix(full, limit)]
    if dataset.reverse_direction:
        tasks.append(reverse_task(full, dataset.reverse_direction, limit))
    return tasks


def _hub_rows(retrievers: dict[str, np.ndarray], bank_scores: dict[str, np.ndarray], gallery_scores: np.ndarray,
              methods: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The benchmark's gallery sample is every retriever's gallery bank."""
    banks = {name: bank_sums(bank_scores[name], gallery_scores) for name in retrievers}
    return hub_normalized_rows(retrievers, banks, methods)


def _with_rows(task: RankingTask, derived: dict[str, np.ndarray]) -> RankingTask:
    if not derived:
        return task
    return dataclasses.replace(task, retrievers={**task.retrievers, **derived}, derived=tuple(derived))


def _prefix(task: RankingTask, limit: int | None) -> RankingTask:
    rows = slice(0, limit)
    return RankingTask(task.direction, {n: s[rows] for n, s in task.retrievers.items()}, task.relevant[rows],
                       task.excluded[rows], task.subsets[rows] if task.subsets else None,
                       task.targets[rows] if task.targets else None, derived=task.derived)
