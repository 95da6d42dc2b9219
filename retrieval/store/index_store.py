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

An index whose vectors live in Milvus (`--store milvus-lite:PATH` or `milvus://HOST:PORT`, recorded
in the catalog) has no FAISS files: a commit sends the buffered writes to its two collections
under a journal, then commits the catalog (milvus_vectors.py says how a crash is undone).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from retrieval.errors import GridrankError, IndexBusyError, IndexSchemaError, ModelMismatchError, SettingsError
from retrieval.store import milvus_vectors
from retrieval.store.catalog import Catalog, FrameRecord, MediaRecord, SubtitleCue
from retrieval.store.ids import media_id_range
from retrieval.store.index_meta import (CATALOG_FILE, FRAME_INDEX_KEY, MILVUS_PREFIX_KEY, STORE_KEY, FrameIndexInfo,
                                        IndexInfo, frame_index_info, open_catalog, open_index_catalog, read_info,
                                        write_identity)
from retrieval.store.milvus_index import INDEX_TYPE, MilvusIndex
from retrieval.store.milvus_vectors import JOURNAL_FILE, Journal, MilvusVectors, new_prefix
from retrieval.store.store_spec import StoreSpec, parse_store
from retrieval.store.vector_index import VectorIndex
from retrieval.vectors import l2_normalize

LOCK_FILE = ".writer.lock"
FAISS = StoreSpec("faiss")


def _faiss_paths(index_dir: Path, generation: int) -> tuple[Path, Path]:
    return index_dir / f"frames-{generation}.faiss", index_dir / f"videos-{generation}.faiss"


