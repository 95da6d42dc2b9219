"""What the web app does, over the one Searcher the server holds: no Gradio in here.

Each method takes plain values from the UI or the API and returns plain values (paths,
captions, markdown); `ui.py` maps them onto components. The search itself is
`SearchService.run`, the call `gridrank search` makes, so the browser, the API and the CLI
agree on every result.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from PIL import Image

from app.render import duplicates_note, format_moment, format_segment, response_dict
from app.web.media_access import FILE_ROUTE, MediaAccess
from app.web.thumbnails import ThumbnailCache
from app.web.video import cue_at
from retrieval.store.catalog import SubtitleCue
from retrieval.query.filters import MediaFilter, normalize_under, parse_date, parse_exts
from retrieval.media.image_io import ImageRejected, load_rgb
from retrieval.query.build import build_query, like_query
from retrieval.query.search import SearchHit, SearchResponse, Searcher
from retrieval.rerank.marks import MAX_CANDIDATES, letter_marks
from retrieval.rerank.reranker import RERANK_METHODS as ALL_RERANK_METHODS, RerankReport
from retrieval.query.service import FUSION_METHODS as ALL_FUSION_METHODS, SearchRequest, SearchService
from retrieval.settings import Settings

KINDS = ("any", "image", "video")
MAX_K = 100  # results per query in the UI and the API

# What the menus offer; the names go to SearchRequest.rerank / .fuse unchanged ("none": None).
RERANK_METHODS: tuple[str, ...] = ("none", "grid", "cot", "first")  # Search and Composed tabs
VIDEO_RERANK_METHODS: tuple[str, ...] = ("none", "sgrid")  # Video tab: S-Grids
FUSION_METHODS: tuple[str, ...] = ("none", *ALL_FUSION_METHODS)  # Video tab: combsum, rrf, vic
API_RERANK_METHODS: tuple[str, ...] = ("none", *ALL_RERANK_METHODS)  # the API takes every CLI method
MIN_RERANK_K, MAX_RERANK_K = 2, MAX_CANDIDATES  # candidates reranked per query (20: marks A..T)
WORKING = "**Working…**"  # how a status line starts while the model works (no emoji: not every font has it)


class UserInputError(ValueError):
    """A query the user can fix (empty, bad kind, bad upload); the message says how."""


class UploadRejected(UserInputError):
    pass


@dataclass(frozen=True)
class Refine:
    """The Search tab's (and the API's) narrowing options, as the user typed them."""

    under: str | None = None  # folder relative to the indexed root
    after: str | None = None  # YYYY-MM-DD, on or after
    before: str | None = None  # YYYY-MM-DD, before
    ext: str | None = None  # jpg,png
    min_score: float | None = None
    collapse: bool = True
    like: str | None = None  # more like this indexed item (path relative to the root)
    page: int = 1


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
class SearchUpdate:
    """One step of a streamed search: first-stage results while the model works, then the final ones."""

    response: SearchResponse
    final: bool
    status: str  # markdown: what the model is doing, or what it did (a fallback note); '' without a model


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


class WebBackend:
    """The server's state: one Searcher (model loaded once), its index, the caches, the allow-list.

    Two locks: the first stage (encoder and FAISS, milliseconds; each query already uses every
    core) runs one query at a time, and the reranker model (seconds) runs one rerank at a time.
    A reranked search holds only the model's lock, so CLIP-only searches never wait behind it.
    Swapping the Searcher for another index takes both.
    """

    def __init__(self, searcher: Searcher, index_dir: Path, settings: Settings, thumbnails: ThumbnailCache,
                 access: MediaAccess, config: WebConfig = WebConfig()):
        self._service = SearchService(searcher, settings)
        self._index_dir = index_dir.resolve()
        self.settings = settings
        self.thumbnails = thumbnails
        self.access = access
        self.config = config
        self._lock = threading.RLock()  # the first stage (CLIP + FAISS) and swaps
        self._rerank_lock = threading.Lock()  # the reranker model: CLIP-only searches never wait for it
        self._reranker_loaded = bool(settings.reranker_url)  # a server needs no load; a local model does
        self._reranker_name: str | None = None
        self._model: tuple = (None, None)  # (backend, name) once a rerank made them: survives swaps
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
        with self._rerank_lock, self._lock:  # always in this order
            old = self.searcher
            self._service = SearchService(searcher, self.settings, *self._model)
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
               rerank: str = "none", rerank_k: int | None = None, fuse: str = "none",
               text_weight: float | None = None, caption_weight: float | None = None,
               refine: Refine = Refine()) -> SearchResponse:
        """The one search path of the UI and the API: validate, then SearchService.run like the CLI."""
        final = None
        for update in self.search_stream(text, image, k, kind, rerank, rerank_k, fuse, text_weight, caption_weight,
                                         refine):
            final = update.response
        assert final is not None
        return final

    def search_stream(self, text: str | None, image: Image.Image | None = None, k: int = 12, kind: str = "any",
                      rerank: str = "none", rerank_k: int | None = None, fuse: str = "none",
                      text_weight: float | None = None, caption_weight: float | None = None,
                      refine: Refine = Refine()) -> Iterator[SearchUpdate]:
        """The search in steps, for a page that must not freeze during a long rerank.

        Without a model: one update, the results. With one (rerank, SQAF, ViC fusion): first the
        first-stage results and a status saying what the model is doing ("loading the reranker
        model...", "reranking 9 candidates with ..."), then the final results. Validation errors
        (UserInputError) are raised before anything is yielded.
        """
        request = self._request(text, image, k, kind, rerank, rerank_k, fuse, refine)
        weights = self._weights(text_weight, caption_weight)
        if not _needs_model(request):
            with self._lock:
                service = self._service_for(self._service, weights, with_model=False)
                response = service.run(request)
            yield SearchUpdate(response, True, "")
            return

        # The CLIP-only first stage, under the first-stage lock: it never waits behind a rerank.
        rerank_k = request.rerank_k or self.settings.rerank_k
        preview_request = dataclasses.replace(
            request, k=max(request.k, rerank_k), rerank=None,
            fuse=request.fuse if request.fuse in ("combsum", "rrf") else None)
        with self._lock:
            preview = self._service_for(self._service, weights, with_model=False).run(preview_request)
        if not preview.hits:  # nothing of that kind in the index: nothing for the model to rank
            yield SearchUpdate(preview, True, "")
            return
        n = min(rerank_k, len(preview.hits))
        if request.fuse == "vic":
            n = min(rerank_k, self.settings.rerank_window)  # the interleaved list keeps duplicates
        preview = dataclasses.replace(preview, hits=preview.hits[: request.k])
        yield SearchUpdate(preview, False, self._pending_status(request, n))

        # The model, under its own lock: one rerank at a time (it already uses the whole device).
        with self._rerank_lock:
            service = self._service_for(self._service, weights, with_model=True)
            response = service.run(request)
            reranker = service.reranker()  # made by the run; kept across index swaps
            self._model = (reranker.backend, reranker.model_name)
            self._reranker_name = reranker.model_name
            self._reranker_loaded = getattr(reranker.backend, "is_loaded", True)
        yield SearchUpdate(response, True, done_status(response))

    def _request(self, text: str | None, image: Image.Image | None, k, kind: str, rerank: str, rerank_k,
                 fuse: str, refine: Refine = Refine()) -> SearchRequest:
        text = (text or "").strip() or None
        like = (refine.like or "").strip() or None
        if text is None and image is None and like is None:
            raise UserInputError("Type what you are looking for.")
        if like is not None and (text is not None or image is not None):
            raise UserInputError("More like this stands alone: to mix an item with words, type "
                                 "img:PATH +words in the query instead.")
        if kind not in KINDS:
            raise UserInputError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        k = _whole_number(k, "top-K")
        if not 1 <= k <= MAX_K:
            raise UserInputError(f"top-K must be between 1 and {MAX_K}, not {k}")
        rerank = rerank or "none"
        if rerank not in API_RERANK_METHODS:
            raise UserInputError(f"unknown rerank method {rerank!r}: available {', '.join(API_RERANK_METHODS)}")
        fuse = fuse or "none"
        if fuse not in FUSION_METHODS:
            raise UserInputError(f"unknown fusion {fuse!r}: available {', '.join(FUSION_METHODS)}")
        if fuse != "none" and kind != "video":
            raise UserInputError("fusion combines video retrievers: use it with kind video")
        if rerank_k is not None:
            rerank_k = _whole_number(rerank_k, "candidates reranked")
            if not MIN_RERANK_K <= rerank_k <= MAX_RERANK_K:
                raise UserInputError(f"candidates reranked must be between {MIN_RERANK_K} and {MAX_RERANK_K}, "
                                     f"not {rerank_k}")
        page = _whole_number(refine.page or 1, "page")
        try:
            # Image terms name indexed items only: a visitor may not make the server read other files.
            query = like_query(self.searcher, like) if like else build_query(self.searcher, text, image)
            media_filter = MediaFilter(normalize_under(refine.under, self.root), None,
                                       parse_date(refine.after, "from date"), parse_date(refine.before, "to date"),
                                       parse_exts(refine.ext))
            min_score = _min_score(refine.min_score)
        except ValueError as e:  # UnknownItemError too: the message names the path
            raise UserInputError(str(e)) from None
        if min_score is not None and not -1 <= min_score <= 1:
            raise UserInputError(f"minimum score must be between -1 and 1 (a cosine similarity), not {min_score}")
        return SearchRequest(query, k=k, kind=kind,  # type: ignore[arg-type]
                             rerank=None if rerank == "none" else rerank,  # type: ignore[arg-type]
                             rerank_k=rerank_k, fuse=None if fuse == "none" else fuse,  # type: ignore[arg-type]
                             filter=media_filter, min_score=min_score, collapse=bool(refine.collapse),
                             page=max(page, 1))

    def _weights(self, text_weight, caption_weight) -> tuple[float, float]:
        """SQAF's (a, b) for this query: the settings' unless the Composed tab's sliders say otherwise."""
        a = self.settings.composed_text_weight if text_weight is None else _weight(text_weight, "a")
        b = self.settings.sqaf_caption_weight if caption_weight is None else _weight(caption_weight, "b")
        return a, b

    def _service_for(self, service: SearchService, weights: tuple[float, float], with_model: bool) -> SearchService:
        """`service`, or a per-query one with other SQAF weights sharing its index, encoder and model."""
        a, b = weights
        if a == service.searcher.composed_text_weight and b == service.settings.sqaf_caption_weight:
            return service
        searcher = Searcher(service.searcher.store, service.searcher.encoder, a, service.searcher.default_shape)
        settings = service.settings.model_copy(update={"composed_text_weight": a, "sqaf_caption_weight": b})
        if not with_model:
            return SearchService(searcher, settings)
        reranker = service.reranker()  # the server's one model, loaded once
        return SearchService(searcher, settings, reranker.backend, reranker.model_name)

    @property
    def reranker_name(self) -> str:
        """The reranker's model as reports name it (before the first rerank: from the settings)."""
        if self._reranker_name is None:
            s = self.settings
            return "tiny-qwen2-vl" if s.profile == "tiny" and not s.reranker_url else s.reranker_model
        return self._reranker_name

    def _pending_status(self, request: SearchRequest, n: int) -> str:
        method = "ViC fusion" if request.fuse == "vic" else request.rerank
        steps = []
        model = f" with `{self.reranker_name}`"
        if not self._reranker_loaded:
            steps.append(f"loading the reranker model `{self.reranker_name}` (first use: this can take a while)")
            model = ""
        if request.query.image is not None and request.query.text and request.rerank:
            steps.append("writing the target caption (SQAF)")
        steps.append(f"reranking {n} candidate{'s' if n != 1 else ''}{model} ({method})")
        text = ", then ".join(steps)
        busy = " Waiting for the reranker: another search is using it." if self._rerank_lock.locked() else ""
        return f"{WORKING} {text[0].upper()}{text[1:]}. First-stage (CLIP) results meanwhile.{busy}"

    def api_search(self, query: str, k: int = 10, kind: str = "any", rerank: str = "none",
                   rerank_k: int | None = None, fuse: str = "none", under: str | None = None,
                   after: str | None = None, before: str | None = None, ext: str | None = None,
                   min_score: float | None = None, collapse: bool = True, like: str | None = None,
                   page: int = 1) -> dict:
        """The API's `search`: the same JSON as `gridrank search --json` (paths are absolute strings).

        The images the model saw come as paths in the thumbnail cache (fetchable from the server).
        """
        refine = Refine(under, after, before, ext, min_score, collapse, like, page)
        response = self.search(query, None, k, kind, rerank, rerank_k, fuse, refine=refine)
        saved = self.thumbnails.model_inputs(response.rerank.images_sent) if response.rerank else []
        return json.loads(json.dumps(response_dict(response, saved), default=str))

    def model_view(self, response: SearchResponse, composed: bool = False) -> ModelView:
        """The "What the model saw" panel for a response (empty when no model was involved)."""
        return model_view(response, self.thumbnails.model_inputs(response.rerank.images_sent)
                          if response.rerank else [], composed)

    def result_page(self, response: SearchResponse, query_label: str) -> ResultPage:
        started = time.perf_counter()
        reranked = response.rerank is not None
        items = [ResultItem(h, self.thumbnails.thumbnail(h.path, h.kind, h.timestamp), self.caption(h, reranked))
                 for h in response.hits]
        thumbs_s = time.perf_counter() - started
        n = len(items)
        summary = (f"{n} result{'s' if n != 1 else ''} for {query_label}" if n
                   else f"No results for {query_label}: the index is empty, or nothing of that kind passes the "
                   "filters and the minimum score.")
        return ResultPage(items, timings_line(response, thumbs_s), summary)

    def caption(self, hit: SearchHit, reranked: bool = False) -> str:
        """'#rank · score · path', plus the moment for a video; reranked: '#1 ↑3 · was #4 · score · path'."""
        parts = [f"#{hit.rank}{rank_move(hit)}"]
        if reranked and hit.first_stage_rank is not None:
            parts.append(f"was #{hit.first_stage_rank}")
        parts += [f"{hit.score:.3f}", self.relative(hit.path) + duplicates_note(hit)]
        if hit.kind == "video":
            parts.append(f"@ {format_segment(hit)}")
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
        if hit.duplicates:
            lines.append("Collapsed here (identical or near-identical): "
                         + ", ".join(f"`{self.relative(p)}`" for p in hit.duplicates))
        if hit.kind == "video":
            cues = self.searcher.store.catalog.subtitles_of(hit.media_id)
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

    # -- video moments ------------------------------------------------------------------------

    def video_results(self, response: SearchResponse) -> list[VideoResult]:
        results = []
        catalog = self.searcher.store.catalog
        for hit in response.hits:
            if hit.kind != "video":
                continue
            cues = catalog.subtitles_of(hit.media_id)
            start = hit.timestamp or 0.0
            was = (f" · was #{hit.first_stage_rank}" if response.rerank is not None and hit.first_stage_rank
                   else "")
            caption = (f"**#{hit.rank}{rank_move(hit)}**{was} · score {hit.score:.3f} · "
                       f"`{self.relative(hit.path)}`{duplicates_note(hit)} · best moment **{format_segment(hit)}**"
                       f"{subtitle_quote(cues, start)}")
            video = self.servable(hit.path)
            if video is None:
                continue
            results.append(VideoResult(
                hit, self.thumbnails.sgrid(hit.path, self.config.sgrid_side, self.config.sgrid_size), video, start,
                self.thumbnails.subtitles(hit.path, cues), caption,
            ))
        return results


def _needs_model(request: SearchRequest) -> bool:
    return request.rerank is not None or request.fuse == "vic"


def _whole_number(value, name: str) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserInputError(f"{name} must be a whole number, not {value!r}") from None
    if not number.is_integer():
        raise UserInputError(f"{name} must be a whole number, not {value!r}")
    return int(number)


def _min_score(value) -> float | None:
    if value is None or not str(value).strip():
        return None
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"minimum score must be a number between -1 and 1, or empty for none, not {value!r}") from None


