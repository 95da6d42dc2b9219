"""The web page's words: status lines, rankings, timings and captions, as markdown. Pure functions."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from app.render import duplicates_note, format_segment, rank_move
from app.web.media_access import FILE_ROUTE
from app.web.video import cue_at
from retrieval.query.types import SearchHit, SearchResponse
from retrieval.rerank.marks import MAX_CANDIDATES, letter_marks
from retrieval.rerank.names import RERANKER_INFO, method_label
from retrieval.rerank.types import RerankReport
from retrieval.store.catalog import SubtitleCue

WORKING = "**Working…**"  # how a status line starts while the model works (no emoji: not every font has it)


def ranked(hit: SearchHit) -> str:
    """'#1 ↑3': the rank, and how far reranking moved the hit."""
    return f"#{hit.rank} {rank_move(hit)}".rstrip()


def relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def hit_caption(hit: SearchHit, root: Path, reranked: bool = False) -> str:
    """'#rank · score · path', plus the moment for a video; reranked: '#1 ↑3 · was #4 · score · path'."""
    parts = [ranked(hit)]
    if reranked and hit.first_stage_rank is not None:
        parts.append(f"was #{hit.first_stage_rank}")
    parts += [f"{hit.score:.3f}", relative(hit.path, root) + duplicates_note(hit)]
    if hit.kind == "video":
        parts.append(f"@ {format_segment(hit)}")
    return " · ".join(parts)


def newest_summary(photos: int, videos: int, shown: int) -> str:
    """The first screen's words: what the index holds, what is shown, and how to search."""
    held = f"{photos:,} photo{'s' if photos != 1 else ''} and {videos:,} video{'s' if videos != 1 else ''}"
    if not shown:
        return ("This index holds no media yet. Index a folder (the **Index** tab, or `gridrank index FOLDER`), "
                "then search it here.")
    return (f"This index holds {held}; the {shown} newest are below (click one to see it, then **More like "
            "this**). To search, type what you are looking for above, e.g. *a cat on a sofa*, and press "
            "Enter. The **Composed** tab searches by an example picture plus words; the **Video** tab finds "
            "moments in videos.")


def done_status(response: SearchResponse) -> str:
    """The status line under a finished search that involved the model."""
    report = response.rerank
    if report is None:
        return ""
    if report.fallback:
        head = ("The reranker fell back to first-stage order" if "first-stage order" in report.fallback
                else "Reranker fallback")
        return f"⚠ **{head}**: {report.fallback}. See “What the model saw”."
    n = len(report.order)
    return (f"✓ Reranked {n} candidate{'s' if n != 1 else ''} by {method_label(report.method)} with "
            f"`{report.model}` in {seconds_text(response.timings.rerank_s + response.timings.caption_s)}: the "
            "arrows show how far each result moved.")


def ranking_markdown(report: RerankReport) -> str:
    """The parsed ranking in the marks the model used, and as first-stage ranks."""
    order = report.order
    if not order:
        return "**Parsed ranking:** none (no candidates)"
    if report.method not in RERANKER_INFO:  # ViC fusion: positions in the interleaved list
        marks = [f"Image-{i + 1}" for i in order]
        where = ("positions in the retrievers' interleaved list (duplicates kept); each video then takes the "
                 "place of its best copy")
        return f"**Parsed ranking:** {' > '.join(marks)}  \n<small>{where}</small>"
    if RERANKER_INFO[report.method].marks == "letters" and report.calls <= 1 and len(order) <= MAX_CANDIDATES:
        letters = letter_marks(len(order))
        marks = [letters[i] for i in order]
    else:  # numbered images, or several windows (each window has its own marks)
        marks = [str(i + 1) for i in order]
    first = ", ".join(f"#{i + 1}" for i in order)
    return f"**Parsed ranking:** {' > '.join(marks)}  \n<small>as first-stage ranks: {first}</small>"


def timings_table(response: SearchResponse) -> str:
    t = response.timings
    rows = [("encode (CLIP)", t.encode_s), ("search (FAISS)", t.search_s),
            ("caption (SQAF)", t.caption_s), ("rerank (MLLM)", t.rerank_s)]
    lines = ["| stage | time |", "|---|---:|"]
    lines += [f"| {name} | {seconds_text(s) if s else '—'} |" for name, s in rows]
    lines.append(f"| **total** | **{seconds_text(sum(s for _, s in rows))}** |")
    return "\n".join(lines)


def timings_line(response: SearchResponse, thumbnails_s: float = 0.0) -> str:
    t = response.timings
    stages = [("encode", t.encode_s), ("search", t.search_s)]
    stages += [(name, s) for name, s in (("caption", t.caption_s), ("rerank", t.rerank_s)) if s]
    stages.append(("thumbnails", thumbnails_s))
    total = sum(s for _, s in stages)
    return " · ".join(f"{name} {ms_text(s)}" for name, s in stages) + f" · **total {ms_text(total)}**"


def seconds_text(seconds: float) -> str:
    return ms_text(seconds) if seconds < 1 else f"{seconds:.2f} s"


def ms_text(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.1f} ms" if ms < 10 else f"{ms:,.0f} ms"


def subtitle_quote(cues: list[SubtitleCue], seconds: float | None) -> str:
    cue = cue_at(cues, seconds)
    return f" · “{cue.text}”" if cue else ""


def file_url(path: Path) -> str:
    """A page-relative URL of Gradio's file route (works behind a root_path too)."""
    return FILE_ROUTE.lstrip("/") + quote(str(path))
