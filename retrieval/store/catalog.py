"""SQLite catalog of indexed media, their frames, subtitles, skipped files and index metadata.

WAL mode lets searches read the last committed state while an indexing run writes.
Writers group their changes in explicit transactions that commit together with the FAISS files
(see index_store.py).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from retrieval.errors import IndexSchemaError
from retrieval.store.ids import MediaKind

if TYPE_CHECKING:  # numpy loads only in the methods that return arrays: `gridrank status` and a served search skip it
    import numpy as np

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS media (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: FAISS ids are derived from it
    path TEXT NOT NULL UNIQUE,             -- relative to the indexed root, '/'-separated
    kind TEXT NOT NULL CHECK (kind IN ('image', 'video')),
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    width INTEGER,
    height INTEGER,
    duration REAL,
    frame_count INTEGER NOT NULL,
    taken_at TEXT,
    note TEXT
);
CREATE INDEX IF NOT EXISTS media_hash ON media (content_hash);
CREATE TABLE IF NOT EXISTS frames (
    vector_id INTEGER PRIMARY KEY,
    media_id INTEGER NOT NULL REFERENCES media (id) ON DELETE CASCADE,
    frame_index INTEGER NOT NULL,
    timestamp REAL
);
CREATE INDEX IF NOT EXISTS frames_media ON frames (media_id);
CREATE TABLE IF NOT EXISTS subtitles (
    media_id INTEGER NOT NULL REFERENCES media (id) ON DELETE CASCADE,
    start REAL NOT NULL,
    end REAL NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS subtitles_media ON subtitles (media_id);
CREATE TABLE IF NOT EXISTS skipped (
    path TEXT PRIMARY KEY,
    size INTEGER,
    mtime_ns INTEGER,
    reason TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class MediaRecord:
    id: int
    path: str
    kind: MediaKind
    size: int
    mtime_ns: int
    content_hash: str
    width: int | None
    height: int | None
    duration: float | None
    frame_count: int
    taken_at: str | None
    note: str | None


@dataclass(frozen=True)
class FrameRecord:
    vector_id: int
    media_id: int
    frame_index: int
    timestamp: float | None


@dataclass(frozen=True)
class SubtitleCue:
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class SkipRecord:
    path: str
    size: int | None
    mtime_ns: int | None
    reason: str


# The date a filter uses: the EXIF date when the photo has a real one, else the local date of the
# file's modification time. A real date comes back unchanged from date(d, '+0 days'); a camera's
# nonsense one does not (NULL, or 2019-02-30 moved on to 2019-03-02).
ITEM_DATE_SQL = ("CASE WHEN date(substr(taken_at, 1, 10), '+0 days') = substr(taken_at, 1, 10) "
                 "THEN substr(taken_at, 1, 10) ELSE date(mtime_ns / 1000000000, 'unixepoch', 'localtime') END")


@dataclass(frozen=True)
class ItemFields:
    """What a vector store that filters by itself (Milvus) keeps of an item, for search filters."""

    path: str
    kind: MediaKind
    day: str  # YYYY-MM-DD, by ITEM_DATE_SQL
    ext: str  # lower case, without the dot; "" for none


def extension_of(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


@dataclass(frozen=True)
class MediaCondition:
    """An SQL condition over the media table's columns, with its parameters (a search filter)."""

    where: str
    params: tuple = ()


@dataclass(frozen=True)
class CatalogCounts:
    images: int
    videos: int
    frames: int
    skipped: int


_MEDIA_COLUMNS = ", ".join(MediaRecord.__dataclass_fields__)


