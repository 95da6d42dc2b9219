"""Rebuild the frame index as another FAISS index type when the collection outgrows its own.

A rebuild reads the committed vectors a chunk at a time (ten million float32 vectors would take
20 GB at once), trains the new index (IVF k-means on the GPU when FAISS
sees one), adds every vector, tunes nprobe / efSearch until recall@10 against exact search on
200 of the collection's own vectors reaches the target, and commits the result as the next
generation. Searches keep reading the committed generation the whole time and pick up the new
index on their next query.
"""

from __future__ import annotations

from collections.abc import Callable

import faiss
import numpy as np

from retrieval.store.index_choice import IndexPlan, faiss_uses_gpu, keeps_stored_codes, pending_rebuild
from retrieval.store.index_store import FrameIndexInfo, IndexStore
from retrieval.store.recall import RecallReport, exact_sample, in_chunks, tune_and_measure
from retrieval.settings import Settings
from retrieval.store.vector_index import VectorIndex


def rebuild_if_needed(store: IndexStore, settings: Settings,
                      on_stage: Callable[[str], None] = lambda stage: None) -> FrameIndexInfo | None:
    """Rebuild the frame index of a store opened for writing if its size calls for another type
    (FAISS only: Milvus chooses and builds its own index)."""
    if store.spec.kind != "faiss":
        return None
    plan = pending_rebuild(len(store.frames), store.info.dim, store.frame_index_info().factory,
                           settings.index_memory_budget_mb, settings.index_factory)
    if plan is None:
        return None
    return rebuild_frames(store, plan, faiss_uses_gpu(settings.device, faiss.get_num_gpus()), on_stage)


def rebuild_frames(store: IndexStore, plan: IndexPlan, gpu: bool = False,
                   on_stage: Callable[[str], None] = lambda stage: None) -> FrameIndexInfo:
    ids, read = store.frames.ids(), store.frames.vectors  # read a chunk at a time: 10M float32 vectors are 20 GB
    on_stage(f"training {plan.factory}")
    rng = np.random.default_rng(0)
    train = read(ids[rng.choice(len(ids), min(len(ids), plan.train_size), replace=False)]) if plan.train_size else (
        np.empty((0, store.info.dim), np.float32))
    on_stage(f"adding {len(ids):,} vectors to {plan.factory}")
    if keeps_stored_codes(store.frame_index_info().factory, plan.factory):
        index = store.frames.with_new_lists(plan.factory, train, in_chunks(ids, read), gpu=gpu)
    else:
        index = VectorIndex.build(plan.factory, store.info.dim, train, gpu=gpu)
        for part, vectors in in_chunks(ids, read):
            index.add(part, vectors)
    index.set_search_effort(nprobe=plan.nprobe, ef_search=plan.ef_search)
    if plan.exact:
        recall = RecallReport(1.0, 0)
    else:
        on_stage("measuring recall@10 against exact search")
        recall = tune_and_measure(index, exact_sample(ids, read, gpu=gpu))
    info = FrameIndexInfo(plan.factory, plan.reason, index.nprobe, index.ef_search, recall.recall_at_10,
                          recall.queries, len(ids))
    on_stage(f"writing {plan.factory}")
    store.replace_frames(index, info)
    return info
