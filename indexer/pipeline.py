"""An indexing run: scan, plan, decode and embed (here or on Ray), write and commit often."""

from __future__ import annotations

import ctypes
import math
import multiprocessing
import os
import signal
import sqlite3
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch.utils.data import DataLoader, Dataset

from retrieval.errors import IndexWriteError, MediaFolderError
from indexer.decode import DecodedMedia, DecodeOptions, WorkItem, decode_item
from indexer.embed import EmbeddedMedia, EmbeddedSource, decode_options, embed_media, needs_model
from indexer.plan import plan_changes
from indexer.scan import ScanResult, scan
from retrieval.store.catalog import FrameRecord, MediaRecord, SkipRecord
from retrieval.models.encoder import ClipEncoder
from retrieval.store.ids import vector_id
from retrieval.store.index_rebuild import rebuild_if_needed
from retrieval.store.store_spec import parse_store
from retrieval.store.index_store import FrameIndexInfo, IndexStore
from retrieval.settings import Settings, record_model_settings

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class RootNotFoundError(MediaFolderError):
    pass


@dataclass
class IndexProgress:
    total: int  # files to look at in this run (new or changed)
    done: int = 0
    indexed: int = 0
    touched: int = 0  # mtime changed, bytes did not: nothing re-embedded
    skipped: int = 0
    unchanged: int = 0
    removed: int = 0
    current: str = ""
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started


@dataclass(frozen=True)
class IndexSummary:
    indexed: int
    touched: int
    skipped: int
    unchanged: int
    removed: int
    seconds: float
    interrupted: bool
    rebuilt: FrameIndexInfo | None = None  # the frame index was rebuilt as another type in this run
    replaced: bool = False  # --rebuild: the whole index was built anew (interrupted: the old one is kept)


class _DecodeDataset(Dataset):
    def __init__(self, items: list[WorkItem], options: DecodeOptions):
        self.items = items
        self.options = options

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> DecodedMedia:
        return decode_item(self.items[i], self.options)


def _as_is(item: DecodedMedia) -> DecodedMedia:
    return item


def _init_decode_worker(_: int) -> None:
    # Workers decode; the main process owns the cores for the model forward.
    torch.set_num_threads(1)
    _die_with_parent()