class Catalog:
    def __init__(self, path: Path):
        self.path = path
        # isolation_level=None: transactions are opened explicitly, so a write batch spans
        # exactly what the index store commits together with its FAISS files.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._lock = threading.RLock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA synchronous=FULL")

    def create_schema(self) -> None:
        """Tables and the schema version in one transaction: a full disk here leaves no half-made catalog."""
        with self._lock:
            try:
                self._db.executescript(f"BEGIN IMMEDIATE;\n{_SCHEMA}\nINSERT OR IGNORE INTO meta VALUES "
                                       f"('schema_version', '{SCHEMA_VERSION}');\nCOMMIT;")
            except sqlite3.Error:
                if self._db.in_transaction:
                    self._db.rollback()
                raise

    def check_schema(self) -> None:
        """Refuse a catalog written with another layout than this code reads (rclip's ensure_version does the same).

        Version 1 is the only layout so far, so there is nothing to migrate: a newer or unknown one is an error.
        """
        found = self.get_meta("schema_version")  # sqlite3.DatabaseError without a meta table
        if found != SCHEMA_VERSION:
            raise IndexSchemaError(
                f"{self.path} was written with catalog schema {found or 'unknown'}; this gridrank reads schema "
                f"{SCHEMA_VERSION}. Rebuild it with `gridrank index ROOT --rebuild`, or use the gridrank that wrote it")

    def close(self) -> None:
        self._db.close()

    # -- transactions -------------------------------------------------------------------------

    def begin(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self._db.execute("COMMIT")

    @property
    def in_transaction(self) -> bool:
        return self._db.in_transaction

    def rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._db

    # -- metadata -----------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        with self._read() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def delete_meta(self, key: str) -> None:
        self._db.execute("DELETE FROM meta WHERE key = ?", (key,))

    # -- media --------------------------------------------------------------------------------

    def media_by_path(self) -> dict[str, MediaRecord]:
        with self._read() as db:
            rows = db.execute(f"SELECT {_MEDIA_COLUMNS} FROM media").fetchall()
        return {r[1]: MediaRecord(*r) for r in rows}

    def media_by_ids(self, ids: Iterable[int]) -> dict[int, MediaRecord]:
        ids = list(set(ids))
        with self._read() as db:
            rows = _select_in(db, f"SELECT {_MEDIA_COLUMNS} FROM media WHERE id IN", ids)
        return {r[0]: MediaRecord(*r) for r in rows}

    def media_ids_where(self, condition: MediaCondition) -> np.ndarray:
        """The ids of the items that meet condition, ascending (int64)."""
        return self._ids(f"SELECT id FROM media WHERE {condition.where} ORDER BY id", condition.params)

    def vector_ids_where(self, condition: MediaCondition) -> np.ndarray:
        """The frame vector ids of the items that meet condition, ascending (int64)."""
        return self._ids(f"SELECT frames.vector_id FROM frames JOIN media ON media.id = frames.media_id "
                         f"WHERE {condition.where} ORDER BY frames.vector_id", condition.params)

    def _ids(self, sql: str, params: tuple) -> np.ndarray:
        """The first column of a query's rows as int64, without a Python list of millions of tuples."""
        import numpy as np

        with self._read() as db:
            return np.fromiter((r[0] for r in db.execute(sql, params)), dtype=np.int64)

    def item_fields(self, media_ids: Iterable[int]) -> dict[int, ItemFields]:
        """Each item's filter fields (in the open transaction: what is about to be committed)."""
        with self._read() as db:
            rows = _select_in(db, f"SELECT id, path, kind, {ITEM_DATE_SQL} FROM media WHERE id IN", list(set(media_ids)))
        return {r[0]: ItemFields(r[1], r[2], r[3], extension_of(r[1])) for r in rows}

    def newest_media(self, limit: int) -> list[MediaRecord]:
        """Items with vectors, the most recently changed first (what a first screen shows)."""
        with self._read() as db:
            rows = db.execute(f"SELECT {_MEDIA_COLUMNS} FROM media WHERE frame_count > 0 "
                              "ORDER BY mtime_ns DESC, id DESC LIMIT ?", (limit,)).fetchall()
        return [MediaRecord(*r) for r in rows]

    def media_id_for_path(self, path: str) -> int | None:
        with self._read() as db:
            row = db.execute("SELECT id FROM media WHERE path = ?", (path,)).fetchone()
        return row[0] if row else None

    def reserve_media_id(self, path: str, kind: MediaKind) -> int:
        """The id of `path`, kept if it was indexed before, so its FAISS ids stay stable."""
        existing = self.media_id_for_path(path)
        if existing is not None:
            return existing
        cur = self._db.execute(
            "INSERT INTO media (path, kind, size, mtime_ns, content_hash, frame_count) VALUES (?, ?, 0, 0, '', 0)",
            (path, kind),
        )
        return int(cur.lastrowid)

    def put_media(self, record: MediaRecord, frames: Sequence[FrameRecord], cues: Sequence[SubtitleCue]) -> None:
        """Replace everything stored for record.id (reserved before) in the open transaction."""
        self._db.execute(
            "UPDATE media SET kind=?, size=?, mtime_ns=?, content_hash=?, width=?, height=?, duration=?, "
            "frame_count=?, taken_at=?, note=? WHERE id=?",
            (record.kind, record.size, record.mtime_ns, record.content_hash, record.width, record.height,
             record.duration, record.frame_count, record.taken_at, record.note, record.id),
        )
        self._db.execute("DELETE FROM frames WHERE media_id = ?", (record.id,))
        self._db.executemany(
            "INSERT INTO frames VALUES (?, ?, ?, ?)",
            [(f.vector_id, f.media_id, f.frame_index, f.timestamp) for f in frames],
        )
        self._db.execute("DELETE FROM subtitles WHERE media_id = ?", (record.id,))
        self._db.executemany(
            "INSERT INTO subtitles VALUES (?, ?, ?, ?)", [(record.id, c.start, c.end, c.text) for c in cues]
        )
        self._db.execute("DELETE FROM skipped WHERE path = ?", (record.path,))

    def touch_media(self, media_id: int, size: int, mtime_ns: int) -> None:
        """Same content under a new mtime: remember the new stat so the next scan is cheap."""
        self._db.execute("UPDATE media SET size=?, mtime_ns=? WHERE id=?", (size, mtime_ns, media_id))

    def delete_media(self, media_id: int) -> None:
        self._db.execute("DELETE FROM media WHERE id = ?", (media_id,))

    # -- frames and subtitles -----------------------------------------------------------------

    def frames_by_vector_ids(self, vector_ids: Iterable[int]) -> dict[int, FrameRecord]:
        with self._read() as db:
            rows = _select_in(db, "SELECT vector_id, media_id, frame_index, timestamp FROM frames WHERE vector_id IN",
                              [int(v) for v in vector_ids])
        return {r[0]: FrameRecord(*r) for r in rows}

    def frames_of(self, media_id: int) -> list[FrameRecord]:
        with self._read() as db:
            rows = db.execute(
                "SELECT vector_id, media_id, frame_index, timestamp FROM frames WHERE media_id = ? ORDER BY frame_index",
                (media_id,),
            ).fetchall()
        return [FrameRecord(*r) for r in rows]

    def subtitles_of(self, media_id: int) -> list[SubtitleCue]:
        with self._read() as db:
            rows = db.execute(
                "SELECT start, end, text FROM subtitles WHERE media_id = ? ORDER BY start", (media_id,)
            ).fetchall()
        return [SubtitleCue(*r) for r in rows]

    def subtitle_texts(self) -> dict[int, str]:
        """Each subtitled video's cues joined in time order: the text a subtitle retriever matches."""
        with self._read() as db:
            rows = db.execute(
                "SELECT media_id, group_concat(text, ' ') FROM "
                "(SELECT media_id, text FROM subtitles ORDER BY media_id, start) GROUP BY media_id"
            ).fetchall()
        return dict(rows)

    # -- skipped files ------------------------------------------------------------------------

    def skipped_by_path(self) -> dict[str, SkipRecord]:
        with self._read() as db:
            rows = db.execute("SELECT path, size, mtime_ns, reason FROM skipped ORDER BY path").fetchall()
        return {r[0]: SkipRecord(*r) for r in rows}

    def record_skip(self, skip: SkipRecord) -> None:
        self._db.execute("INSERT OR REPLACE INTO skipped VALUES (?, ?, ?, ?)",
                         (skip.path, skip.size, skip.mtime_ns, skip.reason))

    def clear(self) -> None:
        """Forget every item, frame, subtitle and skip (inside the caller's transaction): a rebuild starts empty.

        Media ids stay unique (AUTOINCREMENT): the rebuilt items get new ids, never an old one's.
        """
        for table in ("subtitles", "frames", "media", "skipped"):
            self._db.execute(f"DELETE FROM {table}")  # noqa: S608 (fixed table names)

    def forget_skip(self, path: str) -> None:
        self._db.execute("DELETE FROM skipped WHERE path = ?", (path,))

    def media_with_notes(self) -> list[MediaRecord]:
        with self._read() as db:
            rows = db.execute(f"SELECT {_MEDIA_COLUMNS} FROM media WHERE note IS NOT NULL ORDER BY path").fetchall()
        return [MediaRecord(*r) for r in rows]

    # -- summary ------------------------------------------------------------------------------

    def counts(self) -> CatalogCounts:
        with self._read() as db:
            images, videos = db.execute(
                "SELECT COALESCE(SUM(kind = 'image'), 0), COALESCE(SUM(kind = 'video'), 0) FROM media "
                "WHERE frame_count > 0"
            ).fetchone()
            frames = db.execute("SELECT COUNT(*) FROM frames").fetchone()[0]
            skipped = db.execute("SELECT COUNT(*) FROM skipped").fetchone()[0]
        return CatalogCounts(images, videos, frames, skipped)


def _select_in(db: sqlite3.Connection, sql_prefix: str, values: list) -> list[tuple]:
    """Run `sql_prefix (?, ?, ...)` in chunks that stay under SQLite's variable limit."""
    rows: list[tuple] = []
    for i in range(0, len(values), 900):
        chunk = values[i : i + 900]
        rows += db.execute(f"{sql_prefix} ({', '.join('?' * len(chunk))})", chunk).fetchall()
    return rows
