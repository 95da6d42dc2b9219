"""What an index folder's catalog says about the index: its identity, generation and frame index type.

Read without FAISS or numpy, so `gridrank status` answers from the catalog alone, at any size;
index_store.py builds the searchable index on top of it.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from retrieval.errors import IndexNotFoundError, IndexSchemaError, IndexWriteError
from retrieval.store.catalog import Catalog

CATALOG_FILE = "catalog.sqlite"
FRAME_INDEX_KEY = "frame_index"
STORE_KEY = "vector_store"  # where the vectors live (store_spec.py); absent: FAISS files, as before it was recorded
MILVUS_PREFIX_KEY = "milvus_prefix"  # the index's collections in a Milvus store


@dataclass(frozen=True)
class IndexInfo:
    model: str
    pretrained: str
    dim: int
    root: Path
    generation: int


@dataclass(frozen=True)
class FrameIndexInfo:
    """How the frame vectors are indexed, and the recall last measured for it (catalog metadata)."""

    factory: str = "Flat"  # FAISS factory string; indexes from before this was recorded are Flat
    reason: str = "exact search"
    nprobe: int | None = None
    ef_search: int | None = None
    recall_at_10: float = 1.0  # Flat: exact, 1.0 by construction; otherwise measured
    recall_queries: int = 0  # how many of the collection's own vectors it was measured with (0: not measured)
    recall_vectors: int = 0  # collection size when it was measured

    @property
    def exact(self) -> bool:
        return self.factory == "Flat"


def write_identity(catalog: Catalog, root: Path, model: str, pretrained: str, dim: int) -> None:
    """What an index was built from, in the caller's transaction: queries check it before using the index."""
    for key, value in {"model": model, "pretrained": pretrained, "dim": str(dim), "root": str(root)}.items():
        catalog.set_meta(key, value)


def open_catalog(path: Path, create: bool) -> Catalog:
    """The catalog at `path` (its tables made first when `create`), if its schema is the one this code reads."""
    catalog = None
    try:
        catalog = Catalog(path)
        if create:
            catalog.create_schema()
        catalog.check_schema()
        return catalog
    except (IndexSchemaError, sqlite3.DatabaseError) as e:
        if catalog is not None:
            catalog.close()
        if isinstance(e, IndexSchemaError):
            raise
        if getattr(e, "sqlite_errorcode", None) in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY):
            raise IndexWriteError.at(path.parent, str(e)) from None
        raise IndexSchemaError(f"{path} cannot be read as a gridrank catalog ({e}): check that it is readable; if it "
                               "is damaged, delete the index folder (or pass another --index) and run `gridrank index "
                               "ROOT` again") from None


def open_index_catalog(index_dir: Path) -> Catalog:
    """The catalog of an existing index, for reading."""
    if not (index_dir / CATALOG_FILE).is_file():
        raise IndexNotFoundError(f"no gridrank index in {index_dir}: run `gridrank index ROOT` first, or pass --index DIR")
    return open_catalog(index_dir / CATALOG_FILE, create=False)


def read_info(catalog: Catalog, index_dir: Path) -> IndexInfo:
    meta = {k: catalog.get_meta(k) for k in ("model", "pretrained", "dim", "root", "generation")}
    if None in meta.values():
        raise IndexNotFoundError(f"{index_dir / CATALOG_FILE} is not a complete gridrank index; "
                                 "re-run `gridrank index ROOT --rebuild`")
    return IndexInfo(meta["model"], meta["pretrained"], int(meta["dim"]), Path(meta["root"]), int(meta["generation"]))


def frame_index_info(catalog: Catalog) -> FrameIndexInfo:
    raw = catalog.get_meta(FRAME_INDEX_KEY)
    return FrameIndexInfo(**json.loads(raw)) if raw else FrameIndexInfo()
