"""An index's two Milvus collections (frames, video means) and how a commit reaches them safely.

The catalog commit is the point of truth, as with the FAISS files. Milvus cannot join SQLite's
transaction, so a commit that sends vectors to Milvus first writes a journal next to the catalog
(temp file, fsync, rename) naming every id it may change; the journal is removed once the
catalog has committed. A writer that finds a journal left by a crash, with the catalog still at
the generation before it, deletes those ids from Milvus and the items they belong to from the
catalog, so the next run indexes them again: no duplicates, no vectors the catalog does not know,
no item whose vectors were half replaced. A rebuild (--rebuild) writes into new collections that
the catalog names only once it commits; a crashed one's collections are dropped the same way.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from retrieval.store.catalog import Catalog, ItemFields
from retrieval.store.ids import media_id_of
from retrieval.store.milvus_index import (MilvusIndex, collection_names, connect, delete_ranges, disconnect,
                                          drop_collections, identity_text)
from retrieval.store.store_spec import StoreSpec, parse_store

JOURNAL_FILE = "milvus-journal.json"


def new_prefix() -> str:
    """A collection name prefix of its own for each index (and each rebuild of it)."""
    return f"gridrank_{secrets.token_hex(6)}"


@dataclass
class Journal:
    store: str  # the Milvus store the prefixes below live in
    generation: int  # the catalog generation the interrupted commit was making
    frame_ranges: list[tuple[int, int]] = field(default_factory=list)
    video_ranges: list[tuple[int, int]] = field(default_factory=list)
    replacing: bool = False  # a rebuild: new collections, all or nothing
    new_prefix: str | None = None  # a rebuild's collections (None: the rebuild goes to FAISS)
    old_prefix: str | None = None  # the collections a rebuild replaces (None: it replaces FAISS files)

    def write(self, index_dir: Path) -> None:
        path = index_dir / JOURNAL_FILE
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "w") as f:
            json.dump(self.__dict__, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @classmethod
    def read(cls, index_dir: Path) -> Journal | None:
        path = index_dir / JOURNAL_FILE
        if not path.is_file():
            return None
        raw = json.loads(path.read_text())
        raw["frame_ranges"] = [tuple(r) for r in raw["frame_ranges"]]
        raw["video_ranges"] = [tuple(r) for r in raw["video_ranges"]]
        return cls(**raw)

    @staticmethod
    def remove(index_dir: Path) -> None:
        (index_dir / JOURNAL_FILE).unlink(missing_ok=True)


class MilvusVectors:
    """The client and collections of one index in a Milvus store."""

    def __init__(self, spec: StoreSpec, index_dir: Path):
        self.spec, self.index_dir = spec, index_dir
        self.client = connect(spec, index_dir)

    def open_pair(self, prefix: str, model: str, pretrained: str, dim: int) -> tuple[MilvusIndex, MilvusIndex]:
        identity = identity_text(model, pretrained, dim)
        return tuple(MilvusIndex.open(self.client, name, dim, identity, self.spec.text)  # type: ignore[return-value]
                     for name in collection_names(prefix))

    def create_pair(self, prefix: str, model: str, pretrained: str, dim: int) -> tuple[MilvusIndex, MilvusIndex]:
        identity = identity_text(model, pretrained, dim)
        return tuple(MilvusIndex.create(self.client, name, dim, identity, self.spec.text)  # type: ignore[return-value]
                     for name in collection_names(prefix))

    def drop(self, prefix: str) -> None:
        drop_collections(self.client, collection_names(prefix), self.spec.text)

    def flush(self, frames: MilvusIndex, videos: MilvusIndex, catalog: Catalog, journal: Journal) -> None:
        """Journal first, then the buffered writes of both collections (deletions, then upserts)."""
        journal.frame_ranges, journal.video_ranges = frames.touched_ids(), videos.touched_ids()
        journal.write(self.index_dir)

        def frame_fields(ids: list[int]) -> dict[int, ItemFields]:
            items = catalog.item_fields(media_id_of(v) for v in ids)
            return {v: items[media_id_of(v)] for v in ids}

        frames.flush(frame_fields)
        videos.flush(catalog.item_fields)

    def close(self) -> None:
        disconnect(self.client, self.spec, self.index_dir)

    def __enter__(self) -> MilvusVectors:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def recover(index_dir: Path, catalog: Catalog, current_prefix: str | None) -> bool:
    """Undo what a crashed commit or rebuild left in Milvus; True if a journal was found.

    The caller holds the writer lock, and the catalog is not in a transaction.
    """
    journal = Journal.read(index_dir)
    if journal is None:
        return False
    generation = catalog.get_meta("generation")  # None: the index's creation never committed
    committed = generation is not None and int(generation) >= journal.generation
    with MilvusVectors(parse_store(journal.store), index_dir) as store:
        if journal.replacing:  # keep the collections the catalog names, drop the others
            unnamed = journal.old_prefix if committed else journal.new_prefix
            if unnamed and unnamed != current_prefix:
                store.drop(unnamed)
        elif not committed and current_prefix:
            frames, videos = collection_names(current_prefix)
            delete_ranges(store.client, frames, journal.frame_ranges, journal.store)
            delete_ranges(store.client, videos, journal.video_ranges, journal.store)
            touched = {media_id_of(lo) for lo, _ in journal.frame_ranges} | {lo for lo, _ in journal.video_ranges}
            catalog.begin()
            for media_id in sorted(touched):
                catalog.delete_media(media_id)
            catalog.set_meta("generation", str(journal.generation))
            catalog.commit()
    Journal.remove(index_dir)
    return True
