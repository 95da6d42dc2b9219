"""Turn results into what a terminal shows: rich tables for people, JSON for scripts."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from indexer.pipeline import IndexSummary
from retrieval.catalog import CatalogCounts, MediaRecord, SkipRecord
from retrieval.index_store import IndexInfo
from retrieval.search import SearchResponse


def _jsonable(value):
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def to_json(value) -> str:
    data = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
    return json.dumps(data, default=_jsonable, indent=2)


def format_moment(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(seconds, 60)
    return f"{int(minutes)}:{secs:04.1f}"


def search_table(response: SearchResponse) -> Table:
    table = Table(title=f"{len(response.hits)} results", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("kind")
    table.add_column("moment", justify="right")
    table.add_column("path", overflow="fold")
    for hit in response.hits:
        table.add_row(str(hit.rank), f"{hit.score:.3f}", hit.kind, format_moment(hit.timestamp), str(hit.path))
    timings = response.timings
    table.caption = f"encode {timings.encode_s * 1000:.0f} ms, search {timings.search_s * 1000:.1f} ms"
    return table


def summary_line(summary: IndexSummary) -> str:
    parts = [f"{summary.indexed:,} indexed"]
    if summary.touched:
        parts.append(f"{summary.touched:,} touched (content unchanged)")
    parts.append(f"{summary.unchanged:,} unchanged")
    if summary.removed:
        parts.append(f"{summary.removed:,} removed")
    line = ", ".join(parts)
    if summary.skipped:
        line += f", {summary.skipped:,} skipped: see gridrank status"
    return f"{line} ({summary.seconds:.1f} s)"


@dataclasses.dataclass(frozen=True)
class StatusReport:
    index_dir: Path
    info: IndexInfo
    counts: CatalogCounts
    skipped: list[SkipRecord]
    notes: list[MediaRecord]


def print_status(console: Console, report: StatusReport) -> None:
    info, counts = report.info, report.counts
    console.print(f"[bold]index[/] {report.index_dir}  (root {info.root})")
    console.print(f"[bold]model[/] {info.model} / {info.pretrained}, {info.dim}-d vectors")
    console.print(f"[bold]media[/] {counts.images:,} images, {counts.videos:,} videos, {counts.frames:,} vectors"
                  f" (generation {info.generation})")
    if report.skipped:
        table = Table(title=f"{len(report.skipped)} skipped", title_justify="left")
        table.add_column("path", overflow="fold")
        table.add_column("reason", overflow="fold")
        for skip in report.skipped:
            table.add_row(skip.path, skip.reason)
        console.print(table)
    else:
        console.print("[bold]skipped[/] none")
    if report.notes:
        table = Table(title="indexed with notes", title_justify="left")
        table.add_column("path", overflow="fold")
        table.add_column("note", overflow="fold")
        for record in report.notes:
            table.add_row(record.path, record.note)
        console.print(table)