def _try_writer_lock(index_dir: Path) -> int | None:
    """The folder's writer lock (its file descriptor), or None while another process holds it."""
    lock_fd = os.open(index_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        # A POSIX lock, not flock: forked decode workers must not inherit it and outlive a killed writer.
        fcntl.lockf(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(lock_fd)
        return None
    return lock_fd


def _milvus_info(store: StoreSpec) -> FrameIndexInfo:
    return FrameIndexInfo(f"Milvus {INDEX_TYPE}", f"vectors in {store.text}; Milvus chooses and tunes its index",
                          recall_at_10=0.0)


def _create(catalog: Catalog, index_dir: Path, root: Path, model: str, pretrained: str, dim: int,
            store: StoreSpec) -> None:
    """A new index's identity, store and empty vectors, in one transaction (the collections first)."""
    milvus = MilvusVectors(store, index_dir) if store.kind != "faiss" else None
    catalog.begin()
    try:
        write_identity(catalog, root, model, pretrained, dim)
        catalog.set_meta("generation", "0")
        catalog.set_meta(STORE_KEY, store.text)
        if milvus is not None:
            prefix = new_prefix()
            Journal(store.text, 0, replacing=True, new_prefix=prefix).write(index_dir)  # a crash drops them
            milvus.create_pair(prefix, model, pretrained, dim)
            catalog.set_meta(MILVUS_PREFIX_KEY, prefix)
            catalog.set_meta(FRAME_INDEX_KEY, json.dumps(asdict(_milvus_info(store))))
        else:
            first = VectorIndex.empty(dim)
            for path in _faiss_paths(index_dir, 0):
                first.write_atomic(path)
        catalog.commit()
        Journal.remove(index_dir)
    except BaseException:
        catalog.rollback()
        if milvus is not None:
            with contextlib.suppress(GridrankError):  # a store gone away: the journal stays for the next writer
                milvus_vectors.recover(index_dir, catalog, None)
        raise
    finally:
        if milvus is not None:
            milvus.close()


class IndexStore:
    def __init__(self, index_dir: Path, catalog: Catalog):
        self.index_dir = index_dir
        self.catalog = catalog
        self.info = self._read_info()
        self.spec: StoreSpec = FAISS  # where the vectors live: set from the catalog as they are loaded
        self._milvus: MilvusVectors | None = None  # the client, while the index lives in Milvus
        self._replacing: Journal | None = None  # a rebuild's new collections, until it commits
        self.frames, self.videos = self._load_vectors(self.info.generation)
        self._lock_fd: int | None = None
        self._vectors_changed = False

    # -- opening ------------------------------------------------------------------------------

    @classmethod
    def open(cls, index_dir: Path) -> IndexStore:
        """Open an existing index for searching.

        A Milvus index whose writer died in the middle of a commit is repaired first, when no writer
        holds the folder now (milvus_vectors.py): a search never sees half a commit.
        """
        catalog = open_index_catalog(index_dir)
        if (index_dir / JOURNAL_FILE).is_file() and (lock_fd := _try_writer_lock(index_dir)) is not None:
            try:
                milvus_vectors.recover(index_dir, catalog, catalog.get_meta(MILVUS_PREFIX_KEY))
            finally:
                os.close(lock_fd)
        return cls(index_dir, catalog)

    @classmethod
    def open_for_writing(cls, index_dir: Path, root: Path, model: str, pretrained: str, dim: int,
                         replace: bool = False, store: StoreSpec | None = None) -> IndexStore:
        """Open (creating if needed) an index for an indexing run; one writer at a time.

        `replace` (a rebuild, maybe with another model or root): after the lock is taken, one transaction
        empties the catalog and starts empty vector indexes of `dim`. Nothing is committed until the
        caller's commit, so searches keep the old index until the new one is complete, and a crash
        before that commit leaves the old index as it was.
        `store`: where the vectors live (a new index, or a rebuild); None keeps the index's own (FAISS
        for a new one); another than the index's own, without `replace`, is refused.
        """
        index_dir.mkdir(parents=True, exist_ok=True)
        lock_fd = _try_writer_lock(index_dir)
        if lock_fd is None:
            raise IndexBusyError(f"another `gridrank index` is writing {index_dir}; wait for it to finish")
        try:
            catalog = open_catalog(index_dir / CATALOG_FILE, create=True)
        except IndexSchemaError:
            os.close(lock_fd)
            raise
        fresh = catalog.get_meta("model") is None
        try:
            milvus_vectors.recover(index_dir, catalog, catalog.get_meta(MILVUS_PREFIX_KEY))
            if fresh:
                _create(catalog, index_dir, root, model, pretrained, dim, store or FAISS)
            store_obj = cls(index_dir, catalog)
        except BaseException:
            catalog.close()
            os.close(lock_fd)
            if fresh:  # a store that could not be reached leaves no half-made index behind
                for name in (CATALOG_FILE, f"{CATALOG_FILE}-wal", f"{CATALOG_FILE}-shm", LOCK_FILE):
                    (index_dir / name).unlink(missing_ok=True)
            raise
        store_obj._lock_fd = lock_fd
        if replace:
            store_obj._start_replacement(root, model, pretrained, dim, store or store_obj.spec)
        elif store is not None and store != store_obj.spec:
            store_obj.close()
            raise SettingsError(f"{index_dir} keeps its vectors in {store_obj.spec.text}, not {store.text}: drop --store "
                                f"(or GRIDRANK_VECTOR_STORE), or move them with gridrank index ROOT --rebuild --store {store.text}")
        store_obj.check_model(model, pretrained, dim)
        if store_obj.info.root != root:
            store_obj.close()
            raise ModelMismatchError(
                f"{index_dir} indexes {store_obj.info.root}, not {root}: pass another --index folder for this root"
            )
        store_obj._remove_stray_generations()
        return store_obj

    def _start_replacement(self, root: Path, model: str, pretrained: str, dim: int, store: StoreSpec) -> None:
        self.begin()
        self.catalog.clear()
        write_identity(self.catalog, root, model, pretrained, dim)
        self.catalog.delete_meta(FRAME_INDEX_KEY)  # the new vectors start in a flat index
        old_prefix = self.catalog.get_meta(MILVUS_PREFIX_KEY)
        self.catalog.set_meta(STORE_KEY, store.text)
        self.info = self._read_info()  # this transaction's view: the new identity, the same generation
        if store.kind == "faiss":
            self.catalog.delete_meta(MILVUS_PREFIX_KEY)
            if old_prefix:  # the old collections go once the new FAISS files are committed
                self._replacing = Journal(self.spec.text, self.info.generation + 1, replacing=True, old_prefix=old_prefix)
            self.frames, self.videos = VectorIndex.empty(dim), VectorIndex.empty(dim)
        else:
            milvus = MilvusVectors(store, self.index_dir)
            prefix = new_prefix()
            self._replacing = Journal(store.text, self.info.generation + 1, replacing=True, new_prefix=prefix,
                                      old_prefix=old_prefix)
            self._replacing.write(self.index_dir)  # before the collections exist: a crash drops them
            self.catalog.set_meta(MILVUS_PREFIX_KEY, prefix)
            self.catalog.set_meta(FRAME_INDEX_KEY, json.dumps(asdict(_milvus_info(store))))
            self._close_milvus()
            self._milvus = milvus
            self.frames, self.videos = milvus.create_pair(prefix, model, pretrained, dim)
        self.spec = store
        self._vectors_changed = True

    def close(self) -> None:
        if self._replacing is not None:  # a rebuild that never committed: its collections go
            self.rollback()
        self.catalog.rollback()
        self.catalog.close()
        self._close_milvus()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _read_info(self) -> IndexInfo:
        return read_info(self.catalog, self.index_dir)

    def _load_vectors(self, generation: int) -> tuple[VectorIndex | MilvusIndex, VectorIndex | MilvusIndex]:
        self.spec = parse_store(self.catalog.get_meta(STORE_KEY) or "faiss")
        if self.spec.kind != "faiss":
            if self._milvus is None or self._milvus.spec != self.spec:
                self._close_milvus()
                self._milvus = MilvusVectors(self.spec, self.index_dir)
            return self._milvus.open_pair(self.catalog.get_meta(MILVUS_PREFIX_KEY) or "", self.info.model,
                                          self.info.pretrained, self.info.dim)
        self._close_milvus()  # e.g. a rolled-back rebuild into Milvus: back to the FAISS files
        frames_path, videos_path = _faiss_paths(self.index_dir, generation)
        return VectorIndex.read(frames_path), VectorIndex.read(videos_path)

    def _close_milvus(self) -> None:
        if self._milvus is not None:
            self._milvus.close()
            self._milvus = None

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
        if isinstance(self.frames, MilvusIndex):
            journal = self._replacing or Journal(self.spec.text, generation)
            self._milvus.flush(self.frames, self.videos, self.catalog, journal)
        else:
            if self._replacing is not None:
                self._replacing.write(self.index_dir)
            for index, path in zip((self.frames, self.videos), _faiss_paths(self.index_dir, generation)):
                index.write_atomic(path)
        self.catalog.set_meta("generation", str(generation))
        self.catalog.commit()
        if self._replacing is not None and self._replacing.old_prefix:  # the collections the rebuild replaced
            with MilvusVectors(parse_store(self._replacing.store), self.index_dir) as replaced:
                replaced.drop(self._replacing.old_prefix)
        self._replacing = None
        Journal.remove(self.index_dir)
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
        if self._replacing is not None:
            if self._replacing.new_prefix:  # the rebuild's own collections; the old ones stay named
                self._milvus.drop(self._replacing.new_prefix)
            self._replacing = None
            Journal.remove(self.index_dir)
        self.catalog.rollback()
        self.info = self._read_info()  # a replacement's new model and root were never committed
        self.frames, self.videos = self._load_vectors(self.info.generation)
        self._vectors_changed = False
