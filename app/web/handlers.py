"""What the web app does, over the one Searcher the server holds: no Gradio in here.

Each method takes plain values from the UI or the API and returns plain values (paths,
captions, markdown); `ui.py` maps them onto components. The search itself is
`SearchService.run`, the call `gridrank search` makes, so the browser, the API and the CLI
agree on every result.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from PIL import Image

from app.render import format_moment, to_json
from app.web.media_access import FILE_ROUTE, MediaAccess
from app.web.thumbnails import ThumbnailCache
from app.web.video import cue_at
from retrieval.catalog import SubtitleCue
from retrieval.image_io import ImageRejected, load_rgb
from retrieval.search import Query, SearchHit, SearchResponse, Searcher
from retrieval.service import SearchRequest, SearchService
from retrieval.settings import Settings

KINDS = ("any", "image", "video")
MAX_K = 100  # results per query in the UI and the API

# The reranking stage plugs in here: the methods the UI offers. Only "none" for now; the names
# added here go to SearchRequest.rerank unchanged (see WebBackend.search), and the UI's "what
# the model saw" panel (response.rerank) comes with them.
RERANK_METHODS: tuple[str, ...] = ("none",)


class UserInputError(ValueError):
    """A query the user can fix (empty, bad kind, bad upload); the message says how."""


class UploadRejected(UserInputError):
    pass


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
    subtitles: Path | None
    text: str  # markdown: rank, score, path, size, moment


@dataclass(frozen=True)
class VideoResult:
    hit: SearchHit
    sgrid: Path
    video: Path
    start: float
    subtitles: Path | None  # .vtt for the player's <track>
    caption: str  # markdown


@dataclass(frozen=True)
class WebConfig:
    max_upload_bytes: int = 20 * 1024 * 1024
    sgrid_side: int = 3  # g: an S-Grid shows g x g frames
    sgrid_size: int = 448


class WebBackend:
    """The server's state: one Searcher (model loaded once), its index, the caches, the allow-list.

    Queries go through one lock: the encoder and FAISS run one query at a time (each already
    uses every core), and the Searcher can be swapped for another index between queries.
    """

    def __init__(self, searcher: Searcher, index_dir: Path, settings: Settings, thumbnails: ThumbnailCache,
                 access: MediaAccess, config: WebConfig = WebConfig()):
        self._service = SearchService(searcher, settings)
        self._index_dir = index_dir.resolve()
        self.settings = settings
        self.thumbnails = thumbnails
        self.access = access
        self.config = config
        self._lock = threading.RLock()
        self._on_swap: list[Callable[[WebBackend], None]] = []
        access.set_roots([self.root])

    # -- the index being served ---------------------------------------------------------------

    @property
    def searcher(self) -> Searcher:
        return self._service.searcher

    @property
    def index_dir(self) -> Path:
        return self._index_dir

    @property
    def root(self) -> Path:
        return self.searcher.store.info.root

    @property
    def is_tiny(self) -> bool:
        return self.settings.profile == "tiny"

    def on_swap(self, callback: Callable[[WebBackend], None]) -> None:
        """Call `callback` after the served index changes (server.py updates Gradio's allowed paths)."""
        self._on_swap.append(callback)

    def swap(self, searcher: Searcher, index_dir: Path) -> None:
        """Serve another index (built by the Index tab); queries in flight finish on the old one."""
        with self._lock:
            old = self.searcher
            self._service = SearchService(searcher, self.settings)
            self._index_dir = index_dir.resolve()
            self.access.set_roots([self.root])
        for callback in self._on_swap:
            callback(self)
        if old is not searcher:
            old.store.catalog.close()

    def status_markdown(self) -> str:
        with self._lock:
            self.searcher.store.refresh()
            info, counts = self.searcher.store.info, self.searcher.store.catalog.counts()
        skipped = f" · {counts.skipped:,} skipped" if counts.skipped else ""
        return (f"**{counts.images:,}** photos · **{counts.videos:,}** videos · {counts.frames:,} vectors{skipped}"
                f" &nbsp;|&nbsp; folder `{info.root}` &nbsp;|&nbsp; model `{info.model}`")

    # -- search ---------------------------------------------------------------------------------

    def search(self, text: str | None, image: Image.Image | None = None, k: int = 12, kind: str = "any",
               rerank: str = "none") -> SearchResponse:
        """The one search path of the UI and the API: validate, then SearchService.run like the CLI."""
        text = (text or "").strip() or None
        if text is None and image is None:
            raise UserInputError("Type what you are looking for.")
        if kind not in KINDS:
            raise UserInputError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        try:
            k = int(k)
        except (TypeError, ValueError):
            raise UserInputError(f"top-K must be a whole number, not {k!r}") from None
        if not 1 <= k <= MAX_K:
            raise UserInputError(f"top-K must be between 1 and {MAX_K}, not {k}")
        if rerank not in RERANK_METHODS:
            raise UserInputError(f"unknown rerank method {rerank!r}: available {', '.join(RERANK_METHODS)}")
        request = SearchRequest(Query(text, image), k=k, kind=kind,  # type: ignore[arg-type]
                                rerank=None if rerank == "none" else rerank)  # type: ignore[arg-type]
        with self._lock:
            return self._service.run(request)

    def api_search(self, query: str, k: int = 10, kind: str = "any") -> dict:
        """The API's `search`: the same JSON as `gridrank search --json` (paths are absolute strings)."""
        return json.loads(to_json(self.search(query, None, k, kind)))

    def result_page(self, response: SearchResponse, query_label: str) -> ResultPage:
        started = time.perf_counter()
        items = [ResultItem(h, self.thumbnails.thumbnail(h.path, h.kind, h.timestamp), self.caption(h))
                 for h in response.hits]
        thumbs_s = time.perf_counter() - started
        n = len(items)
        summary = (f"{n} result{'s' if n != 1 else ''} for {query_label}" if n
                   else f"No results for {query_label}: the index is empty, or has nothing of that kind.")
        return ResultPage(items, timings_line(response, thumbs_s), summary)

    def caption(self, hit: SearchHit) -> str:
        """'#rank · score · path', plus the moment for a video and the move a reranker made."""
        parts = [f"#{hit.rank}{rank_move(hit)}", f"{hit.score:.3f}", self.relative(hit.path)]
        if hit.kind == "video":
            parts.append(f"@ {format_moment(hit.timestamp)}")
        return " · ".join(parts)

    def relative(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    # -- composed search: the uploaded reference image ------------------------------------------

    def load_upload(self, path: str | Path | None) -> Image.Image:
        """Decode an uploaded reference image with the indexer's guard; UploadRejected says why not."""
        if not path:
            raise UploadRejected("Drop a reference image first (JPEG, PNG, WebP...).")
        path = Path(path)
        name = path.name
        try:
            size = path.stat().st_size
        except OSError:
            raise UploadRejected("The upload did not arrive; try again.") from None
        limit = self.config.max_upload_bytes
        if size > limit:
            raise UploadRejected(f"{name} is {size / 2**20:.1f} MB; uploads are limited to {limit / 2**20:.0f} MB.")
        try:
            return load_rgb(path, self.settings.max_image_pixels).image
        except ImageRejected as e:
            raise UploadRejected(f"{name} was not used: {e}.") from None
        except OSError as e:  # truncated or otherwise broken pixel data
            raise UploadRejected(f"{name} was not used: the image data is damaged ({e}).") from None

    # -- the full view of a result --------------------------------------------------------------

    def detail(self, hit: SearchHit) -> Detail:
        record = self.searcher.store.catalog.media_by_ids([hit.media_id]).get(hit.media_id)
        lines = [f"**#{hit.rank}{rank_move(hit)}** · score {hit.score:.3f} · {hit.kind}"]
        if record is not None:
            if record.width and record.height:
                lines[0] += f" · {record.width}×{record.height}"
            if record.duration:
                lines[0] += f" · {format_moment(record.duration)} long"
            if record.taken_at:
                lines[0] += f" · taken {record.taken_at.replace('T', ' ')}"
        lines.append(f"`{hit.path}`")
        if hit.kind == "video":
            cues = self.searcher.store.catalog.subtitles_of(hit.media_id)
            lines.append(f"Best moment: **{format_moment(hit.timestamp)}**" + subtitle_quote(cues, hit.timestamp))
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

    # -- video moments ------------------------------------------------------------------------

    def video_results(self, response: SearchResponse) -> list[VideoResult]:
        results = []
        catalog = self.searcher.store.catalog
        for hit in response.hits:
            if hit.kind != "video":
                continue
            cues = catalog.subtitles_of(hit.media_id)
            start = hit.timestamp or 0.0
            caption = (f"**#{hit.rank}{rank_move(hit)}** · score {hit.score:.3f} · `{self.relative(hit.path)}` · "
                       f"best moment **{format_moment(start)}**{subtitle_quote(cues, start)}")
            video = self.servable(hit.path)
            if video is None:
                continue
            results.append(VideoResult(
                hit, self.thumbnails.sgrid(hit.path, self.config.sgrid_side, self.config.sgrid_size), video, start,
                self.thumbnails.subtitles(hit.path, cues), caption,
            ))
        return results


def timings_line(response: SearchResponse, thumbnails_s: float = 0.0) -> str:
    t = response.timings
    stages = [("encode", t.encode_s), ("search", t.search_s)]
    stages += [(name, s) for name, s in (("caption", t.caption_s), ("rerank", t.rerank_s)) if s]
    stages.append(("thumbnails", thumbnails_s))
    total = sum(s for _, s in stages)
    return " · ".join(f"{name} {_ms(s)}" for name, s in stages) + f" · **total {_ms(total)}**"


def _ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.1f} ms" if ms < 10 else f"{ms:,.0f} ms"


def rank_move(hit: SearchHit) -> str:
    """' ↑3' when a reranker moved the hit up 3 places from its first-stage rank, '' otherwise."""
    first = hit.first_stage_rank
    if first is None or first == hit.rank:
        return ""
    return f" ↑{first - hit.rank}" if first > hit.rank else f" ↓{hit.rank - first}"


def subtitle_quote(cues: list[SubtitleCue], seconds: float | None) -> str:
    cue = cue_at(cues, seconds)
    return f" · “{cue.text}”" if cue else ""


def file_url(path: Path) -> str:
    """A page-relative URL of Gradio's file route (works behind a root_path too)."""
    return FILE_ROUTE.lstrip("/") + quote(str(path))

