"""Recall of an approximate index against exact search, measured on the collection's own vectors.

A sample of stored vectors serves as queries; each query's own id is left out of both the exact
and the approximate neighbour lists, so that finding itself earns nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import faiss
import numpy as np

from retrieval.store.index_choice import RECALL_TARGET
from retrieval.store.vector_index import VectorIndex

RECALL_K = 10
RECALL_QUERIES = 200
PLATEAU_GAIN = 0.002  # recall@10 a doubling of nprobe must add to be worth its cost (4 of 200 x 10 neighbours)
READ_CHUNK = 131_072  # vectors decoded at a time: 256 MB of float32 at 512-d, whatever the collection's size

ReadVectors = Callable[[np.ndarray], np.ndarray]  # ids -> their stored vectors (float32), e.g. VectorIndex.vectors


@dataclass(frozen=True)
class RecallSample:
    """Queries drawn from the collection and their exact neighbours (ids, self excluded)."""

    query_ids: np.ndarray
    queries: np.ndarray
    truth: np.ndarray  # (queries, k) exact neighbour ids, -1 padded


@dataclass(frozen=True)
class RecallReport:
    recall_at_10: float
    queries: int
    nprobe: int | None = None
    ef_search: int | None = None


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Mean over queries of |found[:k] & truth[:k]| / |truth[:k]| (padding -1 ignored)."""
    hits, wanted = 0, 0
    for got, want in zip(found, truth):
        want = set(want[:k][want[:k] >= 0].tolist())
        hits += len(want & set(got[:k].tolist()))
        wanted += len(want)
    return hits / wanted if wanted else 1.0


def drop_self(ids: np.ndarray, query_ids: np.ndarray, k: int) -> np.ndarray:
    """Each row without the query's own id, cut to k (-1 padded)."""
    out = np.full((len(ids), k), -1, dtype=np.int64)
    for row, (found, own) in enumerate(zip(ids, query_ids)):
        rest = found[found != own][:k]
        out[row, : len(rest)] = rest
    return out


def in_chunks(ids: np.ndarray, read: ReadVectors) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(ids, their vectors) READ_CHUNK at a time: a whole collection's float32 vectors may not fit in memory."""
    for lo in range(0, len(ids), READ_CHUNK):
        part = ids[lo : lo + READ_CHUNK]
        yield part, read(part)


class ExactTopK:
    """Each query's exact top k (inner product) over a collection fed a chunk at a time."""

    def __init__(self, queries: np.ndarray, k: int, gpu: bool = False):
        self.queries, self.k = np.ascontiguousarray(queries, dtype=np.float32), k
        self._resources = faiss.StandardGpuResources() if gpu else None
        self.scores = np.empty((len(queries), 0), np.float32)
        self.ids = np.empty((len(queries), 0), np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if not len(ids):
            return
        base, m = np.ascontiguousarray(vectors, dtype=np.float32), min(self.k, len(ids))
        if self._resources is not None:
            scores, rows = faiss.knn_gpu(self._resources, self.queries, base, m, metric=faiss.METRIC_INNER_PRODUCT)
        else:
            scores, rows = faiss.knn(self.queries, base, m, metric=faiss.METRIC_INNER_PRODUCT)
        scores, found = np.hstack([self.scores, scores]), np.hstack([self.ids, ids[rows]])
        keep = np.argsort(-scores, axis=1, kind="stable")[:, : self.k]
        self.scores, self.ids = np.take_along_axis(scores, keep, 1), np.take_along_axis(found, keep, 1)


def exact_sample(ids: np.ndarray, read: ReadVectors, n_queries: int = RECALL_QUERIES, k: int = RECALL_K,
                 seed: int = 0, gpu: bool = False) -> RecallSample:
    """Draw n_queries of the stored ids and find their exact top-k among all of them, reading read(ids) a
    chunk at a time."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(ids), size=min(n_queries, len(ids)), replace=False)
    exact = ExactTopK(read(ids[pick]), min(k + 1, len(ids)), gpu)
    for part, vectors in in_chunks(ids, read):
        exact.add(part, vectors)
    return RecallSample(ids[pick], exact.queries, drop_self(exact.ids, ids[pick], k))


def measure(index: VectorIndex, sample: RecallSample, k: int = RECALL_K) -> float:
    _, found = index.search_batch(sample.queries, min(k + 1, len(index)))
    return recall_at_k(drop_self(found, sample.query_ids, k), sample.truth, k)


def tune_and_measure(index: VectorIndex, sample: RecallSample, target: float = RECALL_TARGET) -> RecallReport:
    """The cheapest nprobe (IVF) or efSearch (HNSW) whose recall@10 reaches target, set on the index.

    From the index's current setting, doubles until the target is reached (or everything is
    scanned, or a doubling gains less than PLATEAU_GAIN: past the 8-bit codes' own limit, scanning
    every list of 10M vectors would cost 20x the time for nothing), or halves while it still is;
    then reports the recall of the setting kept.
    """
    recall = measure(index, sample)
    if index.nprobe is not None:
        low, high, effort = 1, index.nlist, index.nprobe

        def set_effort(value: int) -> None:
            index.set_search_effort(nprobe=value)
    elif index.ef_search is not None:
        low, high, effort = 16, 4096, index.ef_search

        def set_effort(value: int) -> None:
            index.set_search_effort(ef_search=value)
    else:
        return RecallReport(recall, len(sample.query_ids))
    while recall < target and effort < high:
        more = min(high, effort * 2)
        set_effort(more)
        better = measure(index, sample)
        if better - recall < PLATEAU_GAIN:  # the stored codes, not the lists, bound recall now: more buys nothing
            set_effort(effort)
            break
        effort, recall = more, better
    while recall >= target and effort // 2 >= low:
        set_effort(effort // 2)
        lower = measure(index, sample)
        if lower < target:
            set_effort(effort)
            break
        effort, recall = effort // 2, lower
    return RecallReport(recall, len(sample.query_ids), index.nprobe, index.ef_search)
