"""Which indexed items a search may return: folder prefix, kind, date range, file extension.

Pure: parsing the user's values into a MediaFilter (query/types.py) and turning one into the SQL
condition the catalog runs (one query, in SQLite: at ten million items a Python pass over every row
took tens of seconds).
The searcher turns the ids that pass into a FAISS id selector, so a filtered query still fills
its K results.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from retrieval.errors import BadQueryError
from retrieval.query.types import MediaFilter
from retrieval.store.catalog import ITEM_DATE_SQL, MediaCondition


def media_condition(f: MediaFilter) -> MediaCondition:
    """The catalog condition (over the media table's columns) an item must meet to pass f."""
    clauses, params = ["frame_count > 0"], []
    if f.kind is not None:
        clauses.append("kind = ?")
        params.append(f.kind)
    if f.under:  # paths under the folder sort between "folder/" and "folder0" ('0' follows '/'): the path index
        clauses.append("path >= ? AND path < ?")
        params += [f.under + "/", f.under + "0"]
    if f.exts:
        clauses.append("(" + " OR ".join(["lower(path) LIKE ? ESCAPE '\\'"] * len(f.exts)) + ")")
        params += ["%." + re.sub(r"([\\%_])", r"\\\1", ext) for ext in f.exts]
    if f.after:
        clauses.append(f"{ITEM_DATE_SQL} >= ?")
        params.append(f.after.isoformat())
    if f.before:
        clauses.append(f"{ITEM_DATE_SQL} < ?")
        params.append(f.before.isoformat())
    return MediaCondition(" AND ".join(clauses), tuple(params))


def milvus_expression(f: MediaFilter) -> str:
    """The same filter as a Milvus scalar filter over the fields a Milvus store keeps (milvus_index.py)."""
    clauses = []
    if f.kind is not None:
        clauses.append(f"kind == {_milvus_string(f.kind)}")
    if f.under:  # LIKE's own wildcards in a folder name are matched literally
        folder = re.sub(r"([%_\\])", r"\\\1", f.under)
        clauses.append(f"path like {_milvus_string(folder + '/%')}")
    if f.exts:
        clauses.append(f"ext in [{', '.join(map(_milvus_string, f.exts))}]")
    if f.after:
        clauses.append(f"day >= {_milvus_string(f.after.isoformat())}")
    if f.before:
        clauses.append(f"day < {_milvus_string(f.before.isoformat())}")
    return " and ".join(clauses)


def _milvus_string(value: str) -> str:
    """A Milvus expression string literal (double quotes; backslash and quote escaped)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


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
