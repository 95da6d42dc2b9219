"""Which indexed items a search may return: folder prefix, kind, date range, file extension.

Pure: parsing the user's values and testing one catalog row. The searcher turns the rows that
pass into a FAISS id selector, so a filtered query still fills its K results.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from retrieval.errors import BadQueryError
from retrieval.store.ids import MediaKind

if TYPE_CHECKING:
    from retrieval.store.catalog import FilterRow


@dataclass(frozen=True)
class MediaFilter:
    under: str | None = None  # folder relative to the indexed root, '/'-separated, no trailing '/'
    kind: MediaKind | None = None
    after: dt.date | None = None  # on or after
    before: dt.date | None = None  # strictly before
    exts: tuple[str, ...] = ()  # lower case, without the dot

    @property
    def active(self) -> bool:
        """True when anything beyond the kind narrows the search (the kind alone is an id range)."""
        return bool(self.under or self.after or self.before or self.exts)


def item_date(taken_at: str | None, mtime_ns: int) -> dt.date:
    """The date a filter uses: the EXIF date when the photo has one, else the file's modification date."""
    if taken_at:
        try:
            return dt.date.fromisoformat(taken_at[:10])
        except ValueError:
            pass  # a camera wrote a nonsense date: fall back to the file's
    return dt.datetime.fromtimestamp(mtime_ns / 1e9).date()


def matches(row: FilterRow, f: MediaFilter) -> bool:
    if f.kind is not None and row.kind != f.kind:
        return False
    if f.under and not row.path.startswith(f.under + "/"):
        return False
    if f.exts and row.path.rsplit(".", 1)[-1].lower() not in f.exts:
        return False
    if f.after or f.before:
        date = item_date(row.taken_at, row.mtime_ns)
        if (f.after and date < f.after) or (f.before and date >= f.before):
            return False
    return True


def parse_date(value: str | None, name: str) -> dt.date | None:
    if value is None or not value.strip():
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise BadQueryError(f"{name} must be a date like 2024-06-01, not {value!r}") from None


def parse_exts(value: str | None) -> tuple[str, ...]:
    """'jpg, .PNG' -> ('jpg', 'png')."""
    if not value:
        return ()
    return tuple(dict.fromkeys(e.strip().lstrip(".").lower() for e in value.split(",") if e.strip(" .")))


def normalize_under(value: str | None, root: Path | None = None, name: str = "--under") -> str | None:
    """A folder relative to the indexed root: 'trips/2024/', './trips/2024' and ROOT/trips/2024 -> 'trips/2024'.

    `name` is what the user filled in, for the message: the CLI's flag, or the web form's field.
    """
    if value is None:
        return None
    if root is not None and Path(value).is_absolute():
        try:
            value = Path(value).resolve().relative_to(root).as_posix()
        except ValueError:
            raise BadQueryError(f"{name} {value} is not inside the indexed folder {root}") from None
    parts = [p for p in value.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise BadQueryError(f"{name}: give a folder inside the indexed root, not {value!r}")
    return "/".join(parts) or None
