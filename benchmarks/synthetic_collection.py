"""A synthetic media collection around benchmark vectors: gridrank's ids, a real catalog, and filters.

Item i (0-based) is media id i + 1; every 10th item is a one-frame video, the rest are photos, in
100 folders (`folder00` ... `folder99`, by i % 100), dated over ten years from 2015-01-01. The
catalog is written with gridrank's own schema (one INSERT per row batch rather than one
transaction per item, which would take an hour at 10M), so `Searcher` filters it exactly as it
filters an indexed folder.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retrieval.query.types import MediaFilter
from retrieval.store.ids import FRAME_BITS, KIND_SHIFT
from retrieval.store.index_meta import CATALOG_FILE
from retrieval.store.index_store import IndexStore

FOLDERS = 100
VIDEO_EVERY = 10
DAYS = 3650
FIRST_DAY = dt.date(2015, 1, 1)
SYNTHETIC_ROOT = Path("/synthetic")


def is_video(items: np.ndarray) -> np.ndarray:
    return items % VIDEO_EVERY == 0


def day_of(items: np.ndarray) -> np.ndarray:
    """Days after FIRST_DAY, spread over ten years."""
    return (items * 7919) % DAYS


def vector_ids(items: np.ndarray) -> np.ndarray:
    """gridrank's packed ids (kind bit, media id, frame 0) of items."""
    return (is_video(items).astype(np.int64) << KIND_SHIFT) | ((items.astype(np.int64) + 1) << FRAME_BITS)


def items_of(ids: np.ndarray) -> np.ndarray:
    return ((ids & ((1 << KIND_SHIFT) - 1)) >> FRAME_BITS) - 1


@dataclass(frozen=True)
class FilterCase:
    name: str
    media_filter: MediaFilter
    passes: Callable[[np.ndarray], np.ndarray]  # items -> bool, the same rule in numpy (the exact search's truth)

    @property
    def kind(self) -> str:
        return self.media_filter.kind or "any"


def _days(a: dt.date, b: dt.date) -> tuple[int, int]:
    return (a - FIRST_DAY).days, (b - FIRST_DAY).days


_Y2019, _Y2021 = dt.date(2019, 1, 1), dt.date(2021, 1, 1)
_LO, _HI = _days(_Y2019, _Y2021)
FILTER_CASES = (
    FilterCase("folder (1%)", MediaFilter(under="folder07"), lambda i: i % FOLDERS == 7),
    FilterCase("kind video (10%)", MediaFilter(kind="video"), is_video),
    FilterCase("dates 2019-2020 (20%)", MediaFilter(after=_Y2019, before=_Y2021),
               lambda i: (day_of(i) >= _LO) & (day_of(i) < _HI)),
    FilterCase("folder + video + dates (0.2%)", MediaFilter(under="folder10", kind="video", after=_Y2019, before=_Y2021),
               lambda i: (i % FOLDERS == 10) & is_video(i) & (day_of(i) >= _LO) & (day_of(i) < _HI)),
)


def write_catalog(index_dir: Path, n: int, dim: int) -> None:
    """An index folder whose catalog lists n synthetic items (frame vectors not written yet)."""
    IndexStore.open_for_writing(index_dir, SYNTHETIC_ROOT, "synthetic", "none", dim).close()
    noon = dt.datetime.combine(FIRST_DAY, dt.time(12)).timestamp()  # local noon: DST never moves the date
    db = sqlite3.connect(index_dir / CATALOG_FILE)
    db.execute("PRAGMA synchronous=OFF")
    with db:
        for lo in range(0, n, 100_000):
            items = np.arange(lo, min(n, lo + 100_000))
            videos, mtimes, ids = is_video(items), ((noon + day_of(items) * 86400) * 1e9).astype(np.int64), vector_ids(items)
            media = [(int(i) + 1, f"folder{i % FOLDERS:02d}/{i}.{'mp4' if v else 'jpg'}", "video" if v else "image",
                      1, int(t), str(i), 1) for i, v, t in zip(items, videos, mtimes)]
            db.executemany("INSERT INTO media (id, path, kind, size, mtime_ns, content_hash, frame_count) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?)", media)
            db.executemany("INSERT INTO frames VALUES (?, ?, 0, ?)",
                           [(int(v), int(i) + 1, 0.0 if video else None) for v, i, video in zip(ids, items, videos)])
    db.close()
