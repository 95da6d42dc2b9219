"""Turn results into what a terminal shows: rich tables for people, JSON for scripts."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from retrieval.store.catalog import CatalogCounts, MediaRecord, SkipRecord
from retrieval.store.index_choice import IndexPlan
from retrieval.store.index_store import FrameIndexInfo, IndexInfo
from retrieval.query.types import SearchHit, SearchResponse

if TYPE_CHECKING:  # the indexer imports torch: `gridrank --help` and `status` must not wait for it
    from indexer.pipeline import IndexSummary


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


def format_segment(hit: SearchHit) -> str:
    """'0:01.2 (0:00.5-0:03.0)': the best moment, and the segment of matching frames around it."""
    if hit.timestamp is None:
        return ""
    segment = hit.segment
    if segment is None or segment.start == segment.end:
        return format_moment(hit.timestamp)
    return f"{format_moment(hit.timestamp)} ({format_moment(segment.start)}-{format_moment(segment.end)})"


def duplicates_note(hit: SearchHit) -> str:
    n = len(hit.duplicates)
    return f" (+{n} near-duplicate{'s' if n != 1 else ''})" if n else ""


def response_dict(response: SearchResponse, saved_images: list[Path] | None = None) -> dict:
    """JSON-ready form of a response; the images the model saw appear as saved file paths."""
    data = {
        "hits": [dataclasses.asdict(h) for h in response.hits],
        "timings": dataclasses.asdict(response.timings),
        "caption": response.caption,
        "fusion": response.fusion,
        "rerank": None,
    }
    if response.rerank is not None:
        report = {k: v for k, v in vars(response.rerank).items() if k != "images_sent"}
        data["rerank"] = report | {"images_sent": [str(p) for p in saved_images or []]}
    return data


def rank_move(hit: SearchHit) -> str:
    """How far reranking or fusion moved a hit: '↑3' for a promotion, '↓1', or '' where it stayed."""
    if hit.first_stage_rank is None or hit.first_stage_rank == hit.rank:
        return ""
    moved = hit.first_stage_rank - hit.rank
    return f"{'↑' if moved > 0 else '↓'}{abs(moved)}"


def search_table(response: SearchResponse) -> Table:
    reordered = response.rerank is not None or response.fusion is not None
    n = len(response.hits)
    table = Table(title=f"{n} result{'s' if n != 1 else ''}", title_justify="left")
    table.add_column("#", justify="right")
    if reordered:
        table.add_column("was", justify="right")
    table.add_column("score", justify="right")
    table.add_column("kind")
    table.add_column("moment", justify="right")
    table.add_column("path", overflow="fold")
    for hit in response.hits:
        moved = [f"{hit.first_stage_rank} {rank_move(hit)}".strip()] if reordered else []
        table.add_row(str(hit.rank), *moved, f"{hit.score:.3f}", hit.kind, format_segment(hit),
                      f"{hit.path}{duplicates_note(hit)}")
    t = response.timings
    table.caption = f"encode {t.encode_s * 1000:.0f} ms, search {t.search_s * 1000:.1f} ms" + (
        f", rerank {t.rerank_s:.2f} s" if response.rerank else "") + (
        "; score: cosine similarity (CLIP text-image typically 0.1-0.35, image-image 0.5-1)"
        if response.rerank is None and response.fusion is None else "")
    return table


def print_explanation(console: Console, response: SearchResponse, saved_images: list[Path]) -> None:
    """--explain: what the reranker saw and said, and what each stage cost."""
    t = response.timings
    console.print(f"[bold]timings[/] encode {t.encode_s * 1000:.0f} ms, search {t.search_s * 1000:.1f} ms, "
                  f"caption {t.caption_s:.2f} s, rerank {t.rerank_s:.2f} s")
    if response.fusion:
        console.print(f"[bold]fusion[/] {response.fusion}")
    if response.caption:
        console.print(f"[bold]target caption (SQAF)[/] {response.caption}")
    report = response.rerank
    if report is None:
        return
    console.print(f"[bold]rerank[/] {report.method} with {report.model}: {report.calls} call(s), "
                  f"{report.prompt_tokens} prompt tokens ({report.visual_tokens} visual), "
                  f"{report.completion_tokens} generated, {report.seconds:.2f} s in the model")
    console.print(f"[bold]parsed ranking[/] {[i + 1 for i in report.order]}")
    if report.fallback:
        console.print(f"[bold yellow]fallback[/] {report.fallback}")
    if report.rationale:
        console.print(f"[bold]rationale[/] {report.rationale}")
    for text in report.raw_outputs:
        console.print(f"[bold]model said[/] {text!r}", soft_wrap=True)
    for path in saved_images:
        console.print(f"[bold]model saw[/] {path}")


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