def _weight(value, name: str) -> float:
    try:
        weight = float(value)
    except (TypeError, ValueError):
        raise UserInputError(f"weight {name} must be a number between 0 and 1, not {value!r}") from None
    if not 0.0 <= weight <= 1.0:
        raise UserInputError(f"weight {name} must be between 0 and 1, not {weight}")
    return weight


def _method_label(report: RerankReport) -> str:
    return {"vic": "ViC fusion", "sgrid": "S-Grid", "cot": "chain of thought", "first": "single token",
            "grid": "marked grid"}.get(report.method, report.method)


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
    return (f"✓ Reranked {n} candidate{'s' if n != 1 else ''} by {_method_label(report)} with `{report.model}` in "
            f"{_seconds(response.timings.rerank_s + response.timings.caption_s)}: the arrows show how far each "
            "result moved.")


def ranking_markdown(report: RerankReport) -> str:
    """The parsed ranking in the marks the model used, and as first-stage ranks."""
    order = report.order
    if not order:
        return "**Parsed ranking:** none (no candidates)"
    if report.method == "vic":
        marks = [f"Image-{i + 1}" for i in order]
        where = ("positions in the retrievers' interleaved list (duplicates kept); each video then takes the "
                 "place of its best copy")
        return f"**Parsed ranking:** {' > '.join(marks)}  \n<small>{where}</small>"
    if report.method in ("grid", "first") and report.calls <= 1 and len(order) <= MAX_CANDIDATES:
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
    lines += [f"| {name} | {_seconds(s) if s else '—'} |" for name, s in rows]
    lines.append(f"| **total** | **{_seconds(sum(s for _, s in rows))}** |")
    return "\n".join(lines)


def model_view(response: SearchResponse, images: list[Path], composed: bool = False) -> ModelView:
    report = response.rerank
    if report is None:
        note = "No model was involved in this search: choose a **Rerank** method to see what the model is shown."
        return ModelView("What the model saw", [], note, "", timings_table(response), "", "")
    calls = f"{report.calls} call{'s' if report.calls != 1 else ''}"
    summary = [f"**{_method_label(report)}** with `{report.model}` · {calls} · "
               f"{report.prompt_tokens:,} prompt tokens ({report.visual_tokens:,} visual) · "
               f"{report.completion_tokens:,} generated · {_seconds(report.seconds)} in the model"]
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
    label = f"What the model saw · {_method_label(report)} · {calls} · {report.visual_tokens:,} visual tokens"
    if report.fallback:
        label += " · fell back"
    return ModelView(label, images, "\n\n".join(summary), ranking_markdown(report), timings_table(response),
                     report.rationale or "", raw)


def _seconds(seconds: float) -> str:
    return _ms(seconds) if seconds < 1 else f"{seconds:.2f} s"


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

