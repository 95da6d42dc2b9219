"""A Milvus collection as an index's vector store, behind the same methods as VectorIndex.

One collection per vector kind (frames, video means), named `<prefix>_frames` / `<prefix>_videos`
with the prefix the catalog records, so several indexes can share one Milvus. Each row is a
vector, gridrank's int64 id, and the fields search filters run on as Milvus scalar filters:
the item's path, kind, date (the catalog's own rule: EXIF date, else the file's) and extension.
The catalog (paths, frames, timestamps, skip reasons) stays in SQLite.

Writes are buffered until the index store commits (index_store.py): deletions first, then
upserts by id, so a run resumed after a crash writes the same ids again instead of adding
duplicates. Collections are created with Strong consistency: a search right after a commit sees it.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from retrieval.errors import GridrankError, ModelMismatchError, SettingsError
from retrieval.store.catalog import ItemFields
from retrieval.store.ids import MediaKind
from retrieval.store.store_spec import StoreSpec

if TYPE_CHECKING:
    from pymilvus import MilvusClient

    from retrieval.store.vector_index import Neighbours

# Milvus answers at most this many hits per search (its topk limit).
MAX_HITS = 16_384
WRITE_BATCH = 1_000  # rows per upsert call, ids per get / delete call
PATH_CHARS = 4_096
IDENTITY_PROPERTY = "gridrank.identity"  # a collection property: the model its vectors come from
INDEX_TYPE = "AUTOINDEX"  # Milvus picks the index type and its parameters (on a server, an HNSW-family index)


class VectorStoreError(GridrankError):
    """The vector store cannot be reached or used; the message names it and the fix."""


# Open milvus-lite files in this process, and how many clients use each: milvus-lite runs one server per
# file in the process that opened it, holding the file's lock until that process exits unless released.
_LITE_USERS: Counter[str] = Counter()


def connect(spec: StoreSpec, index_dir: Path) -> MilvusClient:
    """A client of the store; VectorStoreError in one line when pymilvus is missing or Milvus cannot be reached."""
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")  # gRPC's notes on forked decode workers are not for users
    try:
        from pymilvus import MilvusClient
    except ImportError:
        raise SettingsError(f"--store {spec.text} needs pymilvus and milvus-lite: pip install 'gridrank[milvus]'") from None
    # Each failure reaches the user as one VectorStoreError line: pymilvus's own logs of it, and milvus-lite's
    # in-process server's traceback for every call it does not implement (pymilvus then does without), are noise.
    for name in ("pymilvus", "grpc._server", "milvus_lite"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    uri = spec.uri(index_dir)
    try:
        client = MilvusClient(uri, timeout=10)
    except Exception as e:  # noqa: BLE001 (pymilvus and milvus-lite raise many kinds; each becomes one line)
        fix = ("start it (docs/milvus.md shows how) or correct the address" if spec.kind == "milvus" else
               "a milvus-lite file is open to one process at a time: stop the other gridrank using it (a `gridrank "
               "serve`? index from its web page instead), or keep the vectors in a Milvus server (milvus://HOST:PORT)")
        raise VectorStoreError(f"cannot open the vector store {spec.text}: {_first_line(e)}; {fix}") from None
    if spec.kind == "milvus-lite":
        _LITE_USERS[uri] += 1
    return client


def disconnect(client: MilvusClient, spec: StoreSpec, index_dir: Path) -> None:
    """Close a client; the last one of a milvus-lite file releases it for other processes."""
    client.close()
    uri = spec.uri(index_dir)
    if spec.kind == "milvus-lite":
        _LITE_USERS[uri] -= 1
        if _LITE_USERS[uri] <= 0:
            del _LITE_USERS[uri]
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(uri)


def collection_names(prefix: str) -> tuple[str, str]:
    return f"{prefix}_frames", f"{prefix}_videos"


def identity_text(model: str, pretrained: str, dim: int) -> str:
    """What a collection records of the model its vectors come from."""
    return f"gridrank vectors of {model} ({pretrained}), {dim}-d"


class MilvusIndex:
    filters_by_fields = True  # searches pass a Milvus filter expression, not a set of ids

    def __init__(self, client: MilvusClient, name: str, dim: int, store_text: str):
        self._client, self.name, self._dim, self._store_text = client, name, dim, store_text
        self._upserts: dict[int, np.ndarray] = {}
        self._deleted_ranges: list[tuple[int, int]] = []
        self._deleted_ids: set[int] = set()

    @classmethod
    def create(cls, client: MilvusClient, name: str, dim: int, identity: str, store_text: str) -> MilvusIndex:
        from pymilvus import DataType

        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        schema.add_field("path", DataType.VARCHAR, max_length=PATH_CHARS)
        schema.add_field("kind", DataType.VARCHAR, max_length=8)
        schema.add_field("day", DataType.VARCHAR, max_length=10)
        schema.add_field("ext", DataType.VARCHAR, max_length=64)
        params = client.prepare_index_params()
        params.add_index("vector", index_type=INDEX_TYPE, metric_type="IP")
        _call(store_text, client.create_collection, name, schema=schema, index_params=params, consistency_level="Strong",
              properties={IDENTITY_PROPERTY: identity})
        return cls(client, name, dim, store_text)

    @classmethod
    def open(cls, client: MilvusClient, name: str, dim: int, identity: str, store_text: str) -> MilvusIndex:
        """An index's collection `name`; refused if missing or made for another model or dimension."""
        if not _call(store_text, client.has_collection, name):
            raise VectorStoreError(f"the vector store {store_text} has no collection {name}, which this index's "
                                   "catalog names: it was dropped, or another Milvus now answers at that address. "
                                   "Rebuild the index's vectors: gridrank index ROOT --rebuild")
        described = _call(store_text, client.describe_collection, name)
        found = described.get("properties", {}).get(IDENTITY_PROPERTY, "")
        dims = [f["params"].get("dim") for f in described["fields"] if f["name"] == "vector"]
        if found != identity or dims != [dim]:
            raise ModelMismatchError(f"the collection {name} in {store_text} holds {found or 'vectors of unknown origin'}"
                                     f"{'' if dims == [dim] else f' ({dims[0] if dims else 0}-d)'}, not {identity}: "
                                     "give this index its own collection (gridrank index ROOT --rebuild) or use the "
                                     "index that made it")
        _call(store_text, client.load_collection, name)  # a server searches only loaded collections
        return cls(client, name, dim, store_text)

    @property
    def dim(self) -> int:
        return self._dim

    def __len__(self) -> int:
        return int(_call(self._store_text, self._client.get_collection_stats, self.name)["row_count"])

    # -- writes, buffered until flush ---------------------------------------------------------

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        for vid, vector in zip(np.asarray(ids, dtype=np.int64).tolist(), np.asarray(vectors, dtype=np.float32)):
            self._upserts[vid] = vector

    def remove_range(self, lo: int, hi: int) -> int:
        # One item's frames are a range of 4096 ids: looking each up beats scanning every pending upsert per item.
        candidates = range(lo, hi) if hi - lo <= len(self._upserts) else list(self._upserts)
        dropped = [vid for vid in candidates if lo <= vid < hi and self._upserts.pop(vid, None) is not None]
        self._deleted_ranges.append((lo, hi))
        return len(dropped)

    def remove_ids(self, ids: np.ndarray) -> int:
        ids = np.asarray(ids, dtype=np.int64).tolist()
        for vid in ids:
            self._upserts.pop(vid, None)
        self._deleted_ids.update(ids)
        return len(ids)

    def touched_ids(self) -> list[tuple[int, int]]:
        """Every id range a flush may change: what a crashed flush's recovery must clear."""
        return sorted({*self._deleted_ranges, *((i, i + 1) for i in self._deleted_ids),
                       *((i, i + 1) for i in self._upserts)})

    def flush(self, fields_of: Callable[[list[int]], dict[int, ItemFields]]) -> None:
        """Send the buffered deletions, then the upserts; fields_of gives each upserted id's filter fields."""
        delete_ranges(self._client, self.name, self._deleted_ranges + [(i, i + 1) for i in sorted(self._deleted_ids)],
                      self._store_text)
        ids = sorted(self._upserts)
        for start in range(0, len(ids), WRITE_BATCH):
            batch = ids[start:start + WRITE_BATCH]
            fields = fields_of(batch)
            rows = [{"id": vid, "vector": self._upserts[vid].tolist(), **asdict(fields[vid])} for vid in batch]
            _call(self._store_text, self._client.upsert, self.name, rows)
        self.discard()


    def discard(self) -> None:
        self._upserts, self._deleted_ranges, self._deleted_ids = {}, [], set()

    # -- reads --------------------------------------------------------------------------------

    def ids(self) -> np.ndarray:
        return np.fromiter((row["id"] for row in self._rows(["id"])), dtype=np.int64)

    def _rows(self, fields: list[str]) -> Iterator[dict[str, Any]]:
        iterator = _call(self._store_text, self._client.query_iterator, self.name, batch_size=WRITE_BATCH, filter="",
                         output_fields=fields)
        try:
            while batch := iterator.next():
                yield from batch
        finally:
            iterator.close()

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        found: dict[int, list[float]] = {}
        for start in range(0, len(ids), WRITE_BATCH):
            rows = _call(self._store_text, self._client.get, self.name, ids=ids[start:start + WRITE_BATCH].tolist(),
                         output_fields=["vector"])
            found |= {row["id"]: row["vector"] for row in rows}
        missing = [int(i) for i in ids if int(i) not in found]
        if missing:
            raise VectorStoreError(f"the vector store {self._store_text} has no vector for ids {missing[:5]} of the "
                                   f"catalog: run gridrank index ROOT to bring the index up to date")
        return np.array([found[int(i)] for i in ids], dtype=np.float32).reshape(len(ids), self._dim)

    def reconstruct(self, vid: int) -> np.ndarray:
        return self.vectors(np.array([vid]))[0]

    def search(self, query: np.ndarray, n: int, kind: MediaKind | None = None) -> Neighbours:
        return self.search_among(query, n, f"kind == {json.dumps(kind)}" if kind else "")

    def search_among(self, query: np.ndarray, n: int, expression: str) -> Neighbours:
        """Top-n neighbours of one query among the rows that pass a Milvus filter expression ("" for all)."""
        from retrieval.store.vector_index import Neighbours

        n = min(n, MAX_HITS)
        hits = _call(self._store_text, self._client.search, self.name, data=[np.asarray(query, np.float32).tolist()],
                     limit=n, filter=expression, search_params={"metric_type": "IP"})[0]
        return Neighbours(np.array([h["id"] for h in hits], dtype=np.int64),
                          np.array([h["distance"] for h in hits], dtype=np.float32))


def delete_ranges(client: MilvusClient, name: str, ranges: list[tuple[int, int]], store_text: str) -> None:
    """Delete the rows whose ids fall in any of the half-open ranges, WRITE_BATCH ranges per call."""
    for start in range(0, len(ranges), WRITE_BATCH):
        expression = " or ".join(f"(id >= {lo} and id < {hi})" for lo, hi in ranges[start:start + WRITE_BATCH])
        _call(store_text, client.delete, name, filter=expression)


def drop_collections(client: MilvusClient, names: tuple[str, ...], store_text: str) -> None:
    for name in names:
        if _call(store_text, client.has_collection, name):
            _call(store_text, client.drop_collection, name)


def _call(store_text: str, method: Callable, *args, **kwargs):
    """A pymilvus call whose failure (the server went away, a refused write) becomes one line naming the store."""
    from pymilvus.exceptions import MilvusException

    try:
        return method(*args, **kwargs)
    except MilvusException as e:
        raise VectorStoreError(f"the vector store {store_text} failed: {_first_line(e)}; check that it is running "
                               "and reachable, then run the command again") from None


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "message", "") or error).strip()
    return text.splitlines()[0] if text else type(error).__name__
