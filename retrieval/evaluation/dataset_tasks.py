"""Model runs: embed a benchmark with the CLIP encoder (cached) and turn it into ranking tasks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from retrieval.datasets import RetrievalDataset
from retrieval.errors import EvalInputError
from retrieval.models.encoder import ClipEncoder
from retrieval.evaluation.embeddings import (EmbeddingCache, Progress, VideoEmbeddings, embed_images, embed_texts,
                                             embed_videos)
from retrieval.evaluation.submission import SERVERS, SUBMISSION_DEPTH
from retrieval.evaluation.tasks import RankingTask, reverse_task
from retrieval.query.search import blend
from retrieval.settings import Settings

# First-stage retrievers per media kind, the main one (the one reranked) first.
RETRIEVERS = {"image": ["clip"], "video": ["clip", "clip-mean"]}


def dataset_tasks(dataset: RetrievalDataset, encoder: ClipEncoder, settings: Settings, out: Path,
                  limit: int | None, progress: Progress) -> list[RankingTask]:
    """The forward task (t2i, cir, t2v) on the first `limit` queries, and i2t / v2t where they exist."""
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
        retrievers = {best_frame: videos.best_frame_scores(text_vectors),
                      mean_pooled: text_vectors @ videos.mean_pooled().T}
        full = RankingTask("t2v", retrievers, relevant, [()] * len(relevant))
        return [_prefix(full, limit), reverse_task(full, "v2t", limit)]

    image_vectors = cache.get("images", ids, lambda: {"vectors": embed_images(
        encoder, paths, settings.batch_size, settings.max_image_pixels, progress)})["vectors"]
    if dataset.task == "t2i":
        (clip,) = RETRIEVERS["image"]
        full = RankingTask("t2i", {clip: text_vectors @ image_vectors.T}, relevant, [()] * len(relevant))
        return [_prefix(full, limit), reverse_task(full, "i2t", limit)]

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


def _prefix(task: RankingTask, limit: int | None) -> RankingTask:
    rows = slice(0, limit)
    return RankingTask(task.direction, {n: s[rows] for n, s in task.retrievers.items()}, task.relevant[rows],
                       task.excluded[rows], task.subsets[rows] if task.subsets else None,
                       task.targets[rows] if task.targets else None)
