"""What `gridrank status` and `gridrank index` print: the index, its counts and recall, skips, a run's summary."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from retrieval.store.catalog import CatalogCounts, MediaRecord, SkipRecord
from retrieval.store.index_choice import IndexPlan
from retrieval.store.index_meta import FrameIndexInfo, IndexInfo

if TYPE_CHECKING:  # the indexer imports torch: `gridrank status` must not wait for it
    from indexer.pipeline import IndexSummary


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
    line = f"{line} ({summary.seconds:.1f} s)"
    if summary.rebuilt:
        line += f"; frame index rebuilt as {summary.rebuilt.factory}, {recall_text(summary.rebuilt)}"
    return line


def recall_text(info: FrameIndexInfo) -> str:
    if info.exact:
        return "exact search (recall@10 1.0 by construction)"
    if not info.recall_queries:  # Milvus's own index
        return f"{info.reason}; recall not measured by gridrank"
    effort = f", nprobe {info.nprobe}" if info.nprobe else f", efSearch {info.ef_search}" if info.ef_search else ""
    return (f"recall@10 {info.recall_at_10:.3f} against exact search on {info.recall_queries} of the "
            f"collection's own vectors (at {info.recall_vectors:,} vectors{effort})")


@dataclasses.dataclass(frozen=True)
class StatusReport:
    index_dir: Path
    info: IndexInfo
    counts: CatalogCounts
    skipped: list[SkipRecord]
    notes: list[MediaRecord]
    frame_index: FrameIndexInfo = FrameIndexInfo()
    pending_rebuild: IndexPlan | None = None  # what the next index run will rebuild the frame index as


def print_status(console: Console, report: StatusReport) -> None:
    info, counts = report.info, report.counts
    console.print(f"[bold]index[/] {report.index_dir}  (root {info.root})")
    console.print(f"[bold]model[/] {info.model} / {info.pretrained}, {info.dim}-d vectors")
    console.print(f"[bold]media[/] {counts.images:,} images, {counts.videos:,} videos, {counts.frames:,} vectors"
                  f" (generation {info.generation})")
    frame_index = report.frame_index
    console.print(f"[bold]frame index[/] {frame_index.factory}: {recall_text(frame_index)}", soft_wrap=True)
    if report.pending_rebuild:
        plan = report.pending_rebuild
        console.print(f"[bold]pending[/] the next `gridrank index` rebuilds the frame index as {plan.factory} "
                      f"({escape(plan.reason)}); searches use {frame_index.factory} until then", soft_wrap=True)
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
