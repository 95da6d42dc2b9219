"""One index folder: the SQLite catalog and two FAISS files, committed together.

Layout of an index folder:
    catalog.sqlite          media, frames, subtitles, skipped files, metadata (WAL mode)
    frames-<gen>.faiss      one vector per image and per sampled video frame
    videos-<gen>.faiss      one mean-pooled vector per video
    gridrank.toml           the settings the index was built with (model name, profile, ...)

Atomic commit: new FAISS files are written for generation g+1 (temp file, fsync, rename), then
the catalog transaction that sets generation = g+1 commits. A crash before that commit leaves
generation g and its files untouched; stray files of other generations are removed when a
writer next opens the folder. Readers load the files of the generation the catalog names, so
they always see a matching pair.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from retrieval.errors import IndexBusyError, IndexSchemaError, ModelMismatchError
from retrieval.store.catalog import Catalog, FrameRecord, MediaRecord, SubtitleCue
from retrieval.store.ids import media_id_range
from retrieval.store.index_meta import (CATALOG_FILE, FRAME_INDEX_KEY, FrameIndexInfo, IndexInfo, frame_index_info,
                                        open_catalog, open_index_catalog, read_info, write_identity)
from retrieval.store.vector_index import VectorIndex
from retrieval.vectors import l2_normalize

LOCK_FILE = ".writer.lock"


def _faiss_paths(index_dir: Path, generation: int) -> tuple[Path, Path]:
    return index_dir / f"frames-{generation}.faiss", index_dir / f"videos-{generation}.faiss"


class IndexStore:
    def __init__(self, index_dir: Path, catalog: Catalog):
        self.index_dir = index_dir
        self.catalog = catalog
        self.info = self._read_info()
        self.frames, self.videos = self._load_vectors(self.info.generation)
        self._lock_fd: int | None = None
        self._vectors_changed = False

    # -- opening ------------------------------------------------------------------------------

    @classmethod
    def open(cls, index_dir: Path) -> IndexStore:
        """Open an existing index for searching."""
        return cls(index_dir, open_index_catalog(index_dir))

    @classmethod
    def open_for_writing(cls, index_dir: Path, root: Path, model: str, pretrained: str, dim: int,
                         replace: bool = False) -> IndexStore:
        """Open (creating if needed) an index for an indexing run; one writer at a time.

        `replace` (a rebuild, maybe with another model or root): after the lock is taken, one transaction
        empties the catalog and starts empty vector indexes of `dim`. Nothing is committed until the
        caller's commit, so searches keep the old index until the new one is complete, and a crash
        before that commit leaves the old index as it was.
        """
        index_dir.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(index_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            # A POSIX lock, not flock: forked decode workers must not inherit it and outlive a killed writer.
            fcntl.lockf(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(lock_fd)
            raise IndexBusyError(f"another `gridrank index` is writing {index_dir}; wait for it to finish") from None
        try:
            catalog = open_catalog(index_dir / CATALOG_FILE, create=True)
        except IndexSchemaError:
            os.close(lock_fd)
            raise
        if catalog.get_meta("model") is None:
            catalog.begin()
            write_identity(catalog, root, model, pretrained, dim)
            catalog.set_meta("generation", "0")
            first = VectorIndex.empty(dim)
            for path in _faiss_paths(index_dir, 0):
                first.write_atomic(path)
            catalog.commit()
        store = cls(index_dir, catalog)
        store._lock_fd = lock_fd
        if replace:
            store._start_replacement(root, model, pretrained, dim)
        store.check_model(model, pretrained, dim)
        if store.info.root != root:
            store.close()
            raise ModelMismatchError(
                f"{index_dir} indexes {store.info.root}, not {root}: pass another --index folder for this root"
            )
        store._remove_stray_generations()
        return store

    def _start_replacement(self, root: Path, model: str, pretrained: str, dim: int) -> None:
        self.begin()
        self.catalog.clear()
        write_identity(self.catalog, root, model, pretrained, dim)
        self.catalog.delete_meta(FRAME_INDEX_KEY)  # the new vectors start in a flat index
        self.info = self._read_info()  # this transaction's view: the new identity, the same generation
        self.frames, self.videos = VectorIndex.empty(dim), VectorIndex.empty(dim)
        self._vectors_changed = True

    def close(self) -> None:
        self.catalog.rollback()
        self.catalog.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _read_info(self) -> IndexInfo:
        return read_info(self.catalog, self.index_dir)

    def _load_vectors(self, generation: int) -> tuple[VectorIndex, VectorIndex]:
        frames_path, videos_path = _faiss_paths(self.index_dir, generation)
        return VectorIndex.read(frames_path), VectorIndex.read(videos_path)

    def _remove_stray_generations(self) -> None:
        keep = set(_faiss_paths(self.index_dir, self.info.generation))
        for path in self.index_dir.glob("*.faiss"):
            if path not in keep:
                path.unlink(missing_ok=True)
        for tmp in self.index_dir.glob(".*.faiss.tmp"):
            tmp.unlink(missing_ok=True)

    def frame_index_info(self) -> FrameIndexInfo:
        return frame_index_info(self.catalog)

    def check_model(self, model: str, pretrained: str, dim: int | None = None) -> None:
        if (model, pretrained) != (self.info.model, self.info.pretrained) or (dim is not None and dim != self.info.dim):
            raise ModelMismatchError(
                f"the index in {self.index_dir} was built with {self.info.model} ({self.info.pretrained}, "
                f"{self.info.dim}-d) but {model} ({pretrained}) was asked for. Drop the model flags or "
                "GRIDRANK_* variables to use the index's own model, or rebuild it: "
                "`gridrank index ROOT --rebuild` with the model you want"
            )

    def refresh(self) -> bool:
        """Reload the vectors if a writer committed a newer generation; True if it did."""
        generation = int(self.catalog.get_meta("generation") or 0)
        if generation == self.info.generation:
            return False
        self.frames, self.videos = self._load_vectors(generation)
        self.info = self._read_info()
        return True

    # -- writing ------------------------------------------------------------------------------

    def begin(self) -> None:
        self.catalog.begin()

    def put_media(self, record: MediaRecord, frames: Sequence[FrameRecord], frame_vectors: np.ndarray,
                  cues: Sequence[SubtitleCue]) -> None:
        """Stage a media item and its vectors, replacing whatever the item had before."""
        self._drop_vectors(record.id, record.kind)
        self.catalog.put_media(record, frames, cues)
        self.frames.add(np.array([f.vector_id for f in frames], dtype=np.int64), frame_vectors)
        if record.kind == "video":
            mean = l2_normalize(frame_vectors.mean(axis=0))
            self.videos.add(np.array([record.id], dtype=np.int64), mean[None, :])

    def delete_media(self, record: MediaRecord) -> None:
        self._drop_vectors(record.id, record.kind)
        self.catalog.delete_media(record.id)

    def _drop_vectors(self, media_id: int, kind) -> None:
        self._vectors_changed = True
        self.frames.remove_range(*media_id_range(kind, media_id))
        if kind == "video":
            self.videos.remove_ids(np.array([media_id], dtype=np.int64))

    def commit(self) -> None:
        """Make everything staged since begin() durable and visible, all or nothing."""
        if not self._vectors_changed:  # catalog-only changes (touched or skipped files): no new FAISS files
            self.catalog.commit()
            return
        generation = self.info.generation + 1
        for index, path in zip((self.frames, self.videos), _faiss_paths(self.index_dir, generation)):
            index.write_atomic(path)
        self.catalog.set_meta("generation", str(generation))
        self.catalog.commit()
        old = _faiss_paths(self.index_dir, self.info.generation - 1)
        self.info = self._read_info()
        self._vectors_changed = False
        # Keep the previous generation one commit longer: a reader may be loading it right now.
        for path in old:
            path.unlink(missing_ok=True)

    def replace_frames(self, frames: VectorIndex, info: FrameIndexInfo) -> None:
        """Commit a rebuilt frame index as the next generation; until then readers keep the current one."""
        self.begin()
        try:
            self.frames = frames
            self.catalog.set_meta(FRAME_INDEX_KEY, json.dumps(asdict(info)))
            self._vectors_changed = True
            self.commit()
        except BaseException:
            self.rollback()
            raise

    def rollback(self) -> None:
        self.catalog.rollback()
        self.info = self._read_info()  # a replacement's new model and root were never committed
        self.frames, self.videos = self._load_vectors(self.info.generation)
        self._vectors_changed = False
