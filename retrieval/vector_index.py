"""FAISS inner-product index over L2-normalized vectors with stable int64 ids."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from retrieval.ids import MediaKind, kind_id_range


@dataclass(frozen=True)
class Neighbours:
    """One query's hits, best first; FAISS's -1 padding already removed."""

    ids: np.ndarray  # int64
    scores: np.ndarray  # float32


class VectorIndex:
    def __init__(self, index: faiss.Index):
        self._index = index

    @classmethod
    def empty(cls, dim: int) -> VectorIndex:
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)))

    @classmethod
    def read(cls, path: Path) -> VectorIndex:
        return cls(faiss.read_index(str(path)))

    @property
    def dim(self) -> int:
        return self._index.d

    def __len__(self) -> int:
        return self._index.ntotal

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))

    def remove_range(self, lo: int, hi: int) -> int:
        return self._index.remove_ids(faiss.IDSelectorRange(lo, hi))

    def remove_ids(self, ids: np.ndarray) -> int:
        if not len(ids):
            return 0
        return self._index.remove_ids(faiss.IDSelectorBatch(np.asarray(ids, dtype=np.int64)))

    def reconstruct(self, vid: int) -> np.ndarray:
        return self._index.reconstruct(int(vid))

    def search(self, query: np.ndarray, n: int, kind: MediaKind | None = None) -> Neighbours:
        """Top-n neighbours of one query vector, optionally only ids of one media kind."""
        n = min(n, len(self))
        if n <= 0:
            return Neighbours(np.empty(0, np.int64), np.empty(0, np.float32))
        params = None
        if kind is not None:
            params = faiss.SearchParameters(sel=faiss.IDSelectorRange(*kind_id_range(kind)))
        scores, ids = self._index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), n, params=params)
        keep = ids[0] >= 0
        return Neighbours(ids[0][keep], scores[0][keep])

    def search_among(self, query: np.ndarray, n: int, ids: np.ndarray) -> Neighbours:
        """Top-n neighbours among the given ids only (a filter applied inside the search)."""
        n = min(n, len(self), len(ids))
        if n <= 0:
            return Neighbours(np.empty(0, np.int64), np.empty(0, np.float32))
        params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(np.asarray(ids, dtype=np.int64)))
        scores, found = self._index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), n,
                                           params=params)
        keep = found[0] >= 0
        return Neighbours(found[0][keep], scores[0][keep])

    def write_atomic(self, path: Path) -> None:
        """Write to a temp file, fsync it, then rename: readers never see a partial file."""
        tmp = path.with_name(f".{path.name}.tmp")
        faiss.write_index(self._index, str(tmp))
        fsync_path(tmp)
        os.replace(tmp, path)
        fsync_path(path.parent)


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
