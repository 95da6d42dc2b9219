"""The Index tab's work: one indexing run at a time, in a background thread, with progress and cancel.

The run is `indexer.pipeline.run_index`, the same as `gridrank index`. It commits atomically,
so searches keep answering from the last committed index while it runs (the Searcher reloads
new generations by itself), and a cancel leaves everything done so far committed and nothing
half-written. Indexing the served folder updates the served index in place; indexing another
folder builds FOLDER/.gridrank and then serves it instead.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from app.index_report import summary_line
from app.web.backend import WebBackend
from indexer.pipeline import IndexProgress, IndexSummary, run_index
from retrieval.store.catalog import Catalog
from retrieval.store.index_store import CATALOG_FILE
from retrieval.query.search import Searcher

log = logging.getLogger("gridrank.web")

JobState = Literal["idle", "scanning", "running", "cancelling", "done", "cancelled", "failed"]
FINISHED: frozenset[str] = frozenset({"idle", "done", "cancelled", "failed"})


class IndexJobError(ValueError):
    """The run can't start (bad folder, one already running); the message says why."""


@dataclass(frozen=True)
class JobSnapshot:
    state: JobState = "idle"
    folder: str = ""
    total: int = 0
    done: int = 0
    indexed: int = 0
    skipped: int = 0
    unchanged: int = 0
    removed: int = 0
    elapsed_s: float = 0.0
    current: str = ""
    message: str = ""
    skipped_files: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # (path, reason)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def fraction(self) -> float:
        if self.state == "done":
            return 1.0
        return self.done / self.total if self.total else 0.0

    @property
    def eta_s(self) -> float | None:
        if not self.done or self.total <= self.done or self.elapsed_s <= 0:
            return None
        return self.elapsed_s / self.done * (self.total - self.done)

    @property
    def rate(self) -> float:
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0


class IndexJobs:
    """At most one run per server; every browser tab sees the same one."""

    def __init__(self, backend: WebBackend):
        self.backend = backend
        self._lock = threading.Lock()
        self._snapshot = JobSnapshot()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            return self._snapshot

    def _set(self, **changes) -> None:
        with self._lock:
            self._snapshot = replace(self._snapshot, **changes)

    def start(self, folder: str) -> JobSnapshot:
        root = self._check_folder(folder)
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise IndexJobError(f"Already indexing {self._snapshot.folder}; wait for it or cancel it.")
            self._stop.clear()
            self._snapshot = JobSnapshot(state="scanning", folder=str(root), message="Scanning the folder...")
            self._thread = threading.Thread(target=self._run, args=(root,), name="gridrank-index", daemon=True)
            self._thread.start()
            return self._snapshot

    def cancel(self) -> JobSnapshot:
        with self._lock:
            if self._snapshot.state in ("scanning", "running"):
                self._stop.set()
                self._snapshot = replace(self._snapshot, state="cancelling",
                                         message="Cancelling: finishing the current file, then committing...")
            return self._snapshot

    def wait(self, timeout: float | None = None) -> JobSnapshot:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.snapshot()

    @staticmethod
    def _check_folder(folder: str) -> Path:
        text = (folder or "").strip()
        if not text:
            raise IndexJobError("Type the path of a folder on the server.")
        path = Path(text).expanduser()
        if not path.is_absolute():
            raise IndexJobError(f"Give an absolute path (starting with /), not {text!r}.")
        if not path.is_dir():
            raise IndexJobError(f"No folder at {path} on the server.")
        return path.resolve()

    def _index_dir_for(self, root: Path) -> Path:
        return self.backend.index_dir if root == self.backend.root else root / ".gridrank"

    def _run(self, root: Path) -> None:
        backend = self.backend
        index_dir = self._index_dir_for(root)
        started = time.monotonic()

        def on_progress(p: IndexProgress) -> None:
            state = "cancelling" if self._stop.is_set() else "running"
            self._set(state=state, total=p.total, done=p.done, indexed=p.indexed, skipped=p.skipped,
                      unchanged=p.unchanged, removed=p.removed, elapsed_s=p.elapsed_s, current=p.current,
                      message="")

        try:
            summary = run_index(root, index_dir, backend.settings, encoder=backend.searcher.encoder,
                                on_progress=on_progress, should_stop=self._stop.is_set)
            if index_dir == backend.index_dir:
                backend.searcher.store.refresh()
            elif not summary.interrupted:  # a cancelled new folder is resumed later, not served half-done
                backend.swap(Searcher.open(index_dir, backend.settings, encoder=backend.searcher.encoder), index_dir)
            self._finish(summary, index_dir, started)
        except Exception as e:  # shown in the tab; the last committed index stays as it was
            log.exception("indexing %s failed", root)
            self._set(state="failed", message=f"Indexing stopped: {e}", elapsed_s=time.monotonic() - started)

    def _finish(self, summary: IndexSummary, index_dir: Path, started: float) -> None:
        catalog = Catalog(index_dir / CATALOG_FILE)
        try:
            skipped = tuple((s.path, s.reason) for s in catalog.skipped_by_path().values())
        finally:
            catalog.close()
        snap = self.snapshot()
        state: JobState = "cancelled" if summary.interrupted else "done"
        message = summary_line(summary).replace("see gridrank status", "listed below")
        if summary.interrupted:
            message = f"Cancelled: the work up to here is committed; Index again to resume. {message}"
        self._set(state=state, indexed=summary.indexed, skipped=summary.skipped, unchanged=summary.unchanged,
                  removed=summary.removed, done=snap.total if state == "done" else snap.done,
                  elapsed_s=time.monotonic() - started, current="", message=message, skipped_files=skipped)
