"""An indexing run: scan, plan, decode in worker processes, embed in batches, commit often."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from indexer.decode import DecodedMedia, DecodeOptions, WorkItem, decode_item
from indexer.plan import plan_changes
from indexer.scan import ScanResult, scan
from retrieval.catalog import FrameRecord, MediaRecord, SkipRecord
from retrieval.encoder import ClipEncoder
from retrieval.ids import vector_id
from retrieval.index_rebuild import rebuild_if_needed
from retrieval.index_store import FrameIndexInfo, IndexStore
from retrieval.settings import Settings, record_model_settings


class RootNotFoundError(FileNotFoundError):
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


def _one_thread_per_worker(_: int) -> None:
    # Workers decode; the main process owns the cores for the model forward.
    torch.set_num_threads(1)


class _Run:
    """State of one run: staged work waiting for the model, and the commit clock."""

    def __init__(self, store: IndexStore, encoder: ClipEncoder, settings: Settings, progress: IndexProgress):
        self.store = store
        self.encoder = encoder
        self.settings = settings
        self.progress = progress
        self.pending: list[DecodedMedia] = []
        self.pending_frames = 0
        self.last_commit = time.monotonic()
        self.known = store.catalog.media_by_path()

    def accept(self, media: DecodedMedia) -> None:
        entry = media.entry
        previous = self.known.get(entry.rel_path)
        if media.skip_reason:
            if previous is not None:  # it changed into something unreadable: drop the stale vectors
                self.store.delete_media(previous)
            self.store.catalog.record_skip(SkipRecord(entry.rel_path, entry.size, entry.mtime_ns, media.skip_reason))
            self.progress.skipped += 1
        elif media.unchanged:
            self.store.catalog.touch_media(previous.id, entry.size, entry.mtime_ns)
            self.progress.touched += 1
        else:
            self.pending.append(media)
            self.pending_frames += len(media.pixels)
            if self.pending_frames >= self.settings.batch_size:
                self.flush()

    def flush(self) -> None:
        """Embed everything pending and stage it in the store."""
        if not self.pending:
            return
        pixels = torch.cat([m.pixels for m in self.pending])
        step = self.settings.batch_size
        vectors = np.concatenate([self.encoder.encode_pixels(pixels[i : i + step]) for i in range(0, len(pixels), step)])
        offset = 0
        for media in self.pending:
            n = len(media.pixels)
            self._stage(media, vectors[offset : offset + n])
            offset += n
        self.progress.indexed += len(self.pending)
        self.pending, self.pending_frames = [], 0

    def _stage(self, media: DecodedMedia, vectors: np.ndarray) -> None:
        entry = media.entry
        media_id = self.store.catalog.reserve_media_id(entry.rel_path, entry.kind)
        frames = [
            FrameRecord(vector_id(entry.kind, media_id, i), media_id, i, ts) for i, ts in enumerate(media.timestamps)
        ]
        record = MediaRecord(
            media_id, entry.rel_path, entry.kind, entry.size, entry.mtime_ns, media.content_hash, media.width,
            media.height, media.duration, len(frames), media.taken_at, media.note,
        )
        self.store.put_media(record, frames, vectors, media.cues)

    def commit_if_due(self) -> None:
        if time.monotonic() - self.last_commit >= self.settings.commit_every_s:
            self.commit()
            self.store.begin()

    def commit(self) -> None:
        self.flush()
        self.store.commit()
        self.last_commit = time.monotonic()


def run_index(
    root: Path,
    index_dir: Path,
    settings: Settings,
    encoder: ClipEncoder | None = None,
    on_progress: Callable[[IndexProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> IndexSummary:
    """Bring the index in `index_dir` up to date with `root`.

    Finished work is committed every `settings.commit_every_s` seconds and on Ctrl-C or a stop
    request; a crash loses at most the work since the last commit, and the next run resumes.
    """
    if not root.is_dir():
        raise RootNotFoundError(f"media folder not found: {root}")
    root = root.resolve()
    encoder = encoder or ClipEncoder.from_settings(settings)
    model, pretrained = settings.model_identity
    store = IndexStore.open_for_writing(index_dir, root, model, pretrained, encoder.dim)
    try:
        record_model_settings(index_dir, settings)
        scanned = scan(root)
        plan = plan_changes(scanned.files, store.catalog.media_by_path(), scanned.problems)
        progress = IndexProgress(total=len(plan.work), unchanged=plan.unchanged, removed=len(plan.removed))
        run = _Run(store, encoder, settings, progress)
        store.begin()
        _record_removals_and_problems(store, plan.removed, scanned)
        options = DecodeOptions(
            encoder.preprocess, encoder.image_size, settings.max_image_pixels, settings.frames_per_video,
            settings.seconds_per_frame,
        )
        loader = DataLoader(
            _DecodeDataset(plan.work, options), batch_size=None, collate_fn=_as_is, num_workers=settings.workers,
            worker_init_fn=_one_thread_per_worker,
            # Enough decoded items queued to fill the next batch while the model runs the current one.
            prefetch_factor=max(2, math.ceil(settings.batch_size / settings.workers)) if settings.workers else None,
        )
        interrupted = False
        try:
            for media in loader:
                run.accept(media)
                progress.done += 1
                progress.current = media.entry.rel_path
                if on_progress:
                    on_progress(progress)
                if should_stop and should_stop():
                    interrupted = True
                    break
                run.commit_if_due()
        except KeyboardInterrupt:
            interrupted = True
        run.commit()
        rebuilt = None if interrupted else _rebuild_if_needed(store, settings, progress, on_progress)
        return IndexSummary(progress.indexed, progress.touched, progress.skipped, progress.unchanged,
                            progress.removed, progress.elapsed_s, interrupted, rebuilt)
    finally:
        store.close()


def _rebuild_if_needed(store: IndexStore, settings: Settings, progress: IndexProgress,
                       on_progress: Callable[[IndexProgress], None] | None) -> FrameIndexInfo | None:
    """After the run's last commit: searches keep the committed index while a new type is built."""
    def stage(text: str) -> None:
        progress.current = f"frame index: {text}"
        if on_progress:
            on_progress(progress)

    return rebuild_if_needed(store, settings, stage)


def _record_removals_and_problems(store: IndexStore, removed: list[MediaRecord], scanned: ScanResult) -> None:
    for record in removed:
        store.delete_media(record)
    present = {f.rel_path for f in scanned.files}
    for path in store.catalog.skipped_by_path():
        if path not in present:
            store.catalog.forget_skip(path)
    for problem in scanned.problems:
        store.catalog.record_skip(SkipRecord(problem.rel_path, None, None, problem.reason))
