"""Turn search results into what a terminal shows: a rich table for people, JSON for scripts (and back)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from retrieval.query.types import SearchHit, SearchResponse, Segment, StageTimings
from retrieval.rerank.types import RerankReport


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


def response_from_dict(data: dict) -> SearchResponse:
    """A response back from its JSON form (a server's answer); the images the model saw stay behind."""
    hits = [SearchHit(**(h | {"path": Path(h["path"]), "duplicates": tuple(Path(p) for p in h["duplicates"]),
                             "segment": Segment(**h["segment"]) if h["segment"] else None}))
            for h in data["hits"]]
    report = data["rerank"]
    return SearchResponse(hits, StageTimings(**data["timings"]),
                          RerankReport(**(report | {"images_sent": []})) if report else None,
                          data["caption"], data["fusion"])


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
