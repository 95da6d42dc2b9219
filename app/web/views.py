"""What the page shows of a response: result cells, a selected result, video moments, the model panel.

Plain dataclasses of paths and markdown; ui.py maps them onto Gradio components.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from app.render import duplicates_note, format_moment, format_segment
from app.web.formatting import (file_url, hit_caption, newest_summary, ranked, ranking_markdown, relative,
                                seconds_text, subtitle_quote, timings_line, timings_table)
from app.web.media_access import MediaAccess
from app.web.thumbnails import ThumbnailCache
from retrieval.query.types import SearchHit, SearchResponse
from retrieval.rerank.names import method_label
from retrieval.store.index_store import IndexStore


@dataclass(frozen=True)
class ResultItem:
    """One gallery cell: a hit, its cached thumbnail and its caption."""

    hit: SearchHit
    thumbnail: Path
    caption: str


@dataclass(frozen=True)
class ResultPage:
    items: list[ResultItem]
    timings: str  # "encode 12 ms · search 0.4 ms · ..."
    summary: str  # "12 results for 'a cat'" or why there are none


@dataclass(frozen=True)
class Detail:
    """The full view of one selected result."""

    image: Path | None  # preview of a photo, or the best frame of a video
    video: Path | None
    start: float | None  # where the player starts, seconds
    subtitles: Path | None  # videos: a .vtt for the player's <track>, empty when it has no subtitles
    text: str  # markdown: rank, score, path, size, moment


@dataclass(frozen=True)
class VideoResult:
    hit: SearchHit
    sgrid: Path
    video: Path
    start: float
    subtitles: Path  # .vtt for the player's <track> (empty when the video has no subtitles)
    caption: str  # markdown


@dataclass(frozen=True)
class ModelView:
    """The "What the model saw" panel."""

    label: str  # the panel's title: method, model, calls, tokens
    images: list[Path]  # what was sent: marked grids, photos (CoT), S-Grids
    summary: str  # markdown: model, calls, tokens, the fallback note, the SQAF caption
    ranking: str  # markdown: the parsed ranking, in the model's marks and in first-stage ranks
    timings: str  # markdown table: encode, search, caption, rerank
    reasoning: str  # the CoT rationale ('' when the method gives none)
    raw: str  # the model's own words, each call's


@dataclass(frozen=True)
class WebConfig:
    max_upload_bytes: int = 20 * 1024 * 1024
    sgrid_side: int = 3  # g: an S-Grid shows g x g frames
    sgrid_size: int = 448


@dataclass(frozen=True)
class ResultViews:
    """Views of results over the index being served: its catalog, the thumbnail cache, the allow-list."""

    store: IndexStore
    thumbnails: ThumbnailCache
    access: MediaAccess
    config: WebConfig

    @property
    def root(self) -> Path:
        return self.store.info.root

    def result_page(self, response: SearchResponse, query_label: str) -> ResultPage:
        started = time.perf_counter()
        reranked = response.rerank is not None
        items = [ResultItem(h, self.thumbnails.thumbnail(h.path, h.kind, h.timestamp),
                            hit_caption(h, self.root, reranked)) for h in response.hits]
        thumbs_s = time.perf_counter() - started
        n = len(items)
        summary = (f"{n} result{'s' if n != 1 else ''} for {query_label}" if n
                   else f"No results for {query_label}: the index is empty, or nothing of that kind passes the "
                   "filters and the minimum score.")
        return ResultPage(items, timings_line(response, thumbs_s), summary)

    def newest_page(self, hits: list[SearchHit]) -> ResultPage:
        """The first screen: what the index holds (its newest items) and how to search it."""
        counts = self.store.catalog.counts()
        items = [ResultItem(h, self.thumbnails.thumbnail(h.path, h.kind, h.timestamp),
                            relative(h.path, self.root) + duplicates_note(h)) for h in hits]
        return ResultPage(items, "", newest_summary(counts.images, counts.videos, len(items)))

    def detail(self, hit: SearchHit, scored: bool = True) -> Detail:
        """`scored` False: a hit of the first screen, which no query scored."""
        catalog = self.store.catalog
        record = catalog.media_by_ids([hit.media_id]).get(hit.media_id)
        lines = [f"**{ranked(hit)}** · score {hit.score:.3f} · {hit.kind}" if scored else f"**{hit.kind}**"]
        if record is not None:
            if record.width and record.height:
                lines[0] += f" · {record.width}×{record.height}"
            if record.duration:
                lines[0] += f" · {format_moment(record.duration)} long"
            if record.taken_at:
                lines[0] += f" · taken {record.taken_at.replace('T', ' ')}"
        lines.append(f"`{hit.path}`")
        if hit.duplicates:
            lines.append("Collapsed here (identical or near-identical): "
                         + ", ".join(f"`{relative(p, self.root)}`" for p in hit.duplicates))
        if hit.kind == "video":
            cues = catalog.subtitles_of(hit.media_id)
            lines.append(f"Best moment: **{format_segment(hit)}**" + subtitle_quote(cues, hit.timestamp))
            frame = self.thumbnails.thumbnail(hit.path, "video", hit.timestamp, size=960)
            return Detail(frame, self.servable(hit.path), hit.timestamp or 0.0,
                          self.thumbnails.subtitles(hit.path, cues), "\n\n".join(lines))
        original = self.servable(hit.path)
        if original is not None:
            lines.append(f"[Open the original file]({file_url(original)})")
        return Detail(self.thumbnails.preview(hit.path), None, None, None, "\n\n".join(lines))

    def servable(self, path: Path) -> Path | None:
        """`path` if the browser may fetch it (the media allow-list), else None."""
        try:
            return self.access.check(path)
        except PermissionError:
            return None

    def video_results(self, response: SearchResponse) -> list[VideoResult]:
        results = []
        catalog = self.store.catalog
        for hit in response.hits:
            if hit.kind != "video":
                continue
            cues = catalog.subtitles_of(hit.media_id)
            start = hit.timestamp or 0.0
            was = (f" · was #{hit.first_stage_rank}" if response.rerank is not None and hit.first_stage_rank
                   else "")
            caption = (f"**{ranked(hit)}**{was} · score {hit.score:.3f} · "
                       f"`{relative(hit.path, self.root)}`{duplicates_note(hit)} · best moment "
                       f"**{format_segment(hit)}**{subtitle_quote(cues, start)}")
            video = self.servable(hit.path)
            if video is None:
                continue
            results.append(VideoResult(
                hit, self.thumbnails.sgrid(hit.path, self.config.sgrid_side, self.config.sgrid_size), video, start,
                self.thumbnails.subtitles(hit.path, cues), caption,
            ))
        return results

    def model_view(self, response: SearchResponse, composed: bool = False) -> ModelView:
        """The "What the model saw" panel for a response (empty when no model was involved)."""
        images = self.thumbnails.model_inputs(response.rerank.images_sent) if response.rerank else []
        return model_view(response, images, composed)


def model_view(response: SearchResponse, images: list[Path], composed: bool = False) -> ModelView:
    report = response.rerank
    if report is None:
        note = "No model was involved in this search: choose a **Rerank** method to see what the model is shown."
        return ModelView("What the model saw", [], note, "", timings_table(response), "", "")
    label = method_label(report.method)
    calls = f"{report.calls} call{'s' if report.calls != 1 else ''}"
    summary = [f"**{label}** with `{report.model}` · {calls} · "
               f"{report.prompt_tokens:,} prompt tokens ({report.visual_tokens:,} visual) · "
               f"{report.completion_tokens:,} generated · {seconds_text(report.seconds)} in the model"]
    if report.fallback:
        summary.append(f"⚠ **Fell back:** {report.fallback}")
    if response.caption:
        summary.append(f"**SQAF caption** (the model's description of the target image): “{response.caption}”")
    if response.fusion:
        summary.append(f"**Fusion:** {response.fusion}")
    summary.append(f"**Sent:** {len(images)} image{'s' if len(images) != 1 else ''}"
                   + (", after your reference image" if composed else "")
                   + " (below, as built: the model gets them scaled to its pixel budget)")
    raw = "\n\n".join(f"── call {i} ──\n{text}" if len(report.raw_outputs) > 1 else text
                       for i, text in enumerate(report.raw_outputs, 1))
    if not report.raw_outputs and report.method == "first":
        raw = "(single-token ranking reads the first token's logits over the marks: no text is generated)"
    title = f"What the model saw · {label} · {calls} · {report.visual_tokens:,} visual tokens"
    if report.fallback:
        title += " · fell back"
    return ModelView(title, images, "\n\n".join(summary), ranking_markdown(report), timings_table(response),
                     report.rationale or "", raw)
