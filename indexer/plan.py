"""Decide what an indexing run must do, from a scan and the catalog. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from indexer.decode import WorkItem
from indexer.scan import FileEntry, ScanProblem
from retrieval.store.catalog import MediaRecord, SkipRecord


@dataclass(frozen=True)
class IndexPlan:
    work: list[WorkItem]  # new or changed files, to hash and (if really changed) embed
    removed: list[MediaRecord]  # indexed before, gone now
    unchanged: int
    still_skipped: int = 0  # skipped before, and not changed since: not tried again


def plan_changes(files: list[FileEntry], known: dict[str, MediaRecord], problems: list[ScanProblem],
                 skipped: dict[str, SkipRecord] | None = None, retry_skipped: bool = False) -> IndexPlan:
    """`skipped`: the catalog's skip records. A file skipped before is tried again only when its size or
    modification time changed (it may have been fixed), or with `retry_skipped` (a newer decoder may read it)."""
    work: list[WorkItem] = []
    unchanged = still_skipped = 0
    for entry in files:
        record = known.get(entry.rel_path)
        skip = (skipped or {}).get(entry.rel_path)
        if record is not None and (record.size, record.mtime_ns) == (entry.size, entry.mtime_ns) and record.frame_count:
            unchanged += 1
        elif record is None and skip is not None and not retry_skipped and (skip.size, skip.mtime_ns) == (
                entry.size, entry.mtime_ns):
            still_skipped += 1
        else:
            work.append(WorkItem(entry, record.content_hash if record is not None else None))
    present = {entry.rel_path for entry in files}
    # A folder that could not be read this time keeps its entries: unreadable is not deleted.
    unreadable = tuple("" if p.rel_path == "." else p.rel_path + "/" for p in problems)
    removed = [
        record for path, record in known.items()
        if path not in present and not (path + "/").startswith(unreadable)
    ]
    return IndexPlan(work, removed, unchanged, still_skipped)
