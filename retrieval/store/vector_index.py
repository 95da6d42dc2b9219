"""FAISS inner-product index over L2-normalized vectors with stable int64 ids.

Any index gridrank builds (see index_choice.py) keeps the same abilities: add with our ids,
remove by id or id range, reconstruct a stored vector by id, and search restricted by an
IDSelector. Flat and HNSW indexes get them from an IndexIDMap2 wrapper; an IVF index holds the
ids itself, and its hash-table direct map finds a stored vector by id.

A refined index ("IVF<n>,PQ<m>x4fs,Refine(SQ8)") is two FAISS indexes holding the same ids: an
IVF of 4-bit fast-scan PQ codes that proposes candidates, and an IndexIDMap2 over flat codes that
stores every vector and rescores them. (FAISS's own IndexRefine can neither take our ids nor
remove vectors.) Both go into one file.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import faiss
import numpy as np

from retrieval.errors import IndexWriteError
from retrieval.store.ids import MediaKind, kind_id_range
from retrieval.store.index_choice import refined_parts

# A refined index rescores this many candidates per query (at least RESCORE_PER_HIT per hit asked for).
RESCORE_CANDIDATES = 1000
RESCORE_PER_HIT = 10
# A refined index's file: this, then its stored codes and its candidate lists as FAISS writes them, streamed
# (serializing them in memory first took 2.7x the index's size at the peak: 19.5 GB for 7 GB at 10M vectors).
_REFINED_MAGIC = b"GRRI"
_ZIP_MAGIC = b"PK"  # a refined index written before: a .npz of the two serialized FAISS indexes


# A filter's subset is scored exactly from the stored vectors rather than searched when it holds at most
# EXACT_SUBSET_MAX ids, or at most EXACT_SHARE of a large index's vectors (and EXACT_SUBSET_CAP ids): the
# members of a narrow filter that ignores the data's clusters (a folder, a date) lie in every list, and the
# lists found them poorly (10M vectors, a 1% folder filter: recall@10 0.73 from 800 of 16384 lists, 65 ms p50).
EXACT_SUBSET_MAX = 20_000
EXACT_SHARE, EXACT_SUBSET_CAP = 0.02, 262_144


class IdSubset:
    """The ids a search is restricted to, with their FAISS selector built once: for a filter that passes
    millions of vectors, building the selector takes longer than the search."""

    def __init__(self, ids: np.ndarray):
        self.ids = np.unique(np.asarray(ids, dtype=np.int64))

    @cached_property
    def selector(self) -> faiss.IDSelectorBatch:
        return faiss.IDSelectorBatch(self.ids)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Neighbours:
    """One query's hits, best first; FAISS's -1 padding already removed."""

    ids: np.ndarray  # int64
    scores: np.ndarray  # float32


# Removing an id range from an IVF index enumerates the ids when the range is this small (one
# media item's frames); a wider range is matched against the stored ids instead.
_ENUMERATE_MAX = 1 << 16


class VectorIndex:
    filters_by_fields = False  # filtered searches pass the ids that may be returned (an IdSubset)

    def __init__(self, index: faiss.Index, candidates: faiss.Index | None = None):
        self._index = index  # every vector, by id
        self._candidates = candidates  # a refined index's fast-scan IVF, rescored from self._index
        self._ivf, self._hnsw = _ivf_of(candidates or index), _hnsw_of(index)
        if candidates is not None:
            # Fast-scan search split over queries and lists with a reservoir for large k (FAISS's implem 15):
            # 1.3 ms against 2.2 ms for one query over 300k vectors in 64 lists, 2 threads. Not stored in the file.
            faiss.downcast_index(candidates).implem = 15

    @classmethod
    def empty(cls, dim: int) -> VectorIndex:
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)))

    @classmethod
    def build(cls, factory: str, dim: int, train_vectors: np.ndarray, gpu: bool = False) -> VectorIndex:
        """An empty index of a factory string ("Flat", "SQfp16", "IVF1024,SQfp16", "HNSW32,SQfp16",
        "IVF256,PQ256x4fs,Refine(SQ8)"...), trained on train_vectors if it needs training (IVF k-means
        on the GPU when gpu is True)."""
        train_vectors = np.ascontiguousarray(train_vectors, dtype=np.float32)
        if refined := refined_parts(factory):
            scan, stored = refined
            return cls(cls.build(stored, dim, train_vectors)._index, cls.build(scan, dim, train_vectors, gpu)._index)
        if factory.startswith("IVF"):
            index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
            ivf = faiss.extract_index_ivf(index)
            ivf.cp.spherical = True  # centroids of unit vectors compared by inner product
            if gpu:
                ivf.clustering_index = faiss.index_cpu_to_all_gpus(faiss.IndexFlatIP(dim))
            index.train(train_vectors)
            ivf.clustering_index = None
            if not factory.endswith("fs"):  # fast-scan lists cannot keep one; a refined index's store reconstructs
                ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # reconstruct and remove by id
        else:
            index = faiss.index_factory(dim, f"IDMap2,{factory}", faiss.METRIC_INNER_PRODUCT)
            if not index.is_trained:
                index.train(train_vectors)
        return cls(index)

    def with_new_lists(self, factory: str, train_vectors: np.ndarray,
                       chunks: Iterable[tuple[np.ndarray, np.ndarray]], gpu: bool = False) -> VectorIndex:
        """A refined index over a copy of this refined index's stored codes, with new candidate lists.

        `factory` is the new refined factory; chunks are this index's own (ids, decoded vectors), from
        which the new fast-scan codes are made. The stored codes are kept as they are: encoding the
        decoded vectors again would round them a second time at every rebuild.
        """
        scan = VectorIndex.build(refined_parts(factory)[0], self.dim, train_vectors, gpu)._index
        for ids, vectors in chunks:
            scan.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))
        return VectorIndex(faiss.clone_index(self._index), scan)

    @classmethod
    def read(cls, path: Path) -> VectorIndex:
        with open(path, "rb") as f:
            magic = f.read(len(_REFINED_MAGIC))
            if magic == _REFINED_MAGIC:
                reader = faiss.PyCallbackIOReader(f.read)
                return cls(faiss.read_index(reader), faiss.read_index(reader))
        if magic.startswith(_ZIP_MAGIC):
            with np.load(path) as parts:
                return cls(faiss.deserialize_index(parts["store"]), faiss.deserialize_index(parts["candidates"]))
        return cls(faiss.read_index(str(path)))

    @property
    def dim(self) -> int:
        return self._index.d

    def __len__(self) -> int:
        return self._index.ntotal

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            vectors, ids = np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64)
            self._index.add_with_ids(vectors, ids)
            if self._candidates is not None:
                self._candidates.add_with_ids(vectors, ids)

    def remove_range(self, lo: int, hi: int) -> int:
        if self._candidates is not None:
            self._candidates.remove_ids(faiss.IDSelectorRange(lo, hi))
            return self._index.remove_ids(faiss.IDSelectorRange(lo, hi))
        if self._ivf is None and self._hnsw is None:
            return self._index.remove_ids(faiss.IDSelectorRange(lo, hi))
        ids = np.arange(lo, hi, dtype=np.int64) if hi - lo <= _ENUMERATE_MAX else self.ids()
        return self.remove_ids(ids[(ids >= lo) & (ids < hi)])

    def remove_ids(self, ids: np.ndarray) -> int:
        if not len(ids):
            return 0
        ids = np.asarray(ids, dtype=np.int64)
        if self._hnsw is not None:
            return self._rebuild_without(ids)
        if self._candidates is not None:
            self._candidates.remove_ids(faiss.IDSelectorBatch(ids))
            return self._index.remove_ids(faiss.IDSelectorBatch(ids))
        if self._ivf is not None:  # the IVF hash-table direct map removes only listed ids
            return self._index.remove_ids(faiss.IDSelectorArray(ids))
        return self._index.remove_ids(faiss.IDSelectorBatch(ids))

    def _rebuild_without(self, ids: np.ndarray) -> int:
        """FAISS's HNSW cannot remove: re-add everything else to an empty copy of the index."""
        stored = self.ids()
        keep = stored[~np.isin(stored, ids)]
        if len(keep) == len(stored):
            return 0
        fresh = faiss.clone_index(self._index)
        fresh.reset()
        if len(keep):
            fresh.add_with_ids(self.vectors(keep), keep)
        self._index, self._hnsw = fresh, _hnsw_of(fresh)
        return len(stored) - len(keep)

    def reconstruct(self, vid: int) -> np.ndarray:
        return self._index.reconstruct(int(vid))

    def ids(self) -> np.ndarray:
        """Every stored id (int64), in no particular order."""
        if isinstance(self._index, faiss.IndexIDMap):
            return faiss.vector_to_array(self._index.id_map).astype(np.int64)
        lists = self._ivf.invlists
        parts = [faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
                 for i in range(lists.nlist) if lists.list_size(i)]
        return np.concatenate(parts) if parts else np.empty(0, np.int64)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of ids, float32 (decoded from float16 or quantized codes where stored so)."""
        if not len(ids):
            return np.empty((0, self.dim), np.float32)
        return self._index.reconstruct_batch(np.asarray(ids, dtype=np.int64))

    @property
    def factory_family(self) -> str:
        return "ivf" if self._ivf is not None else "hnsw" if self._hnsw is not None else "flat"

    @property
    def nlist(self) -> int | None:
        return self._ivf.nlist if self._ivf is not None else None

    @property
    def nprobe(self) -> int | None:
        return self._ivf.nprobe if self._ivf is not None else None

    @property
    def ef_search(self) -> int | None:
        return self._hnsw.hnsw.efSearch if self._hnsw is not None else None

    def set_search_effort(self, nprobe: int | None = None, ef_search: int | None = None) -> None:
        """IVF lists scanned / HNSW candidates kept per query; stored with the index when written."""
        if nprobe is not None and self._ivf is not None:
            self._ivf.nprobe = int(nprobe)
        if ef_search is not None and self._hnsw is not None:
            self._hnsw.hnsw.efSearch = int(ef_search)

    def search_parameters(self, sel: faiss.IDSelector | None = None) -> faiss.SearchParameters:
        """Parameters for one search of this index, restricted to sel's ids when given.

        Passing parameters replaces the index's own nprobe / efSearch, so they are copied in.
        """
        if self._ivf is not None:
            return faiss.SearchParametersIVF(sel=sel, nprobe=self._ivf.nprobe)
        if self._hnsw is not None:
            return faiss.SearchParametersHNSW(sel=sel, efSearch=self._hnsw.hnsw.efSearch)
        return faiss.SearchParameters(sel=sel)

    def search(self, query: np.ndarray, n: int, kind: MediaKind | None = None) -> Neighbours:
        """Top-n neighbours of one query vector, optionally only ids of one media kind."""
        n = min(n, len(self))
        if n <= 0:
            return Neighbours(np.empty(0, np.int64), np.empty(0, np.float32))
        sel = faiss.IDSelectorRange(*kind_id_range(kind)) if kind is not None else None
        with self._threads_for_one_query():
            return self._search_one(query, n, sel)

    def _search_one(self, query: np.ndarray, n: int, sel: faiss.IDSelector | None, share: float = 1.0) -> Neighbours:
        """One query's top n; under a selector, an IVF index scans more lists until n ids pass (or all lists are
        scanned): the lists a query probes may hold too few of a filter's ids, and a filtered search must still
        give n results when the collection has them.

        A filter passing `share` of the vectors starts from nprobe / share lists: its nearest members lie as far
        out as that many unfiltered neighbours would (10M vectors, a 1% filter: recall@10 0.50 when the search
        stopped at the first lists that held n members).
        """
        params = self.search_parameters(sel)
        if sel is not None and self._ivf is not None and share < 1:
            params.nprobe = min(self._ivf.nlist, math.ceil(params.nprobe / max(share, 1e-9)))
        while True:
            scores, ids = self.search_batch(query.reshape(1, -1), n, params)
            keep = ids[0] >= 0
            if sel is None or self._ivf is None or keep.sum() >= n or params.nprobe >= self._ivf.nlist:
                return Neighbours(ids[0][keep], scores[0][keep])
            params = faiss.SearchParametersIVF(sel=sel, nprobe=min(self._ivf.nlist, 4 * params.nprobe))

    def search_batch(self, queries: np.ndarray, n: int,
                     params: faiss.SearchParameters | None = None) -> tuple[np.ndarray, np.ndarray]:
        """FAISS's (scores, ids) for many queries, -1 padded; the index's own nprobe / efSearch by default."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        params = params or self.search_parameters()
        if self._candidates is None:
            return self._index.search(queries, n, params=params)
        _, candidates = self._candidates.search(queries, max(RESCORE_CANDIDATES, RESCORE_PER_HIT * n), params=params)
        return self._rescored(queries, candidates, n)

    def _rescored(self, queries: np.ndarray, candidates: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The best n of each row's candidates by their inner product with the stored vectors."""
        scores = np.full((len(queries), n), -np.finfo(np.float32).max, dtype=np.float32)  # FAISS's padding
        ids = np.full((len(queries), n), -1, dtype=np.int64)
        for row, (query, found) in enumerate(zip(queries, candidates)):
            found = found[found >= 0]
            if not len(found):
                continue
            # einsum, not `@`: numpy's BLAS threads spin after a product and starved FAISS's next search
            # (p95 32 ms against 5 ms at 1M vectors on 2 cores).
            exact = np.einsum("ij,j->i", self._index.reconstruct_batch(found), query)
            best = np.argsort(-exact, kind="stable")[:n]
            scores[row, : len(best)], ids[row, : len(best)] = exact[best], found[best]
        return scores, ids

    @contextmanager
    def _threads_for_one_query(self) -> Iterator[None]:
        """One OpenMP thread for a single query on a flat index, in the calling thread only.

        FAISS (1.15) splits one query's flat scan across its threads; on the 2-core build machine
        that took 15-17 ms at 100k vectors against 8-9 ms on one thread (benchmarks/search_latency.py).
        A flat index holds under 100k vectors, so one thread scans it in under 10 ms anyway.
        omp_set_num_threads sets the calling thread's own value: concurrent searches are unaffected.
        """
        if self._ivf is not None or self._hnsw is not None:
            yield
            return
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            yield
        finally:
            faiss.omp_set_num_threads(threads)

    def search_among(self, query: np.ndarray, n: int, subset: IdSubset) -> Neighbours:
        """Top-n neighbours among subset's ids only (a filter applied inside the search).

        A subset of an approximate index that is small, or a small share of it, is scored exactly from its
        stored vectors (EXACT_SUBSET_MAX, EXACT_SHARE): every member is a candidate, wherever its list.
        """
        n = min(n, len(self), len(subset))
        if n <= 0:
            return Neighbours(np.empty(0, np.int64), np.empty(0, np.float32))
        share = len(subset) / max(1, len(self))
        narrow = len(subset) <= EXACT_SUBSET_MAX or (share <= EXACT_SHARE and len(subset) <= EXACT_SUBSET_CAP)
        if narrow and (self._ivf is not None or self._hnsw is not None):
            query = np.asarray(query, np.float32)
            scores = np.concatenate([np.einsum("ij,j->i", self.vectors(part), query)
                                     for part in np.array_split(subset.ids, max(1, len(subset) // 32_768))])
            best = np.argsort(-scores, kind="stable")[:n]
            return Neighbours(subset.ids[best], scores[best])
        return self._search_one(query, n, subset.selector, share)

    def write_atomic(self, path: Path) -> None:
        """Write to a temp file, fsync it, then rename: readers never see a partial file."""
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            if self._candidates is None:
                faiss.write_index(self._index, str(tmp))
            else:
                with open(tmp, "wb") as f:
                    f.write(_REFINED_MAGIC)
                    writer = faiss.PyCallbackIOWriter(f.write)
                    faiss.write_index(self._index, writer)
                    faiss.write_index(self._candidates, writer)
            fsync_path(tmp)
            os.replace(tmp, path)
        except (OSError, RuntimeError) as e:  # FAISS reports a short write (a full disk) as a RuntimeError
            tmp.unlink(missing_ok=True)
            raise IndexWriteError.at(path.parent, f"{path.name}: {_write_failure(e)}") from None
        fsync_path(path.parent)


def _ivf_of(index: faiss.Index) -> faiss.IndexIVF | None:
    return faiss.try_extract_index_ivf(index)


def _hnsw_of(index: faiss.Index) -> faiss.IndexHNSW | None:
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap) else index
    return inner if isinstance(inner, faiss.IndexHNSW) else None


def _write_failure(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return f"the write failed: {first_line}"


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