def _die_with_parent() -> None:
    """On Linux, have the kernel end this worker the moment the process that made it dies, even by kill -9
    (the indexer, or the forkserver that exits with it).

    Without it a worker lives on until torch's watchdog notices, seconds later.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    parent = multiprocessing.parent_process()  # the indexer, whatever the start method
    if parent is not None and not parent.is_alive():  # it died before the line above
        os._exit(1)


class LocalEmbedding:
    """Decode in DataLoader worker processes, embed in this process in batches of `batch_size` frames."""

    def __init__(self, work: list[WorkItem], options: DecodeOptions, encoder: ClipEncoder, settings: Settings,
                 should_stop: Callable[[], bool] | None = None):
        self.encoder = encoder
        self.should_stop = should_stop
        self.batch_size = settings.batch_size
        self.loader = DataLoader(
            _DecodeDataset(work, options), batch_size=None, collate_fn=_as_is, num_workers=settings.workers,
            worker_init_fn=_init_decode_worker,
            # Enough decoded items queued to fill the next batch while the model runs the current one.
            prefetch_factor=max(2, math.ceil(settings.batch_size / settings.workers)) if settings.workers else None,
            # A Milvus store's gRPC threads do not survive fork() (the indexer aborted in epoll_wait):
            # then workers start from a fresh forkserver process instead.
            multiprocessing_context="forkserver" if settings.workers and "grpc" in sys.modules else None,
        )
        self.pending: list[DecodedMedia] = []
        self.pending_frames = 0
        # Finished, not yet handed out: kept here (not in the generator) so a Ctrl-C loses none of them.
        self.ready: deque[EmbeddedMedia] = deque()

    def __iter__(self) -> Iterator[EmbeddedMedia]:
        for media in self.loader:
            if needs_model(media):
                self.pending.append(media)
                self.pending_frames += len(media.pixels)
                if self.pending_frames >= self.batch_size:
                    self._embed_pending()
            else:
                self.ready.append(EmbeddedMedia(media))
            while self.ready:
                yield self.ready.popleft()
            if self.should_stop and self.should_stop():  # stop decoding now, not after the batch fills up
                return
        self._embed_pending()
        while self.ready:
            yield self.ready.popleft()

    def _embed_pending(self) -> None:
        embedded = embed_media(self.encoder, self.pending, self.batch_size)  # a Ctrl-C in here keeps them pending
        self.pending, self.pending_frames = [], 0
        self.ready.extend(embedded)

    def drain(self) -> list[EmbeddedMedia]:
        self._embed_pending()
        finished = list(self.ready)
        self.ready.clear()
        return finished


class _Writer:
    """Writes embedded media into the store (wherever they were embedded) and commits on a clock.

    After each periodic commit it rebuilds the frame index if the collection has outgrown its type
    (`rebuild`), so that a long first run moves to an IVF index once it passes the flat limit and
    adds the rest there; searches keep the committed generation meanwhile.
    """

    def __init__(self, store: IndexStore, settings: Settings, progress: IndexProgress,
                 rebuild: Callable[[], FrameIndexInfo | None], replacing: bool = False):
        self.store = store
        self.replacing = replacing  # a rebuild commits once, at the end: the old index stays until then
        self.settings = settings
        self.progress = progress
        self.rebuild = rebuild
        self.rebuilt: FrameIndexInfo | None = None
        self.last_commit = time.monotonic()
        self.known = store.catalog.media_by_path()
        self._writing: EmbeddedMedia | None = None  # interrupted halfway: written again, whole, before the commit

    def accept(self, item: EmbeddedMedia) -> None:
        if not self.store.catalog.in_transaction:  # a Ctrl-C fell between a commit and the next begin
            self.store.begin()
        self._writing = item
        outcome = self._write(item)
        self._writing = None
        setattr(self.progress, outcome, getattr(self.progress, outcome) + 1)

    def _write(self, item: EmbeddedMedia) -> Literal["indexed", "touched", "skipped"]:
        media = item.media
        entry = media.entry
        previous = self.known.get(entry.rel_path)
        if media.skip_reason:
            if previous is not None:  # it changed into something unreadable: drop the stale vectors
                self.store.delete_media(previous)
            self.store.catalog.record_skip(SkipRecord(entry.rel_path, entry.size, entry.mtime_ns, media.skip_reason))
            return "skipped"
        if media.unchanged:
            self.store.catalog.touch_media(previous.id, entry.size, entry.mtime_ns)
            return "touched"
        media_id = self.store.catalog.reserve_media_id(entry.rel_path, entry.kind)
        frames = [
            FrameRecord(vector_id(entry.kind, media_id, i), media_id, i, ts) for i, ts in enumerate(media.timestamps)
        ]
        record = MediaRecord(
            media_id, entry.rel_path, entry.kind, entry.size, entry.mtime_ns, media.content_hash, media.width,
            media.height, media.duration, len(frames), media.taken_at, media.note,
        )
        self.store.put_media(record, frames, item.vectors, media.cues)
        return "indexed"

    def commit_if_due(self) -> None:
        if not self.replacing and time.monotonic() - self.last_commit >= self.settings.commit_every_s:
            self.commit()
            self.rebuilt = self.rebuild() or self.rebuilt
            self.store.begin()

    def commit(self) -> None:
        if self._writing is not None:
            self.accept(self._writing)
        if self.store.catalog.in_transaction:  # else a Ctrl-C came after the last commit: nothing new to commit
            self.store.commit()
        self.last_commit = time.monotonic()


def run_index(
    root: Path,
    index_dir: Path,
    settings: Settings,
    encoder: ClipEncoder | None = None,
    on_progress: Callable[[IndexProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    ray_address: str | None = None,
    rebuild: bool = False,
    retry_skipped: bool = False,
) -> IndexSummary:
    """Bring the index in `index_dir` up to date with `root`.

    Finished work is committed every `settings.commit_every_s` seconds and on Ctrl-C or a stop
    request; a crash loses at most the work since the last commit, and the next run resumes.
    With `rebuild`, everything is embedded anew (with the settings' model) beside the old index and
    committed once at the end: until then searches use the old index, and a crash, a Ctrl-C or a
    stop leaves it as it was. Files skipped before (broken, too large...) are tried again only when they
    changed, or with `retry_skipped`.
    With `ray_address` (as ray.init takes it), decoding and embedding run on that Ray cluster;
    planning and writing stay here, so the index is the same.
    """
    if not root.is_dir():
        raise RootNotFoundError(f"media folder not found: {root}")
    root = root.resolve()
    if ray_address is not None:
        from indexer import ray_embedding

        ray_embedding.connect(ray_address)  # fail before touching the index
    encoder = encoder or ClipEncoder.from_settings(settings)
    model, pretrained = settings.model_identity
    # The index's own store unless one was asked for (a new index, or a rebuild that moves it)
    wanted = parse_store(settings.vector_store) if "vector_store" in settings.model_fields_set else None
    store = IndexStore.open_for_writing(index_dir, root, model, pretrained, encoder.dim, replace=rebuild, store=wanted)
    try:
        if not rebuild:  # a rebuild records its model once the new index is committed
            record_model_settings(index_dir, settings)
        scanned = scan(root)
        plan = plan_changes(scanned.files, store.catalog.media_by_path(), scanned.problems,
                            store.catalog.skipped_by_path(), retry_skipped)
        # Skipped, as `gridrank status` counts them: this run's, the scan's problems, and the unchanged old ones.
        progress = IndexProgress(total=len(plan.work), unchanged=plan.unchanged, removed=len(plan.removed),
                                 skipped=plan.still_skipped + len(scanned.problems))
        writer = _Writer(store, settings, progress, lambda: _rebuild_if_needed(store, settings, progress, on_progress),
                         replacing=rebuild)
        if not store.catalog.in_transaction:
            store.begin()
        _record_removals_and_problems(store, plan.removed, scanned)
        options = decode_options(encoder, settings)
        source: EmbeddedSource = (
            LocalEmbedding(plan.work, options, encoder, settings, should_stop) if ray_address is None
            else ray_embedding.RayEmbedding(plan.work, options, settings)
        )
        interrupted = _write_all(source, writer, on_progress, should_stop)
        if interrupted and rebuild:
            store.rollback()  # half a new index is no index: the old one stays
        else:
            writer.commit()
            if rebuild:
                record_model_settings(index_dir, settings)
        rebuilt = None if interrupted else writer.rebuild()
    except sqlite3.OperationalError as e:  # a full disk or a read-only folder under the catalog
        raise IndexWriteError.at(index_dir, str(e)) from None
    finally:
        store.close()
    return IndexSummary(progress.indexed, progress.touched, progress.skipped, progress.unchanged, progress.removed,
                        progress.elapsed_s, interrupted, rebuilt or writer.rebuilt, rebuild)


def _rebuild_if_needed(store: IndexStore, settings: Settings, progress: IndexProgress,
                       on_progress: Callable[[IndexProgress], None] | None) -> FrameIndexInfo | None:
    """After a commit: searches keep the committed index while a new type is built."""
    def stage(text: str) -> None:
        progress.current = f"frame index: {text}"
        if on_progress:
            on_progress(progress)

    return rebuild_if_needed(store, settings, stage)


def _write_all(source: EmbeddedSource, writer: _Writer, on_progress: Callable[[IndexProgress], None] | None,
               should_stop: Callable[[], bool] | None) -> bool:
    """Write everything the source yields, committing on the clock; True if stopped or interrupted."""
    progress = writer.progress
    interrupted = False

    def written(item: EmbeddedMedia) -> None:
        writer.accept(item)
        progress.done += 1
        progress.current = item.media.entry.rel_path
        if on_progress:
            on_progress(progress)

    try:
        for item in source:
            written(item)
            if should_stop and should_stop():
                interrupted = True
                break
            writer.commit_if_due()
        interrupted = interrupted or bool(should_stop and should_stop())  # the source may have stopped first
    except KeyboardInterrupt:
        interrupted = True
    for item in source.drain():
        written(item)
    return interrupted


def _record_removals_and_problems(store: IndexStore, removed: list[MediaRecord], scanned: ScanResult) -> None:
    for record in removed:
        store.delete_media(record)
    present = {f.rel_path for f in scanned.files}
    for path in store.catalog.skipped_by_path():
        if path not in present:
            store.catalog.forget_skip(path)
    for problem in scanned.problems:
        store.catalog.record_skip(SkipRecord(problem.rel_path, None, None, problem.reason))
